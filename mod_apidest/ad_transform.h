/* A target's input options (Input, InputPath, InputTransformer) compiled at
 * config time and applied per event, reproducing what EventBridge delivers,
 * quirks included. Pure: APR and jansson only. */
#ifndef AD_TRANSFORM_H
#define AD_TRANSFORM_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>

typedef struct ad_transform_t ad_transform_t;

/* One InputPathsMap entry: <name> in the template takes the value at path. */
typedef struct ad_transform_var_t {
    const char *name;
    const char *path;
} ad_transform_var_t;

/* Compile a target's input options. At most one of input (constant JSON
 * text), input_path, or input_template (with paths_map, an array of
 * ad_transform_var_t, may be NULL) may be given; none delivers the whole
 * event. Everything is allocated in p. Returns NULL and sets *err
 * (allocated in p) when the options are invalid; the text is AWS's
 * PutTargets message where AWS has one (invalid placeholder, only one of
 * Input/InputPath/InputTransformer, Input not valid JSON), otherwise one in
 * AWS's constraint wording naming the target. */
ad_transform_t *ad_transform_compile(apr_pool_t *p, const char *target_id, const char *input,
                                     const char *input_path, const apr_array_header_t *paths_map,
                                     const char *input_template, const char **err);

/* What the reserved template variables need besides the event. */
typedef struct ad_transform_ctx_t {
    const char *rule_name;
    const char *rule_arn;
    const char *ingestion_time; /* ISO-8601 UTC; NULL: the event's time */
} ad_transform_ctx_t;

/* A transformer's output past this is not built (a template may repeat a
 * 256 KB event): the record could not be stored anyway (AD_RECORD_MAX_SIZE). */
#define AD_TRANSFORM_MAX_OUTPUT (8 * 1024 * 1024)

/* The body to deliver for one event (the envelope as a jansson tree).
 * APR_SUCCESS with *out and *len set, allocated in p (*out is also
 * NUL-terminated), or APR_EINVAL when EventBridge would deliver nothing (a
 * JSON template whose output is not valid JSON, an InputPath that matches
 * nothing), with *why (allocated in p) saying why. ctx may be NULL.
 * Thread-safe on a shared compiled transform. */
apr_status_t ad_transform_apply(apr_pool_t *p, const ad_transform_t *t, const json_t *event,
                                const ad_transform_ctx_t *ctx, char **out, apr_size_t *len,
                                const char **why);

#endif
