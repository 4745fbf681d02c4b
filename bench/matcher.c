/* bench/matcher.c: events/s of ad_match (parse + match, one pass over the
 * JSON text, one thread) on CityLots-shaped events for aws/event-ruler's
 * Benchmarks.java rule families, beside json_loadb of the same events (the
 * baseline, same run) and the old path (json_loadb, then ad_pattern_match
 * rule by rule). Built and run by bench/matcher; see bench/README.md.
 *
 *   matcher EVENTS.json[.gz] [--seconds S] [--limit N] [--only NAME,...] [--new-only]
 *
 * Every loop is bounded: by the number of events and by S seconds per
 * measurement (the figure then covers the events done in that time). Output:
 * one line per measurement, "key=value" fields, for bench/matcher to tabulate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <jansson.h>

#include "ad_match.h"
#include "ad_pattern.h"
#include "ad_util.h"

#define MAX_RULES 10000

typedef struct {
    const char **s;
    size_t *n;
    long count;
} events_t;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* All lines of the file (gunzipped through gzip -dc when it ends in .gz). */
static void load_events(const char *path, long limit, events_t *ev)
{
    char *cmd = malloc(strlen(path) + 32), *line = NULL;
    size_t cap = 0, room = 1024;
    ssize_t got;
    FILE *f;
    int gz = strlen(path) > 3 && strcmp(path + strlen(path) - 3, ".gz") == 0;

    sprintf(cmd, "gzip -dc '%s'", path);
    f = gz ? popen(cmd, "r") : fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    ev->s = malloc(sizeof(char *) * room);
    ev->n = malloc(sizeof(size_t) * room);
    ev->count = 0;
    while (ev->count < limit && (got = getline(&line, &cap, f)) > 0) {
        while (got && (line[got - 1] == '\n' || line[got - 1] == '\r')) {
            got--;
        }
        if (!got) {
            continue;
        }
        if ((size_t)ev->count == room) {
            room *= 2;
            ev->s = realloc(ev->s, sizeof(char *) * room);
            ev->n = realloc(ev->n, sizeof(size_t) * room);
        }
        ev->s[ev->count] = memcpy(malloc((size_t)got + 1), line, (size_t)got);
        ((char *)ev->s[ev->count])[got] = '\0';
        ev->n[ev->count++] = (size_t)got;
    }
    free(line);
    free(cmd);
    if (gz) {
        pclose(f);
    }
    else {
        fclose(f);
    }
}

/* ------------------------------------------------------------------ */
/* Rule families: the rule sets of event-ruler's Benchmarks.java       */
/* ------------------------------------------------------------------ */

#define P(field, cond) "{\"properties\":{\"" field "\":[" cond "]}}"
#define G(inner)       "{\"geometry\":{" inner "}}"

static const char *const EXACT[] = {P("MAPBLKLOT", "\"1430022\""),  P("MAPBLKLOT", "\"2607117\""),
                                    P("MAPBLKLOT", "\"2607218\""),  P("MAPBLKLOT", "\"3745012\""),
                                    P("MAPBLKLOT", "\"VACSTWIL\""), NULL};
static const char *const WILDCARD[] = {
    P("MAPBLKLOT", "{\"wildcard\":\"143*\"}"),  P("MAPBLKLOT", "{\"wildcard\":\"2*0*1*7\"}"),
    P("MAPBLKLOT", "{\"wildcard\":\"*218\"}"),  P("MAPBLKLOT", "{\"wildcard\":\"3*5*2\"}"),
    P("MAPBLKLOT", "{\"wildcard\":\"VA*IL\"}"), NULL};
static const char *const PREFIX[] = {
    P("STREET", "{\"prefix\":\"AC\"}"), P("STREET", "{\"prefix\":\"BL\"}"),
    P("STREET", "{\"prefix\":\"DR\"}"), P("STREET", "{\"prefix\":\"FU\"}"),
    P("STREET", "{\"prefix\":\"RH\"}"), NULL};
