/* InvocationRateLimit per destination: requests are spaced so that no
 * one-second window ever holds more than the limit (bursts of at most 2 ms
 * of the rate, a single request up to 525 per second), with a small
 * margin for timing jitter between here and the target. Pure. */
#ifndef AD_RATELIMIT_H
#define AD_RATELIMIT_H

#include <apr_time.h>

typedef struct ad_ratelimit_t {
    apr_interval_time_t spacing;
    apr_interval_time_t burst; /* how early a start may come */
    apr_time_t next;           /* the next start's slot: it may come burst early */
} ad_ratelimit_t;

void ad_ratelimit_init(ad_ratelimit_t *rl, int per_second);
/* 1 when a request may start at now (now is the wall clock, always read
 * fresh: one earlier than the last slot taken means it was set back). */
int ad_ratelimit_ready(ad_ratelimit_t *rl, apr_time_t now);
/* 1 (and the slot is taken) when a request may start at now. */
int ad_ratelimit_take(ad_ratelimit_t *rl, apr_time_t now);
/* The earliest time the next request may start. */
apr_time_t ad_ratelimit_when(const ad_ratelimit_t *rl);

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
