/* server-status section and the apidest-admin handler. */
#ifndef MOD_APIDEST_STATUS_H
#define MOD_APIDEST_STATUS_H

#include <httpd.h>

#include "ad_metrics.h"

void apidest_status_register(void);

/* post_config: shared counters for this configuration generation. */
apr_status_t apidest_metrics_init(apr_pool_t *pconf, server_rec *s);
ad_metrics_t *apidest_metrics(void);
int apidest_admin_handler(request_rec *r);

#endif
