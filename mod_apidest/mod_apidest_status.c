#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_log.h>
#include <http_core.h>
#include <mod_status.h>
#include <util_script.h>
#include <apr_optional_hooks.h>
#include <apr_strings.h>
#include <jansson.h>

#include "ad_log.h"
#include "mod_apidest_status.h"
#include "mod_apidest_config.h"
#include "mod_apidest_daemon.h"
#include "mod_apidest_body.h"
#include "ad_util.h"
#include "ad_report.h"
#include "ad_awsjson.h"
#include "ad_admin.h"
#include <signal.h>
#include <stdio.h>

/* apidestd redrives a large DLQ in steps between its other work: 1M dead
 * letters take minutes. */
#define BULK_REDRIVE_WAIT apr_time_from_sec(900)

APLOG_USE_MODULE(apidest);

static ad_metrics_t *metrics;

apr_status_t apidest_metrics_init(apr_pool_t *pconf, server_rec *s)
{
    apr_status_t rv = ad_metrics_create(pconf, apidest_conf(s), &metrics);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     ADLOGNO(10040) "cannot create the shared memory for mod_apidest's counters");
    }
    return rv;
}

ad_metrics_t *apidest_metrics(void)
{
    return metrics;
}

/* A killed daemon stays a zombie until the master reaps it, and kill(pid, 0)
 * still succeeds on a zombie: look at its state too. */
static int daemon_alive(void)
{
    pid_t pid = (pid_t)metrics->daemon->pid, ppid;
    char state;

    if (pid <= 0 || kill(pid, 0) != 0) {
        return 0;
    }
    return !apidest_proc_stat(pid, &state, &ppid) || state != 'Z';
}

static void html_destinations(request_rec *r, const ad_conf_t *c)
{
    int i;

    ap_rputs("<table border=\"1\"><tr><th>Destination</th><th>State</th><th>Queued</th>"
             "<th>In flight</th><th>Rate limit/s</th><th>2xx</th><th>4xx</th><th>5xx</th>"
             "<th>Timeouts</th><th>Conn. errors</th><th>Last error</th></tr>\n",
             r);
    for (i = 0; i < c->destinations->nelts; i++) {
        const ad_destination_t *d = APR_ARRAY_IDX(c->destinations, i, ad_destination_t *);
        const ad_dest_metrics_t *dm = &metrics->dests[d->index];
        char err[AD_LAST_ERROR_LEN];
        apr_int64_t when;

        ad_dest_get_error(dm, err, sizeof(err), &when);
        ap_rprintf(r,
                   "<tr><td>%s</td><td>%s</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                   "</td><td>%d</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                   "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                   "</td><td>%" APR_UINT64_T_FMT "</td><td>%s</td></tr>\n",
                   ap_escape_html(r->pool, d->name),
                   d->connection && ad_metric_get(&metrics->conns[d->connection->index].state) !=
                                        AD_CONN_AUTHORIZED
                       ? "INACTIVE"
                       : "ACTIVE",
                   ad_metric_get(&dm->queued), ad_metric_get(&dm->in_flight), d->rate_limit,
                   ad_metric_get(&dm->responses_2xx), ad_metric_get(&dm->responses_4xx),
                   ad_metric_get(&dm->responses_5xx), ad_metric_get(&dm->timeouts),
                   ad_metric_get(&dm->connect_errors), ap_escape_html(r->pool, err));
    }
    ap_rputs("</table>\n", r);
}

static void html_connections(request_rec *r, const ad_conf_t *c)
{
    int i;

    for (i = 0; i < c->connections->nelts; i++) {
        const ad_connection_t *cn = APR_ARRAY_IDX(c->connections, i, ad_connection_t *);
        const ad_conn_metrics_t *cm = &metrics->conns[cn->index];
        char when[32] = "-";
        if (cm->token_expiry) {
            ad_time_rfc3339(when, apr_time_from_sec(cm->token_expiry));
        }
        ap_rprintf(r, "<p>connection %s: %s, token expires %s</p>\n",
                   ap_escape_html(r->pool, cn->name), ad_conn_state_name(ad_metric_get(&cm->state)),
                   when);
    }
}

