/* One-pass matching of many patterns against an event's JSON text.
 *
 * Config time: the field paths of all patterns are interned into one byte
 * trie (a path index each), every pattern is copied with its paths renumbered
 * into that shared space (ad_pattern_remap), and every $or branch gets an
 * anchor (ad_pattern_anchors): exact strings at a path go into a hash table,
 * other branches are listed under a path they need, or as always tried.
 *
 * Per event: a hand-written scanner walks the text once. It follows the trie
 * while reading keys; a value whose key leaves the trie is skipped, still
 * validated byte for byte as jansson would (so invalid text is an error, not
 * a match), and only the leaves at named paths are recorded, with their array
 * memberships, into the same occurrence store ad_pattern_match fills from a
 * jansson tree. The anchors then give the candidate rules and each is
 * evaluated by ad_pattern_eval: the very code ad_pattern_match runs, hence
 * identical results. No pattern construct falls back to a jansson tree.
 *
 * Where the text and a jansson tree could differ, the scanner does what
 * jansson does: a repeated key keeps only its last value (earlier leaves are
 * marked dead), numbers are integers unless they have a fraction or an
 * exponent, out-of-range integers and overflowing reals are errors, the
 * nesting limit is jansson's, and one NUL right after a number or a literal
 * is skipped (jansson's lexer loses it).
 *
 * The same scanner, with emit on, writes an object's canonical text
 * (ad_match_canonical): what ad_json_dump writes for json_loadb's tree of it,
 * which ingest uses to build the envelope without parsing Detail twice. */
#include "ad_match.h"
#include "ad_pattern_int.h"
#include "ad_util.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jansson's JSON_PARSER_MAX_DEPTH: values (scalars too) nested deeper are
 * an error. */
#define MAX_DEPTH AD_MATCH_MAX_DEPTH

/* ------------------------------------------------------------------ */
/* Compiled set                                                        */
/* ------------------------------------------------------------------ */

typedef struct {
    int edge0, nedge;
    int path; /* path index ending here, or -1 */
    int dot;  /* child through '.', where an object's keys start */
} mnode;

/* Exact-string anchors: (path, value) -> rules [r0, r0 + nr) of exact_rules. */
typedef struct {
    uint32_t hash;
    int path;
    const char *s;
    size_t n;
    int r0, nr;
} xent;

struct ad_match_set_t {
    int n; /* patterns */
    const ad_pattern_t **pats;
    int npaths;
    mnode *nodes;
    unsigned char *ebyte;
    int *eto;
    int *always; /* rules with a branch that needs nothing */
    int nalways;
    int *path_r0, *path_nr; /* per path: rules [r0, r0 + nr) of path_rules */
    int *path_rules;
    int *watched; /* paths with PATH or EXACT anchors */
    int nwatched;
    char *exact_path; /* per path: has EXACT anchors */
    xent *tab;
    uint32_t mask; /* table size - 1, 0 when empty */
    int *exact_rules;
};

struct ad_match_scratch_t {
    ad_occs_t occ;
    char *dec; /* decoded strings of this event, and number texts */
    size_t ndec, capdec;
    unsigned *stamp; /* rule -> generation it was last made a candidate */
    int capstamp;
    unsigned gen;
    int *cand;
    int ncand, capcand;
    struct dup {
        int node, o0, o1;
    } * dup; /* keys at named paths, per open object, for repeated keys */
    int ndup, capdup;
    char *out; /* ad_match_canonical's text */
    size_t nout, capout;
    struct ckey {
        uint32_t h;
        const char *s;
        size_t n;
    } * keys; /* keys of the open objects, for ad_match_canonical */
    int nkeys, capkeys;
    int canon_depth; /* deepest level of ad_match_canonical's last text */
};

static uint32_t hash_of(int path, const char *s, size_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)path;
    size_t i;

    for (i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    }
    return h;
}

/* Building: a temporary trie with linked children. */
typedef struct {
    int first, next, path;
    unsigned char b;
} tmpnode;

typedef struct {
    apr_pool_t *p;
    tmpnode *t;
    int nt, capt;
    apr_hash_t *paths; /* name -> int * index */
    const char **names;
    int npaths, capnames;
} builder;

static int tmp_node(builder *b, unsigned char ch)
{
    tmpnode *nt;

    if (b->nt == b->capt) {
        b->capt = b->capt ? b->capt * 2 : 64;
        nt = apr_palloc(b->p, sizeof(*nt) * (size_t)b->capt);
        if (b->nt) {
            memcpy(nt, b->t, sizeof(*nt) * (size_t)b->nt);
        }
        b->t = nt;
    }
    b->t[b->nt].first = b->t[b->nt].next = b->t[b->nt].path = -1;
    b->t[b->nt].b = ch;
    return b->nt++;
}

static int tmp_child(builder *b, int node, unsigned char ch)
{
    int c, prev = -1;

    for (c = b->t[node].first; c >= 0; prev = c, c = b->t[c].next) {
        if (b->t[c].b == ch) {
            return c;
        }
    }
    c = tmp_node(b, ch);
    if (prev < 0) {
        b->t[node].first = c;
    }
    else {
        b->t[prev].next = c;
    }
    return c;
}

