/* What status pages show, from the shared counters and the config: the
 * /apidest/status JSON, server-status?auto lines and Prometheus text. */
#ifndef AD_REPORT_H
#define AD_REPORT_H

#include <apr_pools.h>
#include <jansson.h>

#include "ad_conf.h"
#include "ad_metrics.h"

/* alive: whether apidestd runs (the caller checks its pid). */
json_t *ad_report_json(const ad_conf_t *c, const ad_metrics_t *m, int alive);
char *ad_report_auto(apr_pool_t *p, const ad_conf_t *c, const ad_metrics_t *m, int alive);
char *ad_report_prometheus(apr_pool_t *p, const ad_conf_t *c, const ad_metrics_t *m, int alive);

#endif
