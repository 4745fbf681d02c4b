#include <string.h>
#include <ctype.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <apr_file_io.h>

#include "ad_log.h"
#include "mod_apidest_config.h"
#include "ad_util.h"
#include "ad_store.h"

APLOG_USE_MODULE(apidest);
extern module AP_MODULE_DECLARE_DATA apidest_module;

/* EventBridge's limits on what the config names. */
#define MAX_NAME_LEN         64
#define MAX_TARGETS_PER_RULE 5
#define MAX_PATTERN_FILE     (64 * 1024)
#define MAX_CA_FILE          (4 * 1024 * 1024)

static const char *const http_methods[] = {"POST", "GET",   "HEAD",   "OPTIONS",
                                           "PUT",  "PATCH", "DELETE", NULL};

void *apidest_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    apidest_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));
    sc->conf = ad_conf_make(p);
    return sc;
}

/* Every virtual host has the main server's configuration: all directives
 * but ApiDestSigV4Key are global, and that one, in a <Location> of a
 * <VirtualHost>, made httpd create the host a configuration of its own,
 * empty (no rules, no store): its PutEvents crashed the child. */
void *apidest_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    return basev;
}

void *apidest_create_dir_conf(apr_pool_t *p, char *dir)
{
    apidest_dir_conf_t *dc = apr_pcalloc(p, sizeof(*dc));
    dc->sigv4_keys = apr_hash_make(p);
    return dc;
}

void *apidest_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    apidest_dir_conf_t *base = basev, *add = addv, *dc = apr_pcalloc(p, sizeof(*dc));
    dc->sigv4_keys = apr_hash_overlay(p, add->sigv4_keys, base->sigv4_keys);
    return dc;
}

ad_conf_t *apidest_conf(server_rec *s)
{
    apidest_srv_conf_t *sc = ap_get_module_config(s->module_config, &apidest_module);
    return sc->conf;
}

static ad_conf_t *cmd_conf(cmd_parms *cmd)
{
    return apidest_conf(cmd->server);
}

/* ---- value checks --------------------------------------------------------- */

static const char *check_name(apr_pool_t *p, const char *what, const char *name)
{
    const char *c;

    if (!*name || strlen(name) > MAX_NAME_LEN) {
        return apr_psprintf(p, "%s name '%s' must be 1 to %d characters", what, name, MAX_NAME_LEN);
    }
    for (c = name; *c; c++) {
        if (!isalnum((unsigned char)*c) && !strchr("._-", *c)) {
            return apr_psprintf(p, "%s name '%s' may only hold letters, digits, '.', '_' and '-'",
                                what, name);
        }
    }
    return NULL;
}

static const char *parse_int(apr_pool_t *p, const char *what, const char *arg, long lo, long hi,
                             int *out)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (!*arg || *end || v < lo || v > hi) {
        return apr_psprintf(p, "%s must be an integer from %ld to %ld, not '%s'", what, lo, hi,
                            arg);
    }
    *out = (int)v;
    return NULL;
}

static const char *parse_flag(apr_pool_t *p, const char *what, const char *arg, int *out)
{
    if (!strcasecmp(arg, "on")) {
        *out = 1;
    }
    else if (!strcasecmp(arg, "off")) {
        *out = 0;
    }
    else {
        return apr_psprintf(p, "%s must be on or off, not '%s'", what, arg);
    }
    return NULL;
}

/* A URL that did not parse, as an error message may show it: everything
 * from the scheme's "//" to the last '@' is replaced (a password may hold
 * '/', '?' or '#'; hiding too much is harmless here). */
static const char *url_shown(apr_pool_t *p, const char *url)
{
    const char *auth = strstr(url, "//"), *at = strrchr(url, '@');

    auth = auth ? auth + 2 : url;
    if (!at || at < auth) {
        return url;
    }
    return apr_pstrcat(p, apr_pstrmemdup(p, url, (apr_size_t)(auth - url)),
                       "(credentials withheld)", at, NULL);
}

/* Digits only, 1..65535 (apr_uri_parse wraps a larger port silently). */
static int port_ok(const char *s)
{
    long v = 0;

    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || (v = v * 10 + (*s - '0')) > 65535) {
            return 0;
        }
    }
    return v > 0;
}

static const char *check_endpoint(apr_pool_t *p, const char *url)
{
    apr_uri_t u;

    if (apr_uri_parse(p, url, &u) != APR_SUCCESS || !u.scheme || !u.hostname || !*u.hostname) {
        return apr_psprintf(p, "Endpoint '%s' is not an absolute http(s) URL", url_shown(p, url));
    }
    if (u.user || u.password) {
        /* Credentials belong to a connection (pending records are sent with
         * its secrets of now); and this message must not print them. */
        char origin[AD_URL_ORIGIN_MAX];
        ad_url_origin(url, origin);
        return apr_psprintf(p, "Endpoint for %s holds user:password@: use an ApiDestConnection",
                            origin);
    }
    if (strcasecmp(u.scheme, "http") && strcasecmp(u.scheme, "https")) {
        return apr_psprintf(p, "Endpoint '%s': only http and https are allowed", url);
    }
    if (strpbrk(url, " \t") || ad_has_control(url)) {
        return apr_psprintf(p, "Endpoint '%s' holds white space or a control character", url);
    }
    if (u.port_str && *u.port_str && !port_ok(u.port_str)) {
        return apr_psprintf(p, "Endpoint '%s': the port must be 1 to 65535", url);
    }
    /* DNS's limit; a longer one would also not fit AD_URL_ORIGIN_MAX, and
     * deliveries would go to the host cut short. */
    if (strlen(u.hostname) > 253) {
        return apr_psprintf(p, "Endpoint '%.64s...': the host name is longer than 253 characters",
                            url);
    }
    if (strpbrk(u.hostname, "<>\"{}|\\^`")) {
        return apr_psprintf(p, "Endpoint '%s': the host holds a character no host name has", url);
    }
    /* Never sent, and the query parameters added after it (a connection's
     * API key among them) would go into it, unseen. */
    if (u.fragment || strchr(url, '#')) {
        return apr_psprintf(p, "Endpoint '%s': a #fragment is not sent to a server; remove it",
                            url);
    }
    /* A PathParameter fills a '*' with event data: in the host or the query
     * it would choose where the connection's credentials go. */
    if (strchr(u.hostinfo ? u.hostinfo : "", '*') || strchr(u.query ? u.query : "", '*')) {
        return apr_psprintf(p, "Endpoint '%s': a '*' (PathParameter) may only stand in the path",
                            url);
    }
    if (ad_url_has_dot_segment(url)) {
        return apr_psprintf(p, "Endpoint '%s' has a '.' or '..' path segment", url);
    }
    return NULL;
}

static const char *check_method(apr_pool_t *p, const char *m)
{
    int i;
    for (i = 0; http_methods[i]; i++) {
        if (!strcmp(m, http_methods[i])) {
            return NULL;
        }
    }
    return apr_psprintf(
        p, "HttpMethod '%s' must be one of POST, GET, HEAD, OPTIONS, PUT, PATCH, DELETE", m);
}

static const char *read_text_file(cmd_parms *cmd, const char *what, const char *path,
                                  const char **text);

/* Opens a regular file only: a FIFO would hang configtest in a blocking
 * open(), a directory reads as empty. Opened without blocking, then checked
 * on the descriptor, so nothing can be swapped in between. */
static apr_status_t open_regular(cmd_parms *cmd, const char *path, apr_file_t **f, apr_finfo_t *fi)
{
    apr_status_t rv =
        apr_file_open(f, path, APR_FOPEN_READ | APR_FOPEN_NONBLOCK, 0, cmd->temp_pool);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if ((rv = apr_file_info_get(fi, APR_FINFO_TYPE | APR_FINFO_SIZE, *f)) != APR_SUCCESS ||
        fi->filetype != APR_REG) {
        apr_file_close(*f);
        return rv != APR_SUCCESS ? rv : APR_EBADF;
    }
    return APR_SUCCESS;
}

/* ---- secrets and parameters ----------------------------------------------- */

/* "env:NAME", "file:/path" (read now, trailing newline stripped) or the
 * value itself. Errors never echo a secret. */
#define SECRET_MAX 4096

