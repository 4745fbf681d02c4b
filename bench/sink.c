/* bench/sink.c: a minimal HTTP/1.1 keep-alive sink for the benchmarks.
 *
 * One thread, epoll, 127.0.0.1 only. It answers every request with a fixed
 * small response, counts what it sees, and is steered over HTTP by requests
 * to /_ctl/... on the same port:
 *
 *   GET /_ctl/set?code=200            answer 200 (the default)
 *   GET /_ctl/set?code=503&retry=3600 answer 503 with Retry-After: 3600
 *   GET /_ctl/set?hang=1              read requests but never answer them
 *   GET /_ctl/reset                   zero the counters and latency samples
 *   GET /_ctl/stats                   counters and latency percentiles (JSON);
 *                                     data_conns counts connections that carried
 *                                     a request other than a control one
 *   GET /_ctl/lastbody                the last request body received
 *
 * Latency: a body holding "ts":<microseconds since the epoch> (the producer's
 * clock, CLOCK_REALTIME, same machine) gives one sample, arrival - ts.
 *
 * Usage: sink [-p port] [-q]   (port 0: pick one; prints "PORT <n>" first)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQ (4 * 1024 * 1024)
#define MAX_SAMPLES (4 * 1024 * 1024)

typedef struct conn {
    int fd;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    int close_after;
    int sent_continue;
    int counted;        /* carried a request that was not a control one */
} conn_t;

static int g_code = 200, g_retry = 0, g_hang = 0;
static uint64_t g_accepted, g_data_conns, g_open, g_requests, g_answered_2xx, g_answered_other,
    g_hung, g_bytes_in, g_ctl;
static int64_t g_first_us, g_last_us; /* monotonic, non-control requests */
static int64_t g_last_conn_us;        /* monotonic, last data connection seen */
static int64_t *g_samples;
static size_t g_nsamples;
static char *g_lastbody;
static size_t g_lastbody_len;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void out_append(conn_t *c, const char *s, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 1024;
        while (cap < c->out_len + n) {
            cap *= 2;
        }
        c->out = realloc(c->out, cap);
        if (!c->out) {
            abort();
        }
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static void respond(conn_t *c, int code, const char *ctype, const char *body, size_t blen,
                    const char *extra)
{
    char head[512];
    const char *reason = code == 200 ? "OK" : code == 503 ? "Service Unavailable"
                         : code == 404 ? "Not Found" : code == 400 ? "Bad Request" : "Other";
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                     code, reason, ctype, blen, extra ? extra : "",
                     c->close_after ? "Connection: close\r\n" : "");
    out_append(c, head, (size_t)n);
    out_append(c, body, blen);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, size_t n, double p)
{
    size_t i;
    if (!n) {
        return 0;
    }
    i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return (double)v[i < n ? i : n - 1];
}

