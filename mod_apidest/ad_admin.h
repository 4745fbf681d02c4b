/* Admin operations on the store (DLQ list/get/redrive/delete, status),
 * executed by apidestd's core thread, the store's only user. Requests and
 * replies are JSON; the HTTP side lives in mod_apidest_status.c. */
#ifndef AD_ADMIN_H
#define AD_ADMIN_H

#include <apr_pools.h>
#include <jansson.h>

#include "ad_conf.h"
#include "ad_store.h"
#include "ad_record.h"

#define AD_ADMIN_DLQ_PREFIX    "d"
#define AD_ADMIN_QUEUE_PREFIX  "q"
#define AD_ADMIN_MAX_LIMIT     1000
#define AD_ADMIN_DEFAULT_LIMIT 100
#define AD_ADMIN_MAX_SINCE     253402300799       /* 9999-12-31T23:59:59Z */
#define AD_ADMIN_PAGE_BYTES    (16 * 1024 * 1024) /* of JSON per DLQ page */

typedef struct ad_admin_ctx_t {
    ad_store_t *store;
    const ad_conf_t *conf;
    /* Put a record (already written under queue key qkey) on the queue. */
    void (*requeue)(void *baton, const char *qkey, apr_time_t due, const ad_record_t *r);
    /* Counters for "status" (the daemon's, as a JSON object it owns). */
    json_t *(*counters)(void *baton);
    /* Re-authorize a connection: 0 when there is no such connection. */
    int (*authorize)(void *baton, const char *name, const char **state);
    void *baton;
    int *dlq_count; /* kept up to date by the operations */
} ad_admin_ctx_t;

/* Run one request {"op": ..., ...} to its end; returns the HTTP status and
 * sets *reply to the JSON text (allocated in p). */
int ad_admin_execute(apr_pool_t *p, ad_admin_ctx_t *ctx, const char *text, apr_size_t text_len,
                     char **reply, apr_size_t *len);

/* A request that takes more than one step (a bulk redrive). */
typedef struct ad_admin_job_t ad_admin_job_t;
#define AD_ADMIN_PENDING 0

/* As ad_admin_execute, but a long request only starts: AD_ADMIN_PENDING,
 * with *job to resume. The job lives in p. */
int ad_admin_start(apr_pool_t *p, ad_admin_ctx_t *ctx, const char *text, apr_size_t text_len,
                   char **reply, apr_size_t *len, ad_admin_job_t **job);

/* Work on the job for about budget (at least one step; <= 0: to its end).
 * Returns AD_ADMIN_PENDING, or the HTTP status with *reply set. */
int ad_admin_resume(ad_admin_job_t *job, ad_admin_ctx_t *ctx, apr_interval_time_t budget,
                    char **reply, apr_size_t *len);

/* End the job where it is (apidestd stops): a 503 naming what was done. */
int ad_admin_abort(ad_admin_job_t *job, char **reply, apr_size_t *len);

#endif
