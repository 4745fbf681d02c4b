#include <stdarg.h>
#include <stdio.h>

#include "ad_log.h"

static ad_log_cb *log_cb;
static ad_log_enabled_cb *log_enabled;

void ad_log_set(ad_log_cb *cb, ad_log_enabled_cb *enabled)
{
    log_cb = cb;
    log_enabled = enabled;
}

int ad_log_is_enabled(ad_log_level_t level)
{
    if (log_enabled) {
        return log_enabled(level);
    }
    /* Unit tests without a sink print warnings and worse. */
    return level <= AD_LOG_WARNING;
}

void ad_log_perror(const char *file, int line, ad_log_level_t level, apr_status_t rv,
                   const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    if (!ad_log_is_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (log_cb) {
        log_cb(file, line, level, rv, buf);
    }
    else {
        fprintf(stderr, "[%d] %s:%d %s (%d)\n", (int)level, file, line, buf, rv);
    }
}
