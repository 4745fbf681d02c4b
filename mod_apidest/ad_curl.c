#include <string.h>
#include <stdlib.h>
#include <ctype.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>
#include <apr_strings.h>
#include <apr_date.h>

#include "ad_http.h"
#include "ad_record.h"
#include "ad_netcheck.h"
#include "ad_log.h"
#include "ad_util.h"

/* EventBridge reads at most the first MiB of a response (its Range header). */
#define MAX_RESPONSE_BODY (1024 * 1024)
#define USER_AGENT        "Amazon/EventBridge/ApiDestinations"
#define CAPTURE_MAX       (64 * 1024)
#define RETRY_AFTER_MAX   (7L * 24 * 3600)

typedef struct transfer_t transfer_t;
struct transfer_t {
    ad_http_engine_t *engine;
    CURL *easy;
    struct curl_slist *headers;
    ad_http_done_cb *cb;
    void *baton;
    int allow_private;
    const char *refused; /* class of an address the policy refused */
    int connected;       /* a socket was opened to an address it allowed */
    apr_size_t body_seen;
    char *body;          /* captured response, malloc'd */
    apr_size_t body_len; /* bytes in body */
    int capture;         /* 1: capture; 2: over CAPTURE_MAX, none kept */
    apr_interval_time_t retry_after;
    /* What the easy handle is configured for (malloc'd): an attempt with
     * the same method and CA file only changes its per-attempt options. */
    char *conf_method;
    char *conf_ca;
    transfer_t *next; /* free list or active list */
    transfer_t *prev; /* active list */
};

struct ad_http_engine_t {
    CURLM *multi;
    struct curl_slist *resolve; /* APIDEST_TEST_RESOLVE pins, tests only */
    transfer_t *free_list;
    transfer_t *active; /* running transfers, to abandon on destroy */
    int running;
};

apr_status_t ad_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? APR_SUCCESS : APR_EGENERAL;
}

/* For tests only: APIDEST_TEST_RESOLVE="name:port:address[,address...][;...]"
 * pins names the way a hostile DNS answer would, so the egress check can be
 * shown to judge every address actually connected to. */
static struct curl_slist *test_resolve_list(void)
{
    const char *env = getenv("APIDEST_TEST_RESOLVE");
    struct curl_slist *list = NULL;
    char buf[512], *tok, *save = NULL;

    if (!env || strlen(env) >= sizeof(buf)) {
        return NULL;
    }
    strcpy(buf, env);
    for (tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        list = curl_slist_append(list, tok);
    }
    return list;
}

static apr_status_t engine_cleanup(void *data)
{
    ad_http_engine_destroy(data);
    return APR_SUCCESS;
}

apr_status_t ad_http_engine_create(apr_pool_t *p, int max_host_conns, ad_http_engine_t **out)
{
    ad_http_engine_t *e = apr_pcalloc(p, sizeof(*e));

    if (!(e->multi = curl_multi_init())) {
        return APR_ENOMEM;
    }
    curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_host_conns);
    e->resolve = test_resolve_list();
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)max_host_conns * 4);
    apr_pool_cleanup_register(p, e, engine_cleanup, apr_pool_cleanup_null);
    *out = e;
    return APR_SUCCESS;
}

/* Part of an answer would be misread (curl may still count a transfer
 * whose write failed as complete): keep none of it. */
static void drop_capture(transfer_t *t)
{
    free(t->body);
    t->body = NULL;
    t->body_len = 0;
    t->capture = 2;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *data)
{
    transfer_t *t = data;
    size_t n = size * nmemb;

    if (t->capture == 1 && t->body_len + n > CAPTURE_MAX) {
        drop_capture(t);
    }
    if (t->capture == 1) {
        char *nb = realloc(t->body, t->body_len + n + 1);
        if (!nb) {
            drop_capture(t);
            return 0;
        }
        t->body = nb;
        memcpy(t->body + t->body_len, ptr, n);
        t->body_len += n;
        t->body[t->body_len] = '\0';
    }
    t->body_seen += n;
    /* The status is known by now; stop reading past the cap. */
    return t->body_seen > MAX_RESPONSE_BODY ? 0 : n;
}

