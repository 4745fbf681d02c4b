#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include <apr_strings.h>

#include "unit_conformance.h"

int unit_run_conformance(apr_pool_t *p, const char *file, unit_case_fn *check, const char *what)
{
    const char *dir = getenv("AD_CONFORMANCE_DIR");
    char *path, *line = NULL;
    size_t cap = 0;
    FILE *f;
    json_t *c;
    json_error_t jerr;
    const char *why;
    int total = 0, failed = 0, lineno = 0;

    ck_assert_msg(dir && *dir, "AD_CONFORMANCE_DIR is not set: it must name "
                               "../shared/conformance (make check sets it)");
    path = apr_pstrcat(p, dir, "/", file, NULL);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (line[0] == '\n') {
            continue;
        }
        c = json_loads(line, 0, &jerr);
        ck_assert_msg(c != NULL, "%s:%d: %s", path, lineno, jerr.text);
        total++;
        if ((why = check(c))) {
            failed++;
            fprintf(stderr, "FAIL %s: %s\n", json_string_value(json_object_get(c, "name")), why);
        }
        json_decref(c);
    }
    free(line);
    fclose(f);
    fprintf(stderr, "conformance: %d/%d %s cases pass\n", total - failed, total, what);
    ck_assert_int_gt(total, 0);
    ck_assert_msg(failed == 0, "%d of %d %s conformance cases fail", failed, total, what);
    return total;
}
