/* Target input: Input, InputPath and InputTransformer as EventBridge applies
 * them. A template is split at config time into literal text and
 * placeholders, each placeholder knowing where it stands (string template,
 * JSON value, inside a JSON string literal), because that alone decides how
 * EventBridge writes its value. */
#include <string.h>
#include <strings.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "ad_jsonpath.h"
#include "ad_transform.h"
#include "ad_util.h"

/* Constraints of the PutTargets model. */
#define MAX_INPUT_LEN    8192
#define MAX_TEMPLATE_LEN 8192
#define MAX_PATH_LEN     256
#define MAX_KEY_LEN      256
#define MAX_PATHS_MAP    100
#define KEY_PATTERN      "[A-Za-z0-9\\_\\-]+"

typedef enum {
    TX_EVENT,    /* no option: the whole envelope */
    TX_CONSTANT, /* Input */
    TX_PATH,     /* InputPath */
    TX_TEMPLATE  /* InputTransformer */
} tx_kind_e;

/* Reserved variables are numbered below zero so that a placeholder's var
 * tells them from InputPathsMap entries (0..n-1). */
enum {
    VAR_NONE = -100,
    RV_RULE_ARN = -1,
    RV_RULE_NAME = -2,
    RV_INGESTION_TIME = -3,
    RV_EVENT = -4,
    RV_EVENT_JSON = -5
};

static const struct {
    const char *name;
    int var;
} reserved_vars[] = {
    {"aws.events.rule-arn", RV_RULE_ARN},
    {"aws.events.rule-name", RV_RULE_NAME},
    {"aws.events.event.ingestion-time", RV_INGESTION_TIME},
    {"aws.events.event", RV_EVENT},
    {"aws.events.event.json", RV_EVENT_JSON},
};

/* Where a placeholder stands; see write_value for what each implies. */
typedef enum { AT_TEXT, AT_JSON_VALUE, AT_JSON_STRING } place_e;

typedef struct {
    const char *text; /* literal text before the placeholder */
    apr_size_t len;
    int var; /* index into vars, RV_*, or VAR_NONE (the tail) */
    place_e at;
} tx_seg_t;

typedef struct {
    const char *name;
    const ad_jsonpath_t *path;
} tx_var_t;

struct ad_transform_t {
    const char *target_id;
    tx_kind_e kind;
    const char *constant; /* TX_CONSTANT, compact JSON */
    apr_size_t constant_len;
    const char *path_text; /* TX_PATH */
    const ad_jsonpath_t *path;
    int json_mode; /* TX_TEMPLATE */
    const tx_seg_t *segs;
    int nsegs;
    const tx_var_t *vars;
    int nvars;
};

/* ------------------------------------------------------------------ */
/* Compile: the model's constraints                                   */
/* ------------------------------------------------------------------ */

/* Lengths as AWS counts them: UTF-16 code units of a Java string. */
static apr_size_t aws_length(const char *s)
{
    apr_size_t n = 0;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c & 0xc0) != 0x80) {
            n += (c >= 0xf0) ? 2 : 1;
        }
    }
    return n;
}

static const char *length_error(apr_pool_t *p, const char *what, const char *id, const char *s,
                                apr_size_t min, apr_size_t max)
{
    apr_size_t n = aws_length(s);

    if (n < min) {
        return apr_psprintf(p,
                            "%s of target %s failed to satisfy constraint: "
                            "Member must have length greater than or equal to %" APR_SIZE_T_FMT,
                            what, id, min);
    }
    if (n > max) {
        return apr_psprintf(p,
                            "%s of target %s failed to satisfy constraint: "
                            "Member must have length less than or equal to %" APR_SIZE_T_FMT,
                            what, id, max);
    }
    return NULL;
}

static int key_matches_pattern(const char *k)
{
    for (; *k; k++) {
        if (!apr_isalnum(*k) && *k != '_' && *k != '-') {
            return 0;
        }
    }
    return 1;
}

