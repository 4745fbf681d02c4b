#include "ad_ratelimit.h"

/* 5 % more than 1/limit between starts: requests that leave on time but
 * arrive a few milliseconds apart still fit the limit at the target. The
 * spacing is rounded up: truncated to whole microseconds, it let through
 * more than the limit above 52,500 per second.
 *
 * Starts may come up to BURST_SPAN early, a burst of that span's worth.
 * The callers wait in whole milliseconds, so with single starts a start
 * held for a few microseconds waited a millisecond or more: one
 * destination limited to 1,000,000 per second drained about 23,000
 * records a second where it drained 30,000-46,000 with no limiter
 * (bench/delivery). Up to 525 per second the burst is a single start, as
 * before. Above, the starts a burst adds (at most 0.2 % of the limit)
 * stay within the 5 % margin: no one-second window holds more than the
 * limit. */
#define BURST_SPAN 2000 /* us */

void ad_ratelimit_init(ad_ratelimit_t *rl, int per_second)
{
    rl->spacing =
        per_second > 0 ? (apr_interval_time_t)((1050000 + per_second - 1) / per_second) : 0;
    rl->burst = rl->spacing > 0 ? (BURST_SPAN + rl->spacing - 1) / rl->spacing - 1 : 0;
    rl->burst *= rl->spacing;
    rl->next = 0;
}

apr_time_t ad_ratelimit_when(const ad_ratelimit_t *rl)
{
    return rl->next - rl->burst;
}

int ad_ratelimit_ready(ad_ratelimit_t *rl, apr_time_t now)
{
    /* A slot further ahead than a start could have set it means the clock
     * was set back: the destination would otherwise send nothing for as
     * long as it moved. */
    if (rl->next - now > rl->spacing + rl->burst) {
        rl->next = now;
    }
    return now >= ad_ratelimit_when(rl);
}

int ad_ratelimit_take(ad_ratelimit_t *rl, apr_time_t now)
{
    if (!ad_ratelimit_ready(rl, now)) {
        return 0;
    }
    rl->next = (rl->next > now ? rl->next : now) + rl->spacing;
    return 1;
}

apr_interval_time_t ad_backoff_cap(int base_sec, int cap_sec)
{
    return apr_time_from_sec(cap_sec < base_sec ? base_sec : cap_sec);
}

apr_interval_time_t ad_backoff_delay(int base_sec, int cap_sec, apr_uint32_t attempts,
                                     apr_interval_time_t retry_after, apr_uint32_t r,
                                     apr_interval_time_t min_delay)
{
    apr_interval_time_t cap = ad_backoff_cap(base_sec, cap_sec);
    apr_interval_time_t ceiling = apr_time_from_sec(base_sec);
    apr_interval_time_t delay;

    while (attempts-- > 1 && ceiling < cap) {
        ceiling *= 2;
    }
    if (ceiling > cap) {
        ceiling = cap;
    }
    delay = (apr_interval_time_t)((double)ceiling * (r / 4294967296.0));
    if (retry_after > delay) {
        delay = retry_after < cap ? retry_after : cap;
    }
    return delay < min_delay ? min_delay : delay;
}
