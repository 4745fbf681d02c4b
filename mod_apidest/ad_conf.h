/* The configuration model shared by the ingest path (children) and apidestd.
 * Filled by mod_apidest_config.c from httpd.conf; pure (no httpd headers) so
 * that the daemon core and the unit tests can use it. Built once in the parent
 * and inherited by every child and by apidestd through fork. */
#ifndef AD_CONF_H
#define AD_CONF_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_hash.h>
#include <apr_time.h>

#include "ad_pattern.h"
#include "ad_match.h"
#include "ad_schedule.h"
#include "ad_transform.h"
#include "ad_jsonpath.h"

#define AD_DEFAULT_ACCOUNT            "000000000000"
#define AD_DEFAULT_REGION             "us-east-1"
#define AD_DEFAULT_BUS                "default"
#define AD_DEFAULT_WORKERS            4
#define AD_DEFAULT_MAX_IN_FLIGHT      1024
#define AD_DEFAULT_MAINT_INTERVAL_SEC 1
#define AD_DEFAULT_BACKOFF_BASE_SEC   1
#define AD_DEFAULT_BACKOFF_CAP_SEC    960 /* full jitter waits cap/2 on average: 185 tries ~24 h */
#define AD_DEFAULT_MAX_ENTRY_SIZE     262144
#define AD_DEFAULT_MAX_REQUEST_SIZE   1048576
#define AD_DEFAULT_MAX_ENTRIES        10
#define AD_DEFAULT_TIMEOUT_SEC        5
#define AD_DEFAULT_RATE_LIMIT         300
#define AD_DEFAULT_DEST_MAX_IN_FLIGHT 64
#define AD_DEFAULT_RETRY_ATTEMPTS     185
#define AD_DEFAULT_MAX_EVENT_AGE_SEC  86400
#define AD_DEFAULT_STORE_MIN_FREE     (16 * 1024 * 1024)

/* A parameter whose value is static or a JSON path into the event. */
typedef struct ad_param_t {
    const char *where; /* "header", "query", "body" (connections) */
    const char *key;
    const char *value;   /* static value (or the path's text) */
    ad_jsonpath_t *path; /* set when value starts with "$." */
    int secret;          /* from env:/file: -- never shown */
} ad_param_t;

typedef enum { AD_AUTH_NONE = 0, AD_AUTH_BASIC, AD_AUTH_API_KEY, AD_AUTH_OAUTH } ad_auth_type_t;

typedef struct ad_connection_t {
    const char *name;
    ad_auth_type_t auth;
    const char *user;           /* BASIC */
    const char *password;       /* secret */
    const char *api_key_name;   /* API_KEY */
    const char *api_key;        /* secret */
    const char *oauth_endpoint; /* OAUTH_CLIENT_CREDENTIALS */
    const char *oauth_method;
    const char *client_id;
    const char *client_secret;             /* secret */
    apr_array_header_t *oauth_params;      /* ad_param_t */
    apr_array_header_t *invocation_params; /* ad_param_t */
    int allow_private;
    int allow_insecure_http;
    int index;
    const char *file;
    int line;
} ad_connection_t;

typedef struct ad_destination_t {
    const char *name;
    const char *connection_name;
    ad_connection_t *connection; /* resolved in check_config */
    int max_in_flight;           /* per destination */
    int allow_insecure_http;
    const char *endpoint; /* http(s) URL, may contain '*' path wildcards */
    const char *method;   /* POST, GET, ... */
    int timeout_sec;
    int allow_private; /* AllowPrivateEndpoint */
    int rate_limit;    /* InvocationRateLimit, per second */
    int index;         /* position in ad_conf_t.destinations */
    const char *file;  /* where it was defined, for later checks */
    int line;
} ad_destination_t;

typedef struct ad_rule_t ad_rule_t;

typedef struct ad_target_t {
    const char *id; /* target id (name of the <ApiDestTarget>) */
    const ad_rule_t *rule;
    int gindex; /* index among all targets of all rules */
    const char *destination_name;
    ad_destination_t *destination; /* resolved in check_config; NULL for a
                                      plain HTTP target */
    const char *endpoint;          /* plain HTTP target (API Gateway semantics) */
    const char *method;
    int timeout_sec;
    int allow_private;
    int retry_attempts;
    int backoff_base_sec, backoff_cap_sec; /* RetryBackoff; 0: ApiDestRetryBackoff's */
    int max_event_age_sec;
    int dead_letter;
    apr_array_header_t *path_params;  /* ad_param_t, one per '*' */
    apr_array_header_t *query_params; /* ad_param_t */
    apr_array_header_t *headers;      /* ad_param_t */
    const char *input;                /* Input */
    const char *input_path;           /* InputPath */
    const char *input_template;       /* InputTransformer(File) */
    apr_array_header_t *paths_map;    /* ad_transform_var_t */
    ad_transform_t *transform;        /* compiled in check_config */
    const char *file;
    int line;
} ad_target_t;

