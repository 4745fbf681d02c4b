/* AWS Signature Version 4 verification of an incoming request, the way the
 * AWS CLI v1/v2 and the JS SDK v3 sign it (see aws-clients.md): header
 * authorization only ("Authorization: AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=..."), non-S3 rules (the path is normalised
 * and URI-encoded once more). Pure: APR and libcrypto, no httpd.
 *
 * Failures are answered as AWS's JSON (Coral) services answer them: the
 * error type for x-amzn-ErrorType / "__type", the message, the status.
 * Every failure is 400, as DynamoDB and Kinesis answer them and as reports
 * show EventBridge answering a wrong scope (S3 and API Gateway send 403;
 * no AWS client retries either). */
#ifndef AD_SIGV4_H
#define AD_SIGV4_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

/* Results of ad_sigv4_verify. The type names are what goes on the wire. */
#define AD_SIGV4_OK            0
#define AD_SIGV4_MISSING_TOKEN 1 /* MissingAuthenticationTokenException */
#define AD_SIGV4_INCOMPLETE    2 /* IncompleteSignatureException */
#define AD_SIGV4_EXPIRED       3 /* InvalidSignatureException: clock skew */
#define AD_SIGV4_INVALID                                                                           \
    4                          /* InvalidSignatureException: scope, unsigned
                                   * host or x-amz-date, payload hash */
#define AD_SIGV4_UNKNOWN_KEY 5 /* UnrecognizedClientException */
#define AD_SIGV4_MISMATCH    6 /* InvalidSignatureException: signature */
#define AD_SIGV4_INTERNAL    7 /* InternalFailure (500): libcrypto failed */

/* Most names SignedHeaders may list (the AWS clients sign 4 to 9). */
#define AD_SIGV4_MAX_SIGNED_HEADERS 64

/* How far x-amz-date may be from the server's clock, either way. */
#define AD_SIGV4_MAX_SKEW apr_time_from_sec(15 * 60)

typedef struct ad_sigv4_header_t {
    const char *name;
    const char *value;
} ad_sigv4_header_t;

typedef struct ad_sigv4_request_t {
    const char *method; /* "POST" */
    const char *path;   /* raw request path as received, "/events/" */
    const char *query;  /* raw query string (no '?') or NULL */
    /* Every request header as received, names in any case. A header sent
     * more than once must appear once per line received, in order (the
     * signature joins them with ","; httpd's merged ", " form differs). */
    const apr_array_header_t *headers; /* of ad_sigv4_header_t */
    const char *body;
    apr_size_t body_len;
} ad_sigv4_request_t;

/* The secret access key of access_key_id, or NULL when the key is unknown. */
typedef const char *ad_sigv4_lookup_fn(void *baton, const char *access_key_id);

/* Verify req's signature for service ("events"). region: the only region
 * a credential scope may name (AWS's behaviour), or NULL to accept whatever
 * region the client is configured for. now: the current time, for the
 * 15-minute skew check. Returns AD_SIGV4_OK with *status 200, or one of the
 * failures above with *status 400 (500 for AD_SIGV4_INTERNAL), *error_type
 * and *message as AWS words them (allocated in p). lookup's secret is only
 * read, never kept. */
int ad_sigv4_verify(apr_pool_t *p, const ad_sigv4_request_t *req, const char *service,
                    const char *region, ad_sigv4_lookup_fn *lookup, void *baton, apr_time_t now,
                    int *status, const char **error_type, const char **message);

/* The checks of ad_sigv4_verify that need no body: the Authorization
 * header, the date, the signed headers, the credential scope and the key,
 * with the same results. req->body is not read, so a request that fails
 * them can be refused before its body is. */
int ad_sigv4_check_head(apr_pool_t *p, const ad_sigv4_request_t *req, const char *service,
                        const char *region, ad_sigv4_lookup_fn *lookup, void *baton, apr_time_t now,
                        int *status, const char **error_type, const char **message);

#endif