static apr_interval_time_t parse_retry_after(const char *v)
{
    apr_time_t when;
    char *end;
    long secs;

    while (*v == ' ' || *v == '\t') {
        v++;
    }
    secs = strtol(v, &end, 10);
    if (end != v && (*end == '\0' || isspace((unsigned char)*end))) {
        if (secs > RETRY_AFTER_MAX) {
            secs = RETRY_AFTER_MAX; /* past any event's age, and no overflow */
        }
        return secs < 0 ? -2 : apr_time_from_sec(secs); /* < 0: stop retrying */
    }
    when = apr_date_parse_http(v);
    if (when == APR_DATE_BAD) {
        return -1;
    }
    return when > apr_time_now() ? when - apr_time_now() : 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *data)
{
    transfer_t *t = data;
    size_t n = size * nitems;
    char line[256];

    if (n > 12 && n < sizeof(line) && !strncasecmp(buf, "Retry-After:", 12)) {
        memcpy(line, buf + 12, n - 12);
        line[n - 12] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        t->retry_after = parse_retry_after(line);
    }
    return n;
}

/* The policy is applied to the address curl is about to connect to, after
 * DNS, so a name that resolves to a private address cannot slip past. */
static curl_socket_t on_open_socket(void *data, curlsocktype purpose, struct curl_sockaddr *addr)
{
    transfer_t *t = data;
    const char *cls;

    (void)purpose;
    if (!t->allow_private && (cls = ad_netcheck_classify(&addr->addr))) {
        t->refused = cls;
        return CURL_SOCKET_BAD;
    }
    t->connected = 1;
    return socket(addr->family, addr->socktype, addr->protocol);
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* The same policy on a connection curl reuses: another destination on the
 * same host, allowed private addresses, may have opened it. */
static int on_prereq(void *data, char *ip, char *local_ip, int port, int local_port)
{
    transfer_t *t = data;
    struct sockaddr_storage ss;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    const char *cls;

    (void)local_ip;
    (void)port;
    (void)local_port;
    if (t->allow_private) {
        return CURL_PREREQFUNC_OK;
    }
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
    }
    else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
    }
    else {
        t->refused = "non-IP";
        t->connected = 0;
        return CURL_PREREQFUNC_ABORT;
    }
    if ((cls = ad_netcheck_classify((struct sockaddr *)&ss))) {
        t->refused = cls;
        t->connected = 0;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}
#endif

/* Names come from the configuration; values may come from an event and
 * are held to ad_has_control(), the rule the configuration's own values
 * meet. */
static int name_is_safe(const char *name)
{
    return *name && !strpbrk(name, "\r\n:");
}

/* NULL, or why a header cannot be sent, in why[n]. The value is never
 * quoted (it may be a secret); the name is, unless it holds CR, LF or ':'
 * (names are token-checked at config time). */
static const char *header_refusal(const ad_header_t *h, char *why, size_t n)
{
    const char *name = name_is_safe(h->name) ? h->name : NULL;

    if (name && !ad_has_control(h->value)) {
        if (strlen(name) + strlen(h->value) + 2 < AD_HTTP_HEADER_LINE_MAX) {
            return NULL;
        }
        snprintf(why, n, "header %.64s: the line is over 8 KiB", name);
    }
    else if (name) {
        snprintf(why, n, "header %.64s: the value holds a forbidden character", name);
    }
    else {
        snprintf(why, n, "a header name holds a forbidden character");
    }
    return why;
}

/* The request's header list for curl; *refused is NULL, or why (in why[n])
 * a header could not be sent and the list is not to be used. */
