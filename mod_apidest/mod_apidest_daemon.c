#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/sysmacros.h>
#endif

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_main.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <unixd.h>
#include <ap_listen.h>
#include <apr_signal.h>
#include <apr_strings.h>
#include <apr_portable.h>
#include <apr_file_io.h>
#include <apr_thread_mutex.h>

#include "ad_log.h"
#include "mod_apidest_daemon.h"
#include "mod_apidest_config.h"
#include "mod_apidest_status.h"
#include "ad_daemon.h"
#include "ad_store.h"
#include "ad_wire.h"

APLOG_USE_MODULE(apidest);

/* Exit status of a daemon that could not start: the master does not respawn
 * it in a loop (as mod_cgid's DAEMON_STARTUP_ERROR). */
#define DAEMON_STARTUP_ERROR 254
#define CONNECT_ATTEMPTS     12 /* ~3 s of retries across a restart */
#define DAEMON_IO_TIMEOUT    apr_time_from_sec(30)
#define RESEND_ATTEMPTS      4 /* 25+50+100+200 ms apart, then connect's own */
#define DRAIN_TIMEOUT        apr_time_from_msec(2000) /* < APR's 3 s kill timeout */
#define STORE_LOCK_WAIT      apr_time_from_sec(30)
#define PID_FILE             "apidestd.pid"
/* A daemon that dies this soon after its start is crashing, not killed
 * once: after QUICK_DEATHS_FREE such deaths in a row the master waits
 * before the next start, 1 s doubling up to RESPAWN_DELAY_MAX. */
#define QUICK_DEATH        apr_time_from_sec(10)
#define QUICK_DEATHS_FREE  2
#define RESPAWN_DELAY_MAX  60
#define RESPAWN_WAIT_SLICE apr_time_from_msec(100)
/* The socket is named for the master's pid: SOCK_PREFIX <pid> SOCK_SUFFIX. */
#define SOCK_PREFIX "apidest."
#define SOCK_SUFFIX ".sock"

static const char *sockname;
static apr_file_t *journal;
static const char *pidfile;
static server_rec *root_server;
static apr_pool_t *root_pool;
static volatile sig_atomic_t daemon_stop;
static int daemon_reaped;         /* in the master: the daemon's pid was reaped */
static apr_time_t daemon_started; /* in the master: when it was forked */
static pid_t daemon_forked;       /* in the master: the last daemon's pid */
static int quick_deaths;          /* in the master: in a row */
/* In the master: where the running daemon is noted as a subprocess and an
 * other child, so that a reaped one is forgotten with it. */
static apr_pool_t *daemon_pool;

/* ---- in apidestd ---------------------------------------------------------- */

static void on_stop_signal(int sig)
{
    (void)sig;
    daemon_stop = 1;
}

static void daemon_signals(void)
{
    apr_signal(SIGTERM, on_stop_signal);
    apr_signal(SIGHUP, on_stop_signal);
    apr_signal(SIGINT, on_stop_signal);
    /* prefork signals graceful restarts to its whole process group; the
     * master replaces us through pconf's cleanup instead. */
    apr_signal(SIGUSR1, SIG_IGN);
    apr_signal(SIGWINCH, SIG_IGN);
    apr_signal(SIGPIPE, SIG_IGN);
    apr_signal(SIGCHLD, SIG_DFL);
}

/* lchown: a link planted in the runtime directory in the moment after
 * bind() must not hand its target to the httpd user. */
static int own_socket(server_rec *s, const char *path)
{
    if (geteuid() == 0 && lchown(path, ap_unixd_config.user_id, ap_unixd_config.group_id) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     ADLOGNO(10010) "apidestd: cannot give %s to the httpd user", path);
        return 0;
    }
    return 1;
}

/* A directory apidestd made, given to the httpd user through a descriptor
 * that did not follow a symbolic link and is a directory. */
static int own_dir(server_rec *s, const char *path)
{
    struct stat st;
    int fd, ok;

    if (geteuid() != 0) {
        return 1;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) &&
         fchown(fd, ap_unixd_config.user_id, ap_unixd_config.group_id) == 0;
    if (!ok) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     ADLOGNO(10048) "apidestd: cannot give %s to the httpd user", path);
    }
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static int bind_socket(server_rec *s, int *fd_out)
{
    struct sockaddr_un sa;
    mode_t omask;
    int fd, rc;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    apr_cpystrn(sa.sun_path, sockname, sizeof(sa.sun_path));
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     ADLOGNO(10011) "apidestd: cannot create its socket");
        return 0;
    }
    unlink(sockname);
    omask = umask(0177); /* 0600: only the httpd user may talk to apidestd */
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(omask);
    if (rc < 0 || listen(fd, 511) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     ADLOGNO(10012) "apidestd: cannot bind/listen on %s", sockname);
        close(fd);
        return 0;
    }
    *fd_out = fd;
    return own_socket(s, sockname);
}

