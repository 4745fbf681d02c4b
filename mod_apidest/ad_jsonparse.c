#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ad_jsonparse.h"
#include "ad_util.h"

/* Deeper documents go to jansson (which allows 2048 levels): this parser
 * recurses, and ingest never sees such nesting from a real producer. */
#define MAX_DEPTH 256
#define NUM_MAX   63 /* longer numbers: jansson's */

typedef struct {
    const unsigned char *p, *end;
    int depth;
    char *tmp; /* unescaped strings, malloc'd, grows */
    size_t tmp_cap;
} parser_t;

static json_t *parse_value(parser_t *ps);

static void skip_ws(parser_t *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')) {
        ps->p++;
    }
}

static size_t plain_run(const unsigned char *s, const unsigned char *end)
{
    return ad_json_plain_run(s, (size_t)(end - s), 1);
}

/* Strict UTF-8 (as jansson checks it): length of the sequence at s, 0 when
 * it is not valid. */
static int tmp_put(parser_t *ps, size_t *len, const void *src, size_t n)
{
    if (*len + n + 1 > ps->tmp_cap) {
        size_t cap = ps->tmp_cap ? ps->tmp_cap : 256;
        char *t;
        while (cap < *len + n + 1) {
            cap *= 2;
        }
        if (!(t = realloc(ps->tmp, cap))) {
            return 0;
        }
        ps->tmp = t;
        ps->tmp_cap = cap;
    }
    memcpy(ps->tmp + *len, src, n);
    *len += n;
    return 1;
}

/* A "backslash u" escape (and its low surrogate) at ps->p, just past the
 * 'u'. */
static int unescape_u(parser_t *ps, size_t *len)
{
    char b[4];
    int used;
    long u = ad_json_unicode_escape(ps->p - 1, ps->end, &used);

    if (u < 0) {
        return 0;
    }
    ps->p += used - 1;
    return tmp_put(ps, len, b, ad_utf8_put(b, (apr_uint32_t)u));
}

static int unescape_one(parser_t *ps, size_t *len)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *k;
    unsigned c;

    if (ps->p >= ps->end) {
        return 0;
    }
    c = *ps->p++;
    if (c == 'u') {
        return unescape_u(ps, len);
    }
    if (!c || !(k = strchr(from, (int)c))) {
        return 0;
    }
    return tmp_put(ps, len, &to[k - from], 1);
}

/* The string after its opening quote, unescaped into ps->tmp (*out points
 * into the input when it has no escapes). */
static int scan_string(parser_t *ps, const char **out, size_t *out_len)
{
    const unsigned char *start = ps->p;
    size_t len = 0;
    int escaped = 0;

    for (;;) {
        size_t run = plain_run(ps->p, ps->end);
        const unsigned char *seg = ps->p;
        unsigned c;

        ps->p += run;
        while (ps->p < ps->end && *ps->p >= 0x80) {
            size_t n = ad_utf8_seq_len(ps->p, ps->end);
            if (!n) {
                return 0;
            }
            ps->p += n;
            ps->p += plain_run(ps->p, ps->end);
        }
        if (escaped && !tmp_put(ps, &len, seg, (size_t)(ps->p - seg))) {
            return 0;
        }
        if (ps->p >= ps->end) {
            return 0;
        }
        c = *ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c != '\\') {
            return 0; /* a control character: jansson's error */
        }
        if (!escaped) {
            escaped = 1;
            if (!tmp_put(ps, &len, start, (size_t)(ps->p - start))) {
                return 0;
            }
        }
        ps->p++;
        if (!unescape_one(ps, &len)) {
            return 0;
        }
    }
    if (escaped) {
        ps->tmp[len] = '\0';
        *out = ps->tmp;
        *out_len = len;
    }
    else {
        *out = (const char *)start;
        *out_len = (size_t)(ps->p - 1 - start);
    }
    return 1;
}

