/* Unit tests for ad_schedule: rate() and cron() parsing against the
 * expressions AWS documents or was recorded accepting and refusing, and
 * next fire times written out as literal UTC timestamps. The expected
 * times were worked out independently of ad_schedule.c (by a brute-force
 * day-by-day search and checked against a calendar), not copied from its
 * output. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "ad_schedule.h"
#include "ad_ratelimit.h"
#include "ad_conf.h"
#include "unit_run.h"

#define AWS_ERR "Parameter ScheduleExpression is not valid."

static apr_pool_t *pool;

static void setup(void)
{
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* "YYYY-MM-DDTHH:MM:SSZ" to apr_time_t, through APR's own calendar code
 * so that the test does not share ad_schedule's date arithmetic. */
static apr_time_t at(const char *iso)
{
    apr_time_exp_t xt;
    apr_time_t t;
    int y, mo, d, h, mi, s;

    ck_assert_msg(sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &s) == 6,
                  "bad test time %s", iso);
    memset(&xt, 0, sizeof(xt));
    xt.tm_year = y - 1900;
    xt.tm_mon = mo - 1;
    xt.tm_mday = d;
    xt.tm_hour = h;
    xt.tm_min = mi;
    xt.tm_sec = s;
    ck_assert_int_eq(apr_time_exp_gmt_get(&t, &xt), APR_SUCCESS);
    return t;
}

/* The other way round; "none" for 0. Asserts second 0 of a minute. */
static const char *iso(apr_time_t t)
{
    apr_time_exp_t xt;

    if (t == 0) {
        return "none";
    }
    ck_assert_msg(t % (60 * APR_USEC_PER_SEC) == 0,
                  "fire time %" APR_TIME_T_FMT " is not at second 0", t);
    ck_assert_int_eq(apr_time_exp_gmt(&xt, t), APR_SUCCESS);
    return apr_psprintf(pool, "%04d-%02d-%02dT%02d:%02d:%02dZ", xt.tm_year + 1900, xt.tm_mon + 1,
                        xt.tm_mday, xt.tm_hour, xt.tm_min, xt.tm_sec);
}

static ad_schedule_t *parse_ok(const char *expr)
{
    const char *err = NULL, *detail = NULL;
    ad_schedule_t *s = ad_schedule_parse(pool, expr, &err, &detail);

    ck_assert_msg(s != NULL, "%s rejected: %s", expr, detail ? detail : "(no detail)");
    return s;
}

/* The next n fire times after `from`, comma-separated, each searched from
 * the previous one; stops at the first "none". */
static const char *series_from(const char *expr, apr_time_t anchor, apr_time_t from, int n)
{
    ad_schedule_t *s = parse_ok(expr);
    const char *out = NULL;
    apr_time_t t = from;
    int i;

    for (i = 0; i < n; i++) {
        const char *one;

        t = ad_schedule_next(s, anchor, t);
        one = iso(t);
        out = out ? apr_pstrcat(pool, out, ",", one, NULL) : one;
        if (t == 0) {
            break;
        }
        ck_assert_msg(t > from, "%s went backwards", expr);
    }
    return out;
}

static const char *series(const char *expr, const char *from, int n)
{
    return series_from(expr, 0, at(from), n);
}

static const char *next_cron(const char *expr, apr_time_t after)
{
    return iso(ad_schedule_next(parse_ok(expr), 0, after));
}

/* The detail when expr is rejected with AWS's text, "" when accepted. */
static const char *rejects(const char *expr)
{
    const char *err = NULL, *detail = NULL;
    ad_schedule_t *s = ad_schedule_parse(pool, expr, &err, &detail);

    if (s) {
        return "";
    }
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(err, AWS_ERR);
    ck_assert_ptr_nonnull(detail);
    ck_assert_msg(*detail, "empty detail for %s", expr);
    return detail;
}

#define ACCEPT(e)                ck_assert_msg(*rejects(e) == '\0', "%s rejected: %s", e, rejects(e))
#define REJECT(e)                ck_assert_msg(*rejects(e) != '\0', "%s accepted", e)
#define SERIES(e, from, n, want) ck_assert_str_eq(series(e, from, n), want)

/* ------------------------------------------------------------------ */
/* rate()                                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_rate_valid)
{
    static const char *const ok[] = {
        "rate(1 minute)", "rate(5 minutes)", "rate(1 hour)",          "rate(12 hours)",
        "rate(1 day)",    "rate(7 days)",    "rate(2147483647 days)", "rate(01 minute)",
    };
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ACCEPT(ok[i]);
        ck_assert_int_eq(ad_schedule_is_rate(parse_ok(ok[i])), 1);
    }
}
END_TEST

/* Every invalid rate() AWS was recorded refusing, and a few more. */
START_TEST(test_rate_invalid)
{
    static const char *const bad[] = {
        "rate(10 seconds)",
        "rate(10 years)",
        "rate(1 minutes)",
        "rate(10 minute)",
        "rate()",
        "rate(10)",
        "rate(foo minutes)",
        "rate(0 minutes)",
        "rate(-10 minutes)",
        "rate(10 MINUTES)",
        "rate( 10 minutes )",
        " rate(10 minutes)",
        "rate(10 minutes) ",
        "rate(10  minutes)",
        "rate(10 minutes )",
        "rate(1 Minute)",
        "RATE(10 minutes)",
        "rate(10 minutes",
        "rate 10 minutes",
        "rate(+10 minutes)",
        "rate(1.5 hours)",
        "rate(2147483648 minutes)",
        "rate(99999999999999999999 days)",
        "rate(10\tminutes)",
        "rate(1 day)(1 day)",
        "",
        "minutes",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        REJECT(bad[i]);
    }
}
END_TEST

/* Fires at anchor + k * period, k >= 1, with the anchor truncated to the
 * minute; never at the anchor itself. */