static struct curl_slist *build_headers(const ad_http_request_t *req, char *why, size_t n,
                                        const char **refused)
{
    struct curl_slist *list = NULL;
    int i, has_ct = 0;

    *refused = NULL;
    for (i = 0; req->headers && i < req->headers->nelts; i++) {
        const ad_header_t *h = &APR_ARRAY_IDX(req->headers, i, ad_header_t);
        char line[AD_HTTP_HEADER_LINE_MAX];
        if ((*refused = header_refusal(h, why, n))) {
            break;
        }
        /* curl leaves out a header without a value; a blank Content-Type
         * (an event's missing field) must not also stop the default */
        if (h->value[strspn(h->value, " \t")] == '\0') {
            continue;
        }
        snprintf(line, sizeof(line), "%s: %s", h->name, h->value);
        has_ct |= !strcasecmp(h->name, "Content-Type");
        list = curl_slist_append(list, line);
    }
    if (!has_ct) {
        list = curl_slist_append(list, "Content-Type: application/json; charset=utf-8");
    }
    list = curl_slist_append(list, "Range: bytes=0-1048575");
    /* EventBridge sends no Accept header; curl would add one. */
    list = curl_slist_append(list, "Accept:");
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    list = curl_slist_append(list, "Expect:");
    return list;
}

/* A recycled handle keeps its options (curl_easy_reset and ~20 setopt calls
 * per attempt were a visible share of the CPU); configure_handle() decides
 * whether they still fit the request. */
static transfer_t *transfer_get(ad_http_engine_t *e)
{
    transfer_t *t = e->free_list;

    if (t) {
        e->free_list = t->next;
    }
    else {
        t = calloc(1, sizeof(*t));
        if (!t || !(t->easy = curl_easy_init())) {
            free(t);
            return NULL;
        }
    }
    t->engine = e;
    t->headers = NULL;
    t->refused = NULL;
    t->connected = 0;
    t->body_seen = 0;
    t->body = NULL;
    t->body_len = 0;
    t->capture = 0;
    t->retry_after = -1;
    t->next = NULL;
    return t;
}

static void transfer_free(transfer_t *t)
{
    curl_easy_cleanup(t->easy);
    free(t->conf_method);
    free(t->conf_ca);
    free(t);
}

static void active_add(ad_http_engine_t *e, transfer_t *t)
{
    t->prev = NULL;
    t->next = e->active;
    if (e->active) {
        e->active->prev = t;
    }
    e->active = t;
}

static void active_remove(ad_http_engine_t *e, transfer_t *t)
{
    if (t->prev) {
        t->prev->next = t->next;
    }
    else {
        e->active = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
}

static void transfer_put(ad_http_engine_t *e, transfer_t *t)
{
    /* The handle must not point at the list freed here. */
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    free(t->body);
    t->body = NULL;
    t->next = e->free_list;
    e->free_list = t;
}

/* The method's options that stay with the handle; the body is per attempt. */
static void set_method(CURL *c, const char *method)
{
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    else if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    }
    else if (strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
}

static int method_has_body(const char *method)
{
    return strcmp(method, "GET") && strcmp(method, "HEAD");
}

/* Options every attempt gets, whatever it sends: these carry the security
 * policy (http/https only, no redirects, TLS verified, the egress check on
 * the address actually connected to), so they are set together and only
 * ever after a reset. */
static void set_fixed_options(transfer_t *t, const ad_http_request_t *req)
{
    CURL *c = t->easy;

#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* No proxy from httpd's environment (http_proxy, ...): the egress check
     * would judge the proxy's address instead of the endpoint's. */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip,deflate");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, t);
#if LIBCURL_VERSION_NUM >= 0x075000
    curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, t);
#endif
    curl_easy_setopt(c, CURLOPT_PRIVATE, t);
    if (req->ca_file) {
#if LIBCURL_VERSION_NUM >= 0x074d00
        /* From memory: the file may be readable only by root. Not copied
         * into each of up to ApiDestMaxInFlight handles (ca_pem lives as
         * long as the engine). TLS backends without blobs (GnuTLS before
         * curl 8.x) read the file, as before. */
        struct curl_blob blob = {(void *)req->ca_pem, req->ca_pem_len, CURL_BLOB_NOCOPY};
        if (!req->ca_pem || curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob) != CURLE_OK) {
            curl_easy_setopt(c, CURLOPT_CAINFO, req->ca_file);
        }
#else
        curl_easy_setopt(c, CURLOPT_CAINFO, req->ca_file);
#endif
    }
    set_method(c, req->method);
}

