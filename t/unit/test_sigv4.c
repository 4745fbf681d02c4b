/* Unit tests for ad_sigv4: AWS's own SigV4 test suite, requests exactly as
 * the AWS CLI v1, v2 and the JS SDK v3 send them, and every refusal with
 * the status, error type and text AWS gives.
 *
 * Where the expected signatures come from:
 *  - suite: the AWS Signature Version 4 test suite as published in
 *    awslabs/aws-c-auth (tests/aws-signing-test-suite/v4), credentials
 *    AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1,
 *    service "service", 20150830T123600Z. Only the "normalize" cases: a
 *    non-S3 verifier always normalises the path.
 *  - v1: botocore 1.43.11 (aws-cli v1's signer), the whole client pipeline
 *    (session.create_client('events', endpoint_url=..., region_name=...),
 *    botocore.auth.get_current_datetime pinned to 2026-11-23 15:17:18, a
 *    'before-send' handler recording the request instead of sending it).
 *    Host and Accept-Encoding are added on the wire by urllib3, after
 *    signing, in the order aws-clients.md shows.
 *  - v2: /usr/bin/aws 2.9.19 --debug against a closed port: its
 *    CanonicalRequest/Signature log and the headers it sent.
 *  - js: @aws-sdk/client-eventbridge 3.967.0 (t/js), the whole client with
 *    Date.now pinned to 2026-11-23T15:18:21Z and a requestHandler that
 *    records the request.
 *  Every one was re-derived by a third, stdlib-only implementation:
 *      k = hmac("AWS4" + secret, date); k = hmac(k, region);
 *      k = hmac(k, service); k = hmac(k, "aws4_request")
 *      sig = hmac(k, "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n"
 *                 + sha256(method\nuri\nquery\nheaders\nsigned\nsha256(body)))
 *  (hashlib/hmac; header values trimmed, whitespace runs collapsed).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "ad_sigv4.h"
#include "unit_run.h"

#define AKID   "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

#define MISMATCH                                                                                   \
    "The request signature we calculated does not match the "                                      \
    "signature you provided. Check your AWS Secret Access Key and signing "                        \
    "method. Consult the service documentation for details."

static apr_pool_t *pool;

static void setup(void)
{
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

/* The key store: AKIDEXAMPLE and one more, with a different secret. */
static const char *lookup(void *baton, const char *akid)
{
    (void)baton;
    if (strcmp(akid, AKID) == 0) {
        return SECRET;
    }
    if (strcmp(akid, "AKIDOTHER") == 0) {
        return "some-other-secret";
    }
    return NULL;
}

static apr_time_t at(const char *amz_date)
{
    apr_time_exp_t e;
    apr_time_t t;

    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(sscanf(amz_date, "%4d%2d%2dT%2d%2d%2dZ", &e.tm_year, &e.tm_mon, &e.tm_mday,
                            &e.tm_hour, &e.tm_min, &e.tm_sec),
                     6);
    e.tm_year -= 1900;
    e.tm_mon -= 1;
    ck_assert_int_eq(apr_time_exp_gmt_get(&t, &e), APR_SUCCESS);
    return t;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

#define MAXH 16

typedef struct vec_t {
    const char *name;
    const char *method;
    const char *path;
    const char *query;
    const char *headers[MAXH][2]; /* as sent; ends at a NULL name */
    const char *body;
    const char *date; /* X-Amz-Date */
    /* Suite cases only (NULL for captures, whose headers already carry
     * X-Amz-Date and Authorization): */
    const char *signed_headers;
    const char *signature;
} vec_t;

typedef struct req_t {
    ad_sigv4_request_t r;
    apr_array_header_t *h;
} req_t;

static void add_header(req_t *q, const char *name, const char *value)
{
    ad_sigv4_header_t *h = apr_array_push(q->h);
    h->name = name;
    h->value = value;
}

/* Replace the first header called name (any case), or add it. */
static void set_header(req_t *q, const char *name, const char *value)
{
    int i;

    for (i = 0; i < q->h->nelts; i++) {
        ad_sigv4_header_t *h = &APR_ARRAY_IDX(q->h, i, ad_sigv4_header_t);
        if (strcasecmp(h->name, name) == 0) {
            h->value = value;
            return;
        }
    }
    add_header(q, name, value);
}

static void del_header(req_t *q, const char *name)
{
    int i, j = 0;

    for (i = 0; i < q->h->nelts; i++) {
        ad_sigv4_header_t h = APR_ARRAY_IDX(q->h, i, ad_sigv4_header_t);
        if (strcasecmp(h.name, name) != 0) {
            APR_ARRAY_IDX(q->h, j++, ad_sigv4_header_t) = h;
        }
    }
    q->h->nelts = j;
}

static req_t *build(const vec_t *v)
{
    req_t *q = apr_pcalloc(pool, sizeof(*q));
    int i;

    q->h = apr_array_make(pool, MAXH, sizeof(ad_sigv4_header_t));
    for (i = 0; i < MAXH && v->headers[i][0]; i++) {
        add_header(q, v->headers[i][0], v->headers[i][1]);
    }
    if (v->signature) {
        add_header(q, "X-Amz-Date", v->date);
        add_header(q, "Authorization",
                   apr_psprintf(pool,
                                "AWS4-HMAC-SHA256 Credential=" AKID "/%.8s/us-east-1/service/"
                                "aws4_request, SignedHeaders=%s, Signature=%s",
                                v->date, v->signed_headers, v->signature));
    }
    q->r.method = v->method;
    q->r.path = v->path;
    q->r.query = v->query;
    q->r.headers = q->h;
    q->r.body = v->body;
    q->r.body_len = v->body ? strlen(v->body) : 0;
    return q;
}

typedef struct outcome_t {
    int rc;
    int status;
    const char *type;
    const char *message;
} outcome_t;

static outcome_t verify_in(const req_t *q, const char *service, const char *region, apr_time_t now)
{
    outcome_t o;

    o.rc = ad_sigv4_verify(pool, &q->r, service, region, lookup, NULL, now, &o.status, &o.type,
                           &o.message);
    return o;
}

static void assert_ok(outcome_t o)
{
    ck_assert_msg(o.rc == AD_SIGV4_OK, "rc %d: %s: %s", o.rc, o.type, o.message);
    ck_assert_int_eq(o.status, 200);
    ck_assert_ptr_null(o.type);
    ck_assert_ptr_null(o.message);
}

static void assert_fail(outcome_t o, int rc, const char *type, const char *message)
{
    ck_assert_msg(o.rc == rc, "rc %d, expected %d (%s: %s)", o.rc, rc, o.type, o.message);
    ck_assert_int_eq(o.status, 400);
    ck_assert_str_eq(o.type, type);
    ck_assert_str_eq(o.message, message);
}

/* A signature mismatch: AWS's text, then the canonical request and string
 * to sign it computed (Coral services append both, to debug a client). */
static void assert_mismatch(outcome_t o)
{
    const char *head = MISMATCH "\n\nThe Canonical String for this request "
                                "should have been\n'";

    ck_assert_msg(o.rc == AD_SIGV4_MISMATCH, "rc %d (%s: %s)", o.rc, o.type, o.message);
    ck_assert_int_eq(o.status, 400);
    ck_assert_str_eq(o.type, "InvalidSignatureException");
    ck_assert_msg(strncmp(o.message, head, strlen(head)) == 0, "message: %s", o.message);
    ck_assert_ptr_nonnull(strstr(o.message, "'\n\nThe String-to-Sign should have "
                                            "been\n'AWS4-HMAC-SHA256\n"));
}

/* The canonical request a mismatch message shows, and the last line of
 * its string to sign (the hash of the canonical request, or the marker). */
static void mismatch_parts(const char *msg, char **creq, char **hash_line)
{
    const char *head = "should have been\n'", *tail = "'\n\nThe String-to-Sign";
    const char *c = strstr(msg, head), *e = strstr(msg, tail), *h;

    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(e);
    c += strlen(head);
    *creq = apr_pstrmemdup(pool, c, (apr_size_t)(e - c));
    h = msg + strlen(msg) - 2; /* the closing "'\n" */
    ck_assert_msg(strcmp(h, "'\n") == 0, "%s", msg);
    while (h > msg && h[-1] != '\n') {
        h--;
    }
    *hash_line = apr_pstrmemdup(pool, h, (apr_size_t)(msg + strlen(msg) - 2 - h));
}

static const char *sha256_of(const char *s)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    char *hex = apr_palloc(pool, 2 * sizeof(d) + 1);
    apr_size_t i;

    SHA256((const unsigned char *)s, strlen(s), d);
    for (i = 0; i < sizeof(d); i++) {
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    }
    return hex;
}