static const char *check_key(apr_pool_t *p, const char *id, const char *k)
{
    const char *what = apr_psprintf(p, "InputPathsMap key '%s'", k);
    const char *why = length_error(p, what, id, k, 1, MAX_KEY_LEN);

    if (!why && !key_matches_pattern(k)) {
        why = apr_psprintf(p,
                           "%s of target %s failed to satisfy constraint: "
                           "Member must satisfy regular expression pattern: " KEY_PATTERN,
                           what, id);
    }
    return why;
}

static const char *check_paths_map(apr_pool_t *p, const char *id, const apr_array_header_t *map)
{
    const ad_transform_var_t *v = (const ad_transform_var_t *)map->elts;
    const char *why = NULL;
    int i;

    if (map->nelts > MAX_PATHS_MAP) {
        return apr_psprintf(p,
                            "InputPathsMap of target %s failed to satisfy "
                            "constraint: Member must have length less than or "
                            "equal to %d",
                            id, MAX_PATHS_MAP);
    }
    for (i = 0; i < map->nelts && !why; i++) {
        if (!v[i].name || !v[i].path) {
            return apr_psprintf(p,
                                "InputPathsMap of target %s has an entry "
                                "without a %s",
                                id, v[i].name ? "path" : "name");
        }
        /* Reserved names carry dots, which the key pattern refuses anyway;
         * say what is really wrong. */
        if (!strncasecmp(v[i].name, "aws.", 4)) {
            return apr_psprintf(p,
                                "InputPathsMap key '%s' of target %s is "
                                "reserved: aws.* names are predefined "
                                "variables and cannot be redefined",
                                v[i].name, id);
        }
        why = check_key(p, id, v[i].name);
        if (!why) {
            const char *what = apr_psprintf(p,
                                            "InputPathsMap value for key "
                                            "'%s'",
                                            v[i].name);
            why = length_error(p, what, id, v[i].path, 0, MAX_PATH_LEN);
        }
    }
    return why;
}

/* Model constraints first, as AWS validates the request shape before it
 * looks at what the options mean. */
static const char *check_constraints(apr_pool_t *p, const char *id, const char *input,
                                     const char *input_path, const apr_array_header_t *map,
                                     const char *tpl)
{
    const char *why = NULL;

    if (input) {
        why = length_error(p, "Input", id, input, 0, MAX_INPUT_LEN);
    }
    if (!why && input_path) {
        why = length_error(p, "InputPath", id, input_path, 0, MAX_PATH_LEN);
    }
    if (!why && map && map->nelts && !tpl) {
        why = apr_psprintf(p,
                           "Value null at 'InputTemplate' of target %s "
                           "failed to satisfy constraint: Member must not be "
                           "null",
                           id);
    }
    if (!why && tpl) {
        why = length_error(p, "InputTemplate", id, tpl, 1, MAX_TEMPLATE_LEN);
    }
    if (!why && map) {
        why = check_paths_map(p, id, map);
    }
    return why;
}

/* ------------------------------------------------------------------ */
/* Compile: each kind of input                                        */
/* ------------------------------------------------------------------ */