/* The shared index of a path name, added to the trie when new. */
static int intern_path(builder *b, const char *name)
{
    int *idx = apr_hash_get(b->paths, name, APR_HASH_KEY_STRING);
    int node = 0;
    const char *q;

    if (idx) {
        return *idx;
    }
    idx = apr_palloc(b->p, sizeof(*idx));
    *idx = b->npaths++;
    apr_hash_set(b->paths, name, APR_HASH_KEY_STRING, idx);
    for (q = name; *q; q++) {
        node = tmp_child(b, node, (unsigned char)*q);
    }
    b->t[node].path = *idx;
    return *idx;
}

static void flatten_trie(apr_pool_t *p, const builder *b, ad_match_set_t *m)
{
    int i, c, e = 0;

    m->nodes = apr_pcalloc(p, sizeof(mnode) * (size_t)b->nt);
    m->ebyte = apr_pcalloc(p, (size_t)b->nt + 1);
    m->eto = apr_pcalloc(p, sizeof(int) * ((size_t)b->nt + 1));
    for (i = 0; i < b->nt; i++) {
        m->nodes[i].path = b->t[i].path;
        m->nodes[i].edge0 = e;
        m->nodes[i].dot = -1;
        for (c = b->t[i].first; c >= 0; c = b->t[c].next) {
            m->ebyte[e] = b->t[c].b;
            m->eto[e] = c;
            if (b->t[c].b == '.') {
                m->nodes[i].dot = c;
            }
            e++;
        }
        m->nodes[i].nedge = e - m->nodes[i].edge0;
    }
}

/* Anchors gathered while building, before they are laid out flat. */
typedef struct {
    apr_array_header_t *always;   /* int */
    apr_array_header_t **by_path; /* per path, int */
    apr_hash_t *exact;            /* path + value -> apr_array_header_t of int */
} anchors_tmp;

static void push_rule(apr_array_header_t *a, int r)
{
    /* a rule's branches arrive together: one entry per rule is enough */
    if (!a->nelts || APR_ARRAY_IDX(a, a->nelts - 1, int) != r) {
        APR_ARRAY_PUSH(a, int) = r;
    }
}

static void add_exact(apr_pool_t *p, anchors_tmp *at, int path, const char *s, size_t n, int r)
{
    char *key = apr_palloc(p, sizeof(int) + n);
    apr_array_header_t *a;

    memcpy(key, &path, sizeof(int));
    memcpy(key + sizeof(int), s, n);
    a = apr_hash_get(at->exact, key, (apr_ssize_t)(sizeof(int) + n));
    if (!a) {
        a = apr_array_make(p, 2, sizeof(int));
        apr_hash_set(at->exact, key, (apr_ssize_t)(sizeof(int) + n), a);
    }
    push_rule(a, r);
}

static void add_anchors(apr_pool_t *p, anchors_tmp *at, const ad_pattern_t *pat, int r)
{
    ad_anchor_t *an;
    int i, j, na = ad_pattern_anchors(p, pat, &an);

    for (i = 0; i < na; i++) {
        switch (an[i].kind) {
        case AD_ANCHOR_ALWAYS:
            push_rule(at->always, r);
            break;
        case AD_ANCHOR_PATH:
            push_rule(at->by_path[an[i].path], r);
            break;
        default:
            for (j = 0; j < an[i].nvals; j++) {
                add_exact(p, at, an[i].path, an[i].vals[j], an[i].lens[j], r);
            }
            break;
        }
    }
}

static void layout_paths(apr_pool_t *p, const anchors_tmp *at, ad_match_set_t *m)
{
    int i, total = 0;

    m->always = (int *)at->always->elts;
    m->nalways = at->always->nelts;
    m->path_r0 = apr_pcalloc(p, sizeof(int) * (size_t)(m->npaths + 1));
    m->path_nr = apr_pcalloc(p, sizeof(int) * (size_t)(m->npaths + 1));
    for (i = 0; i < m->npaths; i++) {
        total += at->by_path[i]->nelts;
    }
    m->path_rules = apr_pcalloc(p, sizeof(int) * (size_t)(total + 1));
    for (i = 0, total = 0; i < m->npaths; i++) {
        m->path_r0[i] = total;
        m->path_nr[i] = at->by_path[i]->nelts;
        memcpy(m->path_rules + total, at->by_path[i]->elts,
               sizeof(int) * (size_t)at->by_path[i]->nelts);
        total += at->by_path[i]->nelts;
    }
}

static void layout_exact(apr_pool_t *p, const anchors_tmp *at, ad_match_set_t *m)
{
    unsigned cnt = apr_hash_count(at->exact), size = 1;
    apr_hash_index_t *hi;
    int total = 0;

    if (!cnt) {
        return;
    }
    while (size < cnt * 2) {
        size <<= 1;
    }
    m->mask = size - 1;
    m->tab = apr_pcalloc(p, sizeof(xent) * size);
    for (hi = apr_hash_first(p, at->exact); hi; hi = apr_hash_next(hi)) {
        total += ((apr_array_header_t *)apr_hash_this_val(hi))->nelts;
    }
    m->exact_rules = apr_pcalloc(p, sizeof(int) * (size_t)total);
    total = 0;
    for (hi = apr_hash_first(p, at->exact); hi; hi = apr_hash_next(hi)) {
        const char *key = apr_hash_this_key(hi);
        apr_ssize_t klen = apr_hash_this_key_len(hi);
        apr_array_header_t *a = apr_hash_this_val(hi);
        xent e;
        uint32_t h;

        memcpy(&e.path, key, sizeof(int));
        e.s = key + sizeof(int);
        e.n = (size_t)klen - sizeof(int);
        e.hash = hash_of(e.path, e.s, e.n);
        e.r0 = total;
        e.nr = a->nelts;
        memcpy(m->exact_rules + total, a->elts, sizeof(int) * (size_t)a->nelts);
        total += a->nelts;
        m->exact_path[e.path] = 1;
        for (h = e.hash & m->mask; m->tab[h].nr; h = (h + 1) & m->mask) {
        }
        m->tab[h] = e;
    }
}

