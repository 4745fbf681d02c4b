#include <string.h>

#include <apr_strings.h>

#include "ad_record.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define AD_CRC32C_SSE42 1
#include <nmmintrin.h>
#else
#define AD_CRC32C_SSE42 0
#endif

/* Layout (all integers big-endian):
 *   "ADR" version:u8 attempts:u32 first_seen:i64 next_due:i64 failed_at:i64
 *   last_status:i32 strings(event_id rule target destination method url
 *   last_error last_message exhausted rule_arn target_arn)
 *   nheaders:u32 (name value)* body crc:u32
 * A string is u32 length + bytes. The CRC covers everything before it:
 * CRC-32C in version 2, CRC-32 (IEEE) in version 1. */

static const char magic[3] = {'A', 'D', 'R'};

typedef struct {
    char *buf;
    apr_size_t len;
} wbuf_t;

typedef struct {
    const char *buf;
    apr_size_t len, pos;
    apr_pool_t *p;
} rbuf_t;

static void put_u32(wbuf_t *w, apr_uint32_t v)
{
    unsigned char *b = (unsigned char *)w->buf + w->len;
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
    w->len += 4;
}

static void put_u64(wbuf_t *w, apr_uint64_t v)
{
    put_u32(w, (apr_uint32_t)(v >> 32));
    put_u32(w, (apr_uint32_t)v);
}

static void put_bytes(wbuf_t *w, const char *s, apr_size_t n)
{
    put_u32(w, (apr_uint32_t)n);
    if (n) {
        memcpy(w->buf + w->len, s, n);
    }
    w->len += n;
}

static void put_str(wbuf_t *w, const char *s)
{
    put_bytes(w, s ? s : "", s ? strlen(s) : 0);
}

static apr_size_t str_size(const char *s)
{
    return 4 + (s ? strlen(s) : 0);
}

static apr_size_t encoded_size(const ad_record_t *r)
{
    apr_size_t n = 3 + 1 + 4 + 8 + 8 + 8 + 4 + 4 + 4 + r->body_len + 4;
    int i;

    n += str_size(r->event_id) + str_size(r->rule) + str_size(r->target) +
         str_size(r->destination) + str_size(r->method) + str_size(r->url) +
         str_size(r->last_error) + str_size(r->last_message) + str_size(r->exhausted) +
         str_size(r->rule_arn) + str_size(r->target_arn);
    for (i = 0; r->headers && i < r->headers->nelts; i++) {
        const ad_header_t *h = &APR_ARRAY_IDX(r->headers, i, ad_header_t);
        n += str_size(h->name) + str_size(h->value);
    }
    return n;
}

ad_record_t *ad_record_make(apr_pool_t *p)
{
    ad_record_t *r = apr_pcalloc(p, sizeof(*r));
    r->event_id = r->rule = r->target = r->destination = "";
    r->method = "POST";
    r->url = r->last_error = r->body = "";
    r->last_message = r->exhausted = r->rule_arn = r->target_arn = "";
    r->headers = apr_array_make(p, 4, sizeof(ad_header_t));
    return r;
}

apr_status_t ad_record_encode(apr_pool_t *p, const ad_record_t *r, char **buf, apr_size_t *len)
{
    apr_size_t size = encoded_size(r);
    wbuf_t w;
    int i;

    if (size > AD_RECORD_MAX_SIZE) {
        return APR_ENOSPC;
    }
    w.buf = apr_palloc(p, size);
    w.len = 0;
    memcpy(w.buf, magic, 3);
    w.buf[3] = AD_RECORD_VERSION;
    w.len = 4;
    put_u32(&w, r->attempts);
    put_u64(&w, (apr_uint64_t)r->first_seen);
    put_u64(&w, (apr_uint64_t)r->next_due);
    put_u64(&w, (apr_uint64_t)r->failed_at);
    put_u32(&w, (apr_uint32_t)r->last_status);
    put_str(&w, r->event_id);
    put_str(&w, r->rule);
    put_str(&w, r->target);
    put_str(&w, r->destination);
    put_str(&w, r->method);
    put_str(&w, r->url);
    put_str(&w, r->last_error);
    put_str(&w, r->last_message);
    put_str(&w, r->exhausted);
    put_str(&w, r->rule_arn);
    put_str(&w, r->target_arn);
    put_u32(&w, r->headers ? (apr_uint32_t)r->headers->nelts : 0);
    for (i = 0; r->headers && i < r->headers->nelts; i++) {
        const ad_header_t *h = &APR_ARRAY_IDX(r->headers, i, ad_header_t);
        put_str(&w, h->name);
        put_str(&w, h->value);
    }
    put_bytes(&w, r->body, r->body_len);
    put_u32(&w, ad_crc32c(0, w.buf, w.len));
    *buf = w.buf;
    *len = w.len;
    return APR_SUCCESS;
}

