/* apidestd core. Threads:
 *  - the caller's thread polls the children's connections (ad_ipc.c), which
 *    stay open across requests, and after every wait runs a turn of the
 *    core on the messages it read: the core thread. It is the only user of
 *    the store: it commits the STORE messages' records in groups (one
 *    marker write, one optional fsync per group) and acknowledges them
 *    itself, applies delivery outcomes, dispatches due records and runs
 *    the maintenance tick. A message costs no hand-over between threads;
 *  - worker threads each drive a libcurl multi engine; one that returns
 *    outcomes while the core waits wakes its poll.
 * Memory: the core and every worker have their own unmanaged root pool; a
 * delivery attempt's job and pool are taken from the core's free list of
 * jobs, owned by the worker while the request runs and handed back with the
 * outcome, when the pool is cleared and the job goes back on the list. */
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <signal.h>
#include <pthread.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_hash.h>
#include <apr_atomic.h>
#include <apr_thread_proc.h>
#include <apr_thread_mutex.h>
#include <apr_poll.h>

#include "ad_daemon.h"
#include "ad_store.h"
#include "ad_record.h"
#include "ad_ingest.h"
#include "ad_wire.h"
#include "ad_ipc.h"
#include "ad_http.h"
#include "ad_maint.h"
#include "ad_admin.h"
#include "ad_auth.h"
#include "ad_ratelimit.h"
#include "ad_log.h"
#include "ad_util.h"

#define KEY_PREFIX_QUEUE    "q"
#define KEY_PREFIX_DLQ      "d"
#define KEY_PREFIX_BAD      "x"
#define KEY_COMMIT          "m/commit"
#define KEY_PREFIX_SCHEDULE "s/"
#define KEY_LEN             25 /* "q" + 16 hex batch + 8 hex index */
#define COMPACT_DEFER_SEC   60
/* Children keep one connection per busy thread; beyond this many apidestd
 * refuses (file descriptors are finite). */
#define CONNS_MAX       4096
#define MIN_RETRY_DELAY apr_time_from_msec(100)
#define STOP_TURN       apr_time_from_msec(10) /* the core's turns while workers drain */
/* A bulk redrive's share of a core turn: the ingest behind it waits that
 * long (a scan of the DLQ for a window of ids is one step, however long). */
#define ADMIN_STEP apr_time_from_msec(10)
/* Freed blocks the job pools' allocator keeps for reuse, beyond the first
 * block every recycled job pool holds on to. */
#define JOB_MAX_FREE (4 * 1024 * 1024)
/* Entries the due-time heap and a destination's queue keep room for however
 * far they drain. */
#define QUEUE_KEEP 4096

/* A queued record: its store key is derived from (batch, idx). */
typedef struct qent_t {
    apr_time_t due;
    apr_uint64_t batch;
    apr_uint32_t idx;
    apr_uint32_t tgt; /* ad_target_t.gindex, NO_TARGET if unknown */
} qent_t;

#define NO_TARGET 0xffffffffu

typedef struct heap_t {
    qent_t *v;
    apr_size_t n, cap;
} heap_t;

/* One child's STORE message, allocated in the message's pool: it lives until
 * the core has answered it. */
typedef struct commit_t {
    ad_ipc_conn_t *conn;
    apr_array_header_t *blobs; /* ad_blob_t */
    ad_store_item_t *items;    /* their keys, set by the core */
    apr_uint32_t status;
    const char *why; /* static text when status is failed */
    struct commit_t *next;
} commit_t;

/* An admin request waiting for the core (the store's only user). */
typedef struct admin_t {
    ad_ipc_conn_t *conn;
    apr_pool_t *pool; /* the message's; the reply is allocated there */
    const char *req;
    apr_size_t req_len;
    int status;
    char *reply;
    apr_size_t reply_len;
    ad_admin_job_t *job; /* a request that takes more than one turn */
    struct admin_t *next;
} admin_t;

/* A scheduled rule's persisted state ("s/<rule>": anchor last prev batch).
 * last moves only in the same group commit as the fire's records; at start
 * a state whose batch was never committed falls back to prev. */
typedef struct sched_state_t {
    apr_time_t anchor; /* rate(): fires at anchor + k * period */
    apr_time_t last;   /* last fired minute */
    apr_time_t prev;
    apr_uint64_t batch;
} sched_state_t;

typedef struct ad_daemon_t ad_daemon_t;

typedef struct worker_t worker_t;

enum { JOB_DELIVERY, JOB_TOKEN };

typedef struct job_t {
    apr_pool_t *pool; /* the attempt's record, request and answer; cleared
                         when the job ends, kept with it for the next */
    worker_t *worker;
    int kind;               /* JOB_DELIVERY or JOB_TOKEN */
    int conn;               /* JOB_TOKEN: ad_connection_t.index */
    apr_uint64_t token_gen; /* the OAuth token generation it carried */
    const char *resp_body;  /* JOB_TOKEN: the token endpoint's answer */
    apr_size_t resp_len;
    qent_t ent;
    ad_record_t *rec;
    const ad_target_t *target; /* NULL when the config lost it */
    int plain_target;          /* API Gateway semantics, not a destination */
    ad_http_request_t req;
    ad_http_error_t error;
    int status;
    const char *message;
    apr_interval_time_t retry_after;
    int reused;
    apr_time_t started; /* real time the worker started the attempt */
    struct job_t *next;
} job_t;

struct worker_t {
    ad_daemon_t *d;
    apr_thread_t *thread;
    apr_pool_t *pool;
    ad_http_engine_t *engine;
    job_t *inbox, **inbox_tail;     /* under d->mu */
    job_t *handed, **handed_tail;   /* core only: not in the inbox yet */
    job_t *done, **done_tail;       /* worker only: not in d->outcomes yet */
    job_t *waiting, **waiting_tail; /* worker only: handed, not started */
    apr_time_t wake;                /* worker only: a held job's rate slot */
    apr_uint64_t pass;              /* worker only: start_waiting's passes */
    int running;                    /* worker thread only */
    int exited;                     /* under d->mu */
};

/* Entries due for a destination that cannot take them yet (rate, in-flight
 * cap, connection not authorized), in arrival order. */
typedef struct fifo_t {
    qent_t *v;
    apr_size_t head, n, cap;
} fifo_t;

/* Connections an engine keeps per host. The core never hands an engine
 * more transfers for a host than that: a transfer libcurl has to hold back
 * for a connection costs CPU on every pass of its multi loop, and its
 * timeout runs while it waits. */
#define HOST_CONNS 64

/* How long a plain target's record waits in the heap while its host has
 * HOST_CONNS + PREFETCH in flight (plain targets have no ready queue). */
#define PLAIN_HOLD apr_time_from_msec(50)

/* A failed refresh of a token that still serves is tried again after this. */
#define REFRESH_RETRY apr_time_from_sec(5)

/* Jobs the core may hand a worker beyond what a host can have running: the
 * worker starts them as soon as a transfer ends, without a round trip
 * through the core (which meanwhile reads the next records). */
#define PREFETCH (HOST_CONNS / 2)

/* The destinations that share a scheme://host:port share one engine (so
 * they share its connections) and its HOST_CONNS. */
typedef struct host_rt_t {
    int in_flight; /* core: handed to the worker */
    int running;   /* the host's worker: started */
    unsigned int hash;
    const char *origin; /* ad_url_origin() of the endpoints */
    apr_size_t origin_len;
} host_rt_t;

typedef struct dest_rt_t {
    const ad_destination_t *dest;
    host_rt_t *host;
    ad_ratelimit_t rl;
    int in_flight;                 /* core: handed to the worker */
    volatile apr_uint32_t running; /* the host's worker: started (the core reads it) */
    apr_uint64_t held_pass;        /* the host's worker: last pass it held a job */
    ad_ratelimit_t wrl;            /* the host's worker: spaces the starts */
    fifo_t ready;
} dest_rt_t;

typedef struct conn_rt_t {
    const ad_connection_t *conn;
    char *token; /* malloc'd; never logged */
    apr_time_t expiry;
    apr_interval_time_t lifetime;
    apr_uint64_t gen; /* bumped with every new token */
    int fetching;
    apr_time_t refresh_after; /* a refresh ahead of expiry failed: not again before */
} conn_rt_t;

struct ad_daemon_t {
    apr_pool_t *pool;
    const ad_daemon_opts_t *o;
    const ad_conf_t *c;
    ad_store_t *store;
    apr_thread_mutex_t *mu;
    job_t *outcomes, **outcomes_tail; /* from the workers: under mu */
    int stopping;                     /* no new work: under mu */
    int core_idle;                    /* the core waits in the poll: under mu */
    ad_ipc_t *io;                     /* the children's connections, where the core waits */
    /* core thread only */
    commit_t *commits, **commits_tail; /* read since the last turn */
    admin_t *admins, **admins_tail;
    apr_pool_t *roundp, *tickp; /* cleared after each round, each tick */
    heap_t heap;
    apr_uint64_t batch;
    int in_flight;
    apr_time_t next_tick;
    apr_uint64_t pending, delivered, retried, dead_lettered, dropped;
    int dlq_count;
    apr_time_t started;
    apr_uint64_t churn;   /* deletes since the last compaction */
    apr_time_t rate_wake; /* real time a rate-limited destination frees */
    ad_metrics_t *m;
    apr_hash_t *schedules;    /* rule name -> sched_state_t */
    int sched_store_failing;  /* logged once until a schedule state is stored */
    dest_rt_t *dests;         /* by ad_destination_t.index */
    host_rt_t **target_hosts; /* by ad_target_t.gindex: its destination's, or its endpoint's */
    int *draining;            /* drain_ready's list of destinations */
    int drain_first;          /* where drain_ready's next turn starts */
    conn_rt_t *conns;         /* by ad_connection_t.index */
    apr_uint64_t committed;   /* the batch marker found at start */
    apr_time_t next_compact;
    apr_off_t live_density;      /* store bytes per live record after a compaction */
    apr_uint64_t tick_pending;   /* pending at the last maintenance tick */
    apr_time_t compact_due;      /* since when a compaction waits on a drain */
    apr_time_t next_full_log[3]; /* by ROOM_ use */
    worker_t *workers;
    int nworkers;
    int handed;           /* some worker has jobs to hand over */
    apr_pool_t *job_root; /* parent of the job pools (locked allocator) */
    job_t *free_jobs;
};

/* ---- due-time heap ---------------------------------------------------- */

static int heap_push(heap_t *h, const qent_t *e)
{
    apr_size_t i;

    if (h->n == h->cap) {
        apr_size_t ncap = h->cap ? h->cap * 2 : 1024;
        qent_t *nv = realloc(h->v, ncap * sizeof(*nv));
        if (!nv) {
            return 0;
        }
        h->v = nv;
        h->cap = ncap;
    }
    i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2].due > e->due) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = *e;
    return 1;
}

/* A drained backlog gives its memory back: at a quarter full, half the
 * room goes. */
static void heap_shrink(heap_t *h)
{
    if (h->cap > QUEUE_KEEP && h->n < h->cap / 4) {
        qent_t *nv = realloc(h->v, (h->cap / 2) * sizeof(*nv));
        if (nv) {
            h->v = nv;
            h->cap /= 2;
        }
    }
}

static qent_t heap_pop(heap_t *h)
{
    qent_t top = h->v[0], last = h->v[--h->n];
    apr_size_t i = 0;

    for (;;) {
        apr_size_t c = 2 * i + 1;
        if (c >= h->n) {
            break;
        }
        if (c + 1 < h->n && h->v[c + 1].due < h->v[c].due) {
            c++;
        }
        if (last.due <= h->v[c].due) {
            break;
        }
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) {
        h->v[i] = last;
    }
    heap_shrink(h);
    return top;
}

/* ---- keys ------------------------------------------------------------- */

static void key_format(char *buf, apr_uint64_t batch, apr_uint32_t idx)
{
    snprintf(buf, KEY_LEN + 1, KEY_PREFIX_QUEUE "%016" APR_UINT64_T_HEX_FMT "%08x", batch, idx);
}

static int key_parse(const char *key, apr_uint64_t *batch, apr_uint32_t *idx)
{
    char part[17];
    char *end;

    if (strlen(key) != KEY_LEN || key[0] != KEY_PREFIX_QUEUE[0]) {
        return 0;
    }
    memcpy(part, key + 1, 16);
    part[16] = '\0';
    *batch = apr_strtoi64(part, &end, 16);
    if (*end) {
        return 0;
    }
    *idx = (apr_uint32_t)strtoul(key + 17, &end, 16);
    return *end == '\0';
}

/* ---- metrics ---------------------------------------------------------------- */

static const ad_target_t *target_at(const ad_daemon_t *d, apr_uint32_t tgt)
{
    return tgt < (apr_uint32_t)d->c->ntargets ? APR_ARRAY_IDX(d->c->all_targets, tgt, ad_target_t *)
                                              : NULL;
}

static apr_uint32_t target_index(const ad_daemon_t *d, const char *rule, apr_size_t rlen,
                                 const char *target, apr_size_t tlen)
{
    char r[AD_STORE_KEY_MAX * 4], t[AD_STORE_KEY_MAX * 4];
    const ad_target_t *found;

    if (rlen >= sizeof(r) || tlen >= sizeof(t)) {
        return NO_TARGET;
    }
    memcpy(r, rule, rlen);
    r[rlen] = '\0';
    memcpy(t, target, tlen);
    t[tlen] = '\0';
    found = ad_conf_find_target(d->c, r, t, NULL);
    return found ? (apr_uint32_t)found->gindex : NO_TARGET;
}

static ad_target_metrics_t *tmetrics(ad_daemon_t *d, apr_uint32_t tgt)
{
    return tgt < (apr_uint32_t)d->m->ntargets ? &d->m->targets[tgt] : NULL;
}

