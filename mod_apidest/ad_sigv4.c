/* AWS Signature Version 4 verification (see ad_sigv4.h).
 *
 * The checks run in the order AWS's JSON services run them, so a request
 * with several faults gets the error AWS would give: Authorization present,
 * its key=value pairs, the required parameters, the date's format, the
 * clock skew, host signed, the algorithm, the credential's shape, its
 * scope, the access key, and last the signature. The texts are AWS's (as
 * the dynalite and kinesalite emulators recorded them from DynamoDB and
 * Kinesis, and as error reports quote EventBridge, STS and Batch); the few
 * that are ours say so. */
#include <string.h>
#include <stdlib.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ad_sigv4.h"
#include "ad_util.h"

#define ALGORITHM  "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
#define SHA256_LEN 32
#define HEX_LEN    64

#define T_MISSING    "MissingAuthenticationTokenException"
#define T_INCOMPLETE "IncompleteSignatureException"
#define T_INVALID    "InvalidSignatureException"
#define T_UNKNOWN    "UnrecognizedClientException"
#define T_INTERNAL   "InternalFailure"

#define M_INTERNAL                                                                                 \
    "The request processing has failed because of an unknown "                                     \
    "error, exception or failure."
#define M_MISMATCH                                                                                 \
    "The request signature we calculated does not match the "                                      \
    "signature you provided. Check your AWS Secret Access Key and signing "                        \
    "method. Consult the service documentation for details."

/* Everything a failure needs to report itself. */
typedef struct sv_ctx_t {
    apr_pool_t *p;
    const ad_sigv4_request_t *req;
    int *status;
    const char **error_type;
    const char **message;
} sv_ctx_t;

/* The Authorization header, taken apart. */
typedef struct sv_auth_t {
    const char *raw;
    const char *algorithm;
    const char *credential;
    const char *signed_headers;
    apr_array_header_t *signed_names; /* signed_headers, split */
    const char *signature;
    const char *amz_date; /* the X-Amz-Date header */
    const char *scope[5]; /* key id, date, region, service, terminator */
} sv_auth_t;

static int fail(sv_ctx_t *c, int rc, const char *type, const char *msg)
{
    *c->status = rc == AD_SIGV4_INTERNAL ? 500 : 400;
    *c->error_type = type;
    *c->message = msg;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static const char *header_get(const ad_sigv4_request_t *req, const char *name)
{
    int i;

    for (i = 0; req->headers && i < req->headers->nelts; i++) {
        const ad_sigv4_header_t *h = &APR_ARRAY_IDX(req->headers, i, ad_sigv4_header_t);
        if (h->name && strcasecmp(h->name, name) == 0) {
            return h->value ? h->value : "";
        }
    }
    return NULL;
}

/* v without leading and trailing whitespace, inner runs collapsed to one
 * space: what both botocore (' '.join(v.split())) and the JS SDK sign. */
static char *trim_collapse(apr_pool_t *p, const char *v)
{
    char *out = apr_palloc(p, strlen(v) + 1), *o = out;

    while (*v) {
        if (is_ws(*v)) {
            while (is_ws(*v)) {
                v++;
            }
            if (o != out && *v) {
                *o++ = ' ';
            }
            continue;
        }
        *o++ = *v++;
    }
    *o = '\0';
    return out;
}

static void hex_encode(const unsigned char *in, apr_size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    apr_size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static int sha256_hex(const void *data, apr_size_t len, char out[HEX_LEN + 1])
{
    unsigned char md[SHA256_LEN];
    unsigned int mdlen = 0;

    if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL)) {
        return 0;
    }
    hex_encode(md, mdlen, out);
    return 1;
}

static int hmac_sha256(const unsigned char *key, int keylen, const char *msg,
                       unsigned char out[SHA256_LEN])
{
    unsigned int outlen = SHA256_LEN;

    return HMAC(EVP_sha256(), key, keylen, (const unsigned char *)msg, strlen(msg), out, &outlen) !=
           NULL;
}

/* %XX decoding in place; a '%' that does not start an escape stays. */
static apr_size_t uri_decode(char *s)
{
    char *in = s, *o = s;

    while (*in) {
        if (in[0] == '%' && apr_isxdigit(in[1]) && apr_isxdigit(in[2])) {
            char hex[3] = {in[1], in[2], '\0'};
            *o++ = (char)strtol(hex, NULL, 16);
            in += 3;
        }
        else {
            *o++ = *in++;
        }
    }
    *o = '\0';
    return (apr_size_t)(o - s);
}

