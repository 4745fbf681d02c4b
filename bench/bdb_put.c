/* bench/bdb_put.c: the same records as bench/gdbm_put.c (N records of SIZE
 * bytes under apidestd-shaped keys, a commit marker after every GROUP),
 * written into a Berkeley DB B-tree, with DB->sync after every group so that
 * an acknowledged group is in the operating system's hands as gdbm's writes
 * are (a kill -9 of the writer loses nothing); then every record deleted in
 * key order (as deliveries take them), again synced per group. A measure of
 * what a B-tree store would cost apidestd, not a store of the module.
 *
 *   gcc -O2 -o bdb_put bench/bdb_put.c -ldb      (Debian: libdb5.3-dev)
 *   bdb_put FILE N SIZE GROUP                     (FILE is created anew and removed)
 *
 * Prints: records, microseconds of CPU (user+system) per stored record,
 * file bytes per record, microseconds of CPU per deleted record.
 */
#include <db.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "put_records.h"

static int put(void *db, const char *k, const char *v, size_t vlen)
{
    DBT key, val;
    memset(&key, 0, sizeof(key));
    memset(&val, 0, sizeof(val));
    key.data = (void *)k;
    key.size = (u_int32_t)strlen(k);
    val.data = (void *)v;
    val.size = (u_int32_t)vlen;
    return ((DB *)db)->put((DB *)db, NULL, &key, &val, 0);
}

static int sync_db(void *db)
{
    return ((DB *)db)->sync((DB *)db, 0);
}

static int del(DB *db, const char *k)
{
    DBT key;
    memset(&key, 0, sizeof(key));
    key.data = (void *)k;
    key.size = (u_int32_t)strlen(k);
    return db->del(db, NULL, &key, 0);
}

int main(int argc, char **argv)
{
    long n, size, group, i;
    char *val, key[64];
    DB *db;
    double t0, t1, t2;
    struct stat st;
    int rc;

    if (argc != 5 || (n = atol(argv[2])) <= 0 || (size = atol(argv[3])) <= 0 ||
        (group = atol(argv[4])) <= 0) {
        fprintf(stderr, "usage: bdb_put FILE N SIZE GROUP\n");
        return 2;
    }
    unlink(argv[1]);
    if ((rc = db_create(&db, NULL, 0)) != 0 ||
        (rc = db->open(db, NULL, argv[1], NULL, DB_BTREE, DB_CREATE, 0600)) != 0) {
        fprintf(stderr, "db open %s: %s\n", argv[1], db_strerror(rc));
        return 1;
    }
    val = malloc((size_t)size);
    memset(val, 'x', (size_t)size);
    t0 = cpu_seconds();
    rc = put_records(db, n, val, size, group, put, sync_db);
    t1 = cpu_seconds();
    stat(argv[1], &st);
    for (i = 0; rc == 0 && i < n; i++) {
        record_key(key, sizeof(key), i, group);
        if ((rc = del(db, key)) == 0 && i % group == group - 1) {
            rc = db->sync(db, 0);
        }
    }
    t2 = cpu_seconds();
    if (rc != 0) {
        fprintf(stderr, "db: %s\n", db_strerror(rc));
        return 1;
    }
    db->close(db, 0);
    unlink(argv[1]);
    free(val);
    printf("%ld %.2f %.0f %.2f\n", n, (t1 - t0) * 1e6 / n, (double)st.st_size / n,
           (t2 - t1) * 1e6 / n);
    return 0;
}
