/* The OAuth token endpoint's answer, as apidestd reads it, without httpd. */
#include <check.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_base64.h>
#include <strings.h>

#include "ad_auth.h"
#include "ad_conf.h"
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

static apr_status_t parse(const char *body, const char **token, apr_interval_time_t *lifetime,
                          const char **why)
{
    *token = NULL;
    *why = NULL;
    return ad_auth_parse_token(pool, body, body ? strlen(body) : 0, token, lifetime, why);
}

START_TEST(token_and_lifetime)
{
    static const struct {
        const char *body;
        apr_int64_t secs;
    } cases[] = {
        {"{\"access_token\":\"abc.DEF-_~+/=\",\"expires_in\":120}", 120},
        {"{\"access_token\":\"t\",\"expires_in\":\"300\"}", 300},
        {"{\"access_token\":\"t\"}", 3600},
        {"{\"access_token\":\"t\",\"expires_in\":0}", 3600},
        {"{\"access_token\":\"t\",\"expires_in\":-5}", 3600},
        {"{\"access_token\":\"t\",\"expires_in\":0.5}", 1},
        {"{\"access_token\":\"t\",\"expires_in\":3}", 3},
        {"{\"access_token\":\"t\",\"expires_in\":1e300}", 86400},
        {"{\"access_token\":\"t\",\"expires_in\":\"99999999999999999999\"}", 86400},
        {"{\"access_token\":\"t\",\"expires_in\":\"soon\"}", 3600},
    };
    const char *token, *why;
    apr_interval_time_t lifetime;
    apr_size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(parse(cases[i].body, &token, &lifetime, &why), APR_SUCCESS);
        ck_assert_ptr_nonnull(token);
        ck_assert_msg(lifetime == apr_time_from_sec(cases[i].secs), "%s: %lld s", cases[i].body,
                      (long long)apr_time_sec(lifetime));
    }
}
END_TEST

START_TEST(answers_refused)
{
    static const char *const bodies[] = {
        "{\"access_token\":\"a\\r\\nX-Injected: 1\"}",
        "{\"access_token\":\"two words\"}",
        "{\"access_token\":\"caf\\u00e9\"}",
        "{\"access_token\":\"\"}",
        "{\"access_token\":42}",
        "{\"token\":\"t\"}",
        "not json",
        NULL,
    };
    const char *token, *why;
    apr_interval_time_t lifetime;
    apr_size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        ck_assert_int_ne(parse(bodies[i], &token, &lifetime, &why), APR_SUCCESS);
        ck_assert_ptr_nonnull(why);
    }
}
END_TEST

/* The longest token that fits "Authorization: Bearer <token>" in one
 * header line is taken; one byte more is refused with a reason, so that
 * the connection is de-authorized instead of every delivery failing. */
START_TEST(token_length_bound)
{
    apr_size_t fits = AD_HTTP_HEADER_LINE_MAX - sizeof("Authorization: Bearer ");
    const char *token, *why;
    apr_interval_time_t lifetime;
    apr_status_t rv;
    apr_size_t n;
    char *t;

    for (n = fits; n <= fits + 1; n++) {
        t = apr_palloc(pool, n + 1);
        memset(t, 'a', n);
        t[n] = '\0';
        rv = parse(apr_psprintf(pool, "{\"access_token\":\"%s\"}", t), &token, &lifetime, &why);
        if (n == fits) {
            ck_assert_int_eq(rv, APR_SUCCESS);
            ck_assert_uint_eq(strlen(token), fits);
        }
        else {
            ck_assert_int_ne(rv, APR_SUCCESS);
            ck_assert_ptr_nonnull(strstr(why, "too long"));
        }
    }
}
END_TEST

static const char *header_value(const apr_array_header_t *headers, const char *name)
{
    int i;

    for (i = 0; i < headers->nelts; i++) {
        const ad_header_t *h = &APR_ARRAY_IDX(headers, i, ad_header_t);
        if (!strcasecmp(h->name, name)) {
            return h->value;
        }
    }
    return "";
}

static ad_param_t *inv_param(const char *where, const char *key, const char *value)
{
    ad_param_t *prm = apr_pcalloc(pool, sizeof(*prm));

    prm->where = where;
    prm->key = key;
    prm->value = value;
    return prm;
}

