/* Unit tests for ad_awsjson: every case of $AD_CONFORMANCE_DIR/patterns.jsonl
 * through TestEventPattern's dispatch, then each read-only operation, the
 * refusals and the admin route on a hand-built configuration. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <jansson.h>

#include "ad_awsjson.h"
#include "ad_conf.h"
#include "ad_pattern.h"
#include "ad_util.h"
#include "unit_run.h"

#define MTIME 1714979289 /* the config file's mtime the tests set */

static apr_pool_t *pool;
static ad_conf_t *conf;
static const char *conf_file;

/* ------------------------------------------------------------------ */
/* Calling the API                                                     */
/* ------------------------------------------------------------------ */

typedef struct reply_t {
    int status;
    const char *type; /* x-amzn-ErrorType, NULL on success */
    const char *raw;
    json_t *body; /* owned by the pool */
} reply_t;

static reply_t call_target(const char *target, const char *body)
{
    reply_t r;
    char *out;
    apr_size_t len;
    json_error_t jerr;

    r.status =
        ad_awsjson_dispatch(pool, conf, target, body, body ? strlen(body) : 0, &out, &len, &r.type);
    ck_assert_uint_eq(strlen(out), len);
    r.raw = out;
    r.body = ad_json_own(pool, json_loadb(out, len, 0, &jerr));
    ck_assert_msg(json_is_object(r.body), "answer is not a JSON object: %s", out);
    if (r.status == 200) {
        ck_assert_msg(r.type == NULL, "error type %s on a 200", r.type);
    }
    else {
        /* Both places carry the same code (aws-clients.md 2). */
        ck_assert_ptr_nonnull(r.type);
        ck_assert_str_eq(json_string_value(json_object_get(r.body, "__type")), r.type);
        ck_assert_ptr_nonnull(json_string_value(json_object_get(r.body, "message")));
    }
    return r;
}