static ad_dest_metrics_t *dmetrics(ad_daemon_t *d, apr_uint32_t tgt)
{
    const ad_target_t *t = target_at(d, tgt);
    return t && t->destination ? &d->m->dests[t->destination->index] : NULL;
}

/* A record entered (+1) or left (-1) the queue. */
static void queued_add(ad_daemon_t *d, apr_uint32_t tgt, int delta)
{
    ad_target_metrics_t *tm = tmetrics(d, tgt);
    ad_dest_metrics_t *dm = dmetrics(d, tgt);

    d->pending += delta;
    if (tm) {
        ad_metric_add(&tm->queued, delta);
    }
    if (dm) {
        ad_metric_add(&dm->queued, delta);
    }
}

static void publish(ad_daemon_t *d)
{
    ad_daemon_metrics_t *dm = d->m->daemon;

    ad_metric_set(&dm->pending, d->pending);
    ad_metric_set(&dm->dlq, (apr_uint64_t)d->dlq_count);
    ad_metric_set(&dm->in_flight, (apr_uint64_t)d->in_flight);
    ad_metric_set(&dm->delivered, d->delivered);
    ad_metric_set(&dm->retried, d->retried);
    ad_metric_set(&dm->dead_lettered, d->dead_lettered);
    ad_metric_set(&dm->dropped, d->dropped);
}

/* The segment outlives an apidestd of the same generation: the gauges of a
 * daemon that died would add to this one's (its backlog is loaded again),
 * and the totals continue from where it stopped rather than from zero. */
static void adopt_metrics(ad_daemon_t *d)
{
    ad_daemon_metrics_t *dm = d->m->daemon;
    int i;

    for (i = 0; i < d->m->ntargets; i++) {
        ad_metric_set(&d->m->targets[i].queued, 0);
    }
    for (i = 0; i < d->m->ndests; i++) {
        ad_metric_set(&d->m->dests[i].queued, 0);
        ad_metric_set(&d->m->dests[i].in_flight, 0);
    }
    d->delivered = ad_metric_get(&dm->delivered);
    d->retried = ad_metric_get(&dm->retried);
    d->dead_lettered = ad_metric_get(&dm->dead_lettered);
    d->dropped = ad_metric_get(&dm->dropped);
}

/* ---- flow control and connections (core thread) ------------------------- */

static int fifo_push(fifo_t *f, const qent_t *e)
{
    if (f->n == f->cap) {
        apr_size_t ncap = f->cap ? f->cap * 2 : 64, i;
        qent_t *nv = malloc(ncap * sizeof(*nv));
        if (!nv) {
            return 0;
        }
        for (i = 0; i < f->n; i++) {
            nv[i] = f->v[(f->head + i) % f->cap];
        }
        free(f->v);
        f->v = nv;
        f->cap = ncap;
        f->head = 0;
    }
    f->v[(f->head + f->n++) % f->cap] = *e;
    return 1;
}

static qent_t fifo_pop(fifo_t *f)
{
    qent_t e = f->v[f->head];
    f->head = (f->head + 1) % f->cap;
    f->n--;
    if (!f->n && f->cap > QUEUE_KEEP) {
        /* a drained backlog gives its memory back */
        free(f->v);
        f->v = NULL;
        f->cap = 0;
        f->head = 0;
    }
    return e;
}

enum { SEND_OK = 0, BLOCK_AUTH, BLOCK_CONCURRENCY, BLOCK_RATE };

static apr_uint64_t conn_state(const ad_daemon_t *d, const ad_connection_t *cn)
{
    return ad_metric_get(&d->m->conns[cn->index].state);
}

static void set_conn_state(ad_daemon_t *d, const ad_connection_t *cn, apr_uint64_t state,
                           const char *why)
{
    apr_uint64_t old = conn_state(d, cn);

    if (old == state) {
        return;
    }
    ad_metric_set(&d->m->conns[cn->index].state, state);
    if (state == AD_CONN_DEAUTHORIZED) {
        ad_metric_add(&d->m->conns[cn->index].deauthorizations, 1);
    }
    /* One line per state change; the reason never holds a secret. */
    ad_log_perror(AD_LOG_MARK, state == AD_CONN_DEAUTHORIZED ? AD_LOG_WARNING : AD_LOG_NOTICE, 0,
                  ADLOGNO(00140) "connection %s: %s -> %s (%s)%s", cn->name,
                  ad_conn_state_name(old), ad_conn_state_name(state), why,
                  state == AD_CONN_DEAUTHORIZED
                      ? "; its destinations are INACTIVE and their records wait"
                      : "");
}

static void start_token_fetch(ad_daemon_t *d, conn_rt_t *cr);

static int conn_blocks(ad_daemon_t *d, const ad_connection_t *cn, apr_time_t now)
{
    conn_rt_t *cr = &d->conns[cn->index];
    apr_uint64_t st = conn_state(d, cn);

    if (st == AD_CONN_DEAUTHORIZED) {
        return 1;
    }
    if (cn->auth != AD_AUTH_OAUTH) {
        return st != AD_CONN_AUTHORIZED;
    }
    if (!cr->token || apr_time_now() >= cr->expiry) {
        if (!cr->fetching) {
            start_token_fetch(d, cr);
        }
        return 1;
    }
    (void)now;
    return 0;
}

/* The same per destination: at most half its MaxInFlight and half a
 * second of its rate, so that a job waits in the worker for at most about
 * half a response time or half a second (its age and token were checked
 * when the core handed it over). */
static int prefetch(const ad_destination_t *dest)
{
    int n = dest->max_in_flight / 2, by_rate = dest->rate_limit / 2;

    if (n > by_rate) {
        n = by_rate;
    }
    return n < PREFETCH ? n : PREFETCH;
}

/* Jobs handed over and not started yet (or ended and not yet processed):
 * the host's connections may hold a destination's jobs in the worker even
 * below its MaxInFlight. dest_blocked() bounds them for a destination whose
 * prefetch is cut by its rate (under 64/s) or MaxInFlight; for the others
 * a held job waits at most HOST_CONNS + PREFETCH rate spacings, 1.5 s at
 * 64/s. */
static int not_started(dest_rt_t *dr)
{
    return dr->in_flight - (int)apr_atomic_read32(&dr->running);
}

static int dest_blocked(ad_daemon_t *d, dest_rt_t *dr, apr_time_t now)
{
    const ad_destination_t *dest = dr->dest;

    if (dest->connection && conn_blocks(d, dest->connection, now)) {
        return BLOCK_AUTH;
    }
    int ahead = prefetch(dest);

    if (dr->in_flight >= dest->max_in_flight + ahead ||
        dr->host->in_flight >= HOST_CONNS + PREFETCH ||
        (ahead < PREFETCH && not_started(dr) > ahead)) {
        return BLOCK_CONCURRENCY;
    }
    if (!ad_ratelimit_ready(&dr->rl, now)) {
        return BLOCK_RATE;
    }
    return SEND_OK;
}

static unsigned int key_hash(const char *key, apr_size_t n)
{
    unsigned int h = 0;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        h = h * 31 + (unsigned char)key[i];
    }
    return h;
}

static host_rt_t *host_of(ad_daemon_t *d, apr_hash_t *hosts, const char *url)
{
    char key[AD_URL_ORIGIN_MAX];
    apr_size_t n = ad_url_origin(url, key);
    host_rt_t *host = apr_hash_get(hosts, key, (apr_ssize_t)n);

    if (!host) {
        host = apr_pcalloc(d->pool, sizeof(*host));
        host->hash = key_hash(key, n);
        host->origin = apr_pstrmemdup(d->pool, key, n);
        host->origin_len = n;
        apr_hash_set(hosts, host->origin, (apr_ssize_t)n, host);
    }
    return host;
}

static void flow_init(ad_daemon_t *d)
{
    apr_hash_t *hosts = apr_hash_make(d->pool);
    int i;

    d->dests = apr_pcalloc(d->pool, sizeof(dest_rt_t) * (d->c->destinations->nelts + 1));
    d->draining = apr_pcalloc(d->pool, sizeof(int) * (d->c->destinations->nelts + 1));
    for (i = 0; i < d->c->destinations->nelts; i++) {
        d->dests[i].dest = APR_ARRAY_IDX(d->c->destinations, i, ad_destination_t *);
        d->dests[i].host = host_of(d, hosts, d->dests[i].dest->endpoint);
        ad_ratelimit_init(&d->dests[i].rl, d->dests[i].dest->rate_limit);
        ad_ratelimit_init(&d->dests[i].wrl, d->dests[i].dest->rate_limit);
    }
    /* a plain HTTP target's transfers take its host's connections too */
    d->target_hosts = apr_pcalloc(d->pool, sizeof(host_rt_t *) * (d->c->ntargets + 1));
    for (i = 0; i < d->c->ntargets; i++) {
        const ad_target_t *t = APR_ARRAY_IDX(d->c->all_targets, i, const ad_target_t *);
        d->target_hosts[t->gindex] =
            t->destination ? d->dests[t->destination->index].host : host_of(d, hosts, t->endpoint);
    }
    d->conns = apr_pcalloc(d->pool, sizeof(conn_rt_t) * (d->c->connections->nelts + 1));
    for (i = 0; i < d->c->connections->nelts; i++) {
        d->conns[i].conn = APR_ARRAY_IDX(d->c->connections, i, ad_connection_t *);
    }
}

static void flow_cleanup(ad_daemon_t *d)
{
    int i;

    for (i = 0; d->dests && i < d->c->destinations->nelts; i++) {
        free(d->dests[i].ready.v);
    }
    for (i = 0; d->conns && i < d->c->connections->nelts; i++) {
        free(d->conns[i].token);
    }
}

/* ---- commits (core thread) ---------------------------------------------- */

/* gdbm left without space in the middle of an update needs gdbm_recover,
 * which apr_dbm cannot call: so the store is never allowed to fill the
 * disk. New events are refused while less than ApiDestStoreMinFree would
 * stay free. Events already accepted may go further into that reserve, so
 * that RetryAttempts and MaximumEventAge still end them meanwhile: their
 * retry bookkeeping down to 3/4 of it, and their dead-letter moves down to
 * 1/2, a part that growing retry records cannot use up. */
enum { ROOM_DLQ, ROOM_RETRY, ROOM_NEW };

static int store_has_room(ad_daemon_t *d, apr_size_t need, int use)
{
    static const char *const waits[] = {"dead-letter moves", "retries"};
    apr_off_t free_bytes = d->store->disk_free ? d->store->disk_free(d->store) : -1;
    apr_off_t floor = d->c->store_min_free / 4 * (use + 2);

    if (free_bytes < 0 || free_bytes - (apr_off_t)need * 2 >= floor) {
        return 1;
    }
    if (ad_now() >= d->next_full_log[use]) {
        d->next_full_log[use] = ad_now() + apr_time_from_sec(10);
        if (use == ROOM_NEW) {
            ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, 0,
                          ADLOGNO(00111) "the store's disk has %" APR_OFF_T_FMT
                                         " bytes free, under ApiDestStoreMinFree (%" APR_OFF_T_FMT
                                         "): new events are refused",
                          free_bytes, d->c->store_min_free);
        }
        else {
            ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, 0,
                          ADLOGNO(10045) "the store's disk has %" APR_OFF_T_FMT
                                         " bytes free, deep in ApiDestStoreMinFree (%" APR_OFF_T_FMT
                                         "): %s of accepted events wait for space",
                          free_bytes, d->c->store_min_free, waits[use]);
        }
    }
    return 0;
}

static apr_size_t commits_bytes(const commit_t *list)
{
    apr_size_t n = 0;
    int i;

    for (; list; list = list->next) {
        for (i = 0; i < list->blobs->nelts; i++) {
            n += APR_ARRAY_IDX(list->blobs, i, ad_blob_t).len + KEY_LEN;
        }
    }
    return n;
}

static void refuse_all(commit_t *list, const char *why)
{
    for (; list; list = list->next) {
        list->status = AD_ACK_FAILED;
        list->why = why;
        list->items = NULL;
    }
}

static apr_status_t put_commit_marker(ad_daemon_t *d, apr_pool_t *p, apr_uint64_t batch)
{
    ad_store_item_t it;
    it.key = KEY_COMMIT;
    it.val = apr_psprintf(p, "%" APR_UINT64_T_FMT, batch);
    it.len = strlen(it.val);
    return d->store->put(d->store, &it, 1);
}

/* A marker that could not be read is replaced at once by the batch every
 * kept record belongs to (or before), so that the next start reads it. */
static void rewrite_commit_marker(ad_daemon_t *d, apr_pool_t *p, apr_uint64_t batch)
{
    apr_status_t rv = put_commit_marker(d, p, batch);

    if (rv != APR_SUCCESS) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, rv,
                      ADLOGNO(00117) "store %s: the commit marker cannot be rewritten",
                      d->store->path);
    }
}

static void delete_keys(ad_daemon_t *d, const ad_store_item_t *items, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        d->store->del(d->store, items[i].key);
    }
}

static ad_store_item_t *commit_items(ad_daemon_t *d, apr_pool_t *p, const commit_t *c,
                                     apr_uint32_t *idx)
{
    ad_store_item_t *items = apr_palloc(p, sizeof(*items) * (c->blobs->nelts + 1));
    int i;

    for (i = 0; i < c->blobs->nelts; i++) {
        const ad_blob_t *b = &APR_ARRAY_IDX(c->blobs, i, ad_blob_t);
        char *key = apr_palloc(p, KEY_LEN + 1);
        key_format(key, d->batch, (*idx)++);
        items[i].key = key;
        items[i].val = b->data;
        items[i].len = b->len;
    }
    return items;
}

/* Write one child's records; on failure remove what was written so the
 * store never holds part of an unacknowledged message. */
