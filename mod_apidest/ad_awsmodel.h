/* AWS's front-end checks of request members, with the texts AWS answers
 * (shared by PutEvents and the read-only operations): a member of the wrong
 * JSON type fails deserialisation first (SerializationException); then
 * every model constraint that fails is listed in one ValidationException.
 * Pure: APR, jansson and POSIX regex. */
#ifndef AD_AWSMODEL_H
#define AD_AWSMODEL_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>

/* Violations listed in one message; past them only their count grows. */
#define AD_AWSMODEL_MAX_LISTED 100

typedef struct ad_awsmodel_t {
    apr_pool_t *p;
    apr_array_header_t *violations; /* const char *: constraint texts */
    int unlisted;                   /* violations past AD_AWSMODEL_MAX_LISTED */
    const char *bad_type;           /* the first type mismatch, if any */
} ad_awsmodel_t;

/* A string member of the model. */
typedef struct ad_awsmodel_member_t {
    const char *key; /* member name in the request */
    int required;
    int min, max;      /* length bounds in UTF-16 units (Java's); max 0: none */
    const char *regex; /* POSIX ERE equivalent of the pattern, NULL: none; a
                          string constant (compiled once, cached by address) */
    const char *shown; /* the pattern as AWS quotes it */
} ad_awsmodel_member_t;

void ad_awsmodel_init(ad_awsmodel_t *m, apr_pool_t *p);

/* "Value 'v' at 'path' failed to satisfy constraint: ..."; value NULL: null.
 * The path's first letter is shown in lower case, as AWS shows members. */
void ad_awsmodel_violation(ad_awsmodel_t *m, const char *path, const char *value,
                           const char *constraint);

/* v is not the JSON type the model wants ("a String", "an Integer"); a
 * null is not a type error (it reads as absent). */
void ad_awsmodel_wrong_type(ad_awsmodel_t *m, const json_t *v, const char *want);

/* The string member mem of obj, checked; NULL when absent or of the wrong
 * type. prefix: where AWS says obj is ("entries.1.member.", for
 * "entries.1.member.eventBusName"); NULL: at the top. */
const char *ad_awsmodel_string(ad_awsmodel_t *m, const json_t *obj, const ad_awsmodel_member_t *mem,
                               const char *prefix);

/* Java's length of UTF-8 text: UTF-16 code units. */
apr_size_t ad_awsmodel_length(const char *s, apr_size_t n);

/* 0 when every member read so far was well-formed; else 1, with the error
 * type and the message AWS answers. */
int ad_awsmodel_failed(const ad_awsmodel_t *m, const char **type, const char **message);

#endif