#define STORE_DIR_PERMS (APR_FPROT_OS_DEFAULT & ~APR_FPROT_WREAD & ~APR_FPROT_WWRITE)

/* The directory holding path, without a trailing '/' ("/" for the root). */
static char *parent_dir(apr_pool_t *p, const char *path)
{
    char *dir = ap_make_dirstr_parent(p, path);
    apr_size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/') {
        dir[--n] = '\0';
    }
    return dir;
}

/* dir (no trailing '/') and its missing parents; those it made are listed
 * in made, parents first. */
static apr_status_t make_dirs(apr_pool_t *p, const char *dir, apr_array_header_t *made)
{
    apr_status_t rv = apr_dir_make(dir, STORE_DIR_PERMS, p);
    const char *parent;

    if (APR_STATUS_IS_ENOENT(rv)) {
        parent = parent_dir(p, dir);
        if (!*parent || !strcmp(parent, dir) ||
            ((rv = make_dirs(p, parent, made)) != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv))) {
            return rv;
        }
        rv = apr_dir_make(dir, STORE_DIR_PERMS, p);
    }
    if (rv == APR_SUCCESS) {
        APR_ARRAY_PUSH(made, const char *) = dir;
    }
    return rv;
}

/* Only the directories made here are given to the httpd user: one that
 * exists keeps its owner (a store in ServerRoot or /var/lib must not hand
 * those to the user the web server runs as). */
static int prepare_store_dir(apr_pool_t *p, server_rec *s, const char *dir)
{
    apr_array_header_t *made = apr_array_make(p, 4, sizeof(const char *));
    apr_status_t rv = make_dirs(p, dir, made);
    int i;

    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     ADLOGNO(10013) "apidestd: cannot create the store directory %s", dir);
        return 0;
    }
    /* Deepest first: each is given away while its parent is still ours,
     * so the httpd user cannot swap it for a link meanwhile. */
    for (i = made->nelts - 1; i >= 0; i--) {
        if (!own_dir(s, APR_ARRAY_IDX(made, i, const char *))) {
            return 0;
        }
    }
    return 1;
}

/* After the privileges are dropped: a store directory the httpd user
 * cannot write is named as such, not as a store that does not open. */
static int store_dir_writable(server_rec *s, const char *store_dir)
{
    if (access(store_dir, W_OK | X_OK) != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     ADLOGNO(10046) "apidestd: the store directory %s is not writable by the "
                                    "user httpd runs as; give it to that user (mod_apidest "
                                    "gives only the directories it creates)",
                     store_dir);
        return 0;
    }
    return 1;
}

/* Written as root, created anew and never through a link: a file planted
 * in its place would otherwise be truncated and written. It stays root's
 * (the master removes it; children only read it). */
static void write_pid_file(server_rec *s)
{
    char line[32];
    int fd, n = snprintf(line, sizeof(line), "%" APR_PID_T_FMT "\n", getpid());

    unlink(pidfile);
    fd = open(pidfile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s,
                     ADLOGNO(10050) "apidestd: cannot write its pid file %s", pidfile);
    }
    if (fd >= 0) {
        close(fd);
    }
}

/* A master killed by SIGKILL runs no cleanup: apidestd would outlive it
 * and hold the store's lock against the next start's daemon. The parent
 * death signal is set once privileges are dropped, which clear it. */
static void stop_with_master(pid_t master)
{
#ifdef PR_SET_PDEATHSIG
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    if (getppid() != master) {
        daemon_stop = 1; /* it died before the signal was set */
    }
}

/* systemd gives services a soft limit of 1,024 open files and a high hard
 * one, for programs that need more to raise themselves: apidestd keeps a
 * connection per busy httpd thread, and polls with epoll and poll, never
 * select. Below the hard limit it would run out with a big server. */
static void raise_open_files_limit(server_rec *s)
{
    struct rlimit rl;
    rlim_t was;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) {
        return;
    }
    was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, s,
                     ADLOGNO(10056) "apidestd keeps its open-files limit of %lu",
                     (unsigned long)was);
    }
}