/* ------------------------------------------------------------------ */
/* Dates                                                               */
/* ------------------------------------------------------------------ */

static int digits_at(const char *s, int n)
{
    int v = 0;

    while (n-- > 0) {
        v = v * 10 + (*s++ - '0');
    }
    return v;
}

/* mon 0-11; APR would roll 20260231 over to 3 March. */
static int days_in_month(int year, int mon)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return days[mon] + (mon == 1 && leap);
}

/* "YYYYMMDDTHHMMSSZ", the only form AWS's clients send. */
static int parse_amz_date(const char *s, apr_time_t *t)
{
    apr_time_exp_t e;
    int i;

    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z') {
        return 0;
    }
    for (i = 0; i < 15; i++) {
        if (i != 8 && !apr_isdigit(s[i])) {
            return 0;
        }
    }
    memset(&e, 0, sizeof(e));
    e.tm_year = digits_at(s, 4) - 1900;
    e.tm_mon = digits_at(s + 4, 2) - 1;
    e.tm_mday = digits_at(s + 6, 2);
    e.tm_hour = digits_at(s + 9, 2);
    e.tm_min = digits_at(s + 11, 2);
    e.tm_sec = digits_at(s + 13, 2);
    if (e.tm_year < 70 || e.tm_mon < 0 || e.tm_mon > 11 || e.tm_mday < 1 ||
        e.tm_mday > days_in_month(e.tm_year + 1900, e.tm_mon) || e.tm_hour > 23 || e.tm_min > 59 ||
        e.tm_sec > 59) {
        return 0;
    }
    return apr_time_exp_gmt_get(t, &e) == APR_SUCCESS;
}

static const char *fmt_amz_date(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t e;

    apr_time_exp_gmt(&e, t);
    return apr_psprintf(p, "%04d%02d%02dT%02d%02d%02dZ", e.tm_year + 1900, e.tm_mon + 1, e.tm_mday,
                        e.tm_hour, e.tm_min, e.tm_sec);
}

/* ------------------------------------------------------------------ */
/* Checks before the key is looked up                                  */
/* ------------------------------------------------------------------ */

static void auth_param(sv_auth_t *a, const char *key, const char *value)
{
    const char **slot = NULL;

    if (strcmp(key, "Credential") == 0) {
        slot = &a->credential;
    }
    else if (strcmp(key, "SignedHeaders") == 0) {
        slot = &a->signed_headers;
    }
    else if (strcmp(key, "Signature") == 0) {
        slot = &a->signature;
    }
    /* An empty value counts as absent; the first occurrence wins. */
    if (slot && !*slot && *value) {
        *slot = value;
    }
}

/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...":
 * AWS takes ',' and ' ' alike as separators after the algorithm. */
static int parse_auth(sv_ctx_t *c, sv_auth_t *a)
{
    const char *date;
    char *s, *tok, *last;

    memset(a, 0, sizeof(*a));
    a->raw = header_get(c->req, "Authorization");
    if (!a->raw || !*trim_collapse(c->p, a->raw)) {
        return fail(c, AD_SIGV4_MISSING_TOKEN, T_MISSING, "Missing Authentication Token");
    }
    s = apr_pstrdup(c->p, a->raw);
    a->algorithm = apr_strtok(s, " ,", &last);
    /* Nothing but separators: last is unset, there is nothing more. */
    tok = a->algorithm ? apr_strtok(NULL, " ,", &last) : NULL;
    for (; tok; tok = apr_strtok(NULL, " ,", &last)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            return fail(c, AD_SIGV4_INCOMPLETE, T_INCOMPLETE,
                        apr_psprintf(c->p,
                                     "'%s' not a valid key=value pair (missing equal-sign) in "
                                     "Authorization header: '%s'.",
                                     tok, a->raw));
        }
        *eq = '\0';
        auth_param(a, tok, eq + 1);
    }
    if (!a->algorithm) {
        a->algorithm = "";
    }
    date = header_get(c->req, "X-Amz-Date");
    a->amz_date = date ? trim_collapse(c->p, date) : NULL;
    return AD_SIGV4_OK;
}

