/* bench/put_records.h: the records bench/gdbm_put.c and bench/bdb_put.c
 * write, the way apidestd commits them: N records of SIZE bytes under
 * apidestd-shaped keys (batch, then index), and after every GROUP of them a
 * commit marker, then the writer's end of the group (a sync, or nothing). */
#ifndef PUT_RECORDS_H
#define PUT_RECORDS_H

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* CPU seconds (user + system) this process has used. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

typedef int put_fn(void *db, const char *key, const char *val, size_t len);
typedef int group_fn(void *db);

/* Record i's key, as apidestd names it. */
static void record_key(char *key, size_t n, long i, long group)
{
    snprintf(key, n, "q%016lx%08lx", i / group, i % group);
}

/* 0, or the first failing call's code. */
static int put_records(void *db, long n, const char *val, long size, long group, put_fn *put,
                       group_fn *end_group)
{
    char key[64], marker[32];
    long i;
    int rc;

    for (i = 0; i < n; i++) {
        record_key(key, sizeof(key), i, group);
        if ((rc = put(db, key, val, (size_t)size)) != 0) {
            return rc;
        }
        if (i % group == group - 1) {
            snprintf(marker, sizeof(marker), "%ld", i / group);
            if ((rc = put(db, "m/commit", marker, strlen(marker))) != 0 ||
                (end_group && (rc = end_group(db)) != 0)) {
                return rc;
            }
        }
    }
    return 0;
}

#endif
