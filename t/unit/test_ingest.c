/* PutEvents parsing, validation, envelopes and records, without httpd. */
#include <check.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <jansson.h>

#include "ad_ingest.h"
#include "ad_jsonpath.h"
#include "ad_record.h"
#include "ad_util.h"
#include "unit_run.h"

static apr_pool_t *pool;
static ad_conf_t *conf;

static ad_rule_t *add_rule(const char *name, const char *bus, const char *pattern, int enabled,
                           int ntargets)
{
    ad_rule_t *r = apr_pcalloc(pool, sizeof(*r));
    const char *reason = NULL;
    int i;

    r->name = name;
    r->index = conf->rules->nelts;
    r->bus = bus;
    r->enabled = enabled;
    r->pattern_text = pattern;
    r->pattern = ad_pattern_compile(pool, pattern, strlen(pattern), &reason);
    ck_assert_msg(r->pattern != NULL, "pattern %s: %s", pattern, reason);
    r->targets = apr_array_make(pool, 2, sizeof(ad_target_t *));
    for (i = 0; i < ntargets; i++) {
        ad_target_t *t = ad_conf_target_make(pool, apr_psprintf(pool, "t%d", i));
        ad_destination_t *d = apr_pcalloc(pool, sizeof(*d));
        d->name = apr_psprintf(pool, "%s-dest%d", name, i);
        d->endpoint = apr_psprintf(pool, "https://example.com/%s/%d", name, i);
        d->method = "PUT";
        t->destination = d;
        APR_ARRAY_PUSH(r->targets, ad_target_t *) = t;
    }
    APR_ARRAY_PUSH(conf->rules, ad_rule_t *) = r;
    return r;
}

