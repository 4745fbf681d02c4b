/* Unit tests for ad_pattern: every conformance case recorded against AWS
 * (and event-ruler) in $AD_CONFORMANCE_DIR/patterns.jsonl, plus focused
 * tests per operator and edge case. */
#include <check.h>

#include "unit_conformance.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <jansson.h>

#include "ad_pattern.h"
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

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static ad_pattern_t *compile(const char *pattern, const char **reason)
{
    return ad_pattern_compile(pool, pattern, strlen(pattern), reason);
}

/* 1/0 for match/no match; aborts the test when the pattern is invalid. */
static int matches(const char *pattern, const char *event)
{
    const char *reason = NULL;
    ad_pattern_t *pat = compile(pattern, &reason);
    json_error_t jerr;
    json_t *ev;
    int r;

    ck_assert_msg(pat != NULL, "pattern %s rejected: %s", pattern, reason ? reason : "(null)");
    ev = json_loads(event, 0, &jerr);
    ck_assert_msg(ev != NULL, "bad test event %s: %s", event, jerr.text);
    r = ad_pattern_match(pat, ev);
    json_decref(ev);
    return r;
}

/* The reason a pattern is rejected with ("" when it is accepted). */
static const char *rejects(const char *pattern)
{
    const char *reason = NULL;
    ad_pattern_t *pat = compile(pattern, &reason);

    if (pat) {
        return "";
    }
    ck_assert_ptr_nonnull(reason);
    return reason;
}

#define MATCH(p, e)    ck_assert_msg(matches(p, e) == 1, "%s should match %s", p, e)
#define NO_MATCH(p, e) ck_assert_msg(matches(p, e) == 0, "%s should not match %s", p, e)
#define REJECT(p, msg) ck_assert_str_eq(rejects(p), msg)

/* ------------------------------------------------------------------ */
/* Conformance data                                                    */
/* ------------------------------------------------------------------ */

static const char *reason_of(const json_t *c)
{
    const char *msg = json_string_value(json_object_get(json_object_get(c, "error"), "message"));
    size_t pl = strlen(AD_PATTERN_ERR_PREFIX);

    if (!msg || strncmp(msg, AD_PATTERN_ERR_PREFIX, pl) != 0) {
        return NULL;
    }
    return msg + pl;
}

/* NULL when the case passes, else what went wrong. */
static const char *check_case(const json_t *c)
{
    const char *pattern = json_string_value(json_object_get(c, "pattern_json"));
    const char *event_text = json_string_value(json_object_get(c, "event_json"));
    const json_t *expect = json_object_get(c, "expect");
    const char *want = json_is_string(expect) ? json_string_value(expect) : NULL;
    const char *reason = NULL, *expected_reason;
    ad_pattern_t *pat;
    json_t *event = NULL;
    json_error_t jerr;
    int r;

    if (!pattern) {
        return "no pattern_json";
    }
    if (event_text) {
        event = json_loads(event_text, 0, &jerr);
    }
    if (want && strcmp(want, "invalid_event") == 0) {
        r = ad_pattern_event_is_valid(event);
        json_decref(event);
        return r ? "event accepted" : NULL;
    }
    pat = ad_pattern_compile(pool, pattern, strlen(pattern), &reason);
    if (want && strcmp(want, "invalid") == 0) {
        json_decref(event);
        if (pat) {
            return "pattern accepted";
        }
        expected_reason = reason_of(c);
        if (expected_reason && strcmp(expected_reason, reason) != 0) {
            return apr_psprintf(pool, "reason\n    got:  %s\n    want: %s", reason,
                                expected_reason);
        }
        return NULL;
    }
    if (!json_is_boolean(expect)) {
        json_decref(event);
        return "unknown expect";
    }
    if (!pat) {
        json_decref(event);
        return apr_psprintf(pool, "pattern rejected: %s", reason);
    }
    if (!event) {
        return apr_psprintf(pool, "event does not parse: %s", jerr.text);
    }
    if (!ad_pattern_event_is_valid(event) &&
        strncmp(json_string_value(json_object_get(c, "source")), "localstack", 10) == 0) {
        json_decref(event);
        return "AWS event failed the TestEventPattern check";
    }
    r = ad_pattern_match(pat, event);
    json_decref(event);
    if (r != json_is_true(expect)) {
        return r ? "matched, should not" : "did not match, should";
    }
    return NULL;
}