static const char *read_secret(cmd_parms *cmd, const char *ref, const char **out)
{
    apr_file_t *f;
    char buf[SECRET_MAX + 3]; /* one byte past the limit and a CR LF */
    apr_size_t n = sizeof(buf);

    if (!strncmp(ref, "env:", 4)) {
        if (!(*out = getenv(ref + 4)) || !**out) {
            return apr_psprintf(cmd->pool, "environment variable %s is not set", ref + 4);
        }
        *out = apr_pstrdup(cmd->pool, *out);
        return NULL;
    }
    if (!strncmp(ref, "file:", 5)) {
        const char *path = ap_server_root_relative(cmd->temp_pool, ref + 5);
        apr_finfo_t fi;
        apr_status_t rv = path ? open_regular(cmd, path, &f, &fi) : APR_EBADPATH;
        if (rv != APR_SUCCESS) {
            return apr_psprintf(cmd->pool, "secret file %s cannot be read%s", ref + 5,
                                rv == APR_EBADF ? ": not a regular file" : "");
        }
        if (apr_file_read(f, buf, &n) != APR_SUCCESS && n == 0) {
            n = 0;
        }
        apr_file_close(f);
        if (n == sizeof(buf)) { /* more than a secret and its line end */
            return apr_psprintf(cmd->pool, "secret file %s is over %d bytes", ref + 5, SECRET_MAX);
        }
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
            n--;
        }
        if (n == 0) {
            return apr_psprintf(cmd->pool, "secret file %s is empty", ref + 5);
        }
        if (n > SECRET_MAX) { /* never cut short: it would fail every call */
            return apr_psprintf(cmd->pool, "secret file %s is over %d bytes", ref + 5, SECRET_MAX);
        }
        if (memchr(buf, '\0', n)) { /* it would be cut short at the NUL */
            return apr_psprintf(cmd->pool, "secret file %s holds a NUL byte", ref + 5);
        }
        *out = apr_pstrmemdup(cmd->pool, buf, n);
        return NULL;
    }
    *out = apr_pstrdup(cmd->pool, ref);
    return NULL;
}

static int is_secret_ref(const char *v)
{
    return !strncmp(v, "env:", 4) || !strncmp(v, "file:", 5);
}

static const char *check_header_name(apr_pool_t *p, const char *name)
{
    const char *c;

    if (!*name || strlen(name) > 512) {
        return apr_psprintf(p, "header name '%s' must be 1 to 512 characters", name);
    }
    for (c = name; *c; c++) {
        if (!isalnum((unsigned char)*c) && !strchr("!#$%&'*+-.^_`|~", *c)) {
            return apr_psprintf(p,
                                "header name '%s' holds a character not allowed in "
                                "HTTP header names",
                                name);
        }
    }
    return NULL;
}

static const char *check_static_value(apr_pool_t *p, const char *what, const char *v)
{
    const char *c;

    if (strlen(v) > 512) {
        return apr_psprintf(p, "%s value is longer than 512 characters", what);
    }
    for (c = v; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            return apr_psprintf(p, "%s value holds a control character", what);
        }
    }
    return NULL;
}

/* Headers EventBridge strips from configured parameters
 * (eventbridge-semantics.md section 5), and those API Gateway targets
 * forbid (section 7). */
static const char *const eb_forbidden_headers[] = {"A-IM",
                                                   "Accept-Charset",
                                                   "Accept-Datetime",
                                                   "Accept-Encoding",
                                                   "Cache-Control",
                                                   "Connection",
                                                   "Content-Encoding",
                                                   "Content-Length",
                                                   "Content-MD5",
                                                   "Date",
                                                   "Expect",
                                                   "Forwarded",
                                                   "From",
                                                   "Host",
                                                   "HTTP2-Settings",
                                                   "If-Match",
                                                   "If-Modified-Since",
                                                   "If-None-Match",
                                                   "If-Range",
                                                   "If-Unmodified-Since",
                                                   "Max-Forwards",
                                                   "Origin",
                                                   "Pragma",
                                                   "Proxy-Authorization",
                                                   "Range",
                                                   "Referer",
                                                   "TE",
                                                   "Trailer",
                                                   "Transfer-Encoding",
                                                   "User-Agent",
                                                   "Upgrade",
                                                   "Via",
                                                   "Warning",
                                                   NULL};
static const char *const apigw_forbidden_headers[] = {"Authorization", "WWW-Authenticate",
                                                      "X-Forwarded-For", NULL};

static int in_list(const char *const *list, const char *name)
{
    for (; *list; list++) {
        if (!strcasecmp(*list, name)) {
            return 1;
        }
    }
    return 0;
}

static const char *check_forbidden_header(apr_pool_t *p, const char *name, int plain)
{
    if (in_list(eb_forbidden_headers, name) ||
        (plain && (in_list(apigw_forbidden_headers, name) || !strncasecmp(name, "X-Amz", 5)))) {
        return apr_psprintf(p,
                            "header '%s' may not be set: EventBridge does not allow it "
                            "on %s",
                            name, plain ? "API Gateway-style targets" : "API destinations");
    }
    return NULL;
}

/* A static value, a JSON path ("$.detail.x"), or a secret reference. */
static const char *make_param(cmd_parms *cmd, const char *where, const char *key, const char *value,
                              int allow_secret, ad_param_t **out)
{
    ad_param_t *prm = apr_pcalloc(cmd->pool, sizeof(*prm));
    const char *err;

    if (key && !*key) {
        /* "?=v" names no parameter; EventBridge requires a key */
        return apr_psprintf(cmd->pool, "a %s parameter needs a name", where);
    }
    prm->where = where;
    prm->key = apr_pstrdup(cmd->pool, key);
    if (!strncmp(value, "$.", 2) || !strcmp(value, "$")) {
        prm->value = apr_pstrdup(cmd->pool, value);
        if (!(prm->path = ad_jsonpath_compile(cmd->pool, value, &err))) {
            return apr_psprintf(cmd->pool, "JSON path '%s': %s", value, err);
        }
    }
    else if (allow_secret && is_secret_ref(value)) {
        prm->secret = 1;
        /* checked now, not at every send (the messages never show it) */
        if ((err = read_secret(cmd, value, &prm->value)) ||
            (err = check_static_value(cmd->pool, key ? key : "path parameter", prm->value))) {
            return err;
        }
    }
    else {
        prm->value = apr_pstrdup(cmd->pool, value);
        if ((err = check_static_value(cmd->pool, key ? key : "path parameter", value))) {
            return err;
        }
    }
    if (!prm->path && !*prm->value && (!strcmp(where, "header") || !strcmp(where, "query"))) {
        /* a header would not be sent, a query parameter sent as "k=";
         * EventBridge requires a value for both (a body one may be empty) */
        return apr_psprintf(cmd->pool, "%s value is empty", key);
    }
    *out = prm;
    return NULL;
}

/* ---- sections: a small walker over the directive tree -------------------- */

/* Each line inside an <ApiDest...> section is parsed here rather than by
 * httpd, so names like Timeout or Endpoint do not collide with other
 * modules' directives. Errors name the line inside the section. */
typedef const char *section_line_fn(cmd_parms *cmd, void *obj, const char *name, int argc,
                                    char **argv, const ap_directive_t *dir);

static const char *at(apr_pool_t *p, const ap_directive_t *d, const char *msg)
{
    return apr_psprintf(p, "%s (at %s:%d)", msg, d->filename, d->line_num);
}

/* Words as httpd splits them; a quoted empty word ("" or '') counts, even
 * the last one (Header X-Empty "" is two words, not one). */
static int split_args(apr_pool_t *p, const char *args, char **argv, int max)
{
    int n = 0;

    while (n < max) {
        while (apr_isspace(*args)) {
            args++;
        }
        if (!*args) {
            break;
        }
        argv[n++] = ap_getword_conf(p, &args);
    }
    return n;
}

/* The first word of a line as written, for the lines whose value is JSON
 * between single quotes (or none): httpd's word parser turns "\\" into "\"
 * even inside quotes, which changes a JSON escape (['C:\\temp'] would match
 * "C:<tab>emp", and 'a\\*' would be refused). Only \' is undone; the word
 * ends where httpd's ends. NULL between double quotes, which JSON needs
 * escaped as \": there httpd's escapes stay (\\\" is JSON's \"). */
static char *json_word(apr_pool_t *p, const char *args)
{
    const char *s = args, *e;
    char quote = 0, *out, *w;

    while (apr_isspace(*s)) {
        s++;
    }
    if (*s == '"') {
        return NULL;
    }
    if (*s == '\'') {
        quote = *s++;
    }
    out = w = apr_palloc(p, strlen(s) + 1);
    for (e = s; *e && (quote ? *e != quote : !apr_isspace(*e)); e++) {
        if (*e == '\\' && quote && e[1] == quote) {
            *w++ = *++e;
        }
        else if (*e == '\\' && e[1] == '\\') {
            *w++ = *e++;
            *w++ = *e;
        }
        else {
            *w++ = *e;
        }
    }
    *w = '\0';
    return out;
}

