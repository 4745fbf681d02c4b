/* Many compiled patterns matched against an event's JSON text in one pass:
 * the text is scanned once, only the fields some pattern names are kept,
 * and only the rules those fields can satisfy are evaluated. Agrees with
 * ad_pattern_match on every pattern and event. Pure: APR and jansson only. */
#ifndef AD_MATCH_H
#define AD_MATCH_H

#include <stddef.h>

#include <apr_pools.h>

#include "ad_pattern.h"

typedef struct ad_match_set_t ad_match_set_t;

/* Per-thread working memory for ad_match_event; grows to the largest event
 * seen and is freed with p. Never shared by two threads at once. */
typedef struct ad_match_scratch_t ad_match_scratch_t;

/* Index pats[0..n) once (config time), allocated in p; a NULL pattern never
 * matches. The patterns must outlive the set. */
ad_match_set_t *ad_match_compile(apr_pool_t *p, ad_pattern_t *const *pats, int n);

ad_match_scratch_t *ad_match_scratch_make(apr_pool_t *p);

/* Call on_match(baton, i) for every i whose pattern matches the event given
 * as JSON text (len bytes, need not be NUL-terminated), in increasing i.
 * Returns how many matched; -1 when the text is not what json_loadb accepts
 * (nested deeper than it takes, too: nothing is reported); or
 * AD_MATCH_TOO_COMPLEX when the event is beyond the matcher's limits
 * (AD_OCCS_MAX_MEM, AD_OCCS_MAX_STEPS) or memory ran out, when the caller
 * must drop what on_match was told. The set is only read: one set can
 * serve many threads, each with its own scratch. */
#define AD_MATCH_TOO_COMPLEX (-2)
int ad_match_event(const ad_match_set_t *m, const char *json, size_t len, ad_match_scratch_t *s,
                   void (*on_match)(void *baton, int i), void *baton);

/* Whether a pattern of m names the top-level field key or a field inside
 * it. When none does, that field's value cannot change what matches. */
int ad_match_names_field(const ad_match_set_t *m, const char *key);

/* The JSON object in json (len bytes) written as ad_json_dump writes the
 * tree json_loadb makes of it (compact, keys in their order, strings escaped
 * and numbers printed its way), in *out (NUL-terminated, allocated in p): the
 * same bytes, without building the tree. Returns 1 when done; 0 when
 * json_loadb rejects the text or it is not an object; AD_MATCH_UNSURE when
 * only the tree can tell (an object repeats a key, or has more than 256). */
#define AD_MATCH_UNSURE (-1)
int ad_match_canonical(apr_pool_t *p, const char *json, size_t len, ad_match_scratch_t *s,
                       char **out, size_t *outlen);

/* How deep the text of the last ad_match_canonical that returned 1 nests,
 * counted as the matcher counts: the object is 1, its values 2, and one
 * more per level of objects or arrays. Texts deeper than
 * AD_MATCH_MAX_DEPTH are refused, as json_loadb refuses them; inside an
 * envelope each level is one deeper. */
#define AD_MATCH_MAX_DEPTH 2048
int ad_match_canonical_depth(const ad_match_scratch_t *s);

#endif