static void ctl(conn_t *c, const char *path)
{
    char buf[2048];
    const char *q;

    g_ctl++;
    if (!strncmp(path, "/_ctl/set", 9)) {
        if ((q = strstr(path, "code="))) {
            g_code = atoi(q + 5);
        }
        if ((q = strstr(path, "retry="))) {
            g_retry = atoi(q + 6);
        }
        if ((q = strstr(path, "hang="))) {
            g_hang = atoi(q + 5);
        }
        snprintf(buf, sizeof(buf), "{\"code\":%d,\"retry\":%d,\"hang\":%d}\n", g_code,
                 g_retry, g_hang);
        respond(c, 200, "application/json", buf, strlen(buf), NULL);
    }
    else if (!strncmp(path, "/_ctl/reset", 11)) {
        g_accepted = g_data_conns = g_requests = g_answered_2xx = g_answered_other = g_hung = 0;
        g_bytes_in = 0;
        g_first_us = g_last_us = g_last_conn_us = 0;
        g_nsamples = 0;
        respond(c, 200, "application/json", "{}\n", 3, NULL);
    }
    else if (!strncmp(path, "/_ctl/stats", 11)) {
        int64_t *s = NULL;
        double p50 = 0, p90 = 0, p99 = 0, mx = 0, mean = 0;
        size_t i;
        if (g_nsamples) {
            s = malloc(g_nsamples * sizeof(*s));
            memcpy(s, g_samples, g_nsamples * sizeof(*s));
            qsort(s, g_nsamples, sizeof(*s), cmp64);
            p50 = pct(s, g_nsamples, 50);
            p90 = pct(s, g_nsamples, 90);
            p99 = pct(s, g_nsamples, 99);
            mx = (double)s[g_nsamples - 1];
            for (i = 0; i < g_nsamples; i++) {
                mean += (double)s[i];
            }
            mean /= (double)g_nsamples;
            free(s);
        }
        snprintf(buf, sizeof(buf),
                 "{\"accepted\":%llu,\"data_conns\":%llu,\"open\":%llu,\"requests\":%llu,\"answered_2xx\":%llu,"
                 "\"answered_other\":%llu,\"hung\":%llu,\"bytes_in\":%llu,"
                 "\"first_us\":%lld,\"last_us\":%lld,\"last_conn_us\":%lld,\"now_us\":%lld,"
                 "\"latency_samples\":%zu,\"latency_us\":{\"p50\":%.0f,\"p90\":%.0f,"
                 "\"p99\":%.0f,\"max\":%.0f,\"mean\":%.1f},"
                 "\"code\":%d,\"retry\":%d,\"hang\":%d}\n",
                 (unsigned long long)g_accepted, (unsigned long long)g_data_conns,
                 (unsigned long long)g_open,
                 (unsigned long long)g_requests, (unsigned long long)g_answered_2xx,
                 (unsigned long long)g_answered_other, (unsigned long long)g_hung,
                 (unsigned long long)g_bytes_in, (long long)g_first_us, (long long)g_last_us, (long long)g_last_conn_us,
                 (long long)mono_us(), g_nsamples, p50, p90, p99, mx, mean, g_code, g_retry,
                 g_hang);
        respond(c, 200, "application/json", buf, strlen(buf), NULL);
    }
    else if (!strncmp(path, "/_ctl/lastbody", 14)) {
        respond(c, 200, "application/octet-stream", g_lastbody ? g_lastbody : "",
                g_lastbody_len, NULL);
    }
    else {
        respond(c, 404, "text/plain", "no such control\n", 16, NULL);
    }
}

static void sample_latency(const char *body, size_t len)
{
    const char *p = memmem(body, len, "\"ts\":", 5);
    int64_t ts = 0;

    if (!p || g_nsamples >= MAX_SAMPLES) {
        return;
    }
    p += 5;
    while (p < body + len && (*p == ' ' || *p == '"')) {
        p++;
    }
    while (p < body + len && *p >= '0' && *p <= '9') {
        ts = ts * 10 + (*p++ - '0');
    }
    if (ts > 0) {
        g_samples[g_nsamples++] = real_us() - ts;
    }
}

static void handle_request(conn_t *c, const char *path, const char *body, size_t blen)
{
    char extra[128];

    if (!strncmp(path, "/_ctl/", 6)) {
        ctl(c, path);
        return;
    }
    g_requests++;
    g_bytes_in += blen;
    if (!c->counted) {
        c->counted = 1;
        g_data_conns++;
        g_last_conn_us = mono_us();
    }
    if (blen) {
        if (blen > g_lastbody_len) {
            g_lastbody = realloc(g_lastbody, blen);
        }
        memcpy(g_lastbody, body, blen);
        g_lastbody_len = blen;
    }
    if (g_hang) {
        g_hung++;
        return;
    }
    sample_latency(body, blen);
    if (g_code >= 200 && g_code < 300) {
        int64_t now = mono_us();
        if (!g_first_us) {
            g_first_us = now;
        }
        g_last_us = now;
        g_answered_2xx++;
        respond(c, g_code, "application/json", "{}", 2, NULL);
    }
    else {
        g_answered_other++;
        extra[0] = '\0';
        if (g_retry) {
            snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", g_retry);
        }
        respond(c, g_code, "application/json", "{\"error\":\"busy\"}", 16, extra);
    }
}

/* Header value of `name` within [h, end), or NULL. */
static const char *header(const char *h, const char *end, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = h;

    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) {
            eol = end;
        }
        if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }
            *vlen = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* Process complete requests in the input buffer: 0 ok, -1 close now. */
