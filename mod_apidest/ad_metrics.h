/* Counters in shared memory: created by the httpd master for each
 * configuration generation (so every child and apidestd inherit the mapping
 * through fork), written with atomic adds by children (matches) and by
 * apidestd (everything about delivery), read without locks by status pages.
 * They survive apidestd restarts; a graceful or hard restart of httpd, which
 * may change the set of rules and destinations, starts them from zero. */
#ifndef AD_METRICS_H
#define AD_METRICS_H

#include <apr_pools.h>
#include <apr_shm.h>

#include "ad_conf.h"

/* Latency histogram bounds, milliseconds (Prometheus "le" buckets). */
#define AD_HIST_BUCKETS 14
extern const double ad_hist_bounds_ms[AD_HIST_BUCKETS];

typedef struct ad_hist_t {
    apr_uint64_t bucket[AD_HIST_BUCKETS + 1]; /* last: +Inf */
    apr_uint64_t count;
    apr_uint64_t sum_us;
} ad_hist_t;

/* EventBridge's metric names, per rule and target (eventbridge-semantics 9). */
typedef struct ad_target_metrics_t {
    apr_uint64_t invocations;         /* Invocations (final outcomes) */
    apr_uint64_t failed_invocations;  /* FailedInvocations */
    apr_uint64_t sent_to_dlq;         /* InvocationsSentToDLQ */
    apr_uint64_t failed_to_dlq;       /* InvocationsFailedToBeSentToDLQ */
    apr_uint64_t dropped;             /* failed for good with DeadLetter off */
    apr_uint64_t attempts;            /* InvocationAttempts */
    apr_uint64_t successful_attempts; /* SuccessfulInvocationAttempts */
    apr_uint64_t retry_attempts;      /* RetryInvocationAttempts */
    apr_uint64_t throttled;           /* ThrottledRules (delayed by limits) */
    apr_uint64_t queued;              /* gauge: records in the store */
} ad_target_metrics_t;

typedef struct ad_rule_metrics_t {
    apr_uint64_t matched_events; /* MatchedEvents */
    apr_uint64_t triggered;      /* TriggeredRules */
    apr_uint64_t last_fire;      /* scheduled rules: epoch seconds */
    apr_uint64_t next_fire;      /* 0: none (or not yet known) */
} ad_rule_metrics_t;

#define AD_LAST_ERROR_LEN 160

typedef struct ad_dest_metrics_t {
    apr_uint64_t responses_2xx, responses_4xx, responses_5xx, responses_other;
    apr_uint64_t timeouts, connect_errors;
    apr_uint64_t in_flight;           /* gauge */
    apr_uint64_t queued;              /* gauge */
    apr_uint64_t reused, connections; /* keep-alive reuse */
    apr_uint64_t last_error_seq;      /* odd while being written */
    apr_int64_t last_error_time;      /* epoch seconds */
    char last_error[AD_LAST_ERROR_LEN];
} ad_dest_metrics_t;

/* Connection states as EventBridge names them. */
#define AD_CONN_AUTHORIZED   0
#define AD_CONN_AUTHORIZING  1
#define AD_CONN_DEAUTHORIZED 2

typedef struct ad_conn_metrics_t {
    apr_uint64_t state;         /* AD_CONN_* */
    apr_int64_t token_expiry;   /* epoch seconds, 0: no token */
    apr_uint64_t token_fetches; /* token requests made */
    apr_uint64_t token_failures;
    apr_uint64_t deauthorizations;
} ad_conn_metrics_t;

const char *ad_conn_state_name(apr_uint64_t state);

typedef struct ad_daemon_metrics_t {
    apr_int64_t pid;
    apr_int64_t started;   /* epoch seconds */
    apr_int64_t heartbeat; /* epoch seconds, every tick */
    apr_uint64_t restarts; /* apidestd starts in this generation */
    apr_uint64_t pending, dlq, in_flight, store_bytes;
    apr_uint64_t delivered, retried, dead_lettered, dropped, refused_full;
    apr_uint64_t events_accepted, events_failed, put_events_requests;
    apr_uint64_t unmatched_events;
    apr_uint64_t inputs_dropped; /* matched, but the target's input gave nothing */
    ad_hist_t to_first_attempt;  /* IngestiontoInvocationStartLatency */
    ad_hist_t to_success;        /* IngestionToInvocationSuccessLatency */
} ad_daemon_metrics_t;

typedef struct ad_metrics_t {
    ad_daemon_metrics_t *daemon;
    ad_rule_metrics_t *rules;     /* by ad_rule_t.index */
    ad_target_metrics_t *targets; /* by ad_target_t.gindex */
    ad_dest_metrics_t *dests;     /* by ad_destination_t.index */
    ad_conn_metrics_t *conns;     /* by ad_connection_t.index */
    int nrules, ntargets, ndests, nconns;
} ad_metrics_t;

/* Create the segment for this configuration (in the master). */
apr_status_t ad_metrics_create(apr_pool_t *p, const ad_conf_t *c, ad_metrics_t **m);

/* Lock-free updates (atomic across processes). */
void ad_metric_add(apr_uint64_t *counter, apr_int64_t n);
apr_uint64_t ad_metric_get(const apr_uint64_t *counter);
void ad_metric_set(apr_uint64_t *gauge, apr_uint64_t v);
void ad_hist_observe(ad_hist_t *h, apr_interval_time_t us);
void ad_dest_set_error(ad_dest_metrics_t *d, const char *text, apr_time_t when);
/* Copy of last_error consistent with one writer; "" when none. */
void ad_dest_get_error(const ad_dest_metrics_t *d, char *buf, apr_size_t len, apr_int64_t *when);

#endif
