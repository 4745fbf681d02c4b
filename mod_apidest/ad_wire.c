#include <limits.h>
#include <string.h>

#include "ad_wire.h"
#include "ad_ingest.h"

static void be32(unsigned char *b, apr_uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static apr_uint32_t rd32(const unsigned char *b)
{
    return ((apr_uint32_t)b[0] << 24) | ((apr_uint32_t)b[1] << 16) | ((apr_uint32_t)b[2] << 8) |
           b[3];
}

/* writev takes at most IOV_MAX parts (1,024 on Linux): a frame of more
 * goes out in several calls. */
#if defined(IOV_MAX) && IOV_MAX < 512
#define SEND_PARTS_MAX IOV_MAX
#else
#define SEND_PARTS_MAX 512
#endif

/* Every byte of v[0..n), however the kernel cuts the writes up; v is used
 * up on the way. */
static apr_status_t send_parts(apr_socket_t *s, struct iovec *v, int n)
{
    while (n > 0) {
        apr_size_t sent = 0;
        apr_status_t rv = apr_socket_sendv(s, v, n < SEND_PARTS_MAX ? n : SEND_PARTS_MAX, &sent);

        if (rv != APR_SUCCESS) {
            return rv;
        }
        while (n > 0 && sent >= v->iov_len) {
            sent -= v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + sent;
            v->iov_len -= sent;
        }
    }
    return APR_SUCCESS;
}

static apr_status_t recv_all(apr_socket_t *s, char *buf, apr_size_t len)
{
    while (len > 0) {
        apr_size_t n = len;
        apr_status_t rv = apr_socket_recv(s, buf, &n);
        if (n > 0) {
            buf += n;
            len -= n;
            continue;
        }
        return rv == APR_SUCCESS ? APR_EOF : rv;
    }
    return APR_SUCCESS;
}

static void put_header(unsigned char *hdr, apr_uint32_t type, apr_size_t len)
{
    be32(hdr, AD_WIRE_MAGIC);
    be32(hdr + 4, type);
    be32(hdr + 8, (apr_uint32_t)len);
}

apr_status_t ad_wire_send(apr_socket_t *s, apr_uint32_t type, const char *payload, apr_size_t len)
{
    unsigned char hdr[AD_WIRE_HEADER_LEN];
    struct iovec vec[2];

    if (len > AD_WIRE_MAX_PAYLOAD) { /* the peer would refuse it, or its length wrap */
        return APR_EINVAL;
    }
    put_header(hdr, type, len);
    vec[0].iov_base = hdr;
    vec[0].iov_len = sizeof(hdr);
    vec[1].iov_base = (void *)payload;
    vec[1].iov_len = len;
    /* One writev in the common case keeps the exchange to one syscall. */
    return send_parts(s, vec, len ? 2 : 1);
}

apr_status_t ad_wire_blobs_size(const apr_array_header_t *blobs, apr_size_t *len)
{
    apr_size_t total = 4;
    int i;

    for (i = 0; i < blobs->nelts; i++) {
        total += 4 + APR_ARRAY_IDX(blobs, i, ad_blob_t).len;
        if (total > AD_WIRE_MAX_PAYLOAD) {
            return APR_ENOSPC;
        }
    }
    *len = total;
    return APR_SUCCESS;
}

/* The records go out from where they were encoded: the message was a copy
 * of them all (8.6 % of the children's ingest instructions went to memcpy
 * for ten 4 KiB entries, a third of it this copy). */
apr_status_t ad_wire_send_blobs(apr_socket_t *s, apr_pool_t *p, apr_uint32_t type,
                                const apr_array_header_t *blobs)
{
    int i, n = blobs->nelts;
    apr_size_t len;
    unsigned char *words;
    struct iovec *v;
    apr_status_t rv = ad_wire_blobs_size(blobs, &len);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    words = apr_palloc(p, AD_WIRE_HEADER_LEN + 4 + 4 * (apr_size_t)n);
    v = apr_palloc(p, sizeof(*v) * (1 + 2 * (apr_size_t)n));
    put_header(words, type, len);
    be32(words + AD_WIRE_HEADER_LEN, (apr_uint32_t)n);
    v[0].iov_base = words;
    v[0].iov_len = AD_WIRE_HEADER_LEN + 4;
    for (i = 0; i < n; i++) {
        const ad_blob_t *b = &APR_ARRAY_IDX(blobs, i, ad_blob_t);
        unsigned char *w = words + AD_WIRE_HEADER_LEN + 4 + 4 * i;

        be32(w, (apr_uint32_t)b->len);
        v[1 + 2 * i].iov_base = w;
        v[1 + 2 * i].iov_len = 4;
        v[2 + 2 * i].iov_base = b->data;
        v[2 + 2 * i].iov_len = b->len;
    }
    return send_parts(s, v, 1 + 2 * n);
}

apr_status_t ad_wire_parse_header(const unsigned char *hdr, apr_uint32_t *type, apr_uint32_t *len)
{
    if (rd32(hdr) != AD_WIRE_MAGIC || rd32(hdr + 8) > AD_WIRE_MAX_PAYLOAD) {
        return APR_EINVAL;
    }
    *type = rd32(hdr + 4);
    *len = rd32(hdr + 8);
    return APR_SUCCESS;
}

apr_status_t ad_wire_parse_start(const char *buf, apr_size_t n, apr_uint32_t *type,
                                 apr_uint32_t *len)
{
    apr_status_t rv = ad_wire_parse_header((const unsigned char *)buf, type, len);

    return rv == APR_SUCCESS && n - AD_WIRE_HEADER_LEN > *len ? APR_EINVAL : rv;
}

/* The frames a reader waits for are mostly small replies: one read takes
 * the header and the payload together, where a read per part cost a system
 * call more per request. */
apr_status_t ad_wire_recv(apr_socket_t *s, apr_pool_t *p, apr_uint32_t *type, char **payload,
                          apr_size_t *len)
{
    char first[AD_WIRE_FIRST_READ];
    apr_size_t have = 0, extra;
    apr_uint32_t n;
    apr_status_t rv;

    while (have < AD_WIRE_HEADER_LEN) {
        apr_size_t got = sizeof(first) - have;
        rv = apr_socket_recv(s, first + have, &got);
        if (got == 0) {
            return rv == APR_SUCCESS ? APR_EOF : rv;
        }
        have += got;
    }
    if ((rv = ad_wire_parse_start(first, have, type, &n)) != APR_SUCCESS) {
        return rv;
    }
    extra = have - AD_WIRE_HEADER_LEN;
    *payload = apr_palloc(p, n + 1);
    (*payload)[n] = '\0';
    *len = n;
    memcpy(*payload, first + AD_WIRE_HEADER_LEN, extra);
    return recv_all(s, *payload + extra, n - extra);
}

apr_status_t ad_wire_unpack_blobs(apr_pool_t *p, const char *buf, apr_size_t len,
                                  apr_array_header_t **blobs)
{
    const unsigned char *b = (const unsigned char *)buf;
    apr_uint32_t n, i;
    apr_size_t off = 4;

    if (len < 4 || (n = rd32(b)) > len / 4) {
        return APR_EINVAL;
    }
    *blobs = apr_array_make(p, n ? (int)n : 1, sizeof(ad_blob_t));
    for (i = 0; i < n; i++) {
        ad_blob_t *blob;
        apr_uint32_t l;
        if (len - off < 4 || (l = rd32(b + off)) > len - off - 4) {
            return APR_EINVAL;
        }
        blob = apr_array_push(*blobs);
        blob->data = (char *)buf + off + 4;
        blob->len = l;
        off += 4 + l;
    }
    return off == len ? APR_SUCCESS : APR_EINVAL;
}

apr_status_t ad_wire_pack_reply(apr_pool_t *p, apr_uint32_t status, const char *text,
                                apr_size_t text_len, char **buf, apr_size_t *len)
{
    *len = 4 + text_len;
    *buf = apr_palloc(p, *len);
    be32((unsigned char *)*buf, status);
    if (text_len) {
        memcpy(*buf + 4, text, text_len);
    }
    return APR_SUCCESS;
}

apr_status_t ad_wire_unpack_reply(const char *buf, apr_size_t len, apr_uint32_t *status,
                                  const char **text, apr_size_t *text_len)
{
    if (len < 4) {
        return APR_EINVAL;
    }
    *status = rd32((const unsigned char *)buf);
    *text = buf + 4;
    *text_len = len - 4;
    return APR_SUCCESS;
}
