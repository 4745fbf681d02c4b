#include <string.h>
#include <ctype.h>

#include <apr_strings.h>
#include <apr_base64.h>
#include <jansson.h>

#include "ad_auth.h"
#include "ad_record.h"
#include "ad_util.h"

#define DEFAULT_TOKEN_LIFETIME apr_time_from_sec(3600)
#define TOKEN_LIFETIME_MIN     1
#define TOKEN_LIFETIME_MAX     (24 * 3600)

const char *ad_auth_type_name(ad_auth_type_t t)
{
    switch (t) {
    case AD_AUTH_BASIC:
        return "BASIC";
    case AD_AUTH_API_KEY:
        return "API_KEY";
    case AD_AUTH_OAUTH:
        return "OAUTH_CLIENT_CREDENTIALS";
    default:
        return "NONE";
    }
}

static const char *basic_credentials(apr_pool_t *p, const char *user, const char *secret)
{
    const char *plain = apr_pstrcat(p, user, ":", secret, NULL);
    char *enc = apr_palloc(p, apr_base64_encode_len((int)strlen(plain)));

    apr_base64_encode(enc, plain, (int)strlen(plain));
    return apr_pstrcat(p, "Basic ", enc, NULL);
}

static void set_header(apr_pool_t *p, apr_array_header_t **headers, const char *name,
                       const char *value)
{
    apr_array_header_t *out =
        apr_array_make(p, (*headers ? (*headers)->nelts : 0) + 1, sizeof(ad_header_t));
    ad_header_t *h;
    int i;

    for (i = 0; *headers && i < (*headers)->nelts; i++) {
        const ad_header_t *old = &APR_ARRAY_IDX(*headers, i, ad_header_t);
        if (strcasecmp(old->name, name)) {
            *(ad_header_t *)apr_array_push(out) = *old;
        }
    }
    h = apr_array_push(out);
    h->name = name;
    h->value = value;
    *headers = out;
}

/* url with key=value as the only pair of that name in its query: the
 * connection's value wins, as its headers and body parameters do. A
 * target's QueryParameter of the same name (perhaps from the event) used
 * to stay first, and servers that read the first of two took it. */
static const char *set_query(apr_pool_t *p, const char *url, const char *key, const char *value)
{
    const char *q = strchr(url, '?'), *ek = ad_url_encode(p, key);
    apr_size_t klen = strlen(ek);
    apr_array_header_t *pairs = apr_array_make(p, 8, sizeof(const char *));
    char *rest, *tok, *last;

    if (q) {
        rest = apr_pstrdup(p, q + 1);
        for (tok = apr_strtok(rest, "&", &last); tok; tok = apr_strtok(NULL, "&", &last)) {
            if (strncmp(tok, ek, klen) || (tok[klen] != '=' && tok[klen] != '\0')) {
                APR_ARRAY_PUSH(pairs, const char *) = tok;
            }
        }
    }
    APR_ARRAY_PUSH(pairs, const char *) = apr_pstrcat(p, ek, "=", ad_url_encode(p, value), NULL);
    return apr_pstrcat(p, q ? apr_pstrmemdup(p, url, (apr_size_t)(q - url)) : url, "?",
                       apr_array_pstrcat(p, pairs, '&'), NULL);
}

/* EventBridge merges body parameters into the JSON event body; a body that
 * is not a JSON object is sent unchanged. */
static void merge_body(apr_pool_t *p, ad_http_request_t *req, const apr_array_header_t *params)
{
    json_error_t jerr;
    json_t *body = NULL;
    int i, any = 0;

    for (i = 0; i < params->nelts; i++) {
        const ad_param_t *prm = APR_ARRAY_IDX(params, i, ad_param_t *);
        if (strcmp(prm->where, "body")) {
            continue;
        }
        /* as the transformer's output was read: a \u0000 from the event
         * must not make the parameters silently go missing */
        if (!body && !(body = json_loadb(req->body, req->body_len, JSON_ALLOW_NUL, &jerr))) {
            return;
        }
        if (!json_is_object(body)) {
            break;
        }
        json_object_set_new(body, prm->key, json_string(prm->value));
        any = 1;
    }
    if (any) {
        req->body = ad_json_dump(p, body, &req->body_len);
    }
    json_decref(body);
}

