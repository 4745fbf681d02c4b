/* EventBridge's AWS JSON 1.1 operations answered from the configuration.
 *
 * Request members are checked the way AWS's front end checks them, in the
 * same order (types first: SerializationException; then the model's
 * constraints: "N validation error(s) detected: ..."; then the operation's
 * own checks), so that the CLIs and SDKs show the texts they show against
 * AWS. Answers use the model's member names; timestamps are epoch seconds
 * (the JS SDK rejects anything else, aws-clients.md 2). */
#include <string.h>
#include <stdlib.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_hash.h>
#include <apr_file_info.h>
#include <jansson.h>

#include "ad_awsjson.h"
#include "ad_awsmodel.h"
#include "ad_auth.h"
#include "ad_ingest.h" /* ad_awsjson_error_body: one error shape */
#include "ad_pattern.h"
#include "ad_util.h"

#define ERR_VALIDATION    "ValidationException"
#define ERR_NOT_FOUND     "ResourceNotFoundException"
#define ERR_SERIALIZATION "SerializationException"
#define ERR_PATTERN       "InvalidEventPatternException"
#define ERR_UNSUPPORTED   "UnsupportedOperation"
#define ERR_UNKNOWN_OP    "UnknownOperationException"

#define MSG_EVENT_INVALID "Parameter Event is not valid."

#define PAGE_MAX     100        /* LimitMax100 */
#define TOKEN_PREFIX "apidest-" /* NextToken: "apidest-<offset>" */
#define SECRET_SHOWN "***"

/* The model's patterns: POSIX ERE equivalents, and the text AWS quotes. */
#define RE_NAME    "^[._A-Za-z0-9-]+$"
#define SHOWN_NAME "[\\.\\-_A-Za-z0-9]+"
#define RE_BUS     "^[/._A-Za-z0-9-]+$"
#define SHOWN_BUS  "[/\\.\\-_A-Za-z0-9]+"
#define RE_BUS_OR_ARN                                                                              \
    "^(arn:aws[_A-Za-z0-9-]*:events:[a-z]+-[a-z]+-[_A-Za-z0-9-]+:"                                 \
    "[0-9]{12}:event-bus/)?[/._A-Za-z0-9-]+$"
#define SHOWN_BUS_OR_ARN                                                                           \
    "(arn:aws[\\w-]*:events:[a-z]+-[a-z]+-[\\w-]+:[0-9]{12}:"                                      \
    "event-bus\\/)?[/\\.\\-_A-Za-z0-9]+"

/* ---- one call ------------------------------------------------------------ */

typedef struct call_t {
    apr_pool_t *p;
    const ad_conf_t *c;
    json_t *in;        /* the request object */
    ad_awsmodel_t chk; /* the members' checks */
    json_t *out;       /* the answer the operation builds */
    int status;
    const char *error_type; /* set once: the first error wins */
    const char *message;
    apr_hash_t *mtimes; /* config file -> apr_time_t *, per call */
} call_t;

static void fail(call_t *x, int status, const char *type, const char *msg)
{
    if (!x->error_type) {
        x->status = status;
        x->error_type = type;
        x->message = msg;
    }
}

static void not_found(call_t *x, const char *msg)
{
    fail(x, 400, ERR_NOT_FOUND, msg);
}

/* ---- request members ----------------------------------------------------- */

typedef ad_awsmodel_member_t member_t;

static const member_t M_NAME = {"Name", 1, 1, 64, RE_NAME, SHOWN_NAME};
static const member_t M_NAME_PREFIX = {"NamePrefix", 0, 1, 64, RE_NAME, SHOWN_NAME};
static const member_t M_RULE = {"Rule", 1, 1, 64, RE_NAME, SHOWN_NAME};
static const member_t M_BUS = {"EventBusName", 0, 1, 1600, RE_BUS_OR_ARN, SHOWN_BUS_OR_ARN};
static const member_t M_BUS_ARG = {"Name", 0, 1, 1600, RE_BUS_OR_ARN, SHOWN_BUS_OR_ARN};
static const member_t M_BUS_PREFIX = {"NamePrefix", 0, 1, 256, RE_BUS, SHOWN_BUS};
static const member_t M_NEXT_TOKEN = {"NextToken", 0, 1, 2048, NULL, NULL};
static const member_t M_TARGET_ARN = {"TargetArn", 1, 1, 1600, NULL, NULL};
/* The model's ConnectionArn pattern wants a "/<id>" suffix that our ARNs
 * (named after the connection only, like the api-destination ARNs in DLQ
 * records) do not have, so only its length is checked. */
static const member_t M_CONNECTION_ARN = {"ConnectionArn", 0, 1, 1600, NULL, NULL};
static const member_t M_EVENT_PATTERN = {"EventPattern", 1, 0, 4096, NULL, NULL};
static const member_t M_EVENT = {"Event", 1, 0, 0, NULL, NULL};

static const char *const connection_states[] = {
    "CREATING",    "UPDATING",      "DELETING", "AUTHORIZED",          "DEAUTHORIZED",
    "AUTHORIZING", "DEAUTHORIZING", "ACTIVE",   "FAILED_CONNECTIVITY", NULL};

