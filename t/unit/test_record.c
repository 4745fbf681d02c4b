/* Record codec: round trips, binary safety, and detection of every torn or
 * corrupted form (a damaged record must never decode). */
#include <check.h>
#include <string.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "ad_record.h"
#include "unit_run.h"

static apr_pool_t *pool;

static void setup(void)
{
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

static ad_record_t *sample(void)
{
    ad_record_t *r = ad_record_make(pool);
    ad_header_t *h;
    static const char body[] = "{\"a\":1}\0binary\xff";

    r->attempts = 7;
    r->first_seen = APR_INT64_C(1700000000123456);
    r->next_due = APR_INT64_C(1700000009000000);
    r->event_id = "6f1c5b1e-0000-4000-8000-000000000001";
    r->rule = "rule-1";
    r->target = "t1";
    r->destination = "dest";
    r->method = "PUT";
    r->url = "https://example.com/a%20b?x=1";
    r->last_status = 503;
    r->last_error = "ERROR_FROM_TARGET";
    r->body = body;
    r->body_len = sizeof(body) - 1;
    h = apr_array_push(r->headers);
    h->name = "X-One";
    h->value = "1";
    h = apr_array_push(r->headers);
    h->name = "X-Two";
    h->value = "";
    return r;
}

START_TEST(round_trip)
{
    ad_record_t *r = sample(), *d;
    char *buf;
    apr_size_t len;

    ck_assert_int_eq(ad_record_encode(pool, r, &buf, &len), APR_SUCCESS);
    ck_assert_int_eq(ad_record_decode(pool, buf, len, &d), APR_SUCCESS);
    ck_assert_uint_eq(d->attempts, 7);
    ck_assert(d->first_seen == r->first_seen);
    ck_assert(d->next_due == r->next_due);
    ck_assert_str_eq(d->event_id, r->event_id);
    ck_assert_str_eq(d->rule, "rule-1");
    ck_assert_str_eq(d->target, "t1");
    ck_assert_str_eq(d->destination, "dest");
    ck_assert_str_eq(d->method, "PUT");
    ck_assert_str_eq(d->url, r->url);
    ck_assert_int_eq(d->last_status, 503);
    ck_assert_str_eq(d->last_error, "ERROR_FROM_TARGET");
    ck_assert_uint_eq(d->body_len, r->body_len);
    ck_assert(memcmp(d->body, r->body, r->body_len) == 0);
    ck_assert_int_eq(d->headers->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(d->headers, 0, ad_header_t).name, "X-One");
    ck_assert_str_eq(APR_ARRAY_IDX(d->headers, 1, ad_header_t).value, "");
}
END_TEST

START_TEST(empty_record)
{
    ad_record_t *r = ad_record_make(pool), *d;
    char *buf;
    apr_size_t len;

    ck_assert_int_eq(ad_record_encode(pool, r, &buf, &len), APR_SUCCESS);
    ck_assert_int_eq(ad_record_decode(pool, buf, len, &d), APR_SUCCESS);
    ck_assert_uint_eq(d->body_len, 0);
    ck_assert_int_eq(d->headers->nelts, 0);
}
END_TEST

START_TEST(every_truncation_is_rejected)
{
    ad_record_t *d;
    char *buf;
    apr_size_t len, cut;

    ad_record_encode(pool, sample(), &buf, &len);
    for (cut = 0; cut < len; cut++) {
        ck_assert_int_eq(ad_record_decode(pool, buf, cut, &d), APR_EINVAL);
    }
}
END_TEST

START_TEST(every_bit_flip_is_rejected)
{
    ad_record_t *d;
    char *buf, *copy;
    apr_size_t len, i;
    int bit;

    ad_record_encode(pool, sample(), &buf, &len);
    copy = apr_pmemdup(pool, buf, len);
    for (i = 0; i < len; i++) {
        for (bit = 0; bit < 8; bit++) {
            copy[i] ^= (char)(1 << bit);
            ck_assert_int_eq(ad_record_decode(pool, copy, len, &d), APR_EINVAL);
            copy[i] ^= (char)(1 << bit);
        }
    }
    ck_assert_int_eq(ad_record_decode(pool, copy, len, &d), APR_SUCCESS);
}
END_TEST

START_TEST(other_version_is_rejected)
{
    ad_record_t *d;
    char *buf;
    apr_size_t len;

    ad_record_encode(pool, sample(), &buf, &len);
    buf[3] = AD_RECORD_VERSION + 1;
    ck_assert_int_eq(ad_record_decode(pool, buf, len, &d), APR_EINVAL);
    ck_assert_int_eq(ad_record_decode(pool, NULL, 0, &d), APR_EINVAL);
}
END_TEST

START_TEST(oversize_is_refused)
{
    ad_record_t *r = ad_record_make(pool);
    char *buf;
    apr_size_t len;

    r->body_len = AD_RECORD_MAX_SIZE + 1;
    r->body = apr_pcalloc(pool, r->body_len);
    ck_assert_int_eq(ad_record_encode(pool, r, &buf, &len), APR_ENOSPC);
}
END_TEST

START_TEST(crc32_known_value)
{
    /* The IEEE CRC-32 check value of "123456789". */
    ck_assert_uint_eq(ad_crc32(0, "123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(ad_crc32(ad_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}
END_TEST

typedef apr_uint32_t crc_fn(apr_uint32_t crc, const void *data, apr_size_t len);

/* fast must give reference's values for every length and start alignment,
 * also when a CRC is continued across pieces. */
static void crc_paths_agree(crc_fn *fast, crc_fn *reference)
{
    unsigned char buf[4096 + 8];
    apr_uint32_t x = 12345;
    apr_size_t len, off, i;

    for (i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    for (off = 0; off < 8; off++) {
        for (len = 0; len <= 300; len++) {
            ck_assert_uint_eq(fast(0, buf + off, len), reference(0, buf + off, len));
        }
        ck_assert_uint_eq(fast(0, buf + off, 4096), reference(0, buf + off, 4096));
    }
    for (len = 0; len <= 64; len++) {
        ck_assert_uint_eq(fast(fast(0, buf, len), buf + len, 200 - len), reference(0, buf, 200));
    }
}

/* The slice-by-8 CRC must give the byte-wise loop's values (stores written
 * before it must still load). */
START_TEST(crc32_fast_equals_simple)
{
    crc_paths_agree(ad_crc32, ad_crc32_simple);
    ck_assert_uint_eq(ad_crc32_simple(0, "123456789", 9), 0xCBF43926u);
}
END_TEST

/* CRC-32C, by the CPU's instruction or by tables, gives the check value
 * and the same CRC for every length, alignment and split. */
START_TEST(crc32c_known_value_and_paths_agree)
{
    ck_assert_uint_eq(ad_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(ad_crc32c_tables(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(ad_crc32c(ad_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    crc_paths_agree(ad_crc32c, ad_crc32c_tables);
}
END_TEST

static void put_crc(char *at, apr_uint32_t crc)
{
    at[0] = (char)(crc >> 24);
    at[1] = (char)(crc >> 16);
    at[2] = (char)(crc >> 8);
    at[3] = (char)crc;
}

/* Stores written before version 2 hold version 1 records (CRC-32, IEEE):
 * they still load; each version's CRC is checked with its own polynomial. */
START_TEST(version_1_records_still_load)
{
    ad_record_t *d;
    char *buf;
    apr_size_t len;

    ad_record_encode(pool, sample(), &buf, &len);
    ck_assert_int_eq(buf[3], 2);
    ck_assert_uint_eq(ad_crc32c(0, buf, len - 4),
                      ((apr_uint32_t)(unsigned char)buf[len - 4] << 24) |
                          ((apr_uint32_t)(unsigned char)buf[len - 3] << 16) |
                          ((apr_uint32_t)(unsigned char)buf[len - 2] << 8) |
                          (unsigned char)buf[len - 1]);
    buf[3] = 1;
    ck_assert_int_eq(ad_record_decode(pool, buf, len, &d), APR_EINVAL); /* CRC-32C: not v1's */
    put_crc(buf + len - 4, ad_crc32(0, buf, len - 4));
    ck_assert_int_eq(ad_record_decode(pool, buf, len, &d), APR_SUCCESS);
    ck_assert_str_eq(d->rule, sample()->rule);
    ck_assert_uint_eq(d->body_len, sample()->body_len);
    buf[3] = 2;
    put_crc(buf + len - 4, ad_crc32(0, buf, len - 4));
    ck_assert_int_eq(ad_record_decode(pool, buf, len, &d), APR_EINVAL); /* IEEE: not v2's */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("codec");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, empty_record);
    tcase_add_test(tc, every_truncation_is_rejected);
    tcase_add_test(tc, every_bit_flip_is_rejected);
    tcase_add_test(tc, other_version_is_rejected);
    tcase_add_test(tc, oversize_is_refused);
    tcase_add_test(tc, crc32_known_value);
    tcase_add_test(tc, crc32_fast_equals_simple);
    tcase_add_test(tc, crc32c_known_value_and_paths_agree);
    tcase_add_test(tc, version_1_records_still_load);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
