#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#ifdef AD_HAVE_GDBM
#include <gdbm.h>
#endif

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_dbm.h>
#include <apr_file_io.h>

#include "ad_store.h"
#include "ad_log.h"

/* apr_dbm's gdbm driver reports gdbm_errno GDBM_ITEM_NOT_FOUND (15) this way
 * when a deleted key is absent. */
#define GDBM_ITEM_NOT_FOUND_RV (APR_OS_START_USERERR + 15)

/* sdbm's PAIRMAX: key and value together must fit one 1024-byte page. */
#define SDBM_MAX_ITEM 1008

typedef struct {
    apr_pool_t *p;
    apr_pool_t *dbp; /* the open DBM's pool, replaced on reopen */
    apr_dbm_t *db;   /* NULL while a reopen is pending */
    apr_time_t next_reopen;
    const char *driver;
    const char *path;
    const char *dir;   /* for statvfs, worked out once: it runs on every write */
    const char *file1; /* the DBM's files, for fsync and size */
    const char *file2;
    apr_file_t *lock;
} dbm_store_t;

apr_status_t ad_store_parse_spec(apr_pool_t *p, const char *spec, const char **driver,
                                 const char **path, const char **err)
{
    const char *rest, *colon, *used1, *used2;

    if (strncmp(spec, "dbm:", 4) != 0) {
        *err = apr_psprintf(p, "store '%s' not understood: expected dbm:<driver>:<path>", spec);
        return APR_EINVAL;
    }
    rest = spec + 4;
    colon = strchr(rest, ':');
    if (colon && rest[0] != '/') {
        char *d = apr_pstrmemdup(p, rest, colon - rest), *c;
        /* APR takes "GDBM" as "gdbm"; the limits and options for a driver
         * here are looked up by its name in lower case */
        for (c = d; *c; c++) {
            *c = (char)apr_tolower(*c);
        }
        *driver = d;
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
        *err = apr_psprintf(p,
                            "DBM driver '%s' is not available in this APR-util "
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

int ad_store_is_library_status(apr_status_t rv)
{
    return rv >= APR_OS_START_USERERR && rv < APR_OS_START_USERERR + 1000;
}

apr_size_t ad_store_driver_max_record(const char *driver)
{
    apr_size_t max = ad_store_driver_max_item(driver);
    return max ? max - AD_STORE_KEY_MAX : 0;
}

#ifdef AD_HAVE_GDBM
#define GDBM_CACHE_BUCKETS 256 /* 1 MiB of 4 KiB buckets */

/* apr_dbm_t as apr-util has laid it out since 2000 (apr_dbm_private.h);
 * read only after checking that its pool and driver name are the ones this
 * handle must have. */
typedef struct {
    apr_pool_t *pool;
    void *file;
    int errcode;
    const char *errmsg;
    const struct {
        const char *name;
    } * type;
} apr_dbm_layout_t;

/* gdbm maps the whole store file and remaps it as the file grows: most of
 * a big record's store cost, and the file's size in apidestd's RSS; and its
 * bucket cache grows without bound (~55 bytes per stored record). apr_dbm
 * has no option for either, so take its gdbm handle, once it is proven to
 * be one (same file on disk), turn the map off and bound the cache (its size
 * hardly changes the cost of a store: bench/gdbm_put.c). */
static void gdbm_tune(apr_dbm_t *db, apr_pool_t *pool, const char *path)
{
    const apr_dbm_layout_t *l = (const apr_dbm_layout_t *)db;
    struct stat a, b;
    int off = 0, buckets = GDBM_CACHE_BUCKETS, fd;

    if (l->pool != pool || !l->type || !l->type->name || strcmp(l->type->name, "gdbm") ||
        !l->file) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_NOTICE, 0,
                      ADLOGNO(00160) "apr_dbm's gdbm handle is not where it was: gdbm keeps "
                                     "its memory map of %s",
                      path);
        return;
    }
    fd = gdbm_fdesc((GDBM_FILE)l->file);
    if (fd < 0 || fstat(fd, &a) != 0 || stat(path, &b) != 0 || a.st_ino != b.st_ino ||
        a.st_dev != b.st_dev ||
        gdbm_setopt((GDBM_FILE)l->file, GDBM_SETMMAP, &off, sizeof(off)) != 0 ||
        gdbm_setopt((GDBM_FILE)l->file, GDBM_SETCACHESIZE, &buckets, sizeof(buckets)) != 0) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_NOTICE, 0,
                      ADLOGNO(00161) "gdbm keeps its memory map and its growing bucket cache "
                                     "for %s",
                      path);
    }
}
#endif