START_TEST(test_conformance)
{
    unit_run_conformance(pool, "patterns.jsonl", check_case, "pattern");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Focused tests                                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_exact_values)
{
    MATCH("{\"a\":[\"x\"]}", "{\"a\":\"x\"}");
    NO_MATCH("{\"a\":[\"x\"]}", "{\"a\":\"X\"}");
    MATCH("{\"a\":[300]}", "{\"a\":300.0}");
    MATCH("{\"a\":[3e2]}", "{\"a\":300}");
    NO_MATCH("{\"a\":[300]}", "{\"a\":\"300\"}");
    MATCH("{\"a\":[null]}", "{\"a\":null}");
    NO_MATCH("{\"a\":[null]}", "{\"a\":\"null\"}");
    NO_MATCH("{\"a\":[null]}", "{\"a\":[]}");
    MATCH("{\"a\":[true]}", "{\"a\":true}");
    NO_MATCH("{\"a\":[false]}", "{\"a\":true}");
    MATCH("{\"a\":[\"*\"]}", "{\"a\":\"*\"}");
    NO_MATCH("{\"a\":[\"*\"]}", "{\"a\":\"x\"}");
    /* literal IPs match as addresses */
    MATCH("{\"a\":[\"10.0.0.1\"]}", "{\"a\":\"010.0.0.1\"}");
    /* 2^60+1 is not a double: matched by its text only */
    MATCH("{\"a\":[1152921504606846977]}", "{\"a\":1152921504606846977}");
    NO_MATCH("{\"a\":[1152921504606846977]}", "{\"a\":1152921504606846976}");
}
END_TEST

START_TEST(test_arrays_and_paths)
{
    MATCH("{\"a\":[\"x\"]}", "{\"a\":[\"y\",\"x\"]}");
    MATCH("{\"a\":{\"b\":[1]}}", "{\"a\":[{\"b\":2},{\"b\":1}]}");
    MATCH("{\"a.b\":[1]}", "{\"a\":{\"b\":1}}");
    MATCH("{\"a\":{\"b\":[1]}}", "{\"a.b\":1}");
    NO_MATCH("{\"a\":{\"b\":[1]}}", "{\"a\":\"{\\\"b\\\":1}\"}");
    /* array consistency: both fields from one element */
    MATCH("{\"e\":{\"f\":[\"Anna\"],\"l\":[\"Smith\"]}}",
          "{\"e\":[{\"f\":\"John\",\"l\":\"Jones\"},{\"f\":\"Anna\",\"l\":\"Smith\"}]}");
    NO_MATCH("{\"e\":{\"f\":[\"Anna\"],\"l\":[\"Jones\"]}}",
             "{\"e\":[{\"f\":\"John\",\"l\":\"Jones\"},{\"f\":\"Anna\",\"l\":\"Smith\"}]}");
    /* the last of duplicate keys wins */
    MATCH("{\"a\":[\"x\"],\"a\":[\"y\"]}", "{\"a\":\"y\"}");
    NO_MATCH("{\"a\":[\"x\"],\"a\":[\"y\"]}", "{\"a\":\"x\"}");
}
END_TEST