static const char *const PREFIX_EIC[] = {
    P("STREET", "{\"prefix\":{\"equals-ignore-case\":\"Ac\"}}"),
    P("STREET", "{\"prefix\":{\"equals-ignore-case\":\"bL\"}}"),
    P("STREET", "{\"prefix\":{\"equals-ignore-case\":\"dR\"}}"),
    P("STREET", "{\"prefix\":{\"equals-ignore-case\":\"Fu\"}}"),
    P("STREET", "{\"prefix\":{\"equals-ignore-case\":\"rH\"}}"),
    NULL};
static const char *const SUFFIX[] = {
    P("STREET", "{\"suffix\":\"ON\"}"), P("STREET", "{\"suffix\":\"KE\"}"),
    P("STREET", "{\"suffix\":\"MM\"}"), P("STREET", "{\"suffix\":\"ING\"}"),
    P("STREET", "{\"suffix\":\"GO\"}"), NULL};
static const char *const SUFFIX_EIC[] = {
    P("STREET", "{\"suffix\":{\"equals-ignore-case\":\"oN\"}}"),
    P("STREET", "{\"suffix\":{\"equals-ignore-case\":\"Ke\"}}"),
    P("STREET", "{\"suffix\":{\"equals-ignore-case\":\"mM\"}}"),
    P("STREET", "{\"suffix\":{\"equals-ignore-case\":\"InG\"}}"),
    P("STREET", "{\"suffix\":{\"equals-ignore-case\":\"gO\"}}"),
    NULL};
static const char *const EIC[] = {P("STREET", "{\"equals-ignore-case\":\"jefferson\"}"),
                                  P("STREET", "{\"equals-ignore-case\":\"bEaCh\"}"),
                                  P("STREET", "{\"equals-ignore-case\":\"HyDe\"}"),
                                  P("STREET", "{\"equals-ignore-case\":\"CHESTNUT\"}"),
                                  P("ST_TYPE", "{\"equals-ignore-case\":\"st\"}"),
                                  NULL};
static const char *const COMPLEX_ARRAYS[] = {
    G("\"type\":[\"Polygon\"],\"coordinates\":{\"x\":[{\"numeric\":[\"=\",-122.42916360922355]}]}"),
    G("\"type\":[\"MultiPolygon\"],\"coordinates\":{\"y\":[{\"numeric\":[\"=\",37.729900216217324]}"
      "]"
      "}"),
    G("\"coordinates\":{\"x\":[{\"numeric\":[\"<\",-122.41600944012424]}]}"),
    G("\"coordinates\":{\"x\":[{\"numeric\":[\">\",-122.41600944012424]}]}"),
    G("\"coordinates\":{\"x\":[{\"numeric\":[\">\",-122.46471267081272,\"<\",-122.4063085128395]}]"
      "}"),
    NULL};
static const char *const NUMERIC[] = {
    G("\"type\":[\"Polygon\"],\"firstCoordinates\":{\"x\":[{\"numeric\":[\"=\",-122.42916360922355]"
      "}"
      "]}"),
    G("\"type\":[\"MultiPolygon\"],\"firstCoordinates\":{\"z\":[{\"numeric\":[\"=\",0]}]}"),
    G("\"firstCoordinates\":{\"x\":[{\"numeric\":[\"<\",-122.41600944012424]}]}"),
    G("\"firstCoordinates\":{\"x\":[{\"numeric\":[\">\",-122.41600944012424]}]}"),
    G("\"firstCoordinates\":{\"x\":[{\"numeric\":[\">\",-122.46471267081272,\"<\",-122."
      "4063085128395]"
      "}]}"),
    NULL};
static const char *const AB[] = {P("STREET", "{\"anything-but\":[\"FULTON\"]}"),
                                 P("STREET", "{\"anything-but\":[\"MASON\"]}"),
                                 P("ST_TYPE", "{\"anything-but\":[\"ST\"]}"),
                                 G("\"type\":[{\"anything-but\":[\"Polygon\"]}]"),
                                 P("FROM_ST", "{\"anything-but\":[\"441\"]}"),
                                 NULL};