static int is_json_line(const char *name)
{
    return !strcasecmp(name, "EventPattern") || !strcasecmp(name, "Input") ||
           !strcasecmp(name, "InputTransformer");
}

/* The lines a section may hold more than once; a second of any other line
 * would silently replace the first. */
static int may_repeat(const char *name)
{
    static const char *const many[] = {
        "PathParameter",  "QueryParameter",      "Header", "InputPathsMap",
        "OAuthParameter", "InvocationParameter", NULL};
    int i;

    for (i = 0; many[i]; i++) {
        if (!strcasecmp(name, many[i])) {
            return 1;
        }
    }
    return *name == '<'; /* nested sections: several targets */
}

/* A line and its ...File twin fill the same slot: a section takes one of
 * the two. */
static const char *slot_of(const char *name)
{
    static const char *const twins[] = {"InputTransformer", "EventPattern", NULL};
    apr_size_t n = strlen(name);
    int i;

    for (i = 0; twins[i]; i++) {
        apr_size_t t = strlen(twins[i]);
        if (n == t + 4 && !strncasecmp(name, twins[i], t) && !strcasecmp(name + t, "File")) {
            return twins[i];
        }
    }
    return name;
}

/* NULL, or why the line d may not follow the lines in seen (naming the
 * earlier line; httpd adds this one's). */
static const char *repeated(cmd_parms *cmd, apr_hash_t *seen, const ap_directive_t *d)
{
    const char *slot = slot_of(d->directive);
    const ap_directive_t *first;
    char *key;

    if (may_repeat(d->directive)) {
        return NULL;
    }
    key = apr_pstrdup(cmd->temp_pool, slot);
    ap_str_tolower(key);
    if (!(first = apr_hash_get(seen, key, APR_HASH_KEY_STRING))) {
        apr_hash_set(seen, key, APR_HASH_KEY_STRING, d);
        return NULL;
    }
    if (!strcasecmp(first->directive, d->directive)) {
        return apr_psprintf(cmd->pool, "%s is given twice in this section (first at %s:%d)",
                            d->directive, first->filename, first->line_num);
    }
    return apr_psprintf(cmd->pool,
                        "this section takes one %s or %sFile, not both (the other at %s:%d)", slot,
                        slot, first->filename, first->line_num);
}

static const char *walk_section(cmd_parms *cmd, void *obj, section_line_fn *fn)
{
    const ap_directive_t *d;
    apr_hash_t *seen = apr_hash_make(cmd->temp_pool);

    for (d = cmd->directive->first_child; d; d = d->next) {
        char *argv[8];
        int argc = split_args(cmd->temp_pool, d->args ? d->args : "", argv, 8);
        const char *err;
        char *json;

        if (argc && is_json_line(d->directive) && (json = json_word(cmd->temp_pool, d->args))) {
            argv[0] = json;
        }
        if ((err = repeated(cmd, seen, d))) {
            return at(cmd->pool, d, err);
        }
        if ((err = fn(cmd, obj, d->directive, argc, argv, d))) {
            /* target_section's errors already name their line */
            return !strcasecmp(d->directive, "<ApiDestTarget") ? err : at(cmd->pool, d, err);
        }
    }
    return NULL;
}

static const char *section_name(cmd_parms *cmd, const char *section, const char *arg,
                                const char *what, const char **name)
{
    const char *endp = ap_strrchr_c(arg, '>');
    const char *args;

    if (!endp) {
        return apr_pstrcat(cmd->pool, section, "> directive missing closing '>'", NULL);
    }
    args = apr_pstrndup(cmd->temp_pool, arg, endp - arg);
    *name = ap_getword_conf(cmd->pool, &args);
    if (!**name) {
        return apr_psprintf(cmd->pool, "%s> needs a name", section);
    }
    if (*ap_getword_conf(cmd->temp_pool, &args)) {
        return apr_psprintf(cmd->pool, "%s> takes one name", section);
    }
    return check_name(cmd->pool, what, *name);
}

static const char *want_args(apr_pool_t *p, const char *name, int argc, int n)
{
    if (argc != n) {
        return apr_psprintf(p, "%s takes %d argument%s", name, n, n == 1 ? "" : "s");
    }
    return NULL;
}

/* ---- <ApiDestConnection> ------------------------------------------------ */

static const char *auth_type(apr_pool_t *p, const char *v, ad_auth_type_t *out)
{
    if (!strcmp(v, "BASIC")) {
        *out = AD_AUTH_BASIC;
    }
    else if (!strcmp(v, "API_KEY")) {
        *out = AD_AUTH_API_KEY;
    }
    else if (!strcmp(v, "OAUTH_CLIENT_CREDENTIALS")) {
        *out = AD_AUTH_OAUTH;
    }
    else {
        return apr_psprintf(p,
                            "1 validation error detected: Value '%s' at 'authorizationType' "
                            "failed to satisfy constraint: Member must satisfy enum value set: "
                            "[BASIC, OAUTH_CLIENT_CREDENTIALS, API_KEY]",
                            v);
    }
    return NULL;
}

static const char *param_where(apr_pool_t *p, const char *v)
{
    if (strcmp(v, "header") && strcmp(v, "query") && strcmp(v, "body")) {
        return apr_psprintf(p, "parameter location must be header, query or body, not '%s'", v);
    }
    return NULL;
}

static const char *conn_param(cmd_parms *cmd, apr_array_header_t *list, int argc, char **argv)
{
    const char *err;
    ad_param_t *prm;

    if ((err = want_args(cmd->pool, "a connection parameter", argc, 3)) ||
        (err = param_where(cmd->pool, argv[0])) ||
        (!strcmp(argv[0], "header") && (err = check_header_name(cmd->pool, argv[1]))) ||
        (!strcmp(argv[0], "header") && (err = check_forbidden_header(cmd->pool, argv[1], 0))) ||
        (err = make_param(cmd, apr_pstrdup(cmd->pool, argv[0]), argv[1], argv[2], 1, &prm))) {
        return err;
    }
    if (prm->path) {
        return "connection parameters take static values (or env:/file: secrets), not JSON paths";
    }
    APR_ARRAY_PUSH(list, ad_param_t *) = prm;
    return NULL;
}

static const char *conn_line(cmd_parms *cmd, void *obj, const char *name, int argc, char **argv,
                             const ap_directive_t *dir)
{
    ad_connection_t *cn = obj;
    apr_pool_t *p = cmd->pool;
    const char *err;

    if (!strcasecmp(name, "InvocationParameter")) {
        return conn_param(cmd, cn->invocation_params, argc, argv);
    }
    if (!strcasecmp(name, "OAuthParameter")) {
        return conn_param(cmd, cn->oauth_params, argc, argv);
    }
    if (!strcasecmp(name, "Basic") || !strcasecmp(name, "ApiKey") ||
        !strcasecmp(name, "OAuthClient")) {
        const char **who = name[0] == 'B' || name[0] == 'b'   ? &cn->user
                           : name[0] == 'A' || name[0] == 'a' ? &cn->api_key_name
                                                              : &cn->client_id;
        const char **secret = who == &cn->user           ? &cn->password
                              : who == &cn->api_key_name ? &cn->api_key
                                                         : &cn->client_secret;
        if ((err = want_args(p, name, argc, 2))) {
            return err;
        }
        if (strpbrk(argv[0], ":\r\n") || strlen(argv[0]) > 512 || !*argv[0]) {
            return apr_psprintf(p,
                                "%s: the name must be 1 to 512 characters without ':' or "
                                "control characters",
                                name);
        }
        if (who == &cn->api_key_name && ((err = check_header_name(p, argv[0])) ||
                                         (err = check_forbidden_header(p, argv[0], 0)))) {
            return err;
        }
        *who = apr_pstrdup(p, argv[0]);
        if ((err = read_secret(cmd, argv[1], secret))) {
            return err;
        }
        if (ad_has_control(*secret) || strlen(*secret) > 512) {
            return apr_psprintf(p,
                                "%s: the secret must be at most 512 characters without "
                                "line breaks or other control characters",
                                name);
        }
        return NULL;
    }
    if ((err = want_args(p, name, argc, 1))) {
        return err;
    }
    if (!strcasecmp(name, "AuthorizationType")) {
        if (cn->auth != AD_AUTH_NONE) {
            return "a connection takes one AuthorizationType";
        }
        return auth_type(p, argv[0], &cn->auth);
    }
    if (!strcasecmp(name, "OAuthEndpoint")) {
        if ((err = check_endpoint(p, argv[0]))) {
            return err;
        }
        cn->oauth_endpoint = apr_pstrdup(p, argv[0]);
        return NULL;
    }
    if (!strcasecmp(name, "OAuthHttpMethod")) {
        if (strcmp(argv[0], "GET") && strcmp(argv[0], "POST") && strcmp(argv[0], "PUT")) {
            return "OAuthHttpMethod must be GET, POST or PUT";
        }
        cn->oauth_method = apr_pstrdup(p, argv[0]);
        return NULL;
    }
    if (!strcasecmp(name, "AllowPrivateEndpoint")) {
        return parse_flag(p, name, argv[0], &cn->allow_private);
    }
    if (!strcasecmp(name, "AllowInsecureHttp")) {
        return parse_flag(p, name, argv[0], &cn->allow_insecure_http);
    }
    return apr_psprintf(p, "unknown directive '%s' in <ApiDestConnection>", name);
}