static reply_t call(const char *op, const char *body)
{
    return call_target(apr_pstrcat(pool, AD_AWSJSON_TARGET_PREFIX, op, NULL), body);
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *msg(reply_t r)
{
    return str(r.body, "message");
}

static void expect_error(reply_t r, int status, const char *type, const char *message)
{
    ck_assert_msg(r.status == status && r.type && !strcmp(r.type, type),
                  "expected %d %s, got %d %s", status, type, r.status, r.raw);
    if (message) {
        ck_assert_str_eq(msg(r), message);
    }
}

static void expect_ok(reply_t r)
{
    ck_assert_msg(r.status == 200, "expected 200, got %d %s", r.status, r.raw);
}

/* The "Name" of every item of list `key`, joined with commas. */
static const char *names(reply_t r, const char *key, const char *field)
{
    const json_t *arr = json_object_get(r.body, key);
    char *s = "";
    size_t i;

    ck_assert_msg(json_is_array(arr), "no %s list in %s", key, r.raw);
    for (i = 0; i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        const char *name = field ? str(v, field) : json_string_value(v);
        s = apr_pstrcat(pool, s, i ? "," : "", name ? name : "(null)", NULL);
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* A hand-built configuration                                          */
/* ------------------------------------------------------------------ */

static ad_param_t *param(const char *where, const char *key, const char *value, int secret)
{
    ad_param_t *p = apr_pcalloc(pool, sizeof(*p));
    p->where = where;
    p->key = key;
    p->value = value;
    p->secret = secret;
    return p;
}

static apr_array_header_t *params(void)
{
    return apr_array_make(pool, 2, sizeof(ad_param_t *));
}

static ad_connection_t *add_connection(const char *name, ad_auth_type_t auth)
{
    ad_connection_t *cn = apr_pcalloc(pool, sizeof(*cn));
    cn->name = name;
    cn->auth = auth;
    cn->oauth_params = params();
    cn->invocation_params = params();
    cn->file = conf_file;
    cn->index = conf->connections->nelts;
    APR_ARRAY_PUSH(conf->connections, ad_connection_t *) = cn;
    apr_hash_set(conf->connection_by_name, name, APR_HASH_KEY_STRING, cn);
    return cn;
}

static ad_destination_t *add_destination(const char *name, const char *url, const char *method,
                                         ad_connection_t *cn)
{
    ad_destination_t *d = apr_pcalloc(pool, sizeof(*d));
    d->name = name;
    d->endpoint = url;
    d->method = method;
    d->rate_limit = 300;
    d->timeout_sec = 5;
    d->connection = cn;
    d->connection_name = cn ? cn->name : NULL;
    d->file = conf_file;
    d->index = conf->destinations->nelts;
    APR_ARRAY_PUSH(conf->destinations, ad_destination_t *) = d;
    apr_hash_set(conf->destination_by_name, name, APR_HASH_KEY_STRING, d);
    return d;
}

static ad_rule_t *add_rule(const char *name, const char *bus, const char *pattern,
                           const char *schedule, int enabled)
{
    ad_rule_t *r = apr_pcalloc(pool, sizeof(*r));
    const char *reason = NULL;

    r->name = name;
    r->bus = bus;
    r->pattern_text = pattern;
    if (pattern) {
        r->pattern = ad_pattern_compile(pool, pattern, strlen(pattern), &reason);
        ck_assert_msg(r->pattern != NULL, "%s", reason);
    }
    r->schedule_text = schedule;
    r->enabled = enabled;
    r->targets = apr_array_make(pool, 2, sizeof(ad_target_t *));
    APR_ARRAY_PUSH(conf->rules, ad_rule_t *) = r;
    apr_hash_set(conf->rule_by_name, name, APR_HASH_KEY_STRING, r);
    apr_hash_set(conf->buses, bus, APR_HASH_KEY_STRING, "");
    return r;
}

static ad_target_t *add_target(ad_rule_t *r, const char *id, ad_destination_t *d,
                               const char *endpoint)
{
    ad_target_t *t = apr_pcalloc(pool, sizeof(*t));
    t->id = id;
    t->destination = d;
    t->destination_name = d ? d->name : NULL;
    t->endpoint = endpoint;
    t->method = "POST";
    t->retry_attempts = AD_DEFAULT_RETRY_ATTEMPTS;
    t->max_event_age_sec = AD_DEFAULT_MAX_EVENT_AGE_SEC;
    t->dead_letter = 1;
    t->path_params = params();
    t->query_params = params();
    t->headers = params();
    t->paths_map = apr_array_make(pool, 2, sizeof(ad_transform_var_t));
    APR_ARRAY_PUSH(r->targets, ad_target_t *) = t;
    return t;
}

static void make_conf_file(void)
{
    apr_file_t *f;
    char *tmpl = apr_pstrdup(pool, "/tmp/ad-awsjson-XXXXXX");

    ck_assert_int_eq(
        apr_file_mktemp(&f, tmpl,
                        APR_FOPEN_CREATE | APR_FOPEN_READ | APR_FOPEN_WRITE | APR_FOPEN_EXCL, pool),
        APR_SUCCESS);
    apr_file_puts("# httpd.conf\n", f);
    apr_file_close(f);
    ck_assert_int_eq(apr_file_mtime_set(tmpl, apr_time_from_sec(MTIME), pool), APR_SUCCESS);
    conf_file = tmpl;
}

static void build_conf(void)
{
    ad_connection_t *basic, *key, *oauth;
    ad_destination_t *billing, *audit;
    ad_rule_t *r;
    ad_target_t *t;
    ad_transform_var_t *v;
    int i;

    make_conf_file();
    conf = ad_conf_make(pool);
    conf->account = "123456789012";
    conf->region = "eu-west-1";

    basic = add_connection("c-basic", AD_AUTH_BASIC);
    basic->user = "alice";
    basic->password = "s3cr3t-basic";
    APR_ARRAY_PUSH(basic->invocation_params, ad_param_t *) = param("header", "X-Tenant", "acme", 0);
    APR_ARRAY_PUSH(basic->invocation_params, ad_param_t *) =
        param("header", "X-Token", "tok-s3cr3t", 1);
    APR_ARRAY_PUSH(basic->invocation_params, ad_param_t *) = param("query", "q1", "v1", 0);
    APR_ARRAY_PUSH(basic->invocation_params, ad_param_t *) = param("body", "b1", "w1", 0);
    key = add_connection("c-key", AD_AUTH_API_KEY);
    key->api_key_name = "X-Api-Key";
    key->api_key = "s3cr3t-key";
    oauth = add_connection("c-oauth", AD_AUTH_OAUTH);
    oauth->oauth_endpoint = "https://auth.example.com/oauth2/token";
    oauth->oauth_method = "POST";
    oauth->client_id = "client-1";
    oauth->client_secret = "s3cr3t-oauth";
    APR_ARRAY_PUSH(oauth->oauth_params, ad_param_t *) = param("body", "scope", "billing/write", 0);
    APR_ARRAY_PUSH(oauth->oauth_params, ad_param_t *) = param("header", "X-Aud", "aud-s3cr3t", 1);

    billing = add_destination("d-billing", "https://api.example.com/v1/tenants/*/invoices", "POST",
                              oauth);
    audit = add_destination("d-audit", "https://audit.example.com/events", "PUT", NULL);
    audit->rate_limit = 10;

    r = add_rule("r-orders", "default", "{\"source\":[\"com.acme.orders\"]}", NULL, 1);
    t = add_target(r, "t1", billing, NULL);
    t->retry_attempts = 10;
    t->max_event_age_sec = 3600;
    APR_ARRAY_PUSH(t->path_params, ad_param_t *) = param("path", NULL, "$.detail.tenant", 0);
    APR_ARRAY_PUSH(t->headers, ad_param_t *) = param("header", "X-Invoice", "$.detail.id", 0);
    APR_ARRAY_PUSH(t->headers, ad_param_t *) = param("header", "X-Secret", "hdr-s3cr3t", 1);
    APR_ARRAY_PUSH(t->query_params, ad_param_t *) = param("query", "source", "$.source", 0);
    t->input_template = "{\"id\": <id>}";
    v = apr_array_push(t->paths_map);
    v->name = "id";
    v->path = "$.detail.id";
    t = add_target(r, "t2", NULL, "https://plain.example.com/hook");
    t->input_path = "$.detail";

    r = add_rule("r-billing", "billing", "{\"source\":[\"com.acme.billing\"]}", NULL, 0);
    add_target(r, "t1", billing, NULL);

    r = add_rule("r-nightly", "default", NULL, "rate(5 minutes)", 1);
    t = add_target(r, "audit", audit, NULL);
    t->input = "{\"fixed\":true}";

    for (i = 1; i <= 5; i++) {
        add_rule(apr_psprintf(pool, "page-%d", i), "default", "{\"source\":[\"p\"]}", NULL, 1);
    }
    ad_conf_index_targets(conf);
}

static void setup(void)
{
    apr_pool_create(&pool, NULL);
    build_conf();
}

static void teardown(void)
{
    apr_file_remove(conf_file, pool);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------------------ */
/* Conformance: every case through TestEventPattern                    */
/* ------------------------------------------------------------------ */

#define FILLER "apidest.conformance.filler"

/* A minimal event for the cases that are about the pattern only. */
static const char *const MINIMAL_EVENT =
    "{\"id\":\"1\",\"account\":\"123456789012\",\"source\":\"" FILLER "\","
    "\"time\":\"2022-07-13T13:48:01Z\",\"region\":\"us-east-1\","
    "\"detail-type\":\"" FILLER "\",\"resources\":[]}";

/* Cases recorded by event-ruler (not TestEventPattern) may lack envelope
 * fields TestEventPattern requires; add them with a filler value, and make
 * sure the filler changes nothing (the matcher gives the same answer with
 * and without it). Returns the event text to send, or NULL on failure. */
static const char *complete_event(const char *pattern, const char *event_text, const char **why)
{
    static const char *const required[] = {"id",     "account",     "source", "time",
                                           "region", "detail-type", NULL};
    json_error_t jerr;
    json_t *ev = json_loads(event_text, 0, &jerr), *full;
    ad_pattern_t *pat;
    const char *reason, *out;
    int i, before, after;

    if (!json_is_object(ev) || ad_pattern_event_is_valid(ev)) {
        json_decref(ev);
        return event_text;
    }
    full = json_deep_copy(ev);
    for (i = 0; required[i]; i++) {
        if (!json_object_get(full, required[i])) {
            json_object_set_new(full, required[i], json_string(FILLER));
        }
    }
    pat = ad_pattern_compile(pool, pattern, strlen(pattern), &reason);
    before = pat ? ad_pattern_match(pat, ev) : -1;
    after = pat ? ad_pattern_match(pat, full) : -1;
    out = ad_json_dump(pool, full, NULL);
    json_decref(ev);
    json_decref(full);
    if (before != after) {
        *why = "completing the envelope changed the outcome";
        return NULL;
    }
    return out;
}

static const char *expected_message(const json_t *c)
{
    return json_string_value(json_object_get(json_object_get(c, "error"), "message"));
}

static const char *expected_code(const json_t *c, const char *dflt)
{
    const char *code = json_string_value(json_object_get(json_object_get(c, "error"), "code"));
    return code ? code : dflt;
}

/* NULL when the case passes, else what went wrong. */
static const char *check_case(const json_t *c)
{
    const char *pattern = json_string_value(json_object_get(c, "pattern_json"));
    const char *event = json_string_value(json_object_get(c, "event_json"));
    const json_t *expect = json_object_get(c, "expect");
    const char *want = json_string_value(expect), *why = NULL, *type, *m;
    json_t *req;
    char *body;
    reply_t r;

    if (!pattern) {
        return "no pattern_json";
    }
    if (!event) {
        event = MINIMAL_EVENT; /* the case rejects the pattern alone */
    }
    else if (json_is_boolean(expect) && !(event = complete_event(pattern, event, &why))) {
        return why;
    }
    req = json_pack("{s:s,s:s}", "EventPattern", pattern, "Event", event);
    body = ad_json_dump(pool, req, NULL);
    json_decref(req);
    r = call("TestEventPattern", body);
    if (json_is_boolean(expect)) {
        if (r.status != 200) {
            return apr_psprintf(pool, "answered %d %s", r.status, r.raw);
        }
        if (json_is_true(json_object_get(r.body, "Result")) != json_is_true(expect)) {
            return apr_psprintf(pool, "Result %s", r.raw);
        }
        return NULL;
    }
    if (!want || (strcmp(want, "invalid") && strcmp(want, "invalid_event"))) {
        return "unknown expect";
    }
    type = expected_code(c, !strcmp(want, "invalid") ? "InvalidEventPatternException"
                                                     : "ValidationException");
    m = expected_message(c);
    if (r.status != 400 || strcmp(r.type, type)) {
        return apr_psprintf(pool, "want 400 %s, got %d %s", type, r.status, r.raw);
    }
    if (m && strcmp(msg(r), m)) {
        return apr_psprintf(pool, "message\n    got:  %s\n    want: %s", msg(r), m);
    }
    return NULL;
}

START_TEST(test_conformance_via_dispatch)
{
    const char *dir = getenv("AD_CONFORMANCE_DIR");
    apr_pool_t *top = pool, *sub;
    char *line = NULL, *path;
    size_t cap = 0;
    ssize_t n;
    FILE *f;
    int total = 0, failed = 0, by_kind[4] = {0, 0, 0, 0};

    ck_assert_msg(dir && *dir, "AD_CONFORMANCE_DIR is not set: it must name "
                               "../shared/conformance (make check sets it)");
    path = apr_pstrcat(pool, dir, "/patterns.jsonl", NULL);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    apr_pool_create(&sub, top);
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *c = json_loadb(line, (size_t)n, 0, &jerr);
        const char *err, *want;
        ck_assert_msg(c != NULL, "%s line %d: %s", path, total + 1, jerr.text);
        total++;
        pool = sub; /* what one case allocates goes with it */
        err = check_case(c);
        want = json_string_value(json_object_get(c, "expect"));
        by_kind[json_is_true(json_object_get(c, "expect"))    ? 0
                : json_is_false(json_object_get(c, "expect")) ? 1
                : want && !strcmp(want, "invalid")            ? 2
                                                              : 3]++;
        if (err) {
            failed++;
            fprintf(stderr, "FAIL %s: %s\n", json_string_value(json_object_get(c, "name")), err);
        }
        json_decref(c);
        pool = top;
        apr_pool_clear(sub);
    }
    free(line);
    fclose(f);
    fprintf(stderr,
            "conformance via TestEventPattern: %d cases (true %d, false %d, "
            "invalid %d, invalid_event %d), %d failed\n",
            total, by_kind[0], by_kind[1], by_kind[2], by_kind[3], failed);
    ck_assert_msg(total > 0, "%s has no cases", path);
    ck_assert_msg(failed == 0, "%d of %d conformance cases failed", failed, total);
}
END_TEST

/* ------------------------------------------------------------------ */
/* TestEventPattern details                                            */
/* ------------------------------------------------------------------ */

static const char *const EVENT =
    "{\"id\":\"e1\",\"account\":\"123456789012\",\"source\":\"com.acme.orders\","
    "\"time\":\"2024-05-06T07:08:09Z\",\"region\":\"eu-west-1\","
    "\"detail-type\":\"OrderCreated\",\"resources\":[],\"detail\":{\"n\":5}}";

static reply_t tep(const char *pattern, const char *event)
{
    json_t *req = json_object();
    char *body;

    if (pattern) {
        json_object_set_new(req, "EventPattern", json_string(pattern));
    }
    if (event) {
        json_object_set_new(req, "Event", json_string(event));
    }
    body = ad_json_dump(pool, req, NULL);
    json_decref(req);
    return call("TestEventPattern", body);
}

START_TEST(test_tep_result)
{
    reply_t r = tep("{\"source\":[\"com.acme.orders\"]}", EVENT);

    expect_ok(r);
    ck_assert(json_is_true(json_object_get(r.body, "Result")));
    ck_assert_int_eq(json_object_size(r.body), 1);
    r = tep("{\"detail\":{\"n\":[{\"numeric\":[\">\",5]}]}}", EVENT);
    expect_ok(r);
    ck_assert(json_is_false(json_object_get(r.body, "Result")));
    /* the CLI's file:// sends a trailing newline (aws-clients.md 1) */
    r = tep("{\"source\":[\"com.acme.orders\"]}\n", apr_pstrcat(pool, EVENT, "\n", NULL));
    expect_ok(r);
    ck_assert(json_is_true(json_object_get(r.body, "Result")));
}
END_TEST

START_TEST(test_tep_errors)
{
    reply_t r = tep("{\"source\":\"x\"}", EVENT);

    expect_error(r, 400, "InvalidEventPatternException",
                 "Event pattern is not valid. Reason: \"source\" must be an object or an array");
    expect_error(tep("{\"source\":[\"x\"]}", "{\"id\":\"1\"}"), 400, "ValidationException",
                 "Parameter Event is not valid.");
    expect_error(tep("{\"source\":[\"x\"]}", "not json"), 400, "ValidationException",
                 "Parameter Event is not valid.");
    /* the event is looked at first */
    expect_error(tep("{\"source\":\"x\"}", "[]"), 400, "ValidationException",
                 "Parameter Event is not valid.");
    expect_error(tep(NULL, NULL), 400, "ValidationException",
                 "2 validation errors detected: Value null at 'eventPattern' failed to "
                 "satisfy constraint: Member must not be null; Value null at 'event' failed "
                 "to satisfy constraint: Member must not be null");
    expect_error(tep("{}", NULL), 400, "ValidationException",
                 "1 validation error detected: Value null at 'event' failed to satisfy "
                 "constraint: Member must not be null");
    expect_error(
        call("TestEventPattern", "{\"EventPattern\":{\"source\":[\"x\"]},\"Event\":\"{}\"}"), 400,
        "SerializationException", "Start of structure or map found where not expected.");
    expect_error(call("TestEventPattern", "{\"EventPattern\":\"{}\",\"Event\":7}"), 400,
                 "SerializationException", "NUMBER_VALUE can not be converted to a String");
    {
        /* values in arrays nested in arrays past the matcher's limit: an
         * error, not a Result of false */
        char *ev = apr_palloc(pool, 8000), *q;
        int i;

        q = ev +
            sprintf(ev, "%.*s,\"detail\":{\"x\":", (int)strlen(MINIMAL_EVENT) - 1, MINIMAL_EVENT);
        for (i = 0; i < 1500; i++) {
            *q++ = '[';
        }
        for (i = 0; i < 1000; i++) {
            q += sprintf(q, i ? ",1" : "1");
        }
        for (i = 0; i < 1500; i++) {
            *q++ = ']';
        }
        strcpy(q, "}}");
        expect_error(tep("{\"detail\":{\"x\":[1]}}", ev), 400, "ValidationException",
                     "Event has too many values inside arrays to be matched.");
    }
}
END_TEST

START_TEST(test_tep_pattern_too_long)
{
    char *pattern = apr_psprintf(pool, "{\"source\":[\"%0*d\"]}", 4090, 7);
    reply_t r = tep(pattern, EVENT);

    expect_error(r, 400, "ValidationException", NULL);
    ck_assert_msg(strstr(msg(r), "1 validation error detected: Value '{\"source\"") == msg(r), "%s",
                  msg(r));
    ck_assert_msg(strstr(msg(r), "' at 'eventPattern' failed to satisfy constraint: Member "
                                 "must have length less than or equal to 4096") != NULL,
                  "%s", msg(r));
    /* 4096 exactly is fine */
    pattern = apr_psprintf(pool, "{\"source\":[\"%0*d\"]}", 4096 - 15, 7);
    ck_assert_uint_eq(strlen(pattern), 4096);
    expect_ok(tep(pattern, EVENT));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Event buses and rules                                                */
/* ------------------------------------------------------------------ */

START_TEST(test_list_event_buses)
{
    reply_t r = call("ListEventBuses", "{}");
    const json_t *b;

    expect_ok(r);
    ck_assert_str_eq(names(r, "EventBuses", "Name"), "billing,default");
    b = json_array_get(json_object_get(r.body, "EventBuses"), 1);
    ck_assert_str_eq(str(b, "Arn"), "arn:aws:events:eu-west-1:123456789012:event-bus/default");
    ck_assert_ptr_null(json_object_get(r.body, "NextToken"));
    r = call("ListEventBuses", "{\"NamePrefix\": \"def\"}");
    ck_assert_str_eq(names(r, "EventBuses", "Name"), "default");
    r = call("ListEventBuses", "{\"Limit\": 1}");
    ck_assert_str_eq(names(r, "EventBuses", "Name"), "billing");
    ck_assert_ptr_nonnull(str(r.body, "NextToken"));
    r = call("ListEventBuses",
             apr_psprintf(pool, "{\"Limit\": 1, \"NextToken\": \"%s\"}", str(r.body, "NextToken")));
    ck_assert_str_eq(names(r, "EventBuses", "Name"), "default");
    ck_assert_ptr_null(json_object_get(r.body, "NextToken"));
    /* an empty body is an empty request */
    expect_ok(call("ListEventBuses", ""));
}
END_TEST

START_TEST(test_describe_event_bus)
{
    reply_t r = call("DescribeEventBus", "{}");

    expect_ok(r);
    ck_assert_str_eq(str(r.body, "Name"), "default");
    r = call("DescribeEventBus",
             "{\"Name\": \"arn:aws:events:eu-west-1:123456789012:event-bus/billing\"}");
    expect_ok(r);
    ck_assert_str_eq(str(r.body, "Name"), "billing");
    ck_assert_str_eq(str(r.body, "Arn"), "arn:aws:events:eu-west-1:123456789012:event-bus/billing");
    expect_error(call("DescribeEventBus", "{\"Name\": \"nope\"}"), 400, "ResourceNotFoundException",
                 "Event bus nope does not exist.");
}
END_TEST

START_TEST(test_list_rules)
{
    reply_t r = call("ListRules", "{}");
    const json_t *rule;

    expect_ok(r);
    ck_assert_str_eq(names(r, "Rules", "Name"),
                     "page-1,page-2,page-3,page-4,page-5,r-nightly,r-orders");
    rule = json_array_get(json_object_get(r.body, "Rules"), 6);
    ck_assert_str_eq(str(rule, "Arn"), "arn:aws:events:eu-west-1:123456789012:rule/r-orders");
    ck_assert_str_eq(str(rule, "EventPattern"), "{\"source\":[\"com.acme.orders\"]}");
    ck_assert_str_eq(str(rule, "State"), "ENABLED");
    ck_assert_str_eq(str(rule, "EventBusName"), "default");
    ck_assert_ptr_null(json_object_get(rule, "ScheduleExpression"));
    ck_assert_ptr_null(json_object_get(rule, "CreatedBy"));
    rule = json_array_get(json_object_get(r.body, "Rules"), 5);
    ck_assert_str_eq(str(rule, "ScheduleExpression"), "rate(5 minutes)");
    ck_assert_ptr_null(json_object_get(rule, "EventPattern"));

    r = call("ListRules", "{\"EventBusName\": \"billing\"}");
    ck_assert_str_eq(names(r, "Rules", "Name"), "r-billing");
    rule = json_array_get(json_object_get(r.body, "Rules"), 0);
    ck_assert_str_eq(str(rule, "Arn"),
                     "arn:aws:events:eu-west-1:123456789012:rule/billing/r-billing");
    ck_assert_str_eq(str(rule, "State"), "DISABLED");
    r = call("ListRules", "{\"EventBusName\": "
                          "\"arn:aws:events:eu-west-1:123456789012:event-bus/billing\"}");
    ck_assert_str_eq(names(r, "Rules", "Name"), "r-billing");
    r = call("ListRules", "{\"NamePrefix\": \"r-\"}");
    ck_assert_str_eq(names(r, "Rules", "Name"), "r-nightly,r-orders");
    expect_error(call("ListRules", "{\"EventBusName\": \"nope\"}"), 400,
                 "ResourceNotFoundException", "Event bus nope does not exist.");
    /* the same name in another account is not this bus */
    expect_error(
        call("ListRules", "{\"EventBusName\": "
                          "\"arn:aws:events:eu-west-1:999999999999:event-bus/billing\"}"),
        400, "ResourceNotFoundException",
        "Event bus arn:aws:events:eu-west-1:999999999999:event-bus/billing does not exist.");
}
END_TEST

START_TEST(test_list_rules_pages)
{
    const char *token = NULL, *all = "", *seen = "";
    int pages = 0;

    do {
        reply_t r = call("ListRules", token ? apr_psprintf(pool,
                                                           "{\"NamePrefix\":\"page-\",\"Limit\":2,"
                                                           "\"NextToken\":\"%s\"}",
                                                           token)
                                            : "{\"NamePrefix\":\"page-\",\"Limit\":2}");
        expect_ok(r);
        all = apr_pstrcat(pool, all, *all ? "," : "", names(r, "Rules", "Name"), NULL);
        token = str(r.body, "NextToken");
        /* the CLI stops on a token it saw before (aws-clients.md 1) */
        ck_assert_msg(!token || !strstr(seen, token), "token %s repeated", token);
        seen = apr_pstrcat(pool, seen, "|", token, NULL);
        pages++;
    } while (token);
    ck_assert_int_eq(pages, 3);
    ck_assert_str_eq(all, "page-1,page-2,page-3,page-4,page-5");
    expect_error(call("ListRules", "{\"NextToken\": \"garbage\"}"), 400, "ValidationException",
                 "Parameter NextToken is not valid.");
    /* past the end (the configuration shrank): an empty last page */
    expect_ok(call("ListRules", "{\"NextToken\": \"apidest-99\"}"));
}
END_TEST

START_TEST(test_member_validation)
{
    expect_error(call("ListRules", "{\"Limit\": 0}"), 400, "ValidationException",
                 "1 validation error detected: Value '0' at 'limit' failed to satisfy "
                 "constraint: Member must have value greater than or equal to 1");
    expect_error(call("ListRules", "{\"Limit\": 101}"), 400, "ValidationException",
                 "1 validation error detected: Value '101' at 'limit' failed to satisfy "
                 "constraint: Member must have value less than or equal to 100");
    expect_error(call("ListRules", "{\"NamePrefix\": \"bad name!\", \"Limit\": 0}"), 400,
                 "ValidationException",
                 "2 validation errors detected: Value 'bad name!' at 'namePrefix' failed to "
                 "satisfy constraint: Member must satisfy regular expression pattern: "
                 "[\\.\\-_A-Za-z0-9]+; Value '0' at 'limit' failed to satisfy constraint: "
                 "Member must have value greater than or equal to 1");
    expect_error(call("ListRules", "{\"EventBusName\": \"a:b\"}"), 400, "ValidationException",
                 "1 validation error detected: Value 'a:b' at 'eventBusName' failed to "
                 "satisfy constraint: Member must satisfy regular expression pattern: "
                 "(arn:aws[\\w-]*:events:[a-z]+-[a-z]+-[\\w-]+:[0-9]{12}:event-bus\\/)?"
                 "[/\\.\\-_A-Za-z0-9]+");
    expect_error(call("ListRules", "{\"NamePrefix\": \"\"}"), 400, "ValidationException",
                 "1 validation error detected: Value '' at 'namePrefix' failed to satisfy "
                 "constraint: Member must have length greater than or equal to 1");
    expect_error(call("ListRules", "{\"Limit\": \"5\"}"), 400, "SerializationException",
                 "STRING_VALUE can not be converted to an Integer");
    expect_error(call("ListRules", "{\"NamePrefix\": [\"x\"]}"), 400, "SerializationException",
                 "Start of list found where not expected");
    expect_error(call("ListRules", "{\"NamePrefix\": true}"), 400, "SerializationException",
                 "TRUE_VALUE can not be converted to a String");
    expect_error(call("ListRules", "{\"Limit\":"), 400, "SerializationException", NULL);
    expect_error(call("ListRules", "[]"), 400, "SerializationException", NULL);
    /* null is absent, unknown members are ignored */
    expect_ok(call("ListRules", "{\"NamePrefix\": null, \"Whatever\": 1}"));
    expect_ok(call("ListRules", "{\"Limit\": 100}"));
}
END_TEST

START_TEST(test_describe_rule)
{
    reply_t r = call("DescribeRule", "{\"Name\": \"r-orders\"}");

    expect_ok(r);
    ck_assert_str_eq(str(r.body, "Name"), "r-orders");
    ck_assert_str_eq(str(r.body, "Arn"), "arn:aws:events:eu-west-1:123456789012:rule/r-orders");
    ck_assert_str_eq(str(r.body, "EventPattern"), "{\"source\":[\"com.acme.orders\"]}");
    ck_assert_str_eq(str(r.body, "State"), "ENABLED");
    ck_assert_str_eq(str(r.body, "EventBusName"), "default");
    ck_assert_str_eq(str(r.body, "CreatedBy"), "123456789012");
    r = call("DescribeRule", "{\"Name\": \"r-billing\", \"EventBusName\": \"billing\"}");
    expect_ok(r);
    ck_assert_str_eq(str(r.body, "State"), "DISABLED");
    expect_error(call("DescribeRule", "{\"Name\": \"nope\"}"), 400, "ResourceNotFoundException",
                 "Rule nope does not exist on EventBus default.");
    expect_error(call("DescribeRule", "{\"Name\": \"r-billing\"}"), 400,
                 "ResourceNotFoundException", "Rule r-billing does not exist on EventBus default.");
    expect_error(call("DescribeRule", "{\"Name\": \"r-orders\", \"EventBusName\": \"billing\"}"),
                 400, "ResourceNotFoundException",
                 "Rule r-orders does not exist on EventBus billing.");
    expect_error(call("DescribeRule", "{}"), 400, "ValidationException",
                 "1 validation error detected: Value null at 'name' failed to satisfy "
                 "constraint: Member must not be null");
    expect_error(call("DescribeRule", apr_psprintf(pool, "{\"Name\": \"%0*d\"}", 65, 1)), 400,
                 "ValidationException", NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Targets                                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_list_targets_by_rule)
{
    reply_t r = call("ListTargetsByRule", "{\"Rule\": \"r-orders\"}");
    const json_t *t, *hp, *it, *rp;

    expect_ok(r);
    ck_assert_str_eq(names(r, "Targets", "Id"), "t1,t2");
    t = json_array_get(json_object_get(r.body, "Targets"), 0);
    ck_assert_str_eq(str(t, "Arn"),
                     "arn:aws:events:eu-west-1:123456789012:api-destination/d-billing");
    hp = json_object_get(t, "HttpParameters");
    ck_assert_str_eq(
        json_string_value(json_array_get(json_object_get(hp, "PathParameterValues"), 0)),
        "$.detail.tenant");
    ck_assert_str_eq(str(json_object_get(hp, "HeaderParameters"), "X-Invoice"), "$.detail.id");
    ck_assert_str_eq(str(json_object_get(hp, "HeaderParameters"), "X-Secret"), "***");
    ck_assert_str_eq(str(json_object_get(hp, "QueryStringParameters"), "source"), "$.source");
    it = json_object_get(t, "InputTransformer");
    ck_assert_str_eq(str(it, "InputTemplate"), "{\"id\": <id>}");
    ck_assert_str_eq(str(json_object_get(it, "InputPathsMap"), "id"), "$.detail.id");
    rp = json_object_get(t, "RetryPolicy");
    ck_assert_int_eq(json_integer_value(json_object_get(rp, "MaximumRetryAttempts")), 10);
    ck_assert_int_eq(json_integer_value(json_object_get(rp, "MaximumEventAgeInSeconds")), 3600);
    ck_assert_ptr_null(strstr(r.raw, "hdr-s3cr3t"));

    t = json_array_get(json_object_get(r.body, "Targets"), 1);
    ck_assert_str_eq(str(t, "Arn"), "https://plain.example.com/hook");
    ck_assert_str_eq(str(t, "InputPath"), "$.detail");
    ck_assert_ptr_null(json_object_get(t, "HttpParameters"));
    ck_assert_ptr_null(json_object_get(t, "InputTransformer"));
    rp = json_object_get(t, "RetryPolicy");
    ck_assert_int_eq(json_integer_value(json_object_get(rp, "MaximumRetryAttempts")), 185);

    r = call("ListTargetsByRule", "{\"Rule\": \"r-nightly\"}");
    t = json_array_get(json_object_get(r.body, "Targets"), 0);
    ck_assert_str_eq(str(t, "Input"), "{\"fixed\":true}");

    r = call("ListTargetsByRule", "{\"Rule\": \"r-orders\", \"Limit\": 1}");
    ck_assert_str_eq(names(r, "Targets", "Id"), "t1");
    r = call("ListTargetsByRule", apr_psprintf(pool,
                                               "{\"Rule\": \"r-orders\", \"Limit\": 1, "
                                               "\"NextToken\": \"%s\"}",
                                               str(r.body, "NextToken")));
    ck_assert_str_eq(names(r, "Targets", "Id"), "t2");
    ck_assert_ptr_null(json_object_get(r.body, "NextToken"));
    r = call("ListTargetsByRule", "{\"Rule\": \"page-1\"}");
    expect_ok(r);
    ck_assert_str_eq(names(r, "Targets", "Id"), "");
    expect_error(call("ListTargetsByRule", "{\"Rule\": \"nope\"}"), 400,
                 "ResourceNotFoundException", "Rule nope does not exist on EventBus default.");
    expect_error(call("ListTargetsByRule", "{}"), 400, "ValidationException",
                 "1 validation error detected: Value null at 'rule' failed to satisfy "
                 "constraint: Member must not be null");
}
END_TEST

START_TEST(test_list_rule_names_by_target)
{
    const char *arn = "arn:aws:events:eu-west-1:123456789012:api-destination/d-billing";
    reply_t r = call("ListRuleNamesByTarget", apr_psprintf(pool, "{\"TargetArn\": \"%s\"}", arn));

    expect_ok(r);
    ck_assert_str_eq(names(r, "RuleNames", NULL), "r-orders");
    r = call("ListRuleNamesByTarget", apr_psprintf(pool,
                                                   "{\"TargetArn\": \"%s\", "
                                                   "\"EventBusName\": \"billing\"}",
                                                   arn));
    ck_assert_str_eq(names(r, "RuleNames", NULL), "r-billing");
    r = call("ListRuleNamesByTarget", "{\"TargetArn\": \"https://plain.example.com/hook\"}");
    ck_assert_str_eq(names(r, "RuleNames", NULL), "r-orders");
    r = call("ListRuleNamesByTarget", "{\"TargetArn\": \"arn:aws:sqs:eu-west-1:1:q\"}");
    expect_ok(r);
    ck_assert_str_eq(names(r, "RuleNames", NULL), "");
    expect_error(call("ListRuleNamesByTarget", "{}"), 400, "ValidationException",
                 "1 validation error detected: Value null at 'targetArn' failed to satisfy "
                 "constraint: Member must not be null");
    expect_error(call("ListRuleNamesByTarget", "{\"TargetArn\": \"x\", \"EventBusName\": \"no\"}"),
                 400, "ResourceNotFoundException", "Event bus no does not exist.");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Connections and API destinations                                     */
/* ------------------------------------------------------------------ */

static void assert_no_secret(reply_t r)
{
    static const char *const secrets[] = {"s3cr3t", NULL};
    int i;

    for (i = 0; secrets[i]; i++) {
        ck_assert_msg(strstr(r.raw, secrets[i]) == NULL, "secret in %s", r.raw);
    }
}

START_TEST(test_list_connections)
{
    reply_t r = call("ListConnections", "{}");
    const json_t *cn;

    expect_ok(r);
    assert_no_secret(r);
    ck_assert_str_eq(names(r, "Connections", "Name"), "c-basic,c-key,c-oauth");
    ck_assert_str_eq(names(r, "Connections", "AuthorizationType"),
                     "BASIC,API_KEY,OAUTH_CLIENT_CREDENTIALS");
    ck_assert_str_eq(names(r, "Connections", "ConnectionState"),
                     "AUTHORIZED,AUTHORIZED,AUTHORIZED");
    cn = json_array_get(json_object_get(r.body, "Connections"), 0);
    ck_assert_str_eq(str(cn, "ConnectionArn"),
                     "arn:aws:events:eu-west-1:123456789012:connection/c-basic");
    ck_assert_int_eq(json_integer_value(json_object_get(cn, "CreationTime")), MTIME);
    ck_assert_int_eq(json_integer_value(json_object_get(cn, "LastModifiedTime")), MTIME);
    ck_assert_ptr_null(json_object_get(cn, "AuthParameters"));
    r = call("ListConnections", "{\"NamePrefix\": \"c-o\", \"ConnectionState\": \"AUTHORIZED\"}");
    ck_assert_str_eq(names(r, "Connections", "Name"), "c-oauth");
    r = call("ListConnections", "{\"ConnectionState\": \"DEAUTHORIZED\"}");
    ck_assert_str_eq(names(r, "Connections", "Name"), "");
    expect_error(call("ListConnections", "{\"ConnectionState\": \"NOPE\"}"), 400,
                 "ValidationException",
                 "1 validation error detected: Value 'NOPE' at 'connectionState' failed to "
                 "satisfy constraint: Member must satisfy enum value set: [CREATING, UPDATING, "
                 "DELETING, AUTHORIZED, DEAUTHORIZED, AUTHORIZING, DEAUTHORIZING, ACTIVE, "
                 "FAILED_CONNECTIVITY]");
}
END_TEST

START_TEST(test_describe_connection)
{
    reply_t r = call("DescribeConnection", "{\"Name\": \"c-basic\"}");
    const json_t *ap, *ihp, *h;

    expect_ok(r);
    assert_no_secret(r);
    ck_assert_str_eq(str(r.body, "Name"), "c-basic");
    ck_assert_str_eq(str(r.body, "AuthorizationType"), "BASIC");
    ap = json_object_get(r.body, "AuthParameters");
    ck_assert_str_eq(str(json_object_get(ap, "BasicAuthParameters"), "Username"), "alice");
    ck_assert_int_eq(json_object_size(json_object_get(ap, "BasicAuthParameters")), 1);
    ihp = json_object_get(ap, "InvocationHttpParameters");
    h = json_object_get(ihp, "HeaderParameters");
    ck_assert_int_eq(json_array_size(h), 2);
    ck_assert_str_eq(str(json_array_get(h, 0), "Key"), "X-Tenant");
    ck_assert_str_eq(str(json_array_get(h, 0), "Value"), "acme");
    ck_assert(json_is_false(json_object_get(json_array_get(h, 0), "IsValueSecret")));
    ck_assert_str_eq(str(json_array_get(h, 1), "Key"), "X-Token");
    ck_assert_ptr_null(json_object_get(json_array_get(h, 1), "Value"));
    ck_assert(json_is_true(json_object_get(json_array_get(h, 1), "IsValueSecret")));
    ck_assert_str_eq(str(json_array_get(json_object_get(ihp, "QueryStringParameters"), 0), "Key"),
                     "q1");
    ck_assert_str_eq(str(json_array_get(json_object_get(ihp, "BodyParameters"), 0), "Value"), "w1");

    r = call("DescribeConnection", "{\"Name\": \"c-key\"}");
    assert_no_secret(r);
    ap = json_object_get(r.body, "AuthParameters");
    ck_assert_str_eq(str(json_object_get(ap, "ApiKeyAuthParameters"), "ApiKeyName"), "X-Api-Key");
    ck_assert_ptr_null(json_object_get(ap, "InvocationHttpParameters"));

    r = call("DescribeConnection", "{\"Name\": \"c-oauth\"}");
    assert_no_secret(r);
    ap = json_object_get(json_object_get(r.body, "AuthParameters"), "OAuthParameters");
    ck_assert_str_eq(str(ap, "AuthorizationEndpoint"), "https://auth.example.com/oauth2/token");
    ck_assert_str_eq(str(ap, "HttpMethod"), "POST");
    ck_assert_str_eq(str(json_object_get(ap, "ClientParameters"), "ClientID"), "client-1");
    h = json_object_get(json_object_get(ap, "OAuthHttpParameters"), "BodyParameters");
    ck_assert_str_eq(str(json_array_get(h, 0), "Value"), "billing/write");
    h = json_object_get(json_object_get(ap, "OAuthHttpParameters"), "HeaderParameters");
    ck_assert_ptr_null(json_object_get(json_array_get(h, 0), "Value"));

    expect_error(call("DescribeConnection", "{\"Name\": \"nope\"}"), 400,
                 "ResourceNotFoundException",
                 "Failed to describe the connection(s). Connection 'nope' does not exist.");
}
END_TEST

START_TEST(test_api_destinations)
{
    reply_t r = call("ListApiDestinations", "{}");
    const json_t *d;

    expect_ok(r);
    ck_assert_str_eq(names(r, "ApiDestinations", "Name"), "d-audit,d-billing");
    d = json_array_get(json_object_get(r.body, "ApiDestinations"), 0);
    ck_assert_ptr_null(json_object_get(d, "ConnectionArn"));
    ck_assert_str_eq(str(d, "HttpMethod"), "PUT");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "InvocationRateLimitPerSecond")), 10);
    r = call("ListApiDestinations",
             "{\"ConnectionArn\": "
             "\"arn:aws:events:eu-west-1:123456789012:connection/c-oauth\"}");
    ck_assert_str_eq(names(r, "ApiDestinations", "Name"), "d-billing");
    r = call("ListApiDestinations", "{\"NamePrefix\": \"d-a\"}");
    ck_assert_str_eq(names(r, "ApiDestinations", "Name"), "d-audit");

    r = call("DescribeApiDestination", "{\"Name\": \"d-billing\"}");
    expect_ok(r);
    ck_assert_str_eq(str(r.body, "Name"), "d-billing");
    ck_assert_str_eq(str(r.body, "ApiDestinationArn"),
                     "arn:aws:events:eu-west-1:123456789012:api-destination/d-billing");
    ck_assert_str_eq(str(r.body, "ApiDestinationState"), "ACTIVE");
    ck_assert_str_eq(str(r.body, "ConnectionArn"),
                     "arn:aws:events:eu-west-1:123456789012:connection/c-oauth");
    ck_assert_str_eq(str(r.body, "InvocationEndpoint"),
                     "https://api.example.com/v1/tenants/*/invoices");
    ck_assert_str_eq(str(r.body, "HttpMethod"), "POST");
    ck_assert_int_eq(json_integer_value(json_object_get(r.body, "InvocationRateLimitPerSecond")),
                     300);
    ck_assert(json_is_integer(json_object_get(r.body, "CreationTime")));
    ck_assert_int_eq(json_integer_value(json_object_get(r.body, "CreationTime")), MTIME);
    ck_assert_int_eq(json_integer_value(json_object_get(r.body, "LastModifiedTime")), MTIME);
    assert_no_secret(r);
    expect_error(call("DescribeApiDestination", "{\"Name\": \"nope\"}"), 400,
                 "ResourceNotFoundException",
                 "Failed to describe the api-destination(s). "
                 "An api-destination 'nope' does not exist.");
    expect_error(call("DescribeApiDestination", "{\"Name\": \"a b\"}"), 400, "ValidationException",
                 "1 validation error detected: Value 'a b' at 'name' failed to satisfy "
                 "constraint: Member must satisfy regular expression pattern: "
                 "[\\.\\-_A-Za-z0-9]+");
}
END_TEST

START_TEST(test_no_file_no_times)
{
    ad_destination_t *d = APR_ARRAY_IDX(conf->destinations, 0, ad_destination_t *);
    reply_t r;

    d->file = NULL;
    r = call("DescribeApiDestination", "{\"Name\": \"d-billing\"}");
    expect_ok(r);
    ck_assert_ptr_null(json_object_get(r.body, "CreationTime"));
    d->file = "/nonexistent/httpd.conf";
    r = call("DescribeApiDestination", "{\"Name\": \"d-billing\"}");
    ck_assert_ptr_null(json_object_get(r.body, "LastModifiedTime"));
}
END_TEST

START_TEST(test_no_connections)
{
    conf->connections = apr_array_make(pool, 1, sizeof(ad_connection_t *));
    conf->connection_by_name = apr_hash_make(pool);
    ck_assert_str_eq(names(call("ListConnections", "{}"), "Connections", "Name"), "");
    expect_error(call("DescribeConnection", "{\"Name\": \"c-basic\"}"), 400,
                 "ResourceNotFoundException",
                 "Failed to describe the connection(s). Connection 'c-basic' does not exist.");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Refusals                                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_mutating_refused)
{
    static const char *const ops[] = {"PutRule",
                                      "PutTargets",
                                      "DeleteRule",
                                      "RemoveTargets",
                                      "EnableRule",
                                      "DisableRule",
                                      "CreateConnection",
                                      "UpdateConnection",
                                      "DeleteConnection",
                                      "CreateApiDestination",
                                      "UpdateApiDestination",
                                      "DeleteApiDestination",
                                      "CreateEventBus",
                                      "TagResource",
                                      "DeauthorizeConnection",
                                      NULL};
    int i;

    for (i = 0; ops[i]; i++) {
        reply_t r = call(ops[i], "{\"Name\": \"x\"}");
        expect_error(r, 400, "UnsupportedOperation", NULL);
        ck_assert_msg(strstr(msg(r), ops[i]) == msg(r), "%s", msg(r));
        ck_assert_msg(strstr(msg(r), "httpd.conf") != NULL, "%s", msg(r));
    }
    expect_error(call("ListArchives", "{}"), 400, "UnsupportedOperation", NULL);
    expect_error(call("ListTagsForResource", "{}"), 400, "UnsupportedOperation", NULL);
}
END_TEST

START_TEST(test_unknown_operation)
{
    reply_t r = call("Frobnicate", "{}");

    expect_error(r, 400, "UnknownOperationException", NULL);
    ck_assert_ptr_nonnull(strstr(msg(r), "AWSEvents.Frobnicate"));
    expect_error(call_target("Foo.ListRules", "{}"), 400, "UnknownOperationException", NULL);
    expect_error(call_target("AWSEvents.", "{}"), 400, "UnknownOperationException", NULL);
    expect_error(call_target("AWSEvents.listrules", "{}"), 400, "UnknownOperationException", NULL);
    expect_error(call_target(NULL, "{}"), 400, "UnknownOperationException", NULL);
    /* the operation is refused before the body is looked at */
    expect_error(call("Frobnicate", "not json"), 400, "UnknownOperationException", NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The admin route                                                       */
/* ------------------------------------------------------------------ */

typedef struct admin_reply_t {
    int status;
    const char *type;
    json_t *body;
} admin_reply_t;

static admin_reply_t admin(const char *body)
{
    admin_reply_t r;
    char *out;
    apr_size_t len;
    json_error_t jerr;

    r.status = ad_awsjson_test_event_pattern(pool, body, strlen(body), &out, &len, &r.type);
    r.body = ad_json_own(pool, json_loadb(out, len, 0, &jerr));
    ck_assert_msg(json_is_object(r.body), "%s", out);
    if (r.status != 200) {
        ck_assert_str_eq(str(r.body, "error"), r.type);
        ck_assert_ptr_nonnull(str(r.body, "message"));
        ck_assert_ptr_null(json_object_get(r.body, "__type"));
    }
    else {
        ck_assert_ptr_null(r.type);
    }
    return r;
}

START_TEST(test_admin_test_event_pattern)
{
    admin_reply_t r;
    char *body;

    /* strings, as TestEventPattern takes them */
    body = apr_psprintf(pool,
                        "{\"EventPattern\": \"{\\\"source\\\":[\\\"com.acme.orders\\\"]}\", "
                        "\"Event\": %s}",
                        ad_json_dump(pool, ad_json_own(pool, json_string(EVENT)), NULL));
    r = admin(body);
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_is_true(json_object_get(r.body, "Result")));
    /* or the JSON values themselves */
    r = admin(
        apr_psprintf(pool, "{\"EventPattern\": {\"source\": [\"other\"]}, \"Event\": %s}", EVENT));
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_is_false(json_object_get(r.body, "Result")));
    r = admin(apr_psprintf(pool, "{\"EventPattern\": {\"source\": \"x\"}, \"Event\": %s}", EVENT));
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.type, "InvalidEventPatternException");
    ck_assert_str_eq(str(r.body, "message"), "Event pattern is not valid. Reason: \"source\" "
                                             "must be an object or an array");
    r = admin(apr_psprintf(pool, "{\"EventPattern\": [1], \"Event\": %s}", EVENT));
    ck_assert_str_eq(r.type, "InvalidEventPatternException");
    r = admin("{\"EventPattern\": {\"source\": [\"x\"]}, \"Event\": {\"id\": \"1\"}}");
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.type, "ValidationException");
    ck_assert_str_eq(str(r.body, "message"), "Parameter Event is not valid.");
    r = admin("{\"EventPattern\": {\"source\": [\"x\"]}, \"Event\": \"{not json\"}");
    ck_assert_str_eq(str(r.body, "message"), "Parameter Event is not valid.");
    r = admin("{}");
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.type, "ValidationException");
    ck_assert_str_eq(str(r.body, "message"),
                     "2 validation errors detected: Value null at "
                     "'eventPattern' failed to satisfy constraint: Member must not be null; "
                     "Value null at 'event' failed to satisfy constraint: Member must not be null");
    r = admin("not json");
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.type, "SerializationException");
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *awsjson_suite(void)
{
    Suite *s = suite_create("awsjson");
    TCase *tc = tcase_create("conformance");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_conformance_via_dispatch);
    suite_add_tcase(s, tc);

    tc = tcase_create("operations");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_tep_result);
    tcase_add_test(tc, test_tep_errors);
    tcase_add_test(tc, test_tep_pattern_too_long);
    tcase_add_test(tc, test_list_event_buses);
    tcase_add_test(tc, test_describe_event_bus);
    tcase_add_test(tc, test_list_rules);
    tcase_add_test(tc, test_list_rules_pages);
    tcase_add_test(tc, test_member_validation);
    tcase_add_test(tc, test_describe_rule);
    tcase_add_test(tc, test_list_targets_by_rule);
    tcase_add_test(tc, test_list_rule_names_by_target);
    tcase_add_test(tc, test_list_connections);
    tcase_add_test(tc, test_describe_connection);
    tcase_add_test(tc, test_api_destinations);
    tcase_add_test(tc, test_no_file_no_times);
    tcase_add_test(tc, test_no_connections);
    tcase_add_test(tc, test_mutating_refused);
    tcase_add_test(tc, test_unknown_operation);
    tcase_add_test(tc, test_admin_test_event_pattern);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(awsjson_suite());
}