static void html_schedules(request_rec *r, const ad_conf_t *c)
{
    int i;

    for (i = 0; i < c->rules->nelts; i++) {
        const ad_rule_t *rule = APR_ARRAY_IDX(c->rules, i, ad_rule_t *);
        apr_uint64_t next = ad_metric_get(&metrics->rules[rule->index].next_fire);
        char when[32] = "-";
        if (!rule->schedule) {
            continue;
        }
        if (next) {
            ad_time_rfc3339(when, apr_time_from_sec((apr_time_t)next));
        }
        ap_rprintf(r, "<p>rule %s: %s, next fire %s</p>\n", ap_escape_html(r->pool, rule->name),
                   ap_escape_html(r->pool, rule->schedule_text), when);
    }
}

static void html_rules(request_rec *r, const ad_conf_t *c)
{
    int i, j;

    ap_rputs("<table border=\"1\"><tr><th>Rule</th><th>Target</th><th>Matched</th>"
             "<th>Invocations</th><th>Failed</th><th>To DLQ</th><th>Attempts</th>"
             "<th>Retries</th><th>Queued</th></tr>\n",
             r);
    for (i = 0; i < c->rules->nelts; i++) {
        const ad_rule_t *rule = APR_ARRAY_IDX(c->rules, i, ad_rule_t *);
        for (j = 0; j < rule->targets->nelts; j++) {
            const ad_target_t *t = APR_ARRAY_IDX(rule->targets, j, ad_target_t *);
            const ad_target_metrics_t *tm = &metrics->targets[t->gindex];
            ap_rprintf(r,
                       "<tr><td>%s</td><td>%s</td><td>%" APR_UINT64_T_FMT
                       "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                       "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                       "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td></tr>\n",
                       ap_escape_html(r->pool, rule->name), ap_escape_html(r->pool, t->id),
                       ad_metric_get(&metrics->rules[rule->index].matched_events),
                       ad_metric_get(&tm->invocations), ad_metric_get(&tm->failed_invocations),
                       ad_metric_get(&tm->sent_to_dlq), ad_metric_get(&tm->attempts),
                       ad_metric_get(&tm->retry_attempts), ad_metric_get(&tm->queued));
        }
    }
    ap_rputs("</table>\n", r);
    html_schedules(r, c);
}

static void status_html(request_rec *r, const ad_conf_t *c, int alive)
{
    const ad_daemon_metrics_t *d = metrics->daemon;

    ap_rputs("<hr />\n<h2>mod_apidest</h2>\n<dl>\n", r);
    ap_rprintf(r,
               "<dt>apidestd: %s (pid %" APR_INT64_T_FMT ", started %" APR_UINT64_T_FMT
               " time(s) in this generation)</dt>\n",
               alive ? "up" : "<b>down</b>", d->pid, ad_metric_get(&d->restarts));
    ap_rprintf(r, "<dt>store: %s, %" APR_UINT64_T_FMT " bytes</dt>\n",
               ap_escape_html(r->pool, c->store_spec), ad_metric_get(&d->store_bytes));
    ap_rprintf(r,
               "<dt>pending: %" APR_UINT64_T_FMT ", in flight: %" APR_UINT64_T_FMT
               ", dead-letter queue: %" APR_UINT64_T_FMT ", delivered: %" APR_UINT64_T_FMT
               "</dt>\n</dl>\n",
               ad_metric_get(&d->pending), ad_metric_get(&d->in_flight), ad_metric_get(&d->dlq),
               ad_metric_get(&d->delivered));
    html_destinations(r, c);
    html_connections(r, c);
    html_rules(r, c);
}

static int status_hook(request_rec *r, int flags)
{
    const ad_conf_t *c = apidest_conf(r->server);
    int alive;

    if (!metrics) {
        return OK;
    }
    alive = daemon_alive();
    if (flags & AP_STATUS_SHORT) {
        ap_rputs(ad_report_auto(r->pool, c, metrics, alive), r);
    }
    else {
        status_html(r, c, alive);
    }
    return OK;
}

void apidest_status_register(void)
{
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}

static int admin_json(request_rec *r, int status, json_t *body)
{
    apr_size_t len;
    char *text = ad_json_dump(r->pool, body, &len);

    json_decref(body);
    r->status = status;
    ap_set_content_type(r, "application/json");
    ap_rwrite(text, (int)len, r);
    return OK;
}

static int admin_error(request_rec *r, int status, const char *error, const char *msg)
{
    return admin_json(r, status, json_pack("{s:s,s:s}", "error", error, "message", msg));
}

static int admin_text(request_rec *r, int status, const char *text, apr_size_t len)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    ap_rwrite(text, (int)len, r);
    return OK;
}

