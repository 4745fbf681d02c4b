#include <string.h>
#include <stdlib.h>
#include <stdio.h>

#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_base64.h>

#include "ad_admin.h"
#include "ad_record.h"
#include "ad_util.h"
#include "ad_log.h"

/* Redrive spreads records over time instead of releasing a flood at once. */
#define REDRIVE_PER_SECOND 100
/* Records a bulk redrive moves per store sync. */
#define REDRIVE_CHUNK 256

typedef struct filter_t {
    const char *rule;
    const char *destination;
    apr_time_t since;
} filter_t;

/* Records a bulk redrive takes per scan of the DLQ: their ids are all it
 * holds (about 2 MB), where holding every id cost 45 MB with 1M dead letters. */
#define REDRIVE_WINDOW 65536

typedef char dlq_id_t[AD_STORE_KEY_MAX];

/* The smallest ids after a given one among those a scan offers: a max-heap
 * of at most cap of them, so a listing or a redrive's round holds cap ids
 * whatever the size of the DLQ. */
typedef struct collect_t {
    apr_pool_t *scratch; /* one record's decoding, cleared for the next */
    const filter_t *f;
    const char *after; /* only ids above it; NULL for all */
    const char *until; /* and none above this one; NULL for all */
    dlq_id_t top;      /* the largest matching id offered, kept or not */
    dlq_id_t *heap;
    int n, cap;
    int dropped; /* matching ids past the cap: the scan did not see the end */
} collect_t;

static int reply_json(apr_pool_t *p, int status, json_t *body, char **reply, apr_size_t *len)
{
    *reply = ad_json_dump(p, body, len);
    json_decref(body);
    return status;
}

static int reply_error(apr_pool_t *p, int status, const char *error, const char *msg, char **reply,
                       apr_size_t *len)
{
    return reply_json(p, status, json_pack("{s:s,s:s}", "error", error, "message", msg), reply,
                      len);
}

static const char *opt_str(const json_t *req, const char *key)
{
    const json_t *v = json_object_get(req, key);
    return json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

static int valid_id(const char *id)
{
    size_t i, n = id ? strlen(id) : 0;
    if (n == 0 || n > AD_STORE_KEY_MAX - 2) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!strchr("0123456789abcdef", id[i])) {
            return 0;
        }
    }
    return 1;
}

/* A record's text as a JSON string: what is not UTF-8 (a transformer's
 * literal bytes, say) shows as U+FFFD instead of failing the answer. */
static json_t *text(apr_pool_t *p, const char *s, apr_size_t len)
{
    apr_size_t n;
    const char *clean = ad_utf8_clean(p, s, len, &n);

    return json_stringn(clean, n);
}

static void set_text(apr_pool_t *p, json_t *o, const char *key, const char *s)
{
    json_object_set_new(o, key, text(p, s, strlen(s)));
}

/* A body that is not UTF-8 also comes whole, in base64: redrive sends those
 * bytes, and the operator may need to see them. */
static void set_body(apr_pool_t *p, json_t *o, const ad_record_t *r)
{
    json_t *body = text(p, r->body, r->body_len);
    char *b64;

    if (json_string_length(body) != r->body_len ||
        memcmp(json_string_value(body), r->body, r->body_len)) {
        b64 = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)r->body_len));
        apr_base64_encode(b64, r->body, (int)r->body_len);
        json_object_set_new(o, "BodyBase64", json_string(b64));
    }
    json_object_set_new(o, "Body", body);
}

/* DESIGN.md section 5's shape; attributes are strings, as SQS message
 * attributes are. RETRY_ATTEMPTS counts retries, not the first attempt. */
static json_t *record_json(apr_pool_t *p, const char *id, const ad_record_t *r)
{
    char retries[16];
    json_t *attrs = json_object(), *o = json_object();

    snprintf(retries, sizeof(retries), "%u", r->attempts ? r->attempts - 1 : 0);
    set_text(p, attrs, "RULE_ARN", r->rule_arn);
    set_text(p, attrs, "TARGET_ARN", r->target_arn);
    set_text(p, attrs, "ERROR_CODE", r->last_error);
    set_text(p, attrs, "ERROR_MESSAGE", r->last_message);
    set_text(p, attrs, "RETRY_ATTEMPTS", retries);
    if (*r->exhausted) {
        set_text(p, attrs, "EXHAUSTED_RETRY_CONDITION", r->exhausted);
    }
    set_text(p, o, "Id", id);
    set_text(p, o, "EventId", r->event_id);
    set_text(p, o, "Rule", r->rule);
    set_text(p, o, "Target", r->target);
    set_text(p, o, "Destination", r->destination);
    json_object_set_new(o, "Attributes", attrs);
    json_object_set_new(o, "LastStatus", json_integer(r->last_status));
    json_object_set_new(o, "FirstSeen", json_integer((json_int_t)apr_time_sec(r->first_seen)));
    json_object_set_new(o, "FailedAt", json_integer((json_int_t)apr_time_sec(r->failed_at)));
    set_body(p, o, r);
    return o;
}