static const char *const AB_IC[] = {
    P("STREET", "{\"anything-but\":{\"equals-ignore-case\":[\"Fulton\"]}}"),
    P("STREET", "{\"anything-but\":{\"equals-ignore-case\":[\"Mason\"]}}"),
    P("ST_TYPE", "{\"anything-but\":{\"equals-ignore-case\":[\"st\"]}}"),
    G("\"type\":[{\"anything-but\":{\"equals-ignore-case\":[\"polygon\"]}}]"),
    P("FROM_ST", "{\"anything-but\":{\"equals-ignore-case\":[\"441\"]}}"),
    NULL};
static const char *const AB_PREFIX[] = {P("STREET", "{\"anything-but\":{\"prefix\":\"FULTO\"}}"),
                                        P("STREET", "{\"anything-but\":{\"prefix\":\"MASO\"}}"),
                                        P("ST_TYPE", "{\"anything-but\":{\"prefix\":\"S\"}}"),
                                        G("\"type\":[{\"anything-but\":{\"prefix\":\"Poly\"}}]"),
                                        P("FROM_ST", "{\"anything-but\":{\"prefix\":\"44\"}}"),
                                        NULL};
static const char *const AB_SUFFIX[] = {P("STREET", "{\"anything-but\":{\"suffix\":\"ULTON\"}}"),
                                        P("STREET", "{\"anything-but\":{\"suffix\":\"ASON\"}}"),
                                        P("ST_TYPE", "{\"anything-but\":{\"suffix\":\"T\"}}"),
                                        G("\"type\":[{\"anything-but\":{\"suffix\":\"olygon\"}}]"),
                                        P("FROM_ST", "{\"anything-but\":{\"suffix\":\"41\"}}"),
                                        NULL};
static const char *const AB_WILDCARD[] = {
    P("MAPBLKLOT", "{\"anything-but\":{\"wildcard\":\"143*\"}}"),
    P("MAPBLKLOT", "{\"anything-but\":{\"wildcard\":\"2*0*1*7\"}}"),
    P("MAPBLKLOT", "{\"anything-but\":{\"wildcard\":\"*218\"}}"),
    P("MAPBLKLOT", "{\"anything-but\":{\"wildcard\":\"3*5*2\"}}"),
    P("MAPBLKLOT", "{\"anything-but\":{\"wildcard\":\"VA*IL\"}}"),
    NULL};

/* event-ruler's own figures, from its machine: bench-data/README.md (a
 * 2-vCPU machine like ours, this data) for exact rules, else event-ruler's
 * README.md (2019 MacBook, real citylots2). 0: none published. */
typedef struct {
    const char *name;
    const char *const *sets[6];
    double er_eps;
    const char *er_src;
} family_t;

static const family_t FAMILIES[] = {
    {"EXACT", {EXACT}, 250000, "bench-data"},
    {"WILDCARD", {WILDCARD}, 170000, "ER_README"},
    {"PREFIX", {PREFIX}, 220000, "ER_README"},
    {"PREFIX_EQUALS_IGNORE_CASE", {PREFIX_EIC}, 200000, "ER_README"},
    {"SUFFIX", {SUFFIX}, 220000, "ER_README"},
    {"SUFFIX_EQUALS_IGNORE_CASE", {SUFFIX_EIC}, 200000, "ER_README"},
    {"EQUALS_IGNORE_CASE", {EIC}, 200000, "ER_README"},
    {"NUMERIC", {NUMERIC}, 120000, "ER_README"},
    {"ANYTHING-BUT", {AB}, 150000, "ER_README"},
    {"ANYTHING-BUT-IGNORE-CASE", {AB_IC}, 150000, "ER_README"},
    {"ANYTHING-BUT-PREFIX", {AB_PREFIX}, 150000, "ER_README"},
    {"ANYTHING-BUT-SUFFIX", {AB_SUFFIX}, 150000, "ER_README"},
    {"ANYTHING-BUT-WILDCARD", {AB_WILDCARD}, 150000, "ER_README"},
    {"COMPLEX_ARRAYS", {COMPLEX_ARRAYS}, 35000, "ER_README"},
    /* event-ruler's CL2Benchmark combinations; no published figure: the
     * slowest member family's is shown */
    {"PARTIAL_COMBO", {NUMERIC, EXACT, PREFIX, AB}, 120000, "slowest_member"},
    {"COMBO", {NUMERIC, EXACT, PREFIX, AB, COMPLEX_ARRAYS}, 35000, "slowest_member"},
    {NULL, {NULL}, 0, NULL}};