static int process(conn_t *c)
{
    size_t off = 0;

    for (;;) {
        char *start = c->in + off, *hend, *sp1, *sp2;
        size_t avail = c->in_len - off, hlen, vlen, clen = 0;
        const char *v;
        char path[1024];

        if (!avail) {
            break;
        }
        hend = memmem(start, avail, "\r\n\r\n", 4);
        if (!hend) {
            if (avail > 65536) {
                return -1;
            }
            break;
        }
        hlen = (size_t)(hend - start) + 4;
        if ((v = header(start, hend, "Content-Length", &vlen))) {
            clen = strtoul(v, NULL, 10);
        }
        else if (header(start, hend, "Transfer-Encoding", &vlen)) {
            return -1; /* chunked bodies are not supported: nobody here sends one */
        }
        if (clen > MAX_REQ) {
            return -1;
        }
        if (avail < hlen + clen) {
            if (!c->sent_continue && (v = header(start, hend, "Expect", &vlen))
                && vlen >= 12 && !strncasecmp(v, "100-continue", 12)) {
                out_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                c->sent_continue = 1;
            }
            break;
        }
        c->sent_continue = 0;
        sp1 = memchr(start, ' ', (size_t)(hend - start));
        sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(hend - sp1 - 1)) : NULL;
        if (!sp1 || !sp2 || (size_t)(sp2 - sp1 - 1) >= sizeof(path)) {
            return -1;
        }
        memcpy(path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
        path[sp2 - sp1 - 1] = '\0';
        v = header(start, hend, "Connection", &vlen);
        c->close_after = v && vlen >= 5 && !strncasecmp(v, "close", 5);
        if (!c->close_after && memmem(start, (size_t)(hend - start), "HTTP/1.0", 8)) {
            c->close_after = !(v && vlen >= 10 && !strncasecmp(v, "keep-alive", 10));
        }
        handle_request(c, path, start + hlen, clen);
        off += hlen + clen;
        if (c->close_after) {
            break;
        }
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return 0;
}

static int flush_out(conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 1;
            }
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

static void conn_close(int ep, conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
    g_open--;
}

int main(int argc, char **argv)
{
    int port = 0, quiet = 0, lfd, ep, one = 1, i;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    struct epoll_event ev, evs[256];

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            port = atoi(argv[++i]);
        }
        else if (!strcmp(argv[i], "-q")) {
            quiet = 1;
        }
        else {
            fprintf(stderr, "usage: %s [-p port] [-q]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    g_samples = malloc(MAX_SAMPLES * sizeof(*g_samples));
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
        perror("sink: bind/listen");
        return 1;
    }
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1), k;
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("sink: epoll_wait");
            return 1;
        }
        for (k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) {
                        break;
                    }
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    c = calloc(1, sizeof(*c));
                    c->fd = fd;
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                    g_accepted++;
                    g_open++;
                }
                continue;
            }
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                int closed = 0;
                for (;;) {
                    ssize_t r;
                    if (c->in_cap - c->in_len < 16384) {
                        c->in_cap = c->in_cap ? c->in_cap * 2 : 32768;
                        c->in = realloc(c->in, c->in_cap);
                    }
                    r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
                    if (r > 0) {
                        c->in_len += (size_t)r;
                        if (c->in_len > MAX_REQ + 65536) {
                            closed = 1;
                            break;
                        }
                        continue;
                    }
                    if (r == 0) {
                        closed = 1;
                    }
                    else if (errno == EINTR) {
                        continue;
                    }
                    else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                        closed = 1;
                    }
                    break;
                }
                if (process(c) < 0) {
                    closed = 1;
                }
                if (c->out_len) {
                    int w = flush_out(c);
                    if (w < 0) {
                        closed = 1;
                    }
                    else if (w > 0) {
                        ev.events = EPOLLIN | EPOLLOUT;
                        ev.data.ptr = c;
                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                    }
                    else if (c->close_after) {
                        closed = 1;
                    }
                }
                if (closed) {
                    conn_close(ep, c);
                    continue;
                }
            }
            if (evs[k].events & EPOLLOUT) {
                int w = flush_out(c);
                if (w < 0 || (w == 0 && c->close_after)) {
                    conn_close(ep, c);
                    continue;
                }
                if (w == 0) {
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
        }
    }
    (void)quiet;
    return 0;
}
