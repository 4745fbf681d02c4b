/* Unit tests for ad_jsonpath and ad_transform: every InputPath /
 * InputTransformer case recorded against AWS in
 * $AD_CONFORMANCE_DIR/transformers.jsonl, plus focused tests of the JSONPath
 * subset, the reserved variables, the quoting rules, missing paths and the
 * PutTargets validation texts. */
#include <check.h>

#include "unit_conformance.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <jansson.h>

#include "ad_jsonpath.h"
#include "ad_transform.h"
#include "ad_util.h"
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
/* Fixtures and helpers                                                */
/* ------------------------------------------------------------------ */

#define EVENT_ID    "11111111-2222-4333-8444-555555555555"
#define DETAIL_TYPE "core.update-account-command"

/* Compact, in AWS's envelope key order, so whole-event output compares as
 * bytes. */
#define EVENT_HEAD                                                                                 \
    "{\"version\":\"0\",\"id\":\"" EVENT_ID "\",\"detail-type\":\"" DETAIL_TYPE "\","              \
    "\"source\":\"" DETAIL_TYPE "\",\"account\":\"111111111111\","                                 \
    "\"time\":\"2024-01-02T03:04:05Z\",\"region\":\"us-east-1\","                                  \
    "\"resources\":[\"arn:aws:x:1\"],"
#define PAYLOAD "{\"acc_id\":\"0a787ecb-4015\",\"sf_id\":\"baz\"}"
static const char EVENT[] =
    EVENT_HEAD "\"detail\":{\"command\":\"update-account\",\"payload\":" PAYLOAD ","
               "\"listsingle\":[\"HIGH\"],\"listmulti\":[\"ACTIVE\",\"INACTIVE\"],"
               "\"valid\":true,\"n\":5,\"f\":0.1,\"nul\":null,"
               "\"quote\":\"say \\\"hi\\\"\",\"nested\":{\"a\":[1,{\"b\":\"c\"}],\"d\":null}}}";

static const char *const MAP[] = {"userId",     "$.detail.payload.acc_id",
                                  "payload",    "$.detail.payload",
                                  "missing",    "$.detail.awsAccountId",
                                  "listsingle", "$.detail.listsingle",
                                  "listmulti",  "$.detail.listmulti",
                                  "valid",      "$.detail.valid",
                                  "n",          "$.detail.n",
                                  "f",          "$.detail.f",
                                  "nul",        "$.detail.nul",
                                  "quote",      "$.detail.quote",
                                  "nested",     "$.detail.nested",
                                  "res",        "$.resources[*]",
                                  NULL};

#define RULE_ARN "arn:aws:events:us-east-1:123456789012:rule/my-rule"
#define INGESTED "2024-01-02T03:04:06.789Z"
static const ad_transform_ctx_t CTX = {"my-rule", RULE_ARN, INGESTED};

#define NOT_DELIVERED "<not delivered>"

/* An InputPathsMap from "name", "path", ..., NULL. */
static apr_array_header_t *paths_map(const char *const *kv)
{
    apr_array_header_t *a = apr_array_make(pool, 8, sizeof(ad_transform_var_t));

    for (; kv && kv[0]; kv += 2) {
        ad_transform_var_t *v = apr_array_push(a);
        v->name = kv[0];
        v->path = kv[1];
    }
    return a;
}

static json_t *tree(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

    ck_assert_msg(v != NULL, "bad test JSON %s: %s", text, jerr.text);
    return ad_json_own(pool, v);
}

/* The body delivered for event, or NOT_DELIVERED. */
static const char *deliver(const ad_transform_t *t, const char *event,
                           const ad_transform_ctx_t *ctx)
{
    char *out = NULL;
    apr_size_t len = 0;
    const char *why = NULL;
    apr_status_t rv;

    rv = ad_transform_apply(pool, t, event ? tree(event) : NULL, ctx, &out, &len, &why);
    if (rv == APR_EINVAL) {
        ck_assert_msg(why && *why, "APR_EINVAL without a reason");
        return NOT_DELIVERED;
    }
    ck_assert_int_eq(rv, APR_SUCCESS);
    ck_assert_uint_eq(strlen(out), len);
    return out;
}

/* The error compiling these options gives, or "" when they compile. */
static const char *compile_error(const char *input, const char *path, const apr_array_header_t *map,
                                 const char *tpl)
{
    const char *err = NULL;
    ad_transform_t *t = ad_transform_compile(pool, "t1", input, path, map, tpl, &err);

    if (t) {
        return "";
    }
    ck_assert_ptr_nonnull(err);
    return err;
}

static const ad_transform_t *compile_ok(const char *input, const char *path,
                                        const apr_array_header_t *map, const char *tpl)
{
    const char *err = NULL;
    ad_transform_t *t = ad_transform_compile(pool, "t1", input, path, map, tpl, &err);

    ck_assert_msg(t != NULL, "options rejected: %s", err ? err : "(null)");
    return t;
}

static const char *with_template(const char *tpl)
{
    return deliver(compile_ok(NULL, NULL, paths_map(MAP), tpl), EVENT, &CTX);
}