void ad_auth_apply(apr_pool_t *p, const ad_connection_t *cn, const char *token,
                   ad_http_request_t *req)
{
    apr_array_header_t *headers = (apr_array_header_t *)req->headers;
    int i;

    for (i = 0; i < cn->invocation_params->nelts; i++) {
        const ad_param_t *prm = APR_ARRAY_IDX(cn->invocation_params, i, ad_param_t *);
        if (!strcmp(prm->where, "header")) {
            set_header(p, &headers, prm->key, prm->value);
        }
        else if (!strcmp(prm->where, "query")) {
            req->url = set_query(p, req->url, prm->key, prm->value);
        }
    }
    merge_body(p, req, cn->invocation_params);
    switch (cn->auth) {
    case AD_AUTH_BASIC:
        set_header(p, &headers, "Authorization", basic_credentials(p, cn->user, cn->password));
        break;
    case AD_AUTH_API_KEY:
        set_header(p, &headers, cn->api_key_name, cn->api_key);
        break;
    case AD_AUTH_OAUTH:
        set_header(p, &headers, "Authorization", apr_pstrcat(p, "Bearer ", token, NULL));
        break;
    default:
        break;
    }
    req->headers = headers;
}

void ad_auth_token_request(apr_pool_t *p, const ad_connection_t *cn, int timeout_ms,
                           ad_http_request_t *req)
{
    apr_array_header_t *headers = NULL;
    const char *form = "grant_type=client_credentials";
    const char *url = cn->oauth_endpoint;
    int i, in_query = !strcmp(cn->oauth_method, "GET");

    memset(req, 0, sizeof(*req));
    /* RFC 6749 2.3.1: each is form-urlencoded before Basic; a ':' in the
     * id, or a '%' or '+' in the secret, would otherwise be read back as
     * something else by a server that decodes, as the RFC tells it to */
    set_header(
        p, &headers, "Authorization",
        basic_credentials(p, ad_url_encode(p, cn->client_id), ad_url_encode(p, cn->client_secret)));
    set_header(p, &headers, "Content-Type", "application/x-www-form-urlencoded");
    set_header(p, &headers, "Accept", "application/json");
    for (i = 0; i < cn->oauth_params->nelts; i++) {
        const ad_param_t *prm = APR_ARRAY_IDX(cn->oauth_params, i, ad_param_t *);
        if (!strcmp(prm->where, "header")) {
            set_header(p, &headers, prm->key, prm->value);
        }
        else if (!strcmp(prm->where, "query") || in_query) {
            url = set_query(p, url, prm->key, prm->value);
        }
        else {
            form = apr_pstrcat(p, form, "&", ad_url_encode(p, prm->key), "=",
                               ad_url_encode(p, prm->value), NULL);
        }
    }
    if (in_query) {
        url = apr_pstrcat(p, url, strchr(url, '?') ? "&" : "?", form, NULL);
        form = "";
    }
    req->method = cn->oauth_method;
    req->url = url;
    req->headers = headers;
    req->body = form;
    req->body_len = strlen(form);
    req->timeout_ms = timeout_ms;
    req->allow_private = cn->allow_private;
    req->capture_body = 1;
}

/* Printable ASCII without space (RFC 6750's b64token is a subset): the
 * token goes into an Authorization header. */
static int token_is_sendable(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* expires_in, within bounds: under a second (0.5 truncates to 0) every
 * token would count as expired at once and be fetched again in a loop;
 * above a day (or overflowing) it is kept a day (a 401 refreshes it
 * sooner). */
static apr_interval_time_t token_lifetime(const json_t *exp)
{
    double secs = 0;

    if (json_is_number(exp)) {
        secs = json_number_value(exp);
    }
    else if (json_is_string(exp)) {
        secs = atof(json_string_value(exp));
    }
    if (!(secs > 0)) {
        return DEFAULT_TOKEN_LIFETIME;
    }
    if (secs < TOKEN_LIFETIME_MIN) {
        secs = TOKEN_LIFETIME_MIN;
    }
    if (secs > TOKEN_LIFETIME_MAX) {
        secs = TOKEN_LIFETIME_MAX;
    }
    return apr_time_from_sec((apr_time_t)secs);
}

apr_status_t ad_auth_parse_token(apr_pool_t *p, const char *body, apr_size_t len,
                                 const char **token, apr_interval_time_t *lifetime,
                                 const char **why)
{
    json_error_t jerr;
    json_t *o = body ? ad_json_own(p, json_loadb(body, len, 0, &jerr)) : NULL;
    const json_t *tok = json_object_get(o, "access_token");
    const json_t *exp = json_object_get(o, "expires_in");

    if (!json_is_string(tok) || !json_string_length(tok)) {
        *why = "the token endpoint's answer has no access_token";
        return APR_EINVAL;
    }
    if (json_string_length(tok) + sizeof("Authorization: Bearer ") > AD_HTTP_HEADER_LINE_MAX) {
        /* refused here, the connection is de-authorized and its records
         * wait; sent, every one of them would fail for good */
        *why = "the token endpoint's access_token is too long for an Authorization header";
        return APR_EINVAL;
    }
    if (!token_is_sendable(json_string_value(tok), json_string_length(tok))) {
        *why = "the token endpoint's access_token holds characters a header cannot carry";
        return APR_EINVAL;
    }
    *token = apr_pstrdup(p, json_string_value(tok));
    *lifetime = token_lifetime(exp);
    return APR_SUCCESS;
}