static int daemon_main(apr_pool_t *p, server_rec *s, pid_t master)
{
    const ad_conf_t *c = apidest_conf(s);
    const char *store_dir = parent_dir(p, c->store_path);
    ad_daemon_opts_t o;
    apr_socket_t *listener = NULL;
    const char *err;
    apr_status_t rv;
    int fd;

    if (!bind_socket(s, &fd) || !prepare_store_dir(p, s, store_dir)) {
        return DAEMON_STARTUP_ERROR;
    }
    write_pid_file(s);
    if (ap_run_drop_privileges(p, s) != 0 || !store_dir_writable(s, store_dir)) {
        return DAEMON_STARTUP_ERROR;
    }
    stop_with_master(master);
    raise_open_files_limit(s);
    apr_os_sock_put(&listener, &fd, p);
    memset(&o, 0, sizeof(o));
    o.conf = c;
    o.listener = listener;
    o.stop = &daemon_stop;
    o.drain = DRAIN_TIMEOUT;
    o.store_wait = STORE_LOCK_WAIT;
    o.metrics = apidest_metrics();
    o.journal = journal;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 ADLOGNO(10014) "apidestd %" APR_PID_T_FMT " starting: store %s, socket %s",
                 getpid(), c->store_spec, sockname);
    rv = ad_daemon_run(p, &o, &err);
    if (rv != APR_SUCCESS) {
        /* httpd would print the store library's own codes as "APR does
         * not understand"; err has the library's text for them. */
        int shown = ad_store_is_library_status(rv) ? 0 : rv;
        ap_log_error(APLOG_MARK, APLOG_CRIT, shown, s, ADLOGNO(10015) "apidestd cannot run: %s",
                     err ? err : "unknown error");
        return DAEMON_STARTUP_ERROR;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, ADLOGNO(10016) "apidestd %" APR_PID_T_FMT " stopped",
                 getpid());
    return 0;
}

/* ---- in the master -------------------------------------------------------- */

static int daemon_start(apr_pool_t *p, server_rec *s, apr_proc_t *proc, int delay);

static int mpm_stopping(void)
{
    int state;
    return ap_mpm_query(AP_MPMQ_MPM_STATE, &state) != APR_SUCCESS || state == AP_MPMQ_STOPPING;
}

/* The daemon was reaped: pconf must not keep its pid among the processes
 * it signals at a restart (another process may have it by then). */
static void forget_daemon(apr_proc_t *proc)
{
    daemon_reaped = 1;
    apr_proc_other_child_unregister(proc);
    if (daemon_pool) {
        apr_pool_destroy(daemon_pool);
        daemon_pool = NULL;
    }
}

/* Seconds to wait before the next start: 0 unless the daemon keeps dying
 * soon after its start, so that a crash loop neither spins the master's
 * forks nor floods the error log. */
static int respawn_delay(apr_time_t lived)
{
    int delay = 1, n;

    quick_deaths = lived < QUICK_DEATH ? quick_deaths + 1 : 0;
    if (quick_deaths <= QUICK_DEATHS_FREE) {
        return 0;
    }
    for (n = quick_deaths - QUICK_DEATHS_FREE; n > 1 && delay < RESPAWN_DELAY_MAX; n--) {
        delay *= 2;
    }
    return delay < RESPAWN_DELAY_MAX ? delay : RESPAWN_DELAY_MAX;
}

static void restart_dead_daemon(apr_proc_t *proc)
{
    apr_time_t lived = apr_time_now() - daemon_started;
    int delay = respawn_delay(lived);

    if (delay) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, root_server,
                     ADLOGNO(10054) "apidestd (pid %" APR_PID_T_FMT ") died %" APR_TIME_T_FMT
                                    " ms after its start, %d times in a row; restarting it in %d s",
                     proc->pid, apr_time_as_msec(lived), quick_deaths, delay);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, root_server,
                     ADLOGNO(10018) "apidestd (pid %" APR_PID_T_FMT ") died, restarting it",
                     proc->pid);
    }
    daemon_start(root_pool, root_server, proc, delay);
}

static void daemon_maint(int reason, void *data, apr_wait_t status)
{
    apr_proc_t *proc = data;

    switch (reason) {
    case APR_OC_REASON_DEATH:
        forget_daemon(data);
        if (mpm_stopping()) {
            break;
        }
        /* The MPM hands over the exit code, not the raw wait status. */
        if (status == DAEMON_STARTUP_ERROR) {
            ap_log_error(
                APLOG_MARK, APLOG_CRIT, 0, root_server,
                ADLOGNO(10017) "apidestd failed to start; not restarting it (ingest answers 503)");
            break;
        }
        restart_dead_daemon(proc);
        break;
    case APR_OC_REASON_LOST:
        forget_daemon(data);
        daemon_start(root_pool, root_server, proc, 0);
        break;
    case APR_OC_REASON_RESTART:
        apr_proc_other_child_unregister(data);
        break;
    case APR_OC_REASON_UNREGISTER:
        /* pconf is going away (restart or stop): ask the daemon to finish;
         * APR_KILL_AFTER_TIMEOUT sends SIGKILL 3 s later if it has not. A
         * pid already reaped may be another process's by now. */
        if (!daemon_reaped) {
            kill(proc->pid, SIGTERM);
        }
        break;
    }
}

