#include <string.h>
#include <math.h>
#include <ctype.h>

#include <apr_strings.h>
#include <jansson.h>

#include "ad_ingest.h"
#include "ad_awsmodel.h"
#include "ad_record.h"
#include "ad_util.h"
#include "ad_jsonparse.h"
#include "ad_log.h"

/* Entries whose members are checked in a request over the entry limit. */
#define AD_INGEST_CHECKED_ENTRIES 1000

/* Per-entry errors, texts as AWS returns them (eventbridge-semantics §1). */
#define ERR_INVALID_ARGUMENT "InvalidArgument"
#define ERR_MALFORMED_DETAIL "MalformedDetail"
#define ERR_NOT_AUTH_SOURCE  "NotAuthorizedForSourceException"

typedef struct {
    apr_pool_t *p;
    const ad_conf_t *c;
    ad_ingest_t *in;
    apr_time_t now;
    ad_match_scratch_t *scratch; /* made on first use, for all entries */
    apr_array_header_t *hits;    /* int: matches of the current entry */
} ingest_ctx_t;

static const char *event_id_make(ingest_ctx_t *x)
{
    char id[AD_UUID_LEN + 1];

    ad_uuid4(id);
    return apr_pstrmemdup(x->p, id, AD_UUID_LEN);
}

static ad_ingest_t *ingest_make(apr_pool_t *p)
{
    ad_ingest_t *in = apr_pcalloc(p, sizeof(*in));
    in->status = 200;
    in->entries = apr_array_make(p, 10, sizeof(ad_ingest_entry_t));
    in->records = apr_array_make(p, 10, sizeof(ad_blob_t));
    in->matched = apr_array_make(p, 4, sizeof(int));
    in->matched_entry = apr_array_make(p, 4, sizeof(int));
    return in;
}

static ad_ingest_t *request_error(ad_ingest_t *in, int status, const char *type, const char *msg)
{
    in->status = status;
    in->error_type = type;
    in->error_message = msg;
    return in;
}

static void entry_fail(ingest_ctx_t *x, ad_ingest_entry_t *e, const char *code, const char *msg)
{
    e->event_id = NULL;
    e->error_code = code;
    e->error_message = msg;
    x->in->failed_count++;
}

static const char *required_string(const json_t *entry, const char *key)
{
    const json_t *v = json_object_get(entry, key);
    if (!json_is_string(v) || json_string_length(v) == 0) {
        return NULL;
    }
    return json_string_value(v);
}

/* EventBridge's entry size: 14 bytes for Time, plus Source, DetailType,
 * Detail and every Resources item in UTF-8 bytes. */
static apr_size_t entry_size(const json_t *entry)
{
    static const char *const fields[] = {"Source", "DetailType", "Detail"};
    const json_t *res = json_object_get(entry, "Resources");
    const json_t *time = json_object_get(entry, "Time");
    apr_size_t n = time && !json_is_null(time) ? 14 : 0; /* null reads as absent */
    size_t i;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const json_t *v = json_object_get(entry, fields[i]);
        if (json_is_string(v)) {
            n += json_string_length(v);
        }
    }
    for (i = 0; json_is_array(res) && i < json_array_size(res); i++) {
        const json_t *v = json_array_get(res, i);
        if (json_is_string(v)) {
            n += json_string_length(v);
        }
    }
    return n;
}

/* "" (no bus has that name) for a bus of another account or region. */
static const char *bus_name(const ad_conf_t *c, const json_t *entry)
{
    const char *bus = ad_conf_bus_name(c, required_string(entry, "EventBusName"));

    return bus ? bus : "";
}

/* The envelope's time is "YYYY-MM-DDThh:mm:ssZ": from 1970 (AWS refuses a
 * negative epoch) to the end of year 9999, in either form. */
#define TIME_MAX_SEC    253402300799.0
#define DETAIL_TYPE_MAX 128

static int event_time(const json_t *entry, apr_time_t now, apr_time_t *t)
{
    const json_t *v = json_object_get(entry, "Time");

    if (!v || json_is_null(v)) {
        *t = now;
        return 1;
    }
    if (json_is_number(v)) {
        double secs = json_number_value(v);
        /* the fraction is dropped: 253402300799.9 is still in 9999 */
        if (!isfinite(secs) || secs < 0 || secs >= TIME_MAX_SEC + 1.0) {
            return 0;
        }
        *t = apr_time_from_sec((apr_time_t)secs);
        return 1;
    }
    if (json_is_string(v)) {
        return ad_time_parse_rfc3339(json_string_value(v), t) == APR_SUCCESS && *t >= 0 &&
               apr_time_sec(*t) <= (apr_time_t)TIME_MAX_SEC;
    }
    return 0;
}

/* Resources is absent, null or a list of strings. */
static int resources_ok(const json_t *entry)
{
    const json_t *res = json_object_get(entry, "Resources");
    size_t i;

    if (!res || json_is_null(res)) {
        return 1;
    }
    if (!json_is_array(res)) {
        return 0;
    }
    for (i = 0; i < json_array_size(res); i++) {
        if (!json_is_string(json_array_get(res, i))) {
            return 0;
        }
    }
    return 1;
}