START_TEST(test_rate_anchor)
{
    apr_time_t anchor = at("2024-03-10T08:03:27Z");

    ck_assert_str_eq(series_from("rate(5 minutes)", anchor, anchor, 3),
                     "2024-03-10T08:08:00Z,2024-03-10T08:13:00Z,"
                     "2024-03-10T08:18:00Z");
    /* Exactly on a fire time: the next one, strictly after. */
    ck_assert_str_eq(series_from("rate(5 minutes)", anchor, at("2024-03-10T08:08:00Z"), 1),
                     "2024-03-10T08:13:00Z");
    /* One microsecond before a fire time: that fire time. */
    ck_assert_str_eq(series_from("rate(5 minutes)", anchor, at("2024-03-10T08:13:00Z") - 1, 1),
                     "2024-03-10T08:13:00Z");
    /* Before the anchor: still k = 1. */
    ck_assert_str_eq(series_from("rate(5 minutes)", anchor, at("2024-03-09T00:00:00Z"), 1),
                     "2024-03-10T08:08:00Z");
    /* Long after: jumps straight to the right multiple. */
    ck_assert_str_eq(series_from("rate(5 minutes)", anchor, at("2031-07-01T12:00:01Z"), 2),
                     "2031-07-01T12:03:00Z,2031-07-01T12:08:00Z");
}
END_TEST

START_TEST(test_rate_units)
{
    apr_time_t anchor = at("2024-02-28T23:59:00Z");

    ck_assert_str_eq(series_from("rate(1 day)", anchor, anchor, 3),
                     "2024-02-29T23:59:00Z,2024-03-01T23:59:00Z,"
                     "2024-03-02T23:59:00Z");
    ck_assert_str_eq(series_from("rate(1 minute)", anchor, anchor, 2),
                     "2024-02-29T00:00:00Z,2024-02-29T00:01:00Z");
    ck_assert_str_eq(series_from("rate(3 hours)", anchor, at("2024-12-31T22:00:00Z"), 2),
                     "2024-12-31T23:59:00Z,2025-01-01T02:59:00Z");
    ck_assert_str_eq(series_from("rate(1 hour)", anchor, anchor, 1), "2024-02-29T00:59:00Z");
}
END_TEST

/* A period too long for apr_time_t gives "no further fire time". */
START_TEST(test_rate_overflow)
{
    apr_time_t anchor = at("2024-01-01T00:00:00Z");

    ck_assert_str_eq(series_from("rate(2147483647 days)", anchor, anchor, 1), "none");
    ck_assert_str_eq(series_from("rate(2147483647 minutes)", anchor, anchor, 1),
                     "6107-01-24T02:07:00Z");
    ck_assert_str_eq(series_from("rate(1 day)", anchor, APR_INT64_MAX - 1, 1), "none");
}
END_TEST

/* ------------------------------------------------------------------ */
/* cron() parsing                                                      */
/* ------------------------------------------------------------------ */

START_TEST(test_cron_valid)
{
    static const char *const ok[] = {
        /* AWS documentation examples */
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0/10 * ? * MON-FRI *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 0 L * ? *)",
        "cron(0 0 3W * ? *)",
        /* recorded as accepted by AWS */
        "cron(0 20 * * ? *)",
        "cron(0/30 20-23 ? * MON-FRI *)",
        "cron(0/30 0-2 ? * MON-FRI *)",
        "cron(0 2 ? * SAT *)",
        "cron(0 12 * * ? *)",
        "cron(5,35 14 * * ? *)",
        "cron(15 10 ? * 6L 2002-2005)",
        "cron(0 2 ? * SAT#3 *)",
        "cron(* * ? * SAT#3 *)",
        "cron(0/5 5 ? JAN 1-5 2022)",
        /* choices documented in ad_schedule.c */
        "cron(0 12 ? * mon-fri *)",
        "cron(0 12 1 jan,Jul ? *)",
        "cron(0 0 l * ? *)",
        "cron(0 0 15w * ? *)",
        "cron(05 08 * * ? *)",
        "cron(0 22-2 * * ? *)",
        "cron(0 0 ? * FRI-MON *)",
        "cron(0 0 1 NOV-FEB ? *)",
        "cron(0 0 ? * L *)",
        "cron(0 0 ? * FRIL *)",
        "cron(0 0 ? * fri#5 *)",
        "cron(0 0 1 1/3 ? *)",
        "cron(5-55/10 * * * ? *)",
        "cron(*/5 * * * ? *)",
        "cron(0 0 ? * * *)",
        "cron(0 0 * * ? 2020/5)",
        "cron(0 0 * * ? 1970-2199)",
        "cron(59 23 31 12 ? 2199)",
        "cron(0 0 31 2 ? *)",
        "cron(0/59 0/23 1/31 1/12 ? 1970/2199)",
        "cron(0 0 1,15 * ? *)",
    };
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ACCEPT(ok[i]);
        ck_assert_int_eq(ad_schedule_is_rate(parse_ok(ok[i])), 0);
    }
}
END_TEST

