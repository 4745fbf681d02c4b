#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <apr_poll.h>
#include <apr_portable.h>
#include <apr_thread_mutex.h>

#include "ad_ipc.h"
#include "ad_wire.h"
#include "ad_log.h"
#include "ad_util.h"

#define POLL_INTERVAL apr_time_from_msec(200)
/* A reply goes to a child that is waiting for it; only a stuck child makes
 * this matter. */
#define REPLY_TIMEOUT    apr_time_from_sec(30)
#define ACCEPTS_PER_WAKE 64
/* An accept that failed (out of descriptors with no idle connection to
 * close, out of memory): the listener, still readable, would make every
 * poll return at once. */
#define ACCEPT_PAUSE     apr_time_from_msec(100)
#define ACCEPT_LOG_EVERY apr_time_from_sec(60)
#define IDLE_CLOSE_ON_FD 16
#define IDLE_CLOSE_AFTER apr_time_from_sec(1) /* no message for this long */
#define FIRST_READ       16384                /* a 1 x 4 KiB or 10 x 400 B PutEvents in one read */
/* Freed blocks all the connections' pools keep together for reuse. Children
 * keep a connection per busy thread for hours, and a DLQ page or a 1 MiB
 * PutEvents needs megabytes: with an allocator each, every connection held
 * its own peak for as long as it lived, hundreds of them under a busy
 * server. This much covers the messages of a few hundred stores in flight. */
#define CONNS_MAX_FREE (4 * 1024 * 1024)

struct ad_ipc_conn_t {
    ad_ipc_t *io;
    apr_pool_t *pool; /* under io->conn_root: the connection's life */
    apr_pool_t *mp;   /* the message's, cleared by its reply */
    apr_socket_t *sock;
    apr_pollfd_t pfd;
    unsigned char hdr[AD_WIRE_HEADER_LEN];
    apr_size_t hdr_got;
    apr_uint32_t type, plen;
    char *payload;
    apr_size_t pgot;
    apr_time_t idle_since;             /* accepted, or its last reply sent (monotonic) */
    int out;                           /* a message is with the handler: under io->mu once handed */
    int polled;                        /* in the pollset: under io->mu */
    struct ad_ipc_conn_t *prev, *next; /* polling thread, or under io->mu */
};

struct ad_ipc_t {
    apr_pool_t *pool;
    apr_pool_t *conn_root; /* parent of the connections' pools, its allocator locked */
    apr_socket_t *listener;
    apr_pollset_t *ps;
    apr_pollfd_t lpfd;
    apr_thread_mutex_t *mu; /* a reply against the end of polling */
    ad_ipc_msg_fn *fn;
    ad_ipc_turn_fn *turn;
    void *baton;
    int max_conns;
    int nconns;   /* polling thread */
    int stopping; /* under mu */
    ad_ipc_conn_t *conns;
    apr_time_t accept_resume; /* polling thread: 0, or when the listener is polled again */
    apr_time_t fd_logged;     /* polling thread: last "out of descriptors" line */
    apr_time_t fail_logged;   /* polling thread: last line about another failure */
    apr_time_t readd_logged;  /* polling thread: last "cannot poll its listener" line */
    apr_status_t accept_rv;   /* polling thread: the first accept of a wake failed so */
};

