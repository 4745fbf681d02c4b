/* apidestd's polling of the children's connections (ad_ipc.c) over a real
 * Unix socket, without httpd: a connection whose message is out stays
 * polled, and one whose child hangs up meanwhile is dropped once the reply
 * comes, without the polling thread spinning in between. */
/* accept4 is defined below, for libapr to call: its declaration moved
 * aside (glibc's takes a transparent union). */
#define accept4 accept4_as_declared
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <apr_atomic.h>
#include <apr_portable.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "ad_ipc.h"
#include "ad_log.h"
#include "ad_wire.h"
#include "unit_run.h"
#undef accept4

/* Set: accept4 fails with it, as the kernel does out of memory or buffers;
 * epoll_ctl, adding the listener. */
static volatile int accept_errno, listener_add_errno;
static volatile apr_uint32_t accepts;       /* atomic: calls of accept4 */
static volatile apr_uint32_t listener_adds; /* atomic: epoll_ctl adding it */
static volatile apr_uint32_t accept_failures_logged, readd_failures_logged;
static int listener_fd;

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    apr_atomic_inc32(&accepts);
    if (accept_errno) {
        errno = accept_errno;
        return -1;
    }
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (op == EPOLL_CTL_ADD && fd == listener_fd) {
        apr_atomic_inc32(&listener_adds);
        if (listener_add_errno) {
            errno = listener_add_errno;
            return -1;
        }
    }
    return (int)syscall(SYS_epoll_ctl, epfd, op, fd, ev);
}

static void count_accept_failures(const char *file, int line, ad_log_level_t level, apr_status_t rv,
                                  const char *msg)
{
    (void)file;
    (void)line;
    (void)level;
    (void)rv;
    if (strstr(msg, "AD00153: ")) {
        apr_atomic_inc32(&accept_failures_logged);
    }
    if (strstr(msg, "AD00154: ")) {
        apr_atomic_inc32(&readd_failures_logged);
    }
}

static apr_pool_t *pool;
static ad_ipc_t *io;
static apr_thread_t *thread;
static volatile sig_atomic_t stop;
static ad_ipc_conn_t *volatile held; /* the message out, answered by the test */
static volatile int messages;
static char last[70000]; /* the last message's payload */
static volatile apr_size_t last_len;
static char path[108];
static volatile apr_uint32_t turns; /* atomic: the serving thread counts */

static void on_message(void *baton, ad_ipc_conn_t *c, apr_pool_t *mp, apr_uint32_t type,
                       char *payload, apr_size_t len)
{
    (void)baton;
    (void)mp;
    (void)type;
    if (len <= sizeof(last)) {
        memcpy(last, payload, len);
        last_len = len;
    }
    messages++;
    held = c;
}

static apr_interval_time_t turn(void *baton)
{
    (void)baton;
    apr_atomic_inc32(&turns);
    return apr_time_from_sec(10); /* the poll's own bound (200 ms) applies */
}

static void *APR_THREAD_FUNC serve(apr_thread_t *t, void *data)
{
    (void)t;
    ad_ipc_run(data, &stop);
    return NULL;
}

static int listen_unix(void)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(path, sizeof(path), "/tmp/ad-test-ipc.%ld.sock", (long)getpid());
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    return fd;
}

static int connect_unix(void)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* A frame header for a payload of len bytes at f. */
static void put_header(unsigned char *f, apr_uint32_t type, apr_size_t len)
{
    apr_uint32_t v[3] = {AD_WIRE_MAGIC, type, (apr_uint32_t)len};
    int i, k;

    for (i = 0; i < 3; i++) {
        for (k = 0; k < 4; k++) {
            f[i * 4 + k] = (unsigned char)(v[i] >> (24 - 8 * k));
        }
    }
}

/* An admin message's frame into frame[], its length returned. */
static size_t admin_frame(unsigned char *frame)
{
    static const char body[] = "{\"op\":\"status\"}";

    put_header(frame, AD_MSG_ADMIN, sizeof(body) - 1);
    memcpy(frame + AD_WIRE_HEADER_LEN, body, sizeof(body) - 1);
    return AD_WIRE_HEADER_LEN + sizeof(body) - 1;
}

static void send_message(int fd)
{
    unsigned char frame[64];
    size_t n = admin_frame(frame);

    ck_assert_int_eq(write(fd, frame, n), (int)n);
}

/* A frame of len bytes of a pattern, written in pieces cut at cuts[]
 * (ascending, 0-terminated) with a pause after each. */