#define TEMPLATE(tpl, want) ck_assert_str_eq(with_template(tpl), want)
#define REJECT(input, path, map, tpl, msg)                                                         \
    ck_assert_str_eq(compile_error(input, path, map, tpl), msg)

/* ------------------------------------------------------------------ */
/* Conformance data                                                    */
/* ------------------------------------------------------------------ */

static apr_array_header_t *map_of(const json_t *obj)
{
    apr_array_header_t *a = apr_array_make(pool, 8, sizeof(ad_transform_var_t));
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)obj, k, v)
    {
        ad_transform_var_t *e = apr_array_push(a);
        e->name = apr_pstrdup(pool, k);
        e->path = apr_pstrdup(pool, json_string_value(v));
    }
    return a;
}

/* Drop a dotted path ("originalEvent.time") that AWS's recording masked. */
static void drop_path(json_t *v, const char *dotted)
{
    char *copy = apr_pstrdup(pool, dotted), *last, *tok;
    const char *prev = NULL;

    for (tok = apr_strtok(copy, ".", &last); tok; tok = apr_strtok(NULL, ".", &last)) {
        if (prev) {
            v = json_object_get(v, prev);
        }
        prev = tok;
    }
    if (prev && json_is_object(v)) {
        json_object_del(v, prev);
    }
}

static const char *compare_output(const json_t *c, const char *out, apr_size_t len)
{
    const char *format = json_string_value(json_object_get(c, "expect_output_format"));
    const json_t *want = json_object_get(c, "expect_output");
    const json_t *ignore = json_object_get(c, "ignore_paths");
    json_t *got, *expect;
    json_error_t jerr;
    size_t i;
    int same;

    if (format && (!strcmp(format, "text") || !strcmp(format, "string"))) {
        if (!json_is_string(want)) {
            return "text case without a string expect_output";
        }
        if (len != json_string_length(want) || memcmp(out, json_string_value(want), len)) {
            return apr_psprintf(pool, "output\n    got:  %s\n    want: %s", out,
                                json_string_value(want));
        }
        return NULL;
    }
    if (!format || strcmp(format, "json")) {
        return "unknown expect_output_format";
    }
    got = json_loadb(out, len, JSON_DECODE_ANY, &jerr);
    if (!got) {
        return apr_psprintf(pool, "output is not JSON (%s): %s", jerr.text, out);
    }
    expect = json_deep_copy(want);
    for (i = 0; i < json_array_size(ignore); i++) {
        drop_path(got, json_string_value(json_array_get(ignore, i)));
        drop_path(expect, json_string_value(json_array_get(ignore, i)));
    }
    same = json_equal(got, expect);
    json_decref(got);
    json_decref(expect);
    if (!same) {
        return apr_psprintf(pool, "output\n    got:  %s\n    want: %s", out,
                            ad_json_dump(pool, want, NULL));
    }
    return NULL;
}

static ad_transform_ctx_t context_of(const json_t *c)
{
    const json_t *x = json_object_get(c, "context");
    ad_transform_ctx_t ctx = {"rule", "arn:aws:events:us-east-1:111111111111:rule/rule", NULL};

    if (json_is_object(x)) {
        ctx.rule_arn = json_string_value(json_object_get(x, "rule_arn"));
        ctx.rule_name = json_string_value(json_object_get(x, "rule_name"));
        ctx.ingestion_time = json_string_value(json_object_get(x, "ingestion_time"));
    }
    return ctx;
}

/* NULL when the case passes, else what went wrong. */
static const char *check_case(const json_t *c)
{
    const json_t *map = json_object_get(c, "input_paths_map");
    const json_t *error = json_object_get(c, "expect_error");
    const json_t *event = json_object_get(c, "event");
    const char *want_err = json_string_value(json_object_get(error, "message"));
    const char *err = NULL, *why = NULL;
    ad_transform_ctx_t ctx = context_of(c);
    ad_transform_t *t;
    char *out = NULL;
    apr_size_t len = 0;
    apr_status_t rv;

    t = ad_transform_compile(pool, "<target-id>", NULL,
                             json_string_value(json_object_get(c, "input_path")),
                             json_is_object(map) ? map_of(map) : NULL,
                             json_string_value(json_object_get(c, "input_template")), &err);
    if (error) {
        if (t) {
            return "options accepted, AWS rejects them";
        }
        if (want_err && strcmp(err, want_err)) {
            return apr_psprintf(pool, "error\n    got:  %s\n    want: %s", err, want_err);
        }
        return NULL;
    }
    if (!json_is_boolean(json_object_get(c, "expect_delivered"))) {
        return "neither expect_error nor expect_delivered";
    }
    if (!t) {
        return json_is_false(json_object_get(c, "expect_delivered"))
                   ? NULL
                   : apr_psprintf(pool, "options rejected: %s", err);
    }
    if (!json_is_object(event)) {
        return "case without an event";
    }
    rv = ad_transform_apply(pool, t, event, &ctx, &out, &len, &why);
    if (json_is_false(json_object_get(c, "expect_delivered"))) {
        return rv == APR_EINVAL ? NULL
                                : apr_psprintf(pool, "delivered, AWS delivers nothing: %s", out);
    }
    if (rv != APR_SUCCESS) {
        return apr_psprintf(pool, "not delivered: %s", why);
    }
    return compare_output(c, out, len);
}