START_TEST(test_cron_invalid)
{
    static const char *const bad[] = {
        /* recorded as refused by AWS */
        "cron(7 20 * * NOT *)",
        "cron(INVALID)",
        "cron(0 dummy ? * MON-FRI *)",
        "cron(71 8 1 * ? *)",
        "cron(0 1 * * * *)",
        /* field counts and separators */
        "cron()",
        "cron(0 10 * * ?)",
        "cron(0 10 * * ? * *)",
        "cron(0 10 * * ? 2024 0)",
        "cron(0  10 * * ? *)",
        "cron( 0 10 * * ? *)",
        "cron(0 10 * * ? * )",
        "cron(0\t10 * * ? *)",
        "cron(0 10 * * ? *",
        "cron(0 10 * * ? *))",
        "CRON(0 10 * * ? *)",
        " cron(0 10 * * ? *)",
        "cron(0 10 * * ? *) ",
        /* both or neither day field '?' */
        "cron(0 1 ? * ? *)",
        "cron(0 1 1 * MON *)",
        "cron(0 1 * * MON *)",
        /* out of range */
        "cron(60 * * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 0 0 * ? *)",
        "cron(0 0 32 * ? *)",
        "cron(0 0 * 0 ? *)",
        "cron(0 0 * 13 ? *)",
        "cron(0 0 ? * 0 *)",
        "cron(0 0 ? * 8 *)",
        "cron(0 0 * * ? 1969)",
        "cron(0 0 * * ? 2200)",
        "cron(0 0-60 * * ? *)",
        "cron(-1 0 * * ? *)",
        "cron(00000 0 * * ? *)",
        /* malformed lists, ranges and increments */
        "cron(0,,5 0 * * ? *)",
        "cron(0, 0 * * ? *)",
        "cron(,0 0 * * ? *)",
        "cron(1-2-3 0 * * ? *)",
        "cron(*-5 0 * * ? *)",
        "cron(5- 0 * * ? *)",
        "cron(*/0 * * * ? *)",
        "cron(0/60 * * * ? *)",
        "cron(0 0/24 * * ? *)",
        "cron(0 0 1/32 * ? *)",
        "cron(0 0 1 1/13 ? *)",
        "cron(/5 * * * ? *)",
        "cron(5/ * * * ? *)",
        "cron(0 0 * * ? 2030-2025)",
        "cron(0 0 * JANUARY ? *)",
        "cron(0 0 ? * MONDAY *)",
        "cron(0 0 * * ? ?)",
        "cron(? 0 * * ? *)",
        "cron(0 0 * JAN-13 ? *)",
        "cron(0 0 ? * SUN-8 *)",
        "cron(0 MON * * ? *)",
        "cron(L 0 * * ? *)",
        /* '/' is not listed for day-of-week */
        "cron(0 0 ? * MON/2 *)",
        "cron(0 0 ? * */2 *)",
        /* # : only one expression, week 1-5 */
        "cron(0 0 ? * 3#1,6#3 *)",
        "cron(0 0 ? * 3#2,5 *)",
        "cron(0 0 ? * 3#0 *)",
        "cron(0 0 ? * 3#6 *)",
        "cron(0 0 ? * 3# *)",
        "cron(0 0 ? * #2 *)",
        "cron(0 0 ? * 3#1#2 *)",
        "cron(0 0 ? * 8#1 *)",
        "cron(0 0 ? * 3#12 *)",
        "cron(0 0 3#2 * ? *)",
        /* L and W only where and as documented */
        "cron(0 0 L-3 * ? *)",
        "cron(0 0 LW * ? *)",
        "cron(0 0 L,15 * ? *)",
        "cron(0 0 1W,15W * ? *)",
        "cron(0 0 1-5W * ? *)",
        "cron(0 0 32W * ? *)",
        "cron(0 0 0W * ? *)",
        "cron(0 0 W * ? *)",
        "cron(0 0 ? * 6L,2 *)",
        "cron(0 0 ? * 8L *)",
        "cron(0 0 ? * L-2 *)",
        "cron(0 0 ? * 6LL *)",
        "cron(0 0 ? * 3W *)",
        "cron(0 L * * ? *)",
        "cron(0 0 * L ? *)",
        "cron(0 0 * * ? L)",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        REJECT(bad[i]);
    }
}
END_TEST

/* 256 characters is the limit; a long but valid list shows it. */
START_TEST(test_max_length)
{
    char buf[300];
    const char *tail = " 0 * * ? *)";
    size_t fill, i;

    strcpy(buf, "cron(");
    fill = 256 - strlen("cron(") - strlen(tail);
    memset(buf + 5, '0', fill);
    for (i = 6; i < 5 + fill - 1; i += 2) {
        buf[i] = ',';
    }
    strcpy(buf + 5 + fill, tail);
    ck_assert_uint_eq(strlen(buf), 256);
    ACCEPT(buf);

    memmove(buf + 6, buf + 5, strlen(buf + 5) + 1);
    buf[5] = '0';
    ck_assert_uint_eq(strlen(buf), 257);
    ck_assert_str_eq(rejects(buf), "the expression is longer than 256 characters");
}
END_TEST

/* err and detail may each be left out; NULL expressions are refused. */
START_TEST(test_error_outputs)
{
    const char *err = NULL, *detail = "untouched";

    ck_assert_ptr_null(ad_schedule_parse(pool, "rate(0 minutes)", &err, NULL));
    ck_assert_str_eq(err, AWS_ERR);
    ck_assert_ptr_null(ad_schedule_parse(pool, "rate(0 minutes)", NULL, &detail));
    ck_assert_str_eq(detail, "rate(): the value must be positive");
    ck_assert_ptr_null(ad_schedule_parse(pool, NULL, &err, &detail));
    ck_assert_str_eq(err, AWS_ERR);
    ck_assert_str_eq(AD_SCHEDULE_ERR_INVALID, AWS_ERR);
    ck_assert_int_eq(ad_schedule_is_rate(NULL), 0);
    ck_assert_int_eq(ad_schedule_next(NULL, 0, 0), 0);
}
END_TEST

