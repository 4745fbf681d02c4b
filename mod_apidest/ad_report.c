#include <string.h>
#include <stdio.h>
#include <stdarg.h>

#include <apr_strings.h>

#include "ad_report.h"
#include "ad_util.h"
#include "ad_auth.h"

#define G(x) ((json_int_t)ad_metric_get(&(x)))

static json_t *time_or_null(apr_uint64_t epoch)
{
    char buf[32];

    if (!epoch) {
        return json_null();
    }
    ad_time_rfc3339(buf, apr_time_from_sec((apr_time_t)epoch));
    return json_string(buf);
}

static json_t *daemon_json(const ad_conf_t *c, const ad_metrics_t *m, int alive)
{
    const ad_daemon_metrics_t *d = m->daemon;
    apr_int64_t now = apr_time_sec(apr_time_now());

    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "State",
                     alive ? "up" : "down", "Pid", (json_int_t)d->pid, "UptimeSeconds",
                     (json_int_t)(alive && d->started ? now - d->started : 0), "Starts",
                     G(d->restarts), "Pending", G(d->pending), "InFlight", G(d->in_flight),
                     "Delivered", G(d->delivered), "Retried", G(d->retried), "DeadLettered",
                     G(d->dead_lettered), "Dropped", G(d->dropped), "DlqCount", G(d->dlq),
                     "StoreBytes", G(d->store_bytes));
}

static json_t *target_json(const ad_target_t *t, const ad_target_metrics_t *tm)
{
    json_t *o = json_pack(
        "{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "Id", t->id, "Invocations",
        G(tm->invocations), "FailedInvocations", G(tm->failed_invocations), "InvocationsSentToDLQ",
        G(tm->sent_to_dlq), "InvocationsFailedToBeSentToDLQ", G(tm->failed_to_dlq), "Dropped",
        G(tm->dropped), "InvocationAttempts", G(tm->attempts), "SuccessfulInvocationAttempts",
        G(tm->successful_attempts), "RetryInvocationAttempts", G(tm->retry_attempts),
        "ThrottledRules", G(tm->throttled), "Queued", G(tm->queued));
    json_object_set_new(o, t->destination ? "Destination" : "Endpoint",
                        json_string(t->destination ? t->destination->name : t->endpoint));
    return o;
}