apr_status_t ad_ipc_create(apr_pool_t *p, apr_socket_t *listener, int max_conns, ad_ipc_msg_fn *fn,
                           ad_ipc_turn_fn *turn, void *baton, ad_ipc_t **out)
{
    ad_ipc_t *io = apr_pcalloc(p, sizeof(*io));
    apr_status_t rv;

    io->pool = p;
    io->listener = listener;
    io->fn = fn;
    io->turn = turn;
    io->baton = baton;
    io->max_conns = max_conns;
    if ((rv = apr_thread_mutex_create(&io->mu, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS ||
        /* one allocator for every connection, so that one bound holds for
         * all; locked, as a reply may clear a message's pool on any thread */
        (rv = ad_bounded_pool_create(p, CONNS_MAX_FREE, &io->conn_root)) != APR_SUCCESS) {
        return rv;
    }
    /* Other threads end a wait in the poll with ad_ipc_wakeup. */
    rv = apr_pollset_create(&io->ps, (apr_uint32_t)max_conns + 1, p,
                            APR_POLLSET_THREADSAFE | APR_POLLSET_WAKEABLE);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_socket_timeout_set(listener, 0);
    io->lpfd.p = p;
    io->lpfd.desc_type = APR_POLL_SOCKET;
    io->lpfd.reqevents = APR_POLLIN;
    io->lpfd.desc.s = listener;
    if ((rv = apr_pollset_add(io->ps, &io->lpfd)) != APR_SUCCESS) {
        return rv;
    }
    *out = io;
    return APR_SUCCESS;
}

static void conn_close(ad_ipc_conn_t *c)
{
    ad_ipc_t *io = c->io;

    if (c->prev) {
        c->prev->next = c->next;
    }
    else {
        io->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    apr_socket_close(c->sock);
    apr_pool_destroy(c->pool);
    io->nconns--;
}

static ad_ipc_conn_t *conn_make(ad_ipc_t *io, apr_pool_t *cp, apr_socket_t *s)
{
    ad_ipc_conn_t *c = apr_pcalloc(cp, sizeof(*c));

    c->io = io;
    c->pool = cp;
    c->sock = s;
    c->idle_since = ad_monotonic();
    apr_pool_create(&c->mp, cp);
    apr_socket_timeout_set(s, 0);
    c->pfd.p = cp;
    c->pfd.desc_type = APR_POLL_SOCKET;
    c->pfd.reqevents = APR_POLLIN;
    c->pfd.desc.s = s;
    c->pfd.client_data = c;
    return c;
}

static void stop_polling(ad_ipc_conn_t *c);

/* Kept by a child for later, not in use: nothing read, nothing out, no
 * message for a while and none arriving. */
static int conn_is_idle(const ad_ipc_conn_t *c, apr_time_t now)
{
    apr_os_sock_t fd;
    char b;

    if (c->out || c->hdr_got || now - c->idle_since < IDLE_CLOSE_AFTER) {
        return 0;
    }
    apr_os_sock_get(&fd, c->sock);
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
           (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Close up to n idle connections, oldest first: a child finds its kept
 * connection closed and opens another (it resends only what was never
 * read whole, should one have arrived meanwhile). */
static int close_some_idle(ad_ipc_t *io, int n)
{
    ad_ipc_conn_t *c = io->conns, *prev;
    apr_time_t now = ad_monotonic();
    int closed = 0;

    while (c && c->next) {
        c = c->next;
    }
    apr_thread_mutex_lock(io->mu);
    for (; c && closed < n; c = prev) {
        prev = c->prev;
        if (conn_is_idle(c, now)) {
            stop_polling(c);
            conn_close(c);
            closed++;
        }
    }
    apr_thread_mutex_unlock(io->mu);
    return closed;
}

static void rest_listener(ad_ipc_t *io, apr_time_t now)
{
    if (apr_pollset_remove(io->ps, &io->lpfd) == APR_SUCCESS) {
        io->accept_resume = now + ACCEPT_PAUSE;
    }
}

/* Once a minute: a failure of the listener lasts, and each wake would
 * say it. */
static int time_to_log(apr_time_t *last, apr_time_t now)
{
    if (*last && now - *last < ACCEPT_LOG_EVERY) {
        return 0;
    }
    *last = now;
    return 1;
}

/* Out of descriptors (a low open-files limit, a big server's many kept
 * connections): the listener stayed readable and the loop spun, while
 * children timed out. Idle connections make room; without any, the
 * listener rests a moment. */
static void on_fd_exhaustion(ad_ipc_t *io, apr_status_t rv)
{
    apr_time_t now = ad_monotonic();
    int closed = close_some_idle(io, IDLE_CLOSE_ON_FD);

    if (!closed) {
        rest_listener(io, now);
    }
    if (time_to_log(&io->fd_logged, now)) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, rv,
                      ADLOGNO(00151) "apidestd is out of file descriptors with %d connections "
                                     "from children open: closed %d idle one(s)%s; raise its "
                                     "open-files limit (ulimit -n, LimitNOFILE)",
                      io->nconns + closed, closed, closed ? "" : ", accepting again in 100 ms");
    }
}

/* Any other lasting failure (out of memory or kernel buffers): nothing to
 * free here, so the listener rests and the children wait. */
static void on_accept_failure(ad_ipc_t *io, apr_status_t rv)
{
    apr_time_t now = ad_monotonic();

    rest_listener(io, now);
    if (time_to_log(&io->fail_logged, now)) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, rv,
                      ADLOGNO(00153) "apidestd cannot accept a connection from a child "
                                     "(%d open): accepting again in 100 ms",
                      io->nconns);
    }
}

/* Errors that concern one connection or none, not the listener. */
static int accept_failure_passes(apr_status_t rv)
{
    return APR_STATUS_IS_EAGAIN(rv) || APR_STATUS_IS_EINTR(rv) ||
           rv == APR_FROM_OS_ERROR(ECONNABORTED) || rv == APR_FROM_OS_ERROR(EPROTO);
}

/* A listener that cannot be polled again (out of memory too) rests
 * another while: retried at once, the loop would spin. */
static void resume_accepting(ad_ipc_t *io)
{
    apr_time_t now;
    apr_status_t rv;

    if (!io->accept_resume || (now = ad_monotonic()) < io->accept_resume) {
        return;
    }
    if ((rv = apr_pollset_add(io->ps, &io->lpfd)) == APR_SUCCESS) {
        io->accept_resume = 0;
        return;
    }
    io->accept_resume = now + ACCEPT_PAUSE;
    if (time_to_log(&io->readd_logged, now)) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, rv,
                      ADLOGNO(00154) "apidestd cannot poll its listener again: trying in 100 ms");
    }
}