static void setup(void)
{
    apr_pool_create(&pool, NULL);
    conf = ad_conf_make(pool);
    conf->account = "123456789012";
    conf->region = "eu-west-1";
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

static ad_ingest_t *put(const char *body)
{
    ad_conf_index_targets(conf);
    ad_conf_index_rules(conf, pool);
    return ad_ingest_put_events(pool, conf, AD_INGEST_AWSJSON, body, strlen(body),
                                apr_time_from_sec(1700000000));
}

static const ad_ingest_entry_t *entry(const ad_ingest_t *in, int i)
{
    return &APR_ARRAY_IDX(in->entries, i, ad_ingest_entry_t);
}

static ad_record_t *record(const ad_ingest_t *in, int i)
{
    const ad_blob_t *b = &APR_ARRAY_IDX(in->records, i, ad_blob_t);
    ad_record_t *r;
    ck_assert_int_eq(ad_record_decode(pool, b->data, b->len, &r), APR_SUCCESS);
    return r;
}

START_TEST(envelope_as_aws_builds_it)
{
    ad_ingest_t *in;
    ad_record_t *r;
    char *expect;

    add_rule("r1", "default", "{\"source\":[\"app\"]}", 1, 1);
    in = put("{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"Thing Done\","
             "\"Detail\":\"{\\\"b\\\": 0.1, \\\"a\\\": [1, {\\\"x\\\": null}], \\\"s\\\": "
             "\\\"\\u00e9\\\\n\\\"}\","
             "\"Resources\":[\"arn:1\"],\"Time\":1600000000.75}]}");
    ck_assert_int_eq(in->status, 200);
    ck_assert_int_eq(in->failed_count, 0);
    ck_assert_ptr_nonnull(entry(in, 0)->event_id);
    ck_assert_int_eq(in->records->nelts, 1);
    r = record(in, 0);
    expect = apr_psprintf(
        pool,
        "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"Thing Done\",\"source\":\"app\","
        "\"account\":\"123456789012\",\"time\":\"2020-09-13T12:26:40Z\",\"region\":\"eu-west-1\","
        "\"resources\":[\"arn:1\"],\"detail\":{\"b\":0.1,\"a\":[1,{\"x\":null}],\"s\":"
        "\"\xc3\xa9\\n\"}}",
        entry(in, 0)->event_id);
    ck_assert_str_eq(r->body, expect);
    ck_assert_str_eq(r->event_id, entry(in, 0)->event_id);
    ck_assert_str_eq(r->rule, "r1");
    ck_assert_str_eq(r->target, "t0");
    ck_assert_str_eq(r->destination, "r1-dest0");
    ck_assert_str_eq(r->method, "PUT");
    ck_assert_str_eq(r->url, "https://example.com/r1/0");
    ck_assert(r->first_seen == apr_time_from_sec(1700000000));
}
END_TEST

START_TEST(time_forms)
{
    ad_ingest_t *in;

    add_rule("r1", "default", "{\"source\":[\"app\"]}", 1, 1);
    in =
        put("{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{}\","
            "\"Time\":\"2021-02-03T04:05:06.789+01:00\"},"
            "{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{}\"},"
            "{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{}\",\"Time\":\"yesterday\"}]}");
    ck_assert_int_eq(in->records->nelts, 2);
    ck_assert_ptr_nonnull(strstr(record(in, 0)->body, "\"time\":\"2021-02-03T03:05:06Z\""));
    ck_assert_ptr_nonnull(strstr(record(in, 1)->body, "\"time\":\"2023-11-14T22:13:20Z\""));
    ck_assert_int_eq(in->failed_count, 1);
    ck_assert_str_eq(entry(in, 2)->error_code, "InvalidArgument");
    ck_assert_ptr_nonnull(strstr(record(in, 1)->body, "\"resources\":[]"));
}
END_TEST

START_TEST(per_entry_errors)
{
    ad_ingest_t *in = put("{\"Entries\":["
                          "{\"DetailType\":\"d\",\"Detail\":\"{}\"},"
                          "{\"Source\":\"s\",\"DetailType\":\"\",\"Detail\":\"{}\"},"
                          "{\"Source\":\"s\",\"DetailType\":\"d\"},"
                          "{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"[]\"},"
                          "{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"NotJSON\"},"
                          "{\"Source\":\"aws.ec2\",\"DetailType\":\"d\",\"Detail\":\"{}\"},"
                          "{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"{}\"}]}");

    ck_assert_int_eq(in->status, 200);
    ck_assert_int_eq(in->entries->nelts, 7);
    ck_assert_int_eq(in->failed_count, 6);
    ck_assert_str_eq(entry(in, 0)->error_code, "InvalidArgument");
    ck_assert_str_eq(entry(in, 0)->error_message,
                     "Parameter Source is not valid. Reason: Source is a required argument.");
    ck_assert_str_eq(
        entry(in, 1)->error_message,
        "Parameter DetailType is not valid. Reason: DetailType is a required argument.");
    ck_assert_str_eq(entry(in, 2)->error_message,
                     "Parameter Detail is not valid. Reason: Detail is a required argument.");
    ck_assert_str_eq(entry(in, 3)->error_code, "MalformedDetail");
    ck_assert_str_eq(entry(in, 3)->error_message, "Detail is malformed.");
    ck_assert_str_eq(entry(in, 4)->error_code, "MalformedDetail");
    ck_assert_str_eq(entry(in, 5)->error_code, "NotAuthorizedForSourceException");
    ck_assert_ptr_nonnull(entry(in, 6)->event_id);
}
END_TEST

START_TEST(whole_request_errors)
{
    ad_ingest_t *in;
    char *eleven = "{\"Entries\":[";
    int i;

    in = put("not json");
    ck_assert_int_eq(in->status, 400);
    ck_assert_str_eq(in->error_type, "SerializationException");
    in = put("{}");
    ck_assert_int_eq(in->status, 400);
    ck_assert_str_eq(in->error_type, "ValidationException");
    in = put(" \n"); /* an empty request, as for the other operations */
    ck_assert_int_eq(in->status, 400);
    ck_assert_str_eq(in->error_type, "ValidationException");
    ck_assert_ptr_nonnull(strstr(in->error_message, "Value null at 'entries'"));
    in = put("[{\"Source\":\"s\"}]");
    ck_assert_int_eq(in->status, 400);
    ck_assert_str_eq(in->error_type, "SerializationException");
    ck_assert_str_eq(in->error_message, "Start of list found where not expected");
    in = put("{\"Entries\":{\"Source\":\"s\"}}");
    ck_assert_int_eq(in->status, 400);
    ck_assert_str_eq(in->error_type, "SerializationException");
    ck_assert_str_eq(in->error_message, "Start of structure or map found where not expected.");
    in = put("{\"Entries\":\"x\"}");
    ck_assert_str_eq(in->error_message, "STRING_VALUE can not be converted to a List");
    in = put("{\"Entries\":[]}");
    ck_assert_int_eq(in->status, 400);
    for (i = 0; i < 11; i++) {
        eleven = apr_pstrcat(pool, eleven, i ? "," : "",
                             "{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"{}\"}", NULL);
    }
    in = put(apr_pstrcat(pool, eleven, "]}", NULL));
    ck_assert_int_eq(in->status, 400);
    ck_assert_ptr_nonnull(
        strstr(in->error_message, "Member must have length less than or equal to 10"));
    conf->max_entry_size = 1024;
    in = put(apr_psprintf(pool,
                          "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"d\","
                          "\"Detail\":\"{\\\"x\\\":\\\"%0900d\\\"}\","
                          "\"Resources\":[\"%0200d\"]}]}",
                          0, 0));
    ck_assert_int_eq(in->status, 400);
    ck_assert_str_eq(in->error_message,
                     "Total size of the entries in the request is over the limit.");
    /* "less than" the limit: 1 + 1 + (pad + 8) bytes */
    in = put(apr_psprintf(pool,
                          "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"d\","
                          "\"Detail\":\"{\\\"x\\\":\\\"%01014d\\\"}\"}]}",
                          0));
    ck_assert_int_eq(in->status, 400);
    in = put(apr_psprintf(pool,
                          "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"d\","
                          "\"Detail\":\"{\\\"x\\\":\\\"%01013d\\\"}\"}]}",
                          0));
    ck_assert_int_eq(in->status, 200);
}
END_TEST

/* An entry with one member replaced (raw JSON) must fail the whole request
 * with type, as AWS's front end fails it. */
static void assert_member_refused(const char *member, const char *type, const char *text)
{
    ad_ingest_t *in =
        put(apr_psprintf(pool,
                         "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"{}\"},"
                         "{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"{}\",%s}]}",
                         member));

    ck_assert_int_eq(in->status, 400);
    ck_assert_str_eq(in->error_type, type);
    ck_assert_msg(strstr(in->error_message, text), "%s: %s", member, in->error_message);
    ck_assert_int_eq(in->records->nelts, 0);
}

START_TEST(model_constraints)
{
    ad_ingest_t *in;

    add_rule("r", "default", "{\"source\":[\"s\"]}", 1, 1);
    assert_member_refused("\"EventBusName\":\"\"", "ValidationException",
                          "1 validation error detected: Value '' at "
                          "'entries.2.member.eventBusName' failed to satisfy constraint: Member "
                          "must have length greater than or equal to 1");
    assert_member_refused("\"EventBusName\":\"bad bus!\"", "ValidationException",
                          "at 'entries.2.member.eventBusName' failed to satisfy constraint: "
                          "Member must satisfy regular expression pattern: (arn:aws");
    assert_member_refused(apr_psprintf(pool, "\"EventBusName\":\"%01601d\"", 0),
                          "ValidationException",
                          "Member must have length less than or equal to 1600");
    assert_member_refused("\"EventBusName\":\"a/b\"", "ValidationException",
                          "regular expression pattern");
    assert_member_refused("\"EventBusName\":7", "SerializationException",
                          "NUMBER_VALUE can not be converted to a String");
    assert_member_refused("\"Source\":5", "SerializationException",
                          "NUMBER_VALUE can not be converted to a String");
    assert_member_refused("\"Detail\":{}", "SerializationException",
                          "Start of structure or map found where not expected.");
    assert_member_refused("\"Resources\":\"arn:x\"", "SerializationException",
                          "STRING_VALUE can not be converted to a List");
    assert_member_refused(apr_psprintf(pool, "\"Resources\":[\"a\",\"%02049d\"]", 0),
                          "ValidationException",
                          "at 'entries.2.member.resources.2.member' failed to satisfy constraint: "
                          "Member must have length less than or equal to 2048");
    assert_member_refused("\"Time\":true", "SerializationException",
                          "TRUE_VALUE can not be converted to a Timestamp");
    assert_member_refused(apr_psprintf(pool, "\"TraceHeader\":\"%0501d\"", 0),
                          "ValidationException", "'entries.2.member.traceHeader'");
    assert_member_refused("\"TraceHeader\":\"\",\"EventBusName\":\"\"", "ValidationException",
                          "2 validation errors detected: ");
    in = put("{\"EndpointId\":\"bad\",\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"d\","
             "\"Detail\":\"{}\"}]}");
    ck_assert_int_eq(in->status, 400);
    ck_assert_ptr_nonnull(strstr(in->error_message, "Value 'bad' at 'endpointId'"));
    in = put("{\"Entries\":[\"x\"]}");
    ck_assert_int_eq(in->status, 400);
    ck_assert_str_eq(in->error_type, "SerializationException");
    /* null reads as absent: such an entry fails on its own */
    in = put("{\"Entries\":[null,{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"{}\","
             "\"Resources\":[null]}]}");
    ck_assert_int_eq(in->status, 200);
    ck_assert_int_eq(in->failed_count, 2);
    /* types before constraints; every constraint in one message */
    in = put("{\"Entries\":[{\"Source\":5},{},{},{},{},{},{},{},{},{},{}]}");
    ck_assert_str_eq(in->error_type, "SerializationException");
    in = put("{\"Entries\":[{\"EventBusName\":\"\"},{},{},{},{},{},{},{},{},{},{}]}");
    ck_assert_str_eq(in->error_type, "ValidationException");
    ck_assert_ptr_nonnull(strstr(in->error_message, "2 validation errors detected: Value '[...]' "
                                                    "at 'entries' failed"));
    /* within the constraints: taken */
    in = put("{\"EndpointId\":\"abc.xyz\",\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"d\","
             "\"Detail\":\"{}\",\"TraceHeader\":\"Root=1-5759e988-bd862e3fe1be46a994272793\","
             "\"Resources\":[\"arn:aws:s3:::b\"],\"EventBusName\":"
             "\"arn:aws:events:eu-west-1:123456789012:event-bus/default\"}]}");
    ck_assert_int_eq(in->status, 200);
    ck_assert_int_eq(in->failed_count, 0);
    ck_assert_int_eq(in->records->nelts, 1);
}
END_TEST

START_TEST(routing)
{
    ad_ingest_t *in;

    add_rule("two", "default", "{\"source\":[\"app\"]}", 1, 2);
    add_rule("off", "default", "{\"source\":[\"app\"]}", 0, 1);
    add_rule("other-bus", "orders", "{\"source\":[\"app\"]}", 1, 1);
    add_rule("nomatch", "default", "{\"source\":[\"zzz\"]}", 1, 1);
    in = put("{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{}\"}]}");
    ck_assert_int_eq(in->records->nelts, 2);
    ck_assert_str_eq(record(in, 0)->target, "t0");
    ck_assert_str_eq(record(in, 1)->target, "t1");
    in = put("{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{}\","
             "\"EventBusName\":\"arn:aws:events:eu-west-1:123456789012:event-bus/orders\"}]}");
    ck_assert_int_eq(in->records->nelts, 1);
    ck_assert_str_eq(record(in, 0)->rule, "other-bus");
    in = put("{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{}\","
             "\"EventBusName\":\"no-such-bus\"}]}");
    ck_assert_int_eq(in->records->nelts, 0);
    ck_assert_int_eq(in->failed_count, 0);
    ck_assert_ptr_nonnull(entry(in, 0)->event_id);
    /* the ARN of a bus of the same name in another account, region or
     * partition is another bus: accepted and dropped, as an unknown one */
    {
        static const char *const elsewhere[] = {
            "arn:aws:events:eu-west-3:123456789012:event-bus/orders",
            "arn:aws:events:eu-west-1:999999999999:event-bus/orders",
            "arn:aws-cn:events:eu-west-1:123456789012:event-bus/orders",
            "arn:aws:events:eu-west-1:123456789012:event-bus/orders-not",
        };
        size_t i;

        for (i = 0; i < sizeof(elsewhere) / sizeof(elsewhere[0]); i++) {
            in = put(apr_psprintf(pool,
                                  "{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"d\","
                                  "\"Detail\":\"{}\",\"EventBusName\":\"%s\"}]}",
                                  elsewhere[i]));
            ck_assert_msg(in->status == 200, "%s: %s", elsewhere[i], in->error_message);
            ck_assert_msg(in->records->nelts == 0, "%s was routed", elsewhere[i]);
            ck_assert_int_eq(in->failed_count, 0);
            ck_assert_ptr_nonnull(entry(in, 0)->event_id);
        }
    }
}
END_TEST

START_TEST(rules_indexed_by_source)
{
    const apr_array_header_t *c;

    add_rule("a1", "default", "{\"source\":[\"a\"]}", 1, 1);
    add_rule("any", "default", "{\"detail-type\":[\"x\"]}", 1, 1);
    add_rule("ab", "default", "{\"source\":[\"a\",\"b\",\"a\"]}", 1, 1);
    add_rule("prefix", "default", "{\"source\":[{\"prefix\":\"a\"}]}", 1, 1);
    add_rule("off", "default", "{\"source\":[\"a\"]}", 0, 1);
    add_rule("bus2", "other", "{\"source\":[\"a\"]}", 1, 1);
    add_rule("or", "default", "{\"$or\":[{\"source\":[\"z\"]},{\"id\":[\"1\"]}]}", 1, 1);
    ad_conf_index_targets(conf);
    ad_conf_index_rules(conf, pool);
    c = ad_conf_candidate_rules(pool, conf, "default", "a");
    ck_assert_int_eq(c->nelts, 5);
    ck_assert_str_eq(APR_ARRAY_IDX(c, 0, ad_rule_t *)->name, "a1");
    ck_assert_str_eq(APR_ARRAY_IDX(c, 1, ad_rule_t *)->name, "any");
    ck_assert_str_eq(APR_ARRAY_IDX(c, 2, ad_rule_t *)->name, "ab");
    ck_assert_str_eq(APR_ARRAY_IDX(c, 3, ad_rule_t *)->name, "prefix");
    ck_assert_str_eq(APR_ARRAY_IDX(c, 4, ad_rule_t *)->name, "or");
    c = ad_conf_candidate_rules(pool, conf, "default", "zzz");
    ck_assert_int_eq(c->nelts, 3); /* any, prefix, or */
    c = ad_conf_candidate_rules(pool, conf, "other", "a");
    ck_assert_int_eq(c->nelts, 1);
    ck_assert_int_eq(ad_conf_candidate_rules(pool, conf, "nobus", "a")->nelts, 0);
    ck_assert(ad_conf_source_may_match(conf, "default", "zzz"));
    ck_assert(ad_conf_source_may_match(conf, "other", "a"));
    ck_assert(!ad_conf_source_may_match(conf, "other", "zzz"));
    ck_assert(!ad_conf_source_may_match(conf, "nobus", "a"));
    /* through ingest: a prefix rule still matches what the index skipped */
    ck_assert_int_eq(put("{\"Entries\":[{\"Source\":\"ax\",\"DetailType\":\"d\","
                         "\"Detail\":\"{}\"}]}")
                         ->records->nelts,
                     1);
}
END_TEST

/* A source pattern that is an IP address matches every spelling of it (as
 * event-ruler compiles it), so it cannot be indexed by its text: entries
 * from "010.0.0.1" got an EventId and were never routed. */
START_TEST(address_sources_not_indexed)
{
    ad_ingest_t *in;

    add_rule("v4", "default", "{\"source\":[\"10.0.0.1\"]}", 1, 1);
    add_rule("v6", "default", "{\"source\":[\"::1\"]}", 1, 1);
    in = put("{\"Entries\":[{\"Source\":\"10.0.0.1\",\"DetailType\":\"d\",\"Detail\":\"{}\"},"
             "{\"Source\":\"010.0.0.1\",\"DetailType\":\"d\",\"Detail\":\"{}\"},"
             "{\"Source\":\"10.000.0.1\",\"DetailType\":\"d\",\"Detail\":\"{}\"},"
             "{\"Source\":\"0:0:0:0:0:0:0:1\",\"DetailType\":\"d\",\"Detail\":\"{}\"},"
             "{\"Source\":\"10.0.0.2\",\"DetailType\":\"d\",\"Detail\":\"{}\"}]}");
    ck_assert_int_eq(in->failed_count, 0);
    ck_assert_int_eq(in->records->nelts, 4);
    ck_assert(ad_pattern_value_is_address("010.0.0.1", 9));
    ck_assert(!ad_pattern_value_is_address("app", 3));
}
END_TEST

/* A Time string out of the envelope's range (before 1970, after 9999)
 * fails its entry as a number would; before, year 10000 left the time's
 * buffer unterminated and stack bytes went to the target. */
START_TEST(time_string_range)
{
    static const char *bad[] = {"9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00Z",
                                "1969-12-31T23:59:59Z"};
    char buf[32];
    ad_ingest_t *in;
    int i;

    add_rule("r1", "default", "{\"source\":[\"app\"]}", 1, 1);
    for (i = 0; i < 3; i++) {
        in = put(apr_psprintf(pool,
                              "{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"d\","
                              "\"Detail\":\"{}\",\"Time\":\"%s\"}]}",
                              bad[i]));
        ck_assert_msg(in->failed_count == 1, "%s accepted", bad[i]);
        ck_assert_str_eq(entry(in, 0)->error_code, "InvalidArgument");
        ck_assert_int_eq(in->records->nelts, 0);
    }
    in = put("{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{}\","
             "\"Time\":\"9999-12-31T23:59:59Z\"},{\"Source\":\"app\",\"DetailType\":\"d\","
             "\"Detail\":\"{}\",\"Time\":\"1970-01-01T00:00:00Z\"}]}");
    ck_assert_int_eq(in->failed_count, 0);
    ck_assert_ptr_nonnull(strstr(record(in, 0)->body, "\"time\":\"9999-12-31T23:59:59Z\""));
    ck_assert_ptr_nonnull(strstr(record(in, 1)->body, "\"time\":\"1970-01-01T00:00:00Z\""));
    /* out of range anyway: clamped, always 20 characters */
    memset(buf, 'x', sizeof(buf));
    ad_time_rfc3339(buf, apr_time_from_sec((apr_time_t)253402300800LL + 86400));
    ck_assert_str_eq(buf, "9999-12-31T23:59:59Z");
    ad_time_rfc3339(buf, apr_time_from_sec(-62167219200LL - 1));
    ck_assert_str_eq(buf, "0000-01-01T00:00:00Z");
}
END_TEST

/* Impossible dates and offsets are refused rather than rolled over by
 * timegm ("2024-02-31T23:59:60+25:99" was taken as 2024-03-01T21:21:00Z). */
START_TEST(time_parse_rfc3339_ranges)
{
    static const struct {
        const char *text;
        apr_int64_t secs; /* -1: refused */
    } cases[] = {
        {"2024-02-29T00:00:00Z", 1709164800},
        {"2023-02-29T00:00:00Z", -1},
        {"2024-02-30T00:00:00Z", -1},
        {"1900-02-29T00:00:00Z", -1},
        {"2000-02-29T00:00:00Z", 951782400},
        {"2024-04-31T00:00:00Z", -1},
        {"2024-12-31T23:59:59Z", 1735689599},
        {"2016-12-31T23:59:60Z", 1483228799},
        {"2024-01-01T00:00:61Z", -1},
        {"2016-12-31T12:34:60Z", -1},
        {"2024-01-01T00:00:00+18:00", 1704067200 - 64800},
        {"2024-01-01T00:00:00-18:00", 1704067200 + 64800},
        {"2024-01-01T00:00:00+18:01", -1},
        {"2024-01-01T00:00:00+23:59", -1},
        {"2024-01-01T00:00:00-01:60", -1},
        {"2024-02-31T23:59:60+25:99", -1},
    };
    apr_time_t t;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        apr_status_t rv = ad_time_parse_rfc3339(cases[i].text, &t);
        if (cases[i].secs < 0) {
            ck_assert_msg(rv != APR_SUCCESS, "%s taken", cases[i].text);
        }
        else {
            ck_assert_msg(rv == APR_SUCCESS && apr_time_sec(t) == cases[i].secs, "%s: %lld",
                          cases[i].text, (long long)apr_time_sec(t));
        }
    }
}
END_TEST