static int commit_one(ad_daemon_t *d, apr_pool_t *p, commit_t *c, apr_uint32_t *idx,
                      ad_store_item_t **written)
{
    ad_store_item_t *items = commit_items(d, p, c, idx);
    apr_status_t rv = d->store->put(d->store, items, c->blobs->nelts);

    *written = items;
    if (rv != APR_SUCCESS) {
        c->why = rv == APR_ENOSPC && d->store->max_item
                     ? "a record exceeds the DBM driver's item limit"
                     : "the store refused the write (disk full or damaged?)";
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, rv, ADLOGNO(00101) "storing %d record(s) failed: %s",
                      c->blobs->nelts, c->why);
        delete_keys(d, items, c->blobs->nelts);
        c->status = AD_ACK_FAILED;
        return 0;
    }
    c->status = AD_ACK_STORED;
    return 1;
}

static void enqueue_committed(ad_daemon_t *d, const commit_t *c, const ad_store_item_t *items,
                              apr_time_t now)
{
    int i;
    for (i = 0; c->status == AD_ACK_STORED && i < c->blobs->nelts; i++) {
        const ad_blob_t *b = &APR_ARRAY_IDX(c->blobs, i, ad_blob_t);
        const char *rule, *target;
        apr_size_t rlen, tlen;
        qent_t e;

        e.due = now;
        e.tgt = ad_record_peek(b->data, b->len, &rule, &rlen, &target, &tlen)
                    ? target_index(d, rule, rlen, target, tlen)
                    : NO_TARGET;
        key_parse(items[i].key, &e.batch, &e.idx);
        heap_push(&d->heap, &e);
        queued_add(d, e.tgt, 1);
    }
}

/* Group commit: every message that arrived since the last round is written,
 * then one marker names the batch committed (records of a batch without a
 * marker are discarded at start: they were never acknowledged), then one
 * optional fsync, then all are acknowledged together. */
static void process_commits(ad_daemon_t *d, apr_pool_t *p, commit_t *list,
                            const ad_store_item_t *extra, int nextra)
{
    commit_t *c;
    apr_uint32_t idx = 0;
    int stored = 0, ok = 1;
    apr_time_t now = ad_now();
    apr_status_t rv = APR_SUCCESS;
    const char *what = "";

    if (!store_has_room(d, commits_bytes(list), ROOM_NEW)) {
        refuse_all(list, "the store's disk is nearly full (see ApiDestStoreMinFree)");
        ad_metric_add(&d->m->daemon->refused_full, 1);
        return;
    }
    for (c = list; c; c = c->next) {
        stored += commit_one(d, p, c, &idx, &c->items);
    }
    if (stored && nextra) {
        what = "writing schedule state";
        ok = (rv = d->store->put(d->store, extra, nextra)) == APR_SUCCESS;
    }
    if (stored && ok) {
        what = "marking the batch committed";
        ok = (rv = put_commit_marker(d, p, d->batch)) == APR_SUCCESS;
        if (ok && d->c->store_sync) {
            what = "syncing the store";
            ok = (rv = d->store->sync(d->store)) == APR_SUCCESS;
        }
    }
    for (c = list; c; c = c->next) {
        if (!ok && c->status == AD_ACK_STORED) {
            delete_keys(d, c->items, c->blobs->nelts);
            c->status = AD_ACK_FAILED;
            c->why = "the store could not commit the batch";
        }
        enqueue_committed(d, c, c->items, now);
    }
    if (!ok) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, rv, ADLOGNO(00102) "%s failed: the batch is refused",
                      what);
    }
    d->batch++;
}

/* ---- jobs (core thread) -------------------------------------------------- */

/* A job's pool is cleared, not destroyed, when the job ends, and the job goes
 * on a free list: an unmanaged pool per job mapped and unmapped fresh memory
 * for every delivery (with TLB shootdowns across the threads). The job pools
 * share one allocator that keeps freed blocks; it is locked because workers
 * allocate from a job's pool while the core clears others. The list never
 * holds more jobs than were alive at once (bounded by ApiDestMaxInFlight
 * plus token fetches). The pools go with the daemon's pool, after the
 * threads are joined. */
static apr_status_t jobs_init(ad_daemon_t *d)
{
    return ad_bounded_pool_create(d->pool, JOB_MAX_FREE, &d->job_root);
}

static job_t *job_get(ad_daemon_t *d)
{
    job_t *j = d->free_jobs;
    apr_pool_t *jp;

    if (j) {
        d->free_jobs = j->next;
        jp = j->pool;
    }
    else {
        apr_pool_create(&jp, d->job_root);
        j = apr_palloc(d->job_root, sizeof(*j));
    }
    memset(j, 0, sizeof(*j));
    j->pool = jp;
    return j;
}

static void job_end(ad_daemon_t *d, job_t *j)
{
    apr_pool_clear(j->pool);
    j->next = d->free_jobs;
    d->free_jobs = j;
}

/* ---- outcomes (core thread) ---------------------------------------------- */

static int is_success(const job_t *j)
{
    return j->error == AD_HTTP_OK && j->status >= 200 && j->status < 300;
}

/* EventBridge's retry rules: API destinations retry 401, 407, 409, 429 and
 * 5xx; plain HTTP targets (API Gateway semantics) only 429 and 5xx; both
 * retry timeouts and connection errors. A refused address or a request that
 * cannot be formed never gets better. */
static int is_retryable(const job_t *j)
{
    int s = j->status;

    switch (j->error) {
    case AD_HTTP_TIMEOUT:
    case AD_HTTP_CONNECT:
    case AD_HTTP_FAILED:
        return 1;
    case AD_HTTP_REFUSED:
    case AD_HTTP_INVALID:
        return 0;
    case AD_HTTP_OK:
        break;
    }
    if (s == 429 || (s >= 500 && s < 600)) {
        return 1;
    }
    return !j->plain_target && (s == 401 || s == 407 || s == 409);
}

/* EventBridge's ERROR_CODE values (eventbridge-semantics.md section 7). */
static const char *error_code_of(const job_t *j)
{
    switch (j->error) {
    case AD_HTTP_OK:
        return j->status == 429 ? "THROTTLING" : "ERROR_FROM_TARGET";
    case AD_HTTP_TIMEOUT:
        return "TIMEOUT";
    case AD_HTTP_CONNECT:
        return "CONNECTION_FAILURE";
    case AD_HTTP_REFUSED:
        return "NO_PERMISSIONS";
    case AD_HTTP_INVALID:
        return "INVALID_PARAMETER";
    default:
        return "SDK_CLIENT_ERROR";
    }
}

static const char *error_message_of(apr_pool_t *p, const job_t *j)
{
    if (j->error == AD_HTTP_OK) {
        return apr_psprintf(p, "The target answered HTTP status %d", j->status);
    }
    if (j->error == AD_HTTP_TIMEOUT) {
        return apr_psprintf(p, "The target did not answer within %d seconds",
                            j->req.timeout_ms / 1000);
    }
    return apr_pstrcat(p, "Unable to invoke the target: ", j->message, NULL);
}

/* A target's RetryBackoff base, else ApiDestRetryBackoff's. */
static int backoff_base(const ad_daemon_t *d, const ad_target_t *t)
{
    return t && t->backoff_base_sec ? t->backoff_base_sec : d->c->backoff_base_sec;
}

static int backoff_cap_sec(const ad_daemon_t *d, const ad_target_t *t)
{
    return t && t->backoff_cap_sec ? t->backoff_cap_sec : d->c->backoff_cap_sec;
}

static apr_interval_time_t backoff_cap(const ad_daemon_t *d, const ad_target_t *t)
{
    return ad_backoff_cap(backoff_base(d, t), backoff_cap_sec(d, t));
}

static apr_interval_time_t backoff(const ad_daemon_t *d, const ad_target_t *t,
                                   apr_uint32_t attempts, apr_interval_time_t retry_after)
{
    unsigned char rnd[4];
    apr_uint32_t r;

    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        memset(rnd, 0x80, sizeof(rnd)); /* the middle, not stack garbage */
    }
    r = ((apr_uint32_t)rnd[0] << 24) | ((apr_uint32_t)rnd[1] << 16) | ((apr_uint32_t)rnd[2] << 8) |
        rnd[3];
    return ad_backoff_delay(backoff_base(d, t), backoff_cap_sec(d, t), attempts, retry_after, r,
                            MIN_RETRY_DELAY);
}

static apr_time_t expiry_of(const ad_record_t *r, const ad_target_t *t)
{
    int age = t ? t->max_event_age_sec : AD_DEFAULT_MAX_EVENT_AGE_SEC;
    return r->first_seen + apr_time_from_sec(age);
}

static const char *target_arn(apr_pool_t *p, const ad_daemon_t *d, const ad_record_t *r)
{
    if (*r->destination) {
        return apr_psprintf(p, "arn:aws:events:%s:%s:api-destination/%s", d->c->region,
                            d->c->account, r->destination);
    }
    return r->url;
}

static const char *rule_arn(apr_pool_t *p, const ad_daemon_t *d, const ad_record_t *r)
{
    const ad_rule_t *rule = apr_hash_get(d->c->rule_by_name, r->rule, APR_HASH_KEY_STRING);
    ad_rule_t gone;

    if (!rule) {
        memset(&gone, 0, sizeof(gone));
        gone.name = r->rule;
        rule = &gone;
    }
    return ad_conf_rule_arn(p, d->c, rule);
}

static int put_record(ad_daemon_t *d, apr_pool_t *p, const char *key, const ad_record_t *r, int use)
{
    ad_store_item_t it;
    char *buf;
    apr_size_t len;

    if (ad_record_encode(p, r, &buf, &len) != APR_SUCCESS || !store_has_room(d, len, use)) {
        return 0;
    }
    it.key = key;
    it.val = buf;
    it.len = len;
    return d->store->put(d->store, &it, 1) == APR_SUCCESS;
}

/* A delivery that failed for good: to the dead-letter queue in the store
 * (the record keeps the body as it would have been sent, plus EventBridge's
 * attributes), or dropped and counted when the target has DeadLetter off. */
static const char *fail_final(ad_daemon_t *d, job_t *j, const char *key, const char *exhausted)
{
    ad_record_t *r = j->rec;
    const char *dkey = apr_pstrcat(j->pool, KEY_PREFIX_DLQ, key + 1, NULL);
    int dead_letter = j->target ? j->target->dead_letter : 1;

    r->exhausted = exhausted ? exhausted : "";
    r->failed_at = ad_now();
    r->rule_arn = rule_arn(j->pool, d, r);
    r->target_arn = target_arn(j->pool, d, r);
    ad_target_metrics_t *tm = tmetrics(d, j->ent.tgt);

    /* With ApiDestStoreSync on, the DLQ record is on disk before the queued
     * one goes: unsynced, a power loss could keep the delete alone. */
    if (dead_letter && (!put_record(d, j->pool, dkey, r, ROOM_DLQ) ||
                        (d->c->store_sync && d->store->sync(d->store) != APR_SUCCESS))) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, 0,
                      ADLOGNO(00109) "rule %s target %s event %s: the DLQ record could not be "
                                     "written; the record stays queued",
                      r->rule, r->target, r->event_id);
        if (tm) {
            ad_metric_add(&tm->failed_to_dlq, 1);
        }
        j->ent.due = ad_now() + backoff_cap(d, j->target);
        heap_push(&d->heap, &j->ent);
        return "kept";
    }
    d->store->del(d->store, key);
    d->churn++;
    queued_add(d, j->ent.tgt, -1);
    if (tm) {
        ad_metric_add(&tm->invocations, 1);
        ad_metric_add(&tm->failed_invocations, 1);
        ad_metric_add(dead_letter ? &tm->sent_to_dlq : &tm->dropped, 1);
    }
    if (dead_letter) {
        d->dead_lettered++;
        d->dlq_count++;
    }
    else {
        d->dropped++;
    }
    ad_log_perror(
        AD_LOG_MARK, AD_LOG_WARNING, 0,
        ADLOGNO(00110) "rule %s target %s event %s failed after %u attempt(s): %s (%s)%s%s; %s",
        r->rule, r->target, r->event_id, r->attempts, r->last_error, r->last_message,
        exhausted ? ", exhausted " : "", exhausted ? exhausted : "",
        dead_letter ? "sent to the dead-letter queue" : "dropped (DeadLetter off)");
    return dead_letter ? "dead-letter" : "dropped";
}

static void reschedule(ad_daemon_t *d, job_t *j, const char *key)
{
    ad_record_t *r = j->rec;
    apr_time_t expiry = expiry_of(r, j->target);

    r->next_due = ad_now() + backoff(d, j->target, r->attempts, j->retry_after);
    if (r->next_due > expiry) {
        r->next_due = expiry; /* dispatch sees it expired and dead-letters it */
    }
    j->ent.due = r->next_due;
    ad_log_perror(AD_LOG_MARK, AD_LOG_DEBUG, 0,
                  ADLOGNO(00105) "rule %s target %s event %s: attempt %u failed (%s: %s), next in "
                                 "%" APR_TIME_T_FMT " ms",
                  r->rule, r->target, r->event_id, r->attempts, r->last_error, j->message,
                  (r->next_due - ad_now()) / 1000);
    if (!put_record(d, j->pool, key, r, ROOM_RETRY)) {
        /* The stored copy keeps its old due time: it stays queued. */
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, 0,
                      ADLOGNO(00106) "could not update record %s after a failed attempt", key);
    }
    d->retried++;
    heap_push(&d->heap, &j->ent);
}

/* Returns what became of the record, for the journal. */
static const ad_connection_t *connection_of(const job_t *j)
{
    return j->target && j->target->destination ? j->target->destination->connection : NULL;
}

/* A 401/407 through a connection: OAuth refreshes its token once and the
 * attempt does not count (a second 401 in a row counts as a failure);
 * BASIC and API_KEY connections are de-authorized, as EventBridge does, and
 * the record waits for POST /apidest/connections/<name>/authorize or its
 * maximum age. NULL: handle it as any other failure. */