/* Exact rules by the hundred: bench-data/README.md's 10,000-rule figure, and
 * its 5-rule one for fewer rules. */
static const family_t EXACT_MANY = {"EXACT_MANY", {NULL}, 246000, "bench-data"};

/* ------------------------------------------------------------------ */
/* Measurements                                                        */
/* ------------------------------------------------------------------ */

typedef struct {
    long *count; /* matches per rule */
    long total;
} tally_t;

static void on_match(void *baton, int i)
{
    tally_t *t = baton;

    t->count[i]++;
    t->total++;
}

/* json_loadb of every event: the baseline. */
static void measure_jansson(const events_t *ev, double seconds)
{
    double t0 = now(), t;
    long i;

    for (i = 0; i < ev->count; i++) {
        json_t *j = json_loadb(ev->s[i], ev->n[i], 0, NULL);
        if (!j) {
            fprintf(stderr, "event %ld does not load\n", i);
            exit(3);
        }
        json_decref(j);
        if ((i & 255) == 255 && now() - t0 > seconds) {
            i++;
            break;
        }
    }
    t = now() - t0;
    printf("kind=baseline events=%ld seconds=%.3f eps=%.0f\n", i, t, i / t);
    fflush(stdout);
}

/* The old path: a jansson tree per event, every rule matched on it. Returns
 * the events done; counts per rule in t. */
static long measure_old(const events_t *ev, ad_pattern_t **pats, int n, double seconds, tally_t *t,
                        const char *name)
{
    double t0 = now(), el;
    long i;
    int r;

    for (i = 0; i < ev->count; i++) {
        json_t *j = json_loadb(ev->s[i], ev->n[i], 0, NULL);
        for (r = 0; r < n; r++) {
            if (ad_pattern_match(pats[r], j)) {
                t->count[r]++;
                t->total++;
            }
        }
        json_decref(j);
        if ((i & 63) == 63 && now() - t0 > seconds) {
            i++;
            break;
        }
    }
    el = now() - t0;
    printf("kind=old family=%s rules=%d events=%ld seconds=%.3f eps=%.0f matches=%ld\n", name, n, i,
           el, i / el, t->total);
    fflush(stdout);
    return i;
}

/* ad_match over the events; its counts over the first `check` events must
 * equal the old path's. */
/* One pass of ad_match over the events (bounded by seconds); the counts go
 * to t, and are compared with the old path's when event `check` is reached. */
static long pass_new(const events_t *ev, const ad_match_set_t *m, ad_match_scratch_t *s, int n,
                     double seconds, tally_t *t, long check, const tally_t *old, long *bad,
                     double *el)
{
    double t0 = now();
    long i;
    int r;

    for (i = 0; i < ev->count; i++) {
        if (i == check && old) {
            for (r = 0; r < n; r++) {
                *bad += t->count[r] != old->count[r];
            }
        }
        if (ad_match_event(m, ev->s[i], ev->n[i], s, on_match, t) < 0) {
            fprintf(stderr, "event %ld rejected\n", i);
            exit(3);
        }
        if ((i & 255) == 255 && now() - t0 > seconds) {
            i++;
            break;
        }
    }
    *el = now() - t0;
    if (i == check && old) {
        for (r = 0; r < n; r++) {
            *bad += t->count[r] != old->count[r];
        }
    }
    return i;
}