static const char *compile_constant(apr_pool_t *p, ad_transform_t *t, const char *input)
{
    json_error_t jerr;
    json_t *v = json_loads(input, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    size_t n = 0;

    if (!v) {
        return apr_psprintf(p, "Input for target %s is not a valid JSON text.", t->target_id);
    }
    t->kind = TX_CONSTANT;
    t->constant = ad_json_dump(p, v, &n);
    t->constant_len = n;
    json_decref(v);
    return NULL;
}

static const char *compile_input_path(apr_pool_t *p, ad_transform_t *t, const char *path)
{
    const char *jerr = NULL;

    t->path = ad_jsonpath_compile(p, path, &jerr);
    if (!t->path) {
        return apr_psprintf(p,
                            "InputPath '%s' of target %s is not a supported "
                            "JSONPath: %s",
                            path, t->target_id, jerr);
    }
    t->kind = TX_PATH;
    t->path_text = path;
    return NULL;
}

static const char *compile_vars(apr_pool_t *p, ad_transform_t *t, const apr_array_header_t *map)
{
    const ad_transform_var_t *v;
    tx_var_t *vars;
    const char *jerr = NULL;
    int i, j, n = map ? map->nelts : 0;

    v = n ? (const ad_transform_var_t *)map->elts : NULL;
    vars = apr_pcalloc(p, sizeof(*vars) * (n ? n : 1));
    for (i = 0; i < n; i++) {
        for (j = 0; j < i; j++) {
            if (!strcmp(vars[j].name, v[i].name)) {
                return apr_psprintf(p,
                                    "InputPathsMap key '%s' of target %s is "
                                    "defined more than once",
                                    v[i].name, t->target_id);
            }
        }
        vars[i].name = v[i].name;
        vars[i].path = ad_jsonpath_compile(p, v[i].path, &jerr);
        if (!vars[i].path) {
            return apr_psprintf(p,
                                "InputPathsMap value '%s' for key '%s' of "
                                "target %s is not a supported JSONPath: %s",
                                v[i].path, v[i].name, t->target_id, jerr);
        }
    }
    t->vars = vars;
    t->nvars = n;
    return NULL;
}

/* The variable a placeholder names, or VAR_NONE when nothing defines it. */
static int lookup_var(const ad_transform_t *t, const char *name)
{
    size_t i;
    int j;

    for (i = 0; i < sizeof(reserved_vars) / sizeof(reserved_vars[0]); i++) {
        if (!strcmp(reserved_vars[i].name, name)) {
            return reserved_vars[i].var;
        }
    }
    for (j = 0; j < t->nvars; j++) {
        if (!strcmp(t->vars[j].name, name)) {
            return j;
        }
    }
    return VAR_NONE;
}

/* Placeholder names are runs of printable characters other than quotes and
 * angle brackets, so "a < b" stays text while any "<word>" is a
 * placeholder: EventBridge offers no way to escape '<' or '>'. */
static int is_placeholder_char(char ch)
{
    unsigned char c = (unsigned char)ch;

    return c > 0x20 && c != 0x7f && c != '<' && c != '>' && c != '"';
}

static const char *placeholder_end(const char *s)
{
    const char *c = s + 1;

    while (is_placeholder_char(*c)) {
        c++;
    }
    return (c > s + 1 && *c == '>') ? c : NULL;
}

/* EventBridge treats a template as JSON when it is an object (or array);
 * anything else, typically text wrapped in quotes, is a string template. */
static int template_is_json(const char *tpl)
{
    tpl += strspn(tpl, " \t\r\n");
    return *tpl == '{' || *tpl == '[';
}

static void push_seg(apr_array_header_t *segs, const char *lit, const char *end, int var,
                     place_e at)
{
    tx_seg_t *seg = apr_array_push(segs);

    seg->text = lit;
    seg->len = (apr_size_t)(end - lit);
    seg->var = var;
    seg->at = at;
}

static const char *split_template(apr_pool_t *p, ad_transform_t *t, const char *tpl)
{
    apr_array_header_t *segs = apr_array_make(p, 8, sizeof(tx_seg_t));
    const char *s = tpl, *lit = tpl, *end;
    int in_string = 0, var;

    while (*s) {
        if (*s == '<' && (end = placeholder_end(s)) != NULL) {
            const char *name = apr_pstrmemdup(p, s + 1, end - s - 1);
            var = lookup_var(t, name);
            if (var == VAR_NONE) {
                return apr_psprintf(p,
                                    "InputTemplate for target %s contains "
                                    "invalid placeholder %s.",
                                    t->target_id, name);
            }
            push_seg(segs, lit, s, var,
                     !t->json_mode ? AT_TEXT
                     : in_string   ? AT_JSON_STRING
                                   : AT_JSON_VALUE);
            s = lit = end + 1;
            continue;
        }
        if (t->json_mode && in_string && *s == '\\' && s[1] && s[1] != '<') {
            s += 2;
            continue;
        }
        if (t->json_mode && *s == '"') {
            in_string = !in_string;
        }
        s++;
    }
    push_seg(segs, lit, s, VAR_NONE, AT_TEXT);
    t->segs = (const tx_seg_t *)segs->elts;
    t->nsegs = segs->nelts;
    return NULL;
}

static const char *compile_template(apr_pool_t *p, ad_transform_t *t, const apr_array_header_t *map,
                                    const char *tpl)
{
    const char *why = compile_vars(p, t, map);

    if (why) {
        return why;
    }
    t->kind = TX_TEMPLATE;
    t->json_mode = template_is_json(tpl);
    return split_template(p, t, tpl);
}

ad_transform_t *ad_transform_compile(apr_pool_t *p, const char *target_id, const char *input,
                                     const char *input_path, const apr_array_header_t *paths_map,
                                     const char *input_template, const char **err)
{
    ad_transform_t *t = apr_pcalloc(p, sizeof(*t));
    int has_map = paths_map && paths_map->nelts > 0;
    const char *why;

    t->target_id = target_id ? apr_pstrdup(p, target_id) : "";
    t->kind = TX_EVENT;
    why = check_constraints(p, t->target_id, input, input_path, paths_map, input_template);
    if (!why && (input != NULL) + (input_path != NULL) + (input_template != NULL || has_map) > 1) {
        why = apr_psprintf(p,
                           "Only one of Input, InputPath, or "
                           "InputTransformer must be provided for target %s.",
                           t->target_id);
    }
    if (!why && input) {
        why = compile_constant(p, t, input);
    }
    else if (!why && input_path) {
        why = compile_input_path(p, t, apr_pstrdup(p, input_path));
    }
    else if (!why && input_template) {
        why = compile_template(p, t, paths_map, apr_pstrdup(p, input_template));
    }
    if (why) {
        *err = why;
        return NULL;
    }
    return t;
}

/* ------------------------------------------------------------------ */
/* Apply                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    apr_pool_t *p;
    char *buf;
    apr_size_t len, cap;
    int over; /* past AD_TRANSFORM_MAX_OUTPUT: the rest is not written */
} tx_buf_t;

