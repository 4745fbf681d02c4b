/* A delivery record: one matched target of one event, as stored by apidestd
 * and sent by children over the socket. Binary-safe, versioned, with a CRC so
 * a torn write is detected instead of delivered. */
#ifndef AD_RECORD_H
#define AD_RECORD_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

/* 2: the CRC is CRC-32C. Records of version 1 (CRC-32, IEEE; the layout is
 * otherwise the same) are still read. */
#define AD_RECORD_VERSION 2
/* Largest record accepted anywhere (body + headers + names). */
#define AD_RECORD_MAX_SIZE (8 * 1024 * 1024)

typedef struct ad_header_t {
    const char *name;
    const char *value;
} ad_header_t;

typedef struct ad_record_t {
    apr_uint32_t attempts; /* attempts made so far */
    apr_time_t first_seen; /* ingest time (EventBridge's ingestion time) */
    apr_time_t next_due;   /* when the next attempt may start */
    const char *event_id;
    const char *rule;
    const char *target;
    const char *destination; /* "" for a plain HTTP target */
    const char *method;
    const char *url;             /* final URL, parameters already encoded */
    apr_array_header_t *headers; /* ad_header_t, never secrets */
    const char *body;
    apr_size_t body_len;
    int last_status;          /* HTTP status of the last attempt, 0 = none */
    const char *last_error;   /* EventBridge error code of the last attempt */
    const char *last_message; /* its text (never a secret) */
    /* Set when the record went to the dead-letter queue: */
    const char *exhausted; /* MaximumRetryAttempts | MaximumEventAgeInSeconds | "" */
    const char *rule_arn;
    const char *target_arn;
    apr_time_t failed_at;
} ad_record_t;

/* A record with empty strings and tables. */
ad_record_t *ad_record_make(apr_pool_t *p);

/* Serialise r into a buffer allocated from p. */
apr_status_t ad_record_encode(apr_pool_t *p, const ad_record_t *r, char **buf, apr_size_t *len);

/* Parse; strings point into pool copies. APR_EINVAL for anything torn,
 * truncated, of another version or failing its CRC. */
apr_status_t ad_record_decode(apr_pool_t *p, const char *buf, apr_size_t len, ad_record_t **r);

/* The rule and target names of an encoded record without decoding the rest
 * (pointers into buf, not NUL-terminated). 0 when buf is too short. */
int ad_record_peek(const char *buf, apr_size_t len, const char **rule, apr_size_t *rule_len,
                   const char **target, apr_size_t *target_len);

/* CRC-32 (IEEE) of len bytes, continuing from crc (0 to start). */
apr_uint32_t ad_crc32(apr_uint32_t crc, const void *data, apr_size_t len);
/* The same CRC one byte at a time: the reference the unit tests hold the
 * fast one to. */
apr_uint32_t ad_crc32_simple(apr_uint32_t crc, const void *data, apr_size_t len);

/* CRC-32C (Castagnoli), what records carry since version 2: with the CPU's
 * crc32 instruction where it has one (SSE4.2), else by tables. */
apr_uint32_t ad_crc32c(apr_uint32_t crc, const void *data, apr_size_t len);
/* The same by tables only, whatever the CPU: the unit tests' reference. */
apr_uint32_t ad_crc32c_tables(apr_uint32_t crc, const void *data, apr_size_t len);

#endif
