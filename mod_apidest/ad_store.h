/* The durable queue behind one small vtable: DBM now (ad_store_dbm.c),
 * PostgreSQL later. Only apidestd opens a store, and only one thread uses a
 * store handle at a time. Keys are short ASCII strings; values are bytes. */
#ifndef AD_STORE_H
#define AD_STORE_H

#include <apr_pools.h>
#include <apr_file_info.h>

typedef struct ad_store_t ad_store_t;

typedef struct ad_store_item_t {
    const char *key;
    const char *val;
    apr_size_t len;
} ad_store_item_t;

/* Return non-zero to stop the iteration. */
typedef int ad_store_iter_cb(void *baton, const char *key, const char *val, apr_size_t len);

struct ad_store_t {
    const char *kind; /* "dbm:gdbm" ... for status and logs */
    const char *path;
    /* Write every item, or fail having written a prefix of them. */
    apr_status_t (*put)(ad_store_t *s, const ad_store_item_t *items, int n);
    apr_status_t (*get)(ad_store_t *s, apr_pool_t *p, const char *key, char **val, apr_size_t *len);
    apr_status_t (*del)(ad_store_t *s, const char *key);
    /* Visit every key starting with prefix (order unspecified). The store
     * must not be changed from inside cb. */
    apr_status_t (*iterate)(ad_store_t *s, apr_pool_t *p, const char *prefix, ad_store_iter_cb *cb,
                            void *baton);
    /* Make everything written so far durable against power loss. */
    apr_status_t (*sync)(ad_store_t *s);
    apr_off_t (*size)(ad_store_t *s);
    /* Bytes free on the store's file system (-1 when unknown). */
    apr_off_t (*disk_free)(ad_store_t *s);
    /* Rewrite the store without the space deleted records left behind;
     * APR_ENOTIMPL for backends that cannot. The store stays usable (and
     * unchanged) when it fails. */
    apr_status_t (*compact)(ad_store_t *s, apr_pool_t *p);
    /* Largest key+value the backend can hold, 0 = no limit below
     * AD_RECORD_MAX_SIZE. */
    apr_size_t max_item;
    void *impl;
};

/* Parse "dbm:<driver>:<path>" (or "dbm:<path>", gdbm). At config time: the
 * error names what is wrong, e.g. a DBM driver this APR lacks. */
apr_status_t ad_store_parse_spec(apr_pool_t *p, const char *spec, const char **driver,
                                 const char **path, const char **err);

/* Longest key the daemon uses for a queued record. */
#define AD_STORE_KEY_MAX 32

/* Largest key+value a driver takes (sdbm: 1008 bytes), 0 = no small limit. */
apr_size_t ad_store_driver_max_item(const char *driver);

/* Largest record value a driver takes, keys accounted for; 0 = no limit. */
apr_size_t ad_store_driver_max_record(const char *driver);

/* Whether rv is the DBM library's own code, which apr_dbm passes past
 * APR_OS_START_USERERR and apr_strerror does not know (the store's error
 * text names it instead). */
int ad_store_is_library_status(apr_status_t rv);

/* The lock file of the store at path, which its daemon holds while open. */
const char *ad_store_lock_path(apr_pool_t *p, const char *path);

/* Open (creating) the store; the lock file <path>.lock keeps two daemon
 * generations from opening it together: waits up to wait for it. */
apr_status_t ad_store_open(apr_pool_t *p, const char *driver, const char *path,
                           apr_interval_time_t wait, ad_store_t **s, const char **err);
void ad_store_close(ad_store_t *s);

#endif