static void list_watched(apr_pool_t *p, ad_match_set_t *m)
{
    int i;

    m->watched = apr_pcalloc(p, sizeof(int) * (size_t)(m->npaths + 1));
    for (i = 0; i < m->npaths; i++) {
        if (m->path_nr[i] || m->exact_path[i]) {
            m->watched[m->nwatched++] = i;
        }
    }
}

/* Rename a pattern's paths into the shared space. */
static const ad_pattern_t *share_paths(apr_pool_t *p, builder *b, const ad_pattern_t *pat)
{
    const char **names;
    int i, n = ad_pattern_path_names(p, pat, &names);
    int *map = apr_palloc(p, sizeof(int) * (size_t)(n + 1));

    for (i = 0; i < n; i++) {
        map[i] = intern_path(b, names[i]);
    }
    return ad_pattern_remap(p, pat, map);
}

static int node_step(const ad_match_set_t *m, int node, unsigned char b);

ad_match_set_t *ad_match_compile(apr_pool_t *p, ad_pattern_t *const *pats, int n)
{
    ad_match_set_t *m = apr_pcalloc(p, sizeof(*m));
    builder b = {p, NULL, 0, 0, apr_hash_make(p), NULL, 0, 0};
    anchors_tmp at;
    int i;

    tmp_node(&b, 0);
    m->n = n;
    m->pats = apr_pcalloc(p, sizeof(ad_pattern_t *) * (size_t)(n + 1));
    for (i = 0; i < n; i++) {
        m->pats[i] = pats[i] ? share_paths(p, &b, pats[i]) : NULL;
    }
    m->npaths = b.npaths;
    flatten_trie(p, &b, m);
    at.always = apr_array_make(p, 4, sizeof(int));
    at.by_path = apr_palloc(p, sizeof(*at.by_path) * (size_t)(m->npaths + 1));
    for (i = 0; i < m->npaths; i++) {
        at.by_path[i] = apr_array_make(p, 2, sizeof(int));
    }
    at.exact = apr_hash_make(p);
    for (i = 0; i < n; i++) {
        if (m->pats[i]) {
            add_anchors(p, &at, m->pats[i], i);
        }
    }
    m->exact_path = apr_pcalloc(p, (size_t)m->npaths + 1);
    layout_paths(p, &at, m);
    layout_exact(p, &at, m);
    list_watched(p, m);
    return m;
}

int ad_match_names_field(const ad_match_set_t *m, const char *key)
{
    int node = 0;

    for (; *key && node >= 0; key++) {
        node = node_step(m, node, (unsigned char)*key);
    }
    return node >= 0 && (m->nodes[node].path >= 0 || m->nodes[node].dot >= 0);
}

/* ------------------------------------------------------------------ */
/* Scratch                                                             */
/* ------------------------------------------------------------------ */

static apr_status_t scratch_free(void *data)
{
    ad_match_scratch_t *s = data;

    ad_occs_free(&s->occ);
    free(s->dec);
    free(s->stamp);
    free(s->cand);
    free(s->dup);
    free(s->out);
    free(s->keys);
    return APR_SUCCESS;
}

ad_match_scratch_t *ad_match_scratch_make(apr_pool_t *p)
{
    ad_match_scratch_t *s = apr_pcalloc(p, sizeof(*s));

    ad_occs_init(&s->occ);
    apr_pool_cleanup_register(p, s, scratch_free, apr_pool_cleanup_null);
    return s;
}

/* Make room for cnt elements of size elem in *buf (capacity *cap). */
static int reserve(void *bufp, int *cap, int cnt, size_t elem)
{
    void **buf = bufp;
    int nc = *cap ? *cap : 16;
    void *nb;

    if (cnt <= *cap) {
        return 1;
    }
    while (nc < cnt) {
        nc *= 2;
    }
    nb = realloc(*buf, elem * (size_t)nc);
    if (!nb) {
        return 0;
    }
    *buf = nb;
    *cap = nc;
    return 1;
}

/* Decoded strings never outgrow their escaped text, and one number's text
 * is at most the event: twice the event's size always suffices. */
static int scratch_decode_room(ad_match_scratch_t *s, size_t len)
{
    size_t need = 2 * len + 2;
    char *nb;

    if (need > s->capdec) {
        nb = realloc(s->dec, need);
        if (!nb) {
            return 0;
        }
        s->dec = nb;
        s->capdec = need;
    }
    s->ndec = 0;
    s->ndup = 0;
    return 1;
}

static int scratch_prepare(const ad_match_set_t *m, ad_match_scratch_t *s, size_t len)
{
    if (!scratch_decode_room(s, len)) {
        return 0;
    }
    if (m->n > s->capstamp) {
        free(s->stamp);
        s->stamp = calloc((size_t)m->n, sizeof(unsigned));
        s->capstamp = s->stamp ? m->n : 0;
        s->gen = 0;
        if (!s->stamp) {
            return 0;
        }
    }
    return ad_occs_reset(&s->occ, m->npaths);
}