static apr_status_t clear_pool_ref(void *ref)
{
    *(apr_pool_t **)ref = NULL;
    return APR_SUCCESS;
}

/* In the new daemon, before it binds: a stop or the master's death ends
 * the wait (the master forks at once rather than sleep in its loop). Slept
 * in slices, not to a time of day a clock step would move. */
static int wait_before_start(int delay, pid_t master)
{
    apr_int64_t slices = apr_time_from_sec(delay) / RESPAWN_WAIT_SLICE;

    for (; slices > 0; slices--) {
        if (daemon_stop || getppid() != master) {
            return 0;
        }
        apr_sleep(RESPAWN_WAIT_SLICE);
    }
    return !daemon_stop;
}

static int daemon_start(apr_pool_t *p, server_rec *s, apr_proc_t *proc, int delay)
{
    pid_t master = getpid(), pid = fork();

    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, ADLOGNO(10019) "cannot fork apidestd");
        return DECLINED;
    }
    if (pid == 0) {
        apr_pool_t *dp;
        apr_pool_create(&dp, p);
        apr_pool_tag(dp, "apidestd");
        daemon_signals();
        ap_close_listeners();
        exit(delay && !wait_before_start(delay, master) ? 0 : daemon_main(dp, s, master));
    }
    proc->pid = pid;
    daemon_forked = pid;
    daemon_started = apr_time_now() + apr_time_from_sec(delay);
    daemon_reaped = 0;
    proc->in = proc->out = proc->err = NULL;
    /* A subpool of pconf: destroyed before pconf's own cleanups, so the
     * daemon has drained and exited before they run. */
    apr_pool_create(&daemon_pool, p);
    apr_pool_tag(daemon_pool, "apidestd-proc");
    apr_pool_cleanup_register(daemon_pool, &daemon_pool, clear_pool_ref, apr_pool_cleanup_null);
    apr_pool_note_subprocess(daemon_pool, proc, APR_KILL_AFTER_TIMEOUT);
    apr_proc_other_child_register(proc, daemon_maint, proc, NULL, daemon_pool);
    return OK;
}

/* Opened by the master like any httpd log, so piped loggers work and the
 * file may live where only root can write; apidestd inherits it. */
static int open_journal(apr_pool_t *pconf, server_rec *s, const char *spec)
{
    apr_status_t rv;

    journal = NULL;
    if (!spec) {
        return OK;
    }
    if (*spec == '|') {
        piped_log *pl = ap_open_piped_log(pconf, spec + 1);
        if (!pl) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         ADLOGNO(10025) "cannot start the ApiDestJournal program %s", spec + 1);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        journal = ap_piped_log_write_fd(pl);
        return OK;
    }
    rv = apr_file_open(&journal, ap_server_root_relative(pconf, spec),
                       APR_FOPEN_WRITE | APR_FOPEN_APPEND | APR_FOPEN_CREATE,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     ADLOGNO(10026) "cannot open the ApiDestJournal file %s", spec);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Nothing moves records from one store to another: a restart onto a new
 * ApiDestStore leaves what is pending in the old one undelivered. The
 * process pool outlives restarts, so the master remembers the last store. */
static void note_store_change(server_rec *s)
{
    static const char key[] = "apidest-store-spec";
    apr_pool_t *pp = s->process->pool;
    const ad_conf_t *c = apidest_conf(s);
    /* driver and resolved path: "dbm:/x" and "dbm:gdbm:/x" are one store */
    const char *now = apr_pstrcat(root_pool, "dbm:", c->store_driver, ":", c->store_path, NULL);
    void *was = NULL;

    apr_pool_userdata_get(&was, key, pp);
    if (was && strcmp(was, now)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     ADLOGNO(10047) "ApiDestStore changed from %s to %s: records still pending or "
                                    "dead-lettered in the old store stay there, undelivered; "
                                    "point ApiDestStore back to it to deliver them",
                     (const char *)was, now);
    }
    if (!was || strcmp(was, now)) {
        apr_pool_userdata_set(apr_pstrdup(pp, now), key, NULL, pp);
    }
}

/* 0 when apidestd's pid file cannot be read or is empty. Without a pool:
 * the master reads it in a cleanup of pconf. */