static int get_u32(rbuf_t *rb, apr_uint32_t *v)
{
    const unsigned char *b;
    if (rb->len - rb->pos < 4) {
        return 0;
    }
    b = (const unsigned char *)rb->buf + rb->pos;
    *v = ((apr_uint32_t)b[0] << 24) | ((apr_uint32_t)b[1] << 16) | ((apr_uint32_t)b[2] << 8) | b[3];
    rb->pos += 4;
    return 1;
}

static int get_u64(rbuf_t *rb, apr_uint64_t *v)
{
    apr_uint32_t hi, lo;
    if (!get_u32(rb, &hi) || !get_u32(rb, &lo)) {
        return 0;
    }
    *v = ((apr_uint64_t)hi << 32) | lo;
    return 1;
}

/* Strings are copied NUL-terminated so callers may use them as C strings;
 * the body may hold NULs and keeps its length. */
static int get_bytes(rbuf_t *rb, const char **s, apr_size_t *n)
{
    apr_uint32_t l;
    if (!get_u32(rb, &l) || rb->len - rb->pos < l) {
        return 0;
    }
    *s = apr_pstrmemdup(rb->p, rb->buf + rb->pos, l);
    if (n) {
        *n = l;
    }
    rb->pos += l;
    return 1;
}

static int get_str(rbuf_t *rb, const char **s)
{
    return get_bytes(rb, s, NULL);
}

static int get_headers(rbuf_t *rb, apr_array_header_t *headers)
{
    apr_uint32_t n, i;
    if (!get_u32(rb, &n) || n > (rb->len - rb->pos) / 8) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        ad_header_t *h = apr_array_push(headers);
        if (!get_str(rb, &h->name) || !get_str(rb, &h->value)) {
            return 0;
        }
    }
    return 1;
}

static int check_frame(const char *buf, apr_size_t len)
{
    apr_uint32_t stored;
    const unsigned char *b = (const unsigned char *)buf + len - 4;

    if (len < 8 || memcmp(buf, magic, 3) != 0 || (buf[3] != 1 && buf[3] != AD_RECORD_VERSION)) {
        return 0;
    }
    stored =
        ((apr_uint32_t)b[0] << 24) | ((apr_uint32_t)b[1] << 16) | ((apr_uint32_t)b[2] << 8) | b[3];
    return stored == (buf[3] == 1 ? ad_crc32(0, buf, len - 4) : ad_crc32c(0, buf, len - 4));
}

apr_status_t ad_record_decode(apr_pool_t *p, const char *buf, apr_size_t len, ad_record_t **out)
{
    rbuf_t rb;
    ad_record_t *r;
    apr_uint32_t status;
    apr_uint64_t first, due, failed;

    if (!buf || !check_frame(buf, len)) {
        return APR_EINVAL;
    }
    rb.buf = buf;
    rb.len = len - 4;
    rb.pos = 4;
    rb.p = p;
    r = ad_record_make(p);
    if (!get_u32(&rb, &r->attempts) || !get_u64(&rb, &first) || !get_u64(&rb, &due) ||
        !get_u64(&rb, &failed) || !get_u32(&rb, &status) || !get_str(&rb, &r->event_id) ||
        !get_str(&rb, &r->rule) || !get_str(&rb, &r->target) || !get_str(&rb, &r->destination) ||
        !get_str(&rb, &r->method) || !get_str(&rb, &r->url) || !get_str(&rb, &r->last_error) ||
        !get_str(&rb, &r->last_message) || !get_str(&rb, &r->exhausted) ||
        !get_str(&rb, &r->rule_arn) || !get_str(&rb, &r->target_arn) ||
        !get_headers(&rb, r->headers) || !get_bytes(&rb, &r->body, &r->body_len) ||
        rb.pos != rb.len) {
        return APR_EINVAL;
    }
    r->first_seen = (apr_time_t)first;
    r->next_due = (apr_time_t)due;
    r->failed_at = (apr_time_t)failed;
    r->last_status = (int)status;
    *out = r;
    return APR_SUCCESS;
}

static int peek_str(rbuf_t *rb, const char **s, apr_size_t *n)
{
    apr_uint32_t l;
    if (!get_u32(rb, &l) || rb->len - rb->pos < l) {
        return 0;
    }
    *s = rb->buf + rb->pos;
    *n = l;
    rb->pos += l;
    return 1;
}