/* ------------------------------------------------------------------ */
/* (1) The AWS SigV4 test suite                                        */
/* ------------------------------------------------------------------ */

#define SUITE_DATE "20150830T123600Z"
#define SUITE_HOST                                                                                 \
    {                                                                                              \
        "Host", "example.amazonaws.com"                                                            \
    }

static const vec_t suite[] = {
    {"get-vanilla",
     "GET",
     "/",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"post-vanilla",
     "POST",
     "/",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-header-key-case",
     "POST",
     "/",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-vanilla-query",
     "POST",
     "/",
     "Param1=value1",
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {"post-vanilla-empty-query-value",
     "POST",
     "/",
     "Param1=value1",
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {"get-vanilla-empty-query-key",
     "GET",
     "/",
     "Param1=value1",
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {"get-vanilla-query-order-key-case",
     "GET",
     "/",
     "Param2=value2&Param1=value1",
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-query-order-encoded",
     "GET",
     "/",
     "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
    /* From the 2015 edition of the suite (aws-sig-v4-test-suite.zip);
     * botocore's SigV4Auth gives the same signature. */
    {"get-vanilla-query-order-key",
     "GET",
     "/",
     "Param1=value2&Param1=Value1",
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
    /* Not the suite's: botocore's SigV4Auth over the same key and time
     * (repeated and valueless keys sort as "a=&a=1&b=2&c="). */
    {"botocore-query-repeated-and-bare",
     "GET",
     "/",
     "b=2&a=1&a=&c",
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "1bd3576446057c09627720f8d8cd5baa09c1169930cbd212646c51c39cb733f5"},
    {"get-vanilla-query-unreserved",
     "GET",
     "/",
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
    {"get-vanilla-utf8-query",
     "GET",
     "/",
     "\xe1\x88\xb4=bar",
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {"get-unreserved",
     "GET",
     "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {"get-utf8",
     "GET",
     "/\xe1\x88\xb4",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
    {"get-space-normalized",
     "GET",
     "/example space/",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
    {"get-relative-normalized",
     "GET",
     "/example/..",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-relative-relative-normalized",
     "GET",
     "/example1/example2/../..",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash-dot-slash-normalized",
     "GET",
     "/./",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash-normalized",
     "GET",
     "//",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash-pointless-dot-normalized",
     "GET",
     "/./example",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
    {"get-slashes-normalized",
     "GET",
     "//example//",
     NULL,
     {SUITE_HOST},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
    {"get-header-key-duplicate",
     "GET",
     "/",
     NULL,
     {SUITE_HOST, {"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
     NULL,
     SUITE_DATE,
     "host;my-header1;x-amz-date",
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"get-header-value-order",
     "GET",
     "/",
     NULL,
     {SUITE_HOST,
      {"My-Header1", "value4"},
      {"My-Header1", "value1"},
      {"My-Header1", "value3"},
      {"My-Header1", "value2"}},
     NULL,
     SUITE_DATE,
     "host;my-header1;x-amz-date",
     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
    {"get-header-value-multiline",
     "GET",
     "/",
     NULL,
     {SUITE_HOST, {"My-Header1", "value1\n  value2\n     value3"}},
     NULL,
     SUITE_DATE,
     "host;my-header1;x-amz-date",
     "cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd"},
    {"get-header-value-trim",
     "GET",
     "/",
     NULL,
     {SUITE_HOST, {"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
     NULL,
     SUITE_DATE,
     "host;my-header1;my-header2;x-amz-date",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"post-header-key-sort",
     "POST",
     "/",
     NULL,
     {SUITE_HOST, {"My-Header1", "value1"}},
     NULL,
     SUITE_DATE,
     "host;my-header1;x-amz-date",
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
    {"post-header-value-case",
     "POST",
     "/",
     NULL,
     {SUITE_HOST, {"My-Header1", "VALUE1"}},
     NULL,
     SUITE_DATE,
     "host;my-header1;x-amz-date",
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
    {"get-vanilla-with-session-token",
     "GET",
     "/",
     NULL,
     {SUITE_HOST,
      {"X-Amz-Security-Token", "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"}},
     NULL,
     SUITE_DATE,
     "host;x-amz-date;x-amz-security-token",
     "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"},
    /* The token header is added after signing, so it is sent unsigned. */
    {"post-sts-header-after",
     "POST",
     "/",
     NULL,
     {SUITE_HOST, {"X-Amz-Security-Token", "AQoDYXdzEPT//////////wEXAMPLE"}},
     NULL,
     SUITE_DATE,
     "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-sts-header-before",
     "POST",
     "/",
     NULL,
     {SUITE_HOST,
      {"X-Amz-Security-Token",
       "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHG"
       "BuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1N"
       "tBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcH"
       "NVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn"
       "9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="}},
     NULL,
     SUITE_DATE,
     "host;x-amz-date;x-amz-security-token",
     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
    {"post-x-www-form-urlencoded",
     "POST",
     "/",
     NULL,
     {{"Content-Type", "application/x-www-form-urlencoded"},
      SUITE_HOST,
      {"Content-Length", "13"},
      {"X-Amz-Content-Sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"}},
     "Param1=value1",
     SUITE_DATE,
     "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
     "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"},
    {"post-x-www-form-urlencoded-parameters",
     "POST",
     "/",
     NULL,
     {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
      SUITE_HOST,
      {"Content-Length", "13"},
      {"X-Amz-Content-Sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"}},
     "Param1=value1",
     SUITE_DATE,
     "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
     "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422"},
};
#define NSUITE ((int)(sizeof(suite) / sizeof(suite[0])))

START_TEST(aws_test_suite)
{
    const vec_t *v = &suite[_i];
    outcome_t o = verify_in(build(v), "service", "us-east-1", at(v->date));

    ck_assert_msg(o.rc == AD_SIGV4_OK, "%s: rc %d: %s", v->name, o.rc, o.message);
    assert_ok(o);
}
END_TEST

/* ------------------------------------------------------------------ */
/* (2) Requests as the AWS clients send them                           */
/* ------------------------------------------------------------------ */

#define V1_DATE "20261123T151718Z"
#define V2_DATE "20261123T172357Z"
#define JS_DATE "20261123T151821Z"
#define V1_UA                                                                                      \
    "aws-cli/1.45.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v669 "                         \
    "md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/g,D,N,b,Z "                             \
    "cfg/retry-mode#legacy botocore/1.43.11"
#define JS_UA                                                                                      \
    "aws-sdk-js/3.967.0 ua/2.1 os/linux#6.18.44-fc-v669 lang/js "                                  \
    "md/nodejs#20.20.2 api/eventbridge#3.967.0 m/N,E,e"
#define PY_BODY                                                                                    \
    "{\"Entries\": [{\"Source\": \"com.example.orders\", "                                         \
    "\"DetailType\": \"OrderCreated\", \"Detail\": \"{\\\"id\\\":1}\"}]}"
#define JS_BODY                                                                                    \
    "{\"Entries\":[{\"Source\":\"com.example.orders\","                                            \
    "\"DetailType\":\"OrderCreated\",\"Detail\":\"{\\\"id\\\":1}\"}]}"
#define JS_SIGNED                                                                                  \
    "amz-sdk-invocation-id;amz-sdk-request;content-length;"                                        \
    "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target;x-amz-user-agent"

enum { V1_PUTEVENTS, V1_SLASH_EU, V1_SPACE, V2_PUTEVENTS, JS_PUTEVENTS, JS_ROOT_EU };

static const vec_t clients[] = {
    [V1_PUTEVENTS] = {"v1 PutEvents, endpoint .../events",
                      "POST",
                      "/events",
                      NULL,
                      {{"Host", "127.0.0.1:44371"},
                       {"Accept-Encoding", "identity"},
                       {"X-Amz-Target", "AWSEvents.PutEvents"},
                       {"Content-Type", "application/x-amz-json-1.1"},
                       {"User-Agent", V1_UA},
                       {"X-Amz-Date", V1_DATE},
                       {"Authorization",
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/"
                        "us-east-1/events/aws4_request, SignedHeaders=content-type;host;"
                        "x-amz-date;x-amz-target, Signature="
                        "a9992db25b33db763b693daec2214092ae53f15ec72127901d84850bc819db2a"},
                       {"amz-sdk-invocation-id", "9b03bfdd-208b-40ae-bc80-e71a7de7af19"},
                       {"amz-sdk-request", "attempt=1"},
                       {"Content-Length", "101"}},
                      PY_BODY,
                      V1_DATE,
                      NULL,
                      NULL},
    [V1_SLASH_EU] = {"v1 ListRules, endpoint .../events/, eu-west-1",
                     "POST",
                     "/events/",
                     NULL,
                     {{"Host", "127.0.0.1:44371"},
                      {"Accept-Encoding", "identity"},
                      {"X-Amz-Target", "AWSEvents.ListRules"},
                      {"Content-Type", "application/x-amz-json-1.1"},
                      {"User-Agent", V1_UA},
                      {"X-Amz-Date", V1_DATE},
                      {"Authorization",
                       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/"
                       "eu-west-1/events/aws4_request, SignedHeaders=content-type;host;"
                       "x-amz-date;x-amz-target, Signature="
                       "4b057a28ecec7f232ab5e5b0daae05639b7f1ca30c0c6e5a2957e0d32c4ea520"},
                      {"amz-sdk-invocation-id", "eebf3a8a-a26e-4d28-b486-aafa0c6b6503"},
                      {"amz-sdk-request", "attempt=1"},
                      {"Content-Length", "2"}},
                     "{}",
                     V1_DATE,
                     NULL,
                     NULL},
    /* The path as sent is "/a/b%20c/"; it is signed as "/a/b%2520c/". */
    [V1_SPACE] = {"v1 DescribeRule, escaped path, Host localhost",
                  "POST",
                  "/a/b%20c/",
                  NULL,
                  {{"Host", "localhost:44371"},
                   {"Accept-Encoding", "identity"},
                   {"X-Amz-Target", "AWSEvents.DescribeRule"},
                   {"Content-Type", "application/x-amz-json-1.1"},
                   {"User-Agent", V1_UA},
                   {"X-Amz-Date", V1_DATE},
                   {"Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/"
                    "us-east-1/events/aws4_request, SignedHeaders=content-type;host;"
                    "x-amz-date;x-amz-target, Signature="
                    "73abe6ebb85b7a84f2199221cf63a9a4157302bee6f5c81c4c59430eaecafeb3"},
                   {"amz-sdk-invocation-id", "cc3c9c40-617b-4a41-bc40-a9eb1bf6cb2d"},
                   {"amz-sdk-request", "attempt=1"},
                   {"Content-Length", "44"}},
                  "{\"Name\": \"myrule\", \"EventBusName\": \"my-bus\"}",
                  V1_DATE,
                  NULL,
                  NULL},
    [V2_PUTEVENTS] = {"v2 PutEvents, endpoint .../events",
                      "POST",
                      "/events",
                      NULL,
                      {{"Host", "127.0.0.1:9"},
                       {"Accept-Encoding", "identity"},
                       {"X-Amz-Target", "AWSEvents.PutEvents"},
                       {"Content-Type", "application/x-amz-json-1.1"},
                       {"User-Agent",
                        "aws-cli/2.9.19 Python/3.11.2 Linux/6.18.44-fc-v669 "
                        "source/x86_64.debian.12 prompt/off command/events.put-events"},
                       {"X-Amz-Date", V2_DATE},
                       {"Authorization",
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/"
                        "us-east-1/events/aws4_request, SignedHeaders=content-type;host;"
                        "x-amz-date;x-amz-target, Signature="
                        "db4eac0ed3cb7cde7a0ae75d34fbc99288747aac08809d80dc331f61ea6b3567"},
                       {"Content-Length", "101"}},
                      PY_BODY,
                      V2_DATE,
                      NULL,
                      NULL},
    /* Same endpoint URL as v1's first case: the SDK sends "/events/". */
    [JS_PUTEVENTS] = {"js PutEvents, endpoint .../events",
                      "POST",
                      "/events/",
                      NULL,
                      {{"content-type", "application/x-amz-json-1.1"},
                       {"x-amz-target", "AWSEvents.PutEvents"},
                       {"content-length", "95"},
                       {"x-amz-user-agent", "aws-sdk-js/3.967.0"},
                       {"user-agent", JS_UA},
                       {"host", "127.0.0.1:44371"},
                       {"amz-sdk-invocation-id", "0e1647cf-3c11-4d39-8cd6-7011b8b80964"},
                       {"amz-sdk-request", "attempt=1; max=3"},
                       {"x-amz-date", JS_DATE},
                       {"x-amz-content-sha256",
                        "7c2910dcf9076590c6dbb44313a7aa63b241a5756370c886a8e124f8b122b906"},
                       {"authorization",
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/"
                        "us-east-1/events/aws4_request, SignedHeaders=" JS_SIGNED ", Signature="
                        "7c6cbd830fae83376a55aea179416b610c5daaadcff48235293eb8b6c5b40cd1"},
                       {"Connection", "keep-alive"}},
                      JS_BODY,
                      JS_DATE,
                      NULL,
                      NULL},
    [JS_ROOT_EU] = {"js ListRules, endpoint http://h:p, eu-west-1",
                    "POST",
                    "/",
                    NULL,
                    {{"content-type", "application/x-amz-json-1.1"},
                     {"x-amz-target", "AWSEvents.ListRules"},
                     {"content-length", "2"},
                     {"x-amz-user-agent", "aws-sdk-js/3.967.0"},
                     {"user-agent", JS_UA},
                     {"host", "127.0.0.1:44371"},
                     {"amz-sdk-invocation-id", "9bbf4a41-b967-4441-8673-29b3e9006f5a"},
                     {"amz-sdk-request", "attempt=1; max=3"},
                     {"x-amz-date", JS_DATE},
                     {"x-amz-content-sha256",
                      "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
                     {"authorization",
                      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/"
                      "eu-west-1/events/aws4_request, SignedHeaders=" JS_SIGNED ", Signature="
                      "a1f65b42766693d9c78f1fc7f3f7141943e5c0146b377539dfa4ee89805a5fbf"},
                     {"Connection", "keep-alive"}},
                    "{}",
                    JS_DATE,
                    NULL,
                    NULL},
};
#define NCLIENTS ((int)(sizeof(clients) / sizeof(clients[0])))

/* A client request checked a few seconds after it was signed, as the
 * server would: any region accepted. */
static outcome_t verify_client(const req_t *q, const vec_t *v)
{
    return verify_in(q, "events", NULL, at(v->date) + apr_time_from_sec(3));
}

START_TEST(client_requests)
{
    const vec_t *v = &clients[_i];
    outcome_t o = verify_client(build(v), v);

    ck_assert_msg(o.rc == AD_SIGV4_OK, "%s: rc %d: %s", v->name, o.rc, o.message);
    assert_ok(o);
}
END_TEST

/* The server's own region, when it insists on one: us-east-1 passes, the
 * eu-west-1 clients get AWS's text for a foreign region. */
START_TEST(configured_region)
{
    const vec_t *v = &clients[V1_PUTEVENTS], *eu = &clients[V1_SLASH_EU];
    apr_time_t now = at(V1_DATE);

    assert_ok(verify_in(build(v), "events", "us-east-1", now));
    assert_fail(verify_in(build(eu), "events", "us-east-1", now), AD_SIGV4_INVALID,
                "InvalidSignatureException",
                "Credential should be scoped to a valid region, not 'eu-west-1'. ");
    assert_fail(verify_in(build(&clients[JS_ROOT_EU]), "events", "us-east-1", at(JS_DATE)),
                AD_SIGV4_INVALID, "InvalidSignatureException",
                "Credential should be scoped to a valid region, not 'eu-west-1'. ");
}
END_TEST

/* Headers that are not signed can change on the way (a proxy adding
 * Via, a new User-Agent); names are matched in any case. */
START_TEST(unsigned_headers_are_free)
{
    req_t *q = build(&clients[V1_PUTEVENTS]);
    int i;

    set_header(q, "User-Agent", "something else");
    set_header(q, "amz-sdk-request", "ttl=20261123T151818Z; attempt=2; max=5");
    add_header(q, "Via", "1.1 proxy");
    for (i = 0; i < q->h->nelts; i++) {
        ad_sigv4_header_t *h = &APR_ARRAY_IDX(q->h, i, ad_sigv4_header_t);
        if (strcmp(h->name, "X-Amz-Target") == 0) {
            h->name = "x-AMZ-target";
        }
    }
    assert_ok(verify_client(q, &clients[V1_PUTEVENTS]));
}
END_TEST

/* ------------------------------------------------------------------ */
/* (3) Refusals                                                        */
/* ------------------------------------------------------------------ */

#define INCOMPLETE "IncompleteSignatureException"
#define INVALID    "InvalidSignatureException"

static req_t *v1(void)
{
    return build(&clients[V1_PUTEVENTS]);
}

static outcome_t check_v1(req_t *q)
{
    return verify_client(q, &clients[V1_PUTEVENTS]);
}

START_TEST(missing_authorization)
{
    req_t *q = v1();

    del_header(q, "Authorization");
    assert_fail(check_v1(q), AD_SIGV4_MISSING_TOKEN, "MissingAuthenticationTokenException",
                "Missing Authentication Token");
    set_header(q, "Authorization", "  ");
    assert_fail(check_v1(q), AD_SIGV4_MISSING_TOKEN, "MissingAuthenticationTokenException",
                "Missing Authentication Token");
}
END_TEST

START_TEST(authorization_not_key_value)
{
    req_t *q = v1();
    const char *auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/"
                       "events/aws4_request, SignedHeaders, Signature=abc";

    set_header(q, "Authorization", auth);
    assert_fail(check_v1(q), AD_SIGV4_INCOMPLETE, INCOMPLETE,
                apr_pstrcat(pool,
                            "'SignedHeaders' not a valid key=value pair (missing equal-sign) in "
                            "Authorization header: '",
                            auth, "'.", NULL));
}
END_TEST

START_TEST(authorization_missing_parameters)
{
    req_t *q = v1();
    const char *cred = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/"
                       "events/aws4_request";
    const char *basic = "Basic dXNlcjpwYXNzd29yZA==";

    set_header(q, "Authorization", cred);
    assert_fail(check_v1(q), AD_SIGV4_INCOMPLETE, INCOMPLETE,
                apr_pstrcat(pool,
                            "Authorization header requires 'Signature' parameter. "
                            "Authorization header requires 'SignedHeaders' parameter. "
                            "Authorization=",
                            cred, NULL));

    /* Not SigV4 at all: every parameter is missing. */
    set_header(q, "Authorization", basic);
    del_header(q, "X-Amz-Date");
    assert_fail(check_v1(q), AD_SIGV4_INCOMPLETE, INCOMPLETE,
                apr_pstrcat(pool,
                            "Authorization header requires 'Credential' parameter. "
                            "Authorization header requires 'Signature' parameter. "
                            "Authorization header requires 'SignedHeaders' parameter. "
                            "Authorization header requires existence of either a 'X-Amz-Date' "
                            "or a 'Date' header. Authorization=",
                            basic, NULL));
}
END_TEST

/* Whatever the Authorization header holds, the answer is a refusal. */
START_TEST(authorization_garbage)
{
    static const char *junk[] = {",,,", "AWS4-HMAC-SHA256", "=", "AWS4-HMAC-SHA256 =,=",
                                 "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, "
                                 "Signature="};
    int i;

    for (i = 0; i < (int)(sizeof(junk) / sizeof(junk[0])); i++) {
        req_t *q = v1();
        outcome_t o;

        set_header(q, "Authorization", junk[i]);
        o = check_v1(q);
        ck_assert_msg(o.rc == AD_SIGV4_INCOMPLETE, "%s: rc %d", junk[i], o.rc);
        ck_assert_str_eq(o.type, INCOMPLETE);
    }
}
END_TEST

START_TEST(missing_amz_date)
{
    req_t *q = v1();

    del_header(q, "X-Amz-Date");
    add_header(q, "Date", "Mon, 23 Nov 2026 15:17:18 GMT");
    assert_fail(check_v1(q), AD_SIGV4_INCOMPLETE, INCOMPLETE,
                apr_pstrcat(pool,
                            "Authorization header requires existence of either a 'X-Amz-Date' "
                            "or a 'Date' header. Authorization=",
                            clients[V1_PUTEVENTS].headers[6][1], NULL));
}
END_TEST

START_TEST(malformed_amz_date)
{
    req_t *q = v1();
    /* The last three are days no month has (APR would roll them over). */
    static const char *bad[] = {"2026-11-23T15:17:18Z", "20261123T151718",  "20261323T151718Z",
                                "20261123T256000Z",     "2026112XT151718Z", "20261131T151718Z",
                                "20260229T151718Z",     "21000229T151718Z"};
    int i;

    for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
        set_header(q, "X-Amz-Date", bad[i]);
        assert_fail(check_v1(q), AD_SIGV4_INCOMPLETE, INCOMPLETE,
                    apr_pstrcat(pool, "Date must be in ISO-8601 'basic format'. Got '", bad[i],
                                "'. See http://en.wikipedia.org/wiki/ISO_8601", NULL));
    }
}
END_TEST

/* 15 minutes either way is still fine; one second more is not. */
START_TEST(clock_skew)
{
    req_t *q = v1();
    apr_time_t signed_at = at(V1_DATE), fifteen = apr_time_from_sec(15 * 60);

    assert_ok(verify_in(q, "events", NULL, signed_at + fifteen));
    assert_ok(verify_in(q, "events", NULL, signed_at - fifteen));
    /* The server's clock's fraction of a second does not count. */
    assert_ok(verify_in(q, "events", NULL, signed_at + fifteen + 999999));
    assert_fail(verify_in(q, "events", NULL, signed_at + fifteen + apr_time_from_sec(1)),
                AD_SIGV4_EXPIRED, INVALID,
                "Signature expired: 20261123T151718Z is now earlier than "
                "20261123T151719Z (20261123T153219Z - 15 min.)");
    assert_fail(verify_in(q, "events", NULL, signed_at - fifteen - apr_time_from_sec(1)),
                AD_SIGV4_EXPIRED, INVALID,
                "Signature not yet current: 20261123T151718Z is still later than "
                "20261123T151717Z (20261123T150217Z + 15 min.)");
}
END_TEST

START_TEST(host_must_be_signed)
{
    req_t *q = v1();

    set_header(q, "Authorization",
               "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"
               "20261123/us-east-1/events/aws4_request, SignedHeaders=content-type;"
               "x-amz-date;x-amz-target, Signature=a9992db25b33db763b693daec22140"
               "92ae53f15ec72127901d84850bc819db2a");
    assert_fail(check_v1(q), AD_SIGV4_INVALID, INVALID,
                "'Host' or ':authority' "
                "must be a 'SignedHeader' in the AWS Authorization.");
}
END_TEST

/* Signed correctly (suite key, host only) but without x-amz-date. */
START_TEST(amz_date_must_be_signed)
{
    static const vec_t v = {"host only",
                            "GET",
                            "/",
                            NULL,
                            {SUITE_HOST},
                            NULL,
                            SUITE_DATE,
                            "host",
                            "0000000000000000000000000000000000000000000000000000000000000000"};

    assert_fail(verify_in(build(&v), "service", NULL, at(SUITE_DATE)), AD_SIGV4_INVALID, INVALID,
                "'X-Amz-Date' must be a 'SignedHeader' "
                "in the AWS Authorization.");
}
END_TEST

START_TEST(unsupported_algorithm)
{
    req_t *q = v1();

    set_header(q, "Authorization",
               "AWS4-HMAC-SHA512 Credential=AKIDEXAMPLE/"
               "20261123/us-east-1/events/aws4_request, SignedHeaders=content-type;"
               "host;x-amz-date;x-amz-target, Signature=abc");
    assert_fail(check_v1(q), AD_SIGV4_INCOMPLETE, INCOMPLETE,
                "Unsupported AWS "
                "'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). ");
}
END_TEST

static req_t *with_credential(const char *credential);

/* q's Authorization replaced by one over signed_headers whose signature is
 * right for q as it now is: the canonical request is the one the mismatch
 * message shows (nothing in it may be withheld), signed the way the header
 * comment derives it. */
static void resign(req_t *q, const char *signed_headers)
{
    const char *scope = "20261123/us-east-1/events/aws4_request",
               *part[] = {"20261123", "us-east-1", "events", "aws4_request"};
    unsigned char k[SHA256_DIGEST_LENGTH];
    unsigned int klen = sizeof(k);
    char *creq, *hash_line, *sts, sig[2 * SHA256_DIGEST_LENGTH + 1];
    const char *key = "AWS4" SECRET;
    outcome_t o;
    int i;

    set_header(q, "Authorization",
               apr_psprintf(pool,
                            "AWS4-HMAC-SHA256 Credential=" AKID "/%s, SignedHeaders=%s, "
                            "Signature=%064d",
                            scope, signed_headers, 0));
    o = check_v1(q);
    assert_mismatch(o);
    mismatch_parts(o.message, &creq, &hash_line);
    ck_assert_str_eq(hash_line, sha256_of(creq));
    sts = apr_pstrcat(pool, "AWS4-HMAC-SHA256\n" V1_DATE "\n", scope, "\n", hash_line, NULL);
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)part[0], strlen(part[0]), k,
         &klen);
    for (i = 1; i < 4; i++) {
        HMAC(EVP_sha256(), k, (int)klen, (const unsigned char *)part[i], strlen(part[i]), k, &klen);
    }
    HMAC(EVP_sha256(), k, (int)klen, (const unsigned char *)sts, strlen(sts), k, &klen);
    for (i = 0; i < (int)klen; i++) {
        snprintf(sig + 2 * i, 3, "%02x", k[i]);
    }
    set_header(q, "Authorization",
               apr_psprintf(pool,
                            "AWS4-HMAC-SHA256 Credential=" AKID "/%s, SignedHeaders=%s, "
                            "Signature=%s",
                            scope, signed_headers, sig));
}

/* v1's request with an Authorization over signed_headers (and a signature
 * that cannot match), checked. */
static outcome_t check_listing(const char *signed_headers)
{
    req_t *q = v1();

    set_header(q, "Authorization",
               apr_pstrcat(pool,
                           "AWS4-HMAC-SHA256 Credential=" AKID
                           "/20261123/us-east-1/events/aws4_request, SignedHeaders=",
                           signed_headers, ", Signature=", apr_psprintf(pool, "%064d", 0), NULL));
    return check_v1(q);
}

/* SignedHeaders as no AWS client writes it. Each listed name costs a copy
 * of its header, so a list repeating one name over a few KB made a request
 * cost 130 MB before these were refused. */
START_TEST(signed_headers_shape)
{
    static const char *unordered[] = {"host;content-type;x-amz-date;x-amz-target",
                                      "content-type;host;host;x-amz-date;x-amz-target",
                                      "content-type;Host;x-amz-date;x-amz-target",
                                      "content-type;host;x-amz-date;x-amz-target;x-amz-target"};
    static const char *empty[] = {"content-type;;host;x-amz-date;x-amz-target",
                                  ";content-type;host;x-amz-date;x-amz-target",
                                  "content-type;host;x-amz-date;x-amz-target;"};
    const char *many = "content-type;host", *repeated = "content-type";
    int i;

    for (i = 0; i < (int)(sizeof(unordered) / sizeof(unordered[0])); i++) {
        assert_fail(check_listing(unordered[i]), AD_SIGV4_INVALID, INVALID,
                    "'SignedHeaders' must list lowercase header names, sorted, each once.");
    }
    for (i = 0; i < (int)(sizeof(empty) / sizeof(empty[0])); i++) {
        assert_fail(check_listing(empty[i]), AD_SIGV4_INVALID, INVALID,
                    "'SignedHeaders' has an empty header name.");
    }
    /* 64 names pass the list's checks (and then fail for the ones the
     * request lacks); 65 do not. */
    for (i = 0; i < 61; i++) {
        many = apr_psprintf(pool, "%s;i%02d", many, i);
    }
    many = apr_pstrcat(pool, many, ";x-amz-date", NULL);
    assert_fail(check_listing(many), AD_SIGV4_INVALID, INVALID,
                "'SignedHeaders' names 'i00', which the request does not have.");
    assert_fail(check_listing(apr_pstrcat(pool, many, ";x-amz-target", NULL)), AD_SIGV4_INVALID,
                INVALID, "'SignedHeaders' lists more than 64 headers.");
    /* The review's request: one name 4,000 times. */
    for (i = 0; i < 4000; i++) {
        repeated = apr_pstrcat(pool, repeated, ";host", NULL);
    }
    assert_fail(check_listing(apr_pstrcat(pool, repeated, ";x-amz-date", NULL)), AD_SIGV4_INVALID,
                INVALID, "'SignedHeaders' must list lowercase header names, sorted, each once.");
}
END_TEST

/* Signed while empty, then dropped on the way: without X-Amz-Target the
 * body is read as another form, so the header's absence must not pass for
 * its empty value. */
START_TEST(signed_header_absent)
{
    req_t *q = v1();

    set_header(q, "X-Amz-Target", "");
    resign(q, "content-type;host;x-amz-date;x-amz-target");
    assert_ok(check_v1(q));
    del_header(q, "X-Amz-Target");
    assert_fail(check_v1(q), AD_SIGV4_INVALID, INVALID,
                "'SignedHeaders' names 'x-amz-target', which the request does not have.");
}
END_TEST

/* A path of many segments: each is normalised and encoded once more, in
 * order (the canonical path is built in one join, not a copy per segment). */
START_TEST(long_path)
{
    req_t *q = v1();
    const char *path = "/a/./b%20c/../d", *want = "/a/d";
    char *creq, *hash_line;
    outcome_t o;
    int i;

    for (i = 0; i < 2000; i++) {
        path = apr_psprintf(pool, "%s/s%d", path, i % 7);
        want = apr_psprintf(pool, "%s/s%d", want, i % 7);
    }
    q->r.path = apr_pstrcat(pool, path, "/", NULL);
    o = check_v1(q);
    assert_mismatch(o);
    mismatch_parts(o.message, &creq, &hash_line);
    ck_assert_msg(strncmp(creq, apr_pstrcat(pool, "POST\n", want, "/\n", NULL), strlen(want) + 7) ==
                      0,
                  "%.200s", creq);
    /* Re-signed for that path, it verifies. */
    resign(q, "content-type;host;x-amz-date;x-amz-target");
    assert_ok(check_v1(q));
}
END_TEST

/* The checks that need no body give the same answers as the whole check,
 * and pass a request whose body does not match (that is the signature's
 * part, after the body is read). */
START_TEST(head_checks)
{
    req_t *q = v1();
    outcome_t o;

    q->r.body = "{\"tampered\": true}";
    q->r.body_len = strlen(q->r.body);
    o.rc = ad_sigv4_check_head(pool, &q->r, "events", NULL, lookup, NULL,
                               at(V1_DATE) + apr_time_from_sec(3), &o.status, &o.type, &o.message);
    assert_ok(o);
    assert_mismatch(check_v1(q));
    del_header(q, "Authorization");
    o.rc = ad_sigv4_check_head(pool, &q->r, "events", NULL, lookup, NULL,
                               at(V1_DATE) + apr_time_from_sec(3), &o.status, &o.type, &o.message);
    assert_fail(o, AD_SIGV4_MISSING_TOKEN, "MissingAuthenticationTokenException",
                "Missing Authentication Token");
    q = with_credential("AKIDNOBODY/20261123/us-east-1/events/aws4_request");
    o.rc = ad_sigv4_check_head(pool, &q->r, "events", NULL, lookup, NULL,
                               at(V1_DATE) + apr_time_from_sec(3), &o.status, &o.type, &o.message);
    assert_fail(o, AD_SIGV4_UNKNOWN_KEY, "UnrecognizedClientException",
                "The security token included in the request is invalid.");
}
END_TEST

static req_t *with_credential(const char *credential)
{
    req_t *q = v1();

    set_header(q, "Authorization",
               apr_pstrcat(pool, "AWS4-HMAC-SHA256 Credential=", credential,
                           ", SignedHeaders=content-type;host;x-amz-date;"
                           "x-amz-target, Signature=a9992db25b33db763b693daec2214092ae53f15ec7"
                           "2127901d84850bc819db2a",
                           NULL));
    return q;
}

START_TEST(credential_shape)
{
    assert_fail(check_v1(with_credential("AKIDEXAMPLE/20261123/us-east-1/events")),
                AD_SIGV4_INCOMPLETE, INCOMPLETE,
                "Credential must have exactly 5 "
                "slash-delimited elements, e.g. keyid/date/region/service/term, got "
                "'AKIDEXAMPLE/20261123/us-east-1/events'");
    assert_fail(check_v1(with_credential("AKIDEXAMPLE/20261123/us-east-1/events/"
                                         "aws4_request/x")),
                AD_SIGV4_INCOMPLETE, INCOMPLETE,
                "Credential must have exactly 5 "
                "slash-delimited elements, e.g. keyid/date/region/service/term, got "
                "'AKIDEXAMPLE/20261123/us-east-1/events/aws4_request/x'");
    /* AWS ignores trailing slashes. */
    assert_ok(check_v1(with_credential("AKIDEXAMPLE/20261123/us-east-1/events/"
                                       "aws4_request/")));
}
END_TEST

START_TEST(wrong_service)
{
    assert_fail(check_v1(with_credential("AKIDEXAMPLE/20261123/us-east-1/"
                                         "eventbridge/aws4_request")),
                AD_SIGV4_INVALID, INVALID,
                "Credential should be scoped to correct service: 'events'. ");
    /* The suite's requests, signed for "service", are not for "events". */
    assert_fail(verify_in(build(&suite[0]), "events", NULL, at(SUITE_DATE)), AD_SIGV4_INVALID,
                INVALID, "Credential should be scoped to correct service: 'events'. ");
}
END_TEST

START_TEST(scope_date_mismatch)
{
    assert_fail(check_v1(with_credential("AKIDEXAMPLE/20261122/us-east-1/events/"
                                         "aws4_request")),
                AD_SIGV4_INVALID, INVALID,
                "Date in Credential scope does not match "
                "YYYYMMDD from ISO-8601 version of date from HTTP: '20261122' != "
                "'20261123', from '20261123T151718Z'. ");
}
END_TEST

/* Every fault of the scope in one message, in AWS's order. */
START_TEST(scope_all_wrong)
{
    req_t *q = with_credential("AKIDEXAMPLE/b/c/d/e");

    assert_fail(verify_in(q, "events", "us-east-1", at(V1_DATE)), AD_SIGV4_INVALID, INVALID,
                "Credential should be scoped to a valid region, not 'c'. "
                "Credential should be scoped to correct service: 'events'. "
                "Credential should be scoped with a valid terminator: "
                "'aws4_request', not 'e'. Date in Credential scope does not match "
                "YYYYMMDD from ISO-8601 version of date from HTTP: 'b' != '20261123', "
                "from '20261123T151718Z'. ");
}
END_TEST

START_TEST(unknown_key)
{
    assert_fail(check_v1(with_credential("AKIDNOBODY/20261123/us-east-1/events/"
                                         "aws4_request")),
                AD_SIGV4_UNKNOWN_KEY, "UnrecognizedClientException",
                "The security token included in the request is invalid.");
    assert_fail(check_v1(with_credential("/20261123/us-east-1/events/aws4_request")),
                AD_SIGV4_UNKNOWN_KEY, "UnrecognizedClientException",
                "The security token included in the request is invalid.");
}
END_TEST

/* A known key whose secret is not the one the client signed with. */
START_TEST(wrong_secret)
{
    outcome_t o = check_v1(with_credential("AKIDOTHER/20261123/us-east-1/events/"
                                           "aws4_request"));

    assert_mismatch(o);
    ck_assert_ptr_nonnull(strstr(o.message, "'POST\n/events\n\ncontent-type:"
                                            "application/x-amz-json-1.1\nhost:127.0.0.1:44371\n"
                                            "x-amz-date:20261123T151718Z\nx-amz-target:"
                                            "AWSEvents.PutEvents\n\ncontent-type;host;x-amz-date;"
                                            "x-amz-target\ncb74fc5fcdf7b5287cefd1497a7fc13662"
                                            "7f6323647cdb9bf76dad4008328820'"));
    ck_assert_ptr_nonnull(strstr(o.message, "'AWS4-HMAC-SHA256\n20261123T151718Z\n"
                                            "20261123/us-east-1/events/aws4_request\n"));
}
END_TEST

START_TEST(tampered_body)
{
    req_t *q = v1();

    q->r.body = "{\"Entries\": [{\"Source\": \"com.example.orders\", \"DetailType\": "
                "\"OrderCreated\", \"Detail\": \"{\\\"id\\\":2}\"}]}";
    assert_mismatch(check_v1(q));
    q->r.body_len--; /* one byte short of what was signed */
    q->r.body = PY_BODY;
    assert_mismatch(check_v1(q));
}
END_TEST

/* The JS SDK's body hash header: a changed body no longer matches it, and a
 * header changed to match the new body no longer matches the signature. */
START_TEST(tampered_body_js)
{
    const vec_t *v = &clients[JS_PUTEVENTS];
    req_t *q = build(v);

    q->r.body = "{\"Entries\":[]}";
    q->r.body_len = strlen(q->r.body);
    assert_fail(verify_client(q, v), AD_SIGV4_INVALID, INVALID,
                "The provided "
                "'x-amz-content-sha256' header does not match what was computed.");
    /* sha256("{\"Entries\":[]}"): consistent with the body, not the signature. */
    set_header(q, "x-amz-content-sha256",
               "158f4f0cd891e57861672b82c4f199ec"
               "56260656b558ad15626be8e29a32e753");
    assert_mismatch(verify_client(q, v));
}
END_TEST

START_TEST(tampered_signed_header)
{
    req_t *q = v1();
    outcome_t o;

    set_header(q, "X-Amz-Target", "AWSEvents.DeleteRule");
    assert_mismatch(check_v1(q));

    /* A proxy that rewrites Host (no ProxyPreserveHost) breaks them all; the
     * message shows the host the server saw. */
    q = v1();
    set_header(q, "Host", "apidest.internal");
    o = check_v1(q);
    assert_mismatch(o);
    ck_assert_ptr_nonnull(strstr(o.message, "\nhost:apidest.internal\n"));

    /* A signed header dropped on the way. */
    q = v1();
    del_header(q, "Content-Type");
    assert_fail(check_v1(q), AD_SIGV4_INVALID, INVALID,
                "'SignedHeaders' names 'content-type', which the request does not have.");

    /* The JS SDK signs its retry counter: a replay with another is refused. */
    q = build(&clients[JS_PUTEVENTS]);
    set_header(q, "amz-sdk-request", "attempt=2; max=3");
    assert_mismatch(verify_client(q, &clients[JS_PUTEVENTS]));
}
END_TEST

/* A header added on the way in (a CDN's shared secret, say) that a client
 * with a known key lists in SignedHeaders: the mismatch message names it and
 * withholds its value, and still shows what the clients sign. */
START_TEST(mismatch_withholds_unknown_header_values)
{
    req_t *q = v1();
    const char *auth = NULL, *at;
    char *creq, *hash_line;
    outcome_t o;
    int i;

    for (i = 0; i < q->h->nelts; i++) {
        ad_sigv4_header_t *h = &APR_ARRAY_IDX(q->h, i, ad_sigv4_header_t);
        if (strcasecmp(h->name, "Authorization") == 0) {
            auth = h->value;
        }
    }
    ck_assert_ptr_nonnull(auth);
    at = strstr(auth, "x-amz-target");
    ck_assert_ptr_nonnull(at);
    set_header(q, "Authorization",
               apr_pstrcat(pool, apr_pstrmemdup(pool, auth, (apr_size_t)(at - auth)),
                           "x-amz-target;x-origin-verify", at + strlen("x-amz-target"), NULL));
    set_header(q, "X-Origin-Verify", "cdn-shared-secret-4711");
    set_header(q, "X-Amz-Security-Token", "session-token-0815");
    o = check_v1(q);
    assert_mismatch(o);
    ck_assert_msg(!strstr(o.message, "cdn-shared-secret-4711"), "%s", o.message);
    /* The real canonical request's hash would let a guess at the value be
     * checked offline: it is withheld too. */
    mismatch_parts(o.message, &creq, &hash_line);
    ck_assert_str_eq(hash_line, "(hash withheld: it covers withheld values)");
    ck_assert_ptr_nonnull(strstr(o.message, "\nx-origin-verify:(value withheld)\n\n"));
    ck_assert_ptr_nonnull(strstr(o.message, "\nx-amz-date:20261123T151718Z\n"));
    ck_assert_ptr_nonnull(strstr(o.message, "content-type;host;x-amz-date;x-amz-target;"
                                            "x-origin-verify\n"));

    /* The same for a session token the client signs. */
    set_header(q, "Authorization",
               apr_pstrcat(pool, apr_pstrmemdup(pool, auth, (apr_size_t)(at - auth)),
                           "x-amz-security-token;x-amz-target", at + strlen("x-amz-target"), NULL));
    o = check_v1(q);
    assert_mismatch(o);
    ck_assert_msg(!strstr(o.message, "session-token-0815"), "%s", o.message);
    ck_assert_ptr_nonnull(strstr(o.message, "\nx-amz-security-token:(value withheld)\n"));
}
END_TEST

/* The path is part of what is signed: the CLI's "/events" is not the JS
 * SDK's "/events/", and "%20" is not a space. */
START_TEST(tampered_path)
{
    req_t *q = v1();

    char *creq, *hash_line;
    outcome_t o;

    q->r.path = "/events/";
    o = check_v1(q);
    assert_mismatch(o);
    /* Nothing withheld: the string to sign ends with the hash of the
     * canonical request shown, as AWS's message does. */
    mismatch_parts(o.message, &creq, &hash_line);
    ck_assert_str_eq(hash_line, sha256_of(creq));
    q = build(&clients[V1_SPACE]);
    q->r.path = "/a/b c/";
    assert_mismatch(verify_client(q, &clients[V1_SPACE]));
    q->r.path = "/a/b%20c/";
    q->r.query = "x=1";
    assert_mismatch(verify_client(q, &clients[V1_SPACE]));
}
END_TEST

START_TEST(tampered_method)
{
    req_t *q = v1();

    q->r.method = "PUT";
    assert_mismatch(check_v1(q));
}
END_TEST

START_TEST(signature_shape)
{
    static const char *sigs[] = {
        "A9992DB25B33DB763B693DAEC2214092AE53F15EC72127901D84850BC819DB2A",
        "a9992db25b33db763b693daec2214092ae53f15ec72127901d84850bc819db2",
        "a9992db25b33db763b693daec2214092ae53f15ec72127901d84850bc819db2a0", "x"};
    int i;

    for (i = 0; i < (int)(sizeof(sigs) / sizeof(sigs[0])); i++) {
        req_t *q = v1();
        set_header(q, "Authorization",
                   apr_pstrcat(pool,
                               "AWS4-HMAC-SHA256 "
                               "Credential=AKIDEXAMPLE/20261123/us-east-1/events/aws4_request, "
                               "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
                               "Signature=",
                               sigs[i], NULL));
        assert_mismatch(check_v1(q));
    }
}
END_TEST

/* AWS takes ',' and ' ' alike between the parameters, in any order. */
START_TEST(authorization_separators)
{
    req_t *q = v1();

    set_header(q, "Authorization",
               "AWS4-HMAC-SHA256 Signature=a9992db25b33db763b69"
               "3daec2214092ae53f15ec72127901d84850bc819db2a,SignedHeaders=content-"
               "type;host;x-amz-date;x-amz-target,Credential=AKIDEXAMPLE/20261123/"
               "us-east-1/events/aws4_request");
    assert_ok(check_v1(q));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sigv4");
    TCase *ok = tcase_create("accepted");
    TCase *no = tcase_create("refused");

    tcase_add_checked_fixture(ok, setup, teardown);
    tcase_add_checked_fixture(no, setup, teardown);

    tcase_add_loop_test(ok, aws_test_suite, 0, NSUITE);
    tcase_add_loop_test(ok, client_requests, 0, NCLIENTS);
    tcase_add_test(ok, configured_region);
    tcase_add_test(ok, unsigned_headers_are_free);
    tcase_add_test(ok, authorization_separators);

    tcase_add_test(no, missing_authorization);
    tcase_add_test(no, authorization_not_key_value);
    tcase_add_test(no, authorization_missing_parameters);
    tcase_add_test(no, authorization_garbage);
    tcase_add_test(no, missing_amz_date);
    tcase_add_test(no, malformed_amz_date);
    tcase_add_test(no, clock_skew);
    tcase_add_test(no, host_must_be_signed);
    tcase_add_test(no, amz_date_must_be_signed);
    tcase_add_test(no, unsupported_algorithm);
    tcase_add_test(no, credential_shape);
    tcase_add_test(no, wrong_service);
    tcase_add_test(no, scope_date_mismatch);
    tcase_add_test(no, scope_all_wrong);
    tcase_add_test(no, unknown_key);
    tcase_add_test(no, wrong_secret);
    tcase_add_test(no, tampered_body);
    tcase_add_test(no, tampered_body_js);
    tcase_add_test(no, tampered_signed_header);
    tcase_add_test(no, mismatch_withholds_unknown_header_values);
    tcase_add_test(no, tampered_path);
    tcase_add_test(no, tampered_method);
    tcase_add_test(no, signature_shape);
    tcase_add_test(no, signed_headers_shape);
    tcase_add_test(no, signed_header_absent);
    tcase_add_test(ok, long_path);
    tcase_add_test(no, head_checks);

    suite_add_tcase(s, ok);
    suite_add_tcase(s, no);
    return unit_run(s);
}
