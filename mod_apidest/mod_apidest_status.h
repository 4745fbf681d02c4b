/* server-status section and the apidest-admin handler. */
#ifndef MOD_APIDEST_STATUS_H
#define MOD_APIDEST_STATUS_H

#include <httpd.h>

void apidest_status_register(void);
int apidest_admin_handler(request_rec *r);

#endif