START_TEST(test_string_operators)
{
    MATCH("{\"a\":[{\"prefix\":\"ab\"}]}", "{\"a\":\"abc\"}");
    NO_MATCH("{\"a\":[{\"prefix\":\"ab\"}]}", "{\"a\":12}");
    MATCH("{\"a\":[{\"prefix\":{\"equals-ignore-case\":\"AB\"}}]}", "{\"a\":\"abc\"}");
    MATCH("{\"a\":[{\"suffix\":\".png\"}]}", "{\"a\":\"x.png\"}");
    MATCH("{\"a\":[{\"suffix\":{\"equals-ignore-case\":\".png\"}}]}", "{\"a\":\"x.PNG\"}");
    MATCH("{\"a\":[{\"equals-ignore-case\":\"\xc3\xa9T\xc3\xa9\"}]}",
          "{\"a\":\"\xc3\x89t\xc3\x89\"}");
    NO_MATCH("{\"a\":[{\"equals-ignore-case\":\"\"}]}", "{\"a\":\"x\"}");
    MATCH("{\"a\":[{\"wildcard\":\"a*c*e\"}]}", "{\"a\":\"abcde\"}");
    NO_MATCH("{\"a\":[{\"wildcard\":\"a*c*e\"}]}", "{\"a\":\"abcd\"}");
    MATCH("{\"a\":[{\"wildcard\":\"a\\\\*b\"}]}", "{\"a\":\"a*b\"}");
    NO_MATCH("{\"a\":[{\"wildcard\":\"a\\\\*b\"}]}", "{\"a\":\"axb\"}");
    MATCH("{\"a\":[{\"wildcard\":\"a\\\\\\\\b\"}]}", "{\"a\":\"a\\\\b\"}");
}
END_TEST

/* Case folding as event-ruler's EqualsIgnoreCaseParser: each pattern
 * character may appear as Java's lower or upper case of it (ROOT locale,
 * per UTF-16 unit), whatever the script; the table covered only Latin,
 * basic Greek and basic Cyrillic. */
START_TEST(test_equals_ignore_case_all_scripts)
{
    static const struct {
        const char *pattern, *event;
        int match;
    } cases[] = {
        {"{\"a\":[{\"equals-ignore-case\":\"h\xc3\xa0 n\xe1\xbb\x99i\"}]}",
         "{\"a\":\"H\xc3\x80 N\xe1\xbb\x98I\"}", 1},
        {"{\"a\":[{\"equals-ignore-case\":\"\xd2\x91\"}]}", "{\"a\":\"\xd2\x90\"}", 1},
        {"{\"a\":[{\"prefix\":{\"equals-ignore-case\":\"\xd4\xb1\xd4\xb2\"}}]}",
         "{\"a\":\"\xd5\xa1\xd5\xa2\xd5\xa3\"}", 1},
        {"{\"a\":[{\"equals-ignore-case\":\"\xef\xbc\xa1\xef\xbc\xa2\"}]}",
         "{\"a\":\"\xef\xbd\x81\xef\xbd\x82\"}", 1},
        {"{\"a\":[{\"equals-ignore-case\":\"\xc2\xb5\"}]}", "{\"a\":\"\xce\x9c\"}", 1},
        {"{\"a\":[{\"equals-ignore-case\":\"\xc3\x9f\"}]}", "{\"a\":\"SS\"}", 1},
        {"{\"a\":[{\"equals-ignore-case\":\"\xc3\x9f\"}]}", "{\"a\":\"\xc3\x9f\"}", 1},
        {"{\"a\":[{\"equals-ignore-case\":\"\xc3\x9f\"}]}", "{\"a\":\"ss\"}", 0},
        {"{\"a\":[{\"suffix\":{\"equals-ignore-case\":\"\xc3\x9f\"}}]}", "{\"a\":\"STRASS\"}", 1},
        {"{\"a\":[{\"equals-ignore-case\":\"\xc4\xb1\"}]}", "{\"a\":\"I\"}", 1},
        {"{\"a\":[{\"equals-ignore-case\":\"\xc4\xb1\"}]}", "{\"a\":\"\xc4\xb0\"}", 0},
        {"{\"a\":[{\"equals-ignore-case\":\"\xc7\x85\"}]}", "{\"a\":\"\xc7\x85\"}", 0},
        {"{\"a\":[{\"equals-ignore-case\":\"\xc7\x85\"}]}", "{\"a\":\"\xc7\x86\"}", 1},
        {"{\"a\":[{\"equals-ignore-case\":\"\xf0\x90\x90\x80\"}]}", "{\"a\":\"\xf0\x90\x90\xa8\"}",
         0},
        {"{\"a\":[{\"anything-but\":{\"equals-ignore-case\":\"\xc3\x9f\"}}]}", "{\"a\":\"SS\"}", 0},
        {"{\"a\":[{\"anything-but\":{\"equals-ignore-case\":[\"\xd2\x91\"]}}]}",
         "{\"a\":\"\xd2\x90\"}", 0},
        {"{\"a\":[{\"anything-but\":{\"equals-ignore-case\":[\"\xd2\x91\"]}}]}",
         "{\"a\":\"\xd0\x83\"}", 1},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(matches(cases[i].pattern, cases[i].event) == cases[i].match, "%s on %s",
                      cases[i].pattern, cases[i].event);
    }
}
END_TEST

