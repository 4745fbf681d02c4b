#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_dbm.h>
#include <apr_file_io.h>

#include "ad_store.h"
#include "ad_log.h"

/* sdbm's PAIRMAX: key and value together must fit one 1024-byte page. */
#define SDBM_MAX_ITEM 1008

typedef struct {
    apr_pool_t *p;
    apr_dbm_t *db;
    const char *driver;
    const char *path;
    const char *file1;   /* the DBM's files, for fsync and size */
    const char *file2;
    apr_file_t *lock;
} dbm_store_t;

apr_status_t ad_store_parse_spec(apr_pool_t *p, const char *spec,
                                 const char **driver, const char **path,
                                 const char **err)
{
    const char *rest, *colon, *used1, *used2;

    if (strncmp(spec, "dbm:", 4) != 0) {
        *err = apr_psprintf(p, "store '%s' not understood: expected dbm:<driver>:<path>", spec);
        return APR_EINVAL;
    }
    rest = spec + 4;
    colon = strchr(rest, ':');
    if (colon && rest[0] != '/') {
        *driver = apr_pstrmemdup(p, rest, colon - rest);
        *path = colon + 1;
    }
    else {
        *driver = "gdbm";
        *path = rest;
    }
    if (!**path) {
        *err = apr_psprintf(p, "store '%s' has no path", spec);
        return APR_EINVAL;
    }
    /* APR-util 1.6 has no apr_dbm_get_driver; asking for the file names
     * loads the driver and fails the same way when it is missing. */
    if (apr_dbm_get_usednames_ex(p, *driver, *path, &used1, &used2) != APR_SUCCESS) {
        *err = apr_psprintf(p, "DBM driver '%s' is not available in this APR-util "
                            "(install its apr_dbm_%s module, or use gdbm or sdbm)",
                            *driver, *driver);
        return APR_ENOTIMPL;
    }
    return APR_SUCCESS;
}

apr_size_t ad_store_driver_max_item(const char *driver)
{
    return !strcmp(driver, "sdbm") ? SDBM_MAX_ITEM : 0;
}

apr_size_t ad_store_driver_max_record(const char *driver)
{
    apr_size_t max = ad_store_driver_max_item(driver);
    return max ? max - AD_STORE_KEY_MAX : 0;
}