/* ------------------------------------------------------------------ */
/* Scanner                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    const unsigned char *p, *end;
    const ad_match_set_t *m;
    ad_match_scratch_t *s;
    int depth, maxdepth;
    int fast_reals; /* fast_real may be used */
    int emit;       /* write the canonical text (ad_match_canonical) */
    int oom;
} scan_t;

/* Status beside 0 and -1 (invalid): only a jansson tree can tell. */
#define UNSURE (-2)

static int node_step(const ad_match_set_t *m, int node, unsigned char b)
{
    const mnode *n = &m->nodes[node];
    int e;

    for (e = n->edge0; e < n->edge0 + n->nedge; e++) {
        if (m->ebyte[e] == b) {
            return m->eto[e];
        }
    }
    return -1;
}

static void skip_ws(scan_t *sc)
{
    while (sc->p < sc->end &&
           (*sc->p == ' ' || *sc->p == '\n' || *sc->p == '\r' || *sc->p == '\t')) {
        sc->p++;
    }
}

/* Scan a string whose opening quote is at sc->p: validate it, leave sc->p
 * after the closing quote, give the raw content and whether it has escapes. */
static int scan_string(scan_t *sc, const unsigned char **raw, size_t *rawlen, int *esc)
{
    const unsigned char *q = sc->p + 1, *end = sc->end;
    int n, used;

    *esc = 0;
    *raw = q;
    for (;;) {
        q += ad_json_plain_run(q, (size_t)(end - q), 1);
        if (q >= end || *q < 0x20) {
            return -1;
        }
        if (*q == '"') {
            break;
        }
        if (*q == '\\') {
            *esc = 1;
            if (q + 1 >= end) {
                return -1;
            }
            switch (q[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                q += 2;
                continue;
            case 'u':
                if (ad_json_unicode_escape(q + 1, end, &used) < 0) {
                    return -1;
                }
                q += 1 + used;
                continue;
            default:
                return -1;
            }
        }
        if (!(n = (int)ad_utf8_seq_len(q, end))) {
            return -1;
        }
        q += n;
    }
    *rawlen = (size_t)(q - *raw);
    sc->p = q + 1;
    return 0;
}

/* Decode an already validated string body into the scratch; returns its
 * start (its length in *n). */
static const char *decode(ad_match_scratch_t *s, const unsigned char *raw, size_t rawlen, size_t *n)
{
    static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    char *out = s->dec + s->ndec, *o = out;
    const unsigned char *q = raw, *end = raw + rawlen;
    const char *e;
    int used;

    while (q < end) {
        if (*q != '\\') {
            *o++ = (char)*q++;
        }
        else if (q[1] == 'u') {
            o += ad_utf8_put(o, (apr_uint32_t)ad_json_unicode_escape(q + 1, end, &used));
            q += 1 + used;
        }
        else {
            for (e = simple; *e != (char)q[1]; e += 2) {
            }
            *o++ = e[1];
            q += 2;
        }
    }
    *n = (size_t)(o - out);
    s->ndec += *n;
    return out;
}

static int real_value(scan_t *sc, const unsigned char *q, size_t n, double *out);
static int fast_real(const unsigned char *q, const unsigned char *end, double *out);
static int int_value(scan_t *sc, const unsigned char *q, size_t n, json_int_t *out);

/* ------------------------------------------------------------------ */
/* Canonical output: what ad_json_dump writes for json_loadb's tree     */
/* ------------------------------------------------------------------ */

static void emit(scan_t *sc, const void *b, size_t n)
{
    ad_match_scratch_t *s = sc->s;
    size_t nc;
    char *nb;

    if (s->nout + n > s->capout) {
        nc = s->capout ? s->capout * 2 : 1024;
        while (nc < s->nout + n) {
            nc *= 2;
        }
        if (!(nb = realloc(s->out, nc))) {
            sc->oom = 1;
            return;
        }
        s->out = nb;
        s->capout = nc;
    }
    memcpy(s->out + s->nout, b, n);
    s->nout += n;
}

static void emit_piece(void *baton, const char *p, size_t n)
{
    emit(baton, p, n);
}

/* A decoded string escaped exactly as ad_json_dump escapes it. */
static void emit_escaped(scan_t *sc, const char *str, size_t n)
{
    ad_json_write_string(str, n, emit_piece, sc);
}

/* A string as scanned: without escapes its bytes are already canonical. */
static void emit_string(scan_t *sc, const unsigned char *raw, size_t rawlen, int esc)
{
    size_t mark = sc->s->ndec, n;
    const char *d;

    if (!esc) {
        emit(sc, "\"", 1);
        emit(sc, raw, rawlen);
        emit(sc, "\"", 1);
        return;
    }
    d = decode(sc->s, raw, rawlen, &n);
    emit_escaped(sc, d, n);
    sc->s->ndec = mark;
}

/* A key of the object whose keys start at s->keys[base]: UNSURE when it
 * repeats one (jansson keeps the first place and the last value: the tree
 * decides) or the object has too many keys to check cheaply. */
static int canonical_key(scan_t *sc, int base, const unsigned char *raw, size_t rawlen, int esc)
{
    ad_match_scratch_t *s = sc->s;
    const char *k = (const char *)raw;
    size_t n = rawlen;
    uint32_t h;
    int i;

    if (esc) {
        k = decode(s, raw, rawlen, &n); /* kept until the object ends */
    }
    h = hash_of(0, k, n);
    for (i = base; i < s->nkeys; i++) {
        if (s->keys[i].h == h && s->keys[i].n == n && memcmp(s->keys[i].s, k, n) == 0) {
            return UNSURE;
        }
    }
    if (s->nkeys - base >= 256 || !reserve(&s->keys, &s->capkeys, s->nkeys + 1, sizeof(*s->keys))) {
        return UNSURE;
    }
    s->keys[s->nkeys].h = h;
    s->keys[s->nkeys].s = k;
    s->keys[s->nkeys++].n = n;
    if (esc) {
        emit_escaped(sc, k, n);
    }
    else {
        emit_string(sc, raw, rawlen, 0);
    }
    emit(sc, ":", 1);
    return 0;
}

/* Whether a real's own text is what ad_json_real_text writes for it: a
 * plain decimal in its plain range (1e-3 <= |d| < 1e7) whose p significant
 * digits print back under %.{p}g, while p - 1 digits do not read back as the
 * same double (then no shorter text does either: the nearest (p-1)-digit
 * decimal would). Spares the search for the shortest text, the main cost of
 * a coordinate-heavy detail. */
static int real_is_canonical(scan_t *sc, const unsigned char *q, size_t n, double d)
{
    char buf[AD_JSON_REAL_MAX];
    double back;
    size_t i;
    int p = 0;

    if (n >= 32 || memchr(q, 'e', n) || memchr(q, 'E', n) || fabs(d) < 1e-3 || fabs(d) >= 1e7) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (q[i] >= '0' && q[i] <= '9' && (p || q[i] != '0')) {
            p++;
        }
    }
    if (p < 2 || p > 17) {
        return 0;
    }
    snprintf(buf, sizeof(buf), "%.*g", p, d);
    if (strlen(buf) != n || memcmp(buf, q, n) != 0) {
        return 0;
    }
    snprintf(buf, sizeof(buf), "%.*g", p - 1, d);
    if (!sc->fast_reals ||
        !fast_real((const unsigned char *)buf, (const unsigned char *)buf + strlen(buf), &back)) {
        back = strtod(buf, NULL);
    }
    return back != d;
}

