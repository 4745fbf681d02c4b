/* What ad_pattern.c shares with ad_match.c and nothing else: the occurrence
 * store a walk of an event fills (the leaf values of the fields a pattern
 * names, with their array memberships) and the evaluation of a compiled
 * pattern on it. ad_pattern_match fills the store from a jansson tree,
 * ad_match from JSON text; both then run the same evaluation, so they agree
 * on every pattern and event. Pure: APR and jansson only. */
#ifndef AD_PATTERN_INT_H
#define AD_PATTERN_INT_H

#include <stdint.h>

#include "ad_pattern.h"

/* A leaf value of the event, as jansson would hold it. */
enum { AD_V_STRING, AD_V_INT, AD_V_REAL, AD_V_TRUE, AD_V_FALSE, AD_V_NULL };

typedef struct {
    int type;
    const char *s; /* AD_V_STRING: decoded bytes (not NUL-terminated) */
    size_t n;
    json_int_t i; /* AD_V_INT */
    double d;     /* AD_V_REAL */
} ad_val_t;

/* Membership of a leaf in one element (idx) of one array (arr) of the event:
 * event-ruler's ArrayMembership. */
typedef struct {
    int arr, idx;
} ad_mem_t;

typedef struct {
    ad_val_t v;
    int next;   /* next occurrence of the same path, -1 at the end */
    int m0, mn; /* its memberships in ad_occs_t.mem */
    int num;    /* 0 unknown, 1 comparable number, 2 not */
    int dead;   /* replaced by a later duplicate key (jansson keeps the last) */
    uint64_t key;
} ad_occ_t;

#define AD_OCC_INLINE  32
#define AD_MEM_INLINE  64
#define AD_HEAD_INLINE 32
#define AD_HIT_INLINE  64

/* Every leaf keeps the memberships of all the arrays around it, so arrays
 * nested in arrays make them leaves x depth: a 44 KB event could take 300
 * MB. Past this many (8 MiB of them) the event is refused, not matched. */
#define AD_OCCS_MAX_MEM (1 << 20)

/* Fields of one pattern must take their values from the same element of an
 * array they share, which is a search: a 130 KB event shaped against a
 * four-field rule took 5.6 s. Work is charged in units of about one simple
 * comparison; past either budget the event is refused too. The search's
 * tries, by the memberships they compare, are charged per event, this many
 * (about 0.1 s): the search can grow faster than the event. */
#define AD_OCCS_MAX_STEPS (1 << 22)

/* The tests of values against a rule's fields (once per sub-rule) are
 * charged per rule, this many (about 0.2-0.5 s): they grow with the event
 * times the rule's $or combinations, which a TestEventPattern caller
 * chooses, and a 1 MiB event of 42,000 values against an anything-but
 * list of 100 is 4M units of legitimate, linear work. Many configured
 * rules each testing a big array is the configuration's own work. */
#define AD_OCCS_MAX_TESTS (1 << 25)

/* The leaves of one event, per path index. Starts on inline buffers, grows
 * with malloc; reusable across events (ad_occs_reset). */
typedef struct {
    ad_occ_t *occ;
    int nocc, capocc;
    ad_mem_t *mem;
    int nmem, capmem;
    ad_mem_t *cur; /* memberships of the element being walked */
    int ncur, capcur;
    int *head; /* path -> first occurrence, -1 when none */
    int caphead;
    int arrays, maxmem, failed;
    long steps; /* work units of the search, this event */
    long tests; /* work units of tests, this rule (ad_pattern_eval) */
    int *hit;   /* occurrences that hit the fields of the sub-rule tried */
    int caphit;
    ad_occ_t occ0[AD_OCC_INLINE];
    ad_mem_t mem0[AD_MEM_INLINE];
    ad_mem_t cur0[AD_MEM_INLINE];
    int head0[AD_HEAD_INLINE];
    int hit0[AD_HIT_INLINE];
} ad_occs_t;

void ad_occs_init(ad_occs_t *o);
/* Empty the store for an event of a pattern (set) with npaths paths; 0 when
 * memory ran out. */
int ad_occs_reset(ad_occs_t *o, int npaths);
void ad_occs_free(ad_occs_t *o);
void ad_occs_add(ad_occs_t *o, int path, const ad_val_t *v);
/* A new array's id, then enter/leave each of its object or array elements. */
int ad_occs_array(ad_occs_t *o);
void ad_occs_enter(ad_occs_t *o, int arr, int idx);
void ad_occs_leave(ad_occs_t *o);

/* 1 when the pattern matches the event whose leaves are in o; 0 when
 * o->failed (the caller reports that the event could not be matched). */
int ad_pattern_eval(const ad_pattern_t *pat, ad_occs_t *o);

/* The dotted field paths a pattern names, by its path index; returns how
 * many. */
int ad_pattern_path_names(apr_pool_t *p, const ad_pattern_t *pat, const char ***names);

/* A copy of pat for evaluation only, its path indexes replaced by map[i]
 * (indexes into a larger store shared by several patterns). */
ad_pattern_t *ad_pattern_remap(apr_pool_t *p, const ad_pattern_t *pat, const int *map);

/* What an event needs for one sub-rule ($or branch) to be able to match:
 * nothing (ALWAYS: it has only {"exists": false} fields), a leaf at a path
 * (PATH), or a string leaf at a path equal to one of vals (EXACT). Used to
 * find candidate rules; the full evaluation still decides. */
enum { AD_ANCHOR_ALWAYS, AD_ANCHOR_PATH, AD_ANCHOR_EXACT };

typedef struct {
    int kind, path, nvals;
    const char **vals;
    const size_t *lens;
} ad_anchor_t;

/* One anchor per sub-rule; returns how many. */
int ad_pattern_anchors(apr_pool_t *p, const ad_pattern_t *pat, ad_anchor_t **out);

#endif