/* The DBM at path, opened the way the store wants it. */
static apr_status_t dbm_open_tuned(apr_dbm_t **db, const char *driver, const char *path,
                                   apr_pool_t *pool)
{
    apr_status_t rv = apr_dbm_open_ex(db, driver, path, APR_DBM_RWCREATE,
                                      APR_FPROT_UREAD | APR_FPROT_UWRITE, pool);
#ifdef AD_HAVE_GDBM
    if (rv == APR_SUCCESS && !strcmp(driver, "gdbm")) {
        gdbm_tune(*db, pool, path);
    }
#endif
    return rv;
}

static apr_status_t open_db(dbm_store_t *d)
{
    apr_status_t rv;

    apr_pool_create(&d->dbp, d->p);
    rv = dbm_open_tuned(&d->db, d->driver, d->path, d->dbp);
    if (rv != APR_SUCCESS) {
        d->db = NULL;
        apr_pool_destroy(d->dbp);
        d->dbp = NULL;
    }
    return rv;
}

/* After a failed write (a full disk, say) gdbm refuses everything until it
 * is opened again; what it wrote before is intact. Reopen, at most once a
 * second, so the store works again once space is back. */
static void note_failure(dbm_store_t *d, apr_status_t rv, const char *op)
{
    char ebuf[200];
    int err = 0;

    if (d->db) {
        apr_dbm_geterror(d->db, &err, ebuf, sizeof(ebuf));
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, 0,
                      ADLOGNO(00120) "DBM %s of %s failed: %s; reopening the store", op, d->path,
                      ebuf);
        apr_dbm_close(d->db);
        d->db = NULL;
        apr_pool_destroy(d->dbp);
        d->dbp = NULL;
    }
}

static int ensure_open(dbm_store_t *d)
{
    apr_status_t rv;

    if (d->db) {
        return 1;
    }
    if (apr_time_now() < d->next_reopen) {
        return 0;
    }
    d->next_reopen = apr_time_now() + apr_time_from_sec(1);
    if ((rv = open_db(d)) != APR_SUCCESS) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, rv,
                      ADLOGNO(00121) "cannot reopen the store %s; will retry", d->path);
        return 0;
    }
    ad_log_perror(AD_LOG_MARK, AD_LOG_NOTICE, 0, ADLOGNO(00122) "store %s reopened", d->path);
    return 1;
}

static apr_status_t dbm_put(ad_store_t *s, const ad_store_item_t *items, int n)
{
    dbm_store_t *d = s->impl;
    int i;

    if (!ensure_open(d)) {
        return APR_EGENERAL;
    }
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
            note_failure(d, rv, "write");
            return rv;
        }
    }
    return APR_SUCCESS;
}