#define PUT_LIT(b, lit) ad_jbuf_put((b), (lit), sizeof(lit) - 1)

/* key (the text before a value, comma and quotes included), then s (n
 * bytes) as a JSON string. */
static void put_member(ad_jbuf_t *b, const char *key, const char *s, size_t n)
{
    ad_jbuf_put(b, key, strlen(key));
    ad_jbuf_string(b, s, n);
}

static void put_member_json(ad_jbuf_t *b, const char *key, const json_t *v)
{
    put_member(b, key, json_string_value(v), json_string_length(v));
}

/* The envelope's text in AWS's key order: version, id, detail-type, source,
 * account, time, region, resources, detail. The detail is the text
 * ad_match_canonical wrote (the bytes ad_json_dump writes for its tree), or
 * the tree when only jansson could read it. Written directly: a jansson
 * object per entry cost more than writing the whole envelope. *head_len
 * is where ",\"detail\":" starts. */
static char *envelope_text(const ingest_ctx_t *x, const char *id, const json_t *entry, apr_time_t t,
                           const char *canon, size_t canon_len, const json_t *detail,
                           apr_size_t *len, apr_size_t *head_len)
{
    static const char tail[] = "],\"detail\":";
    const json_t *res = json_object_get(entry, "Resources");
    const char *account = x->c->account, *region = x->c->region;
    ad_jbuf_t b = {NULL, 0, 0, x->p};
    char tbuf[32];
    size_t i;

    b.cap = 256 + strlen(id) + strlen(account) + strlen(region) + canon_len +
            json_string_length(json_object_get(entry, "Source")) +
            json_string_length(json_object_get(entry, "DetailType"));
    b.buf = apr_palloc(x->p, b.cap);
    ad_time_rfc3339(tbuf, t);
    put_member(&b, "{\"version\":\"0\",\"id\":", id, strlen(id));
    put_member_json(&b, ",\"detail-type\":", json_object_get(entry, "DetailType"));
    put_member_json(&b, ",\"source\":", json_object_get(entry, "Source"));
    put_member(&b, ",\"account\":", account, strlen(account));
    put_member(&b, ",\"time\":", tbuf, strlen(tbuf));
    put_member(&b, ",\"region\":", region, strlen(region));
    PUT_LIT(&b, ",\"resources\":[");
    for (i = 0; json_is_array(res) && i < json_array_size(res); i++) {
        if (i) {
            PUT_LIT(&b, ",");
        }
        ad_jbuf_value(&b, json_array_get(res, i));
    }
    *head_len = b.len + 1; /* with the ']' */
    PUT_LIT(&b, tail);
    if (canon) {
        ad_jbuf_put(&b, canon, canon_len);
    }
    else {
        ad_jbuf_value(&b, detail);
    }
    ad_jbuf_put(&b, "}", 2); /* with its NUL */
    *len = b.len - 1;
    return b.buf;
}

/* A parameter's value for one event: static, or a JSON path evaluated on the
 * original event (never the transformed input), strings taken raw and other
 * JSON values as their JSON text; a path that matches nothing is empty.
 * *none (when asked) tells a null or an empty array (what a wildcard that
 * matched nothing gives): as a path segment it would name a resource
 * called "null" or "[]". */
static const char *param_value(apr_pool_t *p, const ad_param_t *prm, const json_t *ev, int *none)
{
    json_t *v;
    const char *out;

    if (!prm->path) {
        return prm->value;
    }
    if (!(v = ad_jsonpath_eval(prm->path, ev))) {
        return "";
    }
    if (none) {
        *none = json_is_null(v) || (json_is_array(v) && !json_array_size(v));
    }
    out = json_is_string(v) ? apr_pstrmemdup(p, json_string_value(v), json_string_length(v))
                            : ad_json_dump(p, v, NULL);
    json_decref(v);
    return out;
}

/* Nothing but whitespace (or nothing at all). */
static int blank(const char *body, apr_size_t len)
{
    apr_size_t i;

    for (i = 0; body && i < len && isspace((unsigned char)body[i]); i++) {
    }
    return !body || i == len;
}

/* The target's URL for this event, or NULL when a path parameter is blank
 * (missing from the event, null, empty or spaces, or an empty array, as a
 * wildcard that matched nothing gives): it would drop a segment of
 * the path, and "/users/ * /orders" would become "/users//orders", or
 * "/users/ *" the whole collection, another resource reached with the
 * connection's credentials. EventBridge requires path parameters not to be
 * blank. */
