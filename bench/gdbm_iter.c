/* bench/gdbm_iter.c: what reading a whole gdbm store costs in memory, with
 * gdbm's default (automatically growing) bucket cache and with a fixed small
 * one. apidestd's start (load_queue) reads every record this way, so this
 * separates gdbm's share of apidestd's RSS from the daemon's own.
 *
 *   gcc -O2 -o gdbm_iter bench/gdbm_iter.c -lgdbm
 *   gdbm_iter STORE_FILE [cache_buckets]   (0 or absent: gdbm's default)
 *
 * Prints records, bytes read, seconds, and VmRSS before and after (kB).
 * Opens the file read-only (GDBM_READER): run it on a copy, or on a store
 * whose server is stopped.
 */
#include <gdbm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;

    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            v = atol(line + 6);
        }
    }
    if (f) {
        fclose(f);
    }
    return v;
}

int main(int argc, char **argv)
{
    GDBM_FILE db;
    datum k, v, next;
    long n = 0, bytes = 0, before, after;
    int cache = argc > 2 ? atoi(argv[2]) : 0;
    struct timespec t0, t1;

    if (argc < 2) {
        fprintf(stderr, "usage: %s STORE_FILE [cache_buckets]\n", argv[0]);
        return 2;
    }
    before = rss_kb();
    db = gdbm_open(argv[1], 0, GDBM_READER, 0, NULL);
    if (!db) {
        fprintf(stderr, "gdbm_open %s: %s\n", argv[1], gdbm_strerror(gdbm_errno));
        return 1;
    }
    if (cache > 0) {
        size_t sz = (size_t)cache;
        if (gdbm_setopt(db, GDBM_SETCACHESIZE, &sz, sizeof(sz)) != 0) {
            fprintf(stderr, "GDBM_SETCACHESIZE: %s\n", gdbm_strerror(gdbm_errno));
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    k = gdbm_firstkey(db);
    while (k.dptr) {
        v = gdbm_fetch(db, k);
        if (v.dptr) {
            bytes += v.dsize;
            free(v.dptr);
        }
        n++;
        next = gdbm_nextkey(db, k);
        free(k.dptr);
        k = next;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    after = rss_kb();
    printf("{\"records\":%ld,\"value_bytes\":%ld,\"seconds\":%.3f,\"cache_buckets\":%d,"
           "\"rss_before_kb\":%ld,\"rss_after_kb\":%ld}\n", n, bytes,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, cache,
           before, after);
    gdbm_close(db);
    return 0;
}