static void buf_put(tx_buf_t *b, const char *s, apr_size_t n)
{
    if (b->over || n > AD_TRANSFORM_MAX_OUTPUT - b->len) {
        b->over = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        apr_size_t cap = b->cap ? b->cap * 2 : 256;
        char *nb;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        nb = apr_palloc(b->p, cap);
        if (b->len) {
            memcpy(nb, b->buf, b->len);
        }
        b->buf = nb;
        b->cap = cap;
    }
    if (n) {
        memcpy(b->buf + b->len, s, n);
    }
    b->len += n;
    b->buf[b->len] = '\0';
}

/* A number, true, false or null as ad_json_dump prints it, without a
 * pool allocation: a string template prints every scalar of an array this
 * way, and a dump each (256 bytes of pool) made a 1 MB array cost 128 MB. */
static int put_scalar(tx_buf_t *b, const json_t *v)
{
    char tmp[AD_JSON_REAL_MAX + 32];

    switch (json_typeof(v)) {
    case JSON_INTEGER:
        snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        buf_put(b, tmp, strlen(tmp));
        return 1;
    case JSON_REAL:
        buf_put(b, tmp, ad_json_real_text(json_real_value(v), tmp));
        return 1;
    case JSON_TRUE:
        buf_put(b, "true", 4);
        return 1;
    case JSON_FALSE:
        buf_put(b, "false", 5);
        return 1;
    case JSON_NULL:
        buf_put(b, "null", 4);
        return 1;
    default:
        return 0;
    }
}

static void put_json(tx_buf_t *b, const json_t *v)
{
    size_t n = 0;
    const char *s;

    if (b->over || put_scalar(b, v)) {
        return;
    }
    s = ad_json_dump(b->p, v, &n);
    buf_put(b, s, n);
}

/* How a string template shows objects and arrays: JSON without any quotes
 * (AWS-recorded: {acc_id:0a787ecb-4015,sf_id:baz}, [ACTIVE,INACTIVE]).
 * Stops where the output went over its cap. */