/* Credentials of another authorization type would be read (a secret loaded)
 * and never used: say so instead. */
static const char *conn_other_credentials(const ad_connection_t *cn)
{
    if (cn->auth != AD_AUTH_BASIC && cn->user) {
        return "Basic";
    }
    if (cn->auth != AD_AUTH_API_KEY && cn->api_key_name) {
        return "ApiKey";
    }
    if (cn->auth != AD_AUTH_OAUTH && (cn->client_id || cn->oauth_endpoint)) {
        return cn->client_id ? "OAuthClient" : "OAuthEndpoint";
    }
    if (cn->auth != AD_AUTH_OAUTH &&
        (strcmp(cn->oauth_method, "POST") || cn->oauth_params->nelts)) {
        return cn->oauth_params->nelts ? "OAuthParameter" : "OAuthHttpMethod";
    }
    return NULL;
}

static const char *conn_complete(apr_pool_t *p, const ad_connection_t *cn)
{
    const char *other = cn->auth != AD_AUTH_NONE ? conn_other_credentials(cn) : NULL;

    if (other) {
        return apr_psprintf(p, "%s does not go with AuthorizationType %s", other,
                            cn->auth == AD_AUTH_BASIC     ? "BASIC"
                            : cn->auth == AD_AUTH_API_KEY ? "API_KEY"
                                                          : "OAUTH_CLIENT_CREDENTIALS");
    }
    switch (cn->auth) {
    case AD_AUTH_BASIC:
        return cn->user ? NULL : "a BASIC connection needs Basic <user> <password>";
    case AD_AUTH_API_KEY:
        return cn->api_key_name ? NULL : "an API_KEY connection needs ApiKey <header> <value>";
    case AD_AUTH_OAUTH:
        if (!cn->oauth_endpoint || !cn->client_id) {
            return "an OAUTH_CLIENT_CREDENTIALS connection needs OAuthEndpoint and "
                   "OAuthClient <id> <secret>";
        }
        if (!strncasecmp(cn->oauth_endpoint, "http:", 5) && !cn->allow_insecure_http) {
            return apr_psprintf(p,
                                "OAuthEndpoint %s is plain http: client credentials would "
                                "travel in clear text (set AllowInsecureHttp on to allow it)",
                                cn->oauth_endpoint);
        }
        return NULL;
    default:
        return "a connection needs AuthorizationType BASIC, API_KEY or "
               "OAUTH_CLIENT_CREDENTIALS";
    }
}

static const char *conn_section(cmd_parms *cmd, void *dummy, const char *arg)
{
    ad_conf_t *c = cmd_conf(cmd);
    ad_connection_t *cn;
    const char *err, *name;

    if ((err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) ||
        (err = section_name(cmd, "<ApiDestConnection", arg, "connection", &name))) {
        return err;
    }
    if (apr_hash_get(c->connection_by_name, name, APR_HASH_KEY_STRING)) {
        return apr_psprintf(cmd->pool, "connection '%s' is defined twice", name);
    }
    cn = apr_pcalloc(cmd->pool, sizeof(*cn));
    cn->name = name;
    cn->oauth_method = "POST";
    cn->oauth_params = apr_array_make(cmd->pool, 2, sizeof(ad_param_t *));
    cn->invocation_params = apr_array_make(cmd->pool, 2, sizeof(ad_param_t *));
    cn->file = cmd->directive->filename;
    cn->line = cmd->directive->line_num;
    if ((err = walk_section(cmd, cn, conn_line))) {
        return err;
    }
    if ((err = conn_complete(cmd->pool, cn))) {
        return apr_psprintf(cmd->pool, "connection '%s': %s", name, err);
    }
    cn->index = c->connections->nelts;
    APR_ARRAY_PUSH(c->connections, ad_connection_t *) = cn;
    apr_hash_set(c->connection_by_name, cn->name, APR_HASH_KEY_STRING, cn);
    return NULL;
}

/* ---- <ApiDestDestination> ----------------------------------------------- */

static const char *dest_line(cmd_parms *cmd, void *obj, const char *name, int argc, char **argv,
                             const ap_directive_t *dir)
{
    ad_destination_t *d = obj;
    apr_pool_t *p = cmd->pool;
    const char *err;

    if (!strcasecmp(name, "Endpoint")) {
        if ((err = want_args(p, name, argc, 1)) || (err = check_endpoint(p, argv[0]))) {
            return err;
        }
        d->endpoint = apr_pstrdup(p, argv[0]);
        return NULL;
    }
    if (!strcasecmp(name, "HttpMethod")) {
        if ((err = want_args(p, name, argc, 1)) || (err = check_method(p, argv[0]))) {
            return err;
        }
        d->method = apr_pstrdup(p, argv[0]);
        return NULL;
    }
    if (!strcasecmp(name, "Timeout")) {
        return want_args(p, name, argc, 1) ? want_args(p, name, argc, 1)
                                           : parse_int(p, name, argv[0], 1, 3600, &d->timeout_sec);
    }
    if (!strcasecmp(name, "InvocationRateLimit")) {
        return want_args(p, name, argc, 1)
                   ? want_args(p, name, argc, 1)
                   : parse_int(p, name, argv[0], 1, 1000000, &d->rate_limit);
    }
    if (!strcasecmp(name, "AllowPrivateEndpoint")) {
        return want_args(p, name, argc, 1) ? want_args(p, name, argc, 1)
                                           : parse_flag(p, name, argv[0], &d->allow_private);
    }
    if (!strcasecmp(name, "AllowInsecureHttp")) {
        return want_args(p, name, argc, 1) ? want_args(p, name, argc, 1)
                                           : parse_flag(p, name, argv[0], &d->allow_insecure_http);
    }
    if (!strcasecmp(name, "MaxInFlight")) {
        return want_args(p, name, argc, 1)
                   ? want_args(p, name, argc, 1)
                   : parse_int(p, name, argv[0], 1, 100000, &d->max_in_flight);
    }
    if (!strcasecmp(name, "Connection")) {
        if ((err = want_args(p, name, argc, 1))) {
            return err;
        }
        d->connection_name = apr_pstrdup(p, argv[0]);
        return NULL;
    }
    return apr_psprintf(p, "unknown directive '%s' in <ApiDestDestination>", name);
}

static const char *dest_section(cmd_parms *cmd, void *dummy, const char *arg)
{
    ad_conf_t *c = cmd_conf(cmd);
    ad_destination_t *d;
    const char *err, *name;

    if ((err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) ||
        (err = section_name(cmd, "<ApiDestDestination", arg, "destination", &name))) {
        return err;
    }
    if (apr_hash_get(c->destination_by_name, name, APR_HASH_KEY_STRING)) {
        return apr_psprintf(cmd->pool, "destination '%s' is defined twice", name);
    }
    d = apr_pcalloc(cmd->pool, sizeof(*d));
    d->name = name;
    d->method = "POST";
    d->timeout_sec = AD_DEFAULT_TIMEOUT_SEC;
    d->rate_limit = AD_DEFAULT_RATE_LIMIT;
    d->max_in_flight = AD_DEFAULT_DEST_MAX_IN_FLIGHT;
    d->file = cmd->directive->filename;
    d->line = cmd->directive->line_num;
    if ((err = walk_section(cmd, d, dest_line))) {
        return err;
    }
    if (!d->endpoint) {
        return apr_psprintf(cmd->pool, "destination '%s' has no Endpoint", name);
    }
    d->index = c->destinations->nelts;
    APR_ARRAY_PUSH(c->destinations, ad_destination_t *) = d;
    apr_hash_set(c->destination_by_name, d->name, APR_HASH_KEY_STRING, d);
    return NULL;
}