static const char *target_url(apr_pool_t *p, const ad_target_t *t, const json_t *ev,
                              const char **blank_param)
{
    const char *endpoint = t->destination ? t->destination->endpoint : t->endpoint;
    apr_array_header_t *parts = apr_array_make(p, 8, sizeof(const char *));
    const char *star, *v;
    int i = 0, j;

    while ((star = strchr(endpoint, '*')) && i < t->path_params->nelts) {
        const ad_param_t *prm = APR_ARRAY_IDX(t->path_params, i++, ad_param_t *);
        int none = 0;
        v = param_value(p, prm, ev, &none);
        if (none || blank(v, strlen(v))) {
            *blank_param = prm->value; /* the path's text, or the static value */
            return NULL;
        }
        APR_ARRAY_PUSH(parts, const char *) = apr_pstrmemdup(p, endpoint, star - endpoint);
        APR_ARRAY_PUSH(parts, const char *) = ad_url_encode(p, v);
        endpoint = star + 1;
    }
    APR_ARRAY_PUSH(parts, const char *) = endpoint;
    for (j = 0; j < t->query_params->nelts; j++) {
        const ad_param_t *q = APR_ARRAY_IDX(t->query_params, j, ad_param_t *);
        APR_ARRAY_PUSH(parts, const char *) = j || strchr(endpoint, '?') ? "&" : "?";
        APR_ARRAY_PUSH(parts, const char *) = ad_url_encode(p, q->key);
        APR_ARRAY_PUSH(parts, const char *) = "=";
        APR_ARRAY_PUSH(parts, const char *) = ad_url_encode(p, param_value(p, q, ev, NULL));
    }
    return apr_array_pstrcat(p, parts, 0);
}

/* Header values from event data are kept as they are: apidestd refuses to
 * send one holding a control character other than tab (the record is
 * dead-lettered with INVALID_PARAMETER), so nothing is injected and nothing
 * is lost silently. */
static void target_headers(apr_pool_t *p, const ad_target_t *t, const json_t *ev,
                           apr_array_header_t *out)
{
    int i;

    for (i = 0; i < t->headers->nelts; i++) {
        const ad_param_t *h = APR_ARRAY_IDX(t->headers, i, ad_param_t *);
        ad_header_t *hd = apr_array_push(out);
        hd->name = h->key;
        hd->value = param_value(p, h, ev, NULL);
    }
}

static int has_input_options(const ad_target_t *t)
{
    return t->input || t->input_path || t->input_template;
}

static int params_use_event(const apr_array_header_t *params)
{
    int i;

    for (i = 0; i < params->nelts; i++) {
        if (APR_ARRAY_IDX(params, i, ad_param_t *)->path) {
            return 1;
        }
    }
    return 0;
}

/* Whether a rule's records need the event as a tree (a transform or a
 * parameter taken from the event); otherwise the body text is all. */
static int rule_uses_event(const ad_rule_t *rule)
{
    int j;

    for (j = 0; j < rule->targets->nelts; j++) {
        const ad_target_t *t = APR_ARRAY_IDX(rule->targets, j, ad_target_t *);
        if ((t->transform && has_input_options(t)) || params_use_event(t->path_params) ||
            params_use_event(t->query_params) || params_use_event(t->headers)) {
            return 1;
        }
    }
    return 0;
}

/* The body for a target; 0 when EventBridge would not deliver (the
 * transformed input is not valid where it must be). */
static int target_body(apr_pool_t *p, const ad_conf_t *c, const ad_rule_t *rule,
                       const ad_target_t *t, const json_t *ev, apr_time_t now, const char **body,
                       apr_size_t *len)
{
    ad_transform_ctx_t ctx;
    char when[32];
    char *out;
    const char *why;
    apr_pool_t *tp;
    int ok;

    if (!t->transform || !has_input_options(t)) {
        return 1;
    }
    ad_time_rfc3339(when, now);
    ctx.rule_name = rule->name;
    ctx.rule_arn = ad_conf_rule_arn(p, c, rule);
    ctx.ingestion_time = when;
    /* The transform's working memory (a buffer doubled up to the output's
     * size, dumps of values) goes when it is done; only the output stays
     * for the rest of the request. */
    apr_pool_create(&tp, p);
    ok = ad_transform_apply(tp, t->transform, ev, &ctx, &out, len, &why) == APR_SUCCESS;
    if (!ok) {
        ad_log_perror(
            AD_LOG_MARK, AD_LOG_INFO, 0,
            ADLOGNO(00130) "rule %s target %s: the transformed input is not delivered: %s",
            rule->name, t->id, why ? why : "invalid");
    }
    else {
        *body = apr_pmemdup(p, out, *len + 1);
    }
    apr_pool_destroy(tp);
    return ok;
}

/* 0 when the target's input gave nothing to deliver. */
static int add_record(apr_pool_t *p, const ad_conf_t *c, int entry, const ad_rule_t *rule,
                      const ad_target_t *t, const char *id, const json_t *ev, const char *body,
                      apr_size_t body_len, apr_time_t now, apr_array_header_t *blobs)
{
    ad_record_t *r = ad_record_make(p);
    ad_blob_t *b;
    const char *blank_param = NULL;

    if (!target_body(p, c, rule, t, ev, now, &body, &body_len)) {
        return 0;
    }
    if (!(r->url = target_url(p, t, ev, &blank_param))) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_INFO, 0,
                      ADLOGNO(10049) "rule %s target %s: PathParameter %s is blank in this "
                                     "event; nothing is delivered",
                      rule->name, t->id, blank_param);
        return 0;
    }
    r->first_seen = now;
    r->next_due = now;
    r->event_id = id;
    r->rule = rule->name;
    r->target = t->id;
    r->destination = t->destination ? t->destination->name : "";
    r->method = t->destination ? t->destination->method : t->method;
    target_headers(p, t, ev, r->headers);
    r->body = body;
    r->body_len = body_len;
    b = apr_array_push(blobs);
    b->entry = entry;
    if (ad_record_encode(p, r, &b->data, &b->len) != APR_SUCCESS) {
        /* Only a body over AD_RECORD_MAX_SIZE fails: an input template that
         * repeats a big placeholder. Like a failed transform, the event is
         * accepted and this target's copy is not delivered. */
        ad_log_perror(AD_LOG_MARK, AD_LOG_WARNING, 0,
                      ADLOGNO(10042) "rule %s target %s: the %" APR_SIZE_T_FMT
                                     "-byte input is over the record limit (%d bytes) and is "
                                     "not delivered",
                      rule->name, t->id, body_len, AD_RECORD_MAX_SIZE);
        apr_array_pop(blobs);
        return 0;
    }
    return 1;
}

