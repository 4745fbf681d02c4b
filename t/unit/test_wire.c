/* ad_wire over a real socket pair. ad_wire_recv: a frame however it is cut
 * up by the kernel, one bigger than the first read, a peer that did not
 * wait for its answer, and one that hung up mid-header. ad_wire_send_blobs:
 * the bytes of the layout, through short writes and past one writev. */
#include <check.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <apr_network_io.h>
#include <apr_portable.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "ad_ingest.h"
#include "ad_wire.h"
#include "unit_run.h"

static apr_pool_t *pool;
static int fds[2];
static apr_socket_t *reader;

static void setup(void)
{
    apr_pool_create(&pool, NULL);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    reader = NULL;
    apr_os_sock_put(&reader, &fds[0], pool);
}

static void teardown(void)
{
    close(fds[0]);
    if (fds[1] >= 0) {
        close(fds[1]);
    }
    apr_pool_destroy(pool);
}

/* The bytes of a frame, laid out by hand as ad_wire.h describes it. */
static char *frame(apr_uint32_t type, const char *payload, apr_size_t len, apr_size_t *flen)
{
    unsigned char *f = apr_palloc(pool, AD_WIRE_HEADER_LEN + len);
    apr_uint32_t words[3];
    int i;

    words[0] = AD_WIRE_MAGIC;
    words[1] = type;
    words[2] = (apr_uint32_t)len;
    for (i = 0; i < 3; i++) {
        f[4 * i] = (unsigned char)(words[i] >> 24);
        f[4 * i + 1] = (unsigned char)(words[i] >> 16);
        f[4 * i + 2] = (unsigned char)(words[i] >> 8);
        f[4 * i + 3] = (unsigned char)words[i];
    }
    memcpy(f + AD_WIRE_HEADER_LEN, payload, len);
    *flen = AD_WIRE_HEADER_LEN + len;
    return (char *)f;
}

typedef struct {
    const char *buf;
    apr_size_t len;
    apr_size_t cuts[4]; /* write up to each offset, then pause */
} trickle_t;

static void *APR_THREAD_FUNC trickle_main(apr_thread_t *t, void *data)
{
    trickle_t *tr = data;
    apr_size_t at = 0;
    int i;

    for (i = 0; i < 4 && tr->cuts[i]; i++) {
        ck_assert_int_eq(write(fds[1], tr->buf + at, tr->cuts[i] - at), (int)(tr->cuts[i] - at));
        at = tr->cuts[i];
        usleep(20000);
    }
    ck_assert_int_eq(write(fds[1], tr->buf + at, tr->len - at), (int)(tr->len - at));
    /* a plain return, not apr_thread_exit: that one trips ASan's
     * sigaltstack false positive (google/sanitizers#1399) under a pool
     * debugging APR, and no caller reads the status */
    (void)t;
    return NULL;
}

static void expect_frame(apr_uint32_t want_type, const char *want, apr_size_t want_len)
{
    apr_uint32_t type;
    char *payload;
    apr_size_t len;

    ck_assert_int_eq(ad_wire_recv(reader, pool, &type, &payload, &len), APR_SUCCESS);
    ck_assert_uint_eq(type, want_type);
    ck_assert_uint_eq(len, want_len);
    ck_assert_mem_eq(payload, want, want_len);
    ck_assert_int_eq(payload[len], '\0');
}

START_TEST(a_reply_in_one_piece)
{
    apr_size_t flen;
    char *f = frame(7, "\0\0\0\0stored", 10, &flen);

    ck_assert_int_eq(write(fds[1], f, flen), (int)flen);
    expect_frame(7, "\0\0\0\0stored", 10);
}
END_TEST

START_TEST(a_frame_cut_inside_its_header_and_past_the_first_read)
{
    apr_size_t plen = 3 * AD_WIRE_FIRST_READ + 17, flen;
    char *payload = apr_palloc(pool, plen);
    apr_thread_t *t;
    apr_status_t trv;
    trickle_t tr;
    apr_size_t i;

    for (i = 0; i < plen; i++) {
        payload[i] = (char)('a' + i % 26);
    }
    tr.buf = frame(9, payload, plen, &flen);
    tr.len = flen;
    tr.cuts[0] = 5;                      /* inside the header */
    tr.cuts[1] = AD_WIRE_HEADER_LEN + 1; /* one payload byte */
    tr.cuts[2] = AD_WIRE_FIRST_READ + 40;
    tr.cuts[3] = 0;
    ck_assert_int_eq(apr_thread_create(&t, NULL, trickle_main, &tr, pool), APR_SUCCESS);
    expect_frame(9, payload, plen);
    apr_thread_join(&trv, t);
}
END_TEST

