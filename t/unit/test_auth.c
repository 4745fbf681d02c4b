/* The OAuth token endpoint's answer, as apidestd reads it, without httpd. */
#include <check.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "ad_auth.h"
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

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("token");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, token_and_lifetime);
    tcase_add_test(tc, answers_refused);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