struct ad_rule_t {
    const char *name;
    int index; /* position in ad_conf_t.rules */
    const char *bus;
    const char *pattern_text;  /* as written (for DescribeRule) */
    ad_pattern_t *pattern;     /* compiled once at config time; may be NULL
                                   for a scheduled rule */
    const char *schedule_text; /* ScheduleExpression as written */
    ad_schedule_t *schedule;
    int enabled;
    apr_array_header_t *targets; /* ad_target_t * */
    const char *file;
    int line;
};

typedef struct ad_conf_t {
    const char *store_spec;   /* "dbm:<driver>:<path>" as configured */
    const char *store_driver; /* gdbm | sdbm | db | ... */
    const char *store_path;
    int store_sync;
    apr_off_t store_min_free; /* refuse writes below this much free disk */
    const char *account;
    const char *region;
    int workers;
    int max_in_flight;
    int maint_interval_sec;
    int backoff_base_sec;
    int backoff_cap_sec;
    apr_size_t max_entry_size;
    apr_size_t max_request_size;
    int max_entries;
    const char *journal;             /* ApiDestJournal: file or |program */
    apr_array_header_t *connections; /* ad_connection_t * */
    apr_hash_t *connection_by_name;
    const char *ca_file; /* ApiDestCAFile: extra CAs for TLS */
    const char *ca_pem;  /* its text, read at configuration time */
    apr_size_t ca_pem_len;
    apr_array_header_t *destinations; /* ad_destination_t * */
    apr_hash_t *destination_by_name;
    apr_array_header_t *rules;       /* ad_rule_t * */
    apr_array_header_t *all_targets; /* ad_target_t *, by gindex */
    int ntargets;
    apr_hash_t *rule_by_name;
    apr_hash_t *buses;      /* bus name -> "" (buses named by rules
                                         plus "default") */
    apr_hash_t *rule_index; /* bus -> ad_rule_index_t, see below */
} ad_conf_t;

/* A config with every default set and empty tables. */
ad_conf_t *ad_conf_make(apr_pool_t *p);

/* Rule ARN as EventBridge forms it: default bus rule/<name>, custom bus
 * rule/<bus>/<name>. */
const char *ad_conf_rule_arn(apr_pool_t *p, const ad_conf_t *c, const ad_rule_t *r);

/* Rules of one bus, indexed so an event is matched only against rules that
 * can match it: those whose pattern pins "source" to exact strings are found
 * by the event's source; the others are always tried. Both lists keep the
 * configuration's order. The ingest path matches with `matcher` instead: all
 * the bus's rules against the event's JSON text in one pass (ad_match.h). */
typedef struct ad_rule_index_t {
    apr_hash_t *by_source;         /* source -> apr_array_header_t of ad_rule_t * */
    apr_array_header_t *unindexed; /* ad_rule_t * */
    apr_array_header_t *all;       /* ad_rule_t *, every rule of the bus in config order */
    ad_match_set_t *matcher;       /* all's patterns: match i is all's rule i */
    int names_detail;              /* a pattern names detail or a field in it */
} ad_rule_index_t;

/* Build c->rule_index from enabled rules with patterns (config time). */
void ad_conf_index_rules(ad_conf_t *c, apr_pool_t *p);

/* The name of the bus given by name or ARN. NULL for an ARN of another
 * partition, region or account: a bus that does not exist here (its events
 * are accepted and dropped, as AWS drops those of an unknown bus). */
const char *ad_conf_bus_name(const ad_conf_t *c, const char *given);

/* Whether any rule of bus can match an event with this source: the index's
 * answer without building the list below. */
int ad_conf_source_may_match(const ad_conf_t *c, const char *bus, const char *source);

/* The rules to try for an event on bus with this source, in config order
 * (allocated in p when a merge is needed). */
const apr_array_header_t *ad_conf_candidate_rules(apr_pool_t *p, const ad_conf_t *c,
                                                  const char *bus, const char *source);

/* The index of a bus's rules, NULL when the bus has none. */
const ad_rule_index_t *ad_conf_bus_rules(const ad_conf_t *c, const char *bus);

/* A target with EventBridge's defaults and empty parameter lists. */
ad_target_t *ad_conf_target_make(apr_pool_t *p, const char *id);

/* Number every target (gindex) and link it to its rule; call once the
 * rules are complete. */
void ad_conf_index_targets(ad_conf_t *c);

/* Look a target up by "rule/target"; NULL when the config has no such
 * target any more (e.g. after a restart with a changed config). */
const ad_target_t *ad_conf_find_target(const ad_conf_t *c, const char *rule, const char *target,
                                       const ad_rule_t **rule_out);

#endif
