/* PutEvents: parse and validate the request, build EventBridge envelopes,
 * match rules and produce one delivery record per matched target, and write
 * the response. Pure: the handler feeds it a body and sends what it returns. */
#ifndef AD_INGEST_H
#define AD_INGEST_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <jansson.h>

#include "ad_conf.h"

typedef struct ad_ingest_entry_t {
    const char *event_id; /* NULL when the entry failed */
    const char *error_code;
    const char *error_message;
} ad_ingest_entry_t;

typedef struct ad_blob_t {
    char *data;
    apr_size_t len;
    int entry; /* index of the entry it came from */
} ad_blob_t;

typedef struct ad_ingest_t {
    int status;             /* 200, or the whole-request error status */
    const char *error_type; /* whole-request error: AWS __type */
    const char *error_message;
    apr_array_header_t *entries; /* ad_ingest_entry_t, request order */
    apr_array_header_t *records; /* ad_blob_t: encoded ad_record_t */
    int failed_count;
    apr_array_header_t *matched;       /* int: ad_rule_t.index of every match */
    apr_array_header_t *matched_entry; /* int: the entry of each match, in order */
    int unmatched;                     /* accepted entries that matched no rule */
    int inputs_dropped;                /* matched targets whose input gave nothing to deliver */
} ad_ingest_t;

/* How the body came: AWS JSON 1.1 wants {"Entries": [...]}; plain JSON also
 * takes one entry object. */
typedef enum { AD_INGEST_AWSJSON, AD_INGEST_PLAIN_JSON } ad_ingest_form_t;

ad_ingest_t *ad_ingest_put_events(apr_pool_t *p, const ad_conf_t *c, ad_ingest_form_t form,
                                  const char *body, apr_size_t len, apr_time_t now);

/* One delivery record per target of rule for an event (body: the envelope
 * as it is delivered), appended to blobs (ad_blob_t, .entry = entry).
 * Returns how many targets get none: their input transformation gave
 * nothing to deliver (EventBridge then delivers nothing either). */
int ad_ingest_rule_records(apr_pool_t *p, const ad_conf_t *c, const ad_rule_t *rule,
                           const char *event_id, const json_t *ev, const char *body,
                           apr_size_t body_len, apr_time_t now, int entry,
                           apr_array_header_t *blobs);

/* The event EventBridge sends for a scheduled rule firing at fire_time:
 * source aws.events, detail-type "Scheduled Event", resources [rule ARN],
 * detail {}. Sets *id (allocated in p) and returns the envelope text. */
char *ad_ingest_scheduled_event(apr_pool_t *p, const ad_conf_t *c, const ad_rule_t *rule,
                                apr_time_t fire_time, const char **id, apr_size_t *len,
                                json_t **event);

/* The 200 response: {"FailedEntryCount": n, "Entries": [...]}. */
char *ad_ingest_response(apr_pool_t *p, const ad_ingest_t *in, apr_size_t *len);

/* Mark every entry that got an EventId as failed with InternalFailure (the
 * records could not all be stored); used for per-entry failure reporting. */
void ad_ingest_fail_all(ad_ingest_t *in, const char *code, const char *msg);

/* Fail every entry with a record larger than max_item bytes (a store's
 * per-item limit, e.g. sdbm's) and drop all of that entry's records, so
 * nothing of it is stored and nothing is truncated. Returns how many entries
 * failed. */
int ad_ingest_limit_records(ad_ingest_t *in, apr_size_t max_item, const char *store_kind);

/* in->records in groups (arrays of ad_blob_t, in order) that each fit one
 * STORE message of at most max_payload bytes as ad_wire_blobs_size counts
 * them (4 bytes, then 4 more per record), an entry's records never divided.
 * An entry whose records alone do not fit (a large event matched by many
 * targets) fails with InternalFailure saying why, and is left out. */
apr_array_header_t *ad_ingest_store_groups(ad_ingest_t *in, apr_size_t max_payload);

/* Every entry with a record in blobs that still has an EventId fails with
 * code and msg. */
void ad_ingest_fail_records(ad_ingest_t *in, const apr_array_header_t *blobs, const char *code,
                            const char *msg);

/* AWS JSON error body {"__type": type, "message": msg}. */
char *ad_awsjson_error_body(apr_pool_t *p, const char *type, const char *msg, apr_size_t *len);

#endif