static int same_string(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

/* Reconfigure from scratch only when the method or the CA file differ from
 * what the handle was set up for (a reset is the only sure way back from a
 * custom method, HEAD or another CA file). 0: out of memory. */
static int configure_handle(transfer_t *t, const ad_http_request_t *req)
{
    if (t->conf_method && !strcmp(t->conf_method, req->method) &&
        same_string(t->conf_ca, req->ca_file)) {
        return 1;
    }
    free(t->conf_method);
    free(t->conf_ca);
    t->conf_method = strdup(req->method);
    t->conf_ca = req->ca_file ? strdup(req->ca_file) : NULL;
    if (!t->conf_method || (req->ca_file && !t->conf_ca)) {
        free(t->conf_method);
        t->conf_method = NULL; /* reconfigure next time */
        return 0;
    }
    curl_easy_reset(t->easy);
    set_fixed_options(t, req);
    return 1;
}

static void set_attempt_options(transfer_t *t, const ad_http_request_t *req)
{
    CURL *c = t->easy;

    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers);
    if (t->engine->resolve) {
        /* curl loads the pins once per setopt: renew them per attempt. */
        curl_easy_setopt(c, CURLOPT_RESOLVE, t->engine->resolve);
    }
    if (method_has_body(req->method)) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
}

static void finish_now(ad_http_done_cb *cb, void *baton, ad_http_error_t err, const char *msg)
{
    ad_http_result_t res;
    memset(&res, 0, sizeof(res));
    res.error = err;
    res.message = msg;
    res.retry_after = -1;
    cb(baton, &res);
}

apr_status_t ad_http_submit(ad_http_engine_t *e, const ad_http_request_t *req, ad_http_done_cb *cb,
                            void *baton)
{
    transfer_t *t;
    char why[128];
    const char *refused;

    if (!(t = transfer_get(e))) {
        return APR_ENOMEM;
    }
    t->cb = cb;
    t->baton = baton;
    t->allow_private = req->allow_private;
    t->capture = req->capture_body;
    t->headers = build_headers(req, why, sizeof(why), &refused);
    if (refused) {
        transfer_put(e, t);
        finish_now(cb, baton, AD_HTTP_INVALID, refused);
        return APR_SUCCESS;
    }
    if (strlen(req->url) >= AD_HTTP_URL_MAX) {
        /* never quoted: the query may hold a connection's parameters */
        transfer_put(e, t);
        finish_now(cb, baton, AD_HTTP_INVALID,
                   "the URL with its path and query parameters is over 8 KiB");
        return APR_SUCCESS;
    }
    if (ad_url_has_dot_segment(req->url)) {
        /* A PathParameter of "." or ".." from the event, or holding one
         * between slashes ("../admin", encoded "..%2Fadmin"): curl, or a
         * server that decodes first, would resolve it and send the request
         * (and its credentials) to another path. */
        transfer_put(e, t);
        finish_now(cb, baton, AD_HTTP_INVALID,
                   "a path parameter is or holds a '.' or '..' segment");
        return APR_SUCCESS;
    }
    if (!configure_handle(t, req)) {
        transfer_put(e, t);
        return APR_ENOMEM;
    }
    set_attempt_options(t, req);
    if (curl_multi_add_handle(e->multi, t->easy) != CURLM_OK) {
        transfer_put(e, t);
        return APR_EGENERAL;
    }
    active_add(e, t);
    e->running++;
    return APR_SUCCESS;
}