static apr_status_t dbm_get(ad_store_t *s, apr_pool_t *p, const char *key, char **val,
                            apr_size_t *len)
{
    dbm_store_t *d = s->impl;
    apr_datum_t k, v;
    apr_status_t rv;

    if (!ensure_open(d)) {
        return APR_EGENERAL;
    }
    k.dptr = (char *)key;
    k.dsize = strlen(key);
    if ((rv = apr_dbm_fetch(d->db, k, &v)) != APR_SUCCESS) {
        note_failure(d, rv, "read");
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
    apr_status_t rv;

    if (!ensure_open(d)) {
        return APR_EGENERAL;
    }
    k.dptr = (char *)key;
    k.dsize = strlen(key);
    /* A key that is not there is not an error: the goal is its absence. */
    rv = apr_dbm_delete(d->db, k);
    if (rv == APR_SUCCESS || rv == GDBM_ITEM_NOT_FOUND_RV ||
        (strcmp(d->driver, "gdbm") && !apr_dbm_exists(d->db, k))) {
        return APR_SUCCESS;
    }
    note_failure(d, rv, "delete");
    return rv;
}

static apr_status_t dbm_iterate(ad_store_t *s, apr_pool_t *p, const char *prefix,
                                ad_store_iter_cb *cb, void *baton)
{
    dbm_store_t *d = s->impl;
    apr_size_t plen = strlen(prefix);
    apr_datum_t k, v;
    apr_status_t rv;
    apr_pool_t *iterp;

    if (!ensure_open(d)) {
        return APR_EGENERAL;
    }
    apr_pool_create(&iterp, p);
    rv = apr_dbm_firstkey(d->db, &k);
    while (rv == APR_SUCCESS && k.dptr) {
        apr_datum_t prev;
        int stop = 0;

        if (k.dsize >= plen && !memcmp(k.dptr, prefix, plen)) {
            char *key = apr_pstrmemdup(iterp, k.dptr, k.dsize);
            if (apr_dbm_fetch(d->db, k, &v) == APR_SUCCESS && v.dptr) {
                stop = cb(baton, key, v.dptr, v.dsize);
                apr_dbm_freedatum(d->db, v);
            }
        }
        /* The driver keeps every key it hands out until the handle closes
         * unless it is freed: a full scan of 1M records grew by ~290 MB. */
        prev = k;
        if (stop) {
            apr_dbm_freedatum(d->db, prev);
            break;
        }
        rv = apr_dbm_nextkey(d->db, &k);
        apr_dbm_freedatum(d->db, prev);
        apr_pool_clear(iterp);
    }
    apr_pool_destroy(iterp);
    /* sdbm says APR_EOF where gdbm returns a NULL key: both mean "done". */
    return APR_STATUS_IS_EOF(rv) ? APR_SUCCESS : rv;
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

/* The directory holding path; "." for a bare name, as statvfs wants it. */
static const char *dir_of(apr_pool_t *p, const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        return ".";
    }
    return slash == path ? "/" : apr_pstrmemdup(p, path, (apr_size_t)(slash - path));
}

static apr_off_t dbm_disk_free(ad_store_t *s)
{
    dbm_store_t *d = s->impl;
    struct statvfs sv;

    if (statvfs(d->dir, &sv) != 0) {
        return -1;
    }
    return (apr_off_t)sv.f_bavail * (apr_off_t)sv.f_frsize;
}

typedef struct copy_t {
    apr_dbm_t *to;
    apr_status_t rv;
    apr_size_t n;
} copy_t;

static int copy_one(void *baton, const char *key, const char *val, apr_size_t len)
{
    copy_t *c = baton;
    apr_datum_t k, v;

    k.dptr = (char *)key;
    k.dsize = strlen(key);
    v.dptr = (char *)val;
    v.dsize = len;
    c->rv = apr_dbm_store(c->to, k, v);
    c->n++;
    return c->rv != APR_SUCCESS;
}

/* Copy every live key into a fresh file, make it durable, and rename it over
 * the old one: a crash leaves either the old file or the complete new one.
 * Single-file drivers only (gdbm); sdbm's two files cannot be swapped at
 * once. */
static apr_status_t dbm_compact(ad_store_t *s, apr_pool_t *p)
{
    dbm_store_t *d = s->impl;
    const char *tmp = apr_pstrcat(p, d->path, ".compact", NULL);
    apr_pool_t *cp;
    copy_t c;
    apr_status_t rv;

    if (d->file2 || !ensure_open(d)) {
        return d->file2 ? APR_ENOTIMPL : APR_EGENERAL;
    }
    apr_pool_create(&cp, p);
    unlink(tmp);
    memset(&c, 0, sizeof(c));
    rv = dbm_open_tuned(&c.to, d->driver, tmp, cp);
    if (rv == APR_SUCCESS) {
        rv = dbm_iterate(s, cp, "", copy_one, &c);
        if (rv == APR_SUCCESS) {
            rv = c.rv;
        }
        apr_dbm_close(c.to);
    }
    if (rv == APR_SUCCESS) {
        rv = fsync_path(tmp);
    }
    if (rv != APR_SUCCESS) {
        unlink(tmp);
        apr_pool_destroy(cp);
        return rv;
    }
    apr_dbm_close(d->db);
    d->db = NULL;
    apr_pool_destroy(d->dbp);
    d->dbp = NULL;
    if (rename(tmp, d->path) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        unlink(tmp);
    }
    else {
        /* The rename is durable only once the directory is: records
         * acknowledged (and synced) into the new file must not come back
         * as the old file's after a power loss. */
        rv = fsync_path(d->dir);
    }
    d->next_reopen = 0;
    ensure_open(d);
    apr_pool_destroy(cp);
    return rv;
}

const char *ad_store_lock_path(apr_pool_t *p, const char *path)
{
    return apr_pstrcat(p, path, ".lock", NULL);
}

static apr_status_t take_lock(apr_pool_t *p, const char *path, apr_interval_time_t wait,
                              apr_file_t **lock)
{
    apr_time_t until = apr_time_now() + wait;
    apr_status_t rv;

    rv = apr_file_open(lock, ad_store_lock_path(p, path), APR_FOPEN_WRITE | APR_FOPEN_CREATE,
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

/* gdbm's own error code in rv, or 0. */
static int gdbm_code(const dbm_store_t *d, apr_status_t rv)
{
#ifdef AD_HAVE_GDBM
    if (!strcmp(d->driver, "gdbm") && ad_store_is_library_status(rv)) {
        return (int)(rv - APR_OS_START_USERERR);
    }
#endif
    (void)d;
    (void)rv;
    return 0;
}

static const char *open_error(const dbm_store_t *d, apr_status_t rv, char *buf, apr_size_t n)
{
#ifdef AD_HAVE_GDBM
    int code = gdbm_code(d, rv);
    if (code) {
        return gdbm_strerror(code);
    }
#endif
    return apr_strerror(rv, buf, n);
}

/* A DBM that another process still holds answers "busy" at once: that is
 * worth waiting for. A damaged or unreadable file is not. */
static int open_is_busy(const dbm_store_t *d, apr_status_t rv)
{
#ifdef AD_HAVE_GDBM
    int code = gdbm_code(d, rv);
    if (code) {
        return code == GDBM_CANT_BE_WRITER || code == GDBM_CANT_BE_READER;
    }
#endif
    return APR_STATUS_IS_EAGAIN(rv);
}

static apr_status_t open_dbm(dbm_store_t *d, apr_time_t until)
{
    apr_status_t rv;
    /* Wait for the previous daemon generation to let go. */
    for (;;) {
        rv = open_db(d);
        if (rv == APR_SUCCESS || !open_is_busy(d, rv) || apr_time_now() >= until) {
            return rv;
        }
        apr_sleep(apr_time_from_msec(50));
    }
}

apr_status_t ad_store_open(apr_pool_t *p, const char *driver, const char *path,
                           apr_interval_time_t wait, ad_store_t **out, const char **err)
{
    dbm_store_t *d = apr_pcalloc(p, sizeof(*d));
    ad_store_t *s = apr_pcalloc(p, sizeof(*s));
    apr_status_t rv;
    char ebuf[256];

    d->p = p;
    d->driver = driver;
    d->path = path;
    d->dir = dir_of(p, path);
    if ((rv = take_lock(p, path, wait, &d->lock)) != APR_SUCCESS) {
        *err = APR_STATUS_IS_EAGAIN(rv)
                   ? apr_psprintf(p,
                                  "cannot lock %s.lock: the store is in use by another process "
                                  "(another httpd with this ApiDestStore, or an apidestd that "
                                  "has not exited)",
                                  path)
                   : apr_psprintf(p, "cannot lock %s.lock: %s", path,
                                  apr_strerror(rv, ebuf, sizeof(ebuf)));
        return rv;
    }
    if ((rv = open_dbm(d, apr_time_now() + wait)) != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot open DBM (%s) %s: %s", driver, path,
                            open_error(d, rv, ebuf, sizeof(ebuf)));
        apr_file_close(d->lock);
        return rv;
    }
    /* A store file created just now survives a power loss only once its
     * directory entry is durable, as the compaction's rename does. */
    if ((rv = fsync_path(d->dir)) != APR_SUCCESS) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_WARNING, rv,
                      ADLOGNO(00162) "cannot sync the store directory %s", d->dir);
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
    s->disk_free = dbm_disk_free;
    s->compact = dbm_compact;
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