/* ad_time_rfc3339 computes the date itself: it must say what gmtime_r
 * says for every second of years 0000-9999 (leap days, centuries, the
 * 400-year rule, before 1970). */
START_TEST(time_rfc3339_as_gmtime)
{
    static const long long fixed[] = {-62167219200LL,
                                      -62135596800LL,
                                      -2208988800LL,
                                      -86401,
                                      -86400,
                                      -1,
                                      0,
                                      59,
                                      86399,
                                      951782400,
                                      951868799,
                                      951868800,
                                      4107542400LL,
                                      4107628800LL,
                                      253402300799LL,
                                      1709164800,
                                      1709251199,
                                      1709251200};
    unsigned long long r = 88172645463325252ULL;
    char buf[32], want[64];
    int i;

    for (i = 0; i < (int)(sizeof(fixed) / sizeof(fixed[0])) + 200000; i++) {
        long long secs;
        time_t tt;
        struct tm tm;
        if (i < (int)(sizeof(fixed) / sizeof(fixed[0]))) {
            secs = fixed[i];
        }
        else {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17; /* xorshift64 */
            secs = -62167219200LL + (long long)(r % (253402300799ULL + 62167219200ULL + 1));
        }
        tt = (time_t)secs;
        gmtime_r(&tt, &tm);
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        ad_time_rfc3339(buf, apr_time_from_sec(secs));
        ck_assert_msg(!strcmp(buf, want), "%lld: %s, gmtime_r %s", secs, buf, want);
    }
}
END_TEST