static const char *auth_failure(ad_daemon_t *d, job_t *j, const char *key, int prev_status)
{
    const ad_connection_t *cn = connection_of(j);
    conn_rt_t *cr;
    ad_record_t *r = j->rec;

    if (!cn || j->error != AD_HTTP_OK || (j->status != 401 && j->status != 407)) {
        return NULL;
    }
    cr = &d->conns[cn->index];
    if (cn->auth == AD_AUTH_OAUTH) {
        if (prev_status == 401 || prev_status == 407 || j->token_gen != cr->gen) {
            return NULL;
        }
        free(cr->token);
        cr->token = NULL;
        cr->expiry = 0;
        set_conn_state(d, cn, AD_CONN_AUTHORIZING, "the target answered 401/407: refreshing");
        if (!cr->fetching) {
            start_token_fetch(d, cr);
        }
    }
    else {
        set_conn_state(d, cn, AD_CONN_DEAUTHORIZED,
                       apr_psprintf(j->pool, "the target answered HTTP %d", j->status));
    }
    r->attempts--;
    r->last_status = j->status;
    r->last_error = "ERROR_FROM_TARGET";
    r->last_message = error_message_of(j->pool, j);
    put_record(d, j->pool, key, r, ROOM_RETRY);
    j->ent.due = ad_now();
    heap_push(&d->heap, &j->ent);
    return "auth-wait";
}

static const char *process_failure(ad_daemon_t *d, job_t *j, const char *key)
{
    ad_record_t *r = j->rec;
    int max_retries = j->target ? j->target->retry_attempts : AD_DEFAULT_RETRY_ATTEMPTS;
    const char *waiting = auth_failure(d, j, key, r->last_status);

    if (waiting) {
        return waiting;
    }
    r->last_status = j->error == AD_HTTP_OK ? j->status : 0;
    r->last_error = error_code_of(j);
    r->last_message = error_message_of(j->pool, j);
    if (j->retry_after < -1 || !is_retryable(j)) {
        return fail_final(d, j, key, NULL);
    }
    if (r->attempts > (apr_uint32_t)max_retries) {
        return fail_final(d, j, key, "MaximumRetryAttempts");
    }
    reschedule(d, j, key);
    return "retry";
}

/* Per destination: the answer's class, connection reuse, the last error. */
static void count_response(ad_daemon_t *d, job_t *j)
{
    ad_dest_metrics_t *dm = dmetrics(d, j->ent.tgt);
    apr_uint64_t *c;

    if (!dm) {
        return;
    }
    ad_metric_add(j->reused ? &dm->reused : &dm->connections, 1);
    if (j->error == AD_HTTP_TIMEOUT) {
        c = &dm->timeouts;
    }
    else if (j->error != AD_HTTP_OK) {
        c = &dm->connect_errors;
    }
    else if (j->status >= 200 && j->status < 300) {
        c = &dm->responses_2xx;
    }
    else if (j->status >= 400 && j->status < 500) {
        c = &dm->responses_4xx;
    }
    else if (j->status >= 500 && j->status < 600) {
        c = &dm->responses_5xx;
    }
    else {
        c = &dm->responses_other;
    }
    ad_metric_add(c, 1);
    if (!is_success(j)) {
        ad_dest_set_error(
            dm, apr_psprintf(j->pool, "%s: %s", error_code_of(j), error_message_of(j->pool, j)),
            apr_time_now());
    }
}

/* ApiDestJournal: one line per attempt, for operators who want them all. */
static void journal(ad_daemon_t *d, const job_t *j, const char *outcome)
{
    const ad_record_t *r = j->rec;
    char when[32], line[1024];
    apr_size_t n;
    apr_time_t now = apr_time_now();

    if (!d->o->journal) {
        return;
    }
    ad_time_rfc3339(when, now);
    n = (apr_size_t)apr_snprintf(
        line, sizeof(line),
        "%.19s.%03dZ rule=%s target=%s destination=%s event=%s attempt=%u outcome=%s "
        "status=%d error=%s duration_ms=%" APR_TIME_T_FMT " reused=%d\n",
        when, (int)(apr_time_usec(now) / 1000), r->rule, r->target,
        *r->destination ? r->destination : "-", r->event_id, r->attempts, outcome,
        j->error == AD_HTTP_OK ? j->status : 0, is_success(j) ? "-" : error_code_of(j),
        (now - j->started) / 1000, j->reused);
    apr_file_write_full(d->o->journal, line, n < sizeof(line) ? n : sizeof(line) - 1, NULL);
}

/* The token endpoint answered: a new token authorizes the connection; any
 * failure de-authorizes it (its records wait, they are not dropped). */
static void process_token(ad_daemon_t *d, job_t *j)
{
    conn_rt_t *cr = &d->conns[j->conn];
    const ad_connection_t *cn = cr->conn;
    const char *token, *why = NULL;
    apr_interval_time_t lifetime;

    cr->fetching = 0;
    if (j->error == AD_HTTP_OK && j->status >= 200 && j->status < 300 &&
        ad_auth_parse_token(j->pool, j->resp_body, j->resp_len, &token, &lifetime, &why) ==
            APR_SUCCESS) {
        free(cr->token);
        cr->token = strdup(token);
        cr->lifetime = lifetime;
        cr->expiry = apr_time_now() + lifetime;
        cr->gen++;
        d->m->conns[cn->index].token_expiry = apr_time_sec(cr->expiry);
        set_conn_state(d, cn, AD_CONN_AUTHORIZED, "token received");
        return;
    }
    ad_metric_add(&d->m->conns[cn->index].token_failures, 1);
    why = why ? why : apr_psprintf(j->pool, "token endpoint: %s", j->message);
    if (cr->token && apr_time_now() < cr->expiry) {
        /* A refresh ahead of expiry (beyond EB) must not cost more than
         * not refreshing ahead: the token serves until it expires, when a
         * fetch that fails de-authorizes the connection as before. */
        cr->refresh_after = apr_time_now() + REFRESH_RETRY;
        ad_log_perror(AD_LOG_MARK, AD_LOG_WARNING, 0,
                      ADLOGNO(00116) "connection %s: refreshing its token failed (%s); the "
                                     "current token serves until it expires",
                      cn->name, why);
        return;
    }
    free(cr->token);
    cr->token = NULL;
    cr->expiry = 0;
    d->m->conns[cn->index].token_expiry = 0;
    set_conn_state(d, cn, AD_CONN_DEAUTHORIZED, why);
}

static void process_outcome(ad_daemon_t *d, job_t *j)
{
    char key[KEY_LEN + 1];
    const char *outcome = "delivered";

    d->in_flight--;
    if (j->kind == JOB_TOKEN) {
        process_token(d, j);
        job_end(d, j);
        return;
    }
    if (j->target) {
        d->target_hosts[j->target->gindex]->in_flight--;
    }
    if (j->target && j->target->destination) {
        d->dests[j->target->destination->index].in_flight--;
    }
    key_format(key, j->ent.batch, j->ent.idx);
    j->rec->attempts++;
    count_response(d, j);
    if (is_success(j)) {
        ad_target_metrics_t *tm = tmetrics(d, j->ent.tgt);
        if (d->store->del(d->store, key) != APR_SUCCESS) {
            ad_log_perror(
                AD_LOG_MARK, AD_LOG_ERR, 0,
                ADLOGNO(00107) "delivered record %s could not be deleted: it may be sent again",
                key);
        }
        queued_add(d, j->ent.tgt, -1);
        if (tm) {
            ad_metric_add(&tm->successful_attempts, 1);
            ad_metric_add(&tm->invocations, 1);
        }
        ad_hist_observe(&d->m->daemon->to_success, ad_now() - j->rec->first_seen);
        d->delivered++;
        d->churn++;
    }
    else {
        outcome = process_failure(d, j, key);
    }
    journal(d, j, outcome);
    job_end(d, j);
}

/* ---- delivery (core side) ---------------------------------------------- */

static void quarantine(ad_daemon_t *d, apr_pool_t *p, const char *key, const char *val,
                       apr_size_t len)
{
    ad_store_item_t it;
    it.key = apr_pstrcat(p, KEY_PREFIX_BAD, key, NULL);
    it.val = val;
    it.len = len;
    ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, 0,
                  ADLOGNO(00103) "store record %s is damaged (torn write?): kept aside as %s", key,
                  it.key);
    if (d->store->put(d->store, &it, 1) == APR_SUCCESS) {
        d->store->del(d->store, key);
    }
}

/* The record's URL on the scheme, host and port configured now. A record
 * keeps the URL it was accepted with, and pending records outlive a restart
 * that may have moved the endpoint (to https, to another host): the
 * credentials an attempt gets are the configuration's of now, so they go
 * where it says, never to a host it no longer names. Path and query stay. */
static const char *url_on_origin(apr_pool_t *p, const char *url, const char *origin, apr_size_t n)
{
    char key[AD_URL_ORIGIN_MAX];

    if (ad_url_origin(url, key) == n && !memcmp(key, origin, n)) {
        return url;
    }
    return apr_pstrcat(p, apr_pstrmemdup(p, origin, n), ad_url_path(url), NULL);
}

/* An X-Ray trace id ("Root=1-<epoch hex>-<96 bits hex>") from the event's
 * ingest time and id: the same on every attempt, and nothing stored. */
static const char *trace_id(apr_pool_t *p, const ad_record_t *r)
{
    char bits[25];
    const char *c;
    int n = 0;

    for (c = r->event_id; *c && n < 24; c++) {
        if (apr_isxdigit(*c)) {
            bits[n++] = (char)apr_tolower(*c);
        }
    }
    for (; n < 24; n++) {
        bits[n] = '0';
    }
    bits[24] = '\0';
    return apr_psprintf(p, "Root=1-%08" APR_UINT64_T_HEX_FMT "-%s",
                        (apr_uint64_t)apr_time_sec(r->first_seen) & 0xffffffffu, bits);
}

static void add_header(apr_array_header_t *hs, const char *name, const char *value)
{
    ad_header_t *h = apr_array_push(hs);

    h->name = name;
    h->value = value;
}

/* A Content-Type among the target's headers that will be sent (a blank one,
 * from an event's missing field, is not). */
static int has_content_type(const apr_array_header_t *hs)
{
    int i;

    for (i = 0; hs && i < hs->nelts; i++) {
        const ad_header_t *h = &APR_ARRAY_IDX(hs, i, ad_header_t);
        if (!strcasecmp(h->name, "Content-Type") && h->value[strspn(h->value, " \t")]) {
            return 1;
        }
    }
    return 0;
}

/* What EventBridge adds to a request to an API Gateway target (the plain
 * HTTP target's model): its account, the rule's ARN and a trace id. Their
 * names are refused as HeaderParameters at configtest. Its Content-Type is
 * "application/json" (AWS-recorded), without an API destination's charset. */
static apr_array_header_t *source_headers(apr_pool_t *p, const ad_daemon_t *d, const ad_target_t *t,
                                          const ad_record_t *r)
{
    apr_array_header_t *hs =
        r->headers ? apr_array_copy(p, r->headers) : apr_array_make(p, 4, sizeof(ad_header_t));

    if (!has_content_type(hs)) {
        add_header(hs, "Content-Type", "application/json");
    }
    add_header(hs, "X-Amz-Source-Account", d->c->account);
    add_header(hs, "X-Amz-Source-Arn", ad_conf_rule_arn(p, d->c, t->rule));
    add_header(hs, "X-Amzn-Trace-Id", trace_id(p, r));
    return hs;
}

/* ApiDestCAFile, read when the configuration was (as root, as mod_ssl reads
 * its CA files): apidestd may not be able to read the file itself. */
static void set_ca(const ad_daemon_t *d, ad_http_request_t *req)
{
    req->ca_file = d->c->ca_file;
    req->ca_pem = d->c->ca_pem;
    req->ca_pem_len = d->c->ca_pem_len;
}

static void job_request(ad_daemon_t *d, job_t *j, const ad_target_t *t)
{
    const ad_destination_t *dest = t->destination;

    j->plain_target = dest == NULL;
    j->req.method = j->rec->method;
    if (dest) {
        const host_rt_t *h = d->dests[dest->index].host;
        j->req.url = url_on_origin(j->pool, j->rec->url, h->origin, h->origin_len);
    }
    else {
        char origin[AD_URL_ORIGIN_MAX];
        apr_size_t n = ad_url_origin(t->endpoint, origin);
        j->req.url = url_on_origin(j->pool, j->rec->url, origin, n);
    }
    j->req.headers = dest ? j->rec->headers : source_headers(j->pool, d, t, j->rec);
    j->req.body = j->rec->body;
    j->req.body_len = j->rec->body_len;
    j->req.timeout_ms = 1000 * (dest ? dest->timeout_sec : t->timeout_sec);
    j->req.allow_private = dest ? dest->allow_private : t->allow_private;
    set_ca(d, &j->req);
}

/* Credentials are added here, per attempt, in the attempt's pool: they are
 * never part of a stored record. */
static void job_auth(ad_daemon_t *d, job_t *j, const ad_connection_t *cn)
{
    conn_rt_t *cr = &d->conns[cn->index];

    j->token_gen = cr->gen;
    ad_auth_apply(j->pool, cn, cr->token, &j->req);
}

static int worker_for(ad_daemon_t *d, const ad_target_t *t)
{
    /* One host stays on one engine, so its connections are reused. */
    return (int)(d->target_hosts[t->gindex]->hash % (unsigned int)d->nworkers);
}