static apr_status_t dbm_put(ad_store_t *s, const ad_store_item_t *items, int n)
{
    dbm_store_t *d = s->impl;
    int i;

    for (i = 0; i < n; i++) {
        apr_datum_t k, v;
        apr_status_t rv;
        k.dptr = (char *)items[i].key;
        k.dsize = strlen(items[i].key);
        v.dptr = (char *)items[i].val;
        v.dsize = items[i].len;
        if (s->max_item && k.dsize + v.dsize > s->max_item) {
            return APR_ENOSPC;
        }
        if ((rv = apr_dbm_store(d->db, k, v)) != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

static apr_status_t dbm_get(ad_store_t *s, apr_pool_t *p, const char *key,
                            char **val, apr_size_t *len)
{
    dbm_store_t *d = s->impl;
    apr_datum_t k, v;
    apr_status_t rv;

    k.dptr = (char *)key;
    k.dsize = strlen(key);
    if ((rv = apr_dbm_fetch(d->db, k, &v)) != APR_SUCCESS) {
        return rv;
    }
    if (!v.dptr) {
        return APR_NOTFOUND;
    }
    *val = apr_pmemdup(p, v.dptr, v.dsize);
    *len = v.dsize;
    apr_dbm_freedatum(d->db, v);
    return APR_SUCCESS;
}

static apr_status_t dbm_del(ad_store_t *s, const char *key)
{
    dbm_store_t *d = s->impl;
    apr_datum_t k;

    k.dptr = (char *)key;
    k.dsize = strlen(key);
    return apr_dbm_delete(d->db, k);
}

static apr_status_t dbm_iterate(ad_store_t *s, apr_pool_t *p, const char *prefix,
                                ad_store_iter_cb *cb, void *baton)
{
    dbm_store_t *d = s->impl;
    apr_size_t plen = strlen(prefix);
    apr_datum_t k, v;
    apr_status_t rv;
    apr_pool_t *iterp;

    apr_pool_create(&iterp, p);
    rv = apr_dbm_firstkey(d->db, &k);
    while (rv == APR_SUCCESS && k.dptr) {
        if (k.dsize >= plen && !memcmp(k.dptr, prefix, plen)) {
            char *key = apr_pstrmemdup(iterp, k.dptr, k.dsize);
            int stop;
            if (apr_dbm_fetch(d->db, k, &v) == APR_SUCCESS && v.dptr) {
                stop = cb(baton, key, v.dptr, v.dsize);
                apr_dbm_freedatum(d->db, v);
                if (stop) {
                    break;
                }
            }
        }
        rv = apr_dbm_nextkey(d->db, &k);
        apr_pool_clear(iterp);
    }
    apr_pool_destroy(iterp);
    return rv;
}

static apr_status_t fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0) {
        return errno == ENOENT ? APR_SUCCESS : APR_FROM_OS_ERROR(errno);
    }
    rc = fsync(fd);
    close(fd);
    return rc == 0 ? APR_SUCCESS : APR_FROM_OS_ERROR(errno);
}

/* apr_dbm has no sync call; the DBM library has written everything to the
 * kernel (write() or a shared mapping), so fsync on another descriptor of
 * the same file makes it durable. */
static apr_status_t dbm_sync(ad_store_t *s)
{
    dbm_store_t *d = s->impl;
    apr_status_t rv = fsync_path(d->file1);

    if (rv == APR_SUCCESS && d->file2) {
        rv = fsync_path(d->file2);
    }
    return rv;
}

static apr_off_t file_size(apr_pool_t *p, const char *path)
{
    apr_finfo_t fi;
    if (!path || apr_stat(&fi, path, APR_FINFO_SIZE, p) != APR_SUCCESS) {
        return 0;
    }
    return fi.size;
}

static apr_off_t dbm_size(ad_store_t *s)
{
    dbm_store_t *d = s->impl;
    return file_size(d->p, d->file1) + file_size(d->p, d->file2);
}

static apr_status_t take_lock(apr_pool_t *p, const char *path,
                              apr_interval_time_t wait, apr_file_t **lock)
{
    apr_time_t until = apr_time_now() + wait;
    apr_status_t rv;

    rv = apr_file_open(lock, apr_pstrcat(p, path, ".lock", NULL),
                       APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    for (;;) {
        rv = apr_file_lock(*lock, APR_FLOCK_EXCLUSIVE | APR_FLOCK_NONBLOCK);
        if (rv == APR_SUCCESS || apr_time_now() >= until) {
            return rv;
        }
        apr_sleep(apr_time_from_msec(50));
    }
}

static apr_status_t open_dbm(dbm_store_t *d, apr_time_t until)
{
    apr_status_t rv;
    /* A DBM that another process still holds answers "busy" at once;
     * wait for the previous daemon generation to let go. */
    for (;;) {
        rv = apr_dbm_open_ex(&d->db, d->driver, d->path, APR_DBM_RWCREATE,
                             APR_FPROT_UREAD | APR_FPROT_UWRITE, d->p);
        if (rv == APR_SUCCESS || apr_time_now() >= until) {
            return rv;
        }
        apr_sleep(apr_time_from_msec(50));
    }
}

apr_status_t ad_store_open(apr_pool_t *p, const char *driver, const char *path,
                           apr_interval_time_t wait, ad_store_t **out,
                           const char **err)
{
    dbm_store_t *d = apr_pcalloc(p, sizeof(*d));
    ad_store_t *s = apr_pcalloc(p, sizeof(*s));
    apr_status_t rv;
    char ebuf[256];

    d->p = p;
    d->driver = driver;
    d->path = path;
    if ((rv = take_lock(p, path, wait, &d->lock)) != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot lock %s.lock: %s", path,
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
        return rv;
    }
    if ((rv = open_dbm(d, apr_time_now() + wait)) != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot open DBM (%s) %s: %s", driver, path,
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
        apr_file_close(d->lock);
        return rv;
    }
    apr_dbm_get_usednames_ex(p, driver, path, &d->file1, &d->file2);
    s->kind = apr_pstrcat(p, "dbm:", driver, NULL);
    s->path = path;
    s->put = dbm_put;
    s->get = dbm_get;
    s->del = dbm_del;
    s->iterate = dbm_iterate;
    s->sync = dbm_sync;
    s->size = dbm_size;
    s->max_item = ad_store_driver_max_item(driver);
    s->impl = d;
    *out = s;
    return APR_SUCCESS;
}

void ad_store_close(ad_store_t *s)
{
    dbm_store_t *d = s->impl;
    if (d->db) {
        apr_dbm_close(d->db);
        d->db = NULL;
    }
    if (d->lock) {
        apr_file_unlock(d->lock);
        apr_file_close(d->lock);
        d->lock = NULL;
    }
}