/* 5,000 entries each with a bad member (105 KB) took 10.5 s and 2.6 GB:
 * every entry was checked and the message grew by a copy of itself per
 * violation. Now the first 100 are listed, the rest counted. */
START_TEST(many_violations_bounded)
{
    char *body = apr_palloc(pool, 5000 * 24 + 32), *q = body;
    ad_ingest_t *in;
    int i;

    q += sprintf(q, "{\"Entries\":[");
    for (i = 0; i < 5000; i++) {
        q += sprintf(q, "%s{\"EventBusName\":\"!\"}", i ? "," : "");
    }
    strcpy(q, "]}");
    in = put(body);
    ck_assert_int_eq(in->status, 400);
    ck_assert_str_eq(in->error_type, "ValidationException");
    ck_assert_msg(!strncmp(in->error_message, "1001 validation errors detected: ", 33), "%.80s",
                  in->error_message);
    ck_assert_ptr_nonnull(strstr(in->error_message, "; and 901 more"));
    ck_assert_uint_lt(strlen(in->error_message), 100 * 300);
}
END_TEST

/* "Time": null is absent everywhere, the 256 KB count too (it added 14). */
START_TEST(null_time_not_counted)
{
    size_t len = 262144 - 2 - 1 - 10, i;
    char *detail = apr_palloc(pool, len + 1);
    const char *head = "{\\\"a\\\":\\\"";
    ad_ingest_t *in;

    /* the Detail string {"a":"xx..."} is len bytes once decoded */
    memset(detail, 'x', len);
    detail[len] = '\0';
    for (i = 0; i < 2; i++) {
        in = put(apr_psprintf(pool,
                              "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"d\","
                              "\"Detail\":\"%s%.*s\\\"}\",\"Time\":%s}]}",
                              head, (int)(len - 8), detail,
                              i ? "\"2020-01-01T00:00:00Z\"" : "null"));
        if (i == 0) {
            ck_assert_int_eq(in->status, 200);
            ck_assert_int_eq(in->failed_count, 0);
        }
        else {
            ck_assert(in->status != 200 || in->failed_count == 1);
        }
    }
}
END_TEST

