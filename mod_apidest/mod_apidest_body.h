/* Request bodies for the handlers: read whole, bounded, NUL-terminated, and
 * every way httpd can refuse one reported to the handler instead of answered
 * by httpd as an HTML page, so that the API answers in its own shape. */
#ifndef MOD_APIDEST_BODY_H
#define MOD_APIDEST_BODY_H

#include <httpd.h>

typedef enum {
    APIDEST_BODY_OK,
    APIDEST_BODY_TOO_LARGE,  /* past max or LimitRequestBody */
    APIDEST_BODY_UNREADABLE, /* broken chunked framing, a client gone, a timeout */
} apidest_body_t;

/* register_hooks: the filter that catches httpd's refusals. */
void apidest_body_register(void);

/* The body, at most max bytes and LimitRequestBody, in r->pool. */
apidest_body_t apidest_read_body(request_rec *r, apr_size_t max, char **out, apr_size_t *len);

#endif
