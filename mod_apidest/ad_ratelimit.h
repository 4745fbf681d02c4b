/* InvocationRateLimit per destination: requests are spaced so that no
 * one-second window ever holds more than the limit (no burst), with a small
 * margin for timing jitter between here and the target. Pure. */
#ifndef AD_RATELIMIT_H
#define AD_RATELIMIT_H

#include <apr_time.h>

typedef struct ad_ratelimit_t {
    apr_interval_time_t spacing;
    apr_time_t next; /* earliest start of the next request */
} ad_ratelimit_t;

void ad_ratelimit_init(ad_ratelimit_t *rl, int per_second);
/* 1 when a request may start at now (now is the wall clock, always read
 * fresh: one earlier than the last slot taken means it was set back). */
int ad_ratelimit_ready(ad_ratelimit_t *rl, apr_time_t now);
/* 1 (and the slot is taken) when a request may start at now. */
int ad_ratelimit_take(ad_ratelimit_t *rl, apr_time_t now);

/* The backoff's cap: cap_sec, never below base_sec. */
apr_interval_time_t ad_backoff_cap(int base_sec, int cap_sec);

/* The wait before retry number attempts (1 = the first retry): exponential
 * backoff with full jitter, uniform below min(cap, base * 2^(attempts-1))
 * as r (uniform over 32 bits) falls, at least min_delay; a Retry-After
 * asks for more, within ad_backoff_cap. */
apr_interval_time_t ad_backoff_delay(int base_sec, int cap_sec, apr_uint32_t attempts,
                                     apr_interval_time_t retry_after, apr_uint32_t r,
                                     apr_interval_time_t min_delay);

#endif
