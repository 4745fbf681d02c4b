/* The maintenance tick's optional APR hook: other modules run their own work
 * on apidestd's tick (every ApiDestMaintenanceInterval) with
 *   APR_OPTIONAL_HOOK(apidest, maintenance, my_fn, NULL, NULL, APR_HOOK_MIDDLE);
 * in their register_hooks. The hook runs in the apidestd process, on its
 * maintenance thread, with a pool cleared after every tick; return
 * AD_MAINT_OK or AD_MAINT_DECLINED. */
#ifndef AD_MAINT_H
#define AD_MAINT_H

#include <apr_pools.h>
#include <apr_time.h>
#include <apr_hooks.h>
#include <apr_optional_hooks.h>

#define AD_MAINT_OK       0
#define AD_MAINT_DECLINED -1

#define AD_DECLARE(type)        type
#define AD_DECLARE_NONSTD(type) type
#define AD_DECLARE_DATA

APR_DECLARE_EXTERNAL_HOOK(apidest, AD, int, maintenance, (apr_pool_t * p, apr_time_t now))

/* Run every registered maintenance function: AD_MAINT_OK unless one failed. */
int ad_maint_run_hooks(apr_pool_t *p, apr_time_t now);

#endif