START_TEST(test_conformance)
{
    unit_run_conformance(pool, "transformers.jsonl", check_case, "transformer");
}
END_TEST

/* ------------------------------------------------------------------ */
/* JSONPath subset                                                     */
/* ------------------------------------------------------------------ */

static const char *jp_error(const char *path)
{
    const char *err = NULL;

    if (ad_jsonpath_compile(pool, path, &err)) {
        return "";
    }
    ck_assert_ptr_nonnull(err);
    return err;
}

/* The compact JSON a path selects in doc, or "NULL". */
static const char *jp_eval(const char *path, const char *doc)
{
    const char *err = NULL;
    ad_jsonpath_t *jp = ad_jsonpath_compile(pool, path, &err);
    json_t *v;
    const char *s;

    ck_assert_msg(jp != NULL, "%s rejected: %s", path, err);
    v = ad_jsonpath_eval(jp, tree(doc));
    if (!v) {
        return "NULL";
    }
    s = ad_json_dump(pool, v, NULL);
    json_decref(v);
    return s;
}

START_TEST(test_jsonpath_syntax)
{
    static const char *const valid[] = {"$",
                                        "$.detail",
                                        "$.detail-type",
                                        "$.detail.a-b_c/d",
                                        "$.resources[0]",
                                        "$.resources[-1]",
                                        "$.detail.*",
                                        "$.detail[*]",
                                        "$.a.*.b",
                                        "$.a[*][0]",
                                        "$.d\xc3\xa9tail",
                                        "$.aws:tag",
                                        "$.a.$ref",
                                        "$.A1.b2.C3",
                                        NULL};
    int i;

    for (i = 0; valid[i]; i++) {
        ck_assert_msg(!*jp_error(valid[i]), "%s: %s", valid[i], jp_error(valid[i]));
    }
    ck_assert_str_eq(jp_error(""), "a JSONPath starts with '$' (at character 1)");
    ck_assert_str_eq(jp_error("detail.a"), "a JSONPath starts with '$' (at character 1)");
    ck_assert_str_eq(jp_error("$."), "the path ends with '.' (at character 3)");
    ck_assert_str_eq(jp_error("$..a"), "recursive descent (..) is not supported (at character 3)");
    ck_assert_str_eq(jp_error("$.a..b"),
                     "recursive descent (..) is not supported (at character 5)");
    ck_assert_str_eq(jp_error("$.a*"), "expected '.' or '[' (at character 4)");
    ck_assert_str_eq(jp_error("$.*a"), "'*' must stand alone as a name (at character 4)");
    ck_assert_str_eq(jp_error("$ .a"), "expected '.' or '[' (at character 2)");
    ck_assert_str_eq(jp_error("$.a b"), "expected '.' or '[' (at character 4)");
    ck_assert_str_eq(jp_error("$.[0]"), "a name must follow '.' (at character 3)");
    ck_assert_str_eq(jp_error("$.a[1234567890]"), "array index too large (at character 4)");
#define BRACKETS "only [n] and [*] are supported in brackets (use dot notation for names)"
    ck_assert_str_eq(jp_error("$['detail']"), BRACKETS " (at character 2)");
    ck_assert_str_eq(jp_error("$.a["), BRACKETS " (at character 4)");
    ck_assert_str_eq(jp_error("$.a[]"), BRACKETS " (at character 4)");
    ck_assert_str_eq(jp_error("$.a[1:2]"), BRACKETS " (at character 4)");
    ck_assert_str_eq(jp_error("$.a[?(@.b)]"), BRACKETS " (at character 4)");
    ck_assert_str_eq(jp_error("$.length()"), "expected '.' or '[' (at character 9)");
}
END_TEST