static void send_in_pieces(int fd, apr_size_t len, const apr_size_t *cuts)
{
    unsigned char *f = apr_palloc(pool, AD_WIRE_HEADER_LEN + len);
    apr_size_t at = 0, total = AD_WIRE_HEADER_LEN + len, i;

    put_header(f, AD_MSG_ADMIN, len);
    for (i = 0; i < len; i++) {
        f[AD_WIRE_HEADER_LEN + i] = (unsigned char)('a' + i % 26);
    }
    for (; *cuts; cuts++) {
        ck_assert_int_eq(write(fd, f + at, *cuts - at), (int)(*cuts - at));
        at = *cuts;
        apr_sleep(apr_time_from_msec(30));
    }
    ck_assert_int_eq(write(fd, f + at, total - at), (int)(total - at));
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    while (d && readdir(d)) {
        n++;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int wait_for(volatile int *counter, int want)
{
    int i;

    for (i = 0; i < 500 && *counter < want; i++) {
        apr_sleep(apr_time_from_msec(10));
    }
    return *counter >= want;
}

static void setup(void)
{
    apr_socket_t *listener = NULL;
    int fd;

    accept_errno = listener_add_errno = 0;
    accept_failures_logged = readd_failures_logged = 0;
    ad_log_set(count_accept_failures, NULL);
    apr_pool_create(&pool, NULL);
    fd = listener_fd = listen_unix();
    apr_os_sock_put(&listener, &fd, pool);
    ck_assert_int_eq(ad_ipc_create(pool, listener, 8, on_message, turn, NULL, &io), APR_SUCCESS);
    stop = 0;
    held = NULL;
    messages = 0;
    ck_assert_int_eq(apr_thread_create(&thread, NULL, serve, io, pool), APR_SUCCESS);
}

static void teardown(void)
{
    apr_status_t rv;

    stop = 1;
    apr_thread_join(&rv, thread);
    ad_ipc_destroy(io);
    apr_pool_destroy(pool);
    unlink(path);
    ad_log_set(NULL, NULL);
}

START_TEST(reply_then_next_message_on_the_same_connection)
{
    int fd = connect_unix(), round;
    unsigned char hdr[AD_WIRE_HEADER_LEN];

    for (round = 1; round <= 3; round++) {
        send_message(fd);
        ck_assert(wait_for(&messages, round));
        ck_assert_int_eq(ad_ipc_reply(held, AD_MSG_ADMIN_REPLY, "ok", 2), APR_SUCCESS);
        ck_assert_int_eq(recv(fd, hdr, sizeof(hdr), MSG_WAITALL), (int)sizeof(hdr));
        ck_assert_int_eq(recv(fd, hdr, 2, MSG_WAITALL), 2);
    }
    close(fd);
}
END_TEST

START_TEST(a_message_cut_anywhere_arrives_whole)
{
    static const apr_size_t small_cuts[] = {5, 0};              /* inside the header */
    static const apr_size_t big_cuts[] = {13, 20000, 50000, 0}; /* past the first read */
    int fd = connect_unix();
    apr_size_t i;

    send_in_pieces(fd, 100, small_cuts);
    ck_assert(wait_for(&messages, 1));
    ck_assert_uint_eq(last_len, 100);
    ck_assert_int_eq(ad_ipc_reply(held, AD_MSG_ADMIN_REPLY, "ok", 2), APR_SUCCESS);
    send_in_pieces(fd, 60000, big_cuts);
    ck_assert(wait_for(&messages, 2));
    ck_assert_uint_eq(last_len, 60000);
    for (i = 0; i < 60000; i++) {
        ck_assert_int_eq(last[i], 'a' + i % 26);
    }
    ck_assert_int_eq(ad_ipc_reply(held, AD_MSG_ADMIN_REPLY, "ok", 2), APR_SUCCESS);
    close(fd);
}
END_TEST

START_TEST(a_child_that_does_not_wait_for_its_answer_is_cut_off)
{
    int fd = connect_unix();
    unsigned char two[128];
    size_t n = admin_frame(two);
    char b;

    n += admin_frame(two + n);
    ck_assert_int_eq(write(fd, two, n), (int)n);
    /* both frames come in one read: the connection is closed unanswered */
    ck_assert_int_le(recv(fd, &b, 1, 0), 0);
    ck_assert_int_eq(messages, 0);
    close(fd);
}
END_TEST

START_TEST(child_gone_while_its_message_is_out)
{
    int fds, fd, i;
    double cpu;

    /* one exchange first, so that the polling thread's own descriptors
     * (epoll) are all open when the baseline is taken */
    fd = connect_unix();
    send_message(fd);
    ck_assert(wait_for(&messages, 1));
    ad_ipc_reply(held, AD_MSG_ADMIN_REPLY, "ok", 2);
    close(fd);
    apr_sleep(apr_time_from_msec(100));
    fds = open_fds();

    fd = connect_unix();
    send_message(fd);
    ck_assert(wait_for(&messages, 2));
    close(fd); /* the child is gone; its message is still out */
    cpu = cpu_seconds();
    apr_sleep(apr_time_from_msec(300));
    /* a polling thread that kept seeing the hang-up would have spun */
    ck_assert_msg(cpu_seconds() - cpu < 0.1, "the polling thread spun for %.3f s of 0.3",
                  cpu_seconds() - cpu);
    ck_assert_int_ne(ad_ipc_reply(held, AD_MSG_ADMIN_REPLY, "ok", 2), APR_SUCCESS);
    for (i = 0; i < 200 && open_fds() > fds; i++) {
        apr_sleep(apr_time_from_msec(10));
    }
    ck_assert_int_eq(open_fds(), fds);
}
END_TEST

START_TEST(a_wakeup_ends_the_wait_at_once)
{
    apr_uint32_t before;
    int i;

    apr_sleep(apr_time_from_msec(50));
    before = apr_atomic_read32(&turns);
    for (i = 0; i < 10; i++) {
        ad_ipc_wakeup(io);
        apr_sleep(apr_time_from_msec(50));
    }
    /* 500 ms: the poll's own bound (200 ms) alone gives at most 3 turns */
    ck_assert_uint_ge(apr_atomic_read32(&turns) - before, 7);
}
END_TEST

/* Over 500 ms of a failing listener: one retry per 100 ms rest (5, with
 * slack), where a spinning loop makes hundreds of thousands; no message. */
static void assert_retried_once_per_rest(volatile apr_uint32_t *retries)
{
    apr_uint32_t before = apr_atomic_read32(retries);
    double cpu = cpu_seconds();

    apr_sleep(apr_time_from_msec(500));
    ck_assert_uint_le(apr_atomic_read32(retries) - before, 8);
    ck_assert_uint_ge(apr_atomic_read32(retries) - before, 3);
    ck_assert_msg(cpu_seconds() - cpu < 0.1, "the polling thread spun for %.3f s of 0.5",
                  cpu_seconds() - cpu);
    ck_assert_int_eq(messages, 0);
}

/* The failure over, the child waiting on fd is served. */
static void assert_served(int fd)
{
    ck_assert(wait_for(&messages, 1));
    ck_assert_int_eq(ad_ipc_reply(held, AD_MSG_ADMIN_REPLY, "ok", 2), APR_SUCCESS);
    close(fd);
}

START_TEST(a_failing_accept_rests_the_listener_and_is_logged_once)
{
    int fd;

    accept_errno = ENOBUFS;
    fd = connect_unix(); /* queued: the listener stays readable */
    send_message(fd);
    apr_sleep(apr_time_from_msec(50));
    assert_retried_once_per_rest(&accepts);
    ck_assert_uint_eq(apr_atomic_read32(&accept_failures_logged), 1);
    accept_errno = 0;
    assert_served(fd);
}
END_TEST

/* Out of memory, the listener may not go back into the pollset either. */
START_TEST(a_listener_that_cannot_be_polled_again_rests_again)
{
    int fd;

    accept_errno = ENOBUFS; /* the listener rests ... */
    listener_add_errno = ENOMEM;
    fd = connect_unix();
    send_message(fd);
    apr_sleep(apr_time_from_msec(50));
    accept_errno = 0; /* ... and its return is what fails */
    assert_retried_once_per_rest(&listener_adds);
    ck_assert_uint_eq(apr_atomic_read32(&readd_failures_logged), 1);
    listener_add_errno = 0;
    assert_served(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ipc");
    TCase *tc = tcase_create("connections");

    signal(SIGPIPE, SIG_IGN);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, reply_then_next_message_on_the_same_connection);
    tcase_add_test(tc, child_gone_while_its_message_is_out);
    tcase_add_test(tc, a_message_cut_anywhere_arrives_whole);
    tcase_add_test(tc, a_child_that_does_not_wait_for_its_answer_is_cut_off);
    tcase_add_test(tc, a_wakeup_ends_the_wait_at_once);
    tcase_add_test(tc, a_failing_accept_rests_the_listener_and_is_logged_once);
    tcase_add_test(tc, a_listener_that_cannot_be_polled_again_rests_again);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
