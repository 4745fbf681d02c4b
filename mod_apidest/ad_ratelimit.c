#include "ad_ratelimit.h"

/* 5 % more than 1/limit between starts: requests that leave on time but
 * arrive a few milliseconds apart still fit the limit at the target. The
 * spacing is rounded up: truncated to whole microseconds, it let through
 * more than the limit above 52,500 per second. */
void ad_ratelimit_init(ad_ratelimit_t *rl, int per_second)
{
    rl->spacing =
        per_second > 0 ? (apr_interval_time_t)((1050000 + per_second - 1) / per_second) : 0;
    rl->next = 0;
}

int ad_ratelimit_ready(ad_ratelimit_t *rl, apr_time_t now)
{
    /* A slot more than one spacing ahead means the clock was set back: the
     * destination would otherwise send nothing for as long as it moved. */
    if (rl->next - now > rl->spacing) {
        rl->next = now;
    }
    return now >= rl->next;
}

int ad_ratelimit_take(ad_ratelimit_t *rl, apr_time_t now)
{
    if (!ad_ratelimit_ready(rl, now)) {
        return 0;
    }
    rl->next = now + rl->spacing;
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