/* ---- <ApiDestTarget> inside <ApiDestRule> -------------------------------- */

/* "RetryBackoff base [cap]" in seconds; without a cap, ApiDestRetryBackoff's
 * (and never below the base). */
static const char *parse_backoff(apr_pool_t *p, const char *name, int argc, char **argv, int *base,
                                 int *cap)
{
    const char *err;

    if (argc < 1 || argc > 2) {
        return apr_psprintf(p, "%s takes a base and an optional cap, in seconds", name);
    }
    *cap = 0;
    if ((err = parse_int(p, name, argv[0], 1, 86400, base)) ||
        (argc == 2 && (err = parse_int(p, name, argv[1], 1, 86400, cap)))) {
        return err;
    }
    return *cap && *cap < *base ? apr_psprintf(p, "%s: the cap must not be below the base", name)
                                : NULL;
}

static int is_plain_only(const char *name)
{
    return !strcasecmp(name, "HttpMethod") || !strcasecmp(name, "Timeout") ||
           !strcasecmp(name, "AllowPrivateEndpoint");
}

/* A target with a Destination takes its method, timeout and address policy
 * from there: the same lines in the target would be ignored. The error is
 * at the later of the two lines. */
static const char *check_plain_only(apr_pool_t *p, const ap_directive_t *section)
{
    const ap_directive_t *d, *plain = NULL;
    int has_destination = 0;

    for (d = section->first_child; d; d = d->next) {
        has_destination |= !strcasecmp(d->directive, "Destination");
        if (!plain && is_plain_only(d->directive)) {
            plain = d;
        }
        if (has_destination && plain) {
            return at(p, d,
                      apr_psprintf(p,
                                   "%s goes in the <ApiDestDestination> of a target with "
                                   "Destination (only a plain Endpoint target takes it)",
                                   plain->directive));
        }
    }
    return NULL;
}

static const char *target_line(cmd_parms *cmd, void *obj, const char *name, int argc, char **argv,
                               const ap_directive_t *dir)
{
    ad_target_t *t = obj;
    apr_pool_t *p = cmd->pool;
    const char *err;
    ad_param_t *prm;

    if (!strcasecmp(name, "QueryParameter") || !strcasecmp(name, "Header") ||
        !strcasecmp(name, "InputPathsMap")) {
        if ((err = want_args(p, name, argc, 2))) {
            return err;
        }
        if (!strcasecmp(name, "InputPathsMap")) {
            ad_transform_var_t *v = apr_array_push(t->paths_map);
            v->name = apr_pstrdup(p, argv[0]);
            v->path = apr_pstrdup(p, argv[1]);
            return NULL;
        }
        if (!strcasecmp(name, "Header") && ((err = check_header_name(p, argv[0])) ||
                                            (err = check_forbidden_header(p, argv[0], 0)))) {
            return err;
        }
        if ((err = make_param(cmd, name[0] == 'Q' || name[0] == 'q' ? "query" : "header", argv[0],
                              argv[1], 0, &prm))) {
            return err;
        }
        APR_ARRAY_PUSH(name[0] == 'Q' || name[0] == 'q' ? t->query_params : t->headers,
                       ad_param_t *) = prm;
        return NULL;
    }
    if (!strcasecmp(name, "RetryBackoff")) {
        return parse_backoff(p, name, argc, argv, &t->backoff_base_sec, &t->backoff_cap_sec);
    }
    if ((err = want_args(p, name, argc, 1))) {
        return err;
    }
    if (!strcasecmp(name, "PathParameter")) {
        if (!*argv[0] || strspn(argv[0], " \t") == strlen(argv[0])) {
            return "PathParameter must not be blank";
        }
        if ((err = make_param(cmd, "path", NULL, argv[0], 0, &prm))) {
            return err;
        }
        /* encoded as it will be sent: "a/.." goes out as "a%2F.." */
        if (!prm->path &&
            ad_url_has_dot_segment(apr_pstrcat(p, "/", ad_url_encode(p, prm->value), NULL))) {
            return apr_psprintf(p,
                                "PathParameter '%s' is or holds a '.' or '..' segment, which "
                                "would send the request to another path",
                                prm->value);
        }
        APR_ARRAY_PUSH(t->path_params, ad_param_t *) = prm;
        return NULL;
    }
    if (!strcasecmp(name, "InputPath") || !strcasecmp(name, "Input") ||
        !strcasecmp(name, "InputTransformer")) {
        const char **slot = !strcasecmp(name, "InputPath") ? &t->input_path
                            : !strcasecmp(name, "Input")   ? &t->input
                                                           : &t->input_template;
        *slot = apr_pstrdup(p, argv[0]);
        return NULL;
    }
    if (!strcasecmp(name, "InputTransformerFile")) {
        return read_text_file(cmd, "InputTransformerFile", argv[0], &t->input_template);
    }
    if (!strcasecmp(name, "Destination")) {
        t->destination_name = apr_pstrdup(p, argv[0]);
        return NULL;
    }
    if (!strcasecmp(name, "Endpoint")) {
        if ((err = check_endpoint(p, argv[0]))) {
            return err;
        }
        t->endpoint = apr_pstrdup(p, argv[0]);
        return NULL;
    }
    if (!strcasecmp(name, "HttpMethod")) {
        if ((err = check_method(p, argv[0]))) {
            return err;
        }
        t->method = apr_pstrdup(p, argv[0]);
        return NULL;
    }
    if (!strcasecmp(name, "Timeout")) {
        return parse_int(p, name, argv[0], 1, 3600, &t->timeout_sec);
    }
    if (!strcasecmp(name, "AllowPrivateEndpoint")) {
        return parse_flag(p, name, argv[0], &t->allow_private);
    }
    if (!strcasecmp(name, "RetryAttempts")) {
        return parse_int(p, name, argv[0], 0, 185, &t->retry_attempts);
    }
    if (!strcasecmp(name, "MaximumEventAge")) {
        return parse_int(p, name, argv[0], 60, 86400, &t->max_event_age_sec);
    }
    if (!strcasecmp(name, "DeadLetter")) {
        return parse_flag(p, name, argv[0], &t->dead_letter);
    }
    return apr_psprintf(p, "unknown directive '%s' in <ApiDestTarget>", name);
}

/* Checks of the <ApiDestTarget name> line itself, before its body. */
static const char *target_name(cmd_parms *cmd, const ad_rule_t *rule, const ap_directive_t *dir,
                               const char **name)
{
    const char *err = section_name(cmd, "<ApiDestTarget", dir->args, "target", name);
    int i;

    for (i = 0; !err && i < rule->targets->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(rule->targets, i, ad_target_t *)->id, *name)) {
            err =
                apr_psprintf(cmd->pool, "rule '%s' has two targets named '%s'", rule->name, *name);
        }
    }
    return err;
}

/* Checks of the target as a whole, once its lines are read. */
static const char *target_whole(apr_pool_t *p, const ad_rule_t *rule, const ad_target_t *t)
{
    if (!t->destination_name == !t->endpoint) {
        return apr_psprintf(p, "target '%s' needs exactly one of Destination or Endpoint", t->id);
    }
    if (rule->targets->nelts >= MAX_TARGETS_PER_RULE) {
        return apr_psprintf(p, "rule '%s' has more than %d targets (EventBridge's limit)",
                            rule->name, MAX_TARGETS_PER_RULE);
    }
    return NULL;
}

/* Its errors name their own line: the target's, or one inside it. */
static const char *target_section(cmd_parms *cmd, ad_rule_t *rule, const ap_directive_t *dir)
{
    const ap_directive_t *saved = cmd->directive;
    ad_target_t *t = NULL;
    const char *err, *name;

    cmd->directive = (ap_directive_t *)dir;
    if ((err = target_name(cmd, rule, dir, &name))) {
        err = at(cmd->pool, dir, err);
    }
    else {
        t = ad_conf_target_make(cmd->pool, name);
        t->file = dir->filename;
        t->line = dir->line_num;
        if (!(err = walk_section(cmd, t, target_line)) &&
            !(err = check_plain_only(cmd->pool, dir)) && (err = target_whole(cmd->pool, rule, t))) {
            err = at(cmd->pool, dir, err);
        }
    }
    cmd->directive = (ap_directive_t *)saved;
    if (err) {
        return err;
    }
    APR_ARRAY_PUSH(rule->targets, ad_target_t *) = t;
    return NULL;
}

/* ---- <ApiDestRule> -------------------------------------------------------- */

/* The text of the file at path (relative to ServerRoot), at most max bytes
 * and no NUL: the text would end at it, the rest unseen. */
