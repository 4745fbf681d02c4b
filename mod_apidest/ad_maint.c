#include "ad_maint.h"

APR_IMPLEMENT_OPTIONAL_HOOK_RUN_ALL(apidest, AD, int, maintenance, (apr_pool_t * p, apr_time_t now),
                                    (p, now), AD_MAINT_OK, AD_MAINT_DECLINED)

int ad_maint_run_hooks(apr_pool_t *p, apr_time_t now)
{
    return apidest_run_maintenance(p, now);
}