int ad_ingest_rule_records(apr_pool_t *p, const ad_conf_t *c, const ad_rule_t *rule,
                           const char *event_id, const json_t *ev, const char *body,
                           apr_size_t body_len, apr_time_t now, int entry,
                           apr_array_header_t *blobs)
{
    int j, dropped = 0;

    for (j = 0; j < rule->targets->nelts; j++) {
        dropped += !add_record(p, c, entry, rule, APR_ARRAY_IDX(rule->targets, j, ad_target_t *),
                               event_id, ev, body, body_len, now, blobs);
    }
    return dropped;
}

char *ad_ingest_scheduled_event(apr_pool_t *p, const ad_conf_t *c, const ad_rule_t *rule,
                                apr_time_t fire_time, const char **id, apr_size_t *len,
                                json_t **event)
{
    char uuid[AD_UUID_LEN + 1], tbuf[32];
    json_t *ev;
    char *out;

    ad_uuid4(uuid);
    *id = apr_pstrdup(p, uuid);
    ad_time_rfc3339(tbuf, fire_time);
    ev = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[s],s:{}}", "version", "0", "id", uuid,
                   "detail-type", "Scheduled Event", "source", "aws.events", "account", c->account,
                   "time", tbuf, "region", c->region, "resources", ad_conf_rule_arn(p, c, rule),
                   "detail");
    out = ad_json_dump(p, ev, len);
    *event = ad_json_own(p, ev);
    return out;
}

static void on_match(void *baton, int i)
{
    APR_ARRAY_PUSH((apr_array_header_t *)baton, int) = i;
}

static ad_match_scratch_t *scratch_of(ingest_ctx_t *x)
{
    if (!x->scratch) {
        x->scratch = ad_match_scratch_make(x->p);
        x->hits = apr_array_make(x->p, 4, sizeof(int));
    }
    return x->scratch;
}

/* What the bus's rules are matched against: the envelope's text, or only
 * its fields before "detail" (closed with '}') when no rule names detail
 * or a field in it. The detail was read and checked already, so matching
 * needs no second walk through it. head_len 0: the whole text (a detail
 * too deep for the matcher inside an envelope is refused, as it is by the
 * whole walk, whatever the rules). */
static int match_envelope(ingest_ctx_t *x, const ad_rule_index_t *ix, const char *body,
                          apr_size_t body_len, apr_size_t head_len)
{
    char *head;

    if (ix->names_detail || !head_len) {
        return ad_match_event(ix->matcher, body, body_len, x->scratch, on_match, x->hits);
    }
    head = apr_palloc(x->p, head_len + 1);
    memcpy(head, body, head_len);
    head[head_len] = '}';
    return ad_match_event(ix->matcher, head, head_len + 1, x->scratch, on_match, x->hits);
}

/* Returns how many rules matched, or what ad_match_event returns when it
 * cannot tell (< 0: nothing is routed). The envelope's JSON text (the
 * delivered body) is matched against all the bus's rules in one pass
 * (ad_match). The tree *ev is made from that text only when a matched rule
 * needs it. */
static int route_event(ingest_ctx_t *x, int entry, const char *bus, const char *id,
                       const char *body, apr_size_t body_len, apr_size_t head_len, json_t **ev)
{
    const ad_rule_index_t *ix = ad_conf_bus_rules(x->c, bus);
    int i, r;

    if (!ix || !ix->all->nelts) {
        return 0;
    }
    scratch_of(x);
    x->hits->nelts = 0;
    if ((r = match_envelope(x, ix, body, body_len, head_len)) <= 0) {
        return r;
    }
    for (i = 0; i < x->hits->nelts; i++) {
        const ad_rule_t *rule = APR_ARRAY_IDX(ix->all, APR_ARRAY_IDX(x->hits, i, int), ad_rule_t *);
        APR_ARRAY_PUSH(x->in->matched, int) = rule->index;
        APR_ARRAY_PUSH(x->in->matched_entry, int) = entry;
        if (!*ev && rule_uses_event(rule)) {
            json_error_t jerr;
            *ev = ad_json_parse(body, body_len, &jerr);
        }
        x->in->inputs_dropped += ad_ingest_rule_records(x->p, x->c, rule, id, *ev, body, body_len,
                                                        x->now, entry, x->in->records);
    }
    return x->hits->nelts;
}

/* The Detail as canonical text (*canon) without a tree, or as a tree
 * (*detail) when only jansson can tell; 0 when it is malformed. */