/* AWS names every missing part at once, then echoes the header. */
static int check_required(sv_ctx_t *c, const sv_auth_t *a)
{
    const char *missing = "";

    if (!a->credential) {
        missing = "Authorization header requires 'Credential' parameter. ";
    }
    if (!a->signature) {
        missing = apr_pstrcat(c->p, missing,
                              "Authorization header requires 'Signature' parameter. ", NULL);
    }
    if (!a->signed_headers) {
        missing = apr_pstrcat(c->p, missing,
                              "Authorization header requires 'SignedHeaders' "
                              "parameter. ",
                              NULL);
    }
    if (!a->amz_date || !*a->amz_date) {
        /* AWS's text; of the two, only X-Amz-Date is accepted here (every
         * AWS client sends it; Date would need RFC 1123 parsing). */
        missing = apr_pstrcat(c->p, missing,
                              "Authorization header requires existence of either "
                              "a 'X-Amz-Date' or a 'Date' header. ",
                              NULL);
    }
    if (*missing) {
        return fail(c, AD_SIGV4_INCOMPLETE, T_INCOMPLETE,
                    apr_pstrcat(c->p, missing, "Authorization=", a->raw, NULL));
    }
    return AD_SIGV4_OK;
}

static int check_date(sv_ctx_t *c, const sv_auth_t *a, apr_time_t now)
{
    apr_time_t t, now_s = apr_time_from_sec(apr_time_sec(now));

    if (!parse_amz_date(a->amz_date, &t)) {
        return fail(c, AD_SIGV4_INCOMPLETE, T_INCOMPLETE,
                    apr_psprintf(c->p,
                                 "Date must be in ISO-8601 'basic format'. Got '%s'. "
                                 "See http://en.wikipedia.org/wiki/ISO_8601",
                                 a->amz_date));
    }
    if (t < now_s - AD_SIGV4_MAX_SKEW) {
        return fail(c, AD_SIGV4_EXPIRED, T_INVALID,
                    apr_psprintf(c->p,
                                 "Signature expired: %s is now earlier than %s (%s - 15 min.)",
                                 a->amz_date, fmt_amz_date(c->p, now_s - AD_SIGV4_MAX_SKEW),
                                 fmt_amz_date(c->p, now_s)));
    }
    if (t > now_s + AD_SIGV4_MAX_SKEW) {
        return fail(c, AD_SIGV4_EXPIRED, T_INVALID,
                    apr_psprintf(c->p,
                                 "Signature not yet current: %s is still later than %s "
                                 "(%s + 15 min.)",
                                 a->amz_date, fmt_amz_date(c->p, now_s + AD_SIGV4_MAX_SKEW),
                                 fmt_amz_date(c->p, now_s)));
    }
    return AD_SIGV4_OK;
}