/* A number as jansson's integer or real prints through ad_json_dump. */
static int emit_number(scan_t *sc, const unsigned char *q, size_t n, int real)
{
    char buf[AD_JSON_REAL_MAX];
    double d;

    if (!real) {
        if (n == 2 && q[0] == '-' && q[1] == '0') {
            emit(sc, "0", 1);
        }
        else {
            emit(sc, q, n);
        }
        return 0;
    }
    if (real_value(sc, q, n, &d) < 0) {
        return -1;
    }
    if (real_is_canonical(sc, q, n, d)) {
        emit(sc, q, n);
        return 0;
    }
    emit(sc, buf, ad_json_real_text(d, buf));
    return 0;
}

/* The trie node a key leads to from start (-1: no rule names it). */
static int key_node(scan_t *sc, int start, const unsigned char *raw, size_t len, int esc)
{
    const char *k = (const char *)raw;
    size_t i, n = len, mark = sc->s->ndec;
    int node = start;

    if (esc) {
        k = decode(sc->s, raw, len, &n);
        sc->s->ndec = mark; /* only needed for the walk below */
    }
    for (i = 0; i < n && node >= 0; i++) {
        node = node_step(sc->m, node, (unsigned char)k[i]);
    }
    return node;
}

/* A copy of the number's text, NUL-terminated, for strtoll/strtod. */
static const char *number_text(scan_t *sc, const unsigned char *q, size_t n)
{
    char *t = sc->s->dec + sc->s->ndec;

    memcpy(t, q, n);
    t[n] = '\0';
    return t;
}

static int int_value(scan_t *sc, const unsigned char *q, size_t n, json_int_t *out)
{
    char *e;

    errno = 0;
    *out = strtoll(number_text(sc, q, n), &e, 10);
    return errno == ERANGE ? -1 : 0;
}

#if LDBL_MANT_DIG == 64 && (defined(__x86_64__) || defined(__i386__))
/* strtod's result, computed quickly when that is provably the same: up to 19
 * significant digits and a power of ten up to 27 are exact in x87 extended
 * precision, so one multiplication or division rounds once to 64 bits; the
 * rounding to 53 bits then equals strtod's unless the 64-bit result lies
 * within one unit of a halfway point between two doubles (the 11 dropped bits
 * near 0x400), where strtod decides. 0 when it cannot tell. */
/* Whether long double really carries 64 bits now: not under valgrind (which
 * computes it in double) or after something lowered the x87 precision. */
static int extended_precision(void)
{
    volatile long double x = 1.0L;

    x += LDBL_EPSILON;
    return x != 1.0L;
}

