#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_log.h>
#include <mod_status.h>
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

static int admin_status(request_rec *r)
{
    const ad_conf_t *c = apidest_conf(r->server);
    int alive;
    pid_t pid = apidest_daemon_pid(r->pool, &alive);

    return admin_json(r, HTTP_OK,
                      json_pack("{s:{s:s,s:I},s:s,s:i,s:i}", "Daemon", "State",
                                alive ? "up" : "down", "Pid", (json_int_t)pid,
                                "Store", c->store_spec, "Rules", c->rules->nelts,
                                "Destinations", c->destinations->nelts));
}

int apidest_admin_handler(request_rec *r)
{
    const char *sub = r->path_info ? r->path_info : "";

    if (r->method_number == M_GET && !strcmp(sub, "/status")) {
        return admin_status(r);
    }
    return admin_json(r, HTTP_NOT_FOUND,
                      json_pack("{s:s,s:s}", "error", "NotFound", "message",
                                "no such admin resource"));
}
