#include <string.h>

#include "ad_metrics.h"

const double ad_hist_bounds_ms[AD_HIST_BUCKETS] = {1,   2,   5,    10,   25,   50,    100,
                                                   250, 500, 1000, 2500, 5000, 10000, 30000};

static apr_size_t align8(apr_size_t n)
{
    return (n + 7) & ~(apr_size_t)7;
}

apr_status_t ad_metrics_create(apr_pool_t *p, const ad_conf_t *c, ad_metrics_t **out)
{
    ad_metrics_t *m = apr_pcalloc(p, sizeof(*m));
    apr_size_t size, off;
    apr_shm_t *shm;
    apr_status_t rv;
    char *base;
    int i;

    m->nrules = c->rules->nelts;
    m->ntargets = c->ntargets;
    m->ndests = c->destinations->nelts;
    m->nconns = c->connections->nelts;
    size = align8(sizeof(ad_daemon_metrics_t)) +
           align8(sizeof(ad_rule_metrics_t) * (m->nrules + 1)) +
           align8(sizeof(ad_target_metrics_t) * (m->ntargets + 1)) +
           align8(sizeof(ad_dest_metrics_t) * (m->ndests + 1)) +
           align8(sizeof(ad_conn_metrics_t) * (m->nconns + 1));
    /* Anonymous: inherited by every process forked from the master. */
    if ((rv = apr_shm_create(&shm, size, NULL, p)) != APR_SUCCESS) {
        return rv;
    }
    base = apr_shm_baseaddr_get(shm);
    memset(base, 0, size);
    m->daemon = (ad_daemon_metrics_t *)base;
    off = align8(sizeof(ad_daemon_metrics_t));
    m->rules = (ad_rule_metrics_t *)(base + off);
    off += align8(sizeof(ad_rule_metrics_t) * (m->nrules + 1));
    m->targets = (ad_target_metrics_t *)(base + off);
    off += align8(sizeof(ad_target_metrics_t) * (m->ntargets + 1));
    m->dests = (ad_dest_metrics_t *)(base + off);
    off += align8(sizeof(ad_dest_metrics_t) * (m->ndests + 1));
    m->conns = (ad_conn_metrics_t *)(base + off);
    for (i = 0; i < m->nconns; i++) {
        const ad_connection_t *cn = APR_ARRAY_IDX(c->connections, i, ad_connection_t *);
        /* OAuth starts AUTHORIZING until its first token, as EventBridge. */
        m->conns[i].state = cn->auth == AD_AUTH_OAUTH ? AD_CONN_AUTHORIZING : AD_CONN_AUTHORIZED;
    }
    *out = m;
    return APR_SUCCESS;
}

const char *ad_conn_state_name(apr_uint64_t state)
{
    switch (state) {
    case AD_CONN_AUTHORIZED:
        return "AUTHORIZED";
    case AD_CONN_AUTHORIZING:
        return "AUTHORIZING";
    default:
        return "DEAUTHORIZED";
    }
}

void ad_metric_add(apr_uint64_t *counter, apr_int64_t n)
{
    __atomic_add_fetch(counter, (apr_uint64_t)n, __ATOMIC_RELAXED);
}

apr_uint64_t ad_metric_get(const apr_uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

void ad_metric_set(apr_uint64_t *gauge, apr_uint64_t v)
{
    __atomic_store_n(gauge, v, __ATOMIC_RELAXED);
}

void ad_hist_observe(ad_hist_t *h, apr_interval_time_t us)
{
    double ms = (double)(us < 0 ? 0 : us) / 1000.0;
    int i;

    for (i = 0; i < AD_HIST_BUCKETS && ms > ad_hist_bounds_ms[i]; i++) {
    }
    ad_metric_add(&h->bucket[i], 1);
    ad_metric_add(&h->count, 1);
    ad_metric_add(&h->sum_us, us < 0 ? 0 : us);
}

/* One writer (apidestd's core); readers retry while the sequence is odd or
 * moved, so they never show half of two messages. */
void ad_dest_set_error(ad_dest_metrics_t *d, const char *text, apr_time_t when)
{
    __atomic_add_fetch(&d->last_error_seq, 1, __ATOMIC_ACQ_REL);
    strncpy(d->last_error, text, AD_LAST_ERROR_LEN - 1);
    d->last_error[AD_LAST_ERROR_LEN - 1] = '\0';
    d->last_error_time = apr_time_sec(when);
    __atomic_add_fetch(&d->last_error_seq, 1, __ATOMIC_ACQ_REL);
}

void ad_dest_get_error(const ad_dest_metrics_t *d, char *buf, apr_size_t len, apr_int64_t *when)
{
    int tries;

    for (tries = 0; tries < 100; tries++) {
        apr_uint64_t s1 = __atomic_load_n(&d->last_error_seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            continue;
        }
        memcpy(buf, d->last_error, len < AD_LAST_ERROR_LEN ? len : AD_LAST_ERROR_LEN);
        buf[len - 1] = '\0';
        *when = d->last_error_time;
        if (__atomic_load_n(&d->last_error_seq, __ATOMIC_ACQUIRE) == s1) {
            return;
        }
    }
    buf[0] = '\0';
    *when = 0;
}
