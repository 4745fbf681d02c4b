/* bench/gdbm_put.c: what gdbm alone takes to store records the way apidestd
 * commits them (N records of SIZE bytes under apidestd-shaped keys, and a
 * commit marker after every GROUP of them, gdbm's memory map off as apidestd
 * has it), so bench/ingest can show how much of apidestd's CPU per stored
 * record is the store library itself.
 *
 *   gcc -O2 -o gdbm_put bench/gdbm_put.c -lgdbm
 *   gdbm_put FILE N SIZE GROUP [BLOCK]  (FILE is created anew and removed;
 *                                        BLOCK: gdbm's block size, default
 *                                        the file system's, as apidestd)
 *   gdbm_put --queued STORE_FILE    (a stopped server's store, read only)
 *
 * Prints: records, microseconds of CPU (user+system) per record, file bytes
 * per record; with --queued: the queued records ("q..." keys), their mean
 * size in bytes and the commit groups apidestd wrote them in (its commit
 * marker counts them from 1 in a new store; 0 without a marker), so the
 * bench can write them in groups of the same mean size.
 */
#include <gdbm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "put_records.h"

static int put(void *db, const char *k, const char *v, size_t vlen)
{
    datum key, val;
    key.dptr = (char *)k;
    key.dsize = (int)strlen(k);
    val.dptr = (char *)v;
    val.dsize = (int)vlen;
    return gdbm_store((GDBM_FILE)db, key, val, GDBM_REPLACE);
}

static int queued(const char *path)
{
    GDBM_FILE db = gdbm_open(path, 0, GDBM_READER, 0, NULL);
    datum k, next, v;
    long n = 0, groups = 0;
    double total = 0;

    if (!db) {
        fprintf(stderr, "gdbm_open %s: %s\n", path, gdbm_strerror(gdbm_errno));
        return 1;
    }
    for (k = gdbm_firstkey(db); k.dptr; k = next) {
        if (k.dsize > 0 && k.dptr[0] == 'q') {
            v = gdbm_fetch(db, k);
            n++;
            total += v.dsize;
            free(v.dptr);
        }
        else if (k.dsize == 8 && !memcmp(k.dptr, "m/commit", 8)) {
            char num[32] = "";
            v = gdbm_fetch(db, k);
            if (v.dptr && v.dsize > 0 && v.dsize < (int)sizeof(num)) {
                memcpy(num, v.dptr, (size_t)v.dsize);
                num[v.dsize] = '\0';
            }
            groups = strtol(num, NULL, 10);
            free(v.dptr);
        }
        next = gdbm_nextkey(db, k);
        free(k.dptr);
    }
    gdbm_close(db);
    printf("%ld %.0f %ld\n", n, n ? total / n : 0.0, groups);
    return 0;
}

int main(int argc, char **argv)
{
    long n, size, group, block = 0;
    char *val;
    GDBM_FILE db;
    double t0, t1;
    struct stat st;

    if (argc == 3 && !strcmp(argv[1], "--queued")) {
        return queued(argv[2]);
    }
    if ((argc != 5 && argc != 6) || (n = atol(argv[2])) <= 0 || (size = atol(argv[3])) <= 0 ||
        (group = atol(argv[4])) <= 0 || (argc == 6 && (block = atol(argv[5])) < 512)) {
        fprintf(stderr, "usage: gdbm_put FILE N SIZE GROUP [BLOCK >= 512]\n");
        return 2;
    }
    unlink(argv[1]);
    if (!(db = gdbm_open(argv[1], (int)block, GDBM_NEWDB | GDBM_NOMMAP, 0600, NULL))) {
        fprintf(stderr, "gdbm_open %s: %s\n", argv[1], gdbm_strerror(gdbm_errno));
        return 1;
    }
    val = malloc((size_t)size);
    memset(val, 'x', (size_t)size);
    t0 = cpu_seconds();
    if (put_records(db, n, val, size, group, put, NULL)) {
        fprintf(stderr, "gdbm_store: %s\n", gdbm_strerror(gdbm_errno));
        return 1;
    }
    t1 = cpu_seconds();
    stat(argv[1], &st);
    gdbm_close(db);
    unlink(argv[1]);
    free(val);
    printf("%ld %.2f %.0f\n", n, (t1 - t0) * 1e6 / n, (double)st.st_size / n);
    return 0;
}