int ad_record_peek(const char *buf, apr_size_t len, const char **rule, apr_size_t *rule_len,
                   const char **target, apr_size_t *target_len)
{
    rbuf_t rb;
    const char *id;
    apr_size_t id_len;

    /* magic+version, attempts, first_seen, next_due, failed_at, last_status */
    rb.buf = buf;
    rb.len = len;
    rb.pos = 4 + 4 + 8 + 8 + 8 + 4;
    rb.p = NULL;
    return len > rb.pos && peek_str(&rb, &id, &id_len) && peek_str(&rb, rule, rule_len) &&
           peek_str(&rb, target, target_len);
}

/* Slice-by-8: eight tables let the loop fold 8 bytes per step instead of
 * one; the polynomial (reflected) and so every stored CRC stay what the
 * byte-wise loop gives. tables[0] is the classic table. */
typedef apr_uint32_t crc_tables_t[8][256];
static crc_tables_t crc_ieee, crc_castagnoli;
static int crc_tables_ready, crc32c_by_cpu;

static void crc_fill(crc_tables_t t, apr_uint32_t poly)
{
    apr_uint32_t i, j, c;

    for (i = 0; i < 256; i++) {
        c = i;
        for (j = 0; j < 8; j++) {
            c = (c & 1) ? poly ^ (c >> 1) : c >> 1;
        }
        t[0][i] = c;
    }
    for (i = 0; i < 256; i++) {
        for (j = 1; j < 8; j++) {
            c = t[j - 1][i];
            t[j][i] = t[0][c & 0xff] ^ (c >> 8);
        }
    }
}

/* Filled on first use; the tables are identical in every thread, so a race
 * only repeats the same writes. Called first before threads start. */
static void crc_init(void)
{
    if (crc_tables_ready) {
        return;
    }
    crc_fill(crc_ieee, 0xEDB88320u);
    crc_fill(crc_castagnoli, 0x82F63B78u);
#if AD_CRC32C_SSE42
    __builtin_cpu_init();
    crc32c_by_cpu = __builtin_cpu_supports("sse4.2");
#endif
    crc_tables_ready = 1;
}

static apr_uint32_t crc_bytes(const crc_tables_t t, apr_uint32_t crc, const unsigned char *b,
                              apr_size_t len)
{
    while (len--) {
        crc = t[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
    }
    return crc;
}

/* Bytes are read one by one (no unaligned or endian-dependent loads). */
static apr_uint32_t crc_slice8(const crc_tables_t t, apr_uint32_t crc, const unsigned char *b,
                               apr_size_t len)
{
    for (; len >= 8; len -= 8, b += 8) {
        apr_uint32_t lo = crc ^ ((apr_uint32_t)b[0] | (apr_uint32_t)b[1] << 8 |
                                 (apr_uint32_t)b[2] << 16 | (apr_uint32_t)b[3] << 24);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][b[4]] ^ t[2][b[5]] ^ t[1][b[6]] ^ t[0][b[7]];
    }
    return crc_bytes(t, crc, b, len);
}

#if AD_CRC32C_SSE42
/* Eight bytes per instruction: about eight times the tables' speed, which
 * every record written and read pays over its whole length. */
__attribute__((target("sse4.2"))) static apr_uint32_t
crc32c_sse42(apr_uint32_t crc, const unsigned char *b, apr_size_t len)
{
    unsigned long long c = crc;

    for (; len >= 8; len -= 8, b += 8) {
        unsigned long long v;
        memcpy(&v, b, 8); /* x86 is little-endian: the bytes in order */
        c = _mm_crc32_u64(c, v);
    }
    crc = (apr_uint32_t)c;
    for (; len; len--) {
        crc = _mm_crc32_u8(crc, *b++);
    }
    return crc;
}
#endif

apr_uint32_t ad_crc32(apr_uint32_t crc, const void *data, apr_size_t len)
{
    crc_init();
    return ~crc_slice8(crc_ieee, ~crc, data, len);
}

apr_uint32_t ad_crc32_simple(apr_uint32_t crc, const void *data, apr_size_t len)
{
    crc_init();
    return ~crc_bytes(crc_ieee, ~crc, data, len);
}

apr_uint32_t ad_crc32c(apr_uint32_t crc, const void *data, apr_size_t len)
{
    crc_init();
#if AD_CRC32C_SSE42
    if (crc32c_by_cpu) {
        return ~crc32c_sse42(~crc, data, len);
    }
#endif
    return ~crc_slice8(crc_castagnoli, ~crc, data, len);
}

apr_uint32_t ad_crc32c_tables(apr_uint32_t crc, const void *data, apr_size_t len)
{
    crc_init();
    return ~crc_slice8(crc_castagnoli, ~crc, data, len);
}
