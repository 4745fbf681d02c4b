/* JSON text -> jansson tree, the same tree json_loadb(buf, len, 0, err)
 * builds, several times faster on the ingest path: strings are scanned
 * eight bytes at a time instead of through jansson's per-character stream.
 * Any input it does not accept (errors, and the rare inputs it leaves to
 * jansson: very deep nesting, very long numbers) goes to json_loadb itself,
 * so results and error texts are jansson's. Pure: jansson only. */
#ifndef AD_JSONPARSE_H
#define AD_JSONPARSE_H

#include <stddef.h>
#include <jansson.h>

/* A new reference, or NULL with err set as json_loadb sets it. */
json_t *ad_json_parse(const char *buf, size_t len, json_error_t *err);

#endif
