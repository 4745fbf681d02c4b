/* The DBM store on real files: round trips, prefix iteration, reopening, and
 * that the calls apidestd makes for every record take nothing from the
 * store's own pool, which lives as long as the daemon (a per-call
 * allocation there grows without bound under load). */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <jansson.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_file_io.h>

#include "ad_admin.h"
#include "ad_record.h"
#include "ad_store.h"
#include "unit_run.h"

static apr_pool_t *pool;
static char dir[] = "/tmp/ad_test_store.XXXXXX";

static void setup(void)
{
    apr_pool_create(&pool, NULL);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* The store's files are plain files in dir. */
static void remove_dir(void)
{
    apr_dir_t *d;
    apr_finfo_t fi;

    if (apr_dir_open(&d, dir, pool) == APR_SUCCESS) {
        while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d) == APR_SUCCESS) {
            if (fi.filetype == APR_REG) {
                apr_file_remove(apr_pstrcat(pool, dir, "/", fi.name, NULL), pool);
            }
        }
        apr_dir_close(d);
    }
    apr_dir_remove(dir, pool);
}

static void teardown(void)
{
    remove_dir();
    strcpy(dir, "/tmp/ad_test_store.XXXXXX");
    apr_pool_destroy(pool);
}

static apr_status_t close_store(void *s)
{
    ad_store_close(s);
    return APR_SUCCESS;
}

/* Closed with p at the latest (gdbm's handle is not pool memory: a test
 * that never closed its store failed make check-valgrind). */
static ad_store_t *open_store(apr_pool_t *p)
{
    ad_store_t *s = NULL;
    const char *err = NULL;
    apr_status_t rv =
        ad_store_open(p, "gdbm", apr_pstrcat(p, dir, "/q", NULL), apr_time_from_sec(1), &s, &err);

    ck_assert_msg(rv == APR_SUCCESS, "ad_store_open: %s", err ? err : "?");
    apr_pool_cleanup_register(p, s, close_store, apr_pool_cleanup_null);
    return s;
}

static void put1(ad_store_t *s, const char *key, const char *val)
{
    ad_store_item_t it = {key, val, strlen(val)};
    ck_assert_int_eq(s->put(s, &it, 1), APR_SUCCESS);
}

static int count_cb(void *baton, const char *key, const char *val, apr_size_t len)
{
    (void)key;
    (void)val;
    (void)len;
    ++*(int *)baton;
    return 0;
}

/* A second server on the same store is told so, not "Resource
 * temporarily unavailable". The lock is a process's: the other side is a
 * child. */
START_TEST(a_store_in_use_says_so)
{
    ad_store_t *s = open_store(pool);
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        ad_store_t *t = NULL;
        const char *err = NULL;
        apr_pool_t *cp;
        apr_pool_create(&cp, NULL);
        apr_status_t rv = ad_store_open(cp, "gdbm", apr_pstrcat(cp, dir, "/q", NULL),
                                        apr_time_from_msec(100), &t, &err);
        _exit(rv != APR_SUCCESS && err && strstr(err, "in use by another process") ? 0 : 1);
    }
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_ptr_nonnull(s); /* held open (closed with the pool) */
}
END_TEST

/* APR takes a driver name in any case; the per-driver limits and options
 * here are looked up in lower case: "dbm:SDBM:" stored records over sdbm's
 * limit and failed at the write. */
