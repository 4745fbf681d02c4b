#include <apr_strings.h>
#include <jansson.h>

#include "ad_conf.h"
#include "ad_pattern.h"

ad_conf_t *ad_conf_make(apr_pool_t *p)
{
    ad_conf_t *c = apr_pcalloc(p, sizeof(*c));

    c->store_sync = 0;
    c->store_min_free = AD_DEFAULT_STORE_MIN_FREE;
    c->account = AD_DEFAULT_ACCOUNT;
    c->region = AD_DEFAULT_REGION;
    c->workers = AD_DEFAULT_WORKERS;
    c->max_in_flight = AD_DEFAULT_MAX_IN_FLIGHT;
    c->maint_interval_sec = AD_DEFAULT_MAINT_INTERVAL_SEC;
    c->backoff_base_sec = AD_DEFAULT_BACKOFF_BASE_SEC;
    c->backoff_cap_sec = AD_DEFAULT_BACKOFF_CAP_SEC;
    c->max_entry_size = AD_DEFAULT_MAX_ENTRY_SIZE;
    c->max_request_size = AD_DEFAULT_MAX_REQUEST_SIZE;
    c->max_entries = AD_DEFAULT_MAX_ENTRIES;
    c->connections = apr_array_make(p, 4, sizeof(ad_connection_t *));
    c->connection_by_name = apr_hash_make(p);
    c->destinations = apr_array_make(p, 8, sizeof(ad_destination_t *));
    c->destination_by_name = apr_hash_make(p);
    c->rules = apr_array_make(p, 8, sizeof(ad_rule_t *));
    c->rule_by_name = apr_hash_make(p);
    c->all_targets = apr_array_make(p, 8, sizeof(ad_target_t *));
    c->buses = apr_hash_make(p);
    apr_hash_set(c->buses, AD_DEFAULT_BUS, APR_HASH_KEY_STRING, "");
    return c;
}

const char *ad_conf_rule_arn(apr_pool_t *p, const ad_conf_t *c, const ad_rule_t *r)
{
    if (!r->bus || !strcmp(r->bus, AD_DEFAULT_BUS)) {
        return apr_psprintf(p, "arn:aws:events:%s:%s:rule/%s", c->region, c->account, r->name);
    }
    return apr_psprintf(p, "arn:aws:events:%s:%s:rule/%s/%s", c->region, c->account, r->bus,
                        r->name);
}

const ad_target_t *ad_conf_find_target(const ad_conf_t *c, const char *rule, const char *target,
                                       const ad_rule_t **rule_out)
{
    const ad_rule_t *r = apr_hash_get(c->rule_by_name, rule, APR_HASH_KEY_STRING);
    int i;

    if (!r) {
        return NULL;
    }
    for (i = 0; i < r->targets->nelts; i++) {
        const ad_target_t *t = APR_ARRAY_IDX(r->targets, i, ad_target_t *);
        if (!strcmp(t->id, target)) {
            if (rule_out) {
                *rule_out = r;
            }
            return t;
        }
    }
    return NULL;
}

void ad_conf_index_targets(ad_conf_t *c)
{
    int i, j;

    apr_array_clear(c->all_targets);
    for (i = 0; i < c->rules->nelts; i++) {
        ad_rule_t *r = APR_ARRAY_IDX(c->rules, i, ad_rule_t *);
        r->index = i;
        for (j = 0; j < r->targets->nelts; j++) {
            ad_target_t *t = APR_ARRAY_IDX(r->targets, j, ad_target_t *);
            t->rule = r;
            t->gindex = c->all_targets->nelts;
            APR_ARRAY_PUSH(c->all_targets, ad_target_t *) = t;
        }
    }
    c->ntargets = c->all_targets->nelts;
}

ad_target_t *ad_conf_target_make(apr_pool_t *p, const char *id)
{
    ad_target_t *t = apr_pcalloc(p, sizeof(*t));

    t->id = id;
    t->method = "POST";
    t->timeout_sec = AD_DEFAULT_TIMEOUT_SEC;
    t->retry_attempts = AD_DEFAULT_RETRY_ATTEMPTS;
    t->max_event_age_sec = AD_DEFAULT_MAX_EVENT_AGE_SEC;
    t->dead_letter = 1;
    t->path_params = apr_array_make(p, 2, sizeof(ad_param_t *));
    t->query_params = apr_array_make(p, 2, sizeof(ad_param_t *));
    t->headers = apr_array_make(p, 2, sizeof(ad_param_t *));
    t->paths_map = apr_array_make(p, 2, sizeof(ad_transform_var_t));
    return t;
}

/* The exact source strings a pattern requires, or NULL when it does not pin
 * "source" (absent, an operator, a non-string, an IP address, which matches
 * other spellings of itself, or an $or at the top). */
static apr_array_header_t *pinned_sources(apr_pool_t *p, const char *pattern_text)
{
    json_error_t jerr;
    json_t *pat = pattern_text ? json_loads(pattern_text, 0, &jerr) : NULL;
    const json_t *src = json_object_get(pat, "source");
    apr_array_header_t *out = NULL;
    size_t i;

    if (json_is_array(src) && json_array_size(src) && !json_object_get(pat, "$or")) {
        out = apr_array_make(p, (int)json_array_size(src), sizeof(const char *));
        for (i = 0; i < json_array_size(src); i++) {
            const json_t *v = json_array_get(src, i);
            if (!json_is_string(v) ||
                ad_pattern_value_is_address(json_string_value(v), json_string_length(v))) {
                out = NULL;
                break;
            }
            APR_ARRAY_PUSH(out, const char *) = apr_pstrdup(p, json_string_value(v));
        }
    }
    json_decref(pat);
    return out;
}

