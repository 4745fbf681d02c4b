/* EventBridge's AWS JSON 1.1 API answered from the configuration (DESIGN 3):
 * TestEventPattern, the read-only List/Describe operations on buses, rules,
 * targets, connections and API destinations, and AWS-shaped refusals for the
 * operations that would change the configuration (httpd.conf owns it).
 * PutEvents is the ingest path's (ad_ingest.h). Secrets are never part of an
 * answer. Pure: APR and jansson only. */
#ifndef AD_AWSJSON_H
#define AD_AWSJSON_H

#include <apr_pools.h>

#include "ad_conf.h"
#include "ad_metrics.h"

#define AD_AWSJSON_TARGET_PREFIX "AWSEvents."
#define AD_AWSJSON_CONTENT_TYPE  "application/x-amz-json-1.1"

/* Run the operation an X-Amz-Target value names ("AWSEvents.ListRules") on
 * the request body (len bytes, need not be NUL-terminated; empty counts as
 * {}). Returns the HTTP status and sets *out and *out_len (allocated in p)
 * to the response body. On an error the body is {"__type", "message"} and
 * *error_type is the code for the x-amzn-ErrorType header; on success
 * *error_type is NULL. Thread-safe on a shared configuration. */
int ad_awsjson_dispatch(apr_pool_t *p, const ad_conf_t *c, const char *target, const char *body,
                        apr_size_t len, char **out, apr_size_t *out_len, const char **error_type);

/* The admin route POST /test-event-pattern: {"Event": ..., "EventPattern":
 * ...} where each is JSON text in a string (as TestEventPattern takes them)
 * or the JSON value itself. Same checks and result as TestEventPattern:
 * 200 {"Result": bool}; errors use the admin shape {"error": <code>,
 * "message": ...} with TestEventPattern's codes and texts, *error_type set. */
int ad_awsjson_test_event_pattern(apr_pool_t *p, const char *body, apr_size_t len, char **out,
                                  apr_size_t *out_len, const char **error_type);

/* Where connection states come from (set once, before children fork). */
void ad_awsjson_set_metrics(const ad_metrics_t *m);

/* ARNs as the API shows them. A target's ARN is its API destination's, or
 * for a plain HTTP target its endpoint URL (as the DLQ's TARGET_ARN). */
const char *ad_awsjson_bus_arn(apr_pool_t *p, const ad_conf_t *c, const char *bus);
const char *ad_awsjson_destination_arn(apr_pool_t *p, const ad_conf_t *c,
                                       const ad_destination_t *d);
const char *ad_awsjson_connection_arn(apr_pool_t *p, const ad_conf_t *c, const ad_connection_t *cn);
const char *ad_awsjson_target_arn(apr_pool_t *p, const ad_conf_t *c, const ad_target_t *t);

#endif
