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