static int fast_real(const unsigned char *q, const unsigned char *end, double *out)
{
    static const long double pow10[] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,
                                        1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
                                        1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
                                        1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
    uint64_t mant = 0, bits;
    int neg = 0, sig = 0, e10 = 0, eneg = 0, ex = 0;
    long double r;

    if (*q == '-') {
        neg = 1, q++;
    }
    for (; q < end && (*q == '.' || (*q >= '0' && *q <= '9')); q++) {
        if (*q == '.') {
            eneg = 1; /* digits after the point lower the exponent */
            continue;
        }
        if (mant || *q != '0') {
            if (++sig > 19) {
                return 0;
            }
            mant = mant * 10 + (uint64_t)(*q - '0');
        }
        e10 -= eneg;
    }
    if (q < end) { /* exponent */
        int esign = 1;
        q++;
        if (*q == '+' || *q == '-') {
            esign = *q++ == '-' ? -1 : 1;
        }
        for (; q < end && ex < 1000; q++) {
            ex = ex * 10 + (*q - '0');
        }
        e10 += esign * ex;
    }
    if (!mant) {
        *out = neg ? -0.0 : 0.0;
        return 1;
    }
    if (e10 < -27 || e10 > 27) {
        return 0;
    }
    r = e10 >= 0 ? (long double)mant * pow10[e10] : (long double)mant / pow10[-e10];
    memcpy(&bits, &r, sizeof(bits)); /* the 64-bit significand comes first */
    bits &= 0x7FF;
    if (bits >= 0x3FF && bits <= 0x401) {
        return 0;
    }
    *out = (double)(neg ? -r : r);
    return 1;
}
#else
static int extended_precision(void)
{
    return 0;
}

static int fast_real(const unsigned char *q, const unsigned char *end, double *out)
{
    (void)q, (void)end, (void)out;
    return 0;
}
#endif

static int real_value(scan_t *sc, const unsigned char *q, size_t n, double *out)
{
    char *e;

    if (sc->fast_reals && fast_real(q, q + n, out)) {
        return 0;
    }
    errno = 0;
    *out = strtod(number_text(sc, q, n), &e);
    return ((*out == HUGE_VAL || *out == -HUGE_VAL) && errno == ERANGE) ? -1 : 0;
}

/* Can this real reach DBL_MAX? Below 10^(integer digits + exponent) it
 * cannot, so strtod runs only on the rare ones that might (jansson rejects
 * an overflowing real even where no rule looks). */
static int real_may_overflow(int intdig, const unsigned char *exp, const unsigned char *end)
{
    long e = 0;
    int neg = 0;

    if (!exp) {
        return intdig > 300;
    }
    exp++;
    if (*exp == '+' || *exp == '-') {
        neg = *exp++ == '-';
    }
    while (exp < end && *exp >= '0' && *exp <= '9' && e < 100000) {
        e = e * 10 + (*exp++ - '0');
    }
    return intdig + (neg ? -e : e) > 300;
}

/* A number as jansson lexes it; recorded at path when path >= 0. */
static int scan_number(scan_t *sc, int path)
{
    const unsigned char *q = sc->p, *exp;
    ad_json_number_t num;
    int intdig, real;
    ad_val_t v;

    if (!ad_json_number_lex(q, sc->end, &num)) {
        return -1;
    }
    sc->p = q + num.len;
    exp = num.exp < 0 ? NULL : q + num.exp;
    intdig = num.intdig;
    real = num.real;
    if (sc->emit) {
        if (!real && intdig >= 18 && int_value(sc, q, (size_t)(sc->p - q), &v.i) < 0) {
            return -1;
        }
        return emit_number(sc, q, (size_t)(sc->p - q), real);
    }
    if (path < 0) {
        if (real) {
            return real_may_overflow(intdig, exp, sc->p)
                       ? real_value(sc, q, (size_t)(sc->p - q), &v.d)
                       : 0;
        }
        return intdig >= 18 ? int_value(sc, q, (size_t)(sc->p - q), &v.i) : 0;
    }
    memset(&v, 0, sizeof(v));
    v.type = real ? AD_V_REAL : AD_V_INT;
    if ((real ? real_value(sc, q, (size_t)(sc->p - q), &v.d)
              : int_value(sc, q, (size_t)(sc->p - q), &v.i)) < 0) {
        return -1;
    }
    ad_occs_add(&sc->s->occ, path, &v);
    return 0;
}

static int scan_literal(scan_t *sc, const char *word, size_t n, int type, int path)
{
    ad_val_t v;

    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, word, n) != 0) {
        return -1;
    }
    sc->p += n;
    if (sc->emit) {
        emit(sc, word, n);
    }
    if (path >= 0) {
        memset(&v, 0, sizeof(v));
        v.type = type;
        ad_occs_add(&sc->s->occ, path, &v);
    }
    return 0;
}

static int scan_string_value(scan_t *sc, int path)
{
    const unsigned char *raw;
    size_t rawlen;
    int esc;
    ad_val_t v;

    if (scan_string(sc, &raw, &rawlen, &esc) < 0) {
        return -1;
    }
    if (sc->emit) {
        emit_string(sc, raw, rawlen, esc);
    }
    if (path >= 0) {
        memset(&v, 0, sizeof(v));
        v.type = AD_V_STRING;
        if (esc) {
            v.s = decode(sc->s, raw, rawlen, &v.n);
        }
        else {
            v.s = (const char *)raw;
            v.n = rawlen;
        }
        ad_occs_add(&sc->s->occ, path, &v);
    }
    return 0;
}

static int scan_value(scan_t *sc, int node);

/* Forget the leaves an earlier same-named key left: jansson keeps the last
 * value of a repeated key. Returns the slot tracking this key. */
static int key_slot(scan_t *sc, int base, int node)
{
    ad_match_scratch_t *s = sc->s;
    int i, o;

    for (i = base; i < s->ndup; i++) {
        if (s->dup[i].node == node) {
            for (o = s->dup[i].o0; o < s->dup[i].o1; o++) {
                s->occ.occ[o].dead = 1;
            }
            return i;
        }
    }
    if (!reserve(&s->dup, &s->capdup, s->ndup + 1, sizeof(*s->dup))) {
        s->occ.failed = 1;
        return -1;
    }
    s->dup[s->ndup].node = node;
    return s->ndup++;
}