/* Forward one op to apidestd, the store's only user; its reply is the
 * response. wait bounds it (0: apidestd's usual 30 s). */
static int admin_forward_for(request_rec *r, json_t *req, apr_interval_time_t wait,
                             const char *unavailable)
{
    apr_size_t len;
    char *text;
    const char *reply;
    int status;

    if (!req) {
        /* json_pack refuses a name that is not UTF-8: no record or
         * connection has such a name */
        return admin_error(r, HTTP_NOT_FOUND, "NotFound", "no such admin resource");
    }
    text = ad_json_dump(r->pool, req, &len);
    json_decref(req);
    if (!apidest_daemon_admin(r, text, wait, &status, &reply, &len)) {
        return admin_error(r, HTTP_SERVICE_UNAVAILABLE, "DaemonUnavailable", unavailable);
    }
    return admin_text(r, status, reply, len);
}

static int admin_forward(request_rec *r, json_t *req)
{
    return admin_forward_for(r, req, 0, "apidestd is not reachable; retry shortly");
}

/* A filter that is given and cannot be used is an error, never dropped: a
 * filtered redrive would otherwise redrive everything. An empty value reads
 * as absent when listing (a script's empty first token), never for a
 * redrive. */
static void query_name(apr_pool_t *p, apr_table_t *args, json_t *req, const char *key, int strict,
                       const char **err)
{
    const char *v = apr_table_get(args, key);
    json_t *s;

    if (!v || (!*v && !strict)) {
        return;
    }
    if (!*v || !(s = json_string(v))) {
        *err = apr_psprintf(p, "%s must be a non-empty UTF-8 name", key);
        return;
    }
    json_object_set_new(req, key, s);
}

typedef struct {
    const char *const *allowed;
    const char *unknown;
} param_check_t;

static int check_param(void *rec, const char *key, const char *value)
{
    param_check_t *c = rec;
    const char *const *a;

    (void)value;
    for (a = c->allowed; *a && strcasecmp(*a, key); a++) {
    }
    if (!*a) {
        c->unknown = key;
    }
    return !c->unknown;
}

/* A parameter a resource that changes state does not take (a typo, or
 * limit= on a redrive) is an error: dropping it would widen what the call
 * does.
 * allowed: NULL-terminated, named again in takes. NULL, or the reason. */
static const char *unknown_param(request_rec *r, apr_table_t *args, const char *const *allowed,
                                 const char *takes)
{
    param_check_t c = {allowed, NULL};

    apr_table_do(check_param, &c, args, NULL);
    if (!c.unknown) {
        return NULL;
    }
    return apr_psprintf(r->pool, "unknown parameter '%s': %s",
                        ap_escape_logitem(r->pool, c.unknown), takes);
}

static const char *const no_params[] = {NULL};

static json_t *query_filters(request_rec *r, json_t *req, int redrive, const char **err)
{
    static const char *const redrive_params[] = {"rule", "destination", "since", NULL};
    apr_table_t *args;
    const char *v;

    /* A listing reads past what it does not know (a cache-buster, a
     * typo): it changes nothing. */
    *err = NULL;
    ap_args_to_table(r, &args);
    if (redrive && (*err = unknown_param(r, args, redrive_params,
                                         "a redrive takes rule, destination and since"))) {
        return req;
    }
    query_name(r->pool, args, req, "rule", redrive, err);
    query_name(r->pool, args, req, "destination", redrive, err);
    query_name(r->pool, args, req, "after", 0, err);
    if ((v = apr_table_get(args, "since")) && (*v || redrive)) {
        char *end;
        apr_int64_t n = apr_strtoi64(v, &end, 10);
        if (!*v || *end || n < 0 || n > AD_ADMIN_MAX_SINCE) {
            *err = "since must be epoch seconds";
        }
        json_object_set_new(req, "since", json_integer(n));
    }
    if ((v = apr_table_get(args, "limit"))) {
        char *end;
        apr_int64_t n = apr_strtoi64(v, &end, 10);
        if (*end) {
            *err = "limit must be an integer";
        }
        json_object_set_new(req, "limit", json_integer(n));
    }
    return req;
}

/* From shared memory only: it answers while apidestd is down or busy. */
static int admin_status(request_rec *r)
{
    return admin_json(r, HTTP_OK, ad_report_json(apidest_conf(r->server), metrics, daemon_alive()));
}