static void count_attempt(ad_daemon_t *d, const job_t *j)
{
    ad_target_metrics_t *tm = tmetrics(d, j->ent.tgt);

    if (tm) {
        ad_metric_add(&tm->attempts, 1);
        if (j->rec->attempts) {
            ad_metric_add(&tm->retry_attempts, 1);
        }
    }
    if (!j->rec->attempts) {
        ad_hist_observe(&d->m->daemon->to_first_attempt, ad_now() - j->rec->first_seen);
    }
}

/* Jobs are collected per worker and handed over by hand_over_jobs() once
 * the core has dispatched all it can: one lock and one wakeup per worker
 * and round instead of per job. */
static void enqueue_job(ad_daemon_t *d, job_t *j, int w)
{
    worker_t *wk = &d->workers[w];

    j->next = NULL;
    *wk->handed_tail = j;
    wk->handed_tail = &j->next;
    d->handed = 1;
    d->in_flight++;
}

static void hand_over_jobs(ad_daemon_t *d)
{
    int i;

    if (!d->handed) {
        return;
    }
    apr_thread_mutex_lock(d->mu);
    for (i = 0; i < d->nworkers; i++) {
        worker_t *wk = &d->workers[i];
        if (wk->handed) {
            *wk->inbox_tail = wk->handed;
            wk->inbox_tail = wk->handed_tail;
        }
    }
    apr_thread_mutex_unlock(d->mu);
    for (i = 0; i < d->nworkers; i++) {
        worker_t *wk = &d->workers[i];
        if (wk->handed) {
            wk->handed = NULL;
            wk->handed_tail = &wk->handed;
            ad_http_wakeup(wk->engine);
        }
    }
    d->handed = 0;
}

static void hand_to_worker(ad_daemon_t *d, job_t *j, int w)
{
    count_attempt(d, j);
    enqueue_job(d, j, w);
}

static int worker_for_name(ad_daemon_t *d, const char *s)
{
    return (int)(key_hash(s, strlen(s)) % (unsigned int)d->nworkers);
}

static void start_token_fetch(ad_daemon_t *d, conn_rt_t *cr)
{
    job_t *j = job_get(d);
    apr_pool_t *jp = j->pool;

    j->kind = JOB_TOKEN;
    j->conn = cr->conn->index;
    ad_auth_token_request(jp, cr->conn, 1000 * AD_DEFAULT_TIMEOUT_SEC, &j->req);
    set_ca(d, &j->req);
    cr->fetching = 1;
    ad_metric_add(&d->m->conns[cr->conn->index].token_fetches, 1);
    enqueue_job(d, j, worker_for_name(d, cr->conn->name));
}

/* A record whose rule or target left the config is not lost: it goes to the
 * dead-letter queue, where it can be redriven once the target is back. */
static void target_gone(ad_daemon_t *d, job_t *j, const char *key)
{
    ad_record_t *r = j->rec;

    r->last_error = "NO_RESOURCE";
    r->last_message = apr_psprintf(j->pool,
                                   "Rule %s has no target %s in the "
                                   "configuration any more",
                                   r->rule, r->target);
    r->last_status = 0;
    fail_final(d, j, key, NULL);
}

/* Park an entry until its destination can take it; due holds its expiry
 * (0: not known yet) for the tick's scan of waiting records. */
static void park(ad_daemon_t *d, dest_rt_t *dr, const qent_t *e, int why, apr_time_t expiry)
{
    ad_target_metrics_t *tm = tmetrics(d, e->tgt);
    qent_t parked = *e;

    parked.due = expiry;
    fifo_push(&dr->ready, &parked);
    if (tm && why != BLOCK_AUTH) {
        ad_metric_add(&tm->throttled, 1);
    }
}

/* While a destination is saturated (a drain) every due entry used to be read
 * and decoded once to be parked and again when it left the queue; an entry
 * whose target is known is parked unread when its destination is held back
 * by its rate, in-flight cap or queue. Its expiry is then unknown (0), which
 * dispatch learns when it reads the record. Entries held back by their
 * connection's authorization are still read: expire_waiting() needs their
 * expiry. */
static int park_unread(ad_daemon_t *d, const qent_t *e)
{
    const ad_target_t *t = target_at(d, e->tgt);
    dest_rt_t *dr;
    int why;

    if (t && !t->destination && d->target_hosts[t->gindex]->in_flight >= HOST_CONNS + PREFETCH) {
        /* A plain target's host is full: held in the worker, its jobs would
         * keep the total in flight at its cap and stall every other host. */
        qent_t later = *e;
        later.due = ad_now() + PLAIN_HOLD;
        heap_push(&d->heap, &later);
        return 1;
    }
    if (!t || !t->destination) {
        return 0;
    }
    dr = &d->dests[t->destination->index];
    why = dr->ready.n ? BLOCK_RATE : dest_blocked(d, dr, apr_time_now());
    if (why == SEND_OK || why == BLOCK_AUTH) {
        return 0;
    }
    park(d, dr, e, why, 0);
    return 1;
}

/* A record that reaches its maximum age before any attempt has no error
 * of its own: its DLQ record says why it was never sent. */
static void note_never_sent(ad_daemon_t *d, job_t *j)
{
    const ad_connection_t *cn = connection_of(j);
    ad_record_t *r = j->rec;

    if (r->last_error && *r->last_error) {
        return;
    }
    if (cn && conn_state(d, cn) != AD_CONN_AUTHORIZED) {
        r->last_error = "NO_PERMISSIONS";
        r->last_message = apr_psprintf(
            j->pool, "The event reached its maximum age unsent: its connection %s is %s", cn->name,
            ad_conn_state_name(conn_state(d, cn)));
        return;
    }
    r->last_error = "INTERNAL_ERROR";
    r->last_message = "The event reached its maximum age before its first attempt";
}

static void dispatch_one(ad_daemon_t *d, const qent_t *e, int from_ready)
{
    char key[KEY_LEN + 1];
    apr_pool_t *jp;
    job_t *j;
    char *val;
    apr_size_t len;
    const ad_target_t *t;
    apr_status_t rv;

    if (!from_ready && park_unread(d, e)) {
        return;
    }
    key_format(key, e->batch, e->idx);
    j = job_get(d);
    jp = j->pool;
    j->ent = *e;
    if ((rv = d->store->get(d->store, jp, key, &val, &len)) != APR_SUCCESS) {
        if (APR_STATUS_IS_NOTFOUND(rv)) {
            queued_add(d, e->tgt, -1); /* deleted meanwhile */
        }
        else {
            /* The store is unwell: the record is still in it, try later. */
            j->ent.due = ad_now() + apr_time_from_sec(1);
            heap_push(&d->heap, &j->ent);
        }
        job_end(d, j);
        return;
    }
    if (ad_record_decode(jp, val, len, &j->rec) != APR_SUCCESS) {
        quarantine(d, jp, key, val, len);
        queued_add(d, e->tgt, -1);
        job_end(d, j);
        return;
    }
    t = ad_conf_find_target(d->c, j->rec->rule, j->rec->target, NULL);
    j->target = t;
    if (!t) {
        target_gone(d, j, key);
    }
    else if (ad_now() >= expiry_of(j->rec, t)) {
        note_never_sent(d, j);
        fail_final(d, j, key, "MaximumEventAgeInSeconds");
    }
    else if (!t->destination) {
        d->target_hosts[t->gindex]->in_flight++;
        job_request(d, j, t);
        hand_to_worker(d, j, worker_for(d, t));
        return;
    }
    else {
        dest_rt_t *dr = &d->dests[t->destination->index];
        int why = !from_ready && dr->ready.n ? BLOCK_RATE : dest_blocked(d, dr, apr_time_now());
        if (why != SEND_OK) {
            park(d, dr, &j->ent, why, expiry_of(j->rec, t));
        }
        else {
            ad_ratelimit_take(&dr->rl, apr_time_now());
            dr->in_flight++;
            dr->host->in_flight++;
            job_request(d, j, t);
            if (t->destination->connection) {
                job_auth(d, j, t->destination->connection);
            }
            hand_to_worker(d, j, worker_for(d, t));
            return;
        }
    }
    job_end(d, j);
}

/* Destinations that have waiting entries get them sent, in order, as far
 * as their limits allow now: one entry per destination and pass, so that
 * destinations sharing a host share its connections. Returns the earliest
 * time a rate limit frees a slot for one of them (0: none waiting on a
 * rate). */
static apr_time_t drain_ready(ad_daemon_t *d)
{
    apr_time_t wake = 0;
    int i, n = 0, ndest = d->c->destinations->nelts;

    /* Each turn starts after the destination served last: when slots free
     * one at a time, the first in the list would otherwise get them all. */
    for (i = 0; i < ndest; i++) {
        int k = (d->drain_first + i) % ndest;
        if (d->dests[k].ready.n) {
            d->draining[n++] = k;
        }
    }
    while (n && d->in_flight < d->c->max_in_flight) {
        int k, kept = 0;
        for (k = 0; k < n && d->in_flight < d->c->max_in_flight; k++) {
            dest_rt_t *dr = &d->dests[d->draining[k]];
            int why = dest_blocked(d, dr, apr_time_now());
            if (why == SEND_OK) {
                qent_t e = fifo_pop(&dr->ready);
                dispatch_one(d, &e, 1);
                d->drain_first = (d->draining[k] + 1) % ndest;
                if (dr->ready.n) {
                    d->draining[kept++] = d->draining[k];
                }
            }
            else if (why == BLOCK_RATE && (!wake || ad_ratelimit_when(&dr->rl) < wake)) {
                wake = ad_ratelimit_when(&dr->rl);
            }
        }
        n = kept;
    }
    /* Every round dispatches here last (after dispatch_due). */
    hand_over_jobs(d);
    return wake;
}

/* Due entries taken in one turn. A record that fails for good without a
 * send (its target gone, its age past) takes no slot in flight, so nothing
 * else bounded a turn: a backlog of 100,000 such records after a restart
 * was moved to the DLQ in one go (an fsync each with ApiDestStoreSync on)
 * while the children's STORE messages waited, past their 30 s. The turn
 * after comes at once (core_wait: a due entry means no wait). */
#define DISPATCH_MAX 512

static void dispatch_due(ad_daemon_t *d)
{
    apr_time_t now = ad_now();
    int n = 0;

    while (n++ < DISPATCH_MAX && d->heap.n && d->heap.v[0].due <= now &&
           d->in_flight < d->c->max_in_flight) {
        qent_t e = heap_pop(&d->heap);
        dispatch_one(d, &e, 0);
    }
}

/* ---- worker threads ------------------------------------------------------ */

/* The destination a delivery job counts against, NULL for the others. */
static dest_rt_t *job_dest(const job_t *j)
{
    if (j->kind != JOB_DELIVERY || !j->target || !j->target->destination) {
        return NULL;
    }
    return &j->worker->d->dests[j->target->destination->index];
}

/* The host whose connections a delivery job takes, NULL for the others. A
 * plain HTTP target has no destination, but its transfers count against
 * the same connections: beyond them libcurl would hold a transfer back
 * with its timeout already running. */
static host_rt_t *job_host(const job_t *j)
{
    return j->kind == JOB_DELIVERY && j->target ? j->worker->d->target_hosts[j->target->gindex]
                                                : NULL;
}

/* Outcomes wait in the worker's own list; give_back_and_take() passes them
 * to the core in one go. */
static void on_http_done(void *baton, const ad_http_result_t *res)
{
    job_t *j = baton;
    worker_t *wk = j->worker;
    dest_rt_t *dr = job_dest(j);
    host_rt_t *host = job_host(j);

    wk->running--;
    if (host) {
        host->running--;
    }
    if (dr) {
        apr_atomic_dec32(&dr->running);
        ad_metric_add(&wk->d->m->dests[dr->dest->index].in_flight, -1);
    }
    j->error = res->error;
    j->status = res->status;
    j->message = apr_pstrdup(j->pool, res->message ? res->message : "");
    j->retry_after = res->retry_after;
    j->reused = res->reused;
    if (res->body) {
        j->resp_body = apr_pstrmemdup(j->pool, res->body, res->body_len);
        j->resp_len = res->body_len;
    }
    j->next = NULL;
    *wk->done_tail = j;
    wk->done_tail = &j->next;
}

static void start_job(worker_t *wk, job_t *j)
{
    dest_rt_t *dr = job_dest(j);
    host_rt_t *host = job_host(j);

    wk->running++;
    if (host) {
        host->running++;
    }
    if (dr) {
        apr_atomic_inc32(&dr->running);
        ad_metric_add(&wk->d->m->dests[dr->dest->index].in_flight, 1);
    }
    j->started = apr_time_now();
    if (ad_http_submit(wk->engine, &j->req, on_http_done, j) != APR_SUCCESS) {
        ad_http_result_t res;
        memset(&res, 0, sizeof(res));
        res.error = AD_HTTP_FAILED;
        res.message = "could not start the request";
        res.retry_after = -1;
        on_http_done(j, &res);
    }
}

/* Whether a job of dr may start now (and its rate slot is then taken).
 * Once one of a destination's jobs is held in a pass, so are its later
 * ones: they start in the order they came. A job held by a limit of jobs
 * waits for a transfer to end, which wakes the worker; one held by the
 * rate sets the worker's wake-up. */
static int may_start(worker_t *wk, const job_t *j)
{
    dest_rt_t *dr = job_dest(j);
    const host_rt_t *host = job_host(j);
    int limited;

    if (!dr) {
        return !host || host->running < HOST_CONNS;
    }
    limited = dr->held_pass == wk->pass || (int)dr->running >= dr->dest->max_in_flight ||
              dr->host->running >= HOST_CONNS;
    /* the time now, not the pass's start: starting a job takes longer
     * than the spacing of a high rate */
    if (!limited && ad_ratelimit_take(&dr->wrl, apr_time_now())) {
        return 1;
    }
    if (!limited && (!wk->wake || ad_ratelimit_when(&dr->wrl) < wk->wake)) {
        wk->wake = ad_ratelimit_when(&dr->wrl);
    }
    dr->held_pass = wk->pass;
    return 0;
}