/* ad_match over the events: the best of up to 3 passes within the time
 * bound (short passes on a shared machine are noisy); the first pass's
 * counts over the first `check` events must equal the old path's. */
static void measure_new(const events_t *ev, ad_pattern_t **pats, int n, double seconds,
                        const family_t *f, const char *name, long check, const tally_t *old,
                        apr_pool_t *p)
{
    ad_match_set_t *m = ad_match_compile(p, pats, n);
    ad_match_scratch_t *s = ad_match_scratch_make(p);
    tally_t t = {apr_pcalloc(p, sizeof(long) * (size_t)n), 0};
    tally_t again = {apr_pcalloc(p, sizeof(long) * (size_t)n), 0};
    double el, best_el, left = seconds, t0 = now();
    long i, best, bad = 0;
    int r, k;

    best = i = pass_new(ev, m, s, n, left, &t, check, old, &bad, &best_el);
    for (k = 1; k < 3 && i == ev->count && (left = seconds - (now() - t0)) > 0; k++) {
        long j = pass_new(ev, m, s, n, left, &again, -1, NULL, &bad, &el);
        if (j == ev->count && el < best_el) {
            best_el = el;
        }
    }
    printf("kind=new family=%s rules=%d events=%ld seconds=%.3f eps=%.0f matches=%ld "
           "er_eps=%.0f er_src=%s passes=%d agree=%s per_rule=",
           name, n, best, best_el, best / best_el, t.total, f ? f->er_eps : 0.0,
           f ? f->er_src : "-", k,
           check > i ? "unchecked"
           : bad     ? "NO"
                     : "yes");
    for (r = 0; r < n && r < 25; r++) {
        printf("%s%ld", r ? "," : "", t.count[r]);
    }
    printf("\n");
    fflush(stdout);
    if (bad) {
        exit(4);
    }
}

/* The ingest path's Detail: a jansson tree written back by ad_json_dump
 * (before) against ad_match_canonical (the same bytes, no tree). */
static void measure_canonical(const events_t *ev, double seconds, apr_pool_t *root)
{
    ad_match_scratch_t *s = ad_match_scratch_make(root);
    apr_pool_t *p;
    double t0, el[2];
    long i, done[2], differ = 0;
    int k;

    apr_pool_create(&p, root);
    for (k = 0; k < 2; k++) {
        t0 = now();
        for (i = 0; i < ev->count; i++) {
            char *out;
            size_t n;
            if (k == 0) {
                json_t *j = json_loadb(ev->s[i], ev->n[i], 0, NULL);
                out = ad_json_dump(p, j, &n);
                json_decref(j);
            }
            else if (ad_match_canonical(p, ev->s[i], ev->n[i], s, &out, &n) != 1) {
                differ++;
            }
            if ((i & 255) == 255) {
                apr_pool_clear(p);
                if (now() - t0 > seconds) {
                    i++;
                    break;
                }
            }
        }
        el[k] = now() - t0;
        done[k] = i;
    }
    printf("kind=canonical tree_eps=%.0f canonical_eps=%.0f refused=%ld\n", done[0] / el[0],
           done[1] / el[1], differ);
    fflush(stdout);
    apr_pool_destroy(p);
}

static int compile_sets(apr_pool_t *p, const char *const *const *sets, ad_pattern_t **pats)
{
    int n = 0, k, i;
    const char *reason;

    for (k = 0; k < 6 && sets[k]; k++) {
        for (i = 0; sets[k][i]; i++) {
            pats[n] = ad_pattern_compile(p, sets[k][i], strlen(sets[k][i]), &reason);
            if (!pats[n]) {
                fprintf(stderr, "rule %s: %s\n", sets[k][i], reason);
                exit(2);
            }
            n++;
        }
    }
    return n;
}