static int detail_read(ingest_ctx_t *x, const char *text, char **canon, size_t *clen,
                       json_t **detail, int *depth)
{
    json_error_t jerr;
    int r = ad_match_canonical(x->p, text, strlen(text), scratch_of(x), canon, clen);

    *detail = NULL;
    *depth = r == 1 ? ad_match_canonical_depth(x->scratch) : AD_MATCH_MAX_DEPTH;
    if (r != AD_MATCH_UNSURE) {
        return r;
    }
    *canon = NULL;
    *clen = 0;
    *detail = ad_json_parse(text, strlen(text), &jerr);
    if (!json_is_object(*detail)) {
        json_decref(*detail);
        *detail = NULL;
        return 0;
    }
    return 1;
}

static void ingest_entry(ingest_ctx_t *x, const json_t *entry)
{
    ad_ingest_entry_t *e = apr_array_push(x->in->entries);
    const char *source, *detail_type, *detail_text, *body;
    json_t *detail, *ev = NULL;
    char *canon;
    size_t canon_len;
    apr_size_t body_len, head_len;
    apr_time_t t;
    int routed, depth;

    memset(e, 0, sizeof(*e));
    if (!json_is_object(entry)) {
        entry_fail(x, e, ERR_INVALID_ARGUMENT,
                   "Parameter Entry is not valid. Reason: Entry must be an object.");
        return;
    }
    if (!(source = required_string(entry, "Source"))) {
        entry_fail(x, e, ERR_INVALID_ARGUMENT,
                   "Parameter Source is not valid. Reason: Source is a required argument.");
        return;
    }
    if (!(detail_type = required_string(entry, "DetailType"))) {
        entry_fail(x, e, ERR_INVALID_ARGUMENT,
                   "Parameter DetailType is not valid. Reason: DetailType is a required argument.");
        return;
    }
    /* PutEventsRequestEntry: "a maximum of 128 characters" (UTF-16 units,
     * as the model counts) */
    if (ad_awsmodel_length(detail_type, strlen(detail_type)) > DETAIL_TYPE_MAX) {
        entry_fail(x, e, ERR_INVALID_ARGUMENT,
                   "Parameter DetailType is not valid. Reason: DetailType is longer than 128 "
                   "characters.");
        return;
    }
    if (!(detail_text = required_string(entry, "Detail"))) {
        entry_fail(x, e, ERR_INVALID_ARGUMENT,
                   "Parameter Detail is not valid. Reason: Detail is a required argument.");
        return;
    }
    if (!strncmp(source, "aws.", 4)) {
        entry_fail(x, e, ERR_NOT_AUTH_SOURCE, "Not authorized for the source.");
        return;
    }
    if (!event_time(entry, x->now, &t)) {
        entry_fail(x, e, ERR_INVALID_ARGUMENT,
                   "Parameter Time is not valid. Reason: Time must be epoch seconds or an RFC 3339 "
                   "timestamp.");
        return;
    }
    if (!detail_read(x, detail_text, &canon, &canon_len, &detail, &depth)) {
        entry_fail(x, e, ERR_MALFORMED_DETAIL, "Detail is malformed.");
        return;
    }
    if (!resources_ok(entry)) {
        json_decref(detail);
        entry_fail(
            x, e, ERR_INVALID_ARGUMENT,
            "Parameter Resources is not valid. Reason: Resources must be a list of strings.");
        return;
    }
    e->event_id = event_id_make(x);
    if (!ad_conf_source_may_match(x->c, bus_name(x->c, entry), source)) {
        /* no rule of the bus can match this source: no envelope to build */
        json_decref(detail);
        x->in->unmatched++;
        return;
    }
    body = envelope_text(x, e->event_id, entry, t, canon, canon_len, detail, &body_len, &head_len);
    json_decref(detail);
    if (depth >= AD_MATCH_MAX_DEPTH) {
        head_len = 0;
    }
    routed = route_event(x, x->in->entries->nelts - 1, bus_name(x->c, entry), e->event_id, body,
                         body_len, head_len, &ev);
    if (routed == 0) {
        x->in->unmatched++;
    }
    else if (routed < 0) {
        /* Never answer an EventId for an event the rules could not see. */
        entry_fail(x, e,
                   routed == AD_MATCH_TOO_COMPLEX ? ERR_INVALID_ARGUMENT : ERR_MALFORMED_DETAIL,
                   routed == AD_MATCH_TOO_COMPLEX
                       ? "Detail has too many values inside arrays to be matched."
                       : "Detail is nested too deeply to be matched.");
    }
    json_decref(ev);
}

/* The model's constraints on PutEvents' members (eventbridge-semantics 1),
 * checked the way AWS's front end checks them: before any entry is taken,
 * and failing the whole request. */
#define RE_PUT_BUS                                                                                 \
    "^(arn:aws[_A-Za-z0-9-]*:events:[a-z]+-[a-z]+-[_A-Za-z0-9-]+:"                                 \
    "[0-9]{12}:event-bus/)?[._A-Za-z0-9-]+$"