static int read_pid_file(pid_t *pid)
{
    char buf[32];
    int fd = pidfile ? open(pidfile, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0) {
        close(fd);
    }
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    *pid = (pid_t)atol(buf);
    return 1;
}

/* The pid file names this master's daemon, or cannot be read: the next
 * instance of this server, started while this one stops, may have written
 * its daemon's there since. */
static int pid_file_is_ours(void)
{
    pid_t pid;

    return !read_pid_file(&pid) || pid == daemon_forked;
}

/* The runtime directory is root's, so the master removes what apidestd
 * cannot. pconf's cleanups run after the daemon's subpool has stopped it;
 * a restart's daemon makes both anew. */
static apr_status_t remove_runtime_files(void *unused)
{
    (void)unused;
    unlink(sockname);
    if (pid_file_is_ours()) {
        unlink(pidfile);
    }
    return APR_SUCCESS;
}

/* Sockets of masters killed with SIGKILL (their pid is in the name) would
 * pile up in the runtime directory. */
static void remove_stale_sockets(apr_pool_t *p)
{
    const char *dir = ap_runtime_dir_relative(p, "");
    apr_finfo_t fi;
    apr_dir_t *d;
    long pid;
    char *end;

    if (!dir || apr_dir_open(&d, dir, p) != APR_SUCCESS) {
        return;
    }
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d) == APR_SUCCESS) {
        if (fi.filetype == APR_SOCK && !strncmp(fi.name, SOCK_PREFIX, sizeof(SOCK_PREFIX) - 1) &&
            (pid = strtol(fi.name + sizeof(SOCK_PREFIX) - 1, &end, 10)) > 0 &&
            !strcmp(end, SOCK_SUFFIX) && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 &&
            errno == ESRCH) {
            unlink(ap_runtime_dir_relative(p, fi.name));
        }
    }
    apr_dir_close(d);
}

/* The socket of the master whose pid is pid_text, in the runtime directory
 * (NULL when that is not a usable path). */
static const char *socket_path(apr_pool_t *p, const char *pid_text)
{
    return ap_runtime_dir_relative(p, apr_pstrcat(p, SOCK_PREFIX, pid_text, SOCK_SUFFIX, NULL));
}

/* The pid the socket will be named for: in the pass that starts or
 * restarts the server, the master's own (this process); in a configtest or
 * the dry run before a start, the widest the system gives out. */
static const char *master_pid_text(apr_pool_t *p)
{
    long max = 0;
    FILE *f;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_CONFIG) {
        return apr_psprintf(p, "%" APR_PID_T_FMT, getpid());
    }
    if ((f = fopen("/proc/sys/kernel/pid_max", "r"))) {
        if (fscanf(f, "%ld", &max) != 1) {
            max = 0;
        }
        fclose(f);
    }
    return apr_psprintf(p, "%ld", max > 1 ? max - 1 : 2147483647L);
}

const char *apidest_daemon_socket_refusal(apr_pool_t *p)
{
    struct sockaddr_un sa;
    const char *path = socket_path(p, master_pid_text(p));

    if (path && strlen(path) < sizeof(sa.sun_path)) {
        return NULL;
    }
    return apr_psprintf(p,
                        "apidestd's socket path '%s' would be over %d bytes: shorten "
                        "DefaultRuntimeDir",
                        path ? path : "", (int)sizeof(sa.sun_path) - 1);
}

#ifdef __linux__
/* The pid /proc/locks names as holding a lock on the file st describes, or
 * 0. flock() locks carry no owner a process could ask for otherwise. */
static pid_t lock_holder(const struct stat *st)
{
    FILE *f = fopen("/proc/locks", "r");
    char line[256];
    pid_t holder = 0;

    while (f && !holder && fgets(line, sizeof(line), f)) {
        unsigned int maj, min;
        unsigned long ino;
        long pid;
        /* "1: FLOCK  ADVISORY  WRITE 831 fe:00:10961559 0 EOF"; a waiter's
         * line has "->" before FLOCK and does not scan */
        if (sscanf(line, "%*d: %*s %*s %*s %ld %x:%x:%lu", &pid, &maj, &min, &ino) == 4 &&
            maj == major(st->st_dev) && min == minor(st->st_dev) && ino == st->st_ino && pid > 0) {
            holder = (pid_t)pid;
        }
    }
    if (f) {
        fclose(f);
    }
    return holder;
}

static pid_t parent_of(pid_t pid)
{
    char state;
    pid_t ppid;

    return apidest_proc_stat(pid, &state, &ppid) ? ppid : 0;
}