/* Start the waiting jobs their destination's MaxInFlight, rate and their
 * host's connections allow, in the order they came. The core spaced the
 * hand-overs already; the worker spaces the starts again because a job it
 * held would otherwise go out right behind the next one. */
static void start_waiting(worker_t *wk)
{
    job_t **pp = &wk->waiting;

    wk->wake = 0;
    wk->pass++;
    while (*pp) {
        job_t *j = *pp;
        if (!may_start(wk, j)) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        j->next = NULL;
        start_job(wk, j);
    }
    wk->waiting_tail = pp;
}

/* Once apidestd stops, nothing new starts: what has not started stays
 * queued in the store for the next apidestd. */
static void worker_submit(worker_t *wk, job_t *list, int stopping)
{
    job_t *j, **tail = wk->waiting_tail;

    for (j = list; j; j = j->next) {
        j->worker = wk;
        tail = &j->next;
    }
    if (list) {
        *wk->waiting_tail = list;
        wk->waiting_tail = tail;
    }
    if (!stopping) {
        start_waiting(wk);
    }
}

/* How long the worker may wait for its transfers: until a held job's rate
 * slot comes, at most 1 s. */
static int worker_wait_ms(const worker_t *wk, int stopping)
{
    apr_interval_time_t left;

    if (stopping) {
        return 50;
    }
    if (!wk->wake) {
        return 1000;
    }
    left = wk->wake - apr_time_now();
    return left <= 0 ? 0 : left >= 1000000 ? 1000 : (int)((left + 999) / 1000);
}

/* Work for the core from another thread: whether its poll must be woken
 * (once per wait: a core that is not waiting sees the work at the end of
 * its turn). Under d->mu. */
static int core_wake_needed(ad_daemon_t *d)
{
    int idle = d->core_idle;

    d->core_idle = 0;
    return idle;
}

/* One lock per round trip of the worker loop: the finished outcomes go to
 * the core (at most one wake-up), the new jobs come back. */
static job_t *give_back_and_take(worker_t *wk, int *stopping)
{
    ad_daemon_t *d = wk->d;
    job_t *jobs;
    int wake = 0;

    apr_thread_mutex_lock(d->mu);
    if (wk->done) {
        *d->outcomes_tail = wk->done;
        d->outcomes_tail = wk->done_tail;
        wake = core_wake_needed(d);
    }
    jobs = wk->inbox;
    wk->inbox = NULL;
    wk->inbox_tail = &wk->inbox;
    *stopping = d->stopping;
    apr_thread_mutex_unlock(d->mu);
    if (wake) {
        ad_ipc_wakeup(d->io);
    }
    wk->done = NULL;
    wk->done_tail = &wk->done;
    return jobs;
}

static void *APR_THREAD_FUNC worker_main(apr_thread_t *thread, void *data)
{
    worker_t *wk = data;
    ad_daemon_t *d = wk->d;
    apr_time_t deadline = 0;
    int stopping;

    for (;;) {
        job_t *jobs = give_back_and_take(wk, &stopping);
        worker_submit(wk, jobs, stopping);
        if (stopping) {
            /* In-flight attempts may finish within the drain bound; any
             * left are abandoned and stay queued in the store. */
            if (!deadline) {
                deadline = ad_now() + d->o->drain;
            }
            if (!wk->running || ad_now() >= deadline) {
                break;
            }
        }
        ad_http_run(wk->engine, worker_wait_ms(wk, stopping));
    }
    give_back_and_take(wk, &stopping); /* requests that could not start */
    apr_thread_mutex_lock(d->mu);
    wk->exited = 1;
    apr_thread_mutex_unlock(d->mu);
    return NULL;
}

/* ---- core thread ---------------------------------------------------------- */

static apr_interval_time_t core_wait(const ad_daemon_t *d)
{
    apr_time_t now = ad_now(), until = d->next_tick, real = apr_time_now();
    apr_interval_time_t w;

    if (d->heap.n && d->in_flight < d->c->max_in_flight && d->heap.v[0].due < until) {
        until = d->heap.v[0].due;
    }
    w = until > now ? ad_real_interval(until - now) : 0;
    if (d->rate_wake && d->rate_wake - real < w) {
        w = d->rate_wake > real ? d->rate_wake - real : 0;
    }
    return w;
}

/* A backlog that is draining makes every later compaction cheaper (only
 * live records are copied), while a compaction now stops deliveries for the
 * time of its copy: a tenth of a 40,000-record drain. So a due compaction
 * waits while the pending count keeps falling from tick to tick, for
 * COMPACT_DEFER_SEC from when it came due (or one tick, if longer), and not
 * at all when the disk is short: then only compaction gives space back,
 * and new events are being refused. */
static int drain_defers_compaction(ad_daemon_t *d, apr_time_t now, int falling)
{
    apr_off_t free_bytes = d->store->disk_free(d->store);

    if (!falling || (free_bytes >= 0 && free_bytes < 2 * d->c->store_min_free)) {
        return 0;
    }
    if (!d->compact_due) {
        d->compact_due = now;
    }
    return now - d->compact_due < apr_time_from_sec(COMPACT_DEFER_SEC);
}

/* Whether the file is at most twice what its live records took in the file
 * the last compaction wrote (with 1 MiB to spare): the DBM reuses deleted
 * records' space, so under steady ingest and delivery with a backlog the
 * churn grows while the file does not, and a compaction copied tens of
 * thousands of live records for nothing, the core busy 40-90 ms (the
 * ingest p99 of bench/ingest's match runs). Known only once a compaction
 * has copied at least 1,000 records. */
static int little_to_gain(const ad_daemon_t *d, apr_off_t size, apr_uint64_t live)
{
    return d->live_density && size < 2 * d->live_density * (apr_off_t)live + 1024 * 1024;
}

static void note_density(ad_daemon_t *d, apr_uint64_t live)
{
    if (live >= 1000) {
        d->live_density = d->store->size(d->store) / (apr_off_t)live;
    }
}

/* Deleted records leave space a DBM file never gives back; rewrite it when
 * most of it is garbage. The core is busy meanwhile, but only for the copy of
 * the live records, which is then small compared with the file. */
static void maybe_compact(ad_daemon_t *d, apr_pool_t *p)
{
    apr_off_t before = d->store->size(d->store);
    apr_uint64_t live = d->pending + (apr_uint64_t)d->dlq_count;
    apr_time_t t0 = apr_time_now();
    int falling = d->pending < d->tick_pending;
    apr_status_t rv;

    d->tick_pending = d->pending;
    if (!d->store->compact || before < 64 * 1024 || d->churn < 2 * live + 64 ||
        t0 < d->next_compact || little_to_gain(d, before, live)) {
        d->compact_due = 0;
        return;
    }
    if (drain_defers_compaction(d, t0, falling)) {
        return;
    }
    d->compact_due = 0;
    rv = d->store->compact(d->store, p);
    if (APR_STATUS_IS_ENOTIMPL(rv)) {
        d->next_compact = t0 + apr_time_from_sec(3600);
        return;
    }
    d->next_compact = t0 + apr_time_from_sec(rv == APR_SUCCESS ? 10 : 60);
    if (rv == APR_SUCCESS) {
        d->churn = 0;
        note_density(d, live);
    }
    ad_log_perror(AD_LOG_MARK, rv == APR_SUCCESS ? AD_LOG_INFO : AD_LOG_ERR, rv,
                  ADLOGNO(00112) "store compaction %s: %" APR_OFF_T_FMT " -> %" APR_OFF_T_FMT
                                 " bytes, %" APR_UINT64_T_FMT " live records, %" APR_TIME_T_FMT
                                 " ms",
                  rv == APR_SUCCESS ? "done" : "failed", before, d->store->size(d->store), live,
                  (apr_time_now() - t0) / 1000);
}

/* The store item of a rule's schedule state ("s/<rule>"). */
static void sched_item(apr_pool_t *p, const char *rule, const sched_state_t *st,
                       ad_store_item_t *it)
{
    it->key = apr_pstrcat(p, KEY_PREFIX_SCHEDULE, rule, NULL);
    it->val = apr_psprintf(
        p, "%" APR_TIME_T_FMT " %" APR_TIME_T_FMT " %" APR_TIME_T_FMT " %" APR_UINT64_T_FMT,
        apr_time_sec(st->anchor), apr_time_sec(st->last), apr_time_sec(st->prev), st->batch);
    it->len = strlen(it->val);
}

/* Logs its failure, once until a state is stored again (it comes back
 * at every tick while the store refuses). */
static apr_status_t sched_save(ad_daemon_t *d, apr_pool_t *p, const char *rule,
                               const sched_state_t *st)
{
    ad_store_item_t it;
    apr_status_t rv;

    sched_item(p, rule, st, &it);
    rv = d->store->put(d->store, &it, 1);
    if (rv != APR_SUCCESS && !d->sched_store_failing) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_WARNING, rv,
                      ADLOGNO(00114) "rule %s: its schedule's state could not be stored; "
                                     "trying again at the next tick",
                      rule);
    }
    d->sched_store_failing = rv != APR_SUCCESS;
    return rv;
}

static sched_state_t *sched_state(ad_daemon_t *d, apr_pool_t *p, const ad_rule_t *r, apr_time_t now)
{
    sched_state_t *st = apr_hash_get(d->schedules, r->name, APR_HASH_KEY_STRING);

    if (!st) {
        /* First sight of the rule: a rate() starts now, as EventBridge's
         * start at rule creation; a cron() fires from the next match on.
         * Stored at once (batch 0 counts as committed): a restart before
         * the first fire must not move the start, or a rate() longer than
         * the time between restarts (a daily logrotate) would never fire.
         * Kept only once stored: a store that refuses writes is asked again
         * every tick, and each try must not cost the daemon's pool. */
        sched_state_t first = {0};
        first.anchor = apr_time_from_sec(apr_time_sec(now) / 60 * 60);
        first.last = ad_schedule_is_rate(r->schedule) ? first.anchor : now;
        first.prev = first.last;
        if (sched_save(d, p, r->name, &first) != APR_SUCCESS) {
            return NULL;
        }
        st = apr_pmemdup(d->pool, &first, sizeof(first));
        apr_hash_set(d->schedules, apr_pstrdup(d->pool, r->name), APR_HASH_KEY_STRING, st);
    }
    return st;
}

/* The latest due minute: after downtime a schedule fires once for what it
 * missed, not once per missed minute (documented in docs/design.md). The
 * walk to it starts in the shortest window back from now that holds a
 * fire: from the last fire, 100 days of a minutely schedule were more steps
 * than the walk's bound, and it fired for a minute months old, then again. */
static apr_time_t latest_due(const ad_rule_t *r, const sched_state_t *st, apr_time_t now)
{
    static const int window_days[] = {1, 8, 32, 367, 3700};
    apr_time_t fire = ad_schedule_next(r->schedule, st->anchor, st->last), n;
    size_t i;
    int guard = 0;

    if (!fire || fire > now) {
        return 0;
    }
    for (i = 0; i < sizeof(window_days) / sizeof(window_days[0]); i++) {
        apr_time_t from = now - apr_time_from_sec((apr_time_t)window_days[i] * 86400);
        if (from <= st->last) {
            break;
        }
        if ((n = ad_schedule_next(r->schedule, st->anchor, from)) && n <= now) {
            fire = n;
            break;
        }
    }
    while ((n = ad_schedule_next(r->schedule, st->anchor, fire)) && n <= now && guard++ < 1000000) {
        fire = n;
    }
    return fire;
}

static void fire_schedule(ad_daemon_t *d, apr_pool_t *p, const ad_rule_t *r, sched_state_t *st,
                          apr_time_t fire, apr_time_t now)
{
    commit_t c;
    ad_store_item_t extra;
    sched_state_t next = *st;
    const char *id, *body;
    apr_size_t len;
    json_t *ev;
    int dropped;

    memset(&c, 0, sizeof(c));
    c.blobs = apr_array_make(p, r->targets->nelts + 1, sizeof(ad_blob_t));
    body = ad_ingest_scheduled_event(p, d->c, r, fire, &id, &len, &ev);
    dropped = ad_ingest_rule_records(p, d->c, r, id, ev, body, len, now, 0, c.blobs);
    next.prev = st->last;
    next.last = fire;
    next.batch = d->batch;
    if (!c.blobs->nelts) {
        if (sched_save(d, p, r->name, &next) == APR_SUCCESS) { /* only the state moves */
            ad_metric_add(&d->m->daemon->inputs_dropped, dropped);
        }
        *st = next;
        return;
    }
    sched_item(p, r->name, &next, &extra);
    process_commits(d, p, &c, &extra, 1);
    if (c.status == AD_ACK_STORED) {
        /* counted once: a firing the store refused comes again */
        ad_metric_add(&d->m->daemon->inputs_dropped, dropped);
        *st = next;
        ad_log_perror(AD_LOG_MARK, AD_LOG_INFO, 0,
                      ADLOGNO(00113) "rule %s fired for %" APR_TIME_T_FMT
                                     " (event %s, %d target(s))",
                      r->name, apr_time_sec(fire), id, c.blobs->nelts);
    }
    else if (c.status == AD_ACK_FAILED) {
        /* The new state may be stored though its batch was refused; a later
         * marker would cover that batch number and make the lost fire look
         * done after a restart. The old state goes back. */
        sched_save(d, p, r->name, st);
    }
}

/* OAuth tokens are refreshed before they expire (beyond EB: in the
 * background, not only on traffic): within a tenth of their lifetime, at
 * least 5 s and at most 60 s before, but not in the first half of it (a
 * token of a few seconds would be fetched again on every tick). */