static json_t *parse_string(parser_t *ps)
{
    const char *s;
    size_t n;
    return scan_string(ps, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
}

static int is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

/* A number, an integer when it has neither fraction nor exponent:
 * strtoll/strtod with jansson's range errors. */
static json_t *parse_number(parser_t *ps)
{
    const unsigned char *q;
    char buf[NUM_MAX + 1];
    ad_json_number_t num;
    int real;
    size_t n;

    if (!ad_json_number_lex(ps->p, ps->end, &num)) {
        return NULL;
    }
    q = ps->p + num.len;
    real = num.real;
    if ((n = (size_t)(q - ps->p)) > NUM_MAX) {
        return NULL;
    }
    memcpy(buf, ps->p, n);
    buf[n] = '\0';
    ps->p = q;
    errno = 0;
    if (!real) {
        long long v = strtoll(buf, NULL, 10);
        return errno == ERANGE ? NULL : json_integer((json_int_t)v);
    }
    else {
        double v = strtod(buf, NULL);
        /* jansson refuses overflow, keeps underflow */
        return errno == ERANGE && (v > 1.0 || v < -1.0) ? NULL : json_real(v);
    }
}

static json_t *parse_literal(parser_t *ps)
{
    static const struct {
        const char *word;
        size_t len;
    } lits[] = {{"true", 4}, {"false", 5}, {"null", 4}};
    size_t i;

    for (i = 0; i < 3; i++) {
        const unsigned char *after = ps->p + lits[i].len;
        if ((size_t)(ps->end - ps->p) >= lits[i].len && !memcmp(ps->p, lits[i].word, lits[i].len) &&
            /* jansson reads a word of letters: "truex" is not true */
            (after == ps->end ||
             !((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z')))) {
            ps->p = after;
            return i == 0 ? json_true() : i == 1 ? json_false() : json_null();
        }
    }
    return NULL;
}

/* After a member or element: 1 at ',', 0 at the closing character, -1
 * otherwise. */
static int next_item(parser_t *ps, unsigned char close)
{
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        skip_ws(ps);
        return 1;
    }
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    return -1;
}

static int object_member(parser_t *ps, json_t *obj)
{
    const char *k;
    size_t klen;
    char *key;
    json_t *v;
    int ok;

    if (ps->p >= ps->end || *ps->p != '"') {
        return 0;
    }
    ps->p++;
    if (!scan_string(ps, &k, &klen) || !(key = malloc(klen + 1))) {
        return 0;
    }
    memcpy(key, k, klen);
    key[klen] = '\0';
    skip_ws(ps);
    ok = ps->p < ps->end && *ps->p == ':';
    if (ok) {
        ps->p++;
        skip_ws(ps);
        ok = (v = parse_value(ps)) != NULL;
        /* replaces an earlier value of the key in place, as jansson does */
        ok = ok && json_object_setn_new_nocheck(obj, key, klen, v) == 0;
    }
    free(key);
    return ok;
}

static json_t *parse_object(parser_t *ps)
{
    json_t *obj = json_object();
    int more;

    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return obj;
    }
    do {
        if (!object_member(ps, obj)) {
            json_decref(obj);
            return NULL;
        }
    } while ((more = next_item(ps, '}')) > 0);
    if (more < 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *parse_array(parser_t *ps)
{
    json_t *arr = json_array();
    int more;

    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return arr;
    }
    do {
        json_t *v = parse_value(ps);
        if (!v || json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return NULL;
        }
    } while ((more = next_item(ps, ']')) > 0);
    if (more < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *parse_value(parser_t *ps)
{
    json_t *v;
    unsigned c;

    if (ps->p >= ps->end) {
        return NULL;
    }
    c = *ps->p;
    if (c == '{' || c == '[') {
        if (++ps->depth > MAX_DEPTH) {
            return NULL;
        }
        ps->p++;
        v = c == '{' ? parse_object(ps) : parse_array(ps);
        ps->depth--;
        return v;
    }
    if (c == '"') {
        ps->p++;
        return parse_string(ps);
    }
    if (c == '-' || is_digit(c)) {
        return parse_number(ps);
    }
    return parse_literal(ps);
}

json_t *ad_json_parse(const char *buf, size_t len, json_error_t *err)
{
    parser_t ps;
    json_t *v = NULL;

    memset(&ps, 0, sizeof(ps));
    ps.p = (const unsigned char *)buf;
    ps.end = ps.p + len;
    skip_ws(&ps);
    /* without JSON_DECODE_ANY jansson wants an object or array */
    if (ps.p < ps.end && (*ps.p == '{' || *ps.p == '[')) {
        v = parse_value(&ps);
        skip_ws(&ps);
        if (v && ps.p != ps.end) {
            json_decref(v);
            v = NULL;
        }
    }
    free(ps.tmp);
    if (!v) {
        /* an error, or input left to jansson: its result and its message */
        return json_loadb(buf, len, 0, err);
    }
    return v;
}
