/* The JSONPath subset EventBridge evaluates in InputPath, InputPathsMap and
 * dynamic HttpParameters: "$" root, dot notation, "*" wildcards, array
 * indexes ("[0]", "[-1]", "[*]"). Names may hold dashes, underscores,
 * slashes and most other printable characters; bracket names, filters,
 * slices, functions and ".." are not supported (EventBridge documents dot
 * notation only). Pure: APR and jansson only. */
#ifndef AD_JSONPATH_H
#define AD_JSONPATH_H

#include <apr_pools.h>
#include <jansson.h>

typedef struct ad_jsonpath_t ad_jsonpath_t;

/* Compile path (NUL-terminated), allocated in p. Returns NULL and sets *err
 * (allocated in p) when the path is not in the subset. */
ad_jsonpath_t *ad_jsonpath_compile(apr_pool_t *p, const char *path, const char **err);

/* Evaluate against doc. A path without wildcards returns a new reference to
 * the value it names (caller json_decref), or NULL when nothing is there.
 * A path with a wildcard returns a new JSON array of every match in
 * document order (nested wildcards flatten into one array), which is empty
 * when nothing matches, as Jayway JsonPath does for indefinite paths.
 * Never modifies doc beyond reference counts; safe on a shared compiled
 * path. */
json_t *ad_jsonpath_eval(const ad_jsonpath_t *jp, const json_t *doc);

#endif
