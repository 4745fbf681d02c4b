#include <apr_strings.h>

#include "ad_conf.h"

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

const char *ad_conf_rule_arn(apr_pool_t *p, const ad_conf_t *c,
                             const ad_rule_t *r)
{
    if (!r->bus || !strcmp(r->bus, AD_DEFAULT_BUS)) {
        return apr_psprintf(p, "arn:aws:events:%s:%s:rule/%s", c->region,
                            c->account, r->name);
    }
    return apr_psprintf(p, "arn:aws:events:%s:%s:rule/%s/%s", c->region,
                        c->account, r->bus, r->name);
}

const ad_target_t *ad_conf_find_target(const ad_conf_t *c, const char *rule,
                                       const char *target,
                                       const ad_rule_t **rule_out)
{
    const ad_rule_t *r = apr_hash_get(c->rule_by_name, rule,
                                      APR_HASH_KEY_STRING);
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