/* The program a process runs; an upgrade leaves " (deleted)" after it. */
static apr_size_t program_of(const char *pid, char *buf, apr_size_t size)
{
    char link[64];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/%s/exe", pid);
    n = readlink(link, buf, size - 1);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    if (n > 10 && !strcmp(buf + n - 10, " (deleted)")) {
        n -= 10;
    }
    return (apr_size_t)n;
}

/* Another server of this httpd binary. This server's previous instance,
 * still stopping (httpd removes its PidFile before its apidestd is gone),
 * has its socket, named for its master, in this runtime directory until
 * its very end: that one a start waits for as before. */
static int is_another_server(apr_pool_t *p, pid_t master)
{
    char mine[4096], theirs[4096];
    const char *id = apr_psprintf(p, "%" APR_PID_T_FMT, master);
    apr_size_t a = program_of("self", mine, sizeof(mine));
    apr_size_t b = program_of(id, theirs, sizeof(theirs));
    const char *sock = socket_path(p, id);
    struct stat st;

    if (!a || a != b || memcmp(mine, theirs, a)) {
        return 0;
    }
    return !sock || lstat(sock, &st) != 0 || !S_ISSOCK(st.st_mode);
}
#endif

/* At a start, whether another httpd's apidestd holds the store: its daemon
 * would wait 30 s for the lock and then give up, leaving this server up
 * and answering 503. A holder whose master is gone (killed, its daemon
 * still draining), that is no httpd's, or that is this server's previous
 * instance (is_another_server) is waited for as before. Refused
 * only in the dry run before the start, where a failure is shown on the
 * console and nothing runs yet; a restart that points ApiDestStore at a
 * store in use would take the whole server down. */
static int store_held_by_another_httpd(apr_pool_t *p, server_rec *s)
{
#ifdef __linux__
    const ad_conf_t *c = apidest_conf(s);
    const char *lock = ad_store_lock_path(p, c->store_path);
    struct stat st;
    pid_t holder, master;

    if (stat(lock, &st) != 0 || !(holder = lock_holder(&st)) || (master = parent_of(holder)) <= 1 ||
        master == getpid() || !is_another_server(p, master)) {
        return 0;
    }
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                 ADLOGNO(10055) "ApiDestStore %s is in use by another httpd (master pid "
                                "%" APR_PID_T_FMT ", its apidestd pid %" APR_PID_T_FMT
                                " holds %s): give each server its own ApiDestStore",
                 c->store_spec, master, holder, lock);
    return 1;
#else
    (void)p;
    (void)s;
    return 0;
#endif
}

int apidest_daemon_init(apr_pool_t *pconf, server_rec *s)
{
    apr_proc_t *proc;
    struct sockaddr_un sa;
    int rc;

    sockname = socket_path(pconf, apr_psprintf(pconf, "%" APR_PID_T_FMT, getpid()));
    pidfile = ap_runtime_dir_relative(pconf, PID_FILE);
    if (!sockname || strlen(sockname) >= sizeof(sa.sun_path)) {
        ap_log_error(
            APLOG_MARK, APLOG_CRIT, 0, s,
            ADLOGNO(10020) "apidestd socket path '%s' is too long: shorten DefaultRuntimeDir",
            sockname ? sockname : "");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        /* the dry-run pass at startup starts nothing */
        return store_held_by_another_httpd(pconf, s) ? HTTP_INTERNAL_SERVER_ERROR : OK;
    }
    root_server = s;
    root_pool = pconf;
    note_store_change(s);
    remove_stale_sockets(pconf);
    apr_pool_cleanup_register(pconf, NULL, remove_runtime_files, apr_pool_cleanup_null);
    if ((rc = open_journal(pconf, s, apidest_conf(s)->journal)) != OK) {
        return rc;
    }
    proc = apr_pcalloc(pconf, sizeof(*proc));
    quick_deaths = 0;
    return daemon_start(pconf, s, proc, 0);
}

