/* Outbound HTTP: one engine per delivery thread, many concurrent requests
 * over kept-alive connections. Engines are not shared between threads except
 * through ad_http_wakeup. Implemented with libcurl multi in ad_curl.c. */
#ifndef AD_HTTP_H
#define AD_HTTP_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef struct ad_http_engine_t ad_http_engine_t;

/* The longest "Name: value" line sent, NUL included: a request that would
 * need a longer one is refused as AD_HTTP_INVALID. */
#define AD_HTTP_HEADER_LINE_MAX 8192

/* The longest URL sent, NUL included: path and query values from an event
 * could otherwise make a request line of hundreds of KB, past what any
 * server reads (httpd's LimitRequestLine is 8190 bytes). Refused as
 * AD_HTTP_INVALID. */
#define AD_HTTP_URL_MAX 8192

typedef enum {
    AD_HTTP_OK = 0,  /* a response came (any status) */
    AD_HTTP_TIMEOUT, /* no complete response within the timeout */
    AD_HTTP_CONNECT, /* could not connect / resolve / TLS failure */
    AD_HTTP_REFUSED, /* egress policy refused the address */
    AD_HTTP_INVALID, /* request could not be formed (bad header...) */
    AD_HTTP_FAILED   /* anything else (reset mid-response...) */
} ad_http_error_t;

typedef struct ad_http_request_t {
    const char *method;
    const char *url;
    const apr_array_header_t *headers; /* ad_header_t (ad_record.h) */
    const char *body;
    apr_size_t body_len;
    int timeout_ms;
    int allow_private;
    const char *ca_file; /* extra CAs (PEM), NULL: the system's */
    const char *ca_pem;  /* its text, read at configuration time; must
                            outlive the engine (libcurl keeps a pointer) */
    apr_size_t ca_pem_len;
    int capture_body; /* keep the response body (up to 64 KiB) */
} ad_http_request_t;

typedef struct ad_http_result_t {
    ad_http_error_t error;
    int status;                      /* HTTP status, 0 without a response */
    const char *message;             /* for logs and the DLQ, never secrets */
    apr_interval_time_t retry_after; /* -1: no usable Retry-After; < -1: a
                                        negative one (EventBridge then stops
                                        retrying the event) */
    int reused;                      /* connection was kept alive */
    const char *body;                /* captured response body, or NULL */
    apr_size_t body_len;
} ad_http_result_t;

typedef void ad_http_done_cb(void *baton, const ad_http_result_t *res);

/* Process-wide setup, once before any thread (curl_global_init). */
apr_status_t ad_http_global_init(void);

apr_status_t ad_http_engine_create(apr_pool_t *p, int max_host_conns, ad_http_engine_t **e);
/* Start a request; cb runs later from ad_http_run on this engine's thread.
 * req and everything it points to must stay valid until then (give it the
 * attempt's pool). */
apr_status_t ad_http_submit(ad_http_engine_t *e, const ad_http_request_t *req, ad_http_done_cb *cb,
                            void *baton);
/* Drive transfers: wait up to timeout_ms for activity unless some transfer
 * has finished already (callers may batch what the callbacks collect and
 * pass it on when this returns). Returns the number still running. */
int ad_http_run(ad_http_engine_t *e, int timeout_ms);
/* Interrupt a blocking ad_http_run from another thread. */
void ad_http_wakeup(ad_http_engine_t *e);
void ad_http_engine_destroy(ad_http_engine_t *e);

#endif
