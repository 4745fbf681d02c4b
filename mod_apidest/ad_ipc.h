/* apidestd's side of the socket the httpd children talk to: one thread
 * polls the listener and every connection, reads framed messages (ad_wire.h)
 * without blocking, and hands each complete message to a callback. Children
 * keep their connections open across requests and send one message at a
 * time, so a connection whose message is out is not read until its reply
 * has been sent, from whichever thread produced it (the core, after the
 * group commit); it stays polled meanwhile unless its child hangs up.
 * Pure: APR only. */
#ifndef AD_IPC_H
#define AD_IPC_H

#include <signal.h>
#include <apr_network_io.h>
#include <apr_pools.h>

typedef struct ad_ipc_t ad_ipc_t;
typedef struct ad_ipc_conn_t ad_ipc_conn_t;

/* A complete message on the polling thread. payload (NUL-terminated) and
 * whatever is allocated in mp live until the reply is sent; the callback
 * must see to exactly one ad_ipc_reply for c. */
typedef void ad_ipc_msg_fn(void *baton, ad_ipc_conn_t *c, apr_pool_t *mp, apr_uint32_t type,
                           char *payload, apr_size_t len);

/* Called on the polling thread after every wait and the messages it
 * brought; returns how long the next wait may last (0: do not wait). */
typedef apr_interval_time_t ad_ipc_turn_fn(void *baton);

apr_status_t ad_ipc_create(apr_pool_t *p, apr_socket_t *listener, int max_conns, ad_ipc_msg_fn *fn,
                           ad_ipc_turn_fn *turn, void *baton, ad_ipc_t **out);

/* Serve on the calling thread until *stop is set (noticed within 200 ms);
 * then close every connection without a message out, and make later
 * replies close theirs, so children reconnect to the next apidestd. */
void ad_ipc_run(ad_ipc_t *io, volatile sig_atomic_t *stop);

/* End the polling thread's wait early (any thread). */
void ad_ipc_wakeup(ad_ipc_t *io);

/* Answer c's message (any thread, once per message). Clears the message's
 * pool and lets the connection be polled again; a connection whose reply
 * cannot be written is shut down and closed by the polling thread. */
apr_status_t ad_ipc_reply(ad_ipc_conn_t *c, apr_uint32_t type, const char *buf, apr_size_t len);

/* Once no reply can still come (the core has stopped): close what is left. */
void ad_ipc_destroy(ad_ipc_t *io);

#endif