static void violation(call_t *x, const char *key, const char *value, const char *constraint)
{
    ad_awsmodel_violation(&x->chk, key, value, constraint);
}

static void wrong_type(call_t *x, const json_t *v, const char *want)
{
    ad_awsmodel_wrong_type(&x->chk, v, want);
}

static const char *arg_string(call_t *x, const member_t *m)
{
    return ad_awsmodel_string(&x->chk, x->in, m, NULL);
}

static const char *arg_enum(call_t *x, const char *key, const char *const *values)
{
    const member_t m = {key, 0, 0, 0, NULL, NULL};
    const char *s = arg_string(x, &m);
    int i;

    for (i = 0; s && values[i]; i++) {
        if (!strcmp(s, values[i])) {
            return s;
        }
    }
    if (s) {
        char *set = apr_pstrdup(x->p, "[");
        for (i = 0; values[i]; i++) {
            set = apr_pstrcat(x->p, set, i ? ", " : "", values[i], NULL);
        }
        violation(x, key, s,
                  apr_pstrcat(x->p, "Member must satisfy enum value set: ", set, "]", NULL));
    }
    return s;
}

/* Limit (LimitMax100): the page size, PAGE_MAX when absent. */
static int arg_limit(call_t *x)
{
    const json_t *v = json_object_get(x->in, "Limit");
    json_int_t n;

    if (!v || json_is_null(v)) {
        return PAGE_MAX;
    }
    if (!json_is_number(v)) {
        wrong_type(x, v, "an Integer");
        return PAGE_MAX;
    }
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    }
    else {
        double d = json_real_value(v);
        n = d < -1e9 ? -1000000000 : d > 1e9 ? 1000000000 : (json_int_t)d;
    }
    if (n < 1 || n > PAGE_MAX) {
        violation(x, "Limit", apr_psprintf(x->p, "%" APR_INT64_T_FMT, (apr_int64_t)n),
                  n < 1 ? "Member must have value greater than or equal to 1"
                        : "Member must have value less than or equal to 100");
        return PAGE_MAX;
    }
    return (int)n;
}

/* After the members are read: 1 when they are all well-formed, else the
 * call fails as AWS fails it. */
static int args_ok(call_t *x)
{
    const char *type, *msg;

    if (ad_awsmodel_failed(&x->chk, &type, &msg)) {
        fail(x, 400, type, msg);
        return 0;
    }
    return 1;
}

/* ---- lists and pages ----------------------------------------------------- */

typedef struct named_t {
    const char *name;
    const void *obj;
} named_t;

typedef json_t *item_json_fn(call_t *x, const void *obj);

typedef struct list_args_t {
    const char *token;
    int limit;
} list_args_t;

static void list_args(call_t *x, list_args_t *la)
{
    la->token = arg_string(x, &M_NEXT_TOKEN);
    la->limit = arg_limit(x);
}

static int named_cmp(const void *a, const void *b)
{
    return strcmp(((const named_t *)a)->name, ((const named_t *)b)->name);
}

static void add_named(apr_array_header_t *items, const char *name, const void *obj)
{
    named_t *n = apr_array_push(items);
    n->name = name;
    n->obj = obj;
}

static int has_prefix(const char *s, const char *prefix)
{
    return !prefix || !strncmp(s, prefix, strlen(prefix));
}

/* Where a page starts: the offset the token carries. A token past the end
 * (the configuration shrank between pages) gives an empty last page. */
static int page_start(call_t *x, const char *token, int n, int *first)
{
    apr_size_t plen = strlen(TOKEN_PREFIX);
    apr_int64_t v;
    char *end;

    *first = 0;
    if (!token) {
        return 1;
    }
    if (strncmp(token, TOKEN_PREFIX, plen) || !apr_isdigit(token[plen])) {
        fail(x, 400, ERR_VALIDATION, "Parameter NextToken is not valid.");
        return 0;
    }
    v = apr_strtoi64(token + plen, &end, 10);
    if (*end || v < 0) {
        fail(x, 400, ERR_VALIDATION, "Parameter NextToken is not valid.");
        return 0;
    }
    *first = v > n ? n : (int)v;
    return 1;
}

/* Answer {key: [one page of items], "NextToken"?}; sorted by name unless
 * the order is meaningful (targets keep the configuration's). */
static void answer_page(call_t *x, const list_args_t *la, apr_array_header_t *items, int sort,
                        const char *key, item_json_fn *fn)
{
    json_t *arr = json_array();
    int first, i, last;

    if (!page_start(x, la->token, items->nelts, &first)) {
        json_decref(arr);
        return;
    }
    if (sort) {
        qsort(items->elts, items->nelts, sizeof(named_t), named_cmp);
    }
    last = items->nelts - first > la->limit ? first + la->limit : items->nelts;
    for (i = first; i < last; i++) {
        const named_t *n = &APR_ARRAY_IDX(items, i, named_t);
        json_array_append_new(arr, fn ? fn(x, n->obj) : json_string(n->name));
    }
    json_object_set_new(x->out, key, arr);
    if (last < items->nelts) {
        json_object_set_new(x->out, "NextToken",
                            json_string(apr_psprintf(x->p, TOKEN_PREFIX "%d", last)));
    }
}

/* ---- values -------------------------------------------------------------- */

