#include "ad_ratelimit.h"

/* 5 % more than 1/limit between starts: requests that leave on time but
 * arrive a few milliseconds apart still fit the limit at the target. */
void ad_ratelimit_init(ad_ratelimit_t *rl, int per_second)
{
    rl->spacing = per_second > 0 ? (apr_interval_time_t)(1050000.0 / per_second) : 0;
    rl->next = 0;
}

int ad_ratelimit_take(ad_ratelimit_t *rl, apr_time_t now)
{
    if (now < rl->next) {
        return 0;
    }
    rl->next = now + rl->spacing;
    return 1;
}
