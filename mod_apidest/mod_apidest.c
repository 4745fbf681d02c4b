/* mod_apidest: EventBridge rules and API destinations in httpd.
 * Glue only: the module record, hooks and the request handlers. */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_main.h>
#include <apr_strings.h>

#include "mod_apidest_config.h"
#include "mod_apidest_daemon.h"
#include "mod_apidest_status.h"
#include "mod_apidest_body.h"
#include "ad_ingest.h"
#include "ad_awsjson.h"
#include "ad_sigv4.h"
#include "ad_record.h"
#include "ad_store.h"
#include "ad_log.h"
#include "ad_util.h"
#include "ad_wire.h"

extern module AP_MODULE_DECLARE_DATA apidest_module;

#define CT_AWSJSON    "application/x-amz-json-1.1"
#define TARGET_PREFIX "AWSEvents."

/* ---- logging bridge for the pure code ------------------------------------ */

static const int level_map[] = {APLOG_EMERG,  APLOG_ALERT, APLOG_CRIT,  APLOG_ERR,   APLOG_WARNING,
                                APLOG_NOTICE, APLOG_INFO,  APLOG_DEBUG, APLOG_TRACE1};

static void log_to_httpd(const char *file, int line, ad_log_level_t level, apr_status_t rv,
                         const char *msg)
{
    ap_log_error_(file, line, apidest_module.module_index, level_map[level], rv, ap_server_conf,
                  "%s", msg);
}

static int log_enabled(ad_log_level_t level)
{
    return APLOG_MODULE_IS_LEVEL(ap_server_conf, apidest_module.module_index, level_map[level]);
}

/* ---- hooks ----------------------------------------------------------------- */

static int apidest_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                server_rec *s)
{
    const char *err = apidest_daemon_socket_refusal(ptemp);
    int problems = apidest_config_check(pconf, s);

    if (err) {
        /* post_config would find it too, after a graceful restart had
         * already been signalled: the whole server went down */
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, ADLOGNO(10053) "%s", err);
        problems++;
    }
    return problems ? !OK : OK;
}

static int apidest_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    double rate;

    ad_log_set(log_to_httpd, log_enabled);
    ad_crc32(0, "", 0); /* fill both CRCs' tables, ask for SSE4.2: before any thread */
    if (getenv("APIDEST_TEST_RESOLVE")) {
        ap_log_error(
            APLOG_MARK, APLOG_NOTICE, 0, s,
            ADLOGNO(
                10031) "APIDEST_TEST_RESOLVE is set: outbound names are pinned (for tests only)");
    }
    if ((rate = ad_clock_init()) != 1.0) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     ADLOGNO(10030) "APIDEST_TEST_CLOCK_RATE is set: the clock runs %.0f times "
                                    "faster (for tests only)",
                     rate);
    }
    if (apidest_metrics_init(pconf, s) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ad_awsjson_set_metrics(apidest_metrics());
    return apidest_daemon_init(pconf, s);
}

/* ---- ingest: SetHandler apidest-events ------------------------------------ */

static int send_body(request_rec *r, int status, const char *ctype, const char *body,
                     apr_size_t len)
{
    r->status = status;
    ap_set_content_type(r, ctype);
    ap_set_content_length(r, len);
    ap_rwrite(body, (int)len, r);
    return OK;
}

/* The answer's type follows the request's form, errors too: AWS JSON 1.1
 * when X-Amz-Target names the operation, plain JSON otherwise. */
static const char *answer_type(const request_rec *r)
{
    return apr_table_get(r->headers_in, "X-Amz-Target") ? CT_AWSJSON : "application/json";
}

/* AWS JSON 1.1 errors: status, x-amzn-ErrorType and {"__type","message"}. */
static int send_aws_error(request_rec *r, int status, const char *type, const char *msg)
{
    apr_size_t len;
    char *body = ad_awsjson_error_body(r->pool, type, msg, &len);

    apr_table_setn(r->headers_out, "x-amzn-ErrorType", type);
    return send_body(r, status, answer_type(r), body, len);
}