/* Configuration text may be anything httpd read; only valid UTF-8 goes
 * into an answer (jansson refuses the rest). */
static void set_str(json_t *o, const char *key, const char *s)
{
    json_t *v = s ? json_string(s) : NULL;

    if (v) {
        json_object_set_new(o, key, v);
    }
}

/* CreationTime and LastModifiedTime: when the file that defines the object
 * was last changed, as epoch seconds. Omitted when it cannot be known. */
static void set_times(call_t *x, json_t *o, const char *file)
{
    apr_time_t *t;

    if (!file) {
        return;
    }
    if (!(t = apr_hash_get(x->mtimes, file, APR_HASH_KEY_STRING))) {
        apr_finfo_t fi;
        t = apr_palloc(x->p, sizeof(*t));
        *t = apr_stat(&fi, file, APR_FINFO_MTIME, x->p) == APR_SUCCESS ? fi.mtime : -1;
        apr_hash_set(x->mtimes, file, APR_HASH_KEY_STRING, t);
    }
    if (*t >= 0) {
        json_object_set_new(o, "CreationTime", json_integer(apr_time_sec(*t)));
        json_object_set_new(o, "LastModifiedTime", json_integer(apr_time_sec(*t)));
    }
}

static const char *rule_bus(const ad_rule_t *r)
{
    return r->bus ? r->bus : AD_DEFAULT_BUS;
}

static const char *known_bus(call_t *x, const char *given)
{
    const char *bus = ad_conf_bus_name(x->c, given);

    if (!bus || !apr_hash_get(x->c->buses, bus, APR_HASH_KEY_STRING)) {
        not_found(x, apr_psprintf(x->p, "Event bus %s does not exist.", bus ? bus : given));
        return NULL;
    }
    return bus;
}

/* ---- ARNs ---------------------------------------------------------------- */

const char *ad_awsjson_bus_arn(apr_pool_t *p, const ad_conf_t *c, const char *bus)
{
    return apr_psprintf(p, "arn:aws:events:%s:%s:event-bus/%s", c->region, c->account, bus);
}

const char *ad_awsjson_destination_arn(apr_pool_t *p, const ad_conf_t *c, const ad_destination_t *d)
{
    return apr_psprintf(p, "arn:aws:events:%s:%s:api-destination/%s", c->region, c->account,
                        d->name);
}

static const char *connection_arn_named(apr_pool_t *p, const ad_conf_t *c, const char *name)
{
    return apr_psprintf(p, "arn:aws:events:%s:%s:connection/%s", c->region, c->account, name);
}

const char *ad_awsjson_connection_arn(apr_pool_t *p, const ad_conf_t *c, const ad_connection_t *cn)
{
    return connection_arn_named(p, c, cn->name);
}

const char *ad_awsjson_target_arn(apr_pool_t *p, const ad_conf_t *c, const ad_target_t *t)
{
    if (t->destination) {
        return ad_awsjson_destination_arn(p, c, t->destination);
    }
    return t->endpoint ? t->endpoint : "";
}

static const char *destination_connection_arn(call_t *x, const ad_destination_t *d)
{
    if (d->connection) {
        return ad_awsjson_connection_arn(x->p, x->c, d->connection);
    }
    return d->connection_name ? connection_arn_named(x->p, x->c, d->connection_name) : NULL;
}

/* ---- event buses --------------------------------------------------------- */

static json_t *bus_json(call_t *x, const void *obj)
{
    json_t *o = json_object();

    set_str(o, "Name", obj);
    set_str(o, "Arn", ad_awsjson_bus_arn(x->p, x->c, obj));
    return o;
}

static void op_list_event_buses(call_t *x)
{
    const char *prefix = arg_string(x, &M_BUS_PREFIX);
    apr_array_header_t *items = apr_array_make(x->p, 4, sizeof(named_t));
    apr_hash_index_t *hi;
    list_args_t la;

    list_args(x, &la);
    if (!args_ok(x)) {
        return;
    }
    for (hi = apr_hash_first(x->p, x->c->buses); hi; hi = apr_hash_next(hi)) {
        const char *name = apr_hash_this_key(hi);
        if (has_prefix(name, prefix)) {
            add_named(items, name, name);
        }
    }
    answer_page(x, &la, items, 1, "EventBuses", bus_json);
}

static void op_describe_event_bus(call_t *x)
{
    const char *given = arg_string(x, &M_BUS_ARG);
    const char *bus;
    json_t *o;

    if (!args_ok(x) || !(bus = known_bus(x, given))) {
        return;
    }
    o = bus_json(x, bus);
    json_object_update(x->out, o);
    json_decref(o);
}

/* ---- rules --------------------------------------------------------------- */

static json_t *rule_json(call_t *x, const ad_rule_t *r, int describe)
{
    json_t *o = json_object();

    set_str(o, "Name", r->name);
    set_str(o, "Arn", ad_conf_rule_arn(x->p, x->c, r));
    set_str(o, "EventPattern", r->pattern_text);
    set_str(o, "ScheduleExpression", r->schedule_text);
    set_str(o, "State", r->enabled ? "ENABLED" : "DISABLED");
    set_str(o, "EventBusName", rule_bus(r));
    if (describe) {
        set_str(o, "CreatedBy", x->c->account);
    }
    return o;
}