static int scan_member(scan_t *sc, int start, int base, int kbase)
{
    const unsigned char *raw;
    size_t rawlen;
    int esc, node = -1, slot = -1, r;

    if (sc->p >= sc->end || *sc->p != '"' || scan_string(sc, &raw, &rawlen, &esc) < 0) {
        return -1;
    }
    if (sc->emit && canonical_key(sc, kbase, raw, rawlen, esc) < 0) {
        return UNSURE;
    }
    if (start >= 0) {
        node = key_node(sc, start, raw, rawlen, esc);
    }
    skip_ws(sc);
    if (sc->p >= sc->end || *sc->p != ':') {
        return -1;
    }
    sc->p++;
    if (node >= 0 && (slot = key_slot(sc, base, node)) >= 0) {
        sc->s->dup[slot].o0 = sc->s->occ.nocc;
    }
    r = scan_value(sc, node);
    if (slot >= 0) {
        sc->s->dup[slot].o1 = sc->s->occ.nocc;
    }
    return r;
}

/* An object whose keys start at trie node start (-1: skip it all). */
static int scan_object(scan_t *sc, int start)
{
    int base = sc->s->ndup, kbase = sc->s->nkeys, r;

    sc->p++;
    if (sc->emit) {
        emit(sc, "{", 1);
    }
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == '}') {
        sc->p++;
        if (sc->emit) {
            emit(sc, "}", 1);
        }
        return 0;
    }
    for (;;) {
        if ((r = scan_member(sc, start, base, kbase)) < 0) {
            return r;
        }
        skip_ws(sc);
        if (sc->p >= sc->end) {
            return -1;
        }
        if (*sc->p == '}') {
            sc->p++;
            sc->s->ndup = base;
            sc->s->nkeys = kbase;
            if (sc->emit) {
                emit(sc, "}", 1);
            }
            return 0;
        }
        if (*sc->p++ != ',') {
            return -1;
        }
        if (sc->emit) {
            emit(sc, ",", 1);
        }
        skip_ws(sc);
    }
}

/* Elements that are objects or arrays carry their position; plain values
 * do not (as ad_pattern's walk and event-ruler do). */
static int scan_array(scan_t *sc, int node)
{
    int id = node >= 0 ? ad_occs_array(&sc->s->occ) : -1, idx = 0, nested, r;

    sc->p++;
    if (sc->emit) {
        emit(sc, "[", 1);
    }
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == ']') {
        sc->p++;
        if (sc->emit) {
            emit(sc, "]", 1);
        }
        return 0;
    }
    for (;; idx++) {
        skip_ws(sc);
        nested = node >= 0 && sc->p < sc->end && (*sc->p == '{' || *sc->p == '[');
        if (nested) {
            ad_occs_enter(&sc->s->occ, id, idx);
        }
        r = scan_value(sc, node);
        if (nested) {
            ad_occs_leave(&sc->s->occ);
        }
        if (r < 0) {
            return r;
        }
        skip_ws(sc);
        if (sc->p >= sc->end) {
            return -1;
        }
        if (*sc->p == ']') {
            sc->p++;
            if (sc->emit) {
                emit(sc, "]", 1);
            }
            return 0;
        }
        if (*sc->p++ != ',') {
            return -1;
        }
        if (sc->emit) {
            emit(sc, ",", 1);
        }
    }
}

/* A value at trie node node (-1: validate only). */
static int scan_value(scan_t *sc, int node)
{
    int path = node >= 0 ? sc->m->nodes[node].path : -1, r;
    unsigned char first;

    skip_ws(sc);
    if (sc->p >= sc->end || ++sc->depth > MAX_DEPTH) {
        return -1;
    }
    if (sc->depth > sc->maxdepth) {
        sc->maxdepth = sc->depth;
    }
    switch ((first = *sc->p)) {
    case '{':
        r = scan_object(sc, node >= 0 ? sc->m->nodes[node].dot : -1);
        break;
    case '[':
        r = scan_array(sc, node);
        break;
    case '"':
        r = scan_string_value(sc, path);
        break;
    case 't':
        r = scan_literal(sc, "true", 4, AD_V_TRUE, path);
        break;
    case 'f':
        r = scan_literal(sc, "false", 5, AD_V_FALSE, path);
        break;
    case 'n':
        r = scan_literal(sc, "null", 4, AD_V_NULL, path);
        break;
    default:
        r = (*sc->p == '-' || (*sc->p >= '0' && *sc->p <= '9')) ? scan_number(sc, path) : -1;
        break;
    }
    /* jansson's lexer puts back the byte after a number or a literal, and a
     * NUL put back is lost: json_loadb reads "[1\0]" as [1]. So do we. */
    if (!r && first != '{' && first != '[' && first != '"' && sc->p < sc->end && *sc->p == '\0') {
        sc->p++;
    }
    sc->depth--;
    return r;
}

/* The whole text as json_loadb(flags 0) takes it: an object or an array,
 * then only whitespace. 1 for an object (the only thing that can match). */
static int scan_event(scan_t *sc)
{
    int r, obj;

    skip_ws(sc);
    if (sc->p >= sc->end || (*sc->p != '{' && *sc->p != '[')) {
        return -1;
    }
    obj = *sc->p == '{';
    sc->depth = 1;
    r = obj ? scan_object(sc, 0) : scan_array(sc, -1);
    skip_ws(sc);
    if (r < 0 || sc->p != sc->end) {
        return -1;
    }
    return obj;
}