static void refresh_tokens(ad_daemon_t *d)
{
    apr_time_t now = apr_time_now();
    int i;

    for (i = 0; i < d->c->connections->nelts; i++) {
        conn_rt_t *cr = &d->conns[i];
        apr_interval_time_t ahead = cr->lifetime / 10;

        if (ahead < apr_time_from_sec(5)) {
            ahead = apr_time_from_sec(5);
        }
        if (ahead > apr_time_from_sec(60)) {
            ahead = apr_time_from_sec(60);
        }
        if (ahead > cr->lifetime / 2) {
            ahead = cr->lifetime / 2;
        }
        if (cr->conn->auth == AD_AUTH_OAUTH && cr->token && !cr->fetching &&
            cr->expiry - now <= ahead && now >= cr->refresh_after) {
            start_token_fetch(d, cr);
        }
    }
}

/* Records waiting on a de-authorized connection still age: those past their
 * maximum age go to the DLQ (dispatch_one sees them expired). */
static void expire_waiting(ad_daemon_t *d)
{
    apr_time_t now = ad_now();
    int i;

    for (i = 0; i < d->c->destinations->nelts; i++) {
        dest_rt_t *dr = &d->dests[i];
        apr_size_t n = dr->ready.n, k;
        if (!dr->dest->connection || conn_state(d, dr->dest->connection) != AD_CONN_DEAUTHORIZED) {
            continue;
        }
        for (k = 0; k < n; k++) {
            qent_t e = fifo_pop(&dr->ready);
            if (e.due == 0 || e.due <= now) {
                dispatch_one(d, &e, 1); /* expires it, or parks it again */
            }
            else {
                fifo_push(&dr->ready, &e);
            }
        }
    }
}

/* Scheduled rules, from the maintenance tick (minute granularity). */
static void run_schedules(ad_daemon_t *d, apr_pool_t *p)
{
    apr_time_t now = ad_now();
    int i;

    for (i = 0; i < d->c->rules->nelts; i++) {
        const ad_rule_t *r = APR_ARRAY_IDX(d->c->rules, i, ad_rule_t *);
        sched_state_t *st;
        apr_time_t fire;

        if (!r->schedule || !r->enabled) {
            continue;
        }
        if (!(st = sched_state(d, p, r, now))) {
            continue;
        }
        if (st->last > now + apr_time_from_sec(60)) {
            /* the clock was set back: fire from now on, not once it has
             * caught up with a fire it already made */
            ad_log_perror(AD_LOG_MARK, AD_LOG_WARNING, 0,
                          ADLOGNO(00118) "rule %s: its last fire is %" APR_TIME_T_FMT
                                         " s ahead of the clock (set back?): firing from now",
                          r->name, apr_time_sec(st->last - now));
            st->last = st->prev = now;
        }
        if ((fire = latest_due(r, st, now))) {
            fire_schedule(d, p, r, st, fire, now);
        }
        ad_metric_set(&d->m->rules[r->index].last_fire, (apr_uint64_t)apr_time_sec(st->last));
        ad_metric_set(&d->m->rules[r->index].next_fire, (apr_uint64_t)apr_time_sec(ad_schedule_next(
                                                            r->schedule, st->anchor, st->last)));
    }
}

static void maintenance_tick(ad_daemon_t *d, apr_pool_t *tickp)
{
    apr_time_t now = ad_now();

    run_schedules(d, tickp);
    refresh_tokens(d);
    expire_waiting(d);
    maybe_compact(d, tickp);
    ad_metric_set(&d->m->daemon->store_bytes, (apr_uint64_t)d->store->size(d->store));
    d->m->daemon->heartbeat = apr_time_sec(apr_time_now());
    ad_maint_run_hooks(tickp, now);
    hand_over_jobs(d); /* token refreshes, expired waiting records */
    apr_pool_clear(tickp);
    d->next_tick = now + apr_time_from_sec(d->c->maint_interval_sec);
}

static void reply_status(ad_ipc_conn_t *cn, apr_pool_t *p, apr_uint32_t type, apr_uint32_t status,
                         const char *text)
{
    char *buf;
    apr_size_t len;

    ad_wire_pack_reply(p, status, text, strlen(text), &buf, &len);
    ad_ipc_reply(cn, type, buf, len);
}

static void core_apply(ad_daemon_t *d, apr_pool_t *roundp, commit_t *commits, job_t *outcomes)
{
    if (commits) {
        process_commits(d, roundp, commits, NULL, 0);
        while (commits) {
            commit_t *next = commits->next; /* the reply frees commits */
            reply_status(commits->conn, roundp, AD_MSG_STORE_ACK, commits->status,
                         commits->status == AD_ACK_STORED ? "stored" : commits->why);
            commits = next;
        }
    }
    while (outcomes) {
        job_t *next = outcomes->next;
        process_outcome(d, outcomes);
        outcomes = next;
    }
    apr_pool_clear(roundp);
}

static void admin_requeue(void *baton, const char *qkey, apr_time_t due, const ad_record_t *r)
{
    ad_daemon_t *d = baton;
    qent_t e;

    if (key_parse(qkey, &e.batch, &e.idx)) {
        e.due = due;
        e.tgt = target_index(d, r->rule, strlen(r->rule), r->target, strlen(r->target));
        heap_push(&d->heap, &e);
        queued_add(d, e.tgt, 1);
    }
}

static int admin_authorize(void *baton, const char *name, const char **state)
{
    ad_daemon_t *d = baton;
    const ad_connection_t *cn = apr_hash_get(d->c->connection_by_name, name, APR_HASH_KEY_STRING);
    conn_rt_t *cr;

    if (!cn) {
        return 0;
    }
    cr = &d->conns[cn->index];
    if (cn->auth == AD_AUTH_OAUTH) {
        free(cr->token);
        cr->token = NULL;
        cr->expiry = 0;
        set_conn_state(d, cn, AD_CONN_AUTHORIZING, "authorized by the operator");
        if (!cr->fetching) {
            start_token_fetch(d, cr);
        }
    }
    else {
        set_conn_state(d, cn, AD_CONN_AUTHORIZED, "authorized by the operator");
    }
    *state = ad_conn_state_name(conn_state(d, cn));
    return 1;
}

static json_t *admin_counters(void *baton)
{
    ad_daemon_t *d = baton;

    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:s,s:I,s:I}", "State", "up", "Pid",
                     (json_int_t)getpid(), "Pending", (json_int_t)d->pending, "InFlight",
                     (json_int_t)d->in_flight, "Delivered", (json_int_t)d->delivered, "Retried",
                     (json_int_t)d->retried, "DeadLettered", (json_int_t)d->dead_lettered,
                     "Dropped", (json_int_t)d->dropped, "DlqCount", d->dlq_count, "Store",
                     d->store->kind, "StoreBytes", (json_int_t)d->store->size(d->store),
                     "UptimeSeconds", (json_int_t)apr_time_sec(apr_time_now() - d->started));
}

/* One step of a request, or all of a short one: AD_ADMIN_PENDING when it
 * goes on at the next turn. */
static int admin_step(ad_admin_ctx_t *ctx, admin_t *a, int stopping)
{
    int status = AD_ADMIN_PENDING;

    if (!a->job) {
        status =
            ad_admin_start(a->pool, ctx, a->req, a->req_len, &a->reply, &a->reply_len, &a->job);
    }
    else if (!stopping) {
        /* not one step more at a stop: a step can be a scan of the whole
         * DLQ, and the master kills apidestd soon after asking it to stop */
        status = ad_admin_resume(a->job, ctx, ADMIN_STEP, &a->reply, &a->reply_len);
    }
    if (status == AD_ADMIN_PENDING && stopping) {
        status = ad_admin_abort(a->job, &a->reply, &a->reply_len);
    }
    return status;
}

static void run_admins(ad_daemon_t *d, admin_t *list, int stopping)
{
    ad_admin_ctx_t ctx;
    admin_t *a, *next;

    if (!list) {
        return;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.store = d->store;
    ctx.conf = d->c;
    ctx.requeue = admin_requeue;
    ctx.counters = admin_counters;
    ctx.authorize = admin_authorize;
    ctx.baton = d;
    ctx.dlq_count = &d->dlq_count;
    for (a = list; a; a = next) {
        char *buf;
        apr_size_t blen;

        next = a->next; /* the reply frees a */
        if ((a->status = admin_step(&ctx, a, stopping)) == AD_ADMIN_PENDING) {
            a->next = NULL;
            *d->admins_tail = a;
            d->admins_tail = &a->next;
            continue;
        }
        ad_wire_pack_reply(a->pool, (apr_uint32_t)a->status, a->reply, a->reply_len, &buf, &blen);
        ad_ipc_reply(a->conn, AD_MSG_ADMIN_REPLY, buf, blen);
    }
    hand_over_jobs(d); /* token fetches of authorized connections */
}

/* One turn of the core: what the children, the workers and the admin
 * endpoint queued, then due attempts and upkeep. It runs on the thread
 * that polls the children's connections, right after their messages are
 * read (a separate core thread cost each stored request a hand-over and a
 * wake-up). Returns how long the poll may wait for more. */
static apr_interval_time_t core_turn(void *baton)
{
    ad_daemon_t *d = baton;
    commit_t *commits;
    job_t *outcomes;
    admin_t *admins;
    int stopping;
    apr_interval_time_t w = 0;

    commits = d->commits;
    admins = d->admins;
    d->commits = NULL;
    d->commits_tail = &d->commits;
    d->admins = NULL;
    d->admins_tail = &d->admins;
    apr_thread_mutex_lock(d->mu);
    outcomes = d->outcomes;
    d->outcomes = NULL;
    d->outcomes_tail = &d->outcomes;
    stopping = d->stopping;
    d->core_idle = 0;
    apr_thread_mutex_unlock(d->mu);

    core_apply(d, d->roundp, commits, outcomes);
    run_admins(d, admins, stopping);
    if (!stopping) {
        dispatch_due(d);
        d->rate_wake = drain_ready(d);
    }
    publish(d);
    if (ad_now() >= d->next_tick) {
        maintenance_tick(d, d->tickp);
    }
    apr_thread_mutex_lock(d->mu);
    if (!d->outcomes && !d->admins) {
        w = core_wait(d);
        d->core_idle = w > 0;
    }
    apr_thread_mutex_unlock(d->mu);
    return w;
}

/* ---- messages from children ---------------------------------------------- */

/* Queued for the core, which answers after the group commit. */
static void queue_store(ad_daemon_t *d, ad_ipc_conn_t *cn, apr_pool_t *mp, const char *payload,
                        apr_size_t len)
{
    commit_t *c = apr_pcalloc(mp, sizeof(*c));

    if (ad_wire_unpack_blobs(mp, payload, len, &c->blobs) != APR_SUCCESS) {
        reply_status(cn, mp, AD_MSG_STORE_ACK, AD_ACK_FAILED, "malformed STORE message");
        return;
    }
    if (!c->blobs->nelts) {
        reply_status(cn, mp, AD_MSG_STORE_ACK, AD_ACK_STORED, "stored");
        return;
    }
    c->conn = cn;
    *d->commits_tail = c;
    d->commits_tail = &c->next;
}

static void queue_admin(ad_daemon_t *d, ad_ipc_conn_t *cn, apr_pool_t *mp, const char *payload,
                        apr_size_t len)
{
    admin_t *a = apr_pcalloc(mp, sizeof(*a));

    a->pool = mp;
    a->req = payload;
    a->req_len = len;
    a->conn = cn;
    *d->admins_tail = a;
    d->admins_tail = &a->next;
}

static void on_message(void *baton, ad_ipc_conn_t *cn, apr_pool_t *mp, apr_uint32_t type,
                       char *payload, apr_size_t len)
{
    ad_daemon_t *d = baton;

    if (type == AD_MSG_STORE) {
        queue_store(d, cn, mp, payload, len);
    }
    else if (type == AD_MSG_ADMIN) {
        queue_admin(d, cn, mp, payload, len);
    }
    else {
        reply_status(cn, mp, AD_MSG_ADMIN_REPLY, 400, "{\"error\":\"BadMessage\"}");
    }
}

/* ---- start: load the queue from the store ------------------------------- */

typedef struct load_t {
    ad_daemon_t *d;
    apr_pool_t *p;
    apr_uint64_t committed, max_batch;
    apr_uint64_t used_batch;         /* the highest of any key's id: q, d and x */
    apr_array_header_t *uncommitted; /* const char * keys */
    apr_array_header_t *damaged;     /* ad_store_item_t */
    apr_array_header_t *orphans;     /* const char * keys: states of rules gone */
} load_t;

/* The record decoded in rp, or NULL: one that does not decode is noted to
 * be set aside once the scan is over (a DBM's iteration must not see its
 * store change under it). */
static ad_record_t *decode_or_set_aside(load_t *l, apr_pool_t *rp, const char *key, const char *val,
                                        apr_size_t len)
{
    ad_store_item_t *it;
    ad_record_t *r;

    if (ad_record_decode(rp, val, len, &r) == APR_SUCCESS) {
        return r;
    }
    it = apr_array_push(l->damaged);
    it->key = apr_pstrdup(l->p, key);
    it->val = apr_pmemdup(l->p, val, len);
    it->len = len;
    return NULL;
}

static int load_one(void *baton, const char *key, const char *val, apr_size_t len)
{
    load_t *l = baton;
    ad_record_t *r;
    qent_t e;
    apr_pool_t *rp;

    if (!key_parse(key, &e.batch, &e.idx)) {
        return 0;
    }
    if (e.batch > l->used_batch) {
        l->used_batch = e.batch;
    }
    if (e.batch > l->committed) {
        APR_ARRAY_PUSH(l->uncommitted, const char *) = apr_pstrdup(l->p, key);
        return 0;
    }
    apr_pool_create(&rp, l->p);
    if ((r = decode_or_set_aside(l, rp, key, val, len))) {
        e.due = r->next_due;
        e.tgt = target_index(l->d, r->rule, strlen(r->rule), r->target, strlen(r->target));
        heap_push(&l->d->heap, &e);
        queued_add(l->d, e.tgt, 1);
        if (e.batch > l->max_batch) {
            l->max_batch = e.batch;
        }
    }
    apr_pool_destroy(rp);
    return 0;
}

/* Whether the config still has a scheduled rule of this name. A disabled
 * one keeps its state, as a rule that is turned off and on again keeps its
 * schedule at EventBridge; a deleted and re-created one starts afresh. */
static int schedule_configured(const ad_daemon_t *d, const char *rule)
{
    const ad_rule_t *r = apr_hash_get(d->c->rule_by_name, rule, APR_HASH_KEY_STRING);

    return r && r->schedule;
}

static int load_schedule(load_t *l, const char *key, const char *val, apr_size_t len)
{
    ad_daemon_t *d = l->d;
    sched_state_t *st;
    char text[96];
    apr_int64_t anchor, last, prev;
    apr_uint64_t batch;

    if (!schedule_configured(d, key + strlen(KEY_PREFIX_SCHEDULE))) {
        /* Deleted once the scan is over: a store outlives many configs,
         * and each rule removed would leave its state behind for good. */
        APR_ARRAY_PUSH(l->orphans, const char *) = apr_pstrdup(l->p, key);
        return 0;
    }
    if (len >= sizeof(text)) {
        return 0;
    }
    memcpy(text, val, len);
    text[len] = '\0';
    if (sscanf(text,
               "%" APR_INT64_T_FMT " %" APR_INT64_T_FMT " %" APR_INT64_T_FMT " %" APR_UINT64_T_FMT,
               &anchor, &last, &prev, &batch) != 4) {
        return 0;
    }
    st = apr_pcalloc(d->pool, sizeof(*st));
    st->anchor = apr_time_from_sec(anchor);
    /* A fire whose batch never got its marker did not happen. */
    st->last = apr_time_from_sec(batch > d->committed ? prev : last);
    st->prev = apr_time_from_sec(prev);
    st->batch = batch;
    if (batch > l->max_batch && batch <= l->committed) {
        l->max_batch = batch; /* with the marker unknown, the next batch comes after it */
    }
    apr_hash_set(d->schedules, apr_pstrdup(d->pool, key + strlen(KEY_PREFIX_SCHEDULE)),
                 APR_HASH_KEY_STRING, st);
    return 0;
}

/* A record's id (a queue key without its "q") names its batch. Dead
 * letters and records set aside keep the id they were stored with, so a
 * batch number they hold is never given out again: with the commit marker
 * unreadable, or lost, new records would take their ids, and a redrive
 * would overwrite a pending record, a failure a dead letter. */
static void note_batch(load_t *l, const char *id)
{
    char key[KEY_LEN + 1];
    apr_uint64_t batch;
    apr_uint32_t idx;

    if (strlen(id) != KEY_LEN - 1) {
        return;
    }
    key[0] = KEY_PREFIX_QUEUE[0];
    memcpy(key + 1, id, KEY_LEN);
    if (key_parse(key, &batch, &idx) && batch > l->used_batch) {
        l->used_batch = batch;
    }
}

/* A dead letter that does not decode could be neither listed, read,
 * deleted nor redriven, yet was counted: it is set aside as a damaged
 * queue record is. */
static int load_dead_letter(load_t *l, const char *key, const char *val, apr_size_t len)
{
    apr_pool_t *rp;

    apr_pool_create(&rp, l->p);
    if (decode_or_set_aside(l, rp, key, val, len)) {
        l->d->dlq_count++;
    }
    apr_pool_destroy(rp);
    return 0;
}

/* The whole store in one scan: a DBM visits every key to find those of a
 * prefix, and reads each key's entry from disk to do so, so a scan per kind
 * of record read a 1M-record store three times over. */
static int load_any(void *baton, const char *key, const char *val, apr_size_t len)
{
    load_t *l = baton;

    if (!strncmp(key, KEY_PREFIX_QUEUE, strlen(KEY_PREFIX_QUEUE))) {
        return load_one(l, key, val, len); /* notes its batch as it parses the key */
    }
    if (!strncmp(key, KEY_PREFIX_SCHEDULE, strlen(KEY_PREFIX_SCHEDULE))) {
        return load_schedule(l, key, val, len);
    }
    if (!strncmp(key, KEY_PREFIX_DLQ, strlen(KEY_PREFIX_DLQ))) {
        note_batch(l, key + 1);
        return load_dead_letter(l, key, val, len);
    }
    if (!strncmp(key, KEY_PREFIX_BAD, strlen(KEY_PREFIX_BAD)) && key[1]) {
        note_batch(l, key + 2); /* "x" and the key it had */
    }
    return 0;
}

/* The last committed batch; 0 when none was ever committed. A marker that
 * cannot be read or parsed is not "none": that would discard every record
 * as unacknowledged. *known is then 0, and every record counts as committed
 * (at-least-once: a never-acknowledged record may be delivered). */
static apr_uint64_t read_commit_marker(ad_daemon_t *d, apr_pool_t *p, int *known)
{
    char *val, *end;
    apr_size_t len;
    apr_int64_t n;
    apr_status_t rv;

    *known = 1;
    if ((rv = d->store->get(d->store, p, KEY_COMMIT, &val, &len)) == APR_NOTFOUND) {
        return 0;
    }
    if (rv == APR_SUCCESS) {
        val = apr_pstrmemdup(p, val, len);
        n = apr_strtoi64(val, &end, 10);
        if (end != val && !*end && n >= 0) {
            return (apr_uint64_t)n;
        }
    }
    *known = 0;
    ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, rv,
                  ADLOGNO(00115) "store %s: the commit marker cannot be read; keeping every "
                                 "record, acknowledged or not",
                  d->store->path);
    return APR_UINT64_MAX;
}