#define SHOWN_PUT_BUS                                                                              \
    "(arn:aws[\\w-]*:events:[a-z]+-[a-z]+-[\\w-]+:[0-9]{12}:event-bus\\/)?[\\.\\-_A-Za-z0-9]+"
#define RESOURCE_MAX 2048

static const ad_awsmodel_member_t M_SOURCE = {"Source", 0, 0, 0, NULL, NULL};
static const ad_awsmodel_member_t M_DETAIL_TYPE = {"DetailType", 0, 0, 0, NULL, NULL};
static const ad_awsmodel_member_t M_DETAIL = {"Detail", 0, 0, 0, NULL, NULL};
static const ad_awsmodel_member_t M_BUS = {"EventBusName", 0, 1, 1600, RE_PUT_BUS, SHOWN_PUT_BUS};
static const ad_awsmodel_member_t M_TRACE = {"TraceHeader", 0, 1, 500, NULL, NULL};
static const ad_awsmodel_member_t M_ENDPOINT = {"EndpointId",
                                                0,
                                                1,
                                                50,
                                                "^[A-Za-z0-9-]+[.][A-Za-z0-9-]+$",
                                                "^[A-Za-z0-9\\-]+[\\.][A-Za-z0-9\\-]+$"};

static void check_resources(ad_awsmodel_t *m, const json_t *res, const char *at)
{
    size_t i;

    if (!res || json_is_null(res)) {
        return;
    }
    if (!json_is_array(res)) {
        ad_awsmodel_wrong_type(m, res, "a List");
        return;
    }
    for (i = 0; i < json_array_size(res); i++) {
        const json_t *v = json_array_get(res, i);
        if (json_is_null(v)) {
            continue; /* the entry fails on its own, as before these checks */
        }
        if (!json_is_string(v)) {
            ad_awsmodel_wrong_type(m, v, "a String");
        }
        else if (ad_awsmodel_length(json_string_value(v), json_string_length(v)) > RESOURCE_MAX) {
            ad_awsmodel_violation(
                m,
                apr_psprintf(m->p, "%sresources.%" APR_SIZE_T_FMT ".member", at, (apr_size_t)i + 1),
                json_string_value(v), "Member must have length less than or equal to 2048");
        }
    }
}

static void check_entry(ad_awsmodel_t *m, const json_t *entry, size_t i)
{
    static const ad_awsmodel_member_t *const strings[] = {&M_SOURCE, &M_DETAIL_TYPE, &M_DETAIL,
                                                          &M_BUS, &M_TRACE};
    char at[48];
    const json_t *t = json_object_get(entry, "Time");
    size_t k;

    if (json_is_null(entry)) {
        return; /* no members to check: the entry fails on its own */
    }
    if (!json_is_object(entry)) {
        ad_awsmodel_wrong_type(m, entry, "a PutEventsRequestEntry");
        return;
    }
    snprintf(at, sizeof(at), "entries.%d.member.", (int)i + 1); /* i < ApiDestMaxEntries */
    for (k = 0; k < sizeof(strings) / sizeof(strings[0]); k++) {
        ad_awsmodel_string(m, entry, strings[k], at);
    }
    if (t && !json_is_null(t) && !json_is_number(t) && !json_is_string(t)) {
        ad_awsmodel_wrong_type(m, t, "a Timestamp");
    }
    check_resources(m, json_object_get(entry, "Resources"), at);
}

/* 1 when the members are well-formed; else the request fails as AWS fails it. */
/* Types fail first (SerializationException); then every constraint that
 * fails, the entries' count among them, is listed in one
 * ValidationException, as AWS's front end answers. */
static int members_ok(ingest_ctx_t *x, const json_t *root, const json_t *entries, int single)
{
    ad_awsmodel_t m;
    const char *type, *msg;
    size_t i, n = json_array_size(entries);

    ad_awsmodel_init(&m, x->p);
    if (n < 1) {
        ad_awsmodel_violation(&m, "entries", "[]",
                              "Member must have length greater than or equal to 1");
    }
    else if (n > (size_t)x->c->max_entries) {
        ad_awsmodel_violation(&m, "entries", "[...]",
                              apr_psprintf(x->p, "Member must have length less than or equal to %d",
                                           x->c->max_entries));
    }
    if (!single) {
        ad_awsmodel_string(&m, root, &M_ENDPOINT, NULL);
    }
    /* Past the entry limit the request is refused anyway: the first
     * AD_INGEST_CHECKED_ENTRIES entries are still checked, as AWS lists
     * every violation, but not the 50,000 a 1 MiB body can hold. */
    for (i = 0; i < n && i < AD_INGEST_CHECKED_ENTRIES; i++) {
        check_entry(&m, json_array_get(entries, i), i);
    }
    if (ad_awsmodel_failed(&m, &type, &msg)) {
        request_error(x->in, 400, type, msg);
        return 0;
    }
    return 1;
}

static int check_request_size(ingest_ctx_t *x, const json_t *entries)
{
    apr_size_t total = 0;
    size_t i;

    for (i = 0; i < json_array_size(entries); i++) {
        total += entry_size(json_array_get(entries, i));
    }
    return total < x->c->max_entry_size; /* "less than 256 KB" */
}