/* 0 when the listener had nothing more to give. Linux takes a descriptor
 * before it looks for a connection: only the first accept after the
 * listener polled readable, failing with EMFILE, shows a child waiting. */
static int conn_open(ad_ipc_t *io, int first)
{
    apr_pool_t *cp;
    apr_socket_t *s;
    ad_ipc_conn_t *c;
    apr_status_t rv;

    if ((rv = apr_pool_create(&cp, io->conn_root)) != APR_SUCCESS) {
        io->accept_rv = first ? rv : 0;
        return 0;
    }
    if ((rv = apr_socket_accept(&s, io->listener, cp)) != APR_SUCCESS) {
        apr_pool_destroy(cp);
        /* handled once this poll's events are */
        io->accept_rv = first && !accept_failure_passes(rv) ? rv : 0;
        return 0;
    }
    if (io->nconns >= io->max_conns) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_WARNING, 0,
                      ADLOGNO(00150) "%d connections from children are open: one more refused",
                      io->max_conns);
        apr_socket_close(s);
        apr_pool_destroy(cp);
        return 1;
    }
    c = conn_make(io, cp, s);
    if (apr_pollset_add(io->ps, &c->pfd) != APR_SUCCESS) {
        apr_socket_close(s);
        apr_pool_destroy(cp);
        return 1;
    }
    apr_thread_mutex_lock(io->mu);
    c->polled = 1;
    c->next = io->conns;
    if (io->conns) {
        io->conns->prev = c;
    }
    io->conns = c;
    apr_thread_mutex_unlock(io->mu);
    io->nconns++;
    return 1;
}

/* Room for the payload the header announced, in the message's pool; 0
 * when there is none (a memory limit): the connection is then closed. */
static int begin_payload(ad_ipc_conn_t *c)
{
    if (!(c->payload = apr_palloc(c->mp, (apr_size_t)c->plen + 1))) {
        ad_log_perror(AD_LOG_MARK, AD_LOG_ERR, APR_ENOMEM,
                      ADLOGNO(00152) "no memory for a %lu-byte message from a child: its "
                                     "connection is closed",
                      (unsigned long)c->plen);
        return 0;
    }
    c->payload[c->plen] = '\0';
    c->pgot = 0;
    return 1;
}

