/* bench/trivial/mod_bench_trivial.c: the baseline handler of the ingest
 * benchmark. It does what any handler must do for a POST and nothing else:
 * reads (and drops) the request body, then answers 200 with a small JSON
 * document shaped like a one-entry PutEvents response.
 *
 *   apxs -c mod_bench_trivial.c
 *   LoadModule bench_trivial_module .../mod_bench_trivial.so
 *   <Location /trivial> SetHandler bench-trivial </Location>
 */
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "util_filter.h"
#include "apr_buckets.h"

static const char REPLY[] =
    "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":"
    "\"00000000-0000-0000-0000-000000000000\"}]}";

static int read_body(request_rec *r, apr_off_t *total)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    int seen_eos = 0;

    *total = 0;
    do {
        apr_bucket *b;
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                         APR_BLOCK_READ, HUGE_STRING_LEN);
        if (rv != APR_SUCCESS) {
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t len;
            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b)) {
                continue;
            }
            if (apr_bucket_read(b, &data, &len, APR_BLOCK_READ) != APR_SUCCESS) {
                return HTTP_BAD_REQUEST;
            }
            *total += (apr_off_t)len;
        }
        apr_brigade_cleanup(bb);
    } while (!seen_eos);
    return OK;
}

static int trivial_handler(request_rec *r)
{
    apr_off_t n;
    int rc;

    if (!r->handler || strcmp(r->handler, "bench-trivial")) {
        return DECLINED;
    }
    if (r->method_number != M_POST) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if ((rc = read_body(r, &n)) != OK) {
        return rc;
    }
    ap_set_content_type(r, "application/x-amz-json-1.1");
    ap_set_content_length(r, sizeof(REPLY) - 1);
    ap_rwrite(REPLY, sizeof(REPLY) - 1, r);
    return OK;
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_handler(trivial_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA bench_trivial_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks
};