START_TEST(test_anything_but)
{
    MATCH("{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":null}");
    NO_MATCH("{\"a\":[{\"anything-but\":\"x\"}]}", "{}");
    MATCH("{\"a\":[{\"anything-but\":[1,2]}]}", "{\"a\":\"1\"}");
    NO_MATCH("{\"a\":[{\"anything-but\":[1,2]}]}", "{\"a\":2.0}");
    MATCH("{\"a\":[{\"anything-but\":{\"prefix\":\"x\"}}]}", "{\"a\":5}");
    NO_MATCH("{\"a\":[{\"anything-but\":{\"suffix\":[\"x\",\"y\"]}}]}", "{\"a\":\"ay\"}");
    NO_MATCH("{\"a\":[{\"anything-but\":{\"equals-ignore-case\":\"x\"}}]}", "{\"a\":\"X\"}");
    MATCH("{\"a\":[{\"anything-but\":{\"wildcard\":\"*x*\"}}]}", "{\"a\":\"abc\"}");
    MATCH("{\"a\":[{\"anything-but\":[\"r\"]},{\"exists\":false}]}", "{\"b\":1}");
}
END_TEST

START_TEST(test_numeric)
{
    MATCH("{\"a\":[{\"numeric\":[\">\",0,\"<=\",5]}]}", "{\"a\":5}");
    NO_MATCH("{\"a\":[{\"numeric\":[\">\",0,\"<=\",5]}]}", "{\"a\":0}");
    MATCH("{\"a\":[{\"numeric\":[\"=\",3.018e2]}]}", "{\"a\":301.8}");
    MATCH("{\"a\":[{\"numeric\":[\"<\",-1e300]}]}", "{\"a\":-1e301}");
    NO_MATCH("{\"a\":[{\"numeric\":[\">=\",1]}]}", "{\"a\":\"5\"}");
    NO_MATCH("{\"a\":[{\"numeric\":[\">=\",1]}]}", "{\"a\":null}");
    /* -0 is 0, as event-ruler's BigDecimal has it */
    MATCH("{\"a\":[{\"numeric\":[\"=\",-0]}]}", "{\"a\":0}");
    MATCH("{\"a\":[{\"numeric\":[\"=\",0]}]}", "{\"a\":-0.0}");
    MATCH("{\"a\":[-0.0]}", "{\"a\":0}");
    NO_MATCH("{\"a\":[{\"numeric\":[\"<\",0]}]}", "{\"a\":-0.0}");
    NO_MATCH("{\"a\":[{\"anything-but\":0}]}", "{\"a\":-0.0}");
}
END_TEST

START_TEST(test_exists_and_cidr)
{
    MATCH("{\"a\":[{\"exists\":true}]}", "{\"a\":null}");
    NO_MATCH("{\"a\":[{\"exists\":true}]}", "{\"a\":{\"b\":1}}");
    NO_MATCH("{\"a\":[{\"exists\":true}]}", "{\"a\":[]}");
    MATCH("{\"a\":[{\"exists\":false}]}", "{\"a\":{\"b\":1}}");
    MATCH("{\"a\":{\"b\":[{\"exists\":false}]}}", "{\"c\":1}");
    MATCH("{\"a\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"a\":\"10.0.0.255\"}");
    NO_MATCH("{\"a\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"a\":\"10.0.1.0\"}");
    MATCH("{\"a\":[{\"cidr\":\"2001:db8::/32\"}]}", "{\"a\":\"2001:db8:ffff::1\"}");
}
END_TEST