static int matches(const filter_t *f, const ad_record_t *r)
{
    return (!f->rule || !strcmp(f->rule, r->rule)) &&
           (!f->destination || !strcmp(f->destination, r->destination)) &&
           (!f->since || r->failed_at >= f->since);
}

static void swap_ids(collect_t *c, int a, int b)
{
    dlq_id_t tmp;

    memcpy(tmp, c->heap[a], sizeof(tmp));
    memcpy(c->heap[a], c->heap[b], sizeof(tmp));
    memcpy(c->heap[b], tmp, sizeof(tmp));
}

static void heap_sift_down(collect_t *c, int i)
{
    for (;;) {
        int big = i, l = 2 * i + 1, r = l + 1;
        if (l < c->n && strcmp(c->heap[l], c->heap[big]) > 0) {
            big = l;
        }
        if (r < c->n && strcmp(c->heap[r], c->heap[big]) > 0) {
            big = r;
        }
        if (big == i) {
            return;
        }
        swap_ids(c, i, big);
        i = big;
    }
}

static void heap_sift_up(collect_t *c, int i)
{
    while (i > 0 && strcmp(c->heap[(i - 1) / 2], c->heap[i]) < 0) {
        swap_ids(c, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

/* Keeps id if it is among the cap smallest seen so far. */
static void offer_id(collect_t *c, const char *id)
{
    if (strcmp(id, c->top) > 0) {
        strcpy(c->top, id);
    }
    if (c->n < c->cap) {
        strcpy(c->heap[c->n], id);
        heap_sift_up(c, c->n++);
        return;
    }
    c->dropped = 1;
    if (strcmp(id, c->heap[0]) < 0) {
        strcpy(c->heap[0], id);
        heap_sift_down(c, 0);
    }
}

static int collect_one(void *baton, const char *key, const char *val, apr_size_t len)
{
    collect_t *c = baton;
    const char *id = key + 1;
    ad_record_t *r;

    if (valid_id(id) && (!c->after || strcmp(id, c->after) > 0) &&
        (!c->until || strcmp(id, c->until) <= 0) &&
        ad_record_decode(c->scratch, val, len, &r) == APR_SUCCESS && matches(c->f, r)) {
        offer_id(c, id);
    }
    apr_pool_clear(c->scratch);
    return 0;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The ids of the first cap matching DLQ records in (c->after, c->until],
 * oldest first (ids grow with time); c->dropped then tells whether others
 * follow them. Only ids are kept: a DLQ of large records would not fit in
 * memory, and what a page shows is read again. */
static apr_array_header_t *collect_ids(apr_pool_t *p, ad_admin_ctx_t *ctx, collect_t *c)
{
    apr_array_header_t *ids;
    int i;

    c->heap = apr_palloc(p, sizeof(dlq_id_t) * (apr_size_t)c->cap);
    apr_pool_create(&c->scratch, p);
    ctx->store->iterate(ctx->store, p, AD_ADMIN_DLQ_PREFIX, collect_one, c);
    apr_pool_destroy(c->scratch);
    ids = apr_array_make(p, c->n ? c->n : 1, sizeof(const char *));
    for (i = 0; i < c->n; i++) {
        APR_ARRAY_PUSH(ids, const char *) = c->heap[i];
    }
    qsort(ids->elts, (size_t)ids->nelts, sizeof(const char *), by_id);
    return ids;
}

static apr_array_header_t *collect(apr_pool_t *p, ad_admin_ctx_t *ctx, const filter_t *f,
                                   const char *after, int cap, int *more)
{
    apr_array_header_t *ids;
    collect_t c;

    memset(&c, 0, sizeof(c));
    c.f = f;
    c.after = after;
    c.cap = cap;
    ids = collect_ids(p, ctx, &c);
    *more = c.dropped;
    return ids;
}

/* A filter that is given must be usable: one silently dropped would make a
 * filtered redrive redrive everything. */
static const char *filter_str(const json_t *req, const char *key, const char **out)
{
    const json_t *v = json_object_get(req, key);

    *out = NULL;
    if (v && (!json_is_string(v) || !json_string_length(v))) {
        return "rule and destination filters must be non-empty UTF-8 names";
    }
    *out = v ? json_string_value(v) : NULL;
    return NULL;
}

static const char *read_filter(const json_t *req, filter_t *f)
{
    const json_t *since = json_object_get(req, "since");
    const char *err;

    f->since = 0;
    if ((err = filter_str(req, "rule", &f->rule)) ||
        (err = filter_str(req, "destination", &f->destination))) {
        return err;
    }
    if (since && (!json_is_integer(since) || json_integer_value(since) < 0 ||
                  json_integer_value(since) > AD_ADMIN_MAX_SINCE)) {
        return "since must be epoch seconds";
    }
    if (since) {
        f->since = apr_time_from_sec(json_integer_value(since));
    }
    return NULL;
}

static int load_one(apr_pool_t *p, ad_admin_ctx_t *ctx, const char *id, ad_record_t **r)
{
    char *val;
    apr_size_t vlen;

    if (!valid_id(id) ||
        ctx->store->get(ctx->store, p, apr_pstrcat(p, AD_ADMIN_DLQ_PREFIX, id, NULL), &val,
                        &vlen) != APR_SUCCESS) {
        return 0;
    }
    return ad_record_decode(p, val, vlen, r) == APR_SUCCESS;
}

static int op_list(apr_pool_t *p, ad_admin_ctx_t *ctx, const json_t *req, char **reply,
                   apr_size_t *len)
{
    filter_t f;
    const char *err = read_filter(req, &f), *after = opt_str(req, "after");
    const json_t *lim = json_object_get(req, "limit");
    json_int_t limit = lim ? json_integer_value(lim) : AD_ADMIN_DEFAULT_LIMIT;
    apr_array_header_t *ids;
    json_t *out, *arr = json_array();
    apr_pool_t *rp; /* one record's reading */
    apr_size_t bytes = 0;
    int i, n = 0, more;

    if (err || (lim && !json_is_integer(lim)) || limit < 1 || limit > AD_ADMIN_MAX_LIMIT) {
        json_decref(arr);
        return reply_error(p, 400, "InvalidParameter",
                           err ? err : "limit must be an integer from 1 to 1000", reply, len);
    }
    ids = collect(p, ctx, &f, after, (int)limit, &more);
    apr_pool_create(&rp, p);
    /* A page also ends before AD_ADMIN_PAGE_BYTES of answer (a record's JSON
     * can be six times its body): it must fit in one message to the child. */
    for (i = 0; i < ids->nelts && n < limit; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        ad_record_t *r;
        json_t *one;
        apr_size_t size;
        if (!load_one(rp, ctx, id, &r)) {
            continue;
        }
        one = record_json(rp, id, r);
        ad_json_dump(rp, one, &size);
        apr_pool_clear(rp);
        if (n && bytes + size > AD_ADMIN_PAGE_BYTES) {
            json_decref(one);
            break;
        }
        json_array_append_new(arr, one);
        bytes += size;
        n++;
    }
    apr_pool_destroy(rp);
    out = json_pack("{s:o}", "Records", arr);
    if (i && (i < ids->nelts || more)) {
        json_object_set_new(out, "NextToken", json_string(APR_ARRAY_IDX(ids, i - 1, const char *)));
    }
    return reply_json(p, 200, out, reply, len);
}

static int op_get(apr_pool_t *p, ad_admin_ctx_t *ctx, const json_t *req, char **reply,
                  apr_size_t *len)
{
    const char *id = opt_str(req, "id");
    ad_record_t *r;

    if (!load_one(p, ctx, id, &r)) {
        return reply_error(p, 404, "NotFound", "no such dead-letter record", reply, len);
    }
    return reply_json(p, 200, record_json(p, id, r), reply, len);
}

static int op_delete(apr_pool_t *p, ad_admin_ctx_t *ctx, const json_t *req, char **reply,
                     apr_size_t *len)
{
    const char *id = opt_str(req, "id");
    ad_record_t *r;

    if (!load_one(p, ctx, id, &r)) {
        return reply_error(p, 404, "NotFound", "no such dead-letter record", reply, len);
    }
    if (ctx->store->del(ctx->store, apr_pstrcat(p, AD_ADMIN_DLQ_PREFIX, id, NULL)) != APR_SUCCESS) {
        return reply_error(p, 500, "StoreError", "the record could not be deleted", reply, len);
    }
    (*ctx->dlq_count)--;
    return reply_json(p, 200, json_pack("{s:s}", "Deleted", id), reply, len);
}

/* Back on the queue with a fresh attempt budget: attempts, age and the
 * failure fields start over, as a newly ingested event's would. Its age
 * counts from when it is due: a redrive spaced over longer than
 * MaximumEventAge must not expire its tail before a first attempt. */
static int put_queue_copy(apr_pool_t *p, ad_admin_ctx_t *ctx, const char *id, ad_record_t *r,
                          apr_time_t due)
{
    ad_store_item_t it;
    char *buf;
    apr_size_t len;

    r->attempts = 0;
    r->first_seen = due;
    r->next_due = due;
    r->last_status = 0;
    r->failed_at = 0;
    r->last_error = r->last_message = r->exhausted = r->rule_arn = r->target_arn = "";
    if (ad_record_encode(p, r, &buf, &len) != APR_SUCCESS) {
        return 0;
    }
    it.key = apr_pstrcat(p, AD_ADMIN_QUEUE_PREFIX, id, NULL);
    it.val = buf;
    it.len = len;
    return ctx->store->put(ctx->store, &it, 1) == APR_SUCCESS;
}

/* With ApiDestStoreSync on, the queue copies are on disk before a DLQ copy
 * goes (in both places a record would be delivered and stay listed). */
static int sync_queue_copies(ad_admin_ctx_t *ctx)
{
    return !(ctx->conf && ctx->conf->store_sync) || ctx->store->sync(ctx->store) == APR_SUCCESS;
}

/* The queue copy is taken back when the DLQ copy cannot go. */
static int drop_dlq_copy(apr_pool_t *p, ad_admin_ctx_t *ctx, const char *id, const ad_record_t *r,
                         int synced)
{
    const char *qkey = apr_pstrcat(p, AD_ADMIN_QUEUE_PREFIX, id, NULL);

    if (!synced ||
        ctx->store->del(ctx->store, apr_pstrcat(p, AD_ADMIN_DLQ_PREFIX, id, NULL)) != APR_SUCCESS) {
        if (ctx->store->del(ctx->store, qkey) != APR_SUCCESS) {
            ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, 0,
                          ADLOGNO(00131) "DLQ record %s: redriven, but neither its DLQ copy "
                                         "nor its queue copy could be deleted; it is in both",
                          id);
        }
        return 0;
    }
    (*ctx->dlq_count)--;
    ctx->requeue(ctx->baton, qkey, r->next_due, r);
    return 1;
}

/* What a redriven record's DLQ copy still needs once its queue copy is
 * written: its body is not held across the chunk. */
typedef struct redrive_item_t {
    const char *id;
    ad_record_t *r; /* rule, target and next_due only */
} redrive_item_t;

/* 1 when the queue copy is written; 0 when the record is gone (deleted or
 * redriven meanwhile); -1 when the store refused the copy. */
static int requeue_one(apr_pool_t *p, apr_pool_t *scratch, ad_admin_ctx_t *ctx, const char *id,
                       apr_time_t due, redrive_item_t *it)
{
    ad_record_t *r;
    int ok = load_one(scratch, ctx, id, &r);

    if (ok && !put_queue_copy(scratch, ctx, id, r, due)) {
        ok = -1;
    }
    if (ok > 0) {
        it->id = id;
        it->r = ad_record_make(p);
        it->r->rule = apr_pstrdup(p, r->rule);
        it->r->target = apr_pstrdup(p, r->target);
        it->r->next_due = due;
    }
    apr_pool_clear(scratch);
    return ok;
}

/* Up to REDRIVE_CHUNK records of ids from *next on, with one sync for all
 * of them: one per record held the core (and every ingest behind it) for
 * the whole DLQ. The record of *seq is due *seq / REDRIVE_PER_SECOND
 * seconds from now. Returns how many were redriven. */
static int redrive_chunk(apr_pool_t *p, ad_admin_ctx_t *ctx, const apr_array_header_t *ids,
                         int *next, apr_int64_t *seq, apr_time_t now, int *failed)
{
    apr_array_header_t *done = apr_array_make(p, REDRIVE_CHUNK, sizeof(redrive_item_t));
    apr_pool_t *scratch; /* one record's reading and writing */
    int i, n = 0, synced;

    apr_pool_create(&scratch, p);
    for (; *next < ids->nelts && done->nelts < REDRIVE_CHUNK && !*failed; (*next)++, (*seq)++) {
        redrive_item_t it;
        apr_time_t due = now + *seq * APR_USEC_PER_SEC / REDRIVE_PER_SECOND;
        int got = requeue_one(p, scratch, ctx, APR_ARRAY_IDX(ids, *next, const char *), due, &it);
        if (got > 0) {
            APR_ARRAY_PUSH(done, redrive_item_t) = it;
        }
        *failed = got < 0;
    }
    apr_pool_destroy(scratch);
    synced = done->nelts && sync_queue_copies(ctx);
    for (i = 0; i < done->nelts; i++) {
        const redrive_item_t *it = &APR_ARRAY_IDX(done, i, redrive_item_t);
        n += drop_dlq_copy(p, ctx, it->id, it->r, synced);
    }
    if (n < done->nelts) {
        *failed = 1;
    }
    return n;
}

/* A bulk redrive, done a step at a time between the core's other work:
 * in one go, a DLQ of 100,000 held every ingest for seconds. It takes the
 * matching dead letters with ids up to the largest at its start, in
 * windows of ids, oldest first, spaced as one run: records ingested later
 * that fail meanwhile wait for the next redrive (ones ingested before it
 * may be taken; a failure time would not do as a bound, as the clock can
 * be set back). */
struct ad_admin_job_t {
    apr_pool_t *p;  /* the request's: the filter's strings live in it */
    apr_pool_t *wp; /* the window's ids */
    apr_pool_t *cp; /* one chunk's redrive */
    filter_t f;
    dlq_id_t after; /* the last id of the window before ("" at first) */
    dlq_id_t until; /* the largest matching id at the first scan */
    apr_array_header_t *ids;
    int next, more, scanned, n;
    int failed; /* the store refused a write, a sync or a delete */
    apr_int64_t seq;
    apr_time_t now;
};

/* The next window of ids: sized by the count, a guess (more windows follow
 * when it is low). */
static void next_window(ad_admin_ctx_t *ctx, ad_admin_job_t *j)
{
    collect_t c;
    int count = *ctx->dlq_count;

    if (j->ids->nelts) {
        strcpy(j->after, APR_ARRAY_IDX(j->ids, j->ids->nelts - 1, const char *));
    }
    apr_pool_clear(j->wp);
    memset(&c, 0, sizeof(c));
    c.f = &j->f;
    c.after = *j->after ? j->after : NULL;
    c.until = j->scanned ? j->until : NULL;
    c.cap = count < 1 ? 1 : count < REDRIVE_WINDOW ? count : REDRIVE_WINDOW;
    j->ids = collect_ids(j->wp, ctx, &c);
    j->next = 0;
    j->more = c.dropped;
    if (!j->scanned) {
        strcpy(j->until, c.top);
        j->scanned = 1;
    }
}

static int redrive_done(ad_admin_job_t *j, char **reply, apr_size_t *len)
{
    return reply_json(j->p, 200, json_pack("{s:i}", "Redriven", j->n), reply, len);
}

/* A redrive that ends before its last record: what it did, and that the
 * rest is still in the DLQ. */
static int redrive_cut(ad_admin_job_t *j, int status, const char *error, const char *why,
                       char **reply, apr_size_t *len)
{
    const char *msg =
        apr_pstrcat(j->p, why, "; the records not redriven are still in the DLQ", NULL);

    return reply_json(j->p, status,
                      json_pack("{s:s,s:s,s:i}", "error", error, "message", msg, "Redriven", j->n),
                      reply, len);
}

int ad_admin_resume(ad_admin_job_t *j, ad_admin_ctx_t *ctx, apr_interval_time_t budget,
                    char **reply, apr_size_t *len)
{
    apr_time_t end = ad_monotonic() + budget;

    do {
        if (j->failed) {
            /* going on would fail each record the same way (a full disk) */
            return redrive_cut(j, 500, "StoreError", "the store refused the redrive", reply, len);
        }
        if (j->next < j->ids->nelts) {
            j->n += redrive_chunk(j->cp, ctx, j->ids, &j->next, &j->seq, j->now, &j->failed);
            apr_pool_clear(j->cp);
        }
        else if (j->scanned && !j->more) {
            return redrive_done(j, reply, len);
        }
        else {
            next_window(ctx, j);
        }
    } while (budget <= 0 || ad_monotonic() < end);
    return AD_ADMIN_PENDING;
}

int ad_admin_abort(ad_admin_job_t *j, char **reply, apr_size_t *len)
{
    return redrive_cut(j, 503, "ShuttingDown", "apidestd stopped before the redrive was over",
                       reply, len);
}

static ad_admin_job_t *redrive_job(apr_pool_t *p, const filter_t *f, apr_time_t now)
{
    ad_admin_job_t *j = apr_pcalloc(p, sizeof(*j));

    j->p = p;
    j->f = *f;
    j->now = now;
    apr_pool_create(&j->wp, p);
    apr_pool_create(&j->cp, p);
    j->ids = apr_array_make(j->wp, 1, sizeof(const char *));
    return j;
}

static int op_redrive(apr_pool_t *p, ad_admin_ctx_t *ctx, const json_t *req, char **reply,
                      apr_size_t *len, ad_admin_job_t **job)
{
    const char *id = opt_str(req, "id");
    apr_time_t now = ad_now();
    filter_t f;
    const char *err;
    ad_record_t *r;

    if (!id && json_object_get(req, "id")) {
        /* an id given but empty must never widen to a bulk redrive */
        return reply_error(p, 404, "NotFound", "no such dead-letter record", reply, len);
    }
    if (id) {
        if (!load_one(p, ctx, id, &r)) {
            return reply_error(p, 404, "NotFound", "no such dead-letter record", reply, len);
        }
        if (!put_queue_copy(p, ctx, id, r, now) ||
            !drop_dlq_copy(p, ctx, id, r, sync_queue_copies(ctx))) {
            return reply_error(p, 500, "StoreError", "the record could not be requeued", reply,
                               len);
        }
        return reply_json(p, 200, json_pack("{s:i}", "Redriven", 1), reply, len);
    }
    if ((err = read_filter(req, &f))) {
        return reply_error(p, 400, "InvalidParameter", err, reply, len);
    }
    *job = redrive_job(p, &f, now);
    return AD_ADMIN_PENDING;
}

int ad_admin_execute(apr_pool_t *p, ad_admin_ctx_t *ctx, const char *text, apr_size_t text_len,
                     char **reply, apr_size_t *len)
{
    ad_admin_job_t *job = NULL;
    int status = ad_admin_start(p, ctx, text, text_len, reply, len, &job);

    return status == AD_ADMIN_PENDING ? ad_admin_resume(job, ctx, 0, reply, len) : status;
}

int ad_admin_start(apr_pool_t *p, ad_admin_ctx_t *ctx, const char *text, apr_size_t text_len,
                   char **reply, apr_size_t *len, ad_admin_job_t **job)
{
    json_error_t jerr;
    json_t *req = ad_json_own(p, json_loadb(text, text_len, 0, &jerr));
    const char *op = req ? opt_str(req, "op") : NULL;

    if (!op) {
        return reply_error(p, 400, "InvalidRequest", "no op", reply, len);
    }
    if (!strcmp(op, "dlq-list")) {
        return op_list(p, ctx, req, reply, len);
    }
    if (!strcmp(op, "dlq-get")) {
        return op_get(p, ctx, req, reply, len);
    }
    if (!strcmp(op, "dlq-delete")) {
        return op_delete(p, ctx, req, reply, len);
    }
    if (!strcmp(op, "dlq-redrive")) {
        return op_redrive(p, ctx, req, reply, len, job);
    }
    if (!strcmp(op, "authorize")) {
        const char *name = opt_str(req, "name"), *state;
        if (!name || !ctx->authorize(ctx->baton, name, &state)) {
            return reply_error(p, 404, "NotFound", "no such connection", reply, len);
        }
        return reply_json(p, 200, json_pack("{s:s,s:s}", "Name", name, "ConnectionState", state),
                          reply, len);
    }
    if (!strcmp(op, "status")) {
        return reply_json(p, 200, ctx->counters(ctx->baton), reply, len);
    }
    return reply_error(p, 400, "InvalidRequest", "unknown op", reply, len);
}