static const char *read_file_upto(cmd_parms *cmd, const char *what, const char *path,
                                  apr_size_t max, const char **text, apr_size_t *len)
{
    const char *full = ap_server_root_relative(cmd->temp_pool, path);
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf;
    apr_status_t rv = full ? open_regular(cmd, full, &f, &fi) : APR_EBADPATH;

    if (rv != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s '%s' cannot be read%s", what, path,
                            rv == APR_EBADF ? ": not a regular file" : "");
    }
    if ((apr_size_t)fi.size > max) {
        apr_file_close(f);
        return apr_psprintf(cmd->pool, "%s '%s' is over %" APR_SIZE_T_FMT " bytes", what, path,
                            max);
    }
    n = (apr_size_t)fi.size;
    buf = apr_palloc(cmd->pool, n + 1);
    if (apr_file_read_full(f, buf, n, &n) != APR_SUCCESS && n != (apr_size_t)fi.size) {
        apr_file_close(f);
        return apr_psprintf(cmd->pool, "%s '%s' cannot be read", what, path);
    }
    buf[n] = '\0';
    apr_file_close(f);
    if (memchr(buf, '\0', n)) {
        return apr_psprintf(cmd->pool, "%s '%s' holds a NUL byte", what, path);
    }
    *text = buf;
    *len = n;
    return NULL;
}

static const char *read_text_file(cmd_parms *cmd, const char *what, const char *path,
                                  const char **text)
{
    apr_size_t len;

    return read_file_upto(cmd, what, path, MAX_PATTERN_FILE, text, &len);
}

static const char *set_pattern(cmd_parms *cmd, ad_rule_t *r, const char *text)
{
    const char *reason;

    r->pattern_text = text;
    r->pattern = ad_pattern_compile(cmd->pool, text, strlen(text), &reason);
    if (!r->pattern) {
        return apr_pstrcat(cmd->pool, "InvalidEventPatternException: " AD_PATTERN_ERR_PREFIX,
                           reason, NULL);
    }
    return NULL;
}

static const char *rule_line(cmd_parms *cmd, void *obj, const char *name, int argc, char **argv,
                             const ap_directive_t *dir)
{
    ad_rule_t *r = obj;
    apr_pool_t *p = cmd->pool;
    const char *err, *text = NULL;

    if (!strcasecmp(name, "<ApiDestTarget")) {
        return target_section(cmd, r, dir);
    }
    if ((err = want_args(p, name, argc, 1))) {
        return err;
    }
    if (!strcasecmp(name, "EventBus")) {
        if ((err = check_name(p, "event bus", argv[0]))) {
            return err;
        }
        r->bus = apr_pstrdup(p, argv[0]);
        return NULL;
    }
    if (!strcasecmp(name, "EventPattern")) {
        return set_pattern(cmd, r, apr_pstrdup(p, argv[0]));
    }
    if (!strcasecmp(name, "EventPatternFile")) {
        return (err = read_text_file(cmd, "EventPatternFile", argv[0], &text))
                   ? err
                   : set_pattern(cmd, r, text);
    }
    if (!strcasecmp(name, "ScheduleExpression")) {
        const char *err2, *detail = NULL;
        if (strlen(argv[0]) > 256) {
            return "ValidationException: " AD_SCHEDULE_ERR_INVALID " (longer than 256 characters)";
        }
        r->schedule_text = apr_pstrdup(p, argv[0]);
        r->schedule = ad_schedule_parse(p, argv[0], &err2, &detail);
        if (!r->schedule) {
            return apr_psprintf(p, "ValidationException: %s (%s)", err2, detail ? detail : argv[0]);
        }
        return NULL;
    }
    if (!strcasecmp(name, "State")) {
        if (strcmp(argv[0], "ENABLED") && strcmp(argv[0], "DISABLED")) {
            return apr_psprintf(p, "State must be ENABLED or DISABLED, not '%s'", argv[0]);
        }
        r->enabled = !strcmp(argv[0], "ENABLED");
        return NULL;
    }
    if (!strcasecmp(name, "Description")) {
        return NULL;
    }
    return apr_psprintf(p, "unknown directive '%s' in <ApiDestRule>", name);
}

static const char *rule_section(cmd_parms *cmd, void *dummy, const char *arg)
{
    ad_conf_t *c = cmd_conf(cmd);
    ad_rule_t *r;
    const char *err, *name;

    if ((err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) ||
        (err = section_name(cmd, "<ApiDestRule", arg, "rule", &name))) {
        return err;
    }
    if (apr_hash_get(c->rule_by_name, name, APR_HASH_KEY_STRING)) {
        return apr_psprintf(cmd->pool, "rule '%s' is defined twice", name);
    }
    r = apr_pcalloc(cmd->pool, sizeof(*r));
    r->name = name;
    r->bus = AD_DEFAULT_BUS;
    r->enabled = 1;
    r->targets = apr_array_make(cmd->pool, 2, sizeof(ad_target_t *));
    r->file = cmd->directive->filename;
    r->line = cmd->directive->line_num;
    if ((err = walk_section(cmd, r, rule_line))) {
        return err;
    }
    if (!r->pattern && !r->schedule) {
        return apr_psprintf(cmd->pool,
                            "rule '%s' needs an EventPattern (or "
                            "EventPatternFile) or a ScheduleExpression, or both",
                            name);
    }
    if (r->schedule && strcmp(r->bus, AD_DEFAULT_BUS)) {
        return "ValidationException: ScheduleExpression is supported only on the "
               "default event bus.";
    }
    APR_ARRAY_PUSH(c->rules, ad_rule_t *) = r;
    apr_hash_set(c->rule_by_name, r->name, APR_HASH_KEY_STRING, r);
    apr_hash_set(c->buses, r->bus, APR_HASH_KEY_STRING, "");
    return NULL;
}

/* ---- server directives ------------------------------------------------- */

/* NULL, or why apidestd could not make its store at path: the path is a
 * directory (or anything but a file), or one of the directories it would go
 * in is a file. Found now, not when apidestd starts, gives up and leaves
 * every PutEvents answered 503. */
static const char *store_path_refusal(apr_pool_t *p, const char *path)
{
    char *dir = apr_pstrdup(p, path), *slash;
    apr_finfo_t fi;

    if (apr_stat(&fi, path, APR_FINFO_TYPE, p) == APR_SUCCESS && fi.filetype != APR_REG) {
        return apr_psprintf(p, "the store %s is a %s, not a file", path,
                            fi.filetype == APR_DIR ? "directory" : "special file");
    }
    while ((slash = strrchr(dir, '/')) && slash != dir) {
        *slash = '\0';
        if (apr_stat(&fi, dir, APR_FINFO_TYPE, p) == APR_SUCCESS) {
            return fi.filetype == APR_DIR
                       ? NULL
                       : apr_psprintf(p, "the store %s cannot be made: %s is not a directory", path,
                                      dir);
        }
    }
    return NULL;
}

static const char *set_store(cmd_parms *cmd, void *dummy, const char *arg)
{
    ad_conf_t *c = cmd_conf(cmd);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY), *driver, *path;

    if (err) {
        return err;
    }
    if (ad_store_parse_spec(cmd->pool, arg, &driver, &path, &err) != APR_SUCCESS) {
        return err;
    }
    c->store_spec = arg;
    c->store_driver = driver;
    c->store_path = ap_server_root_relative(cmd->pool, path);
    return c->store_path ? store_path_refusal(cmd->pool, c->store_path) : NULL;
}

static const char *set_int_field(cmd_parms *cmd, const char *arg, long lo, long hi, int *field)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    return err ? err : parse_int(cmd->pool, cmd->cmd->name, arg, lo, hi, field);
}

static const char *set_sync(cmd_parms *cmd, void *dummy, int flag)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    cmd_conf(cmd)->store_sync = flag;
    return err;
}

static const char *set_account(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    int i;

    if (err) {
        return err;
    }
    for (i = 0; arg[i]; i++) {
        if (!isdigit((unsigned char)arg[i])) {
            break;
        }
    }
    if (i != 12 || arg[i]) {
        return "ApiDestAccount must be a 12-digit account id";
    }
    cmd_conf(cmd)->account = arg;
    return NULL;
}

static const char *set_region(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *c;

    if (err) {
        return err;
    }
    for (c = arg; *c; c++) {
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '-') {
            return "ApiDestRegion must look like a region code, e.g. us-east-1";
        }
    }
    cmd_conf(cmd)->region = arg;
    return NULL;
}