/* The detail names the field and the problem. */
START_TEST(test_error_details)
{
    ck_assert_str_eq(rejects("cron(71 8 1 * ? *)"), "minutes: \"71\" is out of range 0-59");
    ck_assert_str_eq(rejects("cron(0 dummy ? * MON-FRI *)"),
                     "hours: expected a value at \"dummy\"");
    ck_assert_str_eq(rejects("cron(0 1 * * * *)"),
                     "exactly one of day-of-month and day-of-week must be ?");
    ck_assert_str_eq(rejects("cron(INVALID)"), "cron() takes 6 fields separated by spaces, not 1");
    ck_assert_str_eq(rejects("cron(0 0 ? * 3#1,6#3 *)"),
                     "day-of-week: only one # expression is allowed");
    ck_assert_str_eq(rejects("rate(1 minutes)"), "rate(): use \"minute\" for a value of 1");
    ck_assert_str_eq(rejects("rate(10 minute)"),
                     "rate(): use \"minutes\" for a value other than 1");
    ck_assert_str_eq(rejects("rate(10 seconds)"),
                     "rate(): the unit must be minute(s), hour(s) or day(s)");
}
END_TEST

/* ------------------------------------------------------------------ */
/* cron() next fire times                                              */
/* ------------------------------------------------------------------ */