static void put_bare(tx_buf_t *b, const json_t *v)
{
    const char *key;
    json_t *m;
    size_t i;
    int first = 1;

    if (b->over) {
        return;
    }
    switch (json_typeof(v)) {
    case JSON_STRING:
        buf_put(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_OBJECT:
        buf_put(b, "{", 1);
        json_object_foreach((json_t *)v, key, m)
        {
            if (b->over) {
                return;
            }
            if (!first) {
                buf_put(b, ",", 1);
            }
            first = 0;
            buf_put(b, key, strlen(key));
            buf_put(b, ":", 1);
            put_bare(b, m);
        }
        buf_put(b, "}", 1);
        break;
    case JSON_ARRAY:
        buf_put(b, "[", 1);
        for (i = 0; i < json_array_size(v) && !b->over; i++) {
            if (i) {
                buf_put(b, ",", 1);
            }
            put_bare(b, json_array_get(v, i));
        }
        buf_put(b, "]", 1);
        break;
    default:
        put_scalar(b, v);
    }
}

/* EventBridge never escapes an extracted value. As a JSON value a string
 * gains quotes (whether or not the template quoted it, since a quoted lone
 * placeholder is a string literal holding the raw text) and a missing value
 * becomes ""; inside a string literal values are spliced raw, so an object
 * there breaks the JSON; in a string template objects lose their quotes. */
static void write_value(tx_buf_t *b, const json_t *v, place_e at)
{
    if (!v) {
        if (at == AT_JSON_VALUE) {
            buf_put(b, "\"\"", 2);
        }
        return;
    }
    if (json_is_string(v)) {
        if (at == AT_JSON_VALUE) {
            buf_put(b, "\"", 1);
        }
        buf_put(b, json_string_value(v), json_string_length(v));
        if (at == AT_JSON_VALUE) {
            buf_put(b, "\"", 1);
        }
    }
    else if (at == AT_TEXT) {
        put_bare(b, v);
    }
    else {
        put_json(b, v);
    }
}

static const char *ingestion_time(const json_t *event, const ad_transform_ctx_t *ctx)
{
    if (ctx && ctx->ingestion_time) {
        return ctx->ingestion_time;
    }
    return json_string_value(json_object_get(event, "time"));
}

/* <aws.events.event>: the envelope without detail, in the key order and
 * with the detailType key AWS recorded; its time is the ingestion time. */
static json_t *event_without_detail(const json_t *event, const ad_transform_ctx_t *ctx)
{
    static const char *const keys[][2] = {
        {"id", "id"},
        {"account", "account"},
        {"detail-type", "detailType"},
        {"time", "time"},
        {"source", "source"},
        {"region", "region"},
        {"resources", "resources"},
        {"version", "version"},
    };
    json_t *o = json_object();
    const char *when = ingestion_time(event, ctx);
    size_t i;

    for (i = 0; o && i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!strcmp(keys[i][0], "time") && when) {
            json_object_set_new(o, "time", json_string(when));
        }
        else if (json_object_get(event, keys[i][0])) {
            json_object_set(o, keys[i][1], json_object_get(event, keys[i][0]));
        }
    }
    return o;
}

static json_t *string_or_empty(const char *s)
{
    return json_string(s ? s : "");
}

/* A new reference to the value of var for this event, or NULL (missing). */
static json_t *value_of(const ad_transform_t *t, int var, const json_t *event,
                        const ad_transform_ctx_t *ctx)
{
    switch (var) {
    case RV_RULE_ARN:
        return string_or_empty(ctx ? ctx->rule_arn : NULL);
    case RV_RULE_NAME:
        return string_or_empty(ctx ? ctx->rule_name : NULL);
    case RV_INGESTION_TIME:
        return string_or_empty(ingestion_time(event, ctx));
    case RV_EVENT:
        return event_without_detail(event, ctx);
    case RV_EVENT_JSON:
        return json_incref((json_t *)event);
    default:
        return ad_jsonpath_eval(t->vars[var].path, event);
    }
}