static const json_t *entries_of(ad_ingest_form_t form, json_t *root, json_t **single)
{
    const json_t *entries = json_object_get(root, "Entries");

    *single = NULL;
    if (!entries && form == AD_INGEST_PLAIN_JSON && json_is_object(root) &&
        (json_object_get(root, "Source") || json_object_get(root, "Detail") ||
         json_object_get(root, "DetailType"))) {
        *single = json_array();
        json_array_append(*single, root);
        return *single;
    }
    return entries;
}

static void ingest_entries(ingest_ctx_t *x, const json_t *entries)
{
    size_t i;
    for (i = 0; i < json_array_size(entries); i++) {
        ingest_entry(x, json_array_get(entries, i));
    }
}

ad_ingest_t *ad_ingest_put_events(apr_pool_t *p, const ad_conf_t *c, ad_ingest_form_t form,
                                  const char *body, apr_size_t len, apr_time_t now)
{
    ingest_ctx_t x = {p, c, ingest_make(p), now, NULL, NULL};
    json_error_t jerr;
    json_t *root, *single;
    const json_t *entries;

    root =
        blank(body, len) ? json_object() /* an empty request */ : ad_json_parse(body, len, &jerr);
    if (!root) {
        return request_error(x.in, 400, "SerializationException",
                             apr_psprintf(p,
                                          "Request body is not valid JSON: %s (line %d, column %d)",
                                          jerr.text, jerr.line, jerr.column));
    }
    entries = entries_of(form, root, &single);
    if (!json_is_object(root)) {
        request_error(x.in, 400, "SerializationException",
                      json_is_array(root) ? "Start of list found where not expected"
                                          : "Request body must be a JSON object");
    }
    else if (!entries || json_is_null(entries)) {
        request_error(x.in, 400, "ValidationException",
                      "1 validation error detected: Value null at 'entries' failed to satisfy "
                      "constraint: Member must not be null");
    }
    else if (!json_is_array(entries)) {
        ad_awsmodel_t m;
        const char *type, *msg;
        ad_awsmodel_init(&m, p);
        ad_awsmodel_wrong_type(&m, entries, "a List");
        ad_awsmodel_failed(&m, &type, &msg);
        request_error(x.in, 400, type, msg);
    }
    else if (!members_ok(&x, root, entries, single != NULL)) {
        /* answered */
    }
    else if (!check_request_size(&x, entries)) {
        request_error(x.in, 400, "ValidationException",
                      "Total size of the entries in the request is over the limit.");
    }
    else {
        ingest_entries(&x, entries);
    }
    json_decref(single);
    json_decref(root);
    return x.in;
}

static void fail_entry_at(ad_ingest_t *in, int entry, const char *code, const char *msg)
{
    ad_ingest_entry_t *e = &APR_ARRAY_IDX(in->entries, entry, ad_ingest_entry_t);

    if (e->event_id) {
        e->event_id = NULL;
        e->error_code = code;
        e->error_message = msg;
        in->failed_count++;
    }
}

int ad_ingest_limit_records(ad_ingest_t *in, apr_size_t max_item, const char *store_kind)
{
    apr_array_header_t *kept;
    int i, failed = 0;

    if (!max_item) {
        return 0;
    }
    for (i = 0; i < in->records->nelts; i++) {
        const ad_blob_t *b = &APR_ARRAY_IDX(in->records, i, ad_blob_t);
        if (b->len > max_item && APR_ARRAY_IDX(in->entries, b->entry, ad_ingest_entry_t).event_id) {
            fail_entry_at(in, b->entry, "InternalFailure",
                          apr_psprintf(in->entries->pool,
                                       "Internal Service Failure: the event needs %" APR_SIZE_T_FMT
                                       " bytes in the store, over the %s limit of %" APR_SIZE_T_FMT
                                       " bytes per record (use a gdbm store)",
                                       b->len, store_kind, max_item));
            failed++;
        }
    }
    kept = apr_array_make(in->records->pool, in->records->nelts, sizeof(ad_blob_t));
    for (i = 0; failed && i < in->records->nelts; i++) {
        const ad_blob_t *b = &APR_ARRAY_IDX(in->records, i, ad_blob_t);
        if (APR_ARRAY_IDX(in->entries, b->entry, ad_ingest_entry_t).event_id) {
            *(ad_blob_t *)apr_array_push(kept) = *b;
        }
    }
    if (failed) {
        in->records = kept;
    }
    return failed;
}

void ad_ingest_fail_all(ad_ingest_t *in, const char *code, const char *msg)
{
    int i;
    for (i = 0; i < in->entries->nelts; i++) {
        fail_entry_at(in, i, code, msg);
    }
}

void ad_ingest_fail_records(ad_ingest_t *in, const apr_array_header_t *blobs, const char *code,
                            const char *msg)
{
    int i;

    for (i = 0; i < blobs->nelts; i++) {
        fail_entry_at(in, APR_ARRAY_IDX(blobs, i, ad_blob_t).entry, code, msg);
    }
}

/* The records of one entry, from i on: their count, and their size in a
 * STORE message. */