static const struct {
    const char *expr, *from;
    int n;
    const char *want;
} next_cases[] = {
    /* AWS documentation and recorded examples */
    {"cron(0 10 * * ? *)", "2024-05-01T09:59:59Z", 3,
     "2024-05-01T10:00:00Z,2024-05-02T10:00:00Z,2024-05-03T10:00:00Z"},
    {"cron(0 10 * * ? *)", "2024-05-01T10:00:00Z", 1, "2024-05-02T10:00:00Z"},
    {"cron(15 12 * * ? *)", "2024-12-31T12:15:00Z", 2, "2025-01-01T12:15:00Z,2025-01-02T12:15:00Z"},
    {"cron(0 18 ? * MON-FRI *)", "2024-05-03T18:00:00Z", 3,
     "2024-05-06T18:00:00Z,2024-05-07T18:00:00Z,2024-05-08T18:00:00Z"},
    {"cron(0 8 1 * ? *)", "2024-01-31T09:00:00Z", 2, "2024-02-01T08:00:00Z,2024-03-01T08:00:00Z"},
    {"cron(0 8 1 * ? *)", "2024-12-01T08:00:00Z", 1, "2025-01-01T08:00:00Z"},
    {"cron(0/15 * * * ? *)", "2024-02-29T23:59:30Z", 2,
     "2024-03-01T00:00:00Z,2024-03-01T00:15:00Z"},
    {"cron(0/15 * * * ? *)", "2024-06-10T10:07:00Z", 3,
     "2024-06-10T10:15:00Z,2024-06-10T10:30:00Z,2024-06-10T10:45:00Z"},
    {"cron(0/10 * ? * MON-FRI *)", "2024-05-03T23:55:00Z", 2,
     "2024-05-06T00:00:00Z,2024-05-06T00:10:00Z"},
    {"cron(0/5 8-17 ? * MON-FRI *)", "2024-05-03T17:55:00Z", 2,
     "2024-05-06T08:00:00Z,2024-05-06T08:05:00Z"},
    {"cron(0/5 8-17 ? * MON-FRI *)", "2024-05-06T12:03:00Z", 1, "2024-05-06T12:05:00Z"},
    {"cron(0 9 ? * 2#1 *)", "2024-05-06T09:00:00Z", 3,
     "2024-06-03T09:00:00Z,2024-07-01T09:00:00Z,2024-08-05T09:00:00Z"},
    {"cron(15 10 ? * 6L 2002-2005)", "2001-06-01T00:00:00Z", 3,
     "2002-01-25T10:15:00Z,2002-02-22T10:15:00Z,2002-03-29T10:15:00Z"},
    {"cron(15 10 ? * 6L 2002-2005)", "2005-11-25T10:15:00Z", 2, "2005-12-30T10:15:00Z,none"},
    {"cron(15 10 ? * 6L 2002-2005)", "2024-01-01T00:00:00Z", 1, "none"},
    {"cron(0 2 ? * SAT#3 *)", "2024-01-01T00:00:00Z", 3,
     "2024-01-20T02:00:00Z,2024-02-17T02:00:00Z,2024-03-16T02:00:00Z"},
    {"cron(* * ? * SAT#3 *)", "2024-01-20T23:58:00Z", 3,
     "2024-01-20T23:59:00Z,2024-02-17T00:00:00Z,2024-02-17T00:01:00Z"},
    {"cron(* * ? * SAT#3 *)", "2024-01-20T12:34:56Z", 1, "2024-01-20T12:35:00Z"},
    /* 2022-01-01 is a Saturday (7), outside 1-5 */
    {"cron(0/5 5 ? JAN 1-5 2022)", "2021-06-01T00:00:00Z", 3,
     "2022-01-02T05:00:00Z,2022-01-02T05:05:00Z,2022-01-02T05:10:00Z"},
    {"cron(0/5 5 ? JAN 1-5 2022)", "2022-01-31T05:50:00Z", 2, "2022-01-31T05:55:00Z,none"},
    {"cron(5,35 14 * * ? *)", "2024-07-01T14:05:00Z", 3,
     "2024-07-01T14:35:00Z,2024-07-02T14:05:00Z,2024-07-02T14:35:00Z"},

    /* L: the last day, in leap, common and century years */
    {"cron(0 0 L * ? *)", "2023-02-01T00:00:00Z", 3,
     "2023-02-28T00:00:00Z,2023-03-31T00:00:00Z,2023-04-30T00:00:00Z"},
    {"cron(0 0 L * ? *)", "2024-02-01T00:00:00Z", 3,
     "2024-02-29T00:00:00Z,2024-03-31T00:00:00Z,2024-04-30T00:00:00Z"},
    {"cron(0 0 L 2 ? *)", "2099-03-01T00:00:00Z", 3,
     "2100-02-28T00:00:00Z,2101-02-28T00:00:00Z,2102-02-28T00:00:00Z"},

    /* W: Sat 3rd -> Fri 2nd, Sun 3rd -> Mon 4th */
    {"cron(0 0 3W * ? *)", "2024-01-01T00:00:00Z", 12,
     "2024-01-03T00:00:00Z,2024-02-02T00:00:00Z,2024-03-04T00:00:00Z,"
     "2024-04-03T00:00:00Z,2024-05-03T00:00:00Z,2024-06-03T00:00:00Z,"
     "2024-07-03T00:00:00Z,2024-08-02T00:00:00Z,2024-09-03T00:00:00Z,"
     "2024-10-03T00:00:00Z,2024-11-04T00:00:00Z,2024-12-03T00:00:00Z"},
    /* 2024-06-01 is a Saturday: not back into May, on to Monday 3rd */
    {"cron(0 0 1W * ? *)", "2024-05-15T00:00:00Z", 2, "2024-06-03T00:00:00Z,2024-07-01T00:00:00Z"},
    /* 2024-03-31 is a Sunday: not on into April, back to Friday 29th;
     * April has no 31st */
    {"cron(0 0 31W * ? *)", "2024-03-01T00:00:00Z", 3,
     "2024-03-29T00:00:00Z,2024-05-31T00:00:00Z,2024-07-31T00:00:00Z"},
    /* 2032-02-29 is a Sunday and the last day: Friday 27th; 2025-2027
     * have no 29th */
    {"cron(0 0 29W 2 ? *)", "2024-01-01T00:00:00Z", 3,
     "2024-02-29T00:00:00Z,2028-02-29T00:00:00Z,2032-02-27T00:00:00Z"},
    /* 2024-06-15 is a Saturday, fired on Friday 14th: June is done */
    {"cron(0 10 15W * ? *)", "2024-06-14T10:00:00Z", 2,
     "2024-07-15T10:00:00Z,2024-08-15T10:00:00Z"},

    /* month ends: the 31st only where it exists, Feb 29 only in leap
     * years (2100 is not one) */
    {"cron(0 12 31 * ? *)", "2024-04-01T00:00:00Z", 4,
     "2024-05-31T12:00:00Z,2024-07-31T12:00:00Z,2024-08-31T12:00:00Z,"
     "2024-10-31T12:00:00Z"},
    {"cron(0 0 29 2 ? *)", "2023-01-01T00:00:00Z", 2, "2024-02-29T00:00:00Z,2028-02-29T00:00:00Z"},
    {"cron(0 0 29 2 ? *)", "2096-03-01T00:00:00Z", 1, "2104-02-29T00:00:00Z"},
    {"cron(0 0 29 2 ? *)", "1997-01-01T00:00:00Z", 2, "2000-02-29T00:00:00Z,2004-02-29T00:00:00Z"},
    {"cron(0 0 31 2 ? *)", "2024-01-01T00:00:00Z", 1, "none"},
    {"cron(59 23 31 12 ? *)", "2024-12-31T23:59:00Z", 1, "2025-12-31T23:59:00Z"},

    /* #5 and nL: months without a fifth Friday are skipped */
    {"cron(0 0 ? * 6#5 *)", "2024-01-01T00:00:00Z", 4,
     "2024-03-29T00:00:00Z,2024-05-31T00:00:00Z,2024-08-30T00:00:00Z,"
     "2024-11-29T00:00:00Z"},
    {"cron(0 0 ? * 1L *)", "2024-03-01T00:00:00Z", 3,
     "2024-03-31T00:00:00Z,2024-04-28T00:00:00Z,2024-05-26T00:00:00Z"},
    {"cron(0 0 ? * L *)", "2024-05-01T00:00:00Z", 2, "2024-05-04T00:00:00Z,2024-05-11T00:00:00Z"},

    /* years: exhausted ranges, the last year, increments */
    {"cron(0 0 1 1 ? 2030)", "2029-06-01T00:00:00Z", 2, "2030-01-01T00:00:00Z,none"},
    {"cron(0 0 * * ? 2199)", "2199-12-30T23:59:00Z", 2, "2199-12-31T00:00:00Z,none"},
    {"cron(0 0 * * ? 2020/50)", "2021-01-01T00:00:00Z", 2,
     "2070-01-01T00:00:00Z,2070-01-02T00:00:00Z"},

    /* wrapping ranges, names, lists, increments */
    {"cron(0 22-2 * * ? *)", "2024-01-01T02:30:00Z", 6,
     "2024-01-01T22:00:00Z,2024-01-01T23:00:00Z,2024-01-02T00:00:00Z,"
     "2024-01-02T01:00:00Z,2024-01-02T02:00:00Z,2024-01-02T22:00:00Z"},
    {"cron(0 0 ? * FRI-MON *)", "2024-05-01T00:00:00Z", 5,
     "2024-05-03T00:00:00Z,2024-05-04T00:00:00Z,2024-05-05T00:00:00Z,"
     "2024-05-06T00:00:00Z,2024-05-10T00:00:00Z"},
    {"cron(0 0 1 nov-feb ? *)", "2024-03-01T00:00:00Z", 5,
     "2024-11-01T00:00:00Z,2024-12-01T00:00:00Z,2025-01-01T00:00:00Z,"
     "2025-02-01T00:00:00Z,2025-11-01T00:00:00Z"},
    {"cron(0 12 ? * mon,Wed,FRI *)", "2024-05-01T12:00:00Z", 4,
     "2024-05-03T12:00:00Z,2024-05-06T12:00:00Z,2024-05-08T12:00:00Z,"
     "2024-05-10T12:00:00Z"},
    {"cron(0 0 1 1/3 ? *)", "2024-02-01T00:00:00Z", 3,
     "2024-04-01T00:00:00Z,2024-07-01T00:00:00Z,2024-10-01T00:00:00Z"},
    {"cron(5-55/20 */6 * * ? *)", "2024-01-01T05:00:00Z", 5,
     "2024-01-01T06:05:00Z,2024-01-01T06:25:00Z,2024-01-01T06:45:00Z,"
     "2024-01-01T12:05:00Z,2024-01-01T12:25:00Z"},
    {"cron(0 0 1-10/4,25 * ? *)", "2024-01-01T00:00:00Z", 5,
     "2024-01-05T00:00:00Z,2024-01-09T00:00:00Z,2024-01-25T00:00:00Z,"
     "2024-02-01T00:00:00Z,2024-02-05T00:00:00Z"},
};