/* ------------------------------------------------------------------ */
/* Candidates and evaluation                                           */
/* ------------------------------------------------------------------ */

static void add_candidate(ad_match_scratch_t *s, int r)
{
    if (s->stamp[r] == s->gen) {
        return;
    }
    s->stamp[r] = s->gen;
    if (!reserve(&s->cand, &s->capcand, s->ncand + 1, sizeof(int))) {
        s->occ.failed = 1;
        return;
    }
    s->cand[s->ncand++] = r;
}

static void add_rules(ad_match_scratch_t *s, const int *rules, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        add_candidate(s, rules[i]);
    }
}

static void exact_candidates(const ad_match_set_t *m, ad_match_scratch_t *s, int path,
                             const ad_occ_t *o)
{
    uint32_t h = hash_of(path, o->v.s, o->v.n);
    uint32_t i;

    for (i = h & m->mask; m->tab[i].nr; i = (i + 1) & m->mask) {
        if (m->tab[i].hash == h && m->tab[i].path == path && m->tab[i].n == o->v.n &&
            memcmp(m->tab[i].s, o->v.s, o->v.n) == 0) {
            add_rules(s, m->exact_rules + m->tab[i].r0, m->tab[i].nr);
            return;
        }
    }
}

static void path_candidates(const ad_match_set_t *m, ad_match_scratch_t *s, int path)
{
    const ad_occ_t *occ = s->occ.occ;
    int oi, present = 0;

    for (oi = s->occ.head[path]; oi >= 0; oi = occ[oi].next) {
        if (occ[oi].dead) {
            continue;
        }
        present = 1;
        if (!m->exact_path[path]) {
            break;
        }
        if (occ[oi].v.type == AD_V_STRING) {
            exact_candidates(m, s, path, &occ[oi]);
        }
    }
    if (present) {
        add_rules(s, m->path_rules + m->path_r0[path], m->path_nr[path]);
    }
}

static int int_cmp(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static void collect_candidates(const ad_match_set_t *m, ad_match_scratch_t *s)
{
    int i;

    /* memset and qsort take no NULL, even for no bytes: a scratch that
     * never saw a candidate has no buffers yet. */
    if (++s->gen == 0) {
        if (s->stamp) {
            memset(s->stamp, 0, sizeof(unsigned) * (size_t)s->capstamp);
        }
        s->gen = 1;
    }
    s->ncand = 0;
    add_rules(s, m->always, m->nalways);
    for (i = 0; i < m->nwatched; i++) {
        path_candidates(m, s, m->watched[i]);
    }
    if (s->ncand > 1) {
        qsort(s->cand, (size_t)s->ncand, sizeof(int), int_cmp);
    }
}

int ad_match_event(const ad_match_set_t *m, const char *json, size_t len, ad_match_scratch_t *s,
                   void (*on_match)(void *baton, int i), void *baton)
{
    scan_t sc;
    int i, r, matched = 0;

    if (!scratch_prepare(m, s, len)) {
        return AD_MATCH_TOO_COMPLEX; /* out of memory */
    }
    sc.p = (const unsigned char *)json;
    sc.end = sc.p + len;
    sc.m = m;
    sc.s = s;
    sc.depth = sc.maxdepth = 0;
    sc.fast_reals = extended_precision();
    sc.emit = sc.oom = 0;
    if ((r = scan_event(&sc)) <= 0) {
        return r;
    }
    collect_candidates(m, s);
    if (s->occ.failed) {
        return AD_MATCH_TOO_COMPLEX;
    }
    for (i = 0; i < s->ncand; i++) {
        if (ad_pattern_eval(m->pats[s->cand[i]], &s->occ)) {
            matched++;
            if (on_match) {
                on_match(baton, s->cand[i]);
            }
        }
        else if (s->occ.failed) {
            return AD_MATCH_TOO_COMPLEX; /* callers ignore what on_match got */
        }
    }
    return matched;
}

int ad_match_canonical(apr_pool_t *p, const char *json, size_t len, ad_match_scratch_t *s,
                       char **out, size_t *outlen)
{
    scan_t sc;
    int r;

    if (!scratch_decode_room(s, len)) {
        return AD_MATCH_UNSURE;
    }
    s->nout = 0;
    s->nkeys = 0;
    memset(&sc, 0, sizeof(sc));
    sc.p = (const unsigned char *)json;
    sc.end = sc.p + len;
    sc.s = s;
    sc.fast_reals = extended_precision();
    sc.emit = 1;
    skip_ws(&sc);
    if (sc.p >= sc.end || *sc.p != '{') {
        return 0; /* invalid, or valid but not an object: not a detail */
    }
    sc.depth = 1;
    r = scan_object(&sc, -1);
    skip_ws(&sc);
    if (r == UNSURE || sc.oom) {
        return AD_MATCH_UNSURE;
    }
    if (r < 0 || sc.p != sc.end) {
        return 0;
    }
    *out = apr_palloc(p, s->nout + 1);
    memcpy(*out, s->out, s->nout);
    (*out)[s->nout] = '\0';
    *outlen = s->nout;
    s->canon_depth = sc.maxdepth > 1 ? sc.maxdepth : 1;
    return 1;
}

int ad_match_canonical_depth(const ad_match_scratch_t *s)
{
    return s->canon_depth;
}