static int admin_metrics(request_rec *r)
{
    const char *text =
        ad_report_prometheus(r->pool, apidest_conf(r->server), metrics, daemon_alive());
    r->status = HTTP_OK;
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    ap_rputs(text, r);
    return OK;
}

/* 405 with the Allow header HTTP asks for ("GET", "GET, DELETE", ...). */
static int wrong_method(request_rec *r, const char *allow)
{
    apr_table_setn(r->headers_out, "Allow", allow);
    return admin_error(r, HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed",
                       apr_pstrcat(r->pool, "use ", allow, NULL));
}

/* GET /dlq, GET|DELETE /dlq/{id}, POST /dlq/{id}/redrive, POST /dlq/redrive */
static int admin_dlq(request_rec *r, const char *rest)
{
    const char *err, *slash;
    json_t *req;

    if (!*rest || !strcmp(rest, "/")) {
        if (r->method_number != M_GET) {
            return wrong_method(r, "GET, HEAD");
        }
        req = query_filters(r, json_pack("{s:s}", "op", "dlq-list"), 0, &err);
        return err ? (json_decref(req), admin_error(r, HTTP_BAD_REQUEST, "InvalidParameter", err))
                   : admin_forward(r, req);
    }
    rest++;
    if (strcmp(rest, "redrive") && r->method_number != M_GET && r->args) {
        apr_table_t *args;
        ap_args_to_table(r, &args);
        if ((err = unknown_param(r, args, no_params, "this resource takes none"))) {
            return admin_error(r, HTTP_BAD_REQUEST, "InvalidParameter", err);
        }
    }
    if (!strcmp(rest, "redrive")) {
        if (r->method_number != M_POST) {
            return wrong_method(r, "POST");
        }
        req = query_filters(r, json_pack("{s:s}", "op", "dlq-redrive"), 1, &err);
        return err ? (json_decref(req), admin_error(r, HTTP_BAD_REQUEST, "InvalidParameter", err))
                   : admin_forward_for(r, req, BULK_REDRIVE_WAIT,
                                       "apidestd did not answer; a bulk redrive may still be "
                                       "under way: list the DLQ before redriving again");
    }
    if ((slash = strchr(rest, '/'))) {
        if (slash == rest || strcmp(slash, "/redrive")) {
            return admin_error(r, HTTP_NOT_FOUND, "NotFound", "no such admin resource");
        }
        if (r->method_number != M_POST) {
            return wrong_method(r, "POST");
        }
        return admin_forward(
            r, json_pack("{s:s,s:s%}", "op", "dlq-redrive", "id", rest, (size_t)(slash - rest)));
    }
    if (r->method_number == M_GET) {
        return admin_forward(r, json_pack("{s:s,s:s}", "op", "dlq-get", "id", rest));
    }
    if (r->method_number == M_DELETE) {
        return admin_forward(r, json_pack("{s:s,s:s}", "op", "dlq-delete", "id", rest));
    }
    return wrong_method(r, "GET, HEAD, DELETE");
}

/* POST /test-event-pattern: {"Event": ..., "EventPattern": ...} */
static int admin_test_event_pattern(request_rec *r)
{
    char *body, *out;
    apr_size_t len = 0, out_len;
    const char *etype;
    int status;

    /* Admin bodies are small; anything over 64 KiB is refused. */
    if (apidest_read_body(r, 64 * 1024, &body, &len) != APIDEST_BODY_OK) {
        return admin_error(r, HTTP_BAD_REQUEST, "InvalidRequest",
                           "the body must be at most 64 KiB of JSON");
    }
    status = ad_awsjson_test_event_pattern(r->pool, body, len, &out, &out_len, &etype);
    return admin_text(r, status, out, out_len);
}

/* POST /connections/{name}/authorize */
static int admin_connection(request_rec *r, const char *rest)
{
    const char *slash = strchr(rest, '/');

    if (!slash || strcmp(slash, "/authorize") || slash == rest) {
        return admin_error(r, HTTP_NOT_FOUND, "NotFound", "no such admin resource");
    }
    if (r->method_number != M_POST) {
        return wrong_method(r, "POST");
    }
    return admin_forward(
        r, json_pack("{s:s,s:s%}", "op", "authorize", "name", rest, (size_t)(slash - rest)));
}

/* httpd merges "//" in r->uri: ".../dlq//redrive", a script's
 * "dlq/$ID/redrive" with $ID empty, would redrive the whole DLQ. The path
 * as sent is checked (after the authority of an absolute-form target). */