/* Each variable's value, evaluated once per apply: a template may name a
 * variable thousands of times, and evaluating its path on a big event for
 * each made CPU grow with references x event size. vals[RV_COUNT + var]. */
#define RV_COUNT 5

static json_t *cached_value(const ad_transform_t *t, int var, const json_t *event,
                            const ad_transform_ctx_t *ctx, json_t **vals, char *known)
{
    if (!known[RV_COUNT + var]) {
        vals[RV_COUNT + var] = value_of(t, var, event, ctx);
        known[RV_COUNT + var] = 1;
    }
    return vals[RV_COUNT + var];
}

static apr_status_t apply_template(apr_pool_t *p, const ad_transform_t *t, const json_t *event,
                                   const ad_transform_ctx_t *ctx, char **out, apr_size_t *len,
                                   const char **why)
{
    tx_buf_t b = {p, NULL, 0, 0, 0};
    json_error_t jerr;
    json_t *v, **vals = apr_pcalloc(p, sizeof(json_t *) * (size_t)(RV_COUNT + t->nvars));
    char *known = apr_pcalloc(p, (size_t)(RV_COUNT + t->nvars));
    size_t n = 0;
    int i;

    buf_put(&b, "", 0);
    for (i = 0; i < t->nsegs && !b.over; i++) {
        buf_put(&b, t->segs[i].text, t->segs[i].len);
        if (t->segs[i].var != VAR_NONE) {
            write_value(&b, cached_value(t, t->segs[i].var, event, ctx, vals, known),
                        t->segs[i].at);
        }
    }
    for (i = 0; i < RV_COUNT + t->nvars; i++) {
        json_decref(vals[i]);
    }
    if (b.over) {
        *why = apr_psprintf(p,
                            "the transformed input of target %s is over %d bytes; nothing is "
                            "delivered",
                            t->target_id, AD_TRANSFORM_MAX_OUTPUT);
        return APR_EINVAL;
    }
    if (!t->json_mode) {
        *out = b.buf;
        *len = b.len;
        return APR_SUCCESS;
    }
    /* What reaches the target is the parsed output, minified. */
    v = json_loadb(b.buf, b.len, JSON_ALLOW_NUL, &jerr);
    if (!v) {
        *why = apr_psprintf(p,
                            "the transformed input of target %s is not "
                            "valid JSON (%s at character %d); EventBridge "
                            "delivers nothing",
                            t->target_id, jerr.text, (int)jerr.position + 1);
        return APR_EINVAL;
    }
    *out = ad_json_dump(p, v, &n);
    *len = n;
    json_decref(v);
    return APR_SUCCESS;
}

static apr_status_t apply_input_path(apr_pool_t *p, const ad_transform_t *t, const json_t *event,
                                     char **out, apr_size_t *len, const char **why)
{
    json_t *v = ad_jsonpath_eval(t->path, event);
    size_t n = 0;

    if (!v) {
        *why = apr_psprintf(p,
                            "InputPath %s of target %s matches nothing in "
                            "the event",
                            t->path_text, t->target_id);
        return APR_EINVAL;
    }
    *out = ad_json_dump(p, v, &n);
    *len = n;
    json_decref(v);
    return APR_SUCCESS;
}

apr_status_t ad_transform_apply(apr_pool_t *p, const ad_transform_t *t, const json_t *event,
                                const ad_transform_ctx_t *ctx, char **out, apr_size_t *len,
                                const char **why)
{
    size_t n = 0;

    if (t->kind == TX_CONSTANT) {
        *out = apr_pstrmemdup(p, t->constant, t->constant_len);
        *len = t->constant_len;
        return APR_SUCCESS;
    }
    if (!event) {
        *why = "no event";
        return APR_EINVAL;
    }
    switch (t->kind) {
    case TX_PATH:
        return apply_input_path(p, t, event, out, len, why);
    case TX_TEMPLATE:
        return apply_template(p, t, event, ctx, out, len, why);
    default:
        *out = ad_json_dump(p, event, &n);
        *len = n;
        return APR_SUCCESS;
    }
}
