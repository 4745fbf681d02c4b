/* EventBridge event patterns: compiled once at config time, matched per event.
 * Pure: APR and jansson only. */
#ifndef AD_PATTERN_H
#define AD_PATTERN_H

#include <apr_pools.h>
#include <jansson.h>

typedef struct ad_pattern_t ad_pattern_t;

/* The prefix AWS puts before every InvalidEventPatternException reason. */
#define AD_PATTERN_ERR_PREFIX "Event pattern is not valid. Reason: "

/* Compile a pattern from its JSON text (len bytes, need not be
 * NUL-terminated). On success returns the compiled pattern, allocated in p.
 * On failure returns NULL and sets *reason to AWS's reason text (without
 * AD_PATTERN_ERR_PREFIX), allocated in p. */
ad_pattern_t *ad_pattern_compile(apr_pool_t *p, const char *json, size_t len, const char **reason);

/* 1 when the event (a JSON object) matches the pattern, 0 otherwise, -1
 * when it cannot tell: the event is beyond the matcher's limits (values
 * inside arrays: AD_OCCS_MAX_MEM, AD_OCCS_MAX_STEPS) or memory ran out.
 * Never allocates from a pool the caller does not give; thread-safe on a
 * shared compiled pattern. */
int ad_pattern_match(const ad_pattern_t *pat, const json_t *event);

/* 1 when a pattern's string value s (n bytes) matches as an IP address
 * (every spelling of it: "10.0.0.1" matches "010.0.0.1"), as event-ruler
 * compiles one, rather than as its exact text. */
int ad_pattern_value_is_address(const char *s, size_t n);

/* TestEventPattern's check of the event: a JSON object carrying id, account,
 * source, time, region and detail-type. 1 when valid. */
int ad_pattern_event_is_valid(const json_t *event);

#endif
