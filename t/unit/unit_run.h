/* The unit tests' main(): run one libcheck suite with APR initialised. */
#ifndef UNIT_RUN_H
#define UNIT_RUN_H

#include <stdlib.h>
#include <check.h>
#include <apr_general.h>

/* The process's exit status: failure when any test failed. */
static inline int unit_run(Suite *s)
{
    SRunner *sr;
    int failed;

    apr_initialize();
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
