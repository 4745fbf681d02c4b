/* Connections: what a request carries for its connection (Basic, API key or
 * OAuth bearer token, plus invocation parameters), and the OAuth client
 * credentials token exchange. Pure; secrets live only in the request built
 * here, in the attempt's pool, never in a record or a log. */
#ifndef AD_AUTH_H
#define AD_AUTH_H

#include <apr_pools.h>

#include "ad_conf.h"
#include "ad_http.h"

/* Rewrite req (built from a record) for connection cn: its header
 * parameters replace same-named headers, its query parameters are appended,
 * its body parameters are merged into a JSON object body; then the
 * authorization (token: the OAuth access token, unused otherwise). */
void ad_auth_apply(apr_pool_t *p, const ad_connection_t *cn, const char *token,
                   ad_http_request_t *req);

/* The token request (grant_type=client_credentials, client id and secret as
 * HTTP Basic per RFC 6749 2.3.1, OAuthParameters where they belong). */
void ad_auth_token_request(apr_pool_t *p, const ad_connection_t *cn, int timeout_ms,
                           ad_http_request_t *req);

/* Read {"access_token": ..., "expires_in": ...}; lifetime defaults to one
 * hour when the server does not say, and is kept within 1 s .. 1 day. A
 * token with characters a header cannot carry is refused (*why says so). */
apr_status_t ad_auth_parse_token(apr_pool_t *p, const char *body, apr_size_t len,
                                 const char **token, apr_interval_time_t *lifetime,
                                 const char **why);

const char *ad_auth_type_name(ad_auth_type_t t);

#endif
