/* apidestd's core: takes records from children over the socket, commits them
 * to the store in groups before acknowledging, keeps the due-time heap, and
 * delivers through worker threads. APR only; the glue in
 * mod_apidest_daemon.c forks the process, creates the socket and drops
 * privileges before calling ad_daemon_run. */
#ifndef AD_DAEMON_H
#define AD_DAEMON_H

#include <signal.h>

#include <apr_pools.h>
#include <apr_network_io.h>
#include <apr_file_io.h>

#include "ad_conf.h"
#include "ad_metrics.h"

typedef struct ad_daemon_opts_t {
    const ad_conf_t *conf;
    apr_socket_t *listener;         /* bound and listening */
    volatile sig_atomic_t *stop;    /* set by the signal handler */
    apr_interval_time_t drain;      /* how long in-flight attempts may run
                                        on after stop */
    apr_interval_time_t store_wait; /* how long to wait for the store lock */
    ad_metrics_t *metrics;          /* shared counters (never NULL) */
    apr_file_t *journal;            /* one line per attempt, or NULL */
} ad_daemon_opts_t;

/* Runs until *opts->stop is set. Returns APR_SUCCESS after a clean stop, or
 * the reason it could not start (store, threads) with *err set. */
apr_status_t ad_daemon_run(apr_pool_t *p, const ad_daemon_opts_t *opts, const char **err);

#endif