/* The start of a frame, header and as much payload as came, in one read:
 * a read for each cost a system call more per stored request. A child
 * sends one message and waits, so bytes past its frame in this read break
 * the protocol (ones that come later make the connection readable while its
 * message is out, as a hang-up does). Same results as read_frame(). */
static int read_start(ad_ipc_conn_t *c)
{
    char buf[FIRST_READ];
    apr_size_t n = sizeof(buf);
    apr_status_t rv = apr_socket_recv(c->sock, buf, &n);

    if (n == 0) {
        return APR_STATUS_IS_EAGAIN(rv) ? 0 : -1;
    }
    if (n < AD_WIRE_HEADER_LEN) {
        memcpy(c->hdr, buf, n);
        c->hdr_got = n;
        return 0;
    }
    memcpy(c->hdr, buf, AD_WIRE_HEADER_LEN);
    c->hdr_got = AD_WIRE_HEADER_LEN;
    if (ad_wire_parse_start(buf, n, &c->type, &c->plen) != APR_SUCCESS || !begin_payload(c)) {
        return -1;
    }
    c->pgot = n - AD_WIRE_HEADER_LEN;
    memcpy(c->payload, buf + AD_WIRE_HEADER_LEN, c->pgot);
    return c->pgot == c->plen;
}

/* 1 when the frame is complete; 0 when more must come; -1 when the peer
 * closed or broke the framing. */
static int read_frame(ad_ipc_conn_t *c)
{
    if (c->hdr_got == 0) {
        int got = read_start(c);
        if (got != 0 || c->hdr_got < AD_WIRE_HEADER_LEN) {
            return got;
        }
    }
    for (;;) {
        apr_size_t n;
        apr_status_t rv = APR_SUCCESS;

        if (c->hdr_got < AD_WIRE_HEADER_LEN) {
            n = AD_WIRE_HEADER_LEN - c->hdr_got;
            rv = apr_socket_recv(c->sock, (char *)c->hdr + c->hdr_got, &n);
            c->hdr_got += n;
            if (c->hdr_got == AD_WIRE_HEADER_LEN) {
                if (ad_wire_parse_header(c->hdr, &c->type, &c->plen) != APR_SUCCESS ||
                    !begin_payload(c)) {
                    return -1;
                }
            }
        }
        else if ((n = c->plen - c->pgot) > 0) {
            rv = apr_socket_recv(c->sock, c->payload + c->pgot, &n);
            c->pgot += n;
        }
        if (c->hdr_got == AD_WIRE_HEADER_LEN && c->pgot == c->plen) {
            return 1;
        }
        if (n == 0) {
            return APR_STATUS_IS_EAGAIN(rv) ? 0 : -1;
        }
    }
}

static void stop_polling(ad_ipc_conn_t *c)
{
    if (c->polled) {
        apr_pollset_remove(c->io->ps, &c->pfd);
        c->polled = 0;
    }
}

/* A connection stays in the (level-triggered) pollset while its message is
 * with the handler: a child sends nothing until the reply, so it is then
 * readable only once the child hung up or broke the protocol, and only
 * then is it taken out until the reply. Taking every connection out and
 * back per message cost two epoll_ctl per stored request. */
static void on_readable(ad_ipc_conn_t *c)
{
    ad_ipc_t *io = c->io;
    int got;

    apr_thread_mutex_lock(io->mu);
    if (c->out) {
        stop_polling(c);
        apr_thread_mutex_unlock(io->mu);
        return;
    }
    apr_thread_mutex_unlock(io->mu);
    got = read_frame(c);
    if (got < 0) {
        apr_thread_mutex_lock(io->mu);
        stop_polling(c);
        conn_close(c);
        apr_thread_mutex_unlock(io->mu);
    }
    else if (got > 0) {
        /* Not read again until the reply: the message is the handler's. */
        c->out = 1;
        io->fn(io->baton, c, c->mp, c->type, c->payload, c->plen);
    }
}

