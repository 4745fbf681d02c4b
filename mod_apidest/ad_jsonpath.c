/* EventBridge's JSONPath subset: compiled once into a list of steps, then
 * walked per event without allocating anything but the result array. */
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "ad_jsonpath.h"

/* Indexes beyond this cannot address a JSON array anyone sends us, and the
 * cap keeps the digit loop free of overflow. */
#define MAX_INDEX_DIGITS 9

typedef enum { STEP_NAME, STEP_INDEX, STEP_WILDCARD } step_kind_e;

typedef struct {
    step_kind_e kind;
    const char *name; /* STEP_NAME */
    long index;       /* STEP_INDEX; negative counts from the end */
} jp_step_t;

struct ad_jsonpath_t {
    const jp_step_t *steps;
    int nsteps;
    int indefinite;
};

/* Any printable byte may be part of a name except the ones that delimit
 * steps or belong to bracket, filter and function syntax, which EventBridge
 * does not support; UTF-8 names pass unchanged. */
static int is_name_char(char ch)
{
    unsigned char c = (unsigned char)ch;

    return c > 0x20 && c != 0x7f && !strchr(".[]*'\"()", c);
}

static const char *parse_name(apr_pool_t *p, const char **s, jp_step_t *st)
{
    const char *start = *s;

    if (**s == '*') {
        (*s)++;
        st->kind = STEP_WILDCARD;
        return is_name_char(**s) ? "'*' must stand alone as a name" : NULL;
    }
    if (**s == '.') {
        return "recursive descent (..) is not supported";
    }
    while (is_name_char(**s)) {
        (*s)++;
    }
    if (*s == start) {
        return **s ? "a name must follow '.'" : "the path ends with '.'";
    }
    st->kind = STEP_NAME;
    st->name = apr_pstrmemdup(p, start, *s - start);
    return NULL;
}

static const char *parse_bracket(const char **s, jp_step_t *st)
{
    const char *c = *s + 1;
    int neg = 0, digits = 0;
    long v = 0;

    if (*c == '*' && c[1] == ']') {
        st->kind = STEP_WILDCARD;
        *s = c + 2;
        return NULL;
    }
    if (*c == '-') {
        neg = 1;
        c++;
    }
    while (*c >= '0' && *c <= '9' && digits < MAX_INDEX_DIGITS) {
        v = v * 10 + (*c - '0');
        c++;
        digits++;
    }
    if (digits && *c >= '0' && *c <= '9') {
        return "array index too large";
    }
    if (!digits || *c != ']') {
        return "only [n] and [*] are supported in brackets "
               "(use dot notation for names)";
    }
    st->kind = STEP_INDEX;
    st->index = neg ? -v : v;
    *s = c + 1;
    return NULL;
}

ad_jsonpath_t *ad_jsonpath_compile(apr_pool_t *p, const char *path, const char **err)
{
    apr_array_header_t *steps = apr_array_make(p, 4, sizeof(jp_step_t));
    ad_jsonpath_t *jp;
    const char *s = path, *why = NULL;
    int indefinite = 0;

    if (*s != '$') {
        why = "a JSONPath starts with '$'";
    }
    else {
        s++;
    }
    while (!why && *s) {
        jp_step_t *st = apr_array_push(steps);
        if (*s == '.') {
            s++;
            why = parse_name(p, &s, st);
        }
        else if (*s == '[') {
            why = parse_bracket(&s, st);
        }
        else {
            why = "expected '.' or '['";
        }
        if (!why && st->kind == STEP_WILDCARD) {
            indefinite = 1;
        }
    }
    if (why) {
        *err = apr_psprintf(p, "%s (at character %d)", why, (int)(s - path) + 1);
        return NULL;
    }
    jp = apr_pcalloc(p, sizeof(*jp));
    jp->steps = (const jp_step_t *)steps->elts;
    jp->nsteps = steps->nelts;
    jp->indefinite = indefinite;
    return jp;
}

static json_t *array_at(const json_t *node, long index)
{
    long size = (long)json_array_size(node);

    if (index < 0) {
        index += size;
    }
    if (index < 0 || index >= size) {
        return NULL;
    }
    return json_array_get(node, (size_t)index);
}

/* The child a non-wildcard step names, or NULL. */
static json_t *step_into(const json_t *node, const jp_step_t *st)
{
    if (st->kind == STEP_NAME) {
        return json_object_get(node, st->name);
    }
    return json_is_array(node) ? array_at(node, st->index) : NULL;
}

static void collect(const json_t *node, const jp_step_t *st, int n, json_t *out)
{
    json_t *child;

    if (n == 0) {
        json_array_append(out, (json_t *)node);
        return;
    }
    if (st->kind != STEP_WILDCARD) {
        child = step_into(node, st);
        if (child) {
            collect(child, st + 1, n - 1, out);
        }
    }
    else if (json_is_object(node)) {
        const char *key;
        json_object_foreach((json_t *)node, key, child)
        {
            collect(child, st + 1, n - 1, out);
        }
    }
    else if (json_is_array(node)) {
        size_t i;
        for (i = 0; i < json_array_size(node); i++) {
            collect(json_array_get(node, i), st + 1, n - 1, out);
        }
    }
}

json_t *ad_jsonpath_eval(const ad_jsonpath_t *jp, const json_t *doc)
{
    const json_t *node = doc;
    int i;

    if (!doc) {
        return NULL;
    }
    if (jp->indefinite) {
        json_t *out = json_array();
        if (out) {
            collect(doc, jp->steps, jp->nsteps, out);
        }
        return out;
    }
    for (i = 0; i < jp->nsteps && node; i++) {
        node = step_into(node, &jp->steps[i]);
    }
    return node ? json_incref((json_t *)node) : NULL;
}
