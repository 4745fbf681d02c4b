/* Logging facade for pure code: the glue plugs ap_log_error in, keeping
 * file:line. Log numbers use our prefix ADxxxxx, never httpd's AH. */
#ifndef AD_LOG_H
#define AD_LOG_H

#include <apr_errno.h>

typedef enum {
    AD_LOG_EMERG,
    AD_LOG_ALERT,
    AD_LOG_CRIT,
    AD_LOG_ERR,
    AD_LOG_WARNING,
    AD_LOG_NOTICE,
    AD_LOG_INFO,
    AD_LOG_DEBUG,
    AD_LOG_TRACE1
} ad_log_level_t;

typedef void ad_log_cb(const char *file, int line, ad_log_level_t level, apr_status_t rv,
                       const char *msg);
typedef int ad_log_enabled_cb(ad_log_level_t level);

void ad_log_set(ad_log_cb *cb, ad_log_enabled_cb *enabled);
int ad_log_is_enabled(ad_log_level_t level);
void ad_log_perror(const char *file, int line, ad_log_level_t level, apr_status_t rv,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define AD_LOG_MARK __FILE__, __LINE__
#define ADLOGNO(n)  "AD" #n ": "

#endif
