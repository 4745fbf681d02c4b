/* apidestd's life in httpd: forked by the master in post_config (as mod_cgid
 * forks its daemon), restarted if it dies, replaced on every restart; and
 * the socket client the children use to hand it records. */
#ifndef MOD_APIDEST_DAEMON_H
#define MOD_APIDEST_DAEMON_H

#include <httpd.h>
#include <apr_tables.h>

/* post_config: start apidestd for this generation (not in the dry run). */
int apidest_daemon_init(apr_pool_t *pconf, server_rec *s);

/* child_init: the child's pool of idle connections to apidestd. */
void apidest_daemon_child_init(apr_pool_t *pchild, server_rec *s);

typedef enum {
    APIDEST_STORE_OK,          /* every record is stored */
    APIDEST_STORE_REFUSED,     /* apidestd answered: nothing stored */
    APIDEST_STORE_UNREACHABLE, /* apidestd never had the message */
    APIDEST_STORE_UNCONFIRMED  /* it may have read (and stored) it, and
                                  did not answer in time */
} apidest_store_result_t;

/* Send the request's records (ad_blob_t) in one message and wait for the
 * acknowledgement that they are in the store. */
apidest_store_result_t apidest_daemon_store(request_rec *r, const apr_array_header_t *blobs);

/* An admin request (JSON text) to apidestd: 1 with its HTTP status and JSON
 * reply, 0 when it could not be reached or did not answer within wait (0:
 * the 30 s every exchange has). */
int apidest_daemon_admin(request_rec *r, const char *req, apr_interval_time_t wait, int *status,
                         const char **reply, apr_size_t *reply_len);

/* check_config: NULL, or why no socket can be made under DefaultRuntimeDir
 * (its path, named for the master's pid, would be too long). */
const char *apidest_daemon_socket_refusal(apr_pool_t *p);

/* From /proc/<pid>/stat (Linux): the process's state letter and parent; 0
 * when it cannot be read. */
int apidest_proc_stat(pid_t pid, char *state, pid_t *ppid);

#endif