static ad_http_error_t classify(CURLcode rc, const transfer_t *t, long status)
{
    /* Refused only when no address was allowed: with a name that resolves
     * to several, curl goes on to the next address after a refused one. */
    if (t->refused && !t->connected) {
        return AD_HTTP_REFUSED;
    }
    /* A final status is the target's answer, whatever befell the body
     * after it (discarded anyway): a body cut short turned a 200 into a
     * retry, delivered twice, and a 400 into a retryable failure. A body
     * still arriving at the deadline stays a timeout. */
    if (rc == CURLE_OK || (status >= 200 && rc != CURLE_OPERATION_TIMEDOUT)) {
        return AD_HTTP_OK;
    }
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return AD_HTTP_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return AD_HTTP_CONNECT;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return AD_HTTP_INVALID;
    default:
        return AD_HTTP_FAILED;
    }
}

static void complete(ad_http_engine_t *e, CURL *easy, CURLcode rc)
{
    transfer_t *t = NULL;
    ad_http_result_t res;
    long status = 0, connects = 1;
    char msg[160];
    ad_http_done_cb *cb;
    void *baton;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_multi_remove_handle(e->multi, easy);
    active_remove(e, t);
    e->running--;
    memset(&res, 0, sizeof(res));
    res.error = classify(rc, t, status);
    res.status = res.error == AD_HTTP_OK ? (int)status : 0;
    res.retry_after = t->retry_after;
    res.reused = connects == 0;
    if (res.error == AD_HTTP_REFUSED) {
        snprintf(msg, sizeof(msg),
                 "refused to connect to a %s address "
                 "(set AllowPrivateEndpoint on to allow it)",
                 t->refused);
    }
    else if (res.error != AD_HTTP_OK) {
        snprintf(msg, sizeof(msg), "%s", curl_easy_strerror(rc));
    }
    else {
        snprintf(msg, sizeof(msg), "HTTP %ld", status);
    }
    res.message = msg;
    res.body = t->body;
    res.body_len = t->body_len;
    cb = t->cb;
    baton = t->baton;
    cb(baton, &res); /* before transfer_put frees the captured body */
    transfer_put(e, t);
}

/* Returns how many transfers finished (their callbacks ran). */
static int perform_and_complete(ad_http_engine_t *e)
{
    CURLMsg *m;
    int still, left, n = 0;

    curl_multi_perform(e->multi, &still);
    while ((m = curl_multi_info_read(e->multi, &left))) {
        if (m->msg == CURLMSG_DONE) {
            complete(e, m->easy_handle, m->data.result);
            n++;
        }
    }
    return n;
}

int ad_http_run(ad_http_engine_t *e, int timeout_ms)
{
    /* Finished transfers return at once: their callers hold the outcomes
     * until this returns, so waiting first would delay them. */
    if (!perform_and_complete(e) && timeout_ms > 0) {
        curl_multi_poll(e->multi, NULL, 0, timeout_ms, NULL);
        perform_and_complete(e);
    }
    return e->running;
}

void ad_http_wakeup(ad_http_engine_t *e)
{
    curl_multi_wakeup(e->multi);
}

void ad_http_engine_destroy(ad_http_engine_t *e)
{
    transfer_t *t;

    if (!e->multi) {
        return;
    }
    /* Abandoned requests get no callback: their records are still queued. */
    while ((t = e->active)) {
        curl_multi_remove_handle(e->multi, t->easy);
        active_remove(e, t);
        transfer_put(e, t);
    }
    while ((t = e->free_list)) {
        e->free_list = t->next;
        transfer_free(t);
    }
    curl_multi_cleanup(e->multi);
    e->multi = NULL;
    curl_slist_free_all(e->resolve);
    e->resolve = NULL;
}