START_TEST(test_next_table)
{
    size_t i;
    int failed = 0;

    for (i = 0; i < sizeof(next_cases) / sizeof(next_cases[0]); i++) {
        const char *got = series(next_cases[i].expr, next_cases[i].from, next_cases[i].n);

        if (strcmp(got, next_cases[i].want) != 0) {
            fprintf(stderr, "FAIL %s after %s\n  want %s\n  got  %s\n", next_cases[i].expr,
                    next_cases[i].from, next_cases[i].want, got);
            failed++;
        }
    }
    ck_assert_msg(failed == 0, "%d next-fire cases fail", failed);
}
END_TEST

/* Sub-minute precision of `after`: strictly after, at second 0. */
START_TEST(test_next_strictly_after)
{
    apr_time_t ten = at("2024-05-01T10:00:00Z");

    ck_assert_str_eq(next_cron("cron(0 10 * * ? *)", ten - 1), "2024-05-01T10:00:00Z");
    ck_assert_str_eq(next_cron("cron(0 10 * * ? *)", ten), "2024-05-02T10:00:00Z");
    ck_assert_str_eq(next_cron("cron(* * * * ? *)", ten + 1), "2024-05-01T10:01:00Z");
    ck_assert_str_eq(next_cron("cron(* * * * ? *)", at("2024-12-31T23:59:59Z") + 999999),
                     "2025-01-01T00:00:00Z");
}
END_TEST

/* Before 1970 the search starts at the first minute cron can name, less
 * the epoch itself, since 0 means "none"; after 2199 nothing is left. */
START_TEST(test_next_outside_years)
{
    ck_assert_str_eq(next_cron("cron(* * * * ? *)", -1), "1970-01-01T00:01:00Z");
    ck_assert_str_eq(next_cron("cron(0 0 * * ? *)", -1), "1970-01-02T00:00:00Z");
    ck_assert_str_eq(next_cron("cron(30 1 ? * MON *)", -APR_INT64_C(86400000000) * 365 * 10),
                     "1970-01-05T01:30:00Z");
    ck_assert_str_eq(next_cron("cron(* * * * ? *)", 0), "1970-01-01T00:01:00Z");
    ck_assert_str_eq(next_cron("cron(* * * * ? *)", at("2199-12-31T23:59:00Z")), "none");
    ck_assert_str_eq(next_cron("cron(* * * * ? *)", APR_INT64_MAX), "none");
}
END_TEST

/* A schedule that never fires again answers 0 after a bounded search,
 * and the search is quick even from the far past. */
START_TEST(test_next_never)
{
    static const char *const never[] = {
        "cron(0 0 31 2 ? *)",
        "cron(0 0 30 2 ? *)",
        "cron(0 0 31 4,6,9,11 ? *)",
        "cron(0 0 30W 2 ? *)",
    };
    size_t i;
    int k;

    for (i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        ad_schedule_t *s = parse_ok(never[i]);

        for (k = 0; k < 50; k++) {
            ck_assert_int_eq(ad_schedule_next(s, 0, -1), 0);
        }
    }
}
END_TEST

/* Every fire time of a busy schedule over a leap year, checked against
 * the calendar one by one: weekdays only, hours 8-17, every 5 minutes. */
START_TEST(test_next_year_walk)
{
    ad_schedule_t *s = parse_ok("cron(0/5 8-17 ? * MON-FRI *)");
    apr_time_t t = at("2023-12-31T23:59:00Z");
    apr_time_t end = at("2025-01-01T00:00:00Z");
    apr_time_exp_t xt;
    int fires = 0;

    for (;;) {
        t = ad_schedule_next(s, 0, t);
        if (t >= end) {
            break;
        }
        ck_assert_int_eq(apr_time_exp_gmt(&xt, t), APR_SUCCESS);
        ck_assert_int_ge(xt.tm_wday, 1);
        ck_assert_int_le(xt.tm_wday, 5);
        ck_assert_int_ge(xt.tm_hour, 8);
        ck_assert_int_le(xt.tm_hour, 17);
        ck_assert_int_eq(xt.tm_min % 5, 0);
        ck_assert_int_eq(xt.tm_sec, 0);
        fires++;
    }
    /* 2024 has 262 weekdays, each with 10 hours of 12 fires */
    ck_assert_int_eq(fires, 262 * 10 * 12);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Conformance: every expression in LocalStack's AWS-recorded snapshot */
/* ------------------------------------------------------------------ */

/* Pulls "...[cron(...)]" keys out of the snapshot's text, which avoids a
 * JSON dependency in this test. Returns the number of cases checked. */
static int check_snapshot(const char *text, const char *key, int valid)
{
    const char *p = text, *end;
    char *expr;
    int n = 0;

    while ((p = strstr(p, key)) != NULL) {
        p += strlen(key);
        end = strstr(p, ")]\"");
        ck_assert_ptr_nonnull(end);
        expr = apr_pstrmemdup(pool, p, end + 1 - p);
        if (valid) {
            ACCEPT(expr);
        }
        else {
            REJECT(expr);
        }
        n++;
    }
    return n;
}

START_TEST(test_conformance)
{
    const char *dir = getenv("AD_CONFORMANCE_DIR");
    const char *path;
    char *text;
    apr_size_t len;
    FILE *f;
    int ok, bad;

    ck_assert_msg(dir != NULL, "AD_CONFORMANCE_DIR is not set: the schedule "
                               "conformance data cannot be read");
    path = apr_pstrcat(pool, dir,
                       "/localstack/tests/aws/services/events/"
                       "test_events_schedule.snapshot.json",
                       NULL);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    text = apr_palloc(pool, 1 << 20);
    len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[len] = '\0';
    ok = check_snapshot(text, "tests_put_rule_with_schedule_cron[", 1);
    bad = check_snapshot(text, "tests_put_rule_with_invalid_schedule_cron[", 0);
    fprintf(stderr,
            "schedule conformance: %d accepted, %d rejected as AWS "
            "did\n",
            ok, bad);
    ck_assert_int_gt(ok, 0);
    ck_assert_int_gt(bad, 0);
}
END_TEST

/* ---- InvocationRateLimit (ad_ratelimit) ---------------------------- */

/* Starts a greedy caller gets in one second, polling every microsecond. */
static int starts_in_one_second(int limit)
{
    ad_ratelimit_t rl;
    apr_time_t t;
    int n = 0;

    ad_ratelimit_init(&rl, limit);
    for (t = 1000000; t < 2000000; t++) {
        n += ad_ratelimit_take(&rl, t);
    }
    return n;
}

START_TEST(test_ratelimit_never_over_the_limit)
{
    static const int limits[] = {1, 3, 300, 52500, 52501, 300000, 525001, 700000, 1000000};
    size_t i;

    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        int n = starts_in_one_second(limits[i]);
        ck_assert_msg(n <= limits[i], "limit %d: %d starts in one second", limits[i], n);
        ck_assert_msg(n >= limits[i] * 0.45, "limit %d: only %d starts", limits[i], n);
    }
}
END_TEST