START_TEST(test_or)
{
    const char *p = "{\"$or\":[{\"a\":[1]},{\"b\":[2],\"$or\":[{\"c\":[3]},{\"d\":[4]}]}]}";

    MATCH(p, "{\"a\":1}");
    MATCH(p, "{\"b\":2,\"d\":4}");
    NO_MATCH(p, "{\"b\":2}");
    REJECT("{\"$or\":[{\"a\":[1]}]}", "There must have at least 2 Objects in $or relationship.");
    REJECT("{\"$or\":[{\"prefix\":[1]},{\"a\":[1]}]}",
           "prefix is Ruler reserved fieldName which cannot be used inside $or.");
}
END_TEST

START_TEST(test_or_combination_limit)
{
    /* 4 nested $or of 6 branches each: 1296 combinations */
    const char *br = "[{\"a\":[1]},{\"b\":[1]},{\"c\":[1]},{\"d\":[1]},{\"e\":[1]},{\"f\":[1]}]";
    const char *p = apr_psprintf(pool,
                                 "{\"w\":{\"$or\":%s},\"x\":{\"$or\":%s},"
                                 "\"y\":{\"$or\":%s},\"z\":{\"$or\":%s}}",
                                 br, br, br, br);

    ck_assert_str_ne(rejects(p), "");
    ck_assert_str_eq(rejects(apr_psprintf(pool,
                                          "{\"w\":{\"$or\":%s},"
                                          "\"x\":{\"$or\":%s},\"y\":{\"$or\":%s}}",
                                          br, br, br)),
                     "");
}
END_TEST

/* Two-letter field names, n of them, as "aa":[1],"ab":[1],... */
static const char *many_fields(int n)
{
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const char *out = "";
    int i;

    for (i = 0; i < n; i++) {
        out = apr_psprintf(pool, "%s%s\"%c%c\":[1]", out, i ? "," : "", al[i / 62], al[i % 62]);
    }
    return out;
}

/* The review's 4 KB pattern: 1,024 combinations, 200 fields in each, then
 * a $or of 180 branches. Every branch copied all the sub-rules before the
 * count refused it: 2.9 GB and 12-15 s (libcheck's 4 s timeout fails the
 * old code). Once refused, the rest is only parsed. */
START_TEST(test_or_expansion_bounded)
{
    const char *p = "{", *z = "";
    int i;

    for (i = 0; i < 10; i++) {
        p = apr_psprintf(pool, "%s\"$or\":[{\"a%d\":[1]},{\"b%d\":[1]}],", p, i, i);
    }
    for (i = 0; i < 180; i++) {
        z = apr_pstrcat(pool, z, i ? "," : "", "{\"z\":[1]}", NULL);
    }
    p = apr_pstrcat(pool, p, many_fields(200), ",\"$or\":[", z, "]}", NULL);
    ck_assert_str_eq(rejects(p), "Event pattern has more than 1000 combinations of $or");
    /* ...and an error after the count went over is still the one reported */
    p = apr_pstrcat(pool, p, "", NULL);
    memcpy(strstr(p, "{\"z\":[1]}]}"), "{\"z\":42 }]}", 11);
    ck_assert_str_eq(rejects(p), "\"z\" must be an object or an array");
    /* 1,000 combinations of 400 fields each are a pattern, not an attack */
    p = "{";
    for (i = 0; i < 3; i++) {
        int j;
        p = apr_pstrcat(pool, p, "\"$or\":[", NULL);
        for (j = 0; j < 10; j++) {
            p = apr_psprintf(pool, "%s%s{\"%c%d\":[1]}", p, j ? "," : "", 'A' + i, j);
        }
        p = apr_pstrcat(pool, p, "],", NULL);
    }
    ck_assert_str_eq(rejects(apr_pstrcat(pool, p, many_fields(400), "}", NULL)), "");
    /* a pattern file may hold more: 2,100 fields, then a $or of 1,000
     * branches, copies 2.1M fields (the bound grows with the pattern) */
    for (i = 0, z = ""; i < 1000; i++) {
        z = apr_psprintf(pool, "%s%s{\"z%d\":[1]}", z, i ? "," : "", i);
    }
    for (i = 0, p = ""; i < 2100; i++) {
        p = apr_psprintf(pool, "%s\"f%d\":[1],", p, i);
    }
    ck_assert_str_eq(rejects(apr_pstrcat(pool, "{", p, "\"$or\":[", z, "]}", NULL)), "");
}
END_TEST