START_TEST(test_jsonpath_eval)
{
    const char *doc = "{\"a\":{\"b-c\":1,\"d/e\":[10,20,30],\"f_g\":{\"x\":{\"y\":\"z\"}},"
                      "\"h\":[{\"k\":1},{\"k\":2},{\"j\":3}],\"e\":{},\"n\":null},\"r\":[]}";

    ck_assert_str_eq(jp_eval("$", doc), doc);
    ck_assert_str_eq(jp_eval("$.a.b-c", doc), "1");
    ck_assert_str_eq(jp_eval("$.a.d/e[0]", doc), "10");
    ck_assert_str_eq(jp_eval("$.a.d/e[2]", doc), "30");
    ck_assert_str_eq(jp_eval("$.a.d/e[3]", doc), "NULL");
    ck_assert_str_eq(jp_eval("$.a.d/e[-1]", doc), "30");
    ck_assert_str_eq(jp_eval("$.a.d/e[-3]", doc), "10");
    ck_assert_str_eq(jp_eval("$.a.d/e[-4]", doc), "NULL");
    ck_assert_str_eq(jp_eval("$.a.f_g.x.y", doc), "\"z\"");
    ck_assert_str_eq(jp_eval("$.a.f_g.x", doc), "{\"y\":\"z\"}");
    ck_assert_str_eq(jp_eval("$.a.e", doc), "{}");
    ck_assert_str_eq(jp_eval("$.a.n", doc), "null");
    /* a missing name, a name on an array, an index on an object */
    ck_assert_str_eq(jp_eval("$.a.nope", doc), "NULL");
    ck_assert_str_eq(jp_eval("$.nope.deeper", doc), "NULL");
    ck_assert_str_eq(jp_eval("$.a.d/e.x", doc), "NULL");
    ck_assert_str_eq(jp_eval("$.a[0]", doc), "NULL");
    ck_assert_str_eq(jp_eval("$.a.b-c.x", doc), "NULL");
    /* wildcards: document order, nested matches flattened, always an array */
    ck_assert_str_eq(jp_eval("$.a.h[*].k", doc), "[1,2]");
    ck_assert_str_eq(jp_eval("$.a.h.*.k", doc), "[1,2]");
    ck_assert_str_eq(jp_eval("$.a.h[*]", doc), "[{\"k\":1},{\"k\":2},{\"j\":3}]");
    ck_assert_str_eq(jp_eval("$.a.d/e[*]", doc), "[10,20,30]");
    ck_assert_str_eq(jp_eval("$.a.*.*", doc),
                     "[10,20,30,{\"y\":\"z\"},{\"k\":1},{\"k\":2},{\"j\":3}]");
    ck_assert_str_eq(jp_eval("$.a.*.y", doc), "[]");
    ck_assert_str_eq(jp_eval("$.a.f_g.*.y", doc), "[\"z\"]");
    ck_assert_str_eq(jp_eval("$.r[*]", doc), "[]");
    ck_assert_str_eq(jp_eval("$.nope[*]", doc), "[]");
    ck_assert_str_eq(jp_eval("$.a.h[*][0]", doc), "[]");
    ck_assert_str_eq(jp_eval("$[0]", "[\"x\"]"), "\"x\"");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Templates                                                           */
/* ------------------------------------------------------------------ */

START_TEST(test_json_template_quoting)
{
    /* strings are quoted whether or not the template quotes them */
    TEMPLATE("{\"id\" : <userId>}", "{\"id\":\"0a787ecb-4015\"}");
    TEMPLATE("{\"id\" : \"<userId>\"}", "{\"id\":\"0a787ecb-4015\"}");
    /* objects and arrays go in as JSON */
    TEMPLATE("{\"bod\": <payload>}", "{\"bod\":" PAYLOAD "}");
    TEMPLATE("{\"l\": <listmulti>, \"s\": <listsingle>}",
             "{\"l\":[\"ACTIVE\",\"INACTIVE\"],\"s\":[\"HIGH\"]}");
    TEMPLATE("{\"r\": <res>}", "{\"r\":[\"arn:aws:x:1\"]}");
    /* inside a string literal values are spliced raw */
    TEMPLATE("{\"s\": \"users/<userId>/second/<userId>\"}",
             "{\"s\":\"users/0a787ecb-4015/second/0a787ecb-4015\"}");
    TEMPLATE("{\"s\": \"instance \\\"<userId>\\\" is in <valid>\"}",
             "{\"s\":\"instance \\\"0a787ecb-4015\\\" is in true\"}");
    /* numbers, booleans and null: bare as values, text inside strings */
    TEMPLATE("{\"n\": <n>, \"ns\": \"<n>\", \"v\": <valid>, \"vs\": \"<valid>\"}",
             "{\"n\":5,\"ns\":\"5\",\"v\":true,\"vs\":\"true\"}");
    TEMPLATE("{\"f\": <f>, \"z\": <nul>, \"zs\": \"<nul>\"}",
             "{\"f\":0.1,\"z\":null,\"zs\":\"null\"}");
    TEMPLATE("[<userId>, 9, \"<userId>\", true]", "[\"0a787ecb-4015\",9,\"0a787ecb-4015\",true]");
    /* a placeholder as a key is a JSON value position too */
    TEMPLATE("{<userId>: 1}", "{\"0a787ecb-4015\":1}");
    /* an object or array inside a string literal breaks the JSON */
    TEMPLATE("{\"payload\": \"<payload>\"}", NOT_DELIVERED);
    TEMPLATE("{\"x\": \"users/<payload>\", \"bod\": <payload>}", NOT_DELIVERED);
    TEMPLATE("{\"l\": \"<listsingle>\"}", NOT_DELIVERED);
    /* values are not escaped: a quote in a value breaks the JSON */
    TEMPLATE("{\"q\": <quote>}", NOT_DELIVERED);
    TEMPLATE("{\"q\": \"<quote>\"}", NOT_DELIVERED);
    /* a template that is not JSON whatever the values */
    TEMPLATE("{\"a\": <n>", NOT_DELIVERED);
    TEMPLATE("{\"a\": <n>} trailing", NOT_DELIVERED);
}
END_TEST

START_TEST(test_json_template_output_form)
{
    /* minified, key order kept, numbers in their shortest form */
    TEMPLATE("\n  {\n  \"z\" : 1,\n  \"a\" : [ 1.50, 2 ],\n  \"m\" : <n>\n}\n",
             "{\"z\":1,\"a\":[1.5,2],\"m\":5}");
    TEMPLATE("{\"u\": \"\\u00e9\\n\", \"e\": {}}", "{\"u\":\"\xc3\xa9\\n\",\"e\":{}}");
    /* '<' and '>' that do not form a placeholder stay text */
    TEMPLATE("{\"cmp\": \"a < b > c\", \"t\": \"x<>y\", \"h\": \"<a href>\"}",
             "{\"cmp\":\"a < b > c\",\"t\":\"x<>y\",\"h\":\"<a href>\"}");
}
END_TEST

START_TEST(test_string_template)
{
    /* delivered as written, outer quotes included */
    TEMPLATE("\"Command is <valid>!\"", "\"Command is true!\"");
    TEMPLATE("\"<listmulti> multiple list items\"", "\"[ACTIVE,INACTIVE] multiple list items\"");
    /* objects and arrays lose their inner quotes, at every depth */
    TEMPLATE("\"<payload>\"", "\"{acc_id:0a787ecb-4015,sf_id:baz}\"");
    TEMPLATE("\"<nested>\"", "\"{a:[1,{b:c}],d:null}\"");
    TEMPLATE("\"<n>|<f>|<nul>|<valid>|<res>\"", "\"5|0.1|null|true|[arn:aws:x:1]\"");
    /* nothing is escaped, and template escapes are kept as written */
    TEMPLATE("\"<quote>\"", "\"say \"hi\"\"");
    TEMPLATE("\"instance \\\"<userId>\\\"\"", "\"instance \\\"0a787ecb-4015\\\"\"");
    /* text without quotes, and several quoted lines, are strings too */
    TEMPLATE("<userId> is in state <valid>", "0a787ecb-4015 is in state true");
    TEMPLATE("\"a <userId>\"\n\"b <n>\"\n", "\"a 0a787ecb-4015\"\n\"b 5\"\n");
    TEMPLATE("\"{[/not JSON <n>\"", "\"{[/not JSON 5\"");
    TEMPLATE("\"a < b <> c\"", "\"a < b <> c\"");
}
END_TEST

/* A template that repeats a large event is not built past the cap. */
START_TEST(test_output_is_capped)
{
    const char *event = apr_psprintf(pool, "{\"detail\":{\"pad\":\"%0250000d\"}}", 0);
    const char *tpl = "\"";
    const ad_transform_t *t;
    int i;

    for (i = 0; i < 40; i++) { /* 40 x 250 KB: past 8 MiB */
        tpl = apr_pstrcat(pool, tpl, "<aws.events.event.json>", NULL);
    }
    t = compile_ok(NULL, NULL, NULL, apr_pstrcat(pool, tpl, "\"", NULL));
    ck_assert_str_eq(deliver(t, event, &CTX), NOT_DELIVERED);
    t = compile_ok(NULL, NULL, NULL, "\"<aws.events.event.json><aws.events.event.json>\"");
    ck_assert_uint_gt(strlen(deliver(t, event, &CTX)), 500000);
}
END_TEST

/* {"detail":{"a":[0,0,...n zeros]}} */
static const char *zeros_event(int n)
{
    char *ev = apr_palloc(pool, (size_t)(2 * n + 32)), *q = ev;
    int i;

    q += sprintf(q, "{\"detail\":{\"a\":[");
    for (i = 0; i < n; i++) {
        q += sprintf(q, i ? ",0" : "0");
    }
    strcpy(q, "]}}");
    return ev;
}

/* A string template printed each number of an array through a fresh
 * 256-byte dump and went on past the cap (a 1 MB array named 9 times: 7 s
 * and 1.2 GB), and each reference evaluated its path again (2,700
 * references to a path on a 128k array: 3 s). Now scalars print without
 * allocating, the output stops at the cap, and a variable is evaluated
 * once per event (libcheck's 4 s timeout fails the old code). */
START_TEST(test_references_cost_their_output)
{
    static const char *const map[] = {"w", "$.detail.a", "x", "$.detail.a[*].x", NULL};
    const char *big = zeros_event(500000), *tpl = "\"", *tpl2 = "\"";
    const ad_transform_t *t;
    int i;

    for (i = 0; i < 9; i++) {
        tpl = apr_pstrcat(pool, tpl, "<w>", NULL);
    }
    t = compile_ok(NULL, NULL, paths_map(map), apr_pstrcat(pool, tpl, "\"", NULL));
    ck_assert_str_eq(deliver(t, big, &CTX), NOT_DELIVERED);
    t = compile_ok(NULL, NULL, paths_map(map), "\"<w>\"");
    ck_assert_uint_eq(strlen(deliver(t, big, &CTX)), 2 * 500000 + 3); /* "[0,...,0]" */
    for (i = 0; i < 2700; i++) {
        tpl2 = apr_pstrcat(pool, tpl2, "<x>", NULL);
    }
    t = compile_ok(NULL, NULL, paths_map(map), apr_pstrcat(pool, tpl2, "\"", NULL));
    ck_assert_uint_eq(strlen(deliver(t, zeros_event(128000), &CTX)), 2 + 2 * 2700);
    /* numbers print as in a JSON template */
    t = compile_ok(NULL, NULL, paths_map(map), "\"<w>\"");
    ck_assert_str_eq(
        deliver(t, "{\"detail\":{\"a\":[1,-2,0.5,1e300,true,false,null,\"s\"]}}", &CTX),
        "\"[1,-2,0.5,1.0E300,true,false,null,s]\"");
}
END_TEST

START_TEST(test_missing_paths)
{
    /* a path that matches nothing renders as an empty string */
    TEMPLATE("{\"m\": <missing>, \"ms\": \"<missing>\", \"mx\": \"a<missing>b\"}",
             "{\"m\":\"\",\"ms\":\"\",\"mx\":\"ab\"}");
    TEMPLATE("\"[<missing>]\"", "\"[]\"");
    TEMPLATE("[<missing>]", "[\"\"]");
}
END_TEST

START_TEST(test_reserved_variables)
{
    const char *event_no_detail =
        "{\"id\":\"" EVENT_ID "\",\"account\":\"111111111111\",\"detailType\":\"" DETAIL_TYPE
        "\",\"time\":\"" INGESTED "\",\"source\":\"" DETAIL_TYPE "\",\"region\":\"us-east-1\","
        "\"resources\":[\"arn:aws:x:1\"],\"version\":\"0\"}";
    const ad_transform_t *t;

    TEMPLATE("\"<aws.events.rule-name> triggered\"", "\"my-rule triggered\"");
    TEMPLATE("\"<aws.events.rule-arn> <aws.events.event.ingestion-time>\"",
             "\"" RULE_ARN " " INGESTED "\"");
    TEMPLATE("{\"arn\": <aws.events.rule-arn>, \"name\": \"<aws.events.rule-name>\","
             " \"t\": <aws.events.event.ingestion-time>}",
             "{\"arn\":\"" RULE_ARN "\",\"name\":\"my-rule\",\"t\":\"" INGESTED "\"}");
    /* the event without detail, AWS's keys and order; the full event */
    TEMPLATE("{\"e\": <aws.events.event>}",
             apr_pstrcat(pool, "{\"e\":", event_no_detail, "}", NULL));
    TEMPLATE("{\"e\": <aws.events.event.json>}", apr_pstrcat(pool, "{\"e\":", EVENT, "}", NULL));
    /* they are inserted unescaped: only usable as JSON values */
    TEMPLATE("{\"e\": \"<aws.events.event>\"}", NOT_DELIVERED);
    TEMPLATE("{\"e\": \"<aws.events.event.json>\"}", NOT_DELIVERED);
    TEMPLATE("\"<aws.events.event>\"",
             "\"{id:" EVENT_ID ",account:111111111111,detailType:" DETAIL_TYPE ",time:" INGESTED
             ",source:" DETAIL_TYPE ",region:us-east-1,resources:[arn:aws:x:1],"
             "version:0}\"");
    /* without a context: empty rule fields, the event's time */
    t = compile_ok(NULL, NULL, NULL,
                   "\"<aws.events.rule-name>|<aws.events.rule-arn>|"
                   "<aws.events.event.ingestion-time>\"");
    ck_assert_str_eq(deliver(t, EVENT, NULL), "\"||2024-01-02T03:04:05Z\"");
    t = compile_ok(NULL, NULL, NULL, "{\"n\": <aws.events.rule-name>}");
    ck_assert_str_eq(deliver(t, EVENT, NULL), "{\"n\":\"\"}");
    t = compile_ok(NULL, NULL, NULL, "{\"t\": <aws.events.event>}");
    ck_assert_ptr_nonnull(strstr(deliver(t, EVENT, NULL), ",\"time\":\"2024-01-02T03:04:05Z\","));
    /* one compiled transform serves any number of events */
    ck_assert_ptr_nonnull(strstr(deliver(t, EVENT, &CTX), ",\"time\":\"" INGESTED "\","));
    ck_assert_str_eq(deliver(t, "{\"detail-type\":\"x\",\"detail\":{}}", &CTX),
                     "{\"t\":{\"detailType\":\"x\",\"time\":\"" INGESTED "\"}}");
    /* not definable, and other aws.* names are not variables */
    REJECT(NULL, NULL, paths_map((const char *const[]){"aws.events.rule-name", "$.x", NULL}),
           "\"<aws.events.rule-name>\"",
           "InputPathsMap key 'aws.events.rule-name' of target t1 is reserved: aws.* "
           "names are predefined variables and cannot be redefined");
    REJECT(NULL, NULL, paths_map((const char *const[]){"AWS.mine", "$.x", NULL}), "\"x\"",
           "InputPathsMap key 'AWS.mine' of target t1 is reserved: aws.* names are "
           "predefined variables and cannot be redefined");
    REJECT(NULL, NULL, NULL, "\"<aws.events.rule>\"",
           "InputTemplate for target t1 contains invalid placeholder aws.events.rule.");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Input, InputPath, no option                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_input_path)
{
#define INPUT_PATH(path, want)                                                                     \
    ck_assert_str_eq(deliver(compile_ok(NULL, path, NULL, NULL), EVENT, &CTX), want)
    INPUT_PATH("$.detail.payload.sf_id", "\"baz\"");
    INPUT_PATH("$.detail.payload", PAYLOAD);
    INPUT_PATH("$.detail.n", "5");
    INPUT_PATH("$.detail.valid", "true");
    INPUT_PATH("$.detail.quote", "\"say \\\"hi\\\"\"");
    INPUT_PATH("$.detail.listmulti[*]", "[\"ACTIVE\",\"INACTIVE\"]");
    INPUT_PATH("$.resources[0]", "\"arn:aws:x:1\"");
    INPUT_PATH("$", EVENT);
    INPUT_PATH("$.detail.nope", NOT_DELIVERED);
#undef INPUT_PATH
}
END_TEST

START_TEST(test_constant_input_and_whole_event)
{
    const ad_transform_t *t;

    t = compile_ok(" { \"fixed\" : true, \"b\" : [ 1, 2.50 ] } ", NULL, NULL, NULL);
    ck_assert_str_eq(deliver(t, EVENT, &CTX), "{\"fixed\":true,\"b\":[1,2.5]}");
    ck_assert_str_eq(deliver(t, NULL, NULL), "{\"fixed\":true,\"b\":[1,2.5]}");
    t = compile_ok("\"hello\"", NULL, NULL, NULL);
    ck_assert_str_eq(deliver(t, EVENT, &CTX), "\"hello\"");
    REJECT("not json", NULL, NULL, NULL, "Input for target t1 is not a valid JSON text.");
    REJECT("{\"a\":1", NULL, NULL, NULL, "Input for target t1 is not a valid JSON text.");
    REJECT("", NULL, NULL, NULL, "Input for target t1 is not a valid JSON text.");
    /* no option: the whole envelope, compact, in its order */
    t = compile_ok(NULL, NULL, NULL, NULL);
    ck_assert_str_eq(deliver(t, EVENT, &CTX), EVENT);
    t = compile_ok(NULL, NULL, paths_map(NULL), NULL);
    ck_assert_str_eq(deliver(t, EVENT, &CTX), EVENT);
}
END_TEST

/* ------------------------------------------------------------------ */
/* PutTargets validation                                               */
/* ------------------------------------------------------------------ */

static char *repeat(const char *unit, int n, const char *prefix, const char *suffix)
{
    char *s = apr_pstrdup(pool, prefix);
    int i;

    for (i = 0; i < n; i++) {
        s = apr_pstrcat(pool, s, unit, NULL);
    }
    return apr_pstrcat(pool, s, suffix, NULL);
}

#define ONLY_ONE "Only one of Input, InputPath, or InputTransformer must be provided for target t1."

START_TEST(test_validation_exclusive)
{
    apr_array_header_t *map = paths_map((const char *const[]){"a", "$.a", NULL});

    REJECT("{}", "$.detail", NULL, NULL, ONLY_ONE);
    REJECT("{}", NULL, NULL, "\"x\"", ONLY_ONE);
    REJECT(NULL, "$.detail", NULL, "\"x\"", ONLY_ONE);
    REJECT(NULL, "$.detail", map, "\"<a>\"", ONLY_ONE);
    REJECT("{}", "$.detail", map, "\"<a>\"", ONLY_ONE);
    REJECT(NULL, NULL, map, NULL,
           "Value null at 'InputTemplate' of target t1 failed to satisfy constraint: "
           "Member must not be null");
    /* the map may define names the template does not use */
    REJECT(NULL, NULL, map, "\"x\"", "");
    REJECT(NULL, NULL, map, "\"<b>\"",
           "InputTemplate for target t1 contains invalid placeholder b.");
    REJECT(NULL, NULL, map, "{\"<A>\": 1}",
           "InputTemplate for target t1 contains invalid placeholder A.");
}
END_TEST

START_TEST(test_validation_lengths)
{
    /* 8192 UTF-16 units: an emoji counts two */
    REJECT(NULL, NULL, NULL, repeat("x", 8190, "\"", "\""), "");
    REJECT(NULL, NULL, NULL, repeat("x", 8191, "\"", "\""),
           "InputTemplate of target t1 failed to satisfy constraint: "
           "Member must have length less than or equal to 8192");
    REJECT(NULL, NULL, NULL, repeat("\xf0\x9f\x98\x80", 4095, "\"", "\""), "");
    REJECT(NULL, NULL, NULL, repeat("\xf0\x9f\x98\x80", 4095, "\"", "x\""),
           "InputTemplate of target t1 failed to satisfy constraint: "
           "Member must have length less than or equal to 8192");
    REJECT(NULL, NULL, NULL, repeat("\xc3\xa9", 8190, "\"", "\""), "");
    REJECT(NULL, NULL, NULL, "",
           "InputTemplate of target t1 failed to satisfy constraint: "
           "Member must have length greater than or equal to 1");
    REJECT(repeat("x", 8190, "\"", "\""), NULL, NULL, NULL, "");
    REJECT(repeat("x", 8191, "\"", "\""), NULL, NULL, NULL,
           "Input of target t1 failed to satisfy constraint: "
           "Member must have length less than or equal to 8192");
    REJECT(NULL, repeat("a", 254, "$.", ""), NULL, NULL, "");
    REJECT(NULL, repeat("a", 255, "$.", ""), NULL, NULL,
           "InputPath of target t1 failed to satisfy constraint: "
           "Member must have length less than or equal to 256");
}
END_TEST

START_TEST(test_validation_paths_map)
{
    const char **kv = apr_pcalloc(pool, sizeof(char *) * 203);
    int i;

    for (i = 0; i < 100; i++) {
        kv[2 * i] = apr_psprintf(pool, "k%d", i);
        kv[2 * i + 1] = "$.detail";
    }
    REJECT(NULL, NULL, paths_map(kv), "\"<k0><k99>\"", "");
    kv[200] = "k100";
    kv[201] = "$.detail";
    REJECT(NULL, NULL, paths_map(kv), "\"<k0>\"",
           "InputPathsMap of target t1 failed to satisfy constraint: "
           "Member must have length less than or equal to 100");

    REJECT(NULL, NULL, paths_map((const char *const[]){"Az09_-", "$.a", NULL}), "\"<Az09_->\"", "");
    REJECT(NULL, NULL, paths_map((const char *const[]){"bad key", "$.a", NULL}), "\"x\"",
           "InputPathsMap key 'bad key' of target t1 failed to satisfy constraint: "
           "Member must satisfy regular expression pattern: [A-Za-z0-9\\_\\-]+");
    REJECT(NULL, NULL, paths_map((const char *const[]){"a.b", "$.a", NULL}), "\"x\"",
           "InputPathsMap key 'a.b' of target t1 failed to satisfy constraint: "
           "Member must satisfy regular expression pattern: [A-Za-z0-9\\_\\-]+");
    REJECT(NULL, NULL, paths_map((const char *const[]){"", "$.a", NULL}), "\"x\"",
           "InputPathsMap key '' of target t1 failed to satisfy constraint: "
           "Member must have length greater than or equal to 1");
    REJECT(NULL, NULL, paths_map((const char *const[]){repeat("k", 257, "", ""), "$.a", NULL}),
           "\"x\"",
           apr_psprintf(pool,
                        "InputPathsMap key '%s' of target t1 failed to satisfy "
                        "constraint: Member must have length less than or equal to 256",
                        repeat("k", 257, "", "")));
    REJECT(NULL, NULL, paths_map((const char *const[]){"k", repeat("a", 255, "$.", ""), NULL}),
           "\"x\"",
           "InputPathsMap value for key 'k' of target t1 failed to satisfy constraint: "
           "Member must have length less than or equal to 256");
    REJECT(NULL, NULL, paths_map((const char *const[]){"k", "$.a", "k", "$.b", NULL}), "\"<k>\"",
           "InputPathsMap key 'k' of target t1 is defined more than once");
    REJECT(NULL, NULL, paths_map((const char *const[]){"k", "$..a", NULL}), "\"<k>\"",
           "InputPathsMap value '$..a' for key 'k' of target t1 is not a supported "
           "JSONPath: recursive descent (..) is not supported (at character 3)");
    REJECT(NULL, "detail", NULL, NULL,
           "InputPath 'detail' of target t1 is not a supported JSONPath: "
           "a JSONPath starts with '$' (at character 1)");
    /* placeholder names are case-sensitive */
    REJECT(NULL, NULL, paths_map((const char *const[]){"k", "$.a", NULL}), "\"<K>\"",
           "InputTemplate for target t1 contains invalid placeholder K.");
}
END_TEST

static Suite *transform_suite(void)
{
    Suite *s = suite_create("transform");
    TCase *tc = tcase_create("conformance");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_conformance);
    suite_add_tcase(s, tc);
    tc = tcase_create("jsonpath");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_jsonpath_syntax);
    tcase_add_test(tc, test_jsonpath_eval);
    suite_add_tcase(s, tc);
    tc = tcase_create("transform");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_json_template_quoting);
    tcase_add_test(tc, test_json_template_output_form);
    tcase_add_test(tc, test_string_template);
    tcase_add_test(tc, test_missing_paths);
    tcase_add_test(tc, test_reserved_variables);
    tcase_add_test(tc, test_input_path);
    tcase_add_test(tc, test_constant_input_and_whole_event);
    suite_add_tcase(s, tc);
    tc = tcase_create("validation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_validation_exclusive);
    tcase_add_test(tc, test_validation_lengths);
    tcase_add_test(tc, test_validation_paths_map);
    tcase_add_test(tc, test_output_is_capped);
    tcase_add_test(tc, test_references_cost_their_output);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(transform_suite());
}
