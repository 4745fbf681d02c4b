/* EventBridge scheduled-rule expressions: rate() and cron(), parsed once at
 * config time, asked for the next fire time by the maintenance tick.
 * Pure: APR and libc only. All times are UTC. */
#ifndef AD_SCHEDULE_H
#define AD_SCHEDULE_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct ad_schedule_t ad_schedule_t;

/* The ValidationException message AWS gives for every invalid expression. */
#define AD_SCHEDULE_ERR_INVALID "Parameter ScheduleExpression is not valid."

/* Parse "rate(value unit)" or "cron(min hour dom month dow year)".
 * On success returns the schedule, allocated in p. On error returns NULL,
 * sets *err to AD_SCHEDULE_ERR_INVALID and, when detail is not NULL, *detail
 * to a more specific reason for operators (allocated in p). */
ad_schedule_t *ad_schedule_parse(apr_pool_t *p, const char *expr, const char **err,
                                 const char **detail);

/* The first fire time strictly after `after`, always at second 0 of a
 * minute. A rate() fires at anchor + k * period for integer k >= 1, where
 * anchor (e.g. the rule's creation time) is truncated to the minute.
 * Returns 0 when there is no further fire time (cron year range exhausted,
 * or beyond what apr_time_t can hold); hence 1970-01-01T00:00:00Z itself
 * is never returned. Thread-safe; never allocates. */
apr_time_t ad_schedule_next(const ad_schedule_t *s, apr_time_t anchor, apr_time_t after);

/* 1 for rate(), 0 for cron(). */
int ad_schedule_is_rate(const ad_schedule_t *s);

#endif