/* U+4E00 + i as UTF-8 (CJK: three bytes, no two the same). */
static const char *cjk(int i)
{
    unsigned cp = 0x4E00 + (unsigned)i;
    return apr_psprintf(pool, "%c%c%c", 0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F),
                        0x80 | (cp & 0x3F));
}

/* Judging wildcards: the complexity search stepped every position of a
 * long wildcard for every byte any value has (a 4,000-character wildcard:
 * 2.2 s), and an anything-but wildcard list sorted itself once per value
 * (1,010 values: 2.7 s). Both are sparse now; these take milliseconds
 * (libcheck's 4 s timeout fails the old code on the three together). */
START_TEST(test_wildcard_checks_bounded)
{
    const char *w = "", *list = "";
    int i;

    for (i = 0; i < 4035; i++) {
        w = apr_pstrcat(pool, w, i % 7 == 3 ? "a" : cjk((i * 37) % 200), NULL);
    }
    ck_assert_str_eq(rejects(apr_pstrcat(pool, "{\"f\":[{\"wildcard\":\"*", w, "\"}]}", NULL)), "");
    ck_assert_str_eq(rejects(apr_pstrcat(pool, "{\"f\":[{\"wildcard\":\"", w, "\"}]}", NULL)), "");
    for (i = 0; i < 1010; i++) {
        list = apr_pstrcat(pool, list, i ? ",\"" : "\"", cjk(i), "\"", NULL);
    }
    ck_assert_str_eq(rejects(apr_pstrcat(pool, "{\"f\":[{\"anything-but\":{\"wildcard\":[", list,
                                         "]}}]}", NULL)),
                     "");
    /* the judgement itself is unchanged */
    ck_assert_str_eq(rejects("{\"f\":[{\"wildcard\":\"*ab*ab*ab*ab*ab*ab\"}]}"),
                     "Rule is too complex - try using fewer wildcard characters or fewer "
                     "repeating character sequences after a wildcard character");
}
END_TEST

/* "\u0000" cut a name or an operator short: "source\u0000junk" matched
 * as source, a second key equal up to it replaced the first, and
 * "exactly\u0000zz" was taken for exactly. */
START_TEST(test_nul_in_names_refused)
{
    const char *msg = "Field names and operators must not contain \\u0000";

    REJECT("{\"source\\u0000junk\":[\"s\"]}", msg);
    REJECT("{\"source\":[\"s\"],\"source\\u0000\":[\"t\"]}", msg);
    REJECT("{\"source\":[{\"exactly\\u0000zz\":\"s\"}]}", msg);
    REJECT("{\"d\":{\"a\\u0000\":[1]}}", msg);
    /* in values it is a character like any other */
    ck_assert_str_eq(rejects("{\"source\":[\"s\\u0000t\"]}"), "");
}
END_TEST

START_TEST(test_validation_messages)
{
    REJECT("{\"a\":42}", "\"a\" must be an object or an array");
    REJECT("{\"a\":[]}", "Empty arrays are not allowed");
    REJECT("{\"a\":{}}", "Empty objects are not allowed");
    REJECT("{\"a\":[{\"numeric\":[\">\",5,\"<\",1]}]}", "Bottom must be less than top");
    REJECT("{\"a\":[{\"numeric\":[\">\",-0,\"<\",0]}]}", "Bottom must be less than top");
    REJECT("{\"a\":[{\"numeric\":[\"=\",1,2]}]}", "Too many elements in numeric expression");
    REJECT("{\"a\":[{\"exists\":1}]}", "exists match pattern must be either true or false.");
    REJECT("{\"a\":[{\"prefix\":\"x\",\"suffix\":\"y\"}]}",
           "Only one key allowed in match expression");
    REJECT("{\"a\":[{\"wildcard\":\"a\\\\b\"}]}", "Invalid escape character at pos 2");
    REJECT("{\"a\":[{\"wildcard\":\"a**\"}]}", "Consecutive wildcard characters at pos 2");
    REJECT("{\"a\":[{\"cidr\":\"10.0.0.0/33\"}]}", "IPv4 mask bits must be < 32");
    REJECT("{\"a\":[{\"anything-but\":[\"x\",1]}]}",
           "Inside anything but list, either all values are number or string, "
           "mixed type is not supported");
    REJECT("{\"a\":[{\"numeric\":[\"<\",1e400]}]}", "Cannot compare number : 1e400");
    REJECT("{\"a\":[{\"wildcard\":\"*a*a*a*a*a*a*a*a*a*a*a\"}]}",
           "Rule is too complex - try using fewer wildcard characters or fewer "
           "repeating character sequences after a wildcard character");
    /* trailing text after the object is never read, as in event-ruler */
    ck_assert_str_eq(rejects("{\"a\":[1]} trailing"), "");
}
END_TEST