int apidest_proc_stat(pid_t pid, char *state, pid_t *ppid)
{
    char path[64], buf[512], *end;
    FILE *f;
    size_t n;
    long pp;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (!(f = fopen(path, "r"))) {
        return 0;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and ')' */
    if (!(end = strrchr(buf, ')')) || sscanf(end + 1, " %c %ld", state, &pp) != 2) {
        return 0;
    }
    *ppid = (pid_t)pp;
    return 1;
}

/* ---- in the children -------------------------------------------------------- */

/* Connections to apidestd outlive requests: a thread takes an idle one,
 * makes its exchange and gives it back, so a PutEvents costs no connect,
 * accept or close. */
static apr_thread_mutex_t *idle_mu;
static int *idle_fds;
static int idle_n, idle_max;

void apidest_daemon_child_init(apr_pool_t *pchild, server_rec *s)
{
    int threads = 1;

    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    idle_max = threads > 0 ? threads : 1;
    idle_fds = apr_pcalloc(pchild, sizeof(int) * idle_max);
    if (apr_thread_mutex_create(&idle_mu, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     ADLOGNO(10041) "no mutex: every request opens its own connection to "
                                    "apidestd");
        idle_max = 0;
    }
}

/* An idle connection apidestd has closed since (it restarted) is not looked
 * for here, which took a poll per request: the write that fails on it says
 * so, and exchange() sends again on a new connection. */
static int idle_take(void)
{
    int fd = -1;

    if (idle_max) {
        apr_thread_mutex_lock(idle_mu);
        fd = idle_n ? idle_fds[--idle_n] : -1;
        apr_thread_mutex_unlock(idle_mu);
    }
    return fd;
}

static void idle_give(int fd)
{
    if (idle_max) {
        apr_thread_mutex_lock(idle_mu);
        if (idle_n < idle_max) {
            idle_fds[idle_n++] = fd;
            fd = -1;
        }
        apr_thread_mutex_unlock(idle_mu);
    }
    if (fd >= 0) {
        close(fd);
    }
}

/* The connection stays blocking, bounded by the kernel's timeouts: an APR
 * timeout made every exchange set O_NONBLOCK again (two fcntl) and wait for
 * the reply with a recv that failed, a poll and a second recv. */
static int bound_io(int fd)
{
    struct timeval tv;

    tv.tv_sec = apr_time_sec(DAEMON_IO_TIMEOUT);
    tv.tv_usec = 0;
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
           setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0;
}

/* Retries for a while: the daemon is briefly away while the master
 * restarts it. */
static int connect_daemon(request_rec *r, int *fd_out)
{
    struct sockaddr_un sa;
    apr_interval_time_t backoff = apr_time_from_msec(25);
    int attempt;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    apr_cpystrn(sa.sun_path, sockname, sizeof(sa.sun_path));
    for (attempt = 1; attempt <= CONNECT_ATTEMPTS; attempt++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            break;
        }
        /* bounded before connect, which waits on the send timeout: with
         * apidestd stalled and its listen queue full, a child blocked in
         * connect() for good */
        if (bound_io(fd) && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            *fd_out = fd;
            return 1;
        }
        close(fd);
        if (errno != ECONNREFUSED && errno != ENOENT && errno != EINTR) {
            break; /* EAGAIN: the queue stayed full for the whole timeout */
        }
        apr_sleep(backoff);
        /* 25+50+100+200+400 ms, then 400 ms steps: ~3 s in all */
        if (backoff < apr_time_from_msec(400)) {
            backoff *= 2;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, errno, r, ADLOGNO(10021) "cannot reach apidestd at %s",
                  sockname);
    return 0;
}

/* Whether apidestd went away without reading all of a message. On a Unix
 * socket a send fails only once the peer is closed, and a read is reset (not
 * ended) only when the peer was closed with bytes of ours still unread; a
 * message is acted on only once it has been read whole, and its reply comes
 * after. So the message was not acted on and may be sent again. */
static int never_read(apr_status_t rv)
{
    return APR_STATUS_IS_EPIPE(rv) || APR_STATUS_IS_ECONNRESET(rv);
}

/* The reply is awaited in poll, not in a blocking recv: a reader asleep in
 * recv on a Unix socket is also woken (in vain) when apidestd reads the
 * request and so frees send space, one more context switch per request. */
static apr_status_t await_reply(int fd, apr_interval_time_t wait)
{
    struct pollfd pfd;
    int n;

    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    do {
        n = poll(&pfd, 1, (int)apr_time_as_msec(wait));
    } while (n < 0 && errno == EINTR);
    return n > 0 ? APR_SUCCESS : n == 0 ? APR_TIMEUP : APR_FROM_OS_ERROR(errno);
}

/* A message to apidestd: a text (admin) or records (STORE). */
typedef struct out_msg_t {
    apr_uint32_t type;
    const char *buf;
    apr_size_t len;
    const apr_array_header_t *blobs;
    apr_interval_time_t wait; /* for the reply */
} out_msg_t;

static apr_status_t send_msg(request_rec *r, apr_socket_t *s, const out_msg_t *m)
{
    return m->blobs ? ad_wire_send_blobs(s, r->pool, m->type, m->blobs)
                    : ad_wire_send(s, m->type, m->buf, m->len);
}

/* One request and its reply over fd, which is closed or kept idle. */
static apr_status_t exchange_on(request_rec *r, int fd, const out_msg_t *m, apr_uint32_t want,
                                apr_uint32_t *status, const char **text, apr_size_t *text_len)
{
    apr_socket_t *s = NULL;
    apr_uint32_t got;
    char *payload;
    apr_size_t plen;
    apr_status_t rv;

    /* apr_os_sock_put registers no cleanup: the descriptor stays ours. Its
     * APR timeout stays "block": bound_io() bounds each send and read. */
    apr_os_sock_put(&s, &fd, r->pool);
    if ((rv = send_msg(r, s, m)) != APR_SUCCESS || (rv = await_reply(fd, m->wait)) ||
        (rv = ad_wire_recv(s, r->pool, &got, &payload, &plen)) != APR_SUCCESS) {
        close(fd);
        /* bound_io()'s timeouts end a send or read with EAGAIN */
        return APR_STATUS_IS_EAGAIN(rv) ? APR_TIMEUP : rv;
    }
    if (got != want || ad_wire_unpack_reply(payload, plen, status, text, text_len) != APR_SUCCESS) {
        close(fd);
        return APR_EINVAL;
    }
    idle_give(fd);
    return APR_SUCCESS;
}

/* One request and its reply over an idle connection or a new one. A message
 * apidestd may have read is never resent (it may have stored it); one it
 * cannot have read is, on a new connection: at once when the connection was
 * an idle one (closed by an apidestd that restarted since), after a backoff
 * when it was new (it may still have reached a dying apidestd's
 * listener). */
static apr_status_t exchange(request_rec *r, const out_msg_t *m, apr_uint32_t want,
                             apr_uint32_t *status, const char **text, apr_size_t *text_len)
{
    apr_interval_time_t backoff = apr_time_from_msec(25);
    apr_status_t rv;
    int fd = idle_take(), reused = fd >= 0, resend = 0;

    for (;;) {
        if (fd < 0 && !connect_daemon(r, &fd)) {
            return APR_ECONNREFUSED;
        }
        rv = exchange_on(r, fd, m, want, status, text, text_len);
        fd = -1;
        if (!never_read(rv)) {
            return rv;
        }
        if (reused) {
            reused = 0;
            continue;
        }
        if (resend++ == RESEND_ATTEMPTS) {
            return rv;
        }
        ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r,
                      ADLOGNO(10044) "apidestd went away before reading the request: sending it "
                                     "again on a new connection");
        apr_sleep(backoff);
        backoff *= 2;
    }
}