/* Keys the scan noted (const char *), deleted once it is over. */
static void delete_noted_keys(ad_daemon_t *d, const apr_array_header_t *keys)
{
    int i;

    for (i = 0; i < keys->nelts; i++) {
        d->store->del(d->store, APR_ARRAY_IDX(keys, i, const char *));
    }
}

static apr_status_t load_queue(ad_daemon_t *d)
{
    load_t l;
    apr_pool_t *p;
    apr_status_t rv;
    int i, known;

    apr_pool_create(&p, d->pool);
    memset(&l, 0, sizeof(l));
    l.d = d;
    l.p = p;
    l.committed = read_commit_marker(d, p, &known);
    l.uncommitted = apr_array_make(p, 16, sizeof(const char *));
    l.damaged = apr_array_make(p, 16, sizeof(ad_store_item_t));
    l.orphans = apr_array_make(p, 4, sizeof(const char *));
    d->committed = l.committed;
    d->schedules = apr_hash_make(d->pool);
    rv = d->store->iterate(d->store, p, "", load_any, &l);
    delete_noted_keys(d, l.uncommitted);
    delete_noted_keys(d, l.orphans);
    for (i = 0; i < l.damaged->nelts; i++) {
        const ad_store_item_t *it = &APR_ARRAY_IDX(l.damaged, i, ad_store_item_t);
        quarantine(d, p, it->key, it->val, it->len);
    }
    if (!known) {
        d->committed = l.committed = l.max_batch;
        rewrite_commit_marker(d, p, l.committed);
    }
    d->batch = (l.committed > l.max_batch ? l.committed : l.max_batch);
    d->batch = (d->batch > l.used_batch ? d->batch : l.used_batch) + 1;
    ad_log_perror(AD_LOG_MARK, AD_LOG_NOTICE, 0,
                  ADLOGNO(00108) "store %s:%s loaded: %" APR_UINT64_T_FMT " pending record(s), "
                                 "%d in the DLQ, %d unacknowledged discarded, %d damaged set aside",
                  d->store->kind, d->store->path, d->pending, d->dlq_count, l.uncommitted->nelts,
                  l.damaged->nelts);
    apr_pool_destroy(p);
    return rv;
}

/* ---- lifecycle ------------------------------------------------------------ */

/* wk->thread is set only for a thread that runs: APR fills in its handle
 * before it knows whether the thread could be created. */
static apr_status_t start_worker(ad_daemon_t *d, worker_t *wk)
{
    apr_thread_t *t = NULL;
    apr_status_t rv = apr_thread_create(&t, NULL, worker_main, wk, d->pool);

    if (rv == APR_SUCCESS) {
        apr_thread_mutex_lock(d->mu);
        wk->thread = t;
        apr_thread_mutex_unlock(d->mu);
    }
    return rv;
}

static apr_status_t start_workers(ad_daemon_t *d)
{
    int i;
    apr_status_t rv;

    d->nworkers = d->c->workers > 0 ? d->c->workers : 1;
    d->workers = apr_pcalloc(d->pool, sizeof(worker_t) * d->nworkers);
    if ((rv = jobs_init(d)) != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < d->nworkers; i++) {
        worker_t *wk = &d->workers[i];
        wk->d = d;
        wk->inbox_tail = &wk->inbox;
        wk->handed_tail = &wk->handed;
        wk->done_tail = &wk->done;
        wk->waiting_tail = &wk->waiting;
        apr_pool_create_unmanaged_ex(&wk->pool, NULL, NULL);
        rv = ad_http_engine_create(wk->pool, HOST_CONNS, &wk->engine);
        if (rv == APR_SUCCESS) {
            rv = start_worker(d, wk);
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

static int workers_running(ad_daemon_t *d)
{
    int i, n = 0;

    apr_thread_mutex_lock(d->mu);
    for (i = 0; i < d->nworkers; i++) {
        n += d->workers[i].thread && !d->workers[i].exited;
    }
    apr_thread_mutex_unlock(d->mu);
    return n;
}

static void stop_all(ad_daemon_t *d)
{
    apr_status_t trv;
    apr_time_t until;
    int i;

    apr_thread_mutex_lock(d->mu);
    d->stopping = 1;
    apr_thread_mutex_unlock(d->mu);
    for (i = 0; i < d->nworkers; i++) {
        if (d->workers[i].thread) {
            ad_http_wakeup(d->workers[i].engine);
        }
    }
    /* Outcomes are applied as the last transfers end, not after all of
     * them: the master kills apidestd soon after the drain. */
    until = apr_time_now() + d->o->drain + apr_time_from_sec(1);
    while (workers_running(d) && apr_time_now() < until) {
        core_turn(d);
        apr_sleep(STOP_TURN);
    }
    for (i = 0; i < d->nworkers; i++) {
        if (d->workers[i].thread) {
            apr_thread_join(&trv, d->workers[i].thread);
        }
    }
    core_turn(d);
}

/* The workers' pools are unmanaged: destroyed here, once every worker is
 * joined, so that their engines' cleanup closes libcurl's connections
 * (a TLS close_notify each) and frees its handles before the exit. */
static void close_engines(ad_daemon_t *d)
{
    int i;

    for (i = 0; d->workers && i < d->nworkers; i++) {
        if (d->workers[i].pool) {
            apr_pool_destroy(d->workers[i].pool);
            d->workers[i].pool = NULL;
        }
    }
}

static void block_stop_signals(int block)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGINT);
    pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static apr_status_t daemon_init(ad_daemon_t *d, apr_pool_t *p, const ad_daemon_opts_t *o,
                                const char **err)
{
    apr_status_t rv;

    d->pool = p;
    d->o = o;
    d->c = o->conf;
    d->commits_tail = &d->commits;
    d->outcomes_tail = &d->outcomes;
    d->admins_tail = &d->admins;
    d->started = apr_time_now();
    d->m = o->metrics;
    /* Counted before the pid is published: status calls the daemon up as
     * soon as that pid is alive, and must not show it with the old count. */
    ad_metric_add(&d->m->daemon->restarts, 1);
    d->m->daemon->started = apr_time_sec(d->started);
    d->m->daemon->pid = getpid();
    if ((rv = apr_thread_mutex_create(&d->mu, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS) {
        *err = "cannot create thread primitives";
        return rv;
    }
    if ((rv = ad_store_open(p, d->c->store_driver, d->c->store_path, o->store_wait, &d->store,
                            err)) != APR_SUCCESS) {
        return rv;
    }
    flow_init(d);
    adopt_metrics(d);
    if ((rv = load_queue(d)) != APR_SUCCESS) {
        *err = "cannot read the store";
    }
    return rv;
}

apr_status_t ad_daemon_run(apr_pool_t *p, const ad_daemon_opts_t *o, const char **err)
{
    ad_daemon_t *d = apr_pcalloc(p, sizeof(*d));
    apr_status_t rv;

    *err = NULL;
    if ((rv = daemon_init(d, p, o, err)) != APR_SUCCESS) {
        return rv;
    }
    apr_pool_create(&d->roundp, p);
    apr_pool_create(&d->tickp, p);
    d->next_tick = ad_now() + apr_time_from_sec(d->c->maint_interval_sec);
    rv = ad_ipc_create(p, o->listener, CONNS_MAX, on_message, core_turn, d, &d->io);
    /* Only this thread (children's messages and the core) sees stop
     * signals; the workers inherit the blocked mask. */
    block_stop_signals(1);
    if (rv == APR_SUCCESS) {
        rv = ad_http_global_init();
    }
    if (rv == APR_SUCCESS) {
        rv = start_workers(d);
    }
    block_stop_signals(0);
    if (rv == APR_SUCCESS) {
        ad_ipc_run(d->io, d->o->stop); /* its last turn answered what it read */
    }
    else {
        *err = "cannot start threads";
    }
    stop_all(d);
    close_engines(d);
    if (d->io) {
        ad_ipc_destroy(d->io);
    }
    ad_store_close(d->store);
    free(d->heap.v);
    flow_cleanup(d);
    return rv;
}