static json_t *rule_list_json(call_t *x, const void *obj)
{
    return rule_json(x, obj, 0);
}

/* The rule named on the bus named (Name/Rule and EventBusName members). */
static const ad_rule_t *find_rule(call_t *x, const char *name, const char *bus_given)
{
    const char *bus = known_bus(x, bus_given);
    const ad_rule_t *r;

    if (!bus) {
        return NULL;
    }
    r = apr_hash_get(x->c->rule_by_name, name, APR_HASH_KEY_STRING);
    if (!r || strcmp(rule_bus(r), bus)) {
        not_found(x, apr_psprintf(x->p, "Rule %s does not exist on EventBus %s.", name, bus));
        return NULL;
    }
    return r;
}

/* Which rules of a bus a listing operation returns. */
typedef int rule_filter_fn(call_t *x, const ad_rule_t *r, const char *arg);

static int rule_name_has_prefix(call_t *x, const ad_rule_t *r, const char *prefix)
{
    (void)x;
    return has_prefix(r->name, prefix);
}

static int rule_has_target(call_t *x, const ad_rule_t *r, const char *arn);

/* The rules of the EventBusName argument (default: "default") that pass
 * keep(arg), as one page under field; NULL render: names only. */
static void list_bus_rules(call_t *x, rule_filter_fn *keep, const char *arg, const char *field,
                           json_t *(*render)(call_t *, const void *))
{
    const char *given = arg_string(x, &M_BUS);
    apr_array_header_t *items = apr_array_make(x->p, 8, sizeof(named_t));
    const char *bus;
    list_args_t la;
    int i;

    list_args(x, &la);
    if (!args_ok(x) || !(bus = known_bus(x, given))) {
        return;
    }
    for (i = 0; i < x->c->rules->nelts; i++) {
        const ad_rule_t *r = APR_ARRAY_IDX(x->c->rules, i, const ad_rule_t *);
        if (!strcmp(rule_bus(r), bus) && keep(x, r, arg)) {
            add_named(items, r->name, r);
        }
    }
    answer_page(x, &la, items, 1, field, render);
}

static void op_list_rules(call_t *x)
{
    list_bus_rules(x, rule_name_has_prefix, arg_string(x, &M_NAME_PREFIX), "Rules", rule_list_json);
}

static void op_describe_rule(call_t *x)
{
    const char *name = arg_string(x, &M_NAME);
    const char *bus = arg_string(x, &M_BUS);
    const ad_rule_t *r;
    json_t *o;

    if (!args_ok(x) || !(r = find_rule(x, name, bus))) {
        return;
    }
    o = rule_json(x, r, 1);
    json_object_update(x->out, o);
    json_decref(o);
}

/* ---- targets ------------------------------------------------------------- */

static const char *param_value(const ad_param_t *prm)
{
    return prm->secret ? SECRET_SHOWN : prm->value;
}

/* {"key": "value", ...} of a target's headers or query parameters. */
static json_t *param_map(const apr_array_header_t *list)
{
    json_t *o = json_object();
    int i;

    for (i = 0; list && i < list->nelts; i++) {
        const ad_param_t *prm = APR_ARRAY_IDX(list, i, const ad_param_t *);
        if (prm->key) {
            set_str(o, prm->key, param_value(prm));
        }
    }
    return o;
}

static void target_http_parameters(json_t *o, const ad_target_t *t)
{
    json_t *hp = json_object();

    if (t->path_params && t->path_params->nelts) {
        json_t *v = json_array();
        int i;

        for (i = 0; i < t->path_params->nelts; i++) {
            const char *s = param_value(APR_ARRAY_IDX(t->path_params, i, const ad_param_t *));
            json_array_append_new(v, json_string(s ? s : ""));
        }
        json_object_set_new(hp, "PathParameterValues", v);
    }
    if (t->headers && t->headers->nelts) {
        json_object_set_new(hp, "HeaderParameters", param_map(t->headers));
    }
    if (t->query_params && t->query_params->nelts) {
        json_object_set_new(hp, "QueryStringParameters", param_map(t->query_params));
    }
    if (json_object_size(hp)) {
        json_object_set_new(o, "HttpParameters", hp);
    }
    else {
        json_decref(hp);
    }
}

static void target_input(json_t *o, const ad_target_t *t)
{
    json_t *it;

    set_str(o, "Input", t->input);
    set_str(o, "InputPath", t->input_path);
    if (!t->input_template) {
        return;
    }
    it = json_object();
    if (t->paths_map && t->paths_map->nelts) {
        json_t *map = json_object();
        int i;

        for (i = 0; i < t->paths_map->nelts; i++) {
            const ad_transform_var_t *v = &APR_ARRAY_IDX(t->paths_map, i, ad_transform_var_t);
            set_str(map, v->name, v->path);
        }
        json_object_set_new(it, "InputPathsMap", map);
    }
    set_str(it, "InputTemplate", t->input_template);
    json_object_set_new(o, "InputTransformer", it);
}