static json_t *rules_json(const ad_conf_t *c, const ad_metrics_t *m)
{
    json_t *arr = json_array();
    int i, j;

    for (i = 0; i < c->rules->nelts; i++) {
        const ad_rule_t *r = APR_ARRAY_IDX(c->rules, i, ad_rule_t *);
        const ad_rule_metrics_t *rm = &m->rules[r->index];
        json_t *targets = json_array();
        for (j = 0; j < r->targets->nelts; j++) {
            const ad_target_t *t = APR_ARRAY_IDX(r->targets, j, ad_target_t *);
            json_array_append_new(targets, target_json(t, &m->targets[t->gindex]));
        }
        json_t *o =
            json_pack("{s:s,s:s,s:s,s:I,s:I,s:o}", "Name", r->name, "EventBus", r->bus, "State",
                      r->enabled ? "ENABLED" : "DISABLED", "MatchedEvents", G(rm->matched_events),
                      "TriggeredRules", G(rm->triggered), "Targets", targets);
        if (r->schedule) {
            json_object_set_new(o, "ScheduleExpression", json_string(r->schedule_text));
            json_object_set_new(o, "LastFire", time_or_null(ad_metric_get(&rm->last_fire)));
            json_object_set_new(o, "NextFire", time_or_null(ad_metric_get(&rm->next_fire)));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

/* A destination is INACTIVE while its connection is not AUTHORIZED. */
static const char *dest_state(const ad_destination_t *d, const ad_metrics_t *m)
{
    return d->connection &&
                   ad_metric_get(&m->conns[d->connection->index].state) != AD_CONN_AUTHORIZED
               ? "INACTIVE"
               : "ACTIVE";
}

static json_t *conns_json(const ad_conf_t *c, const ad_metrics_t *m)
{
    json_t *arr = json_array();
    int i;

    for (i = 0; i < c->connections->nelts; i++) {
        const ad_connection_t *cn = APR_ARRAY_IDX(c->connections, i, ad_connection_t *);
        const ad_conn_metrics_t *cm = &m->conns[cn->index];
        json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I}", "Name", cn->name, "AuthorizationType",
                              ad_auth_type_name(cn->auth), "ConnectionState",
                              ad_conn_state_name(ad_metric_get(&cm->state)), "TokenFetches",
                              G(cm->token_fetches), "TokenFailures", G(cm->token_failures),
                              "Deauthorizations", G(cm->deauthorizations));
        if (cn->auth == AD_AUTH_OAUTH) {
            json_object_set_new(o, "TokenExpiry", time_or_null((apr_uint64_t)cm->token_expiry));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *dests_json(const ad_conf_t *c, const ad_metrics_t *m)
{
    json_t *arr = json_array();
    int i;

    for (i = 0; i < c->destinations->nelts; i++) {
        const ad_destination_t *d = APR_ARRAY_IDX(c->destinations, i, ad_destination_t *);
        const ad_dest_metrics_t *dm = &m->dests[d->index];
        char err[AD_LAST_ERROR_LEN];
        apr_int64_t when;

        ad_dest_get_error(dm, err, sizeof(err), &when);
        json_array_append_new(
            arr,
            json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:I}",
                      "Name", d->name, "Endpoint", d->endpoint, "HttpMethod", d->method, "State",
                      dest_state(d, m), "Queued", G(dm->queued), "InFlight", G(dm->in_flight),
                      "InvocationRateLimit", d->rate_limit, "Responses2xx", G(dm->responses_2xx),
                      "Responses4xx", G(dm->responses_4xx), "Responses5xx", G(dm->responses_5xx),
                      "ResponsesOther", G(dm->responses_other), "Timeouts", G(dm->timeouts),
                      "ConnectionErrors", G(dm->connect_errors), "Connections", G(dm->connections),
                      "ConnectionsReused", G(dm->reused), "LastError", err, "LastErrorTime",
                      (json_int_t)when));
    }
    return arr;
}

static json_t *hist_json(const ad_hist_t *h)
{
    json_int_t n = G(h->count);
    return json_pack("{s:I,s:f}", "Count", n, "AverageMs",
                     n ? (double)ad_metric_get(&h->sum_us) / 1000.0 / (double)n : 0.0);
}

json_t *ad_report_json(const ad_conf_t *c, const ad_metrics_t *m, int alive)
{
    const ad_daemon_metrics_t *d = m->daemon;
    json_t *daemon = daemon_json(c, m, alive);

    return json_pack(
        "{s:o,s:s,s:{s:I,s:I,s:I,s:I,s:I,s:I},s:o,s:o,s:o,s:{s:o,s:o}}", "Daemon", daemon, "Store",
        c->store_spec, "Ingest", "PutEventsRequests", G(d->put_events_requests), "EventsAccepted",
        G(d->events_accepted), "EventsFailed", G(d->events_failed), "UnmatchedEvents",
        G(d->unmatched_events), "TargetInputsDropped", G(d->inputs_dropped), "RefusedStoreFull",
        G(d->refused_full), "Destinations", dests_json(c, m), "Connections", conns_json(c, m),
        "Rules", rules_json(c, m), "Latency", "IngestionToInvocationStart",
        hist_json(&d->to_first_attempt), "IngestionToInvocationSuccess", hist_json(&d->to_success));
}

/* ---- server-status?auto: "ApiDest...: value" lines ---------------------- */

static void auto_line(apr_array_header_t *out, apr_pool_t *p, const char *key, apr_uint64_t v)
{
    APR_ARRAY_PUSH(out, const char *) = apr_psprintf(p, "%s: %" APR_UINT64_T_FMT "\n", key, v);
}

#define AUTO(key, v) auto_line(out, p, key, ad_metric_get(&(v)))

static void auto_daemon(apr_array_header_t *out, apr_pool_t *p, const ad_metrics_t *m, int alive)
{
    const ad_daemon_metrics_t *d = m->daemon;

    APR_ARRAY_PUSH(out, const char *) =
        apr_psprintf(p, "ApiDestDaemon: %s\n", alive ? "up" : "down");
    auto_line(out, p, "ApiDestDaemonPid", (apr_uint64_t)d->pid);
    AUTO("ApiDestDaemonStarts", d->restarts);
    AUTO("ApiDestStoreBytes", d->store_bytes);
    AUTO("ApiDestPending", d->pending);
    AUTO("ApiDestDeadLetter", d->dlq);
    AUTO("ApiDestInFlight", d->in_flight);
    AUTO("ApiDestDelivered", d->delivered);
    AUTO("ApiDestRetried", d->retried);
    AUTO("ApiDestDeadLettered", d->dead_lettered);
    AUTO("ApiDestDropped", d->dropped);
    AUTO("ApiDestPutEventsRequests", d->put_events_requests);
    AUTO("ApiDestEventsAccepted", d->events_accepted);
    AUTO("ApiDestEventsFailed", d->events_failed);
    AUTO("ApiDestUnmatchedEvents", d->unmatched_events);
    AUTO("ApiDestTargetInputsDropped", d->inputs_dropped);
}

static void auto_dests(apr_array_header_t *out, apr_pool_t *p, const ad_conf_t *c,
                       const ad_metrics_t *m)
{
    int i;

    for (i = 0; i < c->destinations->nelts; i++) {
        const ad_destination_t *dst = APR_ARRAY_IDX(c->destinations, i, ad_destination_t *);
        const ad_dest_metrics_t *dm = &m->dests[dst->index];
        const char *k = apr_pstrcat(p, "ApiDestDestination.", dst->name, ".", NULL);
        APR_ARRAY_PUSH(out, const char *) =
            apr_pstrcat(p, k, "State: ", dest_state(dst, m), "\n", NULL);
        AUTO(apr_pstrcat(p, k, "Queued", NULL), dm->queued);
        AUTO(apr_pstrcat(p, k, "InFlight", NULL), dm->in_flight);
        auto_line(out, p, apr_pstrcat(p, k, "RateLimit", NULL), (apr_uint64_t)dst->rate_limit);
        AUTO(apr_pstrcat(p, k, "Responses2xx", NULL), dm->responses_2xx);
        AUTO(apr_pstrcat(p, k, "Responses4xx", NULL), dm->responses_4xx);
        AUTO(apr_pstrcat(p, k, "Responses5xx", NULL), dm->responses_5xx);
        AUTO(apr_pstrcat(p, k, "Timeouts", NULL), dm->timeouts);
        AUTO(apr_pstrcat(p, k, "ConnectionErrors", NULL), dm->connect_errors);
    }
}

static void auto_rules(apr_array_header_t *out, apr_pool_t *p, const ad_conf_t *c,
                       const ad_metrics_t *m)
{
    int i, j;

    for (i = 0; i < c->rules->nelts; i++) {
        const ad_rule_t *r = APR_ARRAY_IDX(c->rules, i, ad_rule_t *);
        const char *k = apr_pstrcat(p, "ApiDestRule.", r->name, ".", NULL);
        AUTO(apr_pstrcat(p, k, "MatchedEvents", NULL), m->rules[r->index].matched_events);
        AUTO(apr_pstrcat(p, k, "TriggeredRules", NULL), m->rules[r->index].triggered);
        if (r->schedule) {
            AUTO(apr_pstrcat(p, k, "LastFire", NULL), m->rules[r->index].last_fire);
            AUTO(apr_pstrcat(p, k, "NextFire", NULL), m->rules[r->index].next_fire);
        }
        for (j = 0; j < r->targets->nelts; j++) {
            const ad_target_t *t = APR_ARRAY_IDX(r->targets, j, ad_target_t *);
            const ad_target_metrics_t *tm = &m->targets[t->gindex];
            /* '/' is in neither name: with '.' (allowed in both), rule a's
             * target b.c and rule a.b's target c made the same key */
            const char *tk = apr_pstrcat(p, "ApiDestTarget.", r->name, "/", t->id, ".", NULL);
            AUTO(apr_pstrcat(p, tk, "Invocations", NULL), tm->invocations);
            AUTO(apr_pstrcat(p, tk, "FailedInvocations", NULL), tm->failed_invocations);
            AUTO(apr_pstrcat(p, tk, "InvocationsSentToDLQ", NULL), tm->sent_to_dlq);
            AUTO(apr_pstrcat(p, tk, "InvocationAttempts", NULL), tm->attempts);
            AUTO(apr_pstrcat(p, tk, "SuccessfulInvocationAttempts", NULL), tm->successful_attempts);
            AUTO(apr_pstrcat(p, tk, "RetryInvocationAttempts", NULL), tm->retry_attempts);
            AUTO(apr_pstrcat(p, tk, "Queued", NULL), tm->queued);
        }
    }
}

static void auto_conns(apr_array_header_t *out, apr_pool_t *p, const ad_conf_t *c,
                       const ad_metrics_t *m)
{
    int i;

    for (i = 0; i < c->connections->nelts; i++) {
        const ad_connection_t *cn = APR_ARRAY_IDX(c->connections, i, ad_connection_t *);
        const ad_conn_metrics_t *cm = &m->conns[cn->index];
        const char *k = apr_pstrcat(p, "ApiDestConnection.", cn->name, ".", NULL);
        APR_ARRAY_PUSH(out, const char *) =
            apr_pstrcat(p, k, "State: ", ad_conn_state_name(ad_metric_get(&cm->state)), "\n", NULL);
        auto_line(out, p, apr_pstrcat(p, k, "TokenExpiry", NULL), (apr_uint64_t)cm->token_expiry);
        AUTO(apr_pstrcat(p, k, "TokenFetches", NULL), cm->token_fetches);
    }
}

char *ad_report_auto(apr_pool_t *p, const ad_conf_t *c, const ad_metrics_t *m, int alive)
{
    apr_array_header_t *out = apr_array_make(p, 64, sizeof(const char *));

    auto_daemon(out, p, m, alive);
    auto_dests(out, p, c, m);
    auto_conns(out, p, c, m);
    auto_rules(out, p, c, m);
    return apr_array_pstrcat(p, out, 0);
}

/* ---- Prometheus text exposition format 0.0.4 --------------------------- */

static const char *label_escape(apr_pool_t *p, const char *v)
{
    apr_size_t n = strlen(v), i, o = 0;
    char *out = apr_palloc(p, 2 * n + 1);

    for (i = 0; i < n; i++) {
        if (v[i] == '\\' || v[i] == '"') {
            out[o++] = '\\';
            out[o++] = v[i];
        }
        else if (v[i] == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        }
        else {
            out[o++] = v[i];
        }
    }
    out[o] = '\0';
    return out;
}

typedef struct prom_t {
    apr_pool_t *p;
    apr_array_header_t *out;
} prom_t;

static void emit(prom_t *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(prom_t *pr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    APR_ARRAY_PUSH(pr->out, const char *) = apr_pvsprintf(pr->p, fmt, ap);
    va_end(ap);
}

static void family(prom_t *pr, const char *name, const char *type, const char *help)
{
    emit(pr, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The per-target EventBridge metrics: name, help, and offset of the field. */
typedef struct target_family_t {
    const char *name;
    const char *help;
    apr_size_t off;
} target_family_t;

static const target_family_t target_families[] = {
    {"apidest_invocations_total",
     "Targets invoked, counted once per final outcome (EventBridge Invocations).",
     APR_OFFSETOF(ad_target_metrics_t, invocations)},
    {"apidest_failed_invocations_total",
     "Invocations that failed for good (EventBridge FailedInvocations).",
     APR_OFFSETOF(ad_target_metrics_t, failed_invocations)},
    {"apidest_invocations_sent_to_dlq_total",
     "Failed invocations written to the dead-letter queue (InvocationsSentToDLQ).",
     APR_OFFSETOF(ad_target_metrics_t, sent_to_dlq)},
    {"apidest_invocations_failed_to_be_sent_to_dlq_total",
     "Failed invocations the dead-letter queue could not take (InvocationsFailedToBeSentToDLQ).",
     APR_OFFSETOF(ad_target_metrics_t, failed_to_dlq)},
    {"apidest_invocation_attempts_total",
     "Every attempt, first tries and retries (InvocationAttempts).",
     APR_OFFSETOF(ad_target_metrics_t, attempts)},
    {"apidest_successful_invocation_attempts_total",
     "Attempts that delivered (SuccessfulInvocationAttempts).",
     APR_OFFSETOF(ad_target_metrics_t, successful_attempts)},
    {"apidest_retry_invocation_attempts_total",
     "Attempts that were retries (RetryInvocationAttempts).",
     APR_OFFSETOF(ad_target_metrics_t, retry_attempts)},
    {"apidest_throttled_rules_total",
     "Invocations delayed by a rate or concurrency limit (ThrottledRules).",
     APR_OFFSETOF(ad_target_metrics_t, throttled)},
};

static void prom_targets(prom_t *pr, const ad_conf_t *c, const ad_metrics_t *m)
{
    size_t f;
    int i, j;

    for (f = 0; f < sizeof(target_families) / sizeof(target_families[0]); f++) {
        family(pr, target_families[f].name, "counter", target_families[f].help);
        for (i = 0; i < c->rules->nelts; i++) {
            const ad_rule_t *r = APR_ARRAY_IDX(c->rules, i, ad_rule_t *);
            for (j = 0; j < r->targets->nelts; j++) {
                const ad_target_t *t = APR_ARRAY_IDX(r->targets, j, ad_target_t *);
                const char *base = (const char *)&m->targets[t->gindex];
                emit(pr, "%s{event_bus=\"%s\",rule=\"%s\",target=\"%s\"} %" APR_UINT64_T_FMT "\n",
                     target_families[f].name, label_escape(pr->p, r->bus),
                     label_escape(pr->p, r->name), label_escape(pr->p, t->id),
                     ad_metric_get((const apr_uint64_t *)(base + target_families[f].off)));
            }
        }
    }
}

static void prom_rules(prom_t *pr, const ad_conf_t *c, const ad_metrics_t *m)
{
    int i, k;
    static const char *const names[] = {"apidest_matched_events_total",
                                        "apidest_triggered_rules_total"};
    static const char *const helps[] = {
        "Events that matched the rule (EventBridge MatchedEvents).",
        "Times the rule ran and matched an event (EventBridge TriggeredRules)."};

    for (k = 0; k < 2; k++) {
        family(pr, names[k], "counter", helps[k]);
        for (i = 0; i < c->rules->nelts; i++) {
            const ad_rule_t *r = APR_ARRAY_IDX(c->rules, i, ad_rule_t *);
            const ad_rule_metrics_t *rm = &m->rules[r->index];
            emit(pr, "%s{event_bus=\"%s\",rule=\"%s\"} %" APR_UINT64_T_FMT "\n", names[k],
                 label_escape(pr->p, r->bus), label_escape(pr->p, r->name),
                 ad_metric_get(k ? &rm->triggered : &rm->matched_events));
        }
    }
}

static void prom_dests(prom_t *pr, const ad_conf_t *c, const ad_metrics_t *m)
{
    static const char *const classes[] = {"2xx",   "4xx",     "5xx",
                                          "other", "timeout", "connection_error"};
    int i, k;

    family(pr, "apidest_destination_responses_total", "counter",
           "Attempt outcomes per API destination, by class.");
    for (i = 0; i < c->destinations->nelts; i++) {
        const ad_destination_t *d = APR_ARRAY_IDX(c->destinations, i, ad_destination_t *);
        const ad_dest_metrics_t *dm = &m->dests[d->index];
        const apr_uint64_t *v[] = {&dm->responses_2xx,   &dm->responses_4xx, &dm->responses_5xx,
                                   &dm->responses_other, &dm->timeouts,      &dm->connect_errors};
        for (k = 0; k < 6; k++) {
            emit(pr,
                 "apidest_destination_responses_total{destination=\"%s\",class=\"%s\"} "
                 "%" APR_UINT64_T_FMT "\n",
                 label_escape(pr->p, d->name), classes[k], ad_metric_get(v[k]));
        }
    }
    family(pr, "apidest_destination_queue_depth", "gauge",
           "Records waiting in the store per API destination.");
    for (i = 0; i < c->destinations->nelts; i++) {
        const ad_destination_t *d = APR_ARRAY_IDX(c->destinations, i, ad_destination_t *);
        emit(pr, "apidest_destination_queue_depth{destination=\"%s\"} %" APR_UINT64_T_FMT "\n",
             label_escape(pr->p, d->name), ad_metric_get(&m->dests[d->index].queued));
    }
    family(pr, "apidest_destination_in_flight", "gauge",
           "Requests running now per API destination.");
    for (i = 0; i < c->destinations->nelts; i++) {
        const ad_destination_t *d = APR_ARRAY_IDX(c->destinations, i, ad_destination_t *);
        emit(pr, "apidest_destination_in_flight{destination=\"%s\"} %" APR_UINT64_T_FMT "\n",
             label_escape(pr->p, d->name), ad_metric_get(&m->dests[d->index].in_flight));
    }
}

static void prom_hist(prom_t *pr, const char *name, const char *help, const ad_hist_t *h)
{
    apr_uint64_t cum = 0;
    int i;

    family(pr, name, "histogram", help);
    for (i = 0; i < AD_HIST_BUCKETS; i++) {
        cum += ad_metric_get(&h->bucket[i]);
        emit(pr, "%s_bucket{le=\"%g\"} %" APR_UINT64_T_FMT "\n", name,
             ad_hist_bounds_ms[i] / 1000.0, cum);
    }
    cum += ad_metric_get(&h->bucket[AD_HIST_BUCKETS]);
    emit(pr, "%s_bucket{le=\"+Inf\"} %" APR_UINT64_T_FMT "\n", name, cum);
    emit(pr, "%s_sum %.6f\n", name, (double)ad_metric_get(&h->sum_us) / 1e6);
    emit(pr, "%s_count %" APR_UINT64_T_FMT "\n", name, cum);
}

static void gauge(prom_t *pr, const char *name, const char *help, apr_uint64_t v)
{
    family(pr, name, "gauge", help);
    emit(pr, "%s %" APR_UINT64_T_FMT "\n", name, v);
}

static void counter(prom_t *pr, const char *name, const char *help, apr_uint64_t v)
{
    family(pr, name, "counter", help);
    emit(pr, "%s %" APR_UINT64_T_FMT "\n", name, v);
}

char *ad_report_prometheus(apr_pool_t *p, const ad_conf_t *c, const ad_metrics_t *m, int alive)
{
    const ad_daemon_metrics_t *d = m->daemon;
    prom_t pr = {p, apr_array_make(p, 128, sizeof(const char *))};

    gauge(&pr, "apidest_daemon_up", "1 while apidestd runs.", alive ? 1 : 0);
    gauge(&pr, "apidest_store_bytes", "Size of the store on disk.", ad_metric_get(&d->store_bytes));
    gauge(&pr, "apidest_pending_records", "Delivery records waiting in the store.",
          ad_metric_get(&d->pending));
    gauge(&pr, "apidest_dead_letter_records", "Records in the dead-letter queue.",
          ad_metric_get(&d->dlq));
    gauge(&pr, "apidest_in_flight", "Outbound requests running now.", ad_metric_get(&d->in_flight));
    counter(&pr, "apidest_put_events_requests_total", "PutEvents requests answered 200.",
            ad_metric_get(&d->put_events_requests));
    counter(&pr, "apidest_put_events_entries_total", "Entries accepted with an EventId.",
            ad_metric_get(&d->events_accepted));
    counter(&pr, "apidest_put_events_failed_entries_total", "Entries answered with an ErrorCode.",
            ad_metric_get(&d->events_failed));
    counter(&pr, "apidest_unmatched_events_total", "Accepted events that matched no rule.",
            ad_metric_get(&d->unmatched_events));
    counter(&pr, "apidest_target_inputs_dropped_total",
            "Matched events a target got nothing for: its input transformation gave nothing "
            "to deliver.",
            ad_metric_get(&d->inputs_dropped));
    prom_rules(&pr, c, m);
    prom_targets(&pr, c, m);
    prom_dests(&pr, c, m);
    prom_hist(&pr, "apidest_ingestion_to_invocation_start_latency_seconds",
              "Ingestion to the start of the first attempt (IngestiontoInvocationStartLatency).",
              &d->to_first_attempt);
    prom_hist(
        &pr, "apidest_ingestion_to_invocation_success_latency_seconds",
        "Ingestion to the end of the successful attempt (IngestionToInvocationSuccessLatency).",
        &d->to_success);
    return apr_array_pstrcat(p, pr.out, 0);
}