static ad_rule_index_t *bus_index(apr_pool_t *p, ad_conf_t *c, const char *bus)
{
    ad_rule_index_t *ix = apr_hash_get(c->rule_index, bus, APR_HASH_KEY_STRING);

    if (!ix) {
        ix = apr_pcalloc(p, sizeof(*ix));
        ix->by_source = apr_hash_make(p);
        ix->unindexed = apr_array_make(p, 4, sizeof(ad_rule_t *));
        ix->all = apr_array_make(p, 4, sizeof(ad_rule_t *));
        apr_hash_set(c->rule_index, bus, APR_HASH_KEY_STRING, ix);
    }
    return ix;
}

/* One ad_match set per bus over all its rules, in config order. */
static void compile_matchers(ad_conf_t *c, apr_pool_t *p)
{
    apr_hash_index_t *hi;
    int i;

    for (hi = apr_hash_first(p, c->rule_index); hi; hi = apr_hash_next(hi)) {
        ad_rule_index_t *ix = apr_hash_this_val(hi);
        ad_pattern_t **pats = apr_pcalloc(p, sizeof(*pats) * (size_t)(ix->all->nelts + 1));

        for (i = 0; i < ix->all->nelts; i++) {
            pats[i] = APR_ARRAY_IDX(ix->all, i, ad_rule_t *)->pattern;
        }
        ix->matcher = ad_match_compile(p, pats, ix->all->nelts);
        ix->names_detail = ad_match_names_field(ix->matcher, "detail");
    }
}

void ad_conf_index_rules(ad_conf_t *c, apr_pool_t *p)
{
    int i, j;

    c->rule_index = apr_hash_make(p);
    for (i = 0; i < c->rules->nelts; i++) {
        ad_rule_t *r = APR_ARRAY_IDX(c->rules, i, ad_rule_t *);
        ad_rule_index_t *ix;
        apr_array_header_t *sources;

        if (!r->enabled || !r->pattern) {
            continue;
        }
        ix = bus_index(p, c, r->bus);
        APR_ARRAY_PUSH(ix->all, ad_rule_t *) = r;
        if (!(sources = pinned_sources(p, r->pattern_text))) {
            APR_ARRAY_PUSH(ix->unindexed, ad_rule_t *) = r;
            continue;
        }
        for (j = 0; j < sources->nelts; j++) {
            const char *src = APR_ARRAY_IDX(sources, j, const char *);
            apr_array_header_t *list = apr_hash_get(ix->by_source, src, APR_HASH_KEY_STRING);
            if (!list) {
                list = apr_array_make(p, 2, sizeof(ad_rule_t *));
                apr_hash_set(ix->by_source, src, APR_HASH_KEY_STRING, list);
            }
            /* ["a", "a"] must not list the rule twice */
            if (!list->nelts || APR_ARRAY_IDX(list, list->nelts - 1, ad_rule_t *) != r) {
                APR_ARRAY_PUSH(list, ad_rule_t *) = r;
            }
        }
    }
    compile_matchers(c, p);
}

const ad_rule_index_t *ad_conf_bus_rules(const ad_conf_t *c, const char *bus)
{
    return c->rule_index ? apr_hash_get(c->rule_index, bus, APR_HASH_KEY_STRING) : NULL;
}

static int by_rule_index(const void *a, const void *b)
{
    return (*(ad_rule_t *const *)a)->index - (*(ad_rule_t *const *)b)->index;
}

/* The bus's index and the rules it pins to this source (NULL: none). */
static const ad_rule_index_t *index_lookup(const ad_conf_t *c, const char *bus, const char *source,
                                           const apr_array_header_t **hit)
{
    const ad_rule_index_t *ix =
        c->rule_index ? apr_hash_get(c->rule_index, bus, APR_HASH_KEY_STRING) : NULL;

    *hit = ix && source ? apr_hash_get(ix->by_source, source, APR_HASH_KEY_STRING) : NULL;
    return ix;
}

/* Whether s starts with what, then sep; returns what follows, or NULL. */
static const char *skip_part(const char *s, const char *what, char sep)
{
    size_t n = strlen(what);

    return s && !strncmp(s, what, n) && s[n] == sep ? s + n + 1 : NULL;
}

const char *ad_conf_bus_name(const ad_conf_t *c, const char *given)
{
    const char *s;

    if (!given) {
        return AD_DEFAULT_BUS;
    }
    if (strncmp(given, "arn:", 4)) {
        return given;
    }
    s = skip_part(skip_part(skip_part(given + 4, "aws", ':'), "events", ':'), c->region, ':');
    s = skip_part(s, c->account, ':');
    return skip_part(s, "event-bus", '/');
}

int ad_conf_source_may_match(const ad_conf_t *c, const char *bus, const char *source)
{
    const apr_array_header_t *hit;
    const ad_rule_index_t *ix = index_lookup(c, bus, source, &hit);

    return ix && (ix->unindexed->nelts || (hit && hit->nelts));
}

const apr_array_header_t *ad_conf_candidate_rules(apr_pool_t *p, const ad_conf_t *c,
                                                  const char *bus, const char *source)
{
    static const apr_array_header_t empty = {NULL, sizeof(ad_rule_t *), 0, 0, NULL};
    const apr_array_header_t *hit;
    const ad_rule_index_t *ix = index_lookup(c, bus, source, &hit);
    apr_array_header_t *both;

    if (!ix) {
        return &empty;
    }
    if (!hit || !hit->nelts) {
        return ix->unindexed;
    }
    if (!ix->unindexed->nelts) {
        return hit;
    }
    both = apr_array_append(p, hit, ix->unindexed);
    qsort(both->elts, both->nelts, sizeof(ad_rule_t *), by_rule_index);
    return both;
}