/* A blank path parameter would drop a segment of the path and send the
 * request, with the connection's credentials, to another resource
 * (".../users//orders"); that target's copy is not delivered. */
START_TEST(blank_path_parameter_not_delivered)
{
    ad_rule_t *r = add_rule("r1", "default", "{\"source\":[\"app\"]}", 1, 1);
    ad_target_t *t = APR_ARRAY_IDX(r->targets, 0, ad_target_t *);
    ad_param_t *prm = apr_pcalloc(pool, sizeof(*prm));
    static const char *blank[] = {"", "\\\"\\\"", "\\\"  \\\""};
    ad_ingest_t *in;
    int i;

    t->destination->endpoint = "https://example.com/users/*/orders";
    prm->value = "$.detail.id";
    prm->path = ad_jsonpath_compile(pool, prm->value, NULL);
    APR_ARRAY_PUSH(t->path_params, ad_param_t *) = prm;
    in = put("{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"d\","
             "\"Detail\":\"{\\\"id\\\":\\\"u 1\\\"}\"}]}");
    ck_assert_int_eq(in->records->nelts, 1);
    ck_assert_str_eq(record(in, 0)->url, "https://example.com/users/u%201/orders");
    for (i = 0; i < 3; i++) {
        in = put(apr_psprintf(pool,
                              "{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"d\","
                              "\"Detail\":\"{%s%s}\"}]}",
                              *blank[i] ? "\\\"id\\\":" : "", blank[i]));
        ck_assert_int_eq(in->failed_count, 0);
        ck_assert_msg(in->records->nelts == 0, "blank %d delivered", i);
        ck_assert_int_eq(in->inputs_dropped, 1);
    }
}
END_TEST

START_TEST(plain_json_single_entry)
{
    const char *body = "{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"{}\"}";
    ad_ingest_t *in =
        ad_ingest_put_events(pool, conf, AD_INGEST_PLAIN_JSON, body, strlen(body), apr_time_now());
    ck_assert_int_eq(in->status, 200);
    ck_assert_int_eq(in->entries->nelts, 1);
    in = ad_ingest_put_events(pool, conf, AD_INGEST_AWSJSON, body, strlen(body), apr_time_now());
    ck_assert_int_eq(in->status, 400);
}
END_TEST

START_TEST(response_shape)
{
    ad_ingest_t *in = put("{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"{}\"},"
                          "{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"x\"}]}");
    apr_size_t len;
    char *out = ad_ingest_response(pool, in, &len);
    char *expect = apr_psprintf(
        pool,
        "{\"FailedEntryCount\":1,\"Entries\":[{\"EventId\":\"%s\"},"
        "{\"ErrorCode\":\"MalformedDetail\",\"ErrorMessage\":\"Detail is malformed.\"}]}",
        entry(in, 0)->event_id);
    ck_assert_str_eq(out, expect);
    ck_assert_uint_eq(len, strlen(expect));
    ad_ingest_fail_all(in, "InternalFailure", "Internal Service Failure");
    ck_assert_int_eq(in->failed_count, 2);
    ck_assert_str_eq(entry(in, 0)->error_code, "InternalFailure");
}
END_TEST

/* The response as the jansson tree it used to be built from would dump. */
static char *response_via_tree(const ad_ingest_t *in)
{
    json_t *root = json_object(), *arr = json_array();
    char *out;
    int i;

    json_object_set_new(root, "FailedEntryCount", json_integer(in->failed_count));
    for (i = 0; i < in->entries->nelts; i++) {
        const ad_ingest_entry_t *e = &APR_ARRAY_IDX(in->entries, i, ad_ingest_entry_t);
        json_t *o = json_object();
        if (e->event_id) {
            json_object_set_new(o, "EventId", json_string(e->event_id));
        }
        else {
            json_object_set_new(o, "ErrorCode", json_string(e->error_code));
            json_object_set_new(o, "ErrorMessage", json_string(e->error_message));
        }
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "Entries", arr);
    out = ad_json_dump(pool, root, NULL);
    json_decref(root);
    return out;
}

START_TEST(response_same_as_its_json_tree)
{
    static const char *const messages[] = {"",
                                           "plain",
                                           "quote \" and \\ back",
                                           "ctl \x01\x1f\n\t",
                                           "utf-8 \xc3\xa9 \xf0\x9f\x98\x80",
                                           "\x7f del"};
    ad_ingest_t *in = put("{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"{}\"},"
                          "{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"x\"}]}");
    apr_size_t len, i;
    char *out;

    for (i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
        ad_ingest_entry_t *e = &APR_ARRAY_IDX(in->entries, 1, ad_ingest_entry_t);
        e->error_code = messages[(i + 1) % (sizeof(messages) / sizeof(messages[0]))];
        e->error_message = messages[i];
        out = ad_ingest_response(pool, in, &len);
        ck_assert_str_eq(out, response_via_tree(in));
        ck_assert_uint_eq(len, strlen(out));
    }
    in->entries->nelts = 0;
    in->failed_count = 0;
    out = ad_ingest_response(pool, in, &len);
    ck_assert_str_eq(out, "{\"FailedEntryCount\":0,\"Entries\":[]}");
    ck_assert_str_eq(out, response_via_tree(in));
}
END_TEST

/* A PutEvents entry whose Detail (a JSON string) is the object {"x": v}
 * with v nested depth arrays deep around leaves 1s, and one plain entry. */
static const char *deep_entries(int depth, int leaves)
{
    char *d = apr_palloc(pool, (size_t)(2 * depth + 2 * leaves + 32)), *q = d;
    int i;

    q += sprintf(q, "{\\\"x\\\":");
    for (i = 0; i < depth; i++) {
        *q++ = '[';
    }
    for (i = 0; i < leaves; i++) {
        q += sprintf(q, i ? ",1" : "1");
    }
    for (i = 0; i < depth; i++) {
        *q++ = ']';
    }
    strcpy(q, "}");
    return apr_psprintf(pool,
                        "{\"Entries\":[{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"%s\"},"
                        "{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{}\"}]}",
                        d);
}