static const char *set_workers(cmd_parms *cmd, void *dummy, const char *arg)
{
    return set_int_field(cmd, arg, 1, 256, &cmd_conf(cmd)->workers);
}

static const char *set_max_in_flight(cmd_parms *cmd, void *dummy, const char *arg)
{
    return set_int_field(cmd, arg, 1, 100000, &cmd_conf(cmd)->max_in_flight);
}

/* EventBridge takes 10 entries per PutEvents; its newer buses take 100. */
static const char *set_max_entries(cmd_parms *cmd, void *dummy, const char *arg)
{
    return set_int_field(cmd, arg, 1, 100, &cmd_conf(cmd)->max_entries);
}

static const char *set_maint_interval(cmd_parms *cmd, void *dummy, const char *arg)
{
    return set_int_field(cmd, arg, 1, 3600, &cmd_conf(cmd)->maint_interval_sec);
}

static const char *set_backoff(cmd_parms *cmd, void *dummy, const char *base, const char *cap)
{
    ad_conf_t *c = cmd_conf(cmd);
    const char *err = set_int_field(cmd, base, 1, 86400, &c->backoff_base_sec);

    if (!err && cap) {
        err = set_int_field(cmd, cap, 1, 86400, &c->backoff_cap_sec);
    }
    /* a base alone above the default cap is its own cap (ad_backoff_cap),
     * as for a target's RetryBackoff */
    if (!err && cap && c->backoff_cap_sec < c->backoff_base_sec) {
        err = "ApiDestRetryBackoff: the cap must not be below the base";
    }
    return err;
}

static const char *set_size(cmd_parms *cmd, const char *arg, apr_size_t lo, apr_size_t hi,
                            apr_size_t *field)
{
    int v;
    const char *err = set_int_field(cmd, arg, (long)lo, (long)hi, &v);
    if (!err) {
        *field = (apr_size_t)v;
    }
    return err;
}

static const char *set_min_free(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_off_t v, mult = 1;
    char *end;

    if (err) {
        return err;
    }
    if (apr_strtoff(&v, arg, &end, 10) != APR_SUCCESS || v < 0) {
        return "ApiDestStoreMinFree must be a number of bytes, optionally with K, M or G";
    }
    switch (*end) {
    case 'K':
    case 'k':
        mult = 1024;
        end++;
        break;
    case 'M':
    case 'm':
        mult = 1024 * 1024;
        end++;
        break;
    case 'G':
    case 'g':
        mult = 1024 * 1024 * 1024;
        end++;
        break;
    }
    if (*end) {
        return "ApiDestStoreMinFree must be a number of bytes, optionally with K, M or G";
    }
    /* Past 1 PiB it is a typo, and a wrapped product would turn the
     * protection off. */
    if (v > (((apr_off_t)1) << 50) / mult) {
        return "ApiDestStoreMinFree must be at most 1048576G";
    }
    v *= mult;
    cmd_conf(cmd)->store_min_free = v;
    return NULL;
}

/* The master opens the journal in post_config, where a failure stops
 * httpd, on a graceful restart too: what can be told from here is told at
 * configtest. A program run through the shell ("|$...") or named by a
 * relative path is left to httpd. */
static const char *check_journal_program(apr_pool_t *p, const char *cmd)
{
    const char *prog;
    apr_finfo_t fi;

    cmd += strspn(cmd, "|");
    cmd += strspn(cmd, " \t");
    if (*cmd != '/') {
        return NULL;
    }
    prog = apr_pstrndup(p, cmd, strcspn(cmd, " \t"));
    if (apr_stat(&fi, prog, APR_FINFO_TYPE, p) != APR_SUCCESS || fi.filetype != APR_REG ||
        access(prog, X_OK) != 0) {
        return apr_psprintf(p, "ApiDestJournal: %s is not an executable file", prog);
    }
    return NULL;
}

static const char *check_journal_file(cmd_parms *cmd, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->temp_pool, arg);
    char *dir;
    apr_finfo_t fi;
    apr_status_t rv;

    if (!path) {
        return apr_psprintf(cmd->pool, "ApiDestJournal: %s is not a valid path", arg);
    }
    /* A pipe or socket is fine too: /dev/stdout in a container. */
    if (apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool) == APR_SUCCESS) {
        return fi.filetype != APR_DIR
                   ? NULL
                   : apr_psprintf(cmd->pool, "ApiDestJournal: %s is a directory", path);
    }
    dir = ap_make_dirstr_parent(cmd->temp_pool, path);
    rv = apr_stat(&fi, dir, APR_FINFO_TYPE, cmd->temp_pool);
    if (APR_STATUS_IS_ENOENT(rv) || APR_STATUS_IS_ENOTDIR(rv) ||
        (rv == APR_SUCCESS && fi.filetype != APR_DIR)) {
        return apr_psprintf(cmd->pool, "ApiDestJournal: the directory %s does not exist", dir);
    }
    if (rv != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "ApiDestJournal: the directory %s cannot be checked: %pm",
                            dir, &rv);
    }
    return NULL;
}

static const char *set_journal(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    if (!*arg || (*arg == '|' && !arg[1])) {
        return "ApiDestJournal needs a file name or |program";
    }
    err = *arg == '|' ? check_journal_program(cmd->pool, arg) : check_journal_file(cmd, arg);
    if (err) {
        return err;
    }
    cmd_conf(cmd)->journal = arg;
    return NULL;
}

/* Read now, as root (as mod_ssl reads its CA files): apidestd, which sends,
 * runs as User and may not be able to read it; a file that is not PEM
 * would fail every HTTPS attempt. */
static const char *set_ca_file(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY), *pem;
    const char *path = ap_server_root_relative(cmd->pool, arg);
    ad_conf_t *c = cmd_conf(cmd);
    apr_size_t len;

    if (err) {
        return err;
    }
    if (!path) {
        return apr_psprintf(cmd->pool, "ApiDestCAFile %s is not a valid path", arg);
    }
    if ((err = read_file_upto(cmd, "ApiDestCAFile", path, MAX_CA_FILE, &pem, &len))) {
        return err;
    }
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----")) {
        return apr_psprintf(cmd->pool,
                            "ApiDestCAFile '%s' holds no PEM certificate "
                            "(-----BEGIN CERTIFICATE-----)",
                            arg);
    }
    c->ca_file = path;
    c->ca_pem = pem;
    c->ca_pem_len = len;
    return NULL;
}

/* ApiDestSigV4Key AKID secret-ref: producers must sign with one of these. */
static const char *set_sigv4_key(cmd_parms *cmd, void *dcv, const char *akid, const char *ref)
{
    apidest_dir_conf_t *dc = dcv;
    const char *secret, *err;

    /* PutEvents is not mapped to the filesystem (apidest_map_to_storage),
     * so keys in a <Directory> or <Files> section would never apply, and
     * the location would take unsigned requests. */
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIRECTORY | NOT_IN_FILES))) {
        return err;
    }
    if (!*akid || strlen(akid) > 128 || strpbrk(akid, "/ ,=")) {
        return "ApiDestSigV4Key needs an access key id without '/', ',', '=' or spaces";
    }
    if ((err = read_secret(cmd, ref, &secret))) {
        return err;
    }
    /* an env: value keeps its line end: every signed request would fail */
    if (strpbrk(secret, " \t") || ad_has_control(secret)) {
        return "ApiDestSigV4Key: the secret access key holds whitespace or control characters";
    }
    apr_hash_set(dc->sigv4_keys, apr_pstrdup(cmd->pool, akid), APR_HASH_KEY_STRING, secret);
    return NULL;
}

static const char *set_max_entry_size(cmd_parms *cmd, void *dummy, const char *arg)
{
    return set_size(cmd, arg, 1024, 1048576, &cmd_conf(cmd)->max_entry_size);
}

static const char *set_max_request_size(cmd_parms *cmd, void *dummy, const char *arg)
{
    return set_size(cmd, arg, 1024, 16 * 1048576, &cmd_conf(cmd)->max_request_size);
}

static const char *stray_target(cmd_parms *cmd, void *dummy, const char *arg)
{
    return "<ApiDestTarget> is only allowed inside <ApiDestRule>";
}