START_TEST(test_syntax_errors)
{
    REJECT("{\"a\":[1,]}",
           "Unexpected character (']' (code 93)): expected a valid "
           "value (JSON String, Number, Array, Object or token 'null', 'true' "
           "or 'false')\n at [Source: (String)\"{\"a\":[1,]}\"; line: 1, column: 9]");
    REJECT("{\"a\":[1", "Unexpected end-of-input: expected close marker for Array "
                        "(start marker at [Source: (String)\"{\"a\":[1\"; line: 1, column: 6])\n"
                        " at [Source: (String)\"{\"a\":[1\"; line: 1, column: 8]");
    REJECT("", "Filter is not an object\n at [Source: (String)\"\"; line: 1, column: 1]");
    REJECT("{\"a\":[01]}", "Invalid numeric value: Leading zeroes not allowed\n"
                           " at [Source: (String)\"{\"a\":[01]}\"; line: 1, column: 8]");
}
END_TEST

START_TEST(test_event_validity)
{
    json_t *ok = json_pack("{ssssssssssss}", "id", "1", "account", "1", "source", "s", "time", "t",
                           "region", "r", "detail-type", "d");
    json_t *arr = json_array();

    ck_assert_int_eq(ad_pattern_event_is_valid(ok), 1);
    json_object_del(ok, "region");
    ck_assert_int_eq(ad_pattern_event_is_valid(ok), 0);
    ck_assert_int_eq(ad_pattern_event_is_valid(arr), 0);
    ck_assert_int_eq(ad_pattern_event_is_valid(NULL), 0);
    json_decref(ok);
    json_decref(arr);
}
END_TEST

START_TEST(test_big_array_event)
{
    /* many elements: matching stays quick and consistent */
    json_t *ev = json_object(), *arr = json_array();
    ad_pattern_t *pat = compile("{\"r\":{\"k\":[\"v999\"],\"n\":[999]}}", NULL);
    int i;

    for (i = 0; i < 1000; i++) {
        json_array_append_new(arr, json_pack("{sssi}", "k", apr_psprintf(pool, "v%d", i), "n", i));
    }
    json_object_set_new(ev, "r", arr);
    ck_assert_ptr_nonnull(pat);
    ck_assert_int_eq(ad_pattern_match(pat, ev), 1);
    json_decref(ev);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *pattern_suite(void)
{
    Suite *s = suite_create("pattern");
    TCase *tc = tcase_create("conformance");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_conformance);
    suite_add_tcase(s, tc);
    tc = tcase_create("operators");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_exact_values);
    tcase_add_test(tc, test_arrays_and_paths);
    tcase_add_test(tc, test_string_operators);
    tcase_add_test(tc, test_equals_ignore_case_all_scripts);
    tcase_add_test(tc, test_anything_but);
    tcase_add_test(tc, test_numeric);
    tcase_add_test(tc, test_exists_and_cidr);
    tcase_add_test(tc, test_or);
    tcase_add_test(tc, test_or_combination_limit);
    tcase_add_test(tc, test_or_expansion_bounded);
    tcase_add_test(tc, test_wildcard_checks_bounded);
    tcase_add_test(tc, test_nul_in_names_refused);
    tcase_add_test(tc, test_validation_messages);
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_event_validity);
    tcase_add_test(tc, test_big_array_event);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(pattern_suite());
}