START_TEST(bytes_past_the_frame_are_refused)
{
    apr_size_t flen;
    char *f = frame(7, "ok", 2, &flen);
    apr_uint32_t type;
    char *payload;
    apr_size_t len;

    ck_assert_int_eq(write(fds[1], f, flen), (int)flen);
    ck_assert_int_eq(write(fds[1], f, flen), (int)flen);
    ck_assert_int_eq(ad_wire_recv(reader, pool, &type, &payload, &len), APR_EINVAL);
}
END_TEST

/* Its length would wrap in the header, or the peer refuse it: not sent. */
START_TEST(an_oversized_frame_is_not_sent)
{
    static const char payload[1];

    ck_assert_int_eq(ad_wire_send(NULL, 1, payload, (apr_size_t)AD_WIRE_MAX_PAYLOAD + 1),
                     APR_EINVAL);
}
END_TEST

/* A STORE payload laid out by hand: count, then length and bytes of each. */
static char *blobs_payload(const apr_array_header_t *blobs, apr_size_t *plen)
{
    apr_size_t len = 4, off = 4;
    unsigned char *b;
    int i;

    for (i = 0; i < blobs->nelts; i++) {
        len += 4 + APR_ARRAY_IDX(blobs, i, ad_blob_t).len;
    }
    b = apr_palloc(pool, len);
    b[0] = b[1] = 0;
    b[2] = (unsigned char)(blobs->nelts >> 8);
    b[3] = (unsigned char)blobs->nelts;
    for (i = 0; i < blobs->nelts; i++) {
        const ad_blob_t *x = &APR_ARRAY_IDX(blobs, i, ad_blob_t);
        b[off] = (unsigned char)(x->len >> 24);
        b[off + 1] = (unsigned char)(x->len >> 16);
        b[off + 2] = (unsigned char)(x->len >> 8);
        b[off + 3] = (unsigned char)x->len;
        memcpy(b + off + 4, x->data, x->len);
        off += 4 + x->len;
    }
    *plen = len;
    return (char *)b;
}

/* n records of varied lengths (some empty), each byte telling its place. */
static apr_array_header_t *some_blobs(int n)
{
    apr_array_header_t *a = apr_array_make(pool, n, sizeof(ad_blob_t));
    int i;
    apr_size_t j;

    for (i = 0; i < n; i++) {
        ad_blob_t *b = apr_array_push(a);
        b->len = (apr_size_t)(i * 997) % 3001;
        b->data = apr_palloc(pool, b->len + 1);
        for (j = 0; j < b->len; j++) {
            b->data[j] = (char)(i * 31 + j);
        }
        b->entry = i;
    }
    return a;
}

typedef struct {
    apr_socket_t *s;
    const apr_array_header_t *blobs;
    apr_status_t rv;
} sender_t;

static void *APR_THREAD_FUNC sender_main(apr_thread_t *t, void *data)
{
    sender_t *sd = data;
    apr_pool_t *p;

    apr_pool_create(&p, NULL);
    sd->rv = ad_wire_send_blobs(sd->s, p, AD_MSG_STORE, sd->blobs);
    if (sd->rv != APR_SUCCESS) {
        shutdown(fds[1], SHUT_WR); /* the reader then fails, not waits */
    }
    apr_pool_destroy(p);
    /* a plain return, as trickle_main's */
    (void)t;
    return NULL;
}

/* Records sent from where they lie, as one frame: the bytes are those of
 * the layout, however the kernel cuts the writes (a small send buffer of a
 * socket that does not block, so each writev takes only what fits) and
 * beyond what one writev takes (more than 512 parts). */