START_TEST(event_the_rules_cannot_see_fails_its_entry)
{
    ad_ingest_t *in;

    add_rule("x", "default", "{\"source\":[\"app\"],\"detail\":{\"x\":[1]}}", 1, 1);
    add_rule("any", "default", "{\"source\":[\"app\"]}", 1, 1);
    /* values in arrays nested in arrays past the matcher's limit */
    in = put(deep_entries(1500, 1000));
    ck_assert_int_eq(in->status, 200);
    ck_assert_int_eq(in->failed_count, 1);
    ck_assert_ptr_null(entry(in, 0)->event_id);
    ck_assert_str_eq(entry(in, 0)->error_code, "InvalidArgument");
    ck_assert_ptr_nonnull(entry(in, 1)->event_id);
    ck_assert_int_eq(in->records->nelts, 1); /* the second entry's, for "any" */
    ck_assert_int_eq(APR_ARRAY_IDX(in->records, 0, ad_blob_t).entry, 1);
    /* a Detail that json_loadb takes alone, but not inside the envelope */
    in = put(deep_entries(2046, 1));
    ck_assert_int_eq(in->failed_count, 1);
    ck_assert_ptr_null(entry(in, 0)->event_id);
    ck_assert_str_eq(entry(in, 0)->error_code, "MalformedDetail");
    ck_assert_str_eq(entry(in, 0)->error_message, "Detail is nested too deeply to be matched.");
    ck_assert_int_eq(in->records->nelts, 1);
    in = put(deep_entries(2047, 1)); /* too deep for json_loadb alone */
    ck_assert_str_eq(entry(in, 0)->error_message, "Detail is malformed.");
    /* the same shapes within the limits are matched */
    in = put(deep_entries(1000, 1000));
    ck_assert_int_eq(in->failed_count, 0);
    ck_assert_int_eq(in->records->nelts, 3);
}
END_TEST

/* Rules that name no field of the detail are matched without it, and the
 * entries accepted stay the same: a Detail json_loadb takes alone but too
 * deep for the matcher inside the envelope is refused whatever the rules
 * name, one level less is routed. */
START_TEST(rules_without_detail_fields_accept_what_the_whole_walk_accepts)
{
    ad_ingest_t *in;

    add_rule("any", "default", "{\"source\":[\"app\"],\"detail-type\":[\"d\"]}", 1, 1);
    in = put(deep_entries(2046, 1));
    ck_assert_int_eq(in->failed_count, 1);
    ck_assert_str_eq(entry(in, 0)->error_message, "Detail is nested too deeply to be matched.");
    ck_assert_int_eq(in->records->nelts, 1);
    ck_assert_int_eq(APR_ARRAY_IDX(in->records, 0, ad_blob_t).entry, 1);
    in = put(deep_entries(2045, 1));
    ck_assert_int_eq(in->failed_count, 0);
    ck_assert_int_eq(in->records->nelts, 2);
    in = put(deep_entries(1500, 1000)); /* values in arrays no rule watches */
    ck_assert_int_eq(in->failed_count, 0);
    ck_assert_int_eq(in->records->nelts, 2);
}
END_TEST

START_TEST(error_body_keeps_a_message_that_is_not_utf8)
{
    apr_size_t len;
    char *out = ad_awsjson_error_body(pool, "IncompleteSignatureException",
                                      "bad date \xff\xc3 in \xc3\xa9t\xc3", &len);

    ck_assert_str_eq(out, "{\"__type\":\"IncompleteSignatureException\",\"message\":"
                          "\"bad date \xef\xbf\xbd\xef\xbf\xbd in \xc3\xa9t\xef\xbf\xbd\"}");
    ck_assert_uint_eq(len, strlen(out));
    out = ad_awsjson_error_body(pool, "T", "plain", &len);
    ck_assert_str_eq(out, "{\"__type\":\"T\",\"message\":\"plain\"}");
}
END_TEST

START_TEST(store_item_limit_fails_whole_entry)
{
    ad_ingest_t *in;

    add_rule("two", "default", "{\"source\":[\"app\"]}", 1, 2);
    in = put(apr_psprintf(
        pool,
        "{\"Entries\":["
        "{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{\\\"big\\\":\\\"%0800d\\\"}\"},"
        "{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{}\"}]}",
        0));
    ck_assert_int_eq(in->records->nelts, 4);
    ck_assert_int_eq(ad_ingest_limit_records(in, 700, "sdbm"), 1);
    ck_assert_int_eq(in->failed_count, 1);
    ck_assert_str_eq(entry(in, 0)->error_code, "InternalFailure");
    ck_assert_ptr_nonnull(strstr(entry(in, 0)->error_message, "sdbm limit of 700 bytes"));
    ck_assert_ptr_nonnull(entry(in, 1)->event_id);
    ck_assert_int_eq(in->records->nelts, 2);
    ck_assert_int_eq(APR_ARRAY_IDX(in->records, 0, ad_blob_t).entry, 1);
    ck_assert_int_eq(ad_ingest_limit_records(in, 0, "gdbm"), 0);
}
END_TEST

/* Records past one STORE message go in several, an entry's never divided;
 * an entry that cannot fit alone fails, saying why. */
START_TEST(store_groups_keep_entries_whole)
{
    ad_ingest_t *in;
    apr_array_header_t *g;
    apr_size_t one;
    int i;

    add_rule("two", "default", "{\"source\":[\"app\"]}", 1, 2);
    in = put(apr_psprintf(
        pool,
        "{\"Entries\":["
        "{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{\\\"a\\\":1}\"},"
        "{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{\\\"a\\\":2}\"},"
        "{\"Source\":\"other\",\"DetailType\":\"d\",\"Detail\":\"{}\"},"
        "{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{\\\"big\\\":\\\"%02000d\\\"}\"},"
        "{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{\\\"a\\\":3}\"}]}",
        0));
    ck_assert_int_eq(in->records->nelts, 8);
    one = 8 + APR_ARRAY_IDX(in->records, 0, ad_blob_t).len +
          APR_ARRAY_IDX(in->records, 1, ad_blob_t).len;
    /* everything fits: the records themselves, one message */
    g = ad_ingest_store_groups(in, 1 << 20);
    ck_assert_int_eq(g->nelts, 1);
    ck_assert_ptr_eq(APR_ARRAY_IDX(g, 0, apr_array_header_t *), in->records);
    /* room for two small entries a message; the big one fits none */
    g = ad_ingest_store_groups(in, 4 + 2 * one + 2);
    ck_assert_int_eq(g->nelts, 2);
    ck_assert_int_eq(APR_ARRAY_IDX(g, 0, apr_array_header_t *)->nelts, 4);
    ck_assert_int_eq(APR_ARRAY_IDX(g, 1, apr_array_header_t *)->nelts, 2);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(
            APR_ARRAY_IDX(APR_ARRAY_IDX(g, 0, apr_array_header_t *), i, ad_blob_t).entry, i / 2);
    }
    ck_assert_int_eq(APR_ARRAY_IDX(APR_ARRAY_IDX(g, 1, apr_array_header_t *), 0, ad_blob_t).entry,
                     4);
    ck_assert_int_eq(in->failed_count, 1);
    ck_assert_ptr_null(entry(in, 3)->event_id);
    ck_assert_str_eq(entry(in, 3)->error_code, "InternalFailure");
    ck_assert_ptr_nonnull(strstr(entry(in, 3)->error_message, "2 target copies need"));
    ck_assert_ptr_nonnull(entry(in, 2)->event_id); /* matched nothing: nothing to store */
    /* a group that cannot be stored fails its own entries only */
    ad_ingest_fail_records(in, APR_ARRAY_IDX(g, 1, apr_array_header_t *), "InternalFailure", "x");
    ck_assert_int_eq(in->failed_count, 2);
    ck_assert_ptr_null(entry(in, 4)->event_id);
    ck_assert_ptr_nonnull(entry(in, 0)->event_id);
    ck_assert_ptr_nonnull(entry(in, 1)->event_id);
}
END_TEST