static int is_json_type(const char *ct, const char *want)
{
    apr_size_t n = strlen(want);
    return ct && !strncasecmp(ct, want, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

#define WHY_UNCONFIRMED                                                                            \
    "The event store did not confirm in time; the events may have been accepted. Retry: an "       \
    "event sent again may be delivered twice."
#define WHY_UNREACHABLE "The event store is not reachable; nothing was accepted. Retry."

/* OK, or 503 with *why: the AWS clients retry a 503. */
static int store_records(request_rec *r, ad_ingest_t *in, const apr_array_header_t *blobs,
                         const char **why)
{
    switch (apidest_daemon_store(r, blobs)) {
    case APIDEST_STORE_OK:
        return OK;
    case APIDEST_STORE_REFUSED:
        /* Nothing was stored: every entry that would have had an id fails,
         * retryably, as AWS reports a partial outage. */
        ad_ingest_fail_all(in, "InternalFailure", "Internal Service Failure");
        return OK;
    case APIDEST_STORE_UNCONFIRMED:
        *why = WHY_UNCONFIRMED;
        return HTTP_SERVICE_UNAVAILABLE;
    default:
        *why = WHY_UNREACHABLE;
        return HTTP_SERVICE_UNAVAILABLE;
    }
}

/* Records that do not fit one STORE message (large events, each matched by
 * many targets) go in several, an entry's never divided: each entry is
 * answered for what became of its own records. A request used to fail
 * whole, retryably, though a retry could never fit either. */
static int store_groups(request_rec *r, ad_ingest_t *in, apr_array_header_t *groups,
                        const char **why)
{
    int g, stored = 0;

    for (g = 0; g < groups->nelts; g++) {
        apr_array_header_t *blobs = APR_ARRAY_IDX(groups, g, apr_array_header_t *);
        apidest_store_result_t res = apidest_daemon_store(r, blobs);
        if (res == APIDEST_STORE_OK) {
            stored = 1;
        }
        else if (res == APIDEST_STORE_REFUSED) {
            ad_ingest_fail_records(in, blobs, "InternalFailure", "Internal Service Failure");
        }
        else if (!stored) {
            *why = res == APIDEST_STORE_UNCONFIRMED ? WHY_UNCONFIRMED : WHY_UNREACHABLE;
            return HTTP_SERVICE_UNAVAILABLE;
        }
        else {
            /* the entries stored before keep their EventIds */
            for (; g < groups->nelts; g++) {
                ad_ingest_fail_records(
                    in, APR_ARRAY_IDX(groups, g, apr_array_header_t *), "InternalFailure",
                    res == APIDEST_STORE_UNCONFIRMED ? WHY_UNCONFIRMED : WHY_UNREACHABLE);
                res = APIDEST_STORE_UNREACHABLE; /* later groups were never sent */
            }
        }
    }
    return OK;
}

/* MatchedEvents and friends are counted only for events that were stored:
 * a match for the entries that kept their EventId (records past one message
 * to apidestd are stored in several, and an entry can fail alone), the
 * request's other counts unless nothing of it was accepted. */
static void count_ingest(const ad_ingest_t *in)
{
    ad_metrics_t *m = apidest_metrics();
    int i, accepted = in->entries->nelts - in->failed_count;

    ad_metric_add(&m->daemon->put_events_requests, 1);
    ad_metric_add(&m->daemon->events_accepted, accepted);
    ad_metric_add(&m->daemon->events_failed, in->failed_count);
    if (!accepted) {
        return;
    }
    ad_metric_add(&m->daemon->unmatched_events, in->unmatched);
    ad_metric_add(&m->daemon->inputs_dropped, in->inputs_dropped);
    for (i = 0; i < in->matched->nelts; i++) {
        int idx = APR_ARRAY_IDX(in->matched, i, int);
        int entry = APR_ARRAY_IDX(in->matched_entry, i, int);
        if (APR_ARRAY_IDX(in->entries, entry, ad_ingest_entry_t).event_id) {
            ad_metric_add(&m->rules[idx].matched_events, 1);
            ad_metric_add(&m->rules[idx].triggered, 1);
        }
    }
}

static const char *sigv4_lookup(void *baton, const char *akid)
{
    return apr_hash_get((apr_hash_t *)baton, akid, APR_HASH_KEY_STRING);
}

static int collect_header(void *arr, const char *name, const char *value)
{
    ad_sigv4_header_t *h = apr_array_push((apr_array_header_t *)arr);
    h->name = name;
    h->value = value;
    return 1;
}

/* The path as the client signed it: raw, before any decoding, without the
 * scheme and authority of an absolute-form request target. */
static const char *signed_path(request_rec *r)
{
    const char *u = r->unparsed_uri, *q, *s;

    if (*u != '/' && (s = strstr(u, "://")) != NULL) {
        u = s + 3 + strcspn(s + 3, "/?");
    }
    q = strchr(u, '?');
    return q ? apr_pstrmemdup(r->pool, u, q - u) : u;
}

/* ApiDestSigV4Key on this location: the request must be signed with one of
 * its keys. With head_only, only the checks that need no body, so that a
 * request without a valid key and date is refused before its body is read.
 * Returns 1 to go on; 0 when the error has been sent. */
static int verify_sigv4(request_rec *r, int head_only, const char *body, apr_size_t len)
{
    apidest_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &apidest_module);
    ad_sigv4_request_t req;
    const char *etype, *msg, *region = apidest_conf(r->server)->region;
    apr_array_header_t *headers;
    int status, rc;

    if (!dc || !apr_hash_count(dc->sigv4_keys)) {
        return 1;
    }
    headers = apr_array_make(r->pool, 16, sizeof(ad_sigv4_header_t));
    apr_table_do(collect_header, headers, r->headers_in, NULL);
    memset(&req, 0, sizeof(req));
    req.method = r->method;
    req.path = signed_path(r);
    req.query = r->args;
    req.headers = headers;
    req.body = body;
    req.body_len = len;
    rc = head_only ? ad_sigv4_check_head(r->pool, &req, "events", region, sigv4_lookup,
                                         dc->sigv4_keys, apr_time_now(), &status, &etype, &msg)
                   : ad_sigv4_verify(r->pool, &req, "events", region, sigv4_lookup, dc->sigv4_keys,
                                     apr_time_now(), &status, &etype, &msg);
    if (rc == AD_SIGV4_OK) {
        return 1;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, ADLOGNO(10032) "request refused: %s", etype);
    send_aws_error(r, status, etype, msg);
    return 0;
}

/* Every operation but PutEvents is answered from the configuration. */
static int answer_api(request_rec *r, const ad_conf_t *c, const char *target, const char *body,
                      apr_size_t len)
{
    const char *etype;
    char *out;
    apr_size_t out_len;
    int rc = ad_awsjson_dispatch(r->pool, c, target, body, len, &out, &out_len, &etype);

    if (etype) {
        apr_table_setn(r->headers_out, "x-amzn-ErrorType", etype);
    }
    return send_body(r, rc, CT_AWSJSON, out, out_len);
}

static int ingest_handler(request_rec *r)
{
    const ad_conf_t *c = apidest_conf(r->server);
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *target = apr_table_get(r->headers_in, "X-Amz-Target");
    ad_ingest_form_t form = target ? AD_INGEST_AWSJSON : AD_INGEST_PLAIN_JSON;
    ad_ingest_t *in;
    char *body = NULL, *out, id[AD_UUID_LEN + 1];
    const char *why = NULL;
    apr_size_t len = 0;
    int rc;

    /* On every answer, errors too: SDKs log it, and support asks for it. */
    ad_uuid4(id);
    apr_table_setn(r->headers_out, "x-amzn-RequestId", apr_pstrdup(r->pool, id));
    if (r->method_number != M_POST) {
        apr_table_setn(r->headers_out, "Allow", "POST");
        return send_aws_error(r, HTTP_METHOD_NOT_ALLOWED, "UnsupportedOperation",
                              "every operation of this API is a POST");
    }
    if (!verify_sigv4(r, 1, NULL, 0)) {
        return OK;
    }
    if (!target && !is_json_type(ct, "application/json") && !is_json_type(ct, CT_AWSJSON)) {
        return send_aws_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType",
                              "send application/json or application/x-amz-json-1.1");
    }
    switch (apidest_read_body(r, c->max_request_size, &body, &len)) {
    case APIDEST_BODY_OK:
        break;
    case APIDEST_BODY_TOO_LARGE:
        return send_aws_error(
            r, HTTP_BAD_REQUEST, "ValidationException",
            apr_psprintf(r->pool,
                         "Request body is larger than ApiDestMaxRequestSize (%" APR_SIZE_T_FMT
                         " bytes) or LimitRequestBody (%" APR_OFF_T_FMT " bytes)",
                         c->max_request_size, (apr_off_t)ap_get_limit_req_body(r)));
    default:
        /* Broken chunked framing, a client gone or a read timeout. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      ADLOGNO(10043) "the request body could not be read");
        return send_aws_error(r, HTTP_BAD_REQUEST, "SerializationException",
                              "The request body could not be read.");
    }
    if (!verify_sigv4(r, 0, body, len)) {
        return OK;
    }
    if (target && strcmp(target, TARGET_PREFIX "PutEvents") != 0) {
        return answer_api(r, c, target, body, len);
    }
    in = ad_ingest_put_events(r->pool, c, form, body, len, ad_now());
    if (in->status != HTTP_OK) {
        return send_aws_error(r, in->status, in->error_type, in->error_message);
    }
    ad_ingest_limit_records(in, ad_store_driver_max_record(c->store_driver), c->store_driver);
    if (in->records->nelts) {
        apr_array_header_t *groups = ad_ingest_store_groups(in, AD_WIRE_MAX_PAYLOAD);
        rc = groups->nelts == 1
                 ? store_records(r, in, APR_ARRAY_IDX(groups, 0, apr_array_header_t *), &why)
                 : store_groups(r, in, groups, &why);
        if (rc != OK) {
            return send_aws_error(r, rc, "ServiceUnavailable", why);
        }
    }
    count_ingest(in);
    out = ad_ingest_response(r->pool, in, &len);
    return send_body(r, HTTP_OK, answer_type(r), out, len);
}

static int apidest_handler(request_rec *r)
{
    if (!r->handler) {
        return DECLINED;
    }
    if (!strcmp(r->handler, "apidest-events")) {
        return ingest_handler(r);
    }
    if (!strcmp(r->handler, "apidest-admin")) {
        return apidest_admin_handler(r);
    }
    return DECLINED;
}

/* PutEvents is not a file: httpd's walk of the filesystem for it (a stat
 * per path component, and unless AllowOverride None a .htaccess open in
 * each directory) cost 7-25 us of a 60-90 us request. A request whose
 * handler will be apidest-events (its <Location> and <If> sections are
 * merged before translate_name) is noted first thing, with its URI; if no
 * module translated it nor changed its URI (mod_rewrite's [PT] does, and
 * returns DECLINED) by the last translate_name hook, map_to_storage skips
 * the walk for it, as mod_proxy does for its requests. <Directory>, <Files>
 * and .htaccess then do not apply to it: its access control is the
 * <Location>'s, as the README says. */
typedef struct {
    const char *uri; /* as the first translate_name hook saw it */
    int confirmed;   /* the last one saw the same, untranslated */
} ingest_note_t;

static int apidest_note_ingest(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *h, *err = NULL;
    ingest_note_t *n;

    if (!cd || !cd->expr_handler) {
        return DECLINED;
    }
    h = ap_expr_str_exec(r, cd->expr_handler, &err);
    if (!err && h && !strcasecmp(h, "apidest-events")) {
        n = apr_pcalloc(r->pool, sizeof(*n));
        n->uri = apr_pstrdup(r->pool, r->uri);
        ap_set_module_config(r->request_config, &apidest_module, n);
    }
    return DECLINED;
}

/* Runs only if no other hook translated the request. */
static int apidest_confirm_ingest(request_rec *r)
{
    ingest_note_t *n = ap_get_module_config(r->request_config, &apidest_module);

    if (n && !strcmp(n->uri, r->uri)) {
        n->confirmed = 1;
    }
    return DECLINED;
}

static int apidest_map_to_storage(request_rec *r)
{
    ingest_note_t *n = ap_get_module_config(r->request_config, &apidest_module);

    return n && n->confirmed ? OK : DECLINED;
}

/* Only the apidest-events handler verifies SigV4: any other handler under a
 * location with ApiDestSigV4Key (the admin API, server-status, files) would
 * answer unsigned requests the operator meant to refuse. Refused instead,
 * as httpd refuses a request whose authentication is misconfigured;
 * subrequests too (an SSI page elsewhere could include the admin status),
 * logged for the main request only. The one exception is the
 * ErrorDocument the operator configured, reached by an internal redirect
 * after an error. */
static int apidest_sigv4_elsewhere(request_rec *r)
{
    apidest_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &apidest_module);

    if (!dc || !apr_hash_count(dc->sigv4_keys) ||
        (r->handler && !strcmp(r->handler, "apidest-events")) ||
        (r->prev && ap_is_HTTP_ERROR(r->prev->status))) {
        return DECLINED;
    }
    ap_log_rerror(APLOG_MARK, r->main ? APLOG_DEBUG : APLOG_ERR, 0, r,
                  ADLOGNO(10057) "ApiDestSigV4Key applies to %s, but only SetHandler "
                                 "apidest-events verifies signatures (handler here: %s); refused",
                  r->uri, r->handler ? r->handler : "none");
    return HTTP_INTERNAL_SERVER_ERROR;
}

static void apidest_child_init(apr_pool_t *pchild, server_rec *s)
{
    apidest_daemon_child_init(pchild, s);
}

static void apidest_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(apidest_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(apidest_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(apidest_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* around the others: a module that translates or rewrites the URI
     * (mod_alias, mod_rewrite) keeps the walk */
    ap_hook_translate_name(apidest_note_ingest, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_translate_name(apidest_confirm_ingest, NULL, NULL, APR_HOOK_LAST);
    ap_hook_map_to_storage(apidest_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_fixups(apidest_sigv4_elsewhere, NULL, NULL, APR_HOOK_LAST);
    ap_hook_child_init(apidest_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    apidest_status_register();
    apidest_body_register();
}

AP_DECLARE_MODULE(apidest) = {STANDARD20_MODULE_STUFF,
                              apidest_create_dir_conf, /* per-directory config: SigV4 keys */
                              apidest_merge_dir_conf,
                              apidest_create_srv_conf, /* per-server config */
                              apidest_merge_srv_conf,  /* the main server's, everywhere */
                              apidest_cmds,
                              apidest_register_hooks,
                              AP_MODULE_FLAG_NONE};