const command_rec apidest_cmds[] = {
    AP_INIT_RAW_ARGS("<ApiDestTarget", stray_target, NULL, RSRC_CONF,
                     "a target; only inside <ApiDestRule>"),
    AP_INIT_RAW_ARGS(
        "<ApiDestConnection", conn_section, NULL, RSRC_CONF,
        "a connection: AuthorizationType, Basic, ApiKey, OAuth..., InvocationParameter"),
    AP_INIT_TAKE1(
        "ApiDestCAFile", set_ca_file, NULL, RSRC_CONF,
        "PEM file of certificate authorities for outbound TLS, in place of libcurl's bundle"),
    AP_INIT_RAW_ARGS("<ApiDestDestination", dest_section, NULL, RSRC_CONF,
                     "an API destination: Endpoint, HttpMethod, Timeout, ..."),
    AP_INIT_RAW_ARGS("<ApiDestRule", rule_section, NULL, RSRC_CONF,
                     "a rule: EventBus, EventPattern, State and <ApiDestTarget> sections"),
    AP_INIT_TAKE1("ApiDestStore", set_store, NULL, RSRC_CONF,
                  "the durable store, dbm:<driver>:<path>"),
    AP_INIT_FLAG("ApiDestStoreSync", set_sync, NULL, RSRC_CONF,
                 "fsync the store before acknowledging (power-loss safe)"),
    AP_INIT_TAKE1("ApiDestStoreMinFree", set_min_free, NULL, RSRC_CONF,
                  "free disk space below which the store refuses new records"),
    AP_INIT_TAKE1("ApiDestAccount", set_account, NULL, RSRC_CONF,
                  "12-digit account id used in ARNs and envelopes"),
    AP_INIT_TAKE1("ApiDestRegion", set_region, NULL, RSRC_CONF,
                  "region code used in ARNs and envelopes"),
    AP_INIT_TAKE1("ApiDestWorkers", set_workers, NULL, RSRC_CONF, "delivery threads in apidestd"),
    AP_INIT_TAKE1("ApiDestMaxInFlight", set_max_in_flight, NULL, RSRC_CONF,
                  "concurrent outbound requests in total"),
    AP_INIT_TAKE1("ApiDestMaintenanceInterval", set_maint_interval, NULL, RSRC_CONF,
                  "seconds between maintenance ticks"),
    AP_INIT_TAKE12("ApiDestRetryBackoff", set_backoff, NULL, RSRC_CONF,
                   "base and cap of the exponential retry backoff, seconds"),
    AP_INIT_TAKE2("ApiDestSigV4Key", set_sigv4_key, NULL, ACCESS_CONF,
                  "verify AWS SigV4 on this location: access key id and its secret"),
    AP_INIT_TAKE1("ApiDestJournal", set_journal, NULL, RSRC_CONF,
                  "log one line per delivery attempt to a file or |program"),
    AP_INIT_TAKE1("ApiDestMaxEntries", set_max_entries, NULL, RSRC_CONF,
                  "most entries one PutEvents may carry (EventBridge: 10)"),
    AP_INIT_TAKE1("ApiDestMaxEntrySize", set_max_entry_size, NULL, RSRC_CONF,
                  "total entry size one PutEvents must stay under, bytes"),
    AP_INIT_TAKE1("ApiDestMaxRequestSize", set_max_request_size, NULL, RSRC_CONF,
                  "largest PutEvents request body, bytes"),
    {NULL}};

/* ---- whole-config checks (check_config) -------------------------------- */

static int count_stars(const char *url)
{
    int n = 0;
    for (; *url; url++) {
        n += *url == '*';
    }
    return n;
}

static int check_target_params(server_rec *s, ad_rule_t *r, ad_target_t *t, apr_pool_t *p)
{
    const char *endpoint = t->destination ? t->destination->endpoint : t->endpoint;
    int i, stars = count_stars(endpoint), problems = 0;

    if (stars != t->path_params->nelts) {
        ap_log_error(
            APLOG_MARK, APLOG_EMERG, 0, s,
            ADLOGNO(10002) "%s:%d: rule '%s' target '%s' has %d PathParameter(s) for %d '*' in %s",
            t->file, t->line, r->name, t->id, t->path_params->nelts, stars, endpoint);
        problems++;
    }
    for (i = 0; i < t->headers->nelts; i++) {
        const ad_param_t *h = APR_ARRAY_IDX(t->headers, i, ad_param_t *);
        const char *err = check_forbidden_header(p, h->key, t->destination == NULL);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         ADLOGNO(10003) "%s:%d: rule '%s' target '%s': %s", t->file, t->line,
                         r->name, t->id, err);
            problems++;
        }
    }
    return problems;
}

static int compile_transform(server_rec *s, ad_rule_t *r, ad_target_t *t, apr_pool_t *p)
{
    const char *err;

    t->transform =
        ad_transform_compile(p, t->id, t->input, t->input_path,
                             t->paths_map->nelts ? t->paths_map : NULL, t->input_template, &err);
    if (!t->transform) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     ADLOGNO(10004) "%s:%d: rule '%s' target '%s': ValidationException: %s",
                     t->file, t->line, r->name, t->id, err);
        return 1;
    }
    if (t->paths_map->nelts && !t->input_template) {
        ap_log_error(
            APLOG_MARK, APLOG_EMERG, 0, s,
            ADLOGNO(10005) "%s:%d: rule '%s' target '%s': InputPathsMap needs InputTransformer",
            t->file, t->line, r->name, t->id);
        return 1;
    }
    return 0;
}

static int resolve_connection(server_rec *s, ad_conf_t *c, ad_destination_t *d)
{
    if (!d->connection_name) {
        return 0;
    }
    d->connection = apr_hash_get(c->connection_by_name, d->connection_name, APR_HASH_KEY_STRING);
    if (!d->connection) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     ADLOGNO(10006) "%s:%d: destination '%s' names unknown connection '%s'",
                     d->file, d->line, d->name, d->connection_name);
        return 1;
    }
    /* Credentials over plain http only when someone said so. */
    if (!strncasecmp(d->endpoint, "http:", 5) && !d->allow_insecure_http &&
        !d->connection->allow_insecure_http) {
        ap_log_error(
            APLOG_MARK, APLOG_EMERG, 0, s,
            ADLOGNO(10007) "%s:%d: destination '%s' sends connection '%s''s credentials to plain "
                           "http %s (set AllowInsecureHttp on to allow it)",
            d->file, d->line, d->name, d->connection->name, d->endpoint);
        return 1;
    }
    return 0;
}

static int resolve_target(server_rec *s, ad_conf_t *c, ad_rule_t *r, ad_target_t *t)
{
    if (!t->destination_name) {
        return 0;
    }
    t->destination = apr_hash_get(c->destination_by_name, t->destination_name, APR_HASH_KEY_STRING);
    if (!t->destination) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     ADLOGNO(10001) "%s:%d: rule '%s' target '%s' names unknown destination '%s'",
                     t->file, t->line, r->name, t->id, t->destination_name);
        return 1;
    }
    return 0;
}

int apidest_config_check(apr_pool_t *p, server_rec *s)
{
    ad_conf_t *c = apidest_conf(s);
    const char *err;
    int i, j, problems = 0;

    for (i = 0; i < c->destinations->nelts; i++) {
        problems += resolve_connection(s, c, APR_ARRAY_IDX(c->destinations, i, ad_destination_t *));
    }
    for (i = 0; i < c->rules->nelts; i++) {
        ad_rule_t *r = APR_ARRAY_IDX(c->rules, i, ad_rule_t *);
        for (j = 0; j < r->targets->nelts; j++) {
            ad_target_t *t = APR_ARRAY_IDX(r->targets, j, ad_target_t *);
            int bad = resolve_target(s, c, r, t);
            if (!bad) {
                bad = check_target_params(s, r, t, p) + compile_transform(s, r, t, p);
            }
            problems += bad;
        }
    }
    if (c->max_request_size / 2 < c->max_entry_size) {
        /* a warning: smaller entries still arrive */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     ADLOGNO(10058) "ApiDestMaxRequestSize %" APR_SIZE_T_FMT
                                    " is under twice ApiDestMaxEntrySize %" APR_SIZE_T_FMT
                                    ": a request body holds the entries as JSON strings, their "
                                    "quotes escaped (up to twice their size), so entries near "
                                    "the entry size may not arrive; raise ApiDestMaxRequestSize",
                     c->max_request_size, c->max_entry_size);
    }
    ad_conf_index_targets(c);
    ad_conf_index_rules(c, p);
    if (!c->store_spec) {
        const char *dflt = ap_runtime_dir_relative(p, "apidest/store");
        c->store_spec = apr_pstrcat(p, "dbm:gdbm:", dflt, NULL);
        c->store_driver = "gdbm";
        c->store_path = dflt;
        if ((err = dflt ? store_path_refusal(p, dflt) : NULL)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         ADLOGNO(10052) "%s (the default ApiDestStore, under DefaultRuntimeDir)",
                         err);
            problems++;
        }
    }
    return problems;
}