apr_status_t ad_ipc_reply(ad_ipc_conn_t *c, apr_uint32_t type, const char *buf, apr_size_t len)
{
    ad_ipc_t *io = c->io;
    apr_os_sock_t fd;
    apr_status_t rv;

    apr_socket_timeout_set(c->sock, REPLY_TIMEOUT);
    rv = ad_wire_send(c->sock, type, buf, len);
    apr_socket_timeout_set(c->sock, 0);
    apr_pool_clear(c->mp);
    c->hdr_got = 0;
    c->payload = NULL;
    c->plen = 0;
    c->pgot = 0;
    c->idle_since = ad_monotonic();
    apr_thread_mutex_lock(io->mu);
    c->out = 0;
    if (rv != APR_SUCCESS || io->stopping) {
        /* The hang-up makes the child reconnect, to the next apidestd when
         * this one stops; the connection is closed by the polling thread or
         * by ad_ipc_destroy. */
        apr_os_sock_get(&fd, c->sock);
        shutdown(fd, SHUT_RDWR);
    }
    if (!io->stopping && !c->polled && apr_pollset_add(io->ps, &c->pfd) == APR_SUCCESS) {
        c->polled = 1;
    }
    apr_thread_mutex_unlock(io->mu);
    return rv;
}

/* Close every connection without a message out; with all, every one. */
static void close_idle(ad_ipc_t *io, int all)
{
    ad_ipc_conn_t *c, *next;

    apr_thread_mutex_lock(io->mu);
    io->stopping = 1;
    for (c = io->conns; c; c = next) {
        next = c->next;
        if (all || !c->out) {
            stop_polling(c);
            conn_close(c);
        }
    }
    apr_thread_mutex_unlock(io->mu);
}

static void on_listener_failure(ad_ipc_t *io, apr_status_t rv)
{
    if (rv == APR_FROM_OS_ERROR(EMFILE) || rv == APR_FROM_OS_ERROR(ENFILE)) {
        on_fd_exhaustion(io, rv);
    }
    else {
        on_accept_failure(io, rv);
    }
}

/* The wait, no longer than the listener's rest; epoll counts whole
 * milliseconds, and a wait cut down to them would spin through the rest. */
static apr_interval_time_t poll_wait(const ad_ipc_t *io, apr_interval_time_t wait)
{
    if (io->accept_resume) {
        apr_interval_time_t left = io->accept_resume - ad_monotonic();
        if (left < wait) {
            wait = left > 0 ? left : 0;
        }
    }
    wait = wait < 0 ? 0 : wait < POLL_INTERVAL ? wait : POLL_INTERVAL;
    return (wait + 999) / 1000 * 1000;
}

void ad_ipc_run(ad_ipc_t *io, volatile sig_atomic_t *stop)
{
    apr_interval_time_t wait = 0;

    while (!*stop) {
        const apr_pollfd_t *out = NULL;
        apr_int32_t n = 0, i;

        resume_accepting(io);
        if (apr_pollset_poll(io->ps, poll_wait(io, wait), &n, &out) != APR_SUCCESS) {
            n = 0;
        }
        for (i = 0; i < n && !*stop; i++) {
            if (out[i].client_data == NULL) {
                int k = 0;
                while (k++ < ACCEPTS_PER_WAKE && conn_open(io, k == 1)) {
                }
            }
            else {
                on_readable(out[i].client_data);
            }
        }
        /* not among the events above: it may close connections they name */
        if (io->accept_rv) {
            on_listener_failure(io, io->accept_rv);
            io->accept_rv = 0;
        }
        wait = io->turn(io->baton);
    }
    close_idle(io, 0);
}

void ad_ipc_wakeup(ad_ipc_t *io)
{
    apr_pollset_wakeup(io->ps);
}

void ad_ipc_destroy(ad_ipc_t *io)
{
    close_idle(io, 1);
}