static int has_empty_segment(const char *uri)
{
    const char *path = uri, *c;

    if (*uri != '/') {
        const char *auth = strstr(uri, "://");
        path = auth ? auth + 3 + strcspn(auth + 3, "/?#") : uri;
    }
    for (c = path; *c && *c != '?' && *c != '#'; c++) {
        if (c[0] == '/' && c[1] == '/') {
            return 1;
        }
    }
    return 0;
}

typedef enum {
    ADMIN_NONE,
    ADMIN_STATUS,
    ADMIN_METRICS,
    ADMIN_DLQ,        /* the rest past "/dlq" */
    ADMIN_CONNECTION, /* the rest past "/connections/" */
    ADMIN_TEST_PATTERN
} admin_route_t;

/* Which admin resource sub names; *rest: what follows its fixed part. */
static admin_route_t admin_route(const char *sub, const char **rest)
{
    *rest = "";
    if (!strcmp(sub, "/status")) {
        return ADMIN_STATUS;
    }
    if (!strcmp(sub, "/metrics")) {
        return ADMIN_METRICS;
    }
    if (!strncmp(sub, "/dlq", 4) && (sub[4] == '\0' || sub[4] == '/')) {
        *rest = sub + 4;
        return ADMIN_DLQ;
    }
    if (!strncmp(sub, "/connections/", 13)) {
        *rest = sub + 13;
        return ADMIN_CONNECTION;
    }
    return strcmp(sub, "/test-event-pattern") ? ADMIN_NONE : ADMIN_TEST_PATTERN;
}

/* The resource under the admin <Location>: the URI past the path of the
 * section that applies, when that names one. httpd's path_info depends on
 * the filesystem under DocumentRoot (a missing DocumentRoot moves it), so
 * it serves only where the section's path does not lead to a resource (a
 * <LocationMatch>). */
static const char *admin_resource(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *rest;
    apr_size_t n;

    if (cd && cd->d && !cd->r && *cd->d == '/') {
        n = strlen(cd->d);
        while (n > 0 && cd->d[n - 1] == '/') {
            n--;
        }
        /* from the section's path back to its parents: the admin
         * <Location> may hold a narrower one (for its own access rules) */
        for (; !strncmp(r->uri, cd->d, n); n--) {
            if ((r->uri[n] == '/' || r->uri[n] == '\0') &&
                admin_route(r->uri + n, &rest) != ADMIN_NONE) {
                return r->uri + n;
            }
            if (n == 0) {
                break;
            }
        }
    }
    return r->path_info ? r->path_info : "";
}

/* A page from another site, in a browser on a host the admin location
 * lets in (Require local), must not redrive or delete: a POST without a
 * body is a "simple" cross-origin request, sent without asking first.
 * Browsers say where a request comes from in Sec-Fetch-Site (proxies in
 * front of httpd do not change it, as they may Host); curl and scripts
 * send none. */
static int cross_site(request_rec *r)
{
    const char *site = apr_table_get(r->headers_in, "Sec-Fetch-Site");

    return r->method_number != M_GET && site && strcasecmp(site, "same-origin") != 0 &&
           strcasecmp(site, "none") != 0;
}

int apidest_admin_handler(request_rec *r)
{
    const char *rest;
    admin_route_t route = admin_route(admin_resource(r), &rest);

    if (has_empty_segment(r->unparsed_uri)) {
        return admin_error(r, HTTP_NOT_FOUND, "NotFound",
                           "no such admin resource (an empty path segment)");
    }
    if (cross_site(r)) {
        return admin_error(r, HTTP_FORBIDDEN, "Forbidden",
                           "a browser sent this admin request from another site "
                           "(Sec-Fetch-Site); only GET is taken from one");
    }
    switch (route) {
    case ADMIN_STATUS:
    case ADMIN_METRICS:
        if (r->method_number != M_GET) {
            return wrong_method(r, "GET, HEAD");
        }
        return route == ADMIN_STATUS ? admin_status(r) : admin_metrics(r);
    case ADMIN_DLQ:
        return admin_dlq(r, rest);
    case ADMIN_CONNECTION:
        return admin_connection(r, rest);
    case ADMIN_TEST_PATTERN:
        return r->method_number == M_POST ? admin_test_event_pattern(r) : wrong_method(r, "POST");
    default:
        return admin_error(r, HTTP_NOT_FOUND, "NotFound", "no such admin resource");
    }
}