static void records_round_trip(int n, int sndbuf)
{
    apr_array_header_t *blobs = some_blobs(n), *back;
    apr_socket_t *writer = NULL;
    apr_thread_t *t;
    apr_status_t trv;
    sender_t sd;
    apr_uint32_t type;
    apr_size_t want_len, len;
    char *want = blobs_payload(blobs, &want_len), *payload;
    int i;

    if (sndbuf) {
        ck_assert_int_eq(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    }
    apr_os_sock_put(&writer, &fds[1], pool);
    if (sndbuf) {
        /* non-blocking under APR's timeout: each writev takes what fits */
        apr_socket_timeout_set(writer, apr_time_from_sec(10));
    }
    sd.s = writer;
    sd.blobs = blobs;
    sd.rv = APR_EGENERAL;
    ck_assert_int_eq(apr_thread_create(&t, NULL, sender_main, &sd, pool), APR_SUCCESS);
    ck_assert_int_eq(ad_wire_recv(reader, pool, &type, &payload, &len), APR_SUCCESS);
    apr_thread_join(&trv, t);
    ck_assert_int_eq(sd.rv, APR_SUCCESS);
    ck_assert_uint_eq(type, AD_MSG_STORE);
    ck_assert_uint_eq(len, want_len);
    ck_assert_mem_eq(payload, want, len);
    ck_assert_int_eq(ad_wire_unpack_blobs(pool, payload, len, &back), APR_SUCCESS);
    ck_assert_int_eq(back->nelts, n);
    for (i = 0; i < n; i++) {
        const ad_blob_t *a = &APR_ARRAY_IDX(blobs, i, ad_blob_t);
        const ad_blob_t *b = &APR_ARRAY_IDX(back, i, ad_blob_t);
        ck_assert_uint_eq(a->len, b->len);
        ck_assert_mem_eq(a->data, b->data, a->len);
    }
}

START_TEST(records_go_out_as_one_frame)
{
    records_round_trip(3, 0);
}
END_TEST

START_TEST(records_past_the_send_buffer_and_one_writev)
{
    records_round_trip(700, 4096);
}
END_TEST

START_TEST(no_records_is_a_count_of_zero)
{
    records_round_trip(0, 0);
}
END_TEST

/* Past the limit nothing is sent (the lengths are checked, not the bytes). */
START_TEST(oversized_records_are_not_sent)
{
    apr_array_header_t *blobs = apr_array_make(pool, 2, sizeof(ad_blob_t));
    static char byte;
    apr_size_t len;
    ad_blob_t *b = apr_array_push(blobs);

    b->data = &byte;
    b->len = AD_WIRE_MAX_PAYLOAD / 2;
    b = apr_array_push(blobs);
    b->data = &byte;
    b->len = AD_WIRE_MAX_PAYLOAD / 2;
    ck_assert_int_eq(ad_wire_blobs_size(blobs, &len), APR_ENOSPC);
    ck_assert_int_eq(ad_wire_send_blobs(NULL, pool, AD_MSG_STORE, blobs), APR_ENOSPC);
    blobs->nelts = 1;
    ck_assert_int_eq(ad_wire_blobs_size(blobs, &len), APR_SUCCESS);
    ck_assert_uint_eq(len, 4 + 4 + AD_WIRE_MAX_PAYLOAD / 2);
}
END_TEST

START_TEST(a_peer_gone_mid_header_is_eof)
{
    apr_size_t flen;
    char *f = frame(7, "ok", 2, &flen);
    apr_uint32_t type;
    char *payload;
    apr_size_t len;

    ck_assert_int_eq(write(fds[1], f, 6), 6);
    close(fds[1]);
    fds[1] = -1;
    ck_assert_int_eq(ad_wire_recv(reader, pool, &type, &payload, &len), APR_EOF);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("recv");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_reply_in_one_piece);
    tcase_add_test(tc, a_frame_cut_inside_its_header_and_past_the_first_read);
    tcase_add_test(tc, bytes_past_the_frame_are_refused);
    tcase_add_test(tc, a_peer_gone_mid_header_is_eof);
    tcase_add_test(tc, an_oversized_frame_is_not_sent);
    tcase_add_test(tc, records_go_out_as_one_frame);
    tcase_add_test(tc, records_past_the_send_buffer_and_one_writev);
    tcase_add_test(tc, no_records_is_a_count_of_zero);
    tcase_add_test(tc, oversized_records_are_not_sent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