START_TEST(driver_names_in_any_case)
{
    const char *driver, *path, *err = NULL;

    ck_assert_int_eq(ad_store_parse_spec(pool, "dbm:SDBM:/x/store", &driver, &path, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(driver, "sdbm");
    ck_assert_str_eq(path, "/x/store");
    ck_assert_uint_gt(ad_store_driver_max_item(driver), 0);
    ck_assert_int_eq(ad_store_parse_spec(pool, "dbm:Gdbm:/x/store", &driver, &path, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(driver, "gdbm");
}
END_TEST

START_TEST(round_trip_and_reopen)
{
    apr_pool_t *sp;
    ad_store_t *s;
    char *val;
    apr_size_t len;
    int n = 0;

    apr_pool_create(&sp, pool);
    s = open_store(sp);
    put1(s, "q1", "one");
    put1(s, "q2", "two");
    put1(s, "d1", "dead");
    ck_assert_int_eq(s->del(s, "q2"), APR_SUCCESS);
    ck_assert_int_eq(s->del(s, "q-absent"), APR_SUCCESS);
    ck_assert_int_eq(s->sync(s), APR_SUCCESS);
    ad_store_close(s);
    apr_pool_destroy(sp);

    apr_pool_create(&sp, pool);
    s = open_store(sp);
    ck_assert_int_eq(s->get(s, pool, "q1", &val, &len), APR_SUCCESS);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(val, "one", 3);
    ck_assert_int_eq(s->get(s, pool, "q2", &val, &len), APR_NOTFOUND);
    ck_assert_int_eq(s->iterate(s, pool, "q", count_cb, &n), APR_SUCCESS);
    ck_assert_int_eq(n, 1);
    ck_assert_int_gt(s->size(s), 0);
    ck_assert_int_gt(s->disk_free(s), 0);
    ad_store_close(s);
    apr_pool_destroy(sp);
}
END_TEST

/* Two allocations from a pool are adjacent unless something else took from
 * it in between. */
static int pool_untouched(apr_pool_t *p, char *before)
{
    char *after = apr_palloc(p, 8);
    return after == before + 8;
}

START_TEST(per_record_calls_take_nothing_from_the_store_pool)
{
    apr_pool_t *sp, *tmp;
    ad_store_t *s;
    char *mark, key[16], *val;
    apr_size_t len;
    int i;

    apr_pool_create(&sp, pool);
    apr_pool_create(&tmp, pool);
    s = open_store(sp);
    mark = apr_palloc(sp, 8);
    for (i = 0; i < 2000; i++) {
        ad_store_item_t it = {key, "a record's bytes", 16};
        apr_snprintf(key, sizeof(key), "q%d", i);
        ck_assert_int_eq(s->put(s, &it, 1), APR_SUCCESS);
        ck_assert_int_gt(s->disk_free(s), 0);
        ck_assert_int_gt(s->size(s), 0);
        ck_assert_int_eq(s->get(s, tmp, key, &val, &len), APR_SUCCESS);
        ck_assert_int_eq(s->del(s, key), APR_SUCCESS);
        apr_pool_clear(tmp);
    }
    ck_assert_int_eq(s->sync(s), APR_SUCCESS);
    ck_assert_msg(pool_untouched(sp, mark), "a per-record store call allocated from its pool");
    ad_store_close(s);
    apr_pool_destroy(sp);
}
END_TEST

/* The store's fsync calls land here first: what was made durable, by
 * path, the last SYNCED_MAX of them. */
#define SYNCED_MAX 8
static char synced[SYNCED_MAX][512];
static int nsynced;

int fsync(int fd)
{
    char link[64];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, synced[nsynced % SYNCED_MAX], sizeof(synced[0]) - 1);
    synced[nsynced % SYNCED_MAX][n > 0 ? n : 0] = '\0';
    nsynced++;
    return (int)syscall(SYS_fsync, fd);
}

static int was_synced(const char *path)
{
    int i;

    for (i = 0; i < nsynced && i < SYNCED_MAX; i++) {
        if (!strcmp(synced[i], path)) {
            return 1;
        }
    }
    return 0;
}

/* A compaction renames a fresh file over the store: the rename, and with it
 * every record acknowledged into the new file, is durable only once the
 * directory is synced too. */
START_TEST(compaction_keeps_live_records_and_syncs_the_rename)
{
    apr_pool_t *sp;
    ad_store_t *s;
    char key[16], *val;
    apr_size_t len;
    int i, n = 0;

    apr_pool_create(&sp, pool);
    s = open_store(sp);
    for (i = 0; i < 200; i++) {
        apr_snprintf(key, sizeof(key), "q%03d", i);
        put1(s, key, "a record's bytes");
        if (i % 10) {
            ck_assert_int_eq(s->del(s, key), APR_SUCCESS);
        }
    }
    nsynced = 0;
    ck_assert_int_eq(s->compact(s, sp), APR_SUCCESS);
    ck_assert_msg(was_synced(apr_pstrcat(pool, dir, "/q.compact", NULL)),
                  "the new file was not synced before the rename");
    ck_assert_msg(was_synced(dir), "the directory was not synced after the rename");
    ck_assert_int_eq(s->iterate(s, pool, "q", count_cb, &n), APR_SUCCESS);
    ck_assert_int_eq(n, 20);
    ck_assert_int_eq(s->get(s, pool, "q190", &val, &len), APR_SUCCESS);
    ad_store_close(s);
    apr_pool_destroy(sp);
}
END_TEST

/* The store file made by the first open is durable only with its
 * directory entry. */
START_TEST(opening_a_new_store_syncs_its_directory)
{
    apr_pool_t *sp;
    ad_store_t *s;

    apr_pool_create(&sp, pool);
    nsynced = 0;
    s = open_store(sp);
    ck_assert_msg(was_synced(dir), "the directory was not synced after the store was made");
    ad_store_close(s);
    apr_pool_destroy(sp);
}
END_TEST

/* The admin operations on a store whose delete of DLQ records fails: the
 * caller is told, the count stays, and a redrive leaves the record in the
 * DLQ only (had it stayed in both, it would be delivered and still listed). */
static ad_store_t *behind; /* the store refuse_dlq_del() wraps */

static apr_status_t refuse_dlq_del(ad_store_t *s, const char *key)
{
    (void)s;
    return *key == 'd' ? APR_EGENERAL : behind->del(behind, key);
}

static int requeued;

static void count_requeue(void *baton, const char *qkey, apr_time_t due, const ad_record_t *r)
{
    (void)baton;
    (void)qkey;
    (void)due;
    (void)r;
    requeued++;
}

/* A DLQ record under key ("d" + its id) in s. */
static void put_dlq_record(ad_store_t *s, const char *key)
{
    ad_record_t *r = ad_record_make(pool);
    ad_store_item_t it;
    char *buf;
    apr_size_t len;

    r->event_id = "e";
    r->rule = r->target = r->destination = "x";
    r->method = "POST";
    r->url = "http://127.0.0.1/";
    r->body = "{}";
    r->body_len = 2;
    ck_assert_int_eq(ad_record_encode(pool, r, &buf, &len), APR_SUCCESS);
    it.key = key;
    it.val = buf;
    it.len = len;
    ck_assert_int_eq(s->put(s, &it, 1), APR_SUCCESS);
}

/* n DLQ records, keys fmt (one %x) of 0 .. n-1. */
static void put_dlq_records(ad_store_t *s, const char *fmt, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        put_dlq_record(s, apr_psprintf(pool, fmt, i));
    }
}

START_TEST(admin_reports_a_failed_delete)
{
    ad_store_t *real = open_store(pool), broken = *real;
    ad_admin_ctx_t ctx;
    const char *del = "{\"op\":\"dlq-delete\",\"id\":\"00ab\"}";
    const char *redrive = "{\"op\":\"dlq-redrive\",\"id\":\"00ab\"}";
    char *buf, *reply;
    apr_size_t len;
    int count = 1;

    put_dlq_record(real, "d00ab");
    broken.del = refuse_dlq_del;
    behind = real;
    memset(&ctx, 0, sizeof(ctx));
    ctx.store = &broken;
    ctx.dlq_count = &count;
    ctx.requeue = count_requeue;
    ck_assert_int_eq(ad_admin_execute(pool, &ctx, del, strlen(del), &reply, &len), 500);
    ck_assert_ptr_nonnull(strstr(reply, "StoreError"));
    ck_assert_int_eq(ad_admin_execute(pool, &ctx, redrive, strlen(redrive), &reply, &len), 500);
    ck_assert_int_eq(count, 1);
    ck_assert_int_eq(requeued, 0);
    ck_assert_int_eq(real->get(real, pool, "d00ab", &buf, &len), APR_SUCCESS);
    ck_assert_int_eq(real->get(real, pool, "q00ab", &buf, &len), APR_NOTFOUND);
    /* and with a store that deletes, both work */
    ctx.store = real;
    ck_assert_int_eq(ad_admin_execute(pool, &ctx, redrive, strlen(redrive), &reply, &len), 200);
    ck_assert_int_eq(count, 0);
    ck_assert_int_eq(requeued, 1);
    ck_assert_int_eq(real->get(real, pool, "q00ab", &buf, &len), APR_SUCCESS);
}
END_TEST

/* With ApiDestStoreSync on, a redrive syncs the queue copy before the DLQ
 * copy goes; when the sync fails, the queue copy is taken back. */
static int nsyncs, sync_result;

static apr_status_t counted_sync(ad_store_t *s)
{
    (void)s;
    nsyncs++;
    return sync_result;
}

/* An admin context over a copy of real whose sync is counted, with
 * ApiDestStoreSync on. */
static void sync_counting_ctx(ad_store_t *real, ad_admin_ctx_t *ctx, ad_conf_t **conf, int *count)
{
    ad_store_t *counting = apr_pmemdup(pool, real, sizeof(*real));

    counting->sync = counted_sync;
    *conf = apr_pcalloc(pool, sizeof(**conf));
    (*conf)->store_sync = 1;
    memset(ctx, 0, sizeof(*ctx));
    ctx->store = counting;
    ctx->conf = *conf;
    ctx->dlq_count = count;
    ctx->requeue = count_requeue;
    requeued = 0;
    nsyncs = 0;
    sync_result = APR_SUCCESS;
}

START_TEST(admin_redrive_syncs_before_the_delete)
{
    ad_store_t *real = open_store(pool);
    ad_conf_t *conf;
    ad_admin_ctx_t ctx;
    const char *redrive = "{\"op\":\"dlq-redrive\",\"id\":\"00cd\"}";
    char *buf, *reply;
    apr_size_t len;
    int count = 1;

    put_dlq_record(real, "d00cd");
    put_dlq_record(real, "d00ce");
    sync_counting_ctx(real, &ctx, &conf, &count);
    sync_result = APR_EGENERAL;
    ck_assert_int_eq(ad_admin_execute(pool, &ctx, redrive, strlen(redrive), &reply, &len), 500);
    ck_assert_int_eq(nsyncs, 1);
    ck_assert_int_eq(real->get(real, pool, "q00cd", &buf, &len), APR_NOTFOUND);
    ck_assert_int_eq(real->get(real, pool, "d00cd", &buf, &len), APR_SUCCESS);
    ck_assert_int_eq(count, 1);
    sync_result = APR_SUCCESS;
    ck_assert_int_eq(ad_admin_execute(pool, &ctx, redrive, strlen(redrive), &reply, &len), 200);
    ck_assert_int_eq(nsyncs, 2);
    ck_assert_int_eq(requeued, 1);
    ck_assert_int_eq(real->get(real, pool, "d00cd", &buf, &len), APR_NOTFOUND);
    /* with sync off, none */
    conf->store_sync = 0;
    redrive = "{\"op\":\"dlq-redrive\",\"id\":\"00ce\"}";
    ck_assert_int_eq(ad_admin_execute(pool, &ctx, redrive, strlen(redrive), &reply, &len), 200);
    ck_assert_int_eq(nsyncs, 2);
}
END_TEST

/* A bulk redrive syncs once per chunk of records, not once per record (a
 * DLQ of thousands held the core, and every ingest, for seconds), and each
 * record's age counts from when it is due: spaced at 100 a second, the tail
 * of a long DLQ was due after its own MaximumEventAge. */
START_TEST(admin_bulk_redrive_syncs_per_chunk_and_ages_from_due)
{
    ad_store_t *real = open_store(pool);
    ad_conf_t *conf;
    ad_admin_ctx_t ctx;
    const char *redrive = "{\"op\":\"dlq-redrive\"}";
    char *buf, *reply;
    apr_size_t len;
    ad_record_t *r;
    int i, n = 600, count = n;

    put_dlq_records(real, "d%04x", n);
    sync_counting_ctx(real, &ctx, &conf, &count);
    ck_assert_int_eq(ad_admin_execute(pool, &ctx, redrive, strlen(redrive), &reply, &len), 200);
    ck_assert_str_eq(reply, "{\"Redriven\":600}");
    ck_assert_int_eq(count, 0);
    ck_assert_int_eq(requeued, n);
    ck_assert_int_eq(nsyncs, 3); /* 256 + 256 + 88 */
    for (i = 0; i < n; i += 599) {
        ck_assert_int_eq(real->get(real, pool, apr_psprintf(pool, "q%04x", i), &buf, &len),
                         APR_SUCCESS);
        ck_assert_int_eq(ad_record_decode(pool, buf, len, &r), APR_SUCCESS);
        ck_assert(r->first_seen == r->next_due);
    }
    /* a failed sync takes back its chunk's queue copies and ends the
     * redrive there: a 500, not a 200 with nothing redriven, and no try of
     * every chunk that would fail the same way */
    put_dlq_records(real, "d1%03x", 300);
    count = 300;
    nsyncs = 0;
    sync_result = APR_EGENERAL;
    ck_assert_int_eq(ad_admin_execute(pool, &ctx, redrive, strlen(redrive), &reply, &len), 500);
    ck_assert_ptr_nonnull(strstr(reply, "\"StoreError\""));
    ck_assert_ptr_nonnull(strstr(reply, "\"Redriven\":0"));
    ck_assert_int_eq(nsyncs, 1);
    ck_assert_int_eq(count, 300);
    for (i = 0; i < 300; i++) {
        ck_assert_int_eq(real->get(real, pool, apr_psprintf(pool, "q1%03x", i), &buf, &len),
                         APR_NOTFOUND);
        ck_assert_int_eq(real->get(real, pool, apr_psprintf(pool, "d1%03x", i), &buf, &len),
                         APR_SUCCESS);
    }
}
END_TEST

/* The APR allocator maps its blocks itself: malloc's counters miss them. */
static long resident_kb(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The ids of one listing page, in order, and its NextToken ("" for none). */
static char *list_page(ad_admin_ctx_t *ctx, int limit, const char *after, char *token)
{
    const char *req =
        apr_psprintf(pool, "{\"op\":\"dlq-list\",\"limit\":%d%s%s%s}", limit,
                     after ? ",\"after\":\"" : "", after ? after : "", after ? "\"" : "");
    char *reply, *ids = "";
    apr_size_t len, i;
    json_t *o, *recs, *next;

    ck_assert_int_eq(ad_admin_execute(pool, ctx, req, strlen(req), &reply, &len), 200);
    ck_assert_ptr_nonnull(o = json_loadb(reply, len, 0, NULL));
    recs = json_object_get(o, "Records");
    for (i = 0; i < json_array_size(recs); i++) {
        ids = apr_pstrcat(pool, ids, i ? " " : "",
                          json_string_value(json_object_get(json_array_get(recs, i), "Id")), NULL);
    }
    next = json_object_get(o, "NextToken");
    strcpy(token, next ? json_string_value(next) : "");
    json_decref(o);
    return ids;
}

/* A listing page holds its own records' ids, not the whole DLQ's (45 MB
 * with 1M dead letters, and a sort of them per page), and pages still
 * follow each other to the exact end. */
START_TEST(admin_listing_holds_a_page_of_ids_not_the_dlq)
{
    ad_store_t *real = open_store(pool);
    ad_admin_ctx_t ctx;
    apr_allocator_t *a;
    apr_pool_t *p;
    long before;
    char token[64], *reply;
    apr_size_t len;
    const char *req = "{\"op\":\"dlq-list\",\"limit\":3}";
    int n = 50000, count = n;

    put_dlq_records(real, "d%05x", n);
    memset(&ctx, 0, sizeof(ctx));
    ctx.store = real;
    ctx.dlq_count = &count;
    ctx.requeue = count_requeue;
    ck_assert_str_eq(list_page(&ctx, 3, NULL, token), "00000 00001 00002");
    ck_assert_str_eq(token, "00002");
    ck_assert_str_eq(list_page(&ctx, 2, "0c34c", token), "0c34d 0c34e");
    ck_assert_str_eq(token, "0c34e");
    ck_assert_str_eq(list_page(&ctx, 2, "0c34d", token), "0c34e 0c34f");
    ck_assert_str_eq(token, ""); /* the last page ends the listing, exactly */
    ck_assert_str_eq(list_page(&ctx, 5, "0c34f", token), "");
    ck_assert_str_eq(token, "");
    /* what the request's pool holds once answered: 50,000 ids were 1.2 MB */
    apr_allocator_create(&a);
    apr_pool_create_unmanaged_ex(&p, NULL, a);
    apr_allocator_owner_set(a, p);
    before = resident_kb();
    ck_assert_int_eq(ad_admin_execute(p, &ctx, req, strlen(req), &reply, &len), 200);
    ck_assert_int_lt(resident_kb() - before, 256);
    apr_pool_destroy(p);
}
END_TEST

/* A bulk redrive goes through the DLQ a window of ids at a time (sized by
 * the count, at most 65,536), still oldest first and spaced as one. */
START_TEST(admin_bulk_redrive_in_windows_keeps_order_and_spacing)
{
    ad_store_t *real = open_store(pool);
    ad_conf_t *conf;
    ad_admin_ctx_t ctx;
    const char *redrive = "{\"op\":\"dlq-redrive\"}";
    char *buf, *reply;
    apr_size_t len;
    ad_record_t *r;
    apr_time_t first = 0;
    int i, n = 25, count = 4; /* a count below the truth: windows of 4, then 1 */

    put_dlq_records(real, "d%04x", n);
    sync_counting_ctx(real, &ctx, &conf, &count);
    ck_assert_int_eq(ad_admin_execute(pool, &ctx, redrive, strlen(redrive), &reply, &len), 200);
    ck_assert_str_eq(reply, "{\"Redriven\":25}");
    ck_assert_int_eq(requeued, n);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(real->get(real, pool, apr_psprintf(pool, "d%04x", i), &buf, &len),
                         APR_NOTFOUND);
        ck_assert_int_eq(real->get(real, pool, apr_psprintf(pool, "q%04x", i), &buf, &len),
                         APR_SUCCESS);
        ck_assert_int_eq(ad_record_decode(pool, buf, len, &r), APR_SUCCESS);
        first = i ? first : r->next_due;
        ck_assert_int_eq(r->next_due - first, (apr_time_t)i * APR_USEC_PER_SEC / 100);
    }
}
END_TEST

/* A bulk redrive started with ad_admin_start goes a step per resume when
 * its budget is spent at once: a scan of the DLQ, then a chunk of 256
 * records. It takes what matched at its start, not dead letters that come
 * later, and an abort says how far it got. */
START_TEST(admin_bulk_redrive_goes_a_step_per_resume)
{
    ad_store_t *real = open_store(pool);
    ad_conf_t *conf;
    ad_admin_ctx_t ctx;
    ad_admin_job_t *job = NULL;
    const char *redrive = "{\"op\":\"dlq-redrive\"}";
    char *buf, *reply;
    apr_size_t len;
    int i, n = 600, count = n, steps[] = {0, 256, 512, 600};

    put_dlq_records(real, "d%04x", n);
    sync_counting_ctx(real, &ctx, &conf, &count);
    ck_assert_int_eq(ad_admin_start(pool, &ctx, redrive, strlen(redrive), &reply, &len, &job),
                     AD_ADMIN_PENDING);
    ck_assert_ptr_nonnull(job);
    ck_assert_int_eq(requeued, 0);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(ad_admin_resume(job, &ctx, 1, &reply, &len), AD_ADMIN_PENDING);
        ck_assert_int_eq(requeued, steps[i]);
        if (i == 0) {
            put_dlq_record(real, "d9999"); /* dead-lettered after the start */
            count++;
        }
    }
    ck_assert_int_eq(ad_admin_resume(job, &ctx, 1, &reply, &len), 200);
    ck_assert_str_eq(reply, "{\"Redriven\":600}");
    ck_assert_int_eq(real->get(real, pool, "d9999", &buf, &len), APR_SUCCESS);
    ck_assert_int_eq(count, 1);
    /* stopped part of the way */
    put_dlq_records(real, "d%04x", n);
    count = n + 1;
    requeued = 0;
    ck_assert_int_eq(ad_admin_start(pool, &ctx, redrive, strlen(redrive), &reply, &len, &job),
                     AD_ADMIN_PENDING);
    ck_assert_int_eq(ad_admin_resume(job, &ctx, 1, &reply, &len), AD_ADMIN_PENDING);
    ck_assert_int_eq(ad_admin_resume(job, &ctx, 1, &reply, &len), AD_ADMIN_PENDING);
    ck_assert_int_eq(ad_admin_abort(job, &reply, &len), 503);
    ck_assert_ptr_nonnull(strstr(reply, "\"Redriven\":256"));
    ck_assert_ptr_nonnull(strstr(reply, "ShuttingDown"));
    ck_assert_int_eq(count, n + 1 - 256);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("dbm");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip_and_reopen);
    tcase_add_test(tc, driver_names_in_any_case);
    tcase_add_test(tc, a_store_in_use_says_so);
    tcase_add_test(tc, per_record_calls_take_nothing_from_the_store_pool);
    tcase_add_test(tc, compaction_keeps_live_records_and_syncs_the_rename);
    tcase_add_test(tc, opening_a_new_store_syncs_its_directory);
    tcase_add_test(tc, admin_reports_a_failed_delete);
    tcase_add_test(tc, admin_redrive_syncs_before_the_delete);
    tcase_add_test(tc, admin_bulk_redrive_syncs_per_chunk_and_ages_from_due);
    tcase_add_test(tc, admin_listing_holds_a_page_of_ids_not_the_dlq);
    tcase_add_test(tc, admin_bulk_redrive_in_windows_keeps_order_and_spacing);
    tcase_add_test(tc, admin_bulk_redrive_goes_a_step_per_resume);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
