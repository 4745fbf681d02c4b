/* Shared by the unit tests that run ../shared/conformance data: every case
 * of a JSON-lines file goes through a checker; none may be skipped. */
#ifndef UNIT_CONFORMANCE_H
#define UNIT_CONFORMANCE_H

#include <apr_pools.h>
#include <jansson.h>

/* NULL when the case passes, else why it fails. */
typedef const char *unit_case_fn(const json_t *c);

/* Run every case of $AD_CONFORMANCE_DIR/<file> through check, print each
 * failing case's name, and fail the test (libcheck) unless all pass; a
 * missing directory or file fails it too. Returns the number of cases. */
int unit_run_conformance(apr_pool_t *p, const char *file, unit_case_fn *check, const char *what);

#endif