apidest_store_result_t apidest_daemon_store(request_rec *r, const apr_array_header_t *blobs)
{
    out_msg_t m = {AD_MSG_STORE, NULL, 0, NULL, DAEMON_IO_TIMEOUT};
    const char *text;
    apr_size_t len, text_len;
    apr_uint32_t status;
    apr_status_t rv;

    if (ad_wire_blobs_size(blobs, &len) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      ADLOGNO(10051) "the records are over one message to apidestd (%u bytes)",
                      AD_WIRE_MAX_PAYLOAD);
        return APIDEST_STORE_REFUSED;
    }
    m.blobs = blobs;
    rv = exchange(r, &m, AD_MSG_STORE_ACK, &status, &text, &text_len);
    if (rv != APR_SUCCESS) {
        int unread = APR_STATUS_IS_ECONNREFUSED(rv) || never_read(rv);
        ap_log_rerror(
            APLOG_MARK, APLOG_ERR, rv, r, ADLOGNO(10022) "no acknowledgement from apidestd: %s",
            unread ? "records not accepted" : "the records may have been stored (answered 503)");
        return unread ? APIDEST_STORE_UNREACHABLE : APIDEST_STORE_UNCONFIRMED;
    }
    if (status != AD_ACK_STORED) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      ADLOGNO(10023) "apidestd refused the records: %.*s", (int)text_len, text);
        return APIDEST_STORE_REFUSED;
    }
    return APIDEST_STORE_OK;
}

int apidest_daemon_admin(request_rec *r, const char *req, apr_interval_time_t wait, int *status,
                         const char **reply, apr_size_t *reply_len)
{
    out_msg_t m = {AD_MSG_ADMIN, req, strlen(req), NULL, wait ? wait : DAEMON_IO_TIMEOUT};
    apr_uint32_t st;
    apr_status_t rv = exchange(r, &m, AD_MSG_ADMIN_REPLY, &st, reply, reply_len);

    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      ADLOGNO(10024) "admin request to apidestd failed");
        return 0;
    }
    *status = (int)st;
    return 1;
}