/* Start times of a caller that polls every microsecond while it is busy:
 * busy 0.5 s, idle 0.7 s (a full burst builds up), busy 1.8 s. */
static apr_size_t bursty_starts(int limit, apr_time_t *out)
{
    ad_ratelimit_t rl;
    apr_time_t t;
    apr_size_t n = 0;

    ad_ratelimit_init(&rl, limit);
    for (t = 1000000; t < 4000000; t++) {
        if ((t < 1500000 || t >= 2200000) && ad_ratelimit_take(&rl, t)) {
            out[n++] = t;
        }
    }
    return n;
}

/* The most starts any one-second window holds. */
static apr_size_t busiest_second(const apr_time_t *v, apr_size_t n)
{
    apr_size_t i, j = 0, most = 0;

    for (i = 0; i < n; i++) {
        while (j < n && v[j] < v[i] + 1000000) {
            j++;
        }
        most = j - i > most ? j - i : most;
    }
    return most;
}

START_TEST(test_ratelimit_no_window_over_the_limit)
{
    static const int limits[] = {1,    3,    21,   22,    300,   525,    526,
                                 1000, 1050, 5000, 52500, 52501, 300000, 1000000};
    apr_time_t *v = malloc(sizeof(*v) * 3000000);
    size_t i;

    ck_assert_ptr_nonnull(v);
    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        apr_size_t n = bursty_starts(limits[i], v), most = busiest_second(v, n);
        ck_assert_msg(most <= (apr_size_t)limits[i], "limit %d: %zu starts in one second",
                      limits[i], most);
        ck_assert_msg(most >= limits[i] * 0.45, "limit %d: only %zu starts", limits[i], most);
    }
    free(v);
}
END_TEST

/* apidestd's threads wait in whole milliseconds: a caller that comes back
 * every 1 or 1.9 ms and takes what it may still gets the limit's rate. */
START_TEST(test_ratelimit_coarse_caller_gets_the_rate)
{
    static const int limits[] = {2000, 20000, 52500};
    static const apr_interval_time_t every[] = {1000, 1900};
    size_t i, k;

    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        for (k = 0; k < 2; k++) {
            ad_ratelimit_t rl;
            apr_time_t t;
            int n = 0;
            ad_ratelimit_init(&rl, limits[i]);
            for (t = 1000000; t < 2000000; t += every[k]) {
                while (ad_ratelimit_take(&rl, t)) {
                    n++;
                }
            }
            ck_assert_msg(n >= limits[i] / 1.05 * 0.9 && n <= limits[i],
                          "limit %d, every %d us: %d starts in one second", limits[i],
                          (int)every[k], n);
        }
    }
}
END_TEST

/* After a pause, how many may start at once: 2 ms of the rate, at least 1. */
START_TEST(test_ratelimit_burst_is_two_milliseconds)
{
    static const int limits[] = {1, 300, 525, 526, 1050, 52500, 1000000};
    static const int burst[] = {1, 1, 1, 2, 2, 100, 1000};
    size_t i;

    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        ad_ratelimit_t rl;
        apr_time_t t = apr_time_from_sec(1700000000);
        int n = 0;
        ad_ratelimit_init(&rl, limits[i]);
        ck_assert(ad_ratelimit_take(&rl, t));
        t += apr_time_from_sec(3600);
        while (ad_ratelimit_take(&rl, t)) {
            n++;
        }
        ck_assert_msg(n == burst[i], "limit %d: %d at once", limits[i], n);
        ck_assert(ad_ratelimit_when(&rl) > t);
    }
}
END_TEST

