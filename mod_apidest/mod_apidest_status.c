#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_log.h>
#include <mod_status.h>
#include <util_script.h>
#include <apr_optional_hooks.h>
#include <apr_strings.h>
#include <jansson.h>

#include "ad_log.h"
#include "mod_apidest_status.h"
#include "mod_apidest_config.h"
#include "mod_apidest_daemon.h"
#include "ad_util.h"

APLOG_USE_MODULE(apidest);

static void status_auto(request_rec *r, const ad_conf_t *c, pid_t pid, int alive)
{
    ap_rprintf(r, "ApiDestDaemon: %s\n", alive ? "up" : "down");
    ap_rprintf(r, "ApiDestDaemonPid: %" APR_PID_T_FMT "\n", pid);
    ap_rprintf(r, "ApiDestStore: %s\n", c->store_spec);
    ap_rprintf(r, "ApiDestRules: %d\n", c->rules->nelts);
    ap_rprintf(r, "ApiDestDestinations: %d\n", c->destinations->nelts);
}

static void status_html(request_rec *r, const ad_conf_t *c, pid_t pid, int alive)
{
    int i;

    ap_rputs("<hr />\n<h2>mod_apidest</h2>\n<dl>\n", r);
    ap_rprintf(r, "<dt>apidestd: %s (pid %" APR_PID_T_FMT ")</dt>\n",
               alive ? "up" : "<b>down</b>", pid);
    ap_rprintf(r, "<dt>store: %s</dt>\n", ap_escape_html(r->pool, c->store_spec));
    ap_rputs("</dl>\n<table border=\"0\"><tr><th>destination</th><th>endpoint</th>"
             "<th>method</th></tr>\n", r);
    for (i = 0; i < c->destinations->nelts; i++) {
        const ad_destination_t *d = APR_ARRAY_IDX(c->destinations, i, ad_destination_t *);
        ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                   ap_escape_html(r->pool, d->name),
                   ap_escape_html(r->pool, d->endpoint), d->method);
    }
    ap_rputs("</table>\n", r);
}

static int status_hook(request_rec *r, int flags)
{
    const ad_conf_t *c = apidest_conf(r->server);
    int alive;
    pid_t pid = apidest_daemon_pid(r->pool, &alive);

    if (flags & AP_STATUS_SHORT) {
        status_auto(r, c, pid, alive);
    }
    else {
        status_html(r, c, pid, alive);
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
 * response. */
static int admin_forward(request_rec *r, json_t *req)
{
    apr_size_t len;
    char *text = ad_json_dump(r->pool, req, &len);
    const char *reply;
    int status;

    json_decref(req);
    if (!apidest_daemon_admin(r, text, &status, &reply, &len)) {
        return admin_error(r, HTTP_SERVICE_UNAVAILABLE, "DaemonUnavailable",
                           "apidestd is not reachable; retry shortly");
    }
    return admin_text(r, status, reply, len);
}

static json_t *query_filters(request_rec *r, json_t *req, const char **err)
{
    apr_table_t *args;
    const char *v;

    *err = NULL;
    ap_args_to_table(r, &args);
    if ((v = apr_table_get(args, "rule"))) {
        json_object_set_new(req, "rule", json_string(v));
    }
    if ((v = apr_table_get(args, "destination"))) {
        json_object_set_new(req, "destination", json_string(v));
    }
    if ((v = apr_table_get(args, "after"))) {
        json_object_set_new(req, "after", json_string(v));
    }
    if ((v = apr_table_get(args, "since"))) {
        char *end;
        apr_int64_t n = apr_strtoi64(v, &end, 10);
        if (*end || n < 0) {
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

static int admin_status(request_rec *r)
{
    const ad_conf_t *c = apidest_conf(r->server);
    const char *reply;
    apr_size_t len;
    int status, alive;
    json_t *daemon = NULL, *out;
    pid_t pid = apidest_daemon_pid(r->pool, &alive);

    if (alive && apidest_daemon_admin(r, "{\"op\":\"status\"}", &status, &reply, &len)
        && status == HTTP_OK) {
        json_error_t jerr;
        daemon = json_loadb(reply, len, 0, &jerr);
    }
    if (!daemon) {
        /* Status keeps answering while the daemon is away. */
        daemon = json_pack("{s:s,s:I}", "State", "down", "Pid", (json_int_t)pid);
    }
    out = json_pack("{s:o,s:s,s:i,s:i}", "Daemon", daemon, "Store", c->store_spec,
                    "Rules", c->rules->nelts, "Destinations", c->destinations->nelts);
    return admin_json(r, HTTP_OK, out);
}

/* GET /dlq, GET|DELETE /dlq/{id}, POST /dlq/{id}/redrive, POST /dlq/redrive */
static int admin_dlq(request_rec *r, const char *rest)
{
    const char *err, *slash;
    json_t *req;

    if (!*rest || !strcmp(rest, "/")) {
        if (r->method_number != M_GET) {
            return admin_error(r, HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed", "use GET");
        }
        req = query_filters(r, json_pack("{s:s}", "op", "dlq-list"), &err);
        return err ? (json_decref(req), admin_error(r, HTTP_BAD_REQUEST, "InvalidParameter", err))
                   : admin_forward(r, req);
    }
    rest++;
    if (!strcmp(rest, "redrive")) {
        if (r->method_number != M_POST) {
            return admin_error(r, HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed", "use POST");
        }
        req = query_filters(r, json_pack("{s:s}", "op", "dlq-redrive"), &err);
        return err ? (json_decref(req), admin_error(r, HTTP_BAD_REQUEST, "InvalidParameter", err))
                   : admin_forward(r, req);
    }
    if ((slash = strchr(rest, '/'))) {
        if (strcmp(slash, "/redrive") || r->method_number != M_POST) {
            return admin_error(r, HTTP_NOT_FOUND, "NotFound", "no such admin resource");
        }
        return admin_forward(r, json_pack("{s:s,s:s%}", "op", "dlq-redrive", "id", rest,
                                          (size_t)(slash - rest)));
    }
    if (r->method_number == M_GET) {
        return admin_forward(r, json_pack("{s:s,s:s}", "op", "dlq-get", "id", rest));
    }
    if (r->method_number == M_DELETE) {
        return admin_forward(r, json_pack("{s:s,s:s}", "op", "dlq-delete", "id", rest));
    }
    return admin_error(r, HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed", "use GET or DELETE");
}

int apidest_admin_handler(request_rec *r)
{
    const char *sub = r->path_info ? r->path_info : "";

    if (!strcmp(sub, "/status")) {
        return r->method_number == M_GET
                   ? admin_status(r)
                   : admin_error(r, HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed", "use GET");
    }
    if (!strncmp(sub, "/dlq", 4) && (sub[4] == '\0' || sub[4] == '/')) {
        return admin_dlq(r, sub + 4);
    }
    return admin_error(r, HTTP_NOT_FOUND, "NotFound", "no such admin resource");
}
