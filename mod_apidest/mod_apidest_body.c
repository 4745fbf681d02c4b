#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>
#include <apr_strings.h>

#include "mod_apidest_body.h"

#define BODY_ERROR_FILTER "APIDEST_BODY_ERROR"

/* httpd's input filter refuses a chunked body it cannot read (bad framing:
 * 400; a total past LimitRequestBody, a chunk size past 2^63 or a chunk
 * line past LimitRequestFieldSize: 413, all answered as too large) by
 * sending an error bucket and an EOS down the request's output filters,
 * which turn it into an HTML page. This filter, first in line, keeps the
 * status and drops both, failing the read as the HTTP_HEADER filter would
 * after its page; the handler answers. ap_pass_brigade marked the EOS sent
 * on its way here: it was not, and the answer needs one. httpd has already
 * marked the connection to be closed. */
static apr_status_t catch_body_error(ap_filter_t *f, apr_bucket_brigade *bb)
{
    apr_bucket *e;

    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = APR_BUCKET_NEXT(e)) {
        if (AP_BUCKET_IS_ERROR(e)) {
            *(int *)f->ctx = ((ap_bucket_error *)e->data)->status;
            apr_brigade_cleanup(bb);
            f->r->eos_sent = 0;
            return AP_FILTER_ERROR;
        }
    }
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

void apidest_body_register(void)
{
    /* Ahead of every resource filter (INCLUDES, SUBSTITUTE, a FilterChain):
     * one of the same type added earlier would come first and end its
     * stream on the EOS dropped here. */
    ap_register_output_filter(BODY_ERROR_FILTER, catch_body_error, NULL, AP_FTYPE_RESOURCE - 1);
}

apidest_body_t apidest_read_body(request_rec *r, apr_size_t max, char **out, apr_size_t *len)
{
    apr_off_t cl = -1;
    apr_size_t got = 0, cap;
    const char *clh = apr_table_get(r->headers_in, "Content-Length");
    int *refused = apr_pcalloc(r->pool, sizeof(*refused));
    char *buf;
    long n;

    /* A subrequest's reads take the main request's body, and httpd's
     * refusals go down the main request's filters, past this one. */
    if (r->main) {
        return APIDEST_BODY_UNREADABLE;
    }
    /* A declared length over either limit is answered here, before
     * ap_setup_client_block refuses one over LimitRequestBody. */
    if (ap_get_limit_req_body(r) && (apr_off_t)ap_get_limit_req_body(r) < (apr_off_t)max) {
        max = (apr_size_t)ap_get_limit_req_body(r);
    }
    if (clh && apr_strtoff(&cl, clh, NULL, 10) == APR_SUCCESS && cl > (apr_off_t)max) {
        return APIDEST_BODY_TOO_LARGE;
    }
    if (!clh) {
        ap_add_output_filter(BODY_ERROR_FILTER, refused, r, r->connection);
    }
    if (ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK) != OK) {
        return APIDEST_BODY_UNREADABLE;
    }
    cap = cl >= 0 ? (apr_size_t)cl + 1 : 8192;
    buf = apr_palloc(r->pool, cap);
    while ((n = ap_get_client_block(r, buf + got, cap - got)) > 0) {
        got += (apr_size_t)n;
        if (got > max) {
            return APIDEST_BODY_TOO_LARGE;
        }
        if (got == cap) {
            char *nb = apr_palloc(r->pool, cap * 2);
            memcpy(nb, buf, got);
            buf = nb;
            cap *= 2;
        }
    }
    if (n < 0) {
        return *refused == HTTP_REQUEST_ENTITY_TOO_LARGE ? APIDEST_BODY_TOO_LARGE
                                                         : APIDEST_BODY_UNREADABLE;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return APIDEST_BODY_OK;
}
