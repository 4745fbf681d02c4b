/* bench/curlbase.c: the bare libcurl multi client the benchmarks compare
 * with, and the load generator for pre-filling and paced producers.
 *
 * It POSTs bodies to one URL with keep-alive, at most -c transfers in flight
 * (and at most -c connections), reusing its easy handles, and prints one
 * JSON line with what it did. By default it sends the headers mod_apidest's
 * delivery engine sends (Content-Type, Range, no Accept, no Expect).
 *
 *   curlbase -u URL -B bodies.txt [-n count] [-c concurrency] [-t seconds]
 *            [-r rate] [-H "Name: value"]... [-k]
 *
 *   -B FILE   one body per line (cycled through); "@TS@" in a body is replaced
 *             with the current time in microseconds since the epoch (16 digits)
 *             just before the request is started
 *   -n N      requests to send (default 1000)
 *   -t S      stop after S seconds whatever is left (default 60)
 *   -r R      pace: start request i at t0 + i/R (default: as fast as possible)
 *   -H        extra header (repeatable); -k: no default headers
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slot {
    CURL *easy;
    char *buf;          /* body copy (patched with @TS@) */
    size_t cap;
    int64_t started;
    int busy;
} slot_t;

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

static size_t discard(char *p, size_t s, size_t n, void *d)
{
    (void)p;
    (void)d;
    return s * n;
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

int main(int argc, char **argv)
{
    const char *url = NULL, *bfile = NULL;
    long count = 1000, conc = 16, i;
    double tmax = 60, rate = 0;
    int nodefaults = 0;
    struct curl_slist *hdrs = NULL;
    char **bodies = NULL;
    size_t *blens = NULL, nbodies = 0, bcap = 0, maxlen = 0;
    FILE *f;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    CURLM *multi;
    slot_t *slots;
    long started = 0, done = 0, ok = 0, http_other = 0, errors = 0, connects = 0;
    int64_t t0, deadline, *lat;
    size_t nlat = 0;
    long first_status_other = 0;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-u") && i + 1 < argc) url = argv[++i];
        else if (!strcmp(argv[i], "-B") && i + 1 < argc) bfile = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) count = atol(argv[++i]);
        else if (!strcmp(argv[i], "-c") && i + 1 < argc) conc = atol(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) tmax = atof(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) rate = atof(argv[++i]);
        else if (!strcmp(argv[i], "-H") && i + 1 < argc) hdrs = curl_slist_append(hdrs, argv[++i]);
        else if (!strcmp(argv[i], "-k")) nodefaults = 1;
        else {
            fprintf(stderr, "usage: %s -u URL -B bodies [-n N] [-c C] [-t S] [-r R] "
                            "[-H hdr]... [-k]\n", argv[0]);
            return 2;
        }
    }
    if (!url || !bfile || count < 1 || conc < 1) {
        fprintf(stderr, "curlbase: -u and -B are required\n");
        return 2;
    }
    if (!(f = fopen(bfile, "r"))) {
        perror(bfile);
        return 2;
    }
    while ((ll = getline(&line, &lcap, f)) >= 0) {
        while (ll > 0 && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) {
            line[--ll] = '\0';
        }
        if (!ll) {
            continue;
        }
        if (nbodies == bcap) {
            bcap = bcap ? bcap * 2 : 16;
            bodies = realloc(bodies, bcap * sizeof(*bodies));
            blens = realloc(blens, bcap * sizeof(*blens));
        }
        bodies[nbodies] = strdup(line);
        blens[nbodies] = (size_t)ll;
        if ((size_t)ll > maxlen) {
            maxlen = (size_t)ll;
        }
        nbodies++;
    }
    fclose(f);
    if (!nbodies) {
        fprintf(stderr, "curlbase: no body in %s\n", bfile);
        return 2;
    }
    if (!nodefaults) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json; charset=utf-8");
        hdrs = curl_slist_append(hdrs, "Range: bytes=0-1048575");
        hdrs = curl_slist_append(hdrs, "Accept:");
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, conc);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conc);
    slots = calloc((size_t)conc, sizeof(*slots));
    lat = malloc((size_t)count * sizeof(*lat));
    for (i = 0; i < conc; i++) {
        slots[i].easy = curl_easy_init();
        slots[i].cap = maxlen + 1;
        slots[i].buf = malloc(slots[i].cap);
        curl_easy_setopt(slots[i].easy, CURLOPT_URL, url);
        curl_easy_setopt(slots[i].easy, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(slots[i].easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(slots[i].easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(slots[i].easy, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(slots[i].easy, CURLOPT_USERAGENT, "Amazon/EventBridge/ApiDestinations");
        curl_easy_setopt(slots[i].easy, CURLOPT_PRIVATE, &slots[i]);
    }
    t0 = mono_us();
    deadline = t0 + (int64_t)(tmax * 1e6);
    for (;;) {
        int running, left;
        CURLMsg *m;
        int64_t now = mono_us(), next_due = 0;
        long timeout_ms = 100;

        /* start what may start */
        for (i = 0; i < conc && started < count && now < deadline; i++) {
            slot_t *s = &slots[i];
            size_t bi = (size_t)started % nbodies;
            char *ts;
            if (s->busy) {
                continue;
            }
            if (rate > 0) {
                next_due = t0 + (int64_t)((double)started * 1e6 / rate);
                if (now < next_due) {
                    break;
                }
            }
            memcpy(s->buf, bodies[bi], blens[bi] + 1);
            for (ts = strstr(s->buf, "@TS@"); ts; ts = strstr(ts + 4, "@TS@")) {
                char num[32];
                /* "@TS@" (4 chars) -> 16 digits: shift the tail */
                snprintf(num, sizeof(num), "%016lld", (long long)real_us());
                if (s->cap < strlen(s->buf) + 13) {
                    s->cap = strlen(s->buf) + 64;
                    s->buf = realloc(s->buf, s->cap);
                    ts = strstr(s->buf, "@TS@");
                }
                memmove(ts + 16, ts + 4, strlen(ts + 4) + 1);
                memcpy(ts, num, 16);
            }
            curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->buf);
            curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(s->buf));
            s->started = mono_us();
            s->busy = 1;
            curl_multi_add_handle(multi, s->easy);
            started++;
        }
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg == CURLMSG_DONE) {
                slot_t *s = NULL;
                long status = 0, nc = 0;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
                curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
                curl_easy_getinfo(m->easy_handle, CURLINFO_NUM_CONNECTS, &nc);
                connects += nc;
                if (m->data.result != CURLE_OK) {
                    errors++;
                }
                else if (status >= 200 && status < 300) {
                    ok++;
                }
                else {
                    http_other++;
                    if (!first_status_other) {
                        first_status_other = status;
                    }
                }
                if (nlat < (size_t)count) {
                    lat[nlat++] = mono_us() - s->started;
                }
                curl_multi_remove_handle(multi, m->easy_handle);
                s->busy = 0;
                done++;
            }
        }
        now = mono_us();
        if (done >= count || (now >= deadline && done >= started)) {
            break;
        }
        if (now >= deadline + 5000000) { /* in-flight ones get 5 s more */
            break;
        }
        if (started < count && now < deadline && started - done < conc) {
            /* a slot is free: start the next one now, or when it is due */
            timeout_ms = 0;
            if (rate > 0) {
                next_due = t0 + (int64_t)((double)started * 1e6 / rate);
                timeout_ms = next_due > now ? (long)((next_due - now) / 1000) : 0;
            }
        }
        if (timeout_ms > 0) {
            curl_multi_poll(multi, NULL, 0, (int)(timeout_ms > 100 ? 100 : timeout_ms), NULL);
        }
    }
    {
        double secs = (double)(mono_us() - t0) / 1e6;
        qsort(lat, nlat, sizeof(*lat), cmp64);
        printf("{\"requests\":%ld,\"ok\":%ld,\"http_other\":%ld,\"first_other_status\":%ld,"
               "\"errors\":%ld,\"seconds\":%.4f,\"rps\":%.1f,\"ok_rps\":%.1f,"
               "\"connects\":%ld,\"concurrency\":%ld,\"latency_us\":{\"p50\":%.0f,"
               "\"p90\":%.0f,\"p99\":%.0f,\"max\":%.0f}}\n",
               done, ok, http_other, first_status_other, errors, secs,
               secs > 0 ? (double)done / secs : 0, secs > 0 ? (double)ok / secs : 0,
               connects, conc, pct(lat, nlat, 50), pct(lat, nlat, 90), pct(lat, nlat, 99),
               nlat ? (double)lat[nlat - 1] : 0);
    }
    for (i = 0; i < conc; i++) {
        if (slots[i].busy) {
            curl_multi_remove_handle(multi, slots[i].easy);
        }
        curl_easy_cleanup(slots[i].easy);
        free(slots[i].buf);
    }
    curl_multi_cleanup(multi);
    curl_slist_free_all(hdrs);
    curl_global_cleanup();
    return errors && !ok ? 1 : 0;
}
