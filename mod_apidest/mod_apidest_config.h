/* Directives and <ApiDest...> sections: httpd.conf -> ad_conf_t. */
#ifndef MOD_APIDEST_CONFIG_H
#define MOD_APIDEST_CONFIG_H

#include <httpd.h>
#include <http_config.h>

#include "ad_conf.h"

typedef struct apidest_srv_conf_t {
    ad_conf_t *conf; /* the main server's is the one used */
} apidest_srv_conf_t;

/* Per <Location>: SigV4 keys (access key id -> secret); empty: no check. */
typedef struct apidest_dir_conf_t {
    apr_hash_t *sigv4_keys;
} apidest_dir_conf_t;

extern const command_rec apidest_cmds[];

void *apidest_create_dir_conf(apr_pool_t *p, char *dir);
void *apidest_merge_dir_conf(apr_pool_t *p, void *base, void *add);

void *apidest_create_srv_conf(apr_pool_t *p, server_rec *s);
void *apidest_merge_srv_conf(apr_pool_t *p, void *base, void *add);

/* The configuration of the main server (every ApiDest* lives there). */
ad_conf_t *apidest_conf(server_rec *s);

/* Checks that need the whole config (references between sections), run
 * from check_config so that `apachectl -t` reports them. Logs each problem
 * with its file:line and returns the number found. */
int apidest_config_check(apr_pool_t *p, server_rec *s);

#endif