static int names_have(const apr_array_header_t *names, const char *name)
{
    int i;

    for (i = 0; i < names->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(names, i, const char *), name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int is_lower_name(const char *s)
{
    for (; *s; s++) {
        if (apr_isupper(*s) || apr_isspace(*s)) {
            return 0;
        }
    }
    return 1;
}

/* SignedHeaders as every AWS client writes it: lowercase names, sorted,
 * each once, none empty. Anything else is refused before any header is
 * copied: each listed name costs a copy of its header's value, so a list
 * that repeats a name could make a request of a few KB cost megabytes.
 * These texts are ours (AWS's are not recorded). */
static int split_signed_headers(sv_ctx_t *c, sv_auth_t *a)
{
    char *s = apr_pstrdup(c->p, a->signed_headers), *tok, *last;
    const char *prev = NULL;

    a->signed_names = apr_array_make(c->p, 8, sizeof(const char *));
    if (*s == ';' || s[strlen(s) - 1] == ';' || strstr(s, ";;")) {
        return fail(c, AD_SIGV4_INVALID, T_INVALID, "'SignedHeaders' has an empty header name.");
    }
    for (tok = apr_strtok(s, ";", &last); tok; tok = apr_strtok(NULL, ";", &last)) {
        if (a->signed_names->nelts == AD_SIGV4_MAX_SIGNED_HEADERS) {
            return fail(c, AD_SIGV4_INVALID, T_INVALID,
                        apr_psprintf(c->p, "'SignedHeaders' lists more than %d headers.",
                                     AD_SIGV4_MAX_SIGNED_HEADERS));
        }
        if (!is_lower_name(tok) || (prev && strcmp(prev, tok) >= 0)) {
            return fail(c, AD_SIGV4_INVALID, T_INVALID,
                        "'SignedHeaders' must list lowercase header names, sorted, each once.");
        }
        APR_ARRAY_PUSH(a->signed_names, const char *) = prev = tok;
    }
    return AD_SIGV4_OK;
}

/* Host binds the signature to this server; x-amz-date is in the string to
 * sign anyway, but every AWS client signs it and requiring it is ours. A
 * listed header the request lacks would be signed as empty, so a header
 * sent empty could be dropped on the way without breaking the signature
 * (and X-Amz-Target's absence changes how the body is read). */
static int check_signed_headers(sv_ctx_t *c, sv_auth_t *a)
{
    int rc, i;

    if ((rc = split_signed_headers(c, a)) != AD_SIGV4_OK) {
        return rc;
    }
    if (!names_have(a->signed_names, "host")) {
        return fail(c, AD_SIGV4_INVALID, T_INVALID,
                    "'Host' or ':authority' must "
                    "be a 'SignedHeader' in the AWS Authorization.");
    }
    if (!names_have(a->signed_names, "x-amz-date")) {
        return fail(c, AD_SIGV4_INVALID, T_INVALID,
                    "'X-Amz-Date' must be a "
                    "'SignedHeader' in the AWS Authorization.");
    }
    for (i = 0; i < a->signed_names->nelts; i++) {
        const char *name = APR_ARRAY_IDX(a->signed_names, i, const char *);
        if (!header_get(c->req, name)) {
            return fail(c, AD_SIGV4_INVALID, T_INVALID,
                        apr_psprintf(c->p,
                                     "'SignedHeaders' names '%s', which the request does not "
                                     "have.",
                                     name));
        }
    }
    return AD_SIGV4_OK;
}

/* keyid/date/region/service/aws4_request; trailing slashes are ignored. */
static int split_credential(apr_pool_t *p, const char *cred, const char *scope[5])
{
    char *s = apr_pstrdup(p, cred), *slash;
    apr_size_t n = strlen(s);
    int i;

    while (n > 0 && s[n - 1] == '/') {
        s[--n] = '\0';
    }
    for (i = 0; i < 4; i++) {
        if ((slash = strchr(s, '/')) == NULL) {
            return 0;
        }
        *slash = '\0';
        scope[i] = s;
        s = slash + 1;
    }
    scope[4] = s;
    return strchr(s, '/') == NULL;
}

/* AWS reports every scope fault at once, each sentence ending ". ". */
static int check_scope(sv_ctx_t *c, const sv_auth_t *a, const char *service, const char *region)
{
    const char *const *sc = a->scope;
    const char *msg = "";

    if (region && strcmp(sc[2], region) != 0) {
        msg = apr_psprintf(c->p,
                           "Credential should be scoped to a valid region, "
                           "not '%s'. ",
                           sc[2]);
    }
    if (strcmp(sc[3], service) != 0) {
        msg = apr_psprintf(c->p,
                           "%sCredential should be scoped to correct "
                           "service: '%s'. ",
                           msg, service);
    }
    if (strcmp(sc[4], TERMINATOR) != 0) {
        msg = apr_psprintf(c->p,
                           "%sCredential should be scoped with a valid "
                           "terminator: '" TERMINATOR "', not '%s'. ",
                           msg, sc[4]);
    }
    if (strlen(sc[1]) != 8 || strncmp(sc[1], a->amz_date, 8) != 0) {
        msg = apr_psprintf(c->p,
                           "%sDate in Credential scope does not match "
                           "YYYYMMDD from ISO-8601 version of date from HTTP: "
                           "'%s' != '%.8s', from '%s'. ",
                           msg, sc[1], a->amz_date, a->amz_date);
    }
    return *msg ? fail(c, AD_SIGV4_INVALID, T_INVALID, msg) : AD_SIGV4_OK;
}

static int check_credential(sv_ctx_t *c, sv_auth_t *a, const char *service, const char *region)
{
    if (strcmp(a->algorithm, ALGORITHM) != 0) {
        return fail(c, AD_SIGV4_INCOMPLETE, T_INCOMPLETE,
                    apr_psprintf(c->p,
                                 "Unsupported AWS 'algorithm': '%s' (only " ALGORITHM " for now). ",
                                 a->algorithm));
    }
    if (!split_credential(c->p, a->credential, a->scope)) {
        return fail(c, AD_SIGV4_INCOMPLETE, T_INCOMPLETE,
                    apr_psprintf(c->p,
                                 "Credential must have exactly 5 slash-delimited elements, "
                                 "e.g. keyid/date/region/service/term, got '%s'",
                                 a->credential));
    }
    return check_scope(c, a, service, region);
}

/* ------------------------------------------------------------------ */
/* The canonical request                                               */
/* ------------------------------------------------------------------ */

/* Non-S3 rule, as botocore and the JS SDK apply it: drop empty and "."
 * segments, resolve "..", keep a trailing slash, then URI-encode each
 * segment once more ("%20" is signed as "%2520"). */
static const char *canonical_uri(apr_pool_t *p, const char *path)
{
    apr_array_header_t *segs = apr_array_make(p, 8, sizeof(const char *));
    char *s = apr_pstrdup(p, path ? path : ""), *seg, *last;
    apr_size_t n = strlen(s);
    int trailing = n > 0 && s[n - 1] == '/';
    const char *out;
    int i;

    for (seg = apr_strtok(s, "/", &last); seg; seg = apr_strtok(NULL, "/", &last)) {
        if (strcmp(seg, "..") == 0) {
            if (segs->nelts > 0) {
                segs->nelts--;
            }
        }
        else if (strcmp(seg, ".") != 0) {
            APR_ARRAY_PUSH(segs, const char *) = seg;
        }
    }
    if (segs->nelts == 0) {
        return "/";
    }
    /* Encoded in place and joined once: a path of many segments must not
     * cost a copy of the whole per segment. */
    for (i = 0; i < segs->nelts; i++) {
        const char **v = &APR_ARRAY_IDX(segs, i, const char *);
        *v = ad_url_encode(p, *v);
    }
    out = apr_array_pstrcat(p, segs, '/');
    return apr_pstrcat(p, "/", out, trailing ? "/" : "", NULL);
}

typedef struct sv_param_t {
    const char *name;
    const char *value;
} sv_param_t;

static int param_cmp(const void *x, const void *y)
{
    const sv_param_t *a = x, *b = y;
    int r = strcmp(a->name, b->name);

    return r ? r : strcmp(a->value, b->value);
}

/* Each name and value decoded then encoded the SigV4 way, sorted by name
 * then value, "name=value" joined by '&'. */
static const char *canonical_query(apr_pool_t *p, const char *query)
{
    apr_array_header_t *ps = apr_array_make(p, 8, sizeof(sv_param_t));
    apr_array_header_t *parts = apr_array_make(p, 8, sizeof(const char *));
    char *s, *tok, *last;
    int i;

    if (!query || !*query) {
        return "";
    }
    s = apr_pstrdup(p, query);
    for (tok = apr_strtok(s, "&", &last); tok; tok = apr_strtok(NULL, "&", &last)) {
        sv_param_t *q = apr_array_push(ps);
        char *eq = strchr(tok, '=');
        apr_size_t len;

        if (eq) {
            *eq++ = '\0';
            len = uri_decode(eq);
            q->value = ad_url_encode_n(p, eq, len);
        }
        else {
            q->value = ""; /* "key" is signed as "key=" */
        }
        len = uri_decode(tok);
        q->name = ad_url_encode_n(p, tok, len);
    }
    qsort(ps->elts, ps->nelts, sizeof(sv_param_t), param_cmp);
    for (i = 0; i < ps->nelts; i++) {
        const sv_param_t *q = &APR_ARRAY_IDX(ps, i, sv_param_t);
        const char *pair = apr_pstrcat(p, q->name, "=", q->value, NULL);
        APR_ARRAY_PUSH(parts, const char *) = pair;
    }
    return apr_array_pstrcat(p, parts, '&');
}

/* One header's canonical value: every line of that name, trimmed, in the
 * order received, joined by ','. */
static const char *canonical_value(apr_pool_t *p, const ad_sigv4_request_t *req, const char *name)
{
    const char *out = NULL;
    int i;

    for (i = 0; req->headers && i < req->headers->nelts; i++) {
        const ad_sigv4_header_t *h = &APR_ARRAY_IDX(req->headers, i, ad_sigv4_header_t);
        if (h->name && strcasecmp(h->name, name) == 0) {
            const char *v = trim_collapse(p, h->value ? h->value : "");
            out = out ? apr_pstrcat(p, out, ",", v, NULL) : v;
        }
    }
    return out ? out : "";
}

/* The headers the AWS clients sign whose values the mismatch message may
 * show. Any other signed header may have been added on the way in (a proxy's
 * shared secret, a session token): its value is withheld from the text. */
static int value_shown(const char *name)
{
    static const char *const shown[] = {"amz-sdk-invocation-id",
                                        "amz-sdk-request",
                                        "content-length",
                                        "content-type",
                                        "host",
                                        "user-agent",
                                        "x-amz-content-sha256",
                                        "x-amz-date",
                                        "x-amz-target",
                                        "x-amz-user-agent"};
    apr_size_t i;

    for (i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        if (strcmp(name, shown[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The headers the client listed (lowercase and sorted: checked); sets
 * *names to the SignedHeaders line to sign. With withheld set, the lines
 * for the mismatch message instead: the values value_shown() refuses are
 * replaced, and *withheld counts them. */
static const char *canonical_headers(apr_pool_t *p, const ad_sigv4_request_t *req,
                                     const apr_array_header_t *list, const char **names,
                                     int *withheld)
{
    apr_array_header_t *lines = apr_array_make(p, list->nelts + 1, sizeof(const char *));
    int i;

    for (i = 0; i < list->nelts; i++) {
        const char *tok = APR_ARRAY_IDX(list, i, const char *), *line;
        if (withheld && !value_shown(tok)) {
            line = apr_pstrcat(p, tok, ":(value withheld)\n", NULL);
            ++*withheld;
        }
        else {
            line = apr_pstrcat(p, tok, ":", canonical_value(p, req, tok), "\n", NULL);
        }
        APR_ARRAY_PUSH(lines, const char *) = line;
    }
    *names = apr_array_pstrcat(p, list, ';');
    return apr_array_pstrcat(p, lines, 0);
}

/* ------------------------------------------------------------------ */
/* The signature                                                       */
/* ------------------------------------------------------------------ */

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
 * "aws4_request"); then HMAC(kSigning, string to sign) in hex. */
static int sign(apr_pool_t *p, const char *secret, const char *const scope[5],
                const char *string_to_sign, char out[HEX_LEN + 1])
{
    unsigned char k[SHA256_LEN];
    char *key = apr_pstrcat(p, "AWS4", secret, NULL);
    int ok;

    ok = hmac_sha256((unsigned char *)key, (int)strlen(key), scope[1], k) &&
         hmac_sha256(k, SHA256_LEN, scope[2], k) && hmac_sha256(k, SHA256_LEN, scope[3], k) &&
         hmac_sha256(k, SHA256_LEN, TERMINATOR, k) && hmac_sha256(k, SHA256_LEN, string_to_sign, k);
    if (ok) {
        hex_encode(k, SHA256_LEN, out);
    }
    /* The secret and the keys derived from it leave no copy behind. */
    OPENSSL_cleanse(key, strlen(key));
    OPENSSL_cleanse(k, sizeof(k));
    return ok;
}

/* AWS's text for a signature that does not match: the canonical request and
 * the string to sign it should have had. Values a client does not know it
 * signed are withheld, and so is then the hash of the real canonical
 * request, or a guess at a withheld value could be checked against it
 * offline. */
static int fail_mismatch(sv_ctx_t *c, const sv_auth_t *a, const char *head, const char *body_hash,
                         const char *scope, const char *creq_hash)
{
    int withheld = 0;
    const char *names, *shown = canonical_headers(c->p, c->req, a->signed_names, &names, &withheld);

    return fail(c, AD_SIGV4_MISMATCH, T_INVALID,
                apr_pstrcat(c->p,
                            M_MISMATCH "\n\nThe Canonical String for this request should "
                                       "have been\n'",
                            head, shown, "\n", names, "\n", body_hash,
                            "'\n\nThe String-to-Sign should have been\n'", scope,
                            withheld ? "(hash withheld: it covers withheld values)" : creq_hash,
                            "'\n", NULL));
}

static int check_signature(sv_ctx_t *c, const sv_auth_t *a, const char *secret)
{
    const ad_sigv4_request_t *req = c->req;
    const char *names, *headers, *head, *scope, *creq, *sts, *sent;
    char body_hash[HEX_LEN + 1], creq_hash[HEX_LEN + 1], sig[HEX_LEN + 1];

    if (!sha256_hex(req->body, req->body_len, body_hash)) {
        return fail(c, AD_SIGV4_INTERNAL, T_INTERNAL, M_INTERNAL);
    }
    headers = canonical_headers(c->p, req, a->signed_names, &names, NULL);
    head = apr_pstrcat(c->p, req->method ? req->method : "", "\n", canonical_uri(c->p, req->path),
                       "\n", canonical_query(c->p, req->query), "\n", NULL);
    creq = apr_pstrcat(c->p, head, headers, "\n", names, "\n", body_hash, NULL);
    if (!sha256_hex(creq, strlen(creq), creq_hash)) {
        return fail(c, AD_SIGV4_INTERNAL, T_INTERNAL, M_INTERNAL);
    }
    scope = apr_pstrcat(c->p, ALGORITHM "\n", a->amz_date, "\n", a->scope[1], "/", a->scope[2], "/",
                        a->scope[3], "/", TERMINATOR "\n", NULL);
    sts = apr_pstrcat(c->p, scope, creq_hash, NULL);
    if (!sign(c->p, secret, a->scope, sts, sig)) {
        return fail(c, AD_SIGV4_INTERNAL, T_INTERNAL, M_INTERNAL);
    }
    /* The JS SDK sends the body's hash; a body changed on the way no
     * longer matches it. The text is S3's (no JSON service's is known). */
    sent = header_get(req, "x-amz-content-sha256");
    if (sent && strcmp(trim_collapse(c->p, sent), body_hash) != 0) {
        return fail(c, AD_SIGV4_INVALID, T_INVALID,
                    "The provided "
                    "'x-amz-content-sha256' header does not match what was "
                    "computed.");
    }
    /* Constant time: how much of a guess matched must not show. */
    if (strlen(a->signature) != HEX_LEN || CRYPTO_memcmp(sig, a->signature, HEX_LEN) != 0) {
        return fail_mismatch(c, a, head, body_hash, scope, creq_hash);
    }
    return AD_SIGV4_OK;
}

/* Everything up to the signature itself; *secret is the key's. */
static int check_head(sv_ctx_t *c, sv_auth_t *a, const char *service, const char *region,
                      ad_sigv4_lookup_fn *lookup, void *baton, apr_time_t now, const char **secret)
{
    int rc;

    *c->status = 200;
    *c->error_type = NULL;
    *c->message = NULL;
    if ((rc = parse_auth(c, a)) != AD_SIGV4_OK || (rc = check_required(c, a)) != AD_SIGV4_OK ||
        (rc = check_date(c, a, now)) != AD_SIGV4_OK ||
        (rc = check_signed_headers(c, a)) != AD_SIGV4_OK ||
        (rc = check_credential(c, a, service, region)) != AD_SIGV4_OK) {
        return rc;
    }
    *secret = lookup(baton, a->scope[0]);
    if (!*secret) {
        return fail(c, AD_SIGV4_UNKNOWN_KEY, T_UNKNOWN,
                    "The security token included in the request is invalid.");
    }
    return AD_SIGV4_OK;
}

/* The head's checks, and with whole the signature's too. */
static int run_checks(apr_pool_t *p, const ad_sigv4_request_t *req, const char *service,
                      const char *region, ad_sigv4_lookup_fn *lookup, void *baton, apr_time_t now,
                      int *status, const char **error_type, const char **message, int whole)
{
    sv_ctx_t c = {p, req, status, error_type, message};
    sv_auth_t a;
    const char *secret;
    int rc = check_head(&c, &a, service, region, lookup, baton, now, &secret);

    return rc == AD_SIGV4_OK && whole ? check_signature(&c, &a, secret) : rc;
}

int ad_sigv4_check_head(apr_pool_t *p, const ad_sigv4_request_t *req, const char *service,
                        const char *region, ad_sigv4_lookup_fn *lookup, void *baton, apr_time_t now,
                        int *status, const char **error_type, const char **message)
{
    return run_checks(p, req, service, region, lookup, baton, now, status, error_type, message, 0);
}

int ad_sigv4_verify(apr_pool_t *p, const ad_sigv4_request_t *req, const char *service,
                    const char *region, ad_sigv4_lookup_fn *lookup, void *baton, apr_time_t now,
                    int *status, const char **error_type, const char **message)
{
    return run_checks(p, req, service, region, lookup, baton, now, status, error_type, message, 1);
}