/* The connection's invocation parameters win over a target's of the same
 * name, which may come from the event: headers and body parameters were
 * replaced, but a query parameter was appended after the target's, and a
 * server reading the first took the event's value. A body with \u0000 in
 * it lost the body parameters silently. */
START_TEST(connection_parameters_win)
{
    ad_connection_t *cn = apr_pcalloc(pool, sizeof(*cn));
    ad_http_request_t req;
    apr_array_header_t *headers = apr_array_make(pool, 2, sizeof(ad_header_t));
    ad_header_t *h = apr_array_push(headers);

    cn->auth = AD_AUTH_NONE;
    cn->invocation_params = apr_array_make(pool, 4, sizeof(ad_param_t *));
    APR_ARRAY_PUSH(cn->invocation_params, ad_param_t *) = inv_param("query", "tenant", "acme");
    APR_ARRAY_PUSH(cn->invocation_params, ad_param_t *) = inv_param("header", "X-Tenant", "acme");
    APR_ARRAY_PUSH(cn->invocation_params, ad_param_t *) = inv_param("body", "tenant", "acme");
    h->name = "x-tenant";
    h->value = "evil";
    memset(&req, 0, sizeof(req));
    req.url = "https://h/p?tenant=evil&tenants=2&x=1&tenant";
    req.headers = headers;
    req.body = "{\"msg\":\"\\u0000\",\"tenant\":\"evil\"}";
    req.body_len = strlen(req.body);
    ad_auth_apply(pool, cn, NULL, &req);
    ck_assert_str_eq(req.url, "https://h/p?tenants=2&x=1&tenant=acme");
    ck_assert_int_eq(req.headers->nelts, 1);
    ck_assert_str_eq(APR_ARRAY_IDX(req.headers, 0, ad_header_t).value, "acme");
    ck_assert_str_eq(req.body, "{\"msg\":\"\\u0000\",\"tenant\":\"acme\"}");
    req.url = "https://h/p";
    ad_auth_apply(pool, cn, NULL, &req);
    ck_assert_str_eq(req.url, "https://h/p?tenant=acme");
}
END_TEST

/* RFC 6749 2.3.1: the client id and secret are form-urlencoded, then
 * joined with ':' and sent as Basic; a Basic connection's user and password
 * are not (RFC 7617). */
START_TEST(token_request_encodes_client_credentials)
{
    ad_connection_t *cn = apr_pcalloc(pool, sizeof(*cn));
    ad_http_request_t req;
    const char *plain = "my%3Aclient:p%40ss%20w%25rd%2B%2F%C3%A9~-._";
    char *enc = apr_palloc(pool, apr_base64_encode_len((int)strlen(plain)));

    cn->auth = AD_AUTH_OAUTH;
    cn->oauth_endpoint = "https://auth.example/token";
    cn->oauth_method = "POST";
    cn->client_id = "my:client";
    cn->client_secret = "p@ss w%rd+/\xc3\xa9~-._";
    cn->oauth_params = apr_array_make(pool, 1, sizeof(ad_param_t *));
    cn->invocation_params = apr_array_make(pool, 1, sizeof(ad_param_t *));
    ad_auth_token_request(pool, cn, 5000, &req);
    apr_base64_encode(enc, plain, (int)strlen(plain));
    ck_assert_str_eq(header_value(req.headers, "Authorization"),
                     apr_pstrcat(pool, "Basic ", enc, NULL));

    cn->auth = AD_AUTH_BASIC;
    cn->user = "my:client";
    cn->password = "p@ss w%rd";
    memset(&req, 0, sizeof(req));
    req.url = "https://h/p";
    req.headers = apr_array_make(pool, 1, sizeof(ad_header_t));
    ad_auth_apply(pool, cn, NULL, &req);
    plain = "my:client:p@ss w%rd";
    apr_base64_encode(enc, plain, (int)strlen(plain));
    ck_assert_str_eq(header_value(req.headers, "Authorization"),
                     apr_pstrcat(pool, "Basic ", enc, NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("token");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, token_and_lifetime);
    tcase_add_test(tc, answers_refused);
    tcase_add_test(tc, token_length_bound);
    tcase_add_test(tc, connection_parameters_win);
    tcase_add_test(tc, token_request_encodes_client_credentials);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