/* --new-only: ad_match alone (for profiling it) */
static int new_only;

static void run_rules(const events_t *ev, ad_pattern_t **pats, int n, double seconds,
                      const family_t *f, const char *name, apr_pool_t *p)
{
    tally_t old = {apr_pcalloc(p, sizeof(long) * (size_t)n), 0};
    /* 10,000 rules one by one is slow: a tenth of the time is plenty */
    long done =
        new_only ? 0 : measure_old(ev, pats, n, n > 100 ? seconds / 10 : seconds, &old, name);

    measure_new(ev, pats, n, seconds, f, name, done, &old, p);
}

/* MAPBLKLOT values of the events, first seen first: n exact rules on
 * values that occur. */
static int exact_rules(apr_pool_t *p, const events_t *ev, int n, ad_pattern_t **pats)
{
    apr_hash_t *seen = apr_hash_make(p);
    long i;
    int k = 0;

    for (i = 0; i < ev->count && k < n; i++) {
        const char *q = strstr(ev->s[i], "\"MAPBLKLOT\":\""), *e;
        char *v, *rule;

        if (!q || !(e = strchr(q + 13, '"'))) {
            continue;
        }
        v = apr_pstrmemdup(p, q + 13, (size_t)(e - q - 13));
        if (apr_hash_get(seen, v, APR_HASH_KEY_STRING)) {
            continue;
        }
        apr_hash_set(seen, v, APR_HASH_KEY_STRING, v);
        rule = apr_psprintf(p, P("MAPBLKLOT", "\"%s\""), v);
        pats[k++] = ad_pattern_compile(p, rule, strlen(rule), NULL);
    }
    return k;
}

static int wanted(const char *only, const char *name)
{
    const char *q;
    size_t n = strlen(name);

    if (!only) {
        return 1;
    }
    for (q = only; (q = strstr(q, name)); q += n) {
        if ((q == only || q[-1] == ',') && (q[n] == ',' || q[n] == '\0')) {
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *only = NULL;
    double seconds = 3;
    long limit = 10000000;
    events_t ev;
    apr_pool_t *root, *p;
    ad_pattern_t **pats;
    int i, n, sizes[] = {1, 100, 10000};

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
        }
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            limit = atol(argv[++i]);
        }
        else if (!strcmp(argv[i], "--new-only")) {
            new_only = 1;
        }
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        }
        else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, "usage: matcher EVENTS.json[.gz] [--seconds S] [--limit N] [--only A,B]\n");
        return 2;
    }
    apr_initialize();
    apr_pool_create(&root, NULL);
    load_events(path, limit, &ev);
    printf("kind=data events=%ld\n", ev.count);
    if (!new_only) {
        measure_jansson(&ev, seconds);
    }
    pats = malloc(sizeof(*pats) * MAX_RULES);
    for (i = 0; FAMILIES[i].name; i++) {
        if (!wanted(only, FAMILIES[i].name)) {
            continue;
        }
        apr_pool_create(&p, root);
        n = compile_sets(p, FAMILIES[i].sets, pats);
        run_rules(&ev, pats, n, seconds, &FAMILIES[i], FAMILIES[i].name, p);
        apr_pool_destroy(p);
    }
    for (i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "EXACT_x%d", sizes[i]);
        if (!wanted(only, name)) {
            continue;
        }
        apr_pool_create(&p, root);
        n = exact_rules(p, &ev, sizes[i], pats);
        run_rules(&ev, pats, n, seconds, sizes[i] == 10000 ? &EXACT_MANY : &FAMILIES[0], name, p);
        apr_pool_destroy(p);
    }
    if (!new_only) {
        measure_jansson(&ev, seconds);
    }
    if (wanted(only, "CANONICAL")) {
        measure_canonical(&ev, seconds, root);
    }
    apr_pool_destroy(root);
    apr_terminate();
    return 0;
}