/* Reals as Java's Double.toString writes them (EventBridge's Jackson):
 * the shortest digits that read back, plain from 1e-3 to below 1e7 with at
 * least one fractional digit, d.dddEn outside. %g wrote 2500.0 as 2.5e+03. */
START_TEST(json_numbers_shortest)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {1.0, "1.0"},
        {10.0, "10.0"},
        {20.0, "20.0"},
        {100.0, "100.0"},
        {2500.0, "2500.0"},
        {123456.0, "123456.0"},
        {123456.789, "123456.789"},
        {9999999.0, "9999999.0"},
        {1e7, "1.0E7"},
        {12345678.9, "1.23456789E7"},
        {1e21, "1.0E21"},
        {1e300, "1.0E300"},
        {0.001, "0.001"},
        {0.00123, "0.00123"},
        {0.0001, "1.0E-4"},
        {0.00001, "1.0E-5"},
        {-2.5e-7, "-2.5E-7"},
        {-0.0, "-0.0"},
        {0.0, "0.0"},
        {-1234.5, "-1234.5"},
        {5e-324, "4.9E-324"},
        {1.7976931348623157e308, "1.7976931348623157E308"},
        {0.30000000000000004, "0.30000000000000004"},
    };
    char buf[AD_JSON_REAL_MAX];
    json_t *v;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_uint_eq(ad_json_real_text(cases[i].v, buf), strlen(cases[i].text));
        ck_assert_str_eq(buf, cases[i].text);
        ck_assert_msg(strtod(buf, NULL) == cases[i].v, "%s reads back otherwise", buf);
    }
    v = json_pack("[f,f,I]", 0.1, 2500.0, (json_int_t)-9223372036854775807LL);
    ck_assert_str_eq(ad_json_dump(pool, v, NULL), "[0.1,2500.0,-9223372036854775807]");
    json_decref(v);
}
END_TEST

/* The delivered body is the envelope tree's ad_json_dump whatever the Detail
 * looks like (ingest writes it from the Detail text without a tree unless
 * only jansson can tell, e.g. a repeated key). */
START_TEST(body_is_the_trees_dump)
{
    static const char *const details[] = {
        "{}",
        " { \"a\" : 1 } ",
        "{\"r\":[0.1,1.0,1e5,-0.0,-0,2.50e-3,1E+2,123456.789,4.9e-324]}",
        "{\"x\":-122.42916360922355,\"y\":37.729900216217324,\"z\":100.0,\"w\":1.50}",
        "{\"s\":\"\\u00e9\\ud83d\\ude00\\u0001\\u001f\\/\\\"\\\\\\t\\u007f\"}",
        "{\"a\\u0062\":{\"n\":[true,false,null,[],{}]},\"i\":9223372036854775807}",
        "{\"dup\":1,\"b\":2,\"dup\":{\"c\":3}}",
        "{\"a\":1,\"\\u0061\":2}",
        "{\"deep\":[[[[[[[[[[1]]]]]]]]]],\"big\":-9223372036854775808}"};
    json_t *body = json_object(), *entries = json_array();
    char *text;
    size_t i;
    ad_ingest_t *in;

    add_rule("r1", "default", "{\"source\":[\"app\"]}", 1, 1);
    for (i = 0; i < sizeof(details) / sizeof(details[0]); i++) {
        json_array_append_new(entries, json_pack("{s:s,s:s,s:s,s:i}", "Source", "app", "DetailType",
                                                 "t", "Detail", details[i], "Time", 1600000000));
    }
    json_object_set_new(body, "Entries", entries);
    conf->max_entries = 100;
    text = ad_json_dump(pool, body, NULL);
    json_decref(body);
    in = put(text);
    ck_assert_int_eq(in->failed_count, 0);
    ck_assert_int_eq(in->records->nelts, (int)(sizeof(details) / sizeof(details[0])));
    for (i = 0; i < sizeof(details) / sizeof(details[0]); i++) {
        json_t *d = json_loads(details[i], 0, NULL);
        const char *want = apr_psprintf(
            pool,
            "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"t\",\"source\":\"app\","
            "\"account\":\"123456789012\",\"time\":\"2020-09-13T12:26:40Z\","
            "\"region\":\"eu-west-1\",\"resources\":[],\"detail\":%s}",
            entry(in, (int)i)->event_id, ad_json_dump(pool, d, NULL));
        ck_assert_ptr_nonnull(d);
        ck_assert_str_eq(record(in, (int)i)->body, want);
        json_decref(d);
    }
    /* control characters as Jackson (AWS) and jansson write them */
    ck_assert_ptr_nonnull(strstr(record(in, 4)->body, "\\u0001\\u001F/"));
}
END_TEST

START_TEST(uuid_v4)
{
    char id[AD_UUID_LEN + 1];
    ad_uuid4(id);
    ck_assert_uint_eq(strlen(id), 36);
    ck_assert_int_eq(id[14], '4');
    ck_assert(strchr("89ab", id[19]) != NULL);
    {
        unsigned char b[16];
        int i;
        for (i = 0; i < 16; i++) {
            b[i] = (unsigned char)(i | 0xf0);
        }
        ad_uuid4_of(id, b);
        ck_assert_str_eq(id, "f0f1f2f3-f4f5-46f7-b8f9-fafbfcfdfeff");
    }
}
END_TEST