static int entry_records(const apr_array_header_t *recs, int i, apr_size_t *size)
{
    int entry = APR_ARRAY_IDX(recs, i, ad_blob_t).entry, n = 0;

    *size = 0;
    for (; i + n < recs->nelts && APR_ARRAY_IDX(recs, i + n, ad_blob_t).entry == entry; n++) {
        *size += 4 + APR_ARRAY_IDX(recs, i + n, ad_blob_t).len;
    }
    return n;
}

apr_array_header_t *ad_ingest_store_groups(ad_ingest_t *in, apr_size_t max_payload)
{
    apr_pool_t *p = in->records->pool;
    apr_array_header_t *groups = apr_array_make(p, 1, sizeof(apr_array_header_t *));
    apr_array_header_t *cur = NULL;
    apr_size_t cur_size = 0, size = 4;
    int i, j, n;

    for (i = 0; i < in->records->nelts; i++) {
        size += 4 + APR_ARRAY_IDX(in->records, i, ad_blob_t).len;
    }
    if (size <= max_payload) { /* all but always: one message, no copy */
        APR_ARRAY_PUSH(groups, apr_array_header_t *) = in->records;
        return groups;
    }
    for (i = 0; i < in->records->nelts; i += n) {
        n = entry_records(in->records, i, &size);
        if (4 + size > max_payload) {
            ad_log_perror(AD_LOG_MARK, AD_LOG_WARNING, 0,
                          ADLOGNO(00132) "an event's %d target copies need %" APR_SIZE_T_FMT
                                         " bytes, over one message to apidestd: not accepted",
                          n, size);
            fail_entry_at(in, APR_ARRAY_IDX(in->records, i, ad_blob_t).entry, "InternalFailure",
                          apr_psprintf(p,
                                       "Internal Service Failure: the event's %d target "
                                       "copies need %" APR_SIZE_T_FMT
                                       " bytes, over the %" APR_SIZE_T_FMT
                                       " bytes one request can store",
                                       n, size, max_payload));
            continue;
        }
        if (!cur || cur_size + size > max_payload) {
            cur = apr_array_make(p, n, sizeof(ad_blob_t));
            APR_ARRAY_PUSH(groups, apr_array_header_t *) = cur;
            cur_size = 4;
        }
        for (j = 0; j < n; j++) {
            *(ad_blob_t *)apr_array_push(cur) = APR_ARRAY_IDX(in->records, i + j, ad_blob_t);
        }
        cur_size += size;
    }
    return groups;
}

typedef struct {
    char *buf;
    apr_size_t len;
} resp_buf_t;

static void resp_put(void *baton, const char *s, size_t n)
{
    resp_buf_t *b = baton;

    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static void resp_lit(resp_buf_t *b, const char *s)
{
    resp_put(b, s, strlen(s));
}

static void resp_str(resp_buf_t *b, const char *s)
{
    ad_json_write_string(s, strlen(s), resp_put, b);
}

/* Room for s as a JSON string: quotes, and at most six bytes (a \u00XX
 * escape) per input byte. */
static apr_size_t resp_str_room(const char *s)
{
    return 2 + 6 * strlen(s);
}

/* Written directly rather than through a jansson tree: it is on every
 * PutEvents, one object per entry. Same text as ad_json_dump of the tree. */
char *ad_ingest_response(apr_pool_t *p, const ad_ingest_t *in, apr_size_t *len)
{
    resp_buf_t b = {NULL, 0};
    apr_size_t room = 64;
    char num[24];
    int i;

    for (i = 0; i < in->entries->nelts; i++) {
        const ad_ingest_entry_t *e = &APR_ARRAY_IDX(in->entries, i, ad_ingest_entry_t);
        room += 48 + (e->event_id ? resp_str_room(e->event_id)
                                  : resp_str_room(e->error_code) + resp_str_room(e->error_message));
    }
    b.buf = apr_palloc(p, room);
    resp_lit(&b, "{\"FailedEntryCount\":");
    apr_snprintf(num, sizeof(num), "%d", in->failed_count);
    resp_lit(&b, num);
    resp_lit(&b, ",\"Entries\":[");
    for (i = 0; i < in->entries->nelts; i++) {
        const ad_ingest_entry_t *e = &APR_ARRAY_IDX(in->entries, i, ad_ingest_entry_t);
        resp_lit(&b, i ? ",{" : "{");
        if (e->event_id) {
            resp_lit(&b, "\"EventId\":");
            resp_str(&b, e->event_id);
        }
        else {
            resp_lit(&b, "\"ErrorCode\":");
            resp_str(&b, e->error_code);
            resp_lit(&b, ",\"ErrorMessage\":");
            resp_str(&b, e->error_message);
        }
        resp_lit(&b, "}");
    }
    resp_lit(&b, "]}");
    b.buf[b.len] = '\0';
    *len = b.len;
    return b.buf;
}

char *ad_awsjson_error_body(apr_pool_t *p, const char *type, const char *msg, apr_size_t *len)
{
    json_t *o = json_object();
    char *out;

    json_object_set_new(o, "__type", json_string(type));
    /* messages may quote what a client sent (a SigV4 header) */
    json_object_set_new(o, "message",
                        json_string(msg ? ad_utf8_clean(p, msg, strlen(msg), NULL) : ""));
    out = ad_json_dump(p, o, len);
    json_decref(o);
    return out;
}