static json_t *target_json(call_t *x, const void *obj)
{
    const ad_target_t *t = obj;
    json_t *o = json_object();

    set_str(o, "Id", t->id);
    set_str(o, "Arn", ad_awsjson_target_arn(x->p, x->c, t));
    target_input(o, t);
    target_http_parameters(o, t);
    json_object_set_new(o, "RetryPolicy",
                        json_pack("{s:i,s:i}", "MaximumRetryAttempts", t->retry_attempts,
                                  "MaximumEventAgeInSeconds", t->max_event_age_sec));
    return o;
}

static void op_list_targets_by_rule(call_t *x)
{
    const char *name = arg_string(x, &M_RULE);
    const char *bus = arg_string(x, &M_BUS);
    apr_array_header_t *items = apr_array_make(x->p, 4, sizeof(named_t));
    const ad_rule_t *r;
    list_args_t la;
    int i;

    list_args(x, &la);
    if (!args_ok(x) || !(r = find_rule(x, name, bus))) {
        return;
    }
    for (i = 0; r->targets && i < r->targets->nelts; i++) {
        const ad_target_t *t = APR_ARRAY_IDX(r->targets, i, const ad_target_t *);
        add_named(items, t->id, t);
    }
    answer_page(x, &la, items, 0, "Targets", target_json);
}

static int rule_has_target(call_t *x, const ad_rule_t *r, const char *arn)
{
    int i;

    for (i = 0; r->targets && i < r->targets->nelts; i++) {
        const ad_target_t *t = APR_ARRAY_IDX(r->targets, i, const ad_target_t *);
        if (!strcmp(ad_awsjson_target_arn(x->p, x->c, t), arn)) {
            return 1;
        }
    }
    return 0;
}

static void op_list_rule_names_by_target(call_t *x)
{
    list_bus_rules(x, rule_has_target, arg_string(x, &M_TARGET_ARN), "RuleNames", NULL);
}

/* ---- connections --------------------------------------------------------- */

/* apidestd publishes each connection's state in shared memory. */
static const ad_metrics_t *shared_metrics;

void ad_awsjson_set_metrics(const ad_metrics_t *m)
{
    shared_metrics = m;
}

static const char *connection_state(const ad_connection_t *cn)
{
    if (!shared_metrics || cn->index >= shared_metrics->nconns) {
        return "AUTHORIZED";
    }
    return ad_conn_state_name(ad_metric_get(&shared_metrics->conns[cn->index].state));
}

/* ACTIVE while its connection (if any) is AUTHORIZED, as EventBridge. */
static const char *destination_state(const ad_destination_t *d)
{
    return d->connection && strcmp(connection_state(d->connection), "AUTHORIZED") ? "INACTIVE"
                                                                                  : "ACTIVE";
}

/* [{"Key", "Value", "IsValueSecret"}] of the parameters sent in `where`;
 * a secret parameter's value is left out, as AWS leaves it out. */