START_TEST(test_ratelimit_clock_set_back)
{
    ad_ratelimit_t rl;
    apr_time_t t = apr_time_from_sec(1700000000);

    ad_ratelimit_init(&rl, 300);
    ck_assert(ad_ratelimit_take(&rl, t));
    ck_assert(!ad_ratelimit_take(&rl, t + 1000));
    /* an hour back: the next slot is one spacing away, not an hour */
    t -= apr_time_from_sec(3600);
    ck_assert(ad_ratelimit_take(&rl, t));
    ck_assert(!ad_ratelimit_take(&rl, t + 1000));
    ck_assert(ad_ratelimit_take(&rl, t + 3500));
    /* the core asks first, then takes */
    ck_assert(!ad_ratelimit_ready(&rl, t + 3600));
    t -= apr_time_from_sec(60);
    ck_assert(ad_ratelimit_ready(&rl, t));

    /* with a burst (52,500/s: 100 at once, 20 us apart), a full burst
     * taken, then the clock a second back: a burst again, not a second's
     * wait */
    ad_ratelimit_init(&rl, 52500);
    t = apr_time_from_sec(1700000000);
    while (ad_ratelimit_take(&rl, t)) {
    }
    ck_assert(!ad_ratelimit_ready(&rl, t + 10));
    ck_assert(ad_ratelimit_ready(&rl, t + 20));
    t -= apr_time_from_sec(1);
    ck_assert(ad_ratelimit_take(&rl, t));
    ck_assert(ad_ratelimit_when(&rl) <= t + 20);
}
END_TEST

/* The default backoff: 185 retries with full jitter (a wait uniform below
 * min(cap, base * 2^n)) take about EventBridge's 24 h on average, so that
 * the default RetryAttempts does not end retries long before the default
 * MaximumEventAge. With a cap of 480 s they took 11.8 h. The mean of a
 * uniform wait is the wait at the middle draw, r = 2^31. */
START_TEST(test_default_backoff_spans_a_day)
{
    apr_pool_t *p;
    ad_conf_t *c;
    double mean = 0;
    apr_uint32_t a;

    apr_pool_create(&p, NULL);
    c = ad_conf_make(p);
    for (a = 1; a <= 185; a++) {
        mean += (double)ad_backoff_delay(c->backoff_base_sec, c->backoff_cap_sec, a, 0, 0x80000000u,
                                         0) /
                APR_USEC_PER_SEC;
    }
    ck_assert_msg(mean > 20 * 3600.0 && mean <= 86400.0, "185 retries take %.1f h", mean / 3600);
    apr_pool_destroy(p);
}
END_TEST

/* The draw spans [0, ceiling); the ceiling doubles up to the cap; the
 * floor, a Retry-After within the cap, and a cap below the base hold. */
START_TEST(test_backoff_bounds)
{
    const apr_interval_time_t s = APR_USEC_PER_SEC, floor = apr_time_from_msec(100);

    ck_assert_int_eq(ad_backoff_delay(1, 480, 1, 0, 0, floor), floor);
    ck_assert_int_eq(ad_backoff_delay(1, 480, 1, 0, 0x80000000u, floor), s / 2);
    ck_assert_int_eq(ad_backoff_delay(1, 480, 4, 0, 0x80000000u, floor), 4 * s);
    ck_assert_int_lt(ad_backoff_delay(1, 480, 4, 0, 0xffffffffu, floor), 8 * s);
    ck_assert_int_ge(ad_backoff_delay(1, 480, 4, 0, 0xffffffffu, floor), 8 * s - 1000);
    ck_assert_int_eq(ad_backoff_delay(1, 480, 30, 0, 0x80000000u, floor), 240 * s);
    ck_assert_int_eq(ad_backoff_delay(1, 480, 4000000000u, 0, 0x80000000u, floor), 240 * s);
    ck_assert_int_eq(ad_backoff_delay(1, 480, 1, 90 * s, 0, floor), 90 * s);
    ck_assert_int_eq(ad_backoff_delay(1, 480, 1, 9000 * s, 0, floor), 480 * s);
    ck_assert_int_eq(ad_backoff_delay(60, 5, 3, 0, 0x80000000u, floor), 30 * s);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *schedule_suite(void)
{
    Suite *s = suite_create("schedule");
    TCase *rate = tcase_create("rate");
    TCase *parse = tcase_create("cron_parse");
    TCase *next = tcase_create("cron_next");
    TCase *conf = tcase_create("conformance");
    TCase *limit = tcase_create("ratelimit");

    tcase_add_checked_fixture(rate, setup, teardown);
    tcase_add_test(rate, test_rate_valid);
    tcase_add_test(rate, test_rate_invalid);
    tcase_add_test(rate, test_rate_anchor);
    tcase_add_test(rate, test_rate_units);
    tcase_add_test(rate, test_rate_overflow);
    suite_add_tcase(s, rate);

    tcase_add_checked_fixture(parse, setup, teardown);
    tcase_add_test(parse, test_cron_valid);
    tcase_add_test(parse, test_cron_invalid);
    tcase_add_test(parse, test_max_length);
    tcase_add_test(parse, test_error_outputs);
    tcase_add_test(parse, test_error_details);
    suite_add_tcase(s, parse);

    tcase_add_checked_fixture(next, setup, teardown);
    tcase_add_test(next, test_next_table);
    tcase_add_test(next, test_next_strictly_after);
    tcase_add_test(next, test_next_outside_years);
    tcase_add_test(next, test_next_never);
    tcase_add_test(next, test_next_year_walk);
    suite_add_tcase(s, next);

    tcase_add_checked_fixture(conf, setup, teardown);
    tcase_add_test(conf, test_conformance);
    suite_add_tcase(s, conf);

    tcase_add_test(limit, test_ratelimit_never_over_the_limit);
    tcase_add_test(limit, test_ratelimit_clock_set_back);
    tcase_add_test(limit, test_ratelimit_no_window_over_the_limit);
    tcase_add_test(limit, test_ratelimit_coarse_caller_gets_the_rate);
    tcase_add_test(limit, test_ratelimit_burst_is_two_milliseconds);
    tcase_add_test(limit, test_default_backoff_spans_a_day);
    tcase_add_test(limit, test_backoff_bounds);
    suite_add_tcase(s, limit);
    return s;
}

int main(void)
{
    return unit_run(schedule_suite());
}