/* The next id of a forked child and of its parent. */
static void ids_after_fork(char *parent, char *child)
{
    int fds[2], status;
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        ad_uuid4(child);
        _exit(write(fds[1], child, AD_UUID_LEN) == AD_UUID_LEN ? 0 : 1);
    }
    close(fds[1]); /* a child that dies unheard ends the read */
    ad_uuid4(parent);
    ck_assert_int_eq(read(fds[0], child, AD_UUID_LEN), AD_UUID_LEN);
    child[AD_UUID_LEN] = '\0';
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Ids come from a per-thread block of random bytes: more than a block's
 * worth must all differ, and a forked child must not hand out the ids its
 * parent has yet to (it would repeat them if it kept the parent's block).
 * Forking after two consecutive ids: the block cannot be used up at both,
 * so one fork at least happens with a block the child could have reused. */
START_TEST(uuids_differ_across_blocks_and_forks)
{
    apr_hash_t *seen = apr_hash_make(pool);
    char id[AD_UUID_LEN + 1], child[AD_UUID_LEN + 1];
    int i;

    for (i = 0; i < 100; i++) {
        ad_uuid4(id);
        ck_assert_ptr_null(apr_hash_get(seen, id, APR_HASH_KEY_STRING));
        apr_hash_set(seen, apr_pstrdup(pool, id), APR_HASH_KEY_STRING, "");
    }
    for (i = 0; i < 2; i++) {
        ids_after_fork(id, child);
        ck_assert_str_ne(id, child);
    }
}
END_TEST

START_TEST(event_ids_of_one_request_differ)
{
    const char *one = "{\"Source\":\"s\",\"DetailType\":\"d\",\"Detail\":\"{}\"}";
    apr_hash_t *seen = apr_hash_make(pool);
    ad_ingest_t *in;
    int round, i;

    for (round = 0; round < 3; round++) {
        in = put(apr_pstrcat(pool, "{\"Entries\":[", one, ",", one, ",", one, ",", one, ",", one,
                             ",", one, ",", one, ",", one, ",", one, ",", one, "]}", NULL));
        ck_assert_int_eq(in->entries->nelts, 10);
        for (i = 0; i < 10; i++) {
            const char *id = entry(in, i)->event_id;
            ck_assert_uint_eq(strlen(id), AD_UUID_LEN);
            ck_assert_int_eq(id[14], '4');
            ck_assert_ptr_null(apr_hash_get(seen, id, APR_HASH_KEY_STRING));
            apr_hash_set(seen, id, APR_HASH_KEY_STRING, id);
        }
    }
}
END_TEST

START_TEST(url_origin_as_connections_see_it)
{
    static const char *const cases[][2] = {
        {"https://API.Example.com/v1/*/x?a=1", "https://api.example.com"},
        {"https://api.example.com:443/v1", "https://api.example.com"},
        {"http://api.example.com:80", "http://api.example.com"},
        {"http://api.example.com:443/", "http://api.example.com:443"},
        {"https://api.example.com.:8443/", "https://api.example.com:8443"},
        {"https://user:pw@api.example.com/#f", "https://api.example.com"},
        {"HTTP://[::1]:8080/x", "http://[::1]:8080"},
        {"http://[::1]/x", "http://[::1]"},
        {"https://h?q=a:b@c", "https://h"},
        {"https://h:0443/x", "https://h"},
        {"http://h:08080", "http://h:8080"},
        {"https://h:/x", "https://h"},
        {"https://h:99999/", "https://h:99999"},
        {"https://h:8a/", "https://h:8a"},
        {"no-scheme/path", "no-scheme/path"},
    };
    char buf[AD_URL_ORIGIN_MAX], *longurl;
    apr_size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_uint_eq(ad_url_origin(cases[i][0], buf), strlen(cases[i][1]));
        ck_assert_str_eq(buf, cases[i][1]);
    }
    longurl = apr_pstrcat(pool, "https://", apr_psprintf(pool, "%0600d", 7), "/x", NULL);
    ck_assert_uint_eq(ad_url_origin(longurl, buf), AD_URL_ORIGIN_MAX - 1);
    ck_assert_uint_eq(strlen(buf), AD_URL_ORIGIN_MAX - 1);
}
END_TEST

/* Path and query values keep only RFC 3986's unreserved ASCII; every other
 * byte is percent-encoded whatever the locale (a single-byte locale made
 * isalnum() pass bytes over 0x7F through). */
START_TEST(url_encode_ascii_only)
{
    char in[256], want[3 * 256 + 1], *w = want;
    int c;

    for (c = 1; c < 256; c++) {
        in[c - 1] = (char)c;
        if (ad_url_unreserved((unsigned char)c)) {
            *w++ = (char)c;
        }
        else {
            w += sprintf(w, "%%%02X", c);
        }
        ck_assert_int_eq(ad_url_unreserved((unsigned char)c),
                         (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
                             (c >= 'a' && c <= 'z') || strchr("-._~", c) != NULL);
    }
    in[255] = '\0';
    ck_assert_str_eq(ad_url_encode(pool, in), want);
}
END_TEST

START_TEST(url_dot_segments)
{
    static const char *const dotted[] = {
        "https://h/v1/../notify",
        "https://h/v1/./x",
        "https://h/v1/..",
        "https://h/..?a=b",
        "https://h/v1/%2E%2e/x",
        "https://h/.%2e/x",
        "https://h/%2e#f",
        "http://[::1]:8/a/../b",
        /* event values "../admin", "..\\admin", "a/..", "./x" once encoded */
        "https://h/u/..%2Fadmin/o",
        "https://h/u/..%5Cadmin",
        "https://h/u/a%2f..",
        "https://h/u/.%5cx",
        "https://h/u/x%2F%2e%2E%2Fy",
    };
    static const char *const plain[] = {
        "https://h/v1/customers/x/notify",
        "https://h/v1/.../x",
        "https://h/v1/a.b/..c",
        "https://h/v1/%2e%2e%2e",
        "https://h/p?x=../y",
        "https://h/p#../y",
        "https://h",
        "https://h.example.com:8443/",
        "https://h//x",
        "https://h/u/a%2Fb%5Cc",
        "https://h/u/...%2F...",
        "https://h/u/%2F",
        "https://h/u/%2",
        "https://h/u/..a%2Fb..",
        "https://h/u/%2F%2F",
    };
    apr_size_t i;

    for (i = 0; i < sizeof(dotted) / sizeof(dotted[0]); i++) {
        ck_assert_msg(ad_url_has_dot_segment(dotted[i]), "%s", dotted[i]);
    }
    for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        ck_assert_msg(!ad_url_has_dot_segment(plain[i]), "%s", plain[i]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ingest");
    TCase *tc = tcase_create("put_events");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, envelope_as_aws_builds_it);
    tcase_add_test(tc, time_forms);
    tcase_add_test(tc, time_string_range);
    tcase_add_test(tc, address_sources_not_indexed);
    tcase_add_test(tc, many_violations_bounded);
    tcase_add_test(tc, time_rfc3339_as_gmtime);
    tcase_add_test(tc, time_parse_rfc3339_ranges);
    tcase_add_test(tc, rules_without_detail_fields_accept_what_the_whole_walk_accepts);
    tcase_add_test(tc, null_time_not_counted);
    tcase_add_test(tc, blank_path_parameter_not_delivered);
    tcase_add_test(tc, per_entry_errors);
    tcase_add_test(tc, whole_request_errors);
    tcase_add_test(tc, model_constraints);
    tcase_add_test(tc, routing);
    tcase_add_test(tc, rules_indexed_by_source);
    tcase_add_test(tc, plain_json_single_entry);
    tcase_add_test(tc, response_shape);
    tcase_add_test(tc, error_body_keeps_a_message_that_is_not_utf8);
    tcase_add_test(tc, event_the_rules_cannot_see_fails_its_entry);
    tcase_add_test(tc, response_same_as_its_json_tree);
    tcase_add_test(tc, store_item_limit_fails_whole_entry);
    tcase_add_test(tc, json_numbers_shortest);
    tcase_add_test(tc, uuid_v4);
    tcase_add_test(tc, uuids_differ_across_blocks_and_forks);
    tcase_add_test(tc, event_ids_of_one_request_differ);
    tcase_add_test(tc, url_origin_as_connections_see_it);
    tcase_add_test(tc, url_dot_segments);
    tcase_add_test(tc, url_encode_ascii_only);
    tcase_add_test(tc, body_is_the_trees_dump);
    tcase_add_test(tc, store_groups_keep_entries_whole);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