static json_t *param_list(const apr_array_header_t *list, const char *where)
{
    json_t *arr = json_array();
    int i;

    for (i = 0; list && i < list->nelts; i++) {
        const ad_param_t *prm = APR_ARRAY_IDX(list, i, const ad_param_t *);
        json_t *o;
        if (!prm->where || strcmp(prm->where, where)) {
            continue;
        }
        o = json_object();
        set_str(o, "Key", prm->key);
        if (!prm->secret) {
            set_str(o, "Value", prm->value);
        }
        json_object_set_new(o, "IsValueSecret", json_boolean(prm->secret));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* ConnectionHttpParameters, or NULL when there are none. */
static json_t *http_parameters(const apr_array_header_t *list)
{
    static const char *const where[] = {"header", "query", "body"};
    static const char *const key[] = {"HeaderParameters", "QueryStringParameters",
                                      "BodyParameters"};
    json_t *o;
    int i;

    if (!list || !list->nelts) {
        return NULL;
    }
    o = json_object();
    for (i = 0; i < 3; i++) {
        json_t *arr = param_list(list, where[i]);
        if (json_array_size(arr)) {
            json_object_set_new(o, key[i], arr);
        }
        else {
            json_decref(arr);
        }
    }
    return o;
}

static void set_new_if(json_t *o, const char *key, json_t *v)
{
    if (v) {
        json_object_set_new(o, key, v);
    }
}

/* AuthParameters without any secret: user names, key names, client ids. */
static json_t *auth_parameters(const ad_connection_t *cn)
{
    json_t *o = json_object(), *a;

    switch (cn->auth) {
    case AD_AUTH_BASIC:
        a = json_object();
        set_str(a, "Username", cn->user);
        json_object_set_new(o, "BasicAuthParameters", a);
        break;
    case AD_AUTH_API_KEY:
        a = json_object();
        set_str(a, "ApiKeyName", cn->api_key_name);
        json_object_set_new(o, "ApiKeyAuthParameters", a);
        break;
    case AD_AUTH_OAUTH:
        a = json_object();
        json_object_set_new(a, "ClientParameters", json_object());
        set_str(json_object_get(a, "ClientParameters"), "ClientID", cn->client_id);
        set_str(a, "AuthorizationEndpoint", cn->oauth_endpoint);
        set_str(a, "HttpMethod", cn->oauth_method ? cn->oauth_method : "POST");
        set_new_if(a, "OAuthHttpParameters", http_parameters(cn->oauth_params));
        json_object_set_new(o, "OAuthParameters", a);
        break;
    default:
        break;
    }
    set_new_if(o, "InvocationHttpParameters", http_parameters(cn->invocation_params));
    return o;
}

static json_t *connection_json(call_t *x, const void *obj)
{
    const ad_connection_t *cn = obj;
    json_t *o = json_object();

    set_str(o, "ConnectionArn", ad_awsjson_connection_arn(x->p, x->c, cn));
    set_str(o, "Name", cn->name);
    set_str(o, "ConnectionState", connection_state(cn));
    set_str(o, "AuthorizationType", ad_auth_type_name(cn->auth));
    set_times(x, o, cn->file);
    return o;
}

/* Every configured connection. Connections are the only kind of object
 * whose list may be absent from a configuration (hand-built ones). */
static const apr_array_header_t *connections_of(const ad_conf_t *c)
{
    return c->connections;
}

static const ad_connection_t *find_connection(call_t *x, const char *name)
{
    const ad_connection_t *cn =
        x->c->connection_by_name ? apr_hash_get(x->c->connection_by_name, name, APR_HASH_KEY_STRING)
                                 : NULL;

    if (!cn) {
        not_found(x, apr_psprintf(x->p,
                                  "Failed to describe the connection(s). "
                                  "Connection '%s' does not exist.",
                                  name));
    }
    return cn;
}

static void op_list_connections(call_t *x)
{
    const char *prefix = arg_string(x, &M_NAME_PREFIX);
    const char *state = arg_enum(x, "ConnectionState", connection_states);
    const apr_array_header_t *all = connections_of(x->c);
    apr_array_header_t *items = apr_array_make(x->p, 4, sizeof(named_t));
    list_args_t la;
    int i;

    list_args(x, &la);
    if (!args_ok(x)) {
        return;
    }
    for (i = 0; all && i < all->nelts; i++) {
        const ad_connection_t *cn = APR_ARRAY_IDX(all, i, const ad_connection_t *);
        if (has_prefix(cn->name, prefix) && (!state || !strcmp(state, connection_state(cn)))) {
            add_named(items, cn->name, cn);
        }
    }
    answer_page(x, &la, items, 1, "Connections", connection_json);
}

static void op_describe_connection(call_t *x)
{
    const char *name = arg_string(x, &M_NAME);
    const ad_connection_t *cn;

    if (!args_ok(x) || !(cn = find_connection(x, name))) {
        return;
    }
    json_decref(x->out);
    x->out = connection_json(x, cn);
    json_object_set_new(x->out, "AuthParameters", auth_parameters(cn));
}

/* ---- API destinations ---------------------------------------------------- */

static json_t *destination_json(call_t *x, const void *obj)
{
    const ad_destination_t *d = obj;
    json_t *o = json_object();

    set_str(o, "ApiDestinationArn", ad_awsjson_destination_arn(x->p, x->c, d));
    set_str(o, "Name", d->name);
    set_str(o, "ApiDestinationState", destination_state(d));
    set_str(o, "ConnectionArn", destination_connection_arn(x, d));
    set_str(o, "InvocationEndpoint", d->endpoint);
    set_str(o, "HttpMethod", d->method ? d->method : "POST");
    json_object_set_new(o, "InvocationRateLimitPerSecond", json_integer(d->rate_limit));
    set_times(x, o, d->file);
    return o;
}

static void op_list_api_destinations(call_t *x)
{
    const char *prefix = arg_string(x, &M_NAME_PREFIX);
    const char *conn = arg_string(x, &M_CONNECTION_ARN);
    apr_array_header_t *items = apr_array_make(x->p, 8, sizeof(named_t));
    list_args_t la;
    int i;

    list_args(x, &la);
    if (!args_ok(x)) {
        return;
    }
    for (i = 0; i < x->c->destinations->nelts; i++) {
        const ad_destination_t *d = APR_ARRAY_IDX(x->c->destinations, i, const ad_destination_t *);
        const char *darn = destination_connection_arn(x, d);
        if (has_prefix(d->name, prefix) && (!conn || (darn && !strcmp(conn, darn)))) {
            add_named(items, d->name, d);
        }
    }
    answer_page(x, &la, items, 1, "ApiDestinations", destination_json);
}

static void op_describe_api_destination(call_t *x)
{
    const char *name = arg_string(x, &M_NAME);
    const ad_destination_t *d;

    if (!args_ok(x)) {
        return;
    }
    d = apr_hash_get(x->c->destination_by_name, name, APR_HASH_KEY_STRING);
    if (!d) {
        not_found(x, apr_psprintf(x->p,
                                  "Failed to describe the api-destination(s). "
                                  "An api-destination '%s' does not exist.",
                                  name));
        return;
    }
    json_decref(x->out);
    x->out = destination_json(x, d);
}

/* ---- TestEventPattern ---------------------------------------------------- */

typedef struct tep_t {
    int status;
    const char *type;
    const char *message;
    int result;
} tep_t;

/* TestEventPattern's checks in AWS's order: the event (a JSON object with
 * the envelope's fields; NULL when it was not JSON), then the pattern. */
static void tep_run(apr_pool_t *p, const char *pattern, apr_size_t plen, const json_t *event,
                    tep_t *r)
{
    const char *reason = NULL;
    ad_pattern_t *pat;

    r->status = 400;
    r->type = ERR_VALIDATION;
    r->message = MSG_EVENT_INVALID;
    if (!event || !ad_pattern_event_is_valid(event)) {
        return;
    }
    if (!(pat = ad_pattern_compile(p, pattern, plen, &reason))) {
        r->type = ERR_PATTERN;
        r->message = apr_pstrcat(p, AD_PATTERN_ERR_PREFIX, reason ? reason : "", NULL);
        return;
    }
    if ((r->result = ad_pattern_match(pat, event)) < 0) {
        r->message = "Event has too many values inside arrays to be matched.";
        return;
    }
    r->status = 200;
}

static json_t *parse_text(const char *s, apr_size_t len)
{
    json_error_t jerr;
    return json_loadb(s, len, 0, &jerr);
}

static void op_test_event_pattern(call_t *x)
{
    const char *pattern = arg_string(x, &M_EVENT_PATTERN);
    const char *event_text = arg_string(x, &M_EVENT);
    json_t *event;
    tep_t r;

    if (!args_ok(x)) {
        return;
    }
    event = parse_text(event_text, strlen(event_text));
    tep_run(x->p, pattern, strlen(pattern), event, &r);
    json_decref(event);
    if (r.status != 200) {
        fail(x, r.status, r.type, r.message);
        return;
    }
    json_object_set_new(x->out, "Result", json_boolean(r.result));
}

/* ---- dispatch ------------------------------------------------------------ */

typedef void op_fn(call_t *x);

typedef struct op_t {
    const char *name;
    op_fn *fn;
} op_t;

static const op_t operations[] = {{"TestEventPattern", op_test_event_pattern},
                                  {"ListEventBuses", op_list_event_buses},
                                  {"DescribeEventBus", op_describe_event_bus},
                                  {"ListRules", op_list_rules},
                                  {"DescribeRule", op_describe_rule},
                                  {"ListTargetsByRule", op_list_targets_by_rule},
                                  {"ListRuleNamesByTarget", op_list_rule_names_by_target},
                                  {"ListConnections", op_list_connections},
                                  {"DescribeConnection", op_describe_connection},
                                  {"ListApiDestinations", op_list_api_destinations},
                                  {"DescribeApiDestination", op_describe_api_destination},
                                  {NULL, NULL}};

/* EventBridge operations that change what httpd.conf defines. */
static const char *const mutating[] = {"ActivateEventSource",
                                       "CancelReplay",
                                       "CreateApiDestination",
                                       "CreateArchive",
                                       "CreateConnection",
                                       "CreateEndpoint",
                                       "CreateEventBus",
                                       "CreatePartnerEventSource",
                                       "DeactivateEventSource",
                                       "DeauthorizeConnection",
                                       "DeleteApiDestination",
                                       "DeleteArchive",
                                       "DeleteConnection",
                                       "DeleteEndpoint",
                                       "DeleteEventBus",
                                       "DeletePartnerEventSource",
                                       "DeleteRule",
                                       "DisableRule",
                                       "EnableRule",
                                       "PutPartnerEvents",
                                       "PutPermission",
                                       "PutRule",
                                       "PutTargets",
                                       "RemovePermission",
                                       "RemoveTargets",
                                       "StartReplay",
                                       "TagResource",
                                       "UntagResource",
                                       "UpdateApiDestination",
                                       "UpdateArchive",
                                       "UpdateConnection",
                                       "UpdateEndpoint",
                                       "UpdateEventBus",
                                       NULL};

/* Read-only EventBridge operations about things mod_apidest does not have. */
static const char *const not_here[] = {"DescribeArchive",
                                       "DescribeEndpoint",
                                       "DescribeEventSource",
                                       "DescribePartnerEventSource",
                                       "DescribeReplay",
                                       "ListArchives",
                                       "ListEndpoints",
                                       "ListEventSources",
                                       "ListPartnerEventSourceAccounts",
                                       "ListPartnerEventSources",
                                       "ListReplays",
                                       "ListTagsForResource",
                                       NULL};

static int listed(const char *const *names, const char *name)
{
    int i;

    for (i = 0; names[i]; i++) {
        if (!strcmp(names[i], name)) {
            return 1;
        }
    }
    return 0;
}

static void refuse(call_t *x, const char *target, const char *op)
{
    if (op && listed(mutating, op)) {
        fail(x, 400, ERR_UNSUPPORTED,
             apr_psprintf(
                 x->p,
                 "%s is not supported: mod_apidest takes its rules, targets, connections and "
                 "API destinations from httpd.conf (<ApiDestRule>, <ApiDestTarget>, "
                 "<ApiDestConnection>, <ApiDestDestination>); change the configuration there "
                 "and reload httpd (apachectl graceful)",
                 op));
    }
    else if (op && listed(not_here, op)) {
        fail(x, 400, ERR_UNSUPPORTED,
             apr_psprintf(
                 x->p,
                 "%s is not supported: mod_apidest has no archives, replays, global endpoints, "
                 "partner event sources or tags",
                 op));
    }
    else {
        fail(x, 400, ERR_UNKNOWN_OP, apr_psprintf(x->p, "Unknown operation %s", target));
    }
}

static int parse_body(call_t *x, const char *body, apr_size_t len)
{
    json_error_t jerr;
    apr_size_t i;

    for (i = 0; body && i < len && apr_isspace(body[i]); i++) {
    }
    if (!body || i == len) {
        x->in = json_object(); /* an empty body is an empty request */
        return 1;
    }
    if (!(x->in = json_loadb(body, len, 0, &jerr))) {
        fail(x, 400, ERR_SERIALIZATION,
             apr_psprintf(x->p, "Request body is not valid JSON: %s (line %d, column %d)",
                          jerr.text, jerr.line, jerr.column));
        return 0;
    }
    if (!json_is_object(x->in)) {
        fail(x, 400, ERR_SERIALIZATION,
             json_is_array(x->in) ? "Start of list found where not expected"
                                  : "Request body must be a JSON object");
        return 0;
    }
    return 1;
}

static void call_init(call_t *x, apr_pool_t *p, const ad_conf_t *c)
{
    memset(x, 0, sizeof(*x));
    x->p = p;
    x->c = c;
    ad_awsmodel_init(&x->chk, p);
    x->out = json_object();
    x->mtimes = apr_hash_make(p);
    x->status = 200;
}

int ad_awsjson_dispatch(apr_pool_t *p, const ad_conf_t *c, const char *target, const char *body,
                        apr_size_t len, char **out, apr_size_t *out_len, const char **error_type)
{
    apr_size_t plen = strlen(AD_AWSJSON_TARGET_PREFIX);
    const char *op = NULL;
    const op_t *o = NULL;
    call_t x;

    call_init(&x, p, c);
    if (target && !strncmp(target, AD_AWSJSON_TARGET_PREFIX, plen)) {
        op = target + plen;
        for (o = operations; o->name && strcmp(o->name, op); o++) {
        }
    }
    if (!o || !o->name) {
        refuse(&x, target ? target : "(none)", op);
    }
    else if (parse_body(&x, body, len)) {
        o->fn(&x);
    }
    if (x.error_type) {
        *out = ad_awsjson_error_body(p, x.error_type, x.message, out_len);
    }
    else {
        *out = ad_json_dump(p, x.out, out_len);
    }
    *error_type = x.error_type;
    json_decref(x.in);
    json_decref(x.out);
    return x.status;
}

/* ---- the admin route ----------------------------------------------------- */

/* A member given as JSON text (a string, parsed) or as the value itself;
 * a new reference, NULL when absent or not JSON (*absent tells which). */
static json_t *admin_value(const json_t *req, const char *key, int *absent)
{
    const json_t *v = json_object_get(req, key);

    *absent = !v || json_is_null(v);
    if (*absent) {
        return NULL;
    }
    if (json_is_string(v)) {
        return parse_text(json_string_value(v), json_string_length(v));
    }
    return json_incref((json_t *)v);
}

static int admin_reply(apr_pool_t *p, int status, const char *type, const char *msg, json_t *ok,
                       char **out, apr_size_t *out_len, const char **error_type)
{
    json_t *body = ok ? ok : json_pack("{s:s,s:s}", "error", type, "message", msg);

    *out = ad_json_dump(p, body, out_len);
    *error_type = ok ? NULL : type;
    json_decref(body);
    return status;
}

/* The pattern's text: a string member as given, any other value dumped. */
static const char *admin_pattern_text(apr_pool_t *p, const json_t *req, apr_size_t *len)
{
    const json_t *v = json_object_get(req, "EventPattern");

    if (json_is_string(v)) {
        *len = json_string_length(v);
        return json_string_value(v);
    }
    return ad_json_dump(p, v, len);
}

int ad_awsjson_test_event_pattern(apr_pool_t *p, const char *body, apr_size_t len, char **out,
                                  apr_size_t *out_len, const char **error_type)
{
    call_t x;
    json_t *event;
    const char *pattern;
    apr_size_t plen = 0;
    int event_absent, pattern_absent;
    tep_t r;

    call_init(&x, p, NULL);
    json_decref(x.out);
    if (!parse_body(&x, body, len)) {
        json_decref(x.in);
        return admin_reply(p, 400, x.error_type, x.message, NULL, out, out_len, error_type);
    }
    pattern_absent = !json_object_get(x.in, "EventPattern") ||
                     json_is_null(json_object_get(x.in, "EventPattern"));
    if (pattern_absent) {
        violation(&x, "EventPattern", NULL, "Member must not be null");
    }
    event = admin_value(x.in, "Event", &event_absent);
    if (event_absent) {
        violation(&x, "Event", NULL, "Member must not be null");
    }
    pattern = pattern_absent ? NULL : admin_pattern_text(p, x.in, &plen);
    if (pattern && ad_awsmodel_length(pattern, plen) > 4096) {
        violation(&x, "EventPattern", pattern,
                  "Member must have length less than or equal to 4096");
    }
    if (!args_ok(&x)) {
        json_decref(event);
        json_decref(x.in);
        return admin_reply(p, 400, x.error_type, x.message, NULL, out, out_len, error_type);
    }
    tep_run(p, pattern, plen, event, &r);
    json_decref(event);
    json_decref(x.in);
    return admin_reply(p, r.status, r.type, r.message,
                       r.status == 200 ? json_pack("{s:b}", "Result", r.result) : NULL, out,
                       out_len, error_type);
}
