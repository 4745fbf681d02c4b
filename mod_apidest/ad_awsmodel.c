/* AWS's front-end member checks (ad_awsmodel.h). */
#include <pthread.h>
#include <regex.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "ad_awsmodel.h"

void ad_awsmodel_init(ad_awsmodel_t *m, apr_pool_t *p)
{
    m->p = p;
    m->violations = apr_array_make(p, 2, sizeof(const char *));
    m->unlisted = 0;
    m->bad_type = NULL;
}

apr_size_t ad_awsmodel_length(const char *s, apr_size_t n)
{
    apr_size_t i, units = 0;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch & 0xC0) != 0x80) {
            units += ch >= 0xF0 ? 2 : 1; /* an astral char is a surrogate pair */
        }
    }
    return units;
}

/* The model's patterns are a handful of constant strings: each is compiled
 * once (regexec on a compiled pattern is thread-safe), as PutEvents checks
 * an EventBusName in every entry that has one. */
#define REGEX_CACHE 16

static struct {
    const char *re;
    regex_t rx;
    int ok;
} regex_cache[REGEX_CACHE];
static int regex_cached;
static pthread_mutex_t regex_mu = PTHREAD_MUTEX_INITIALIZER;

static int regex_matches(const char *re, const char *s)
{
    regex_t rx;
    int i, ok;

    pthread_mutex_lock(&regex_mu);
    for (i = 0; i < regex_cached && regex_cache[i].re != re; i++) {
    }
    if (i == regex_cached && i < REGEX_CACHE) {
        regex_cache[i].re = re;
        regex_cache[i].ok = regcomp(&regex_cache[i].rx, re, REG_EXTENDED | REG_NOSUB) == 0;
        regex_cached++;
    }
    pthread_mutex_unlock(&regex_mu);
    if (i < REGEX_CACHE) {
        return regex_cache[i].ok && regexec(&regex_cache[i].rx, s, 0, NULL, 0) == 0;
    }
    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0) {
        return 0;
    }
    ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

/* AWS names members with their first letter in lower case. */
static const char *member_path(apr_pool_t *p, const char *key)
{
    char *path = apr_pstrdup(p, key);

    path[0] = (char)apr_tolower(path[0]);
    return path;
}

void ad_awsmodel_violation(ad_awsmodel_t *m, const char *path, const char *value,
                           const char *constraint)
{
    /* A request of 50,000 bad entries would otherwise make a message (and
     * a pool) the size of 50,000 quoted values. */
    if (m->violations->nelts >= AD_AWSMODEL_MAX_LISTED) {
        m->unlisted++;
        return;
    }
    path = member_path(m->p, path);
    APR_ARRAY_PUSH(m->violations, const char *) =
        value ? apr_psprintf(m->p, "Value '%s' at '%s' failed to satisfy constraint: %s", value,
                             path, constraint)
              : apr_psprintf(m->p, "Value null at '%s' failed to satisfy constraint: %s", path,
                             constraint);
}

void ad_awsmodel_wrong_type(ad_awsmodel_t *m, const json_t *v, const char *want)
{
    const char *what;

    if (m->bad_type || json_is_null(v)) { /* null reads as absent */
        return;
    }
    if (json_is_object(v)) {
        m->bad_type = "Start of structure or map found where not expected.";
        return;
    }
    if (json_is_array(v)) {
        m->bad_type = "Start of list found where not expected";
        return;
    }
    what = json_is_string(v)   ? "STRING_VALUE"
           : json_is_number(v) ? "NUMBER_VALUE"
           : json_is_true(v)   ? "TRUE_VALUE"
                               : "FALSE_VALUE";
    m->bad_type = apr_psprintf(m->p, "%s can not be converted to %s", what, want);
}

/* Built only for a violation: PutEvents checks every entry. */
static const char *path_of(ad_awsmodel_t *m, const char *prefix, const char *key)
{
    char *path;

    if (!prefix) {
        return key;
    }
    path = apr_pstrcat(m->p, prefix, key, NULL);
    path[strlen(prefix)] = (char)apr_tolower(path[strlen(prefix)]);
    return path;
}

const char *ad_awsmodel_string(ad_awsmodel_t *m, const json_t *obj, const ad_awsmodel_member_t *mem,
                               const char *prefix)
{
    const json_t *v = json_object_get(obj, mem->key);
    const char *s;
    apr_size_t n;

    if (!v || json_is_null(v)) {
        if (mem->required) {
            ad_awsmodel_violation(m, path_of(m, prefix, mem->key), NULL, "Member must not be null");
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        ad_awsmodel_wrong_type(m, v, "a String");
        return NULL;
    }
    s = json_string_value(v);
    /* Counting UTF-16 units reads every byte: a 4 KiB Detail has no bound
     * to check, and an empty string is empty in either count. */
    n = mem->min > 0 || mem->max ? ad_awsmodel_length(s, json_string_length(v))
                                 : json_string_length(v);
    if (n < (apr_size_t)mem->min) {
        ad_awsmodel_violation(
            m, path_of(m, prefix, mem->key), s,
            apr_psprintf(m->p, "Member must have length greater than or equal to %d", mem->min));
    }
    if (mem->max && n > (apr_size_t)mem->max) {
        ad_awsmodel_violation(
            m, path_of(m, prefix, mem->key), s,
            apr_psprintf(m->p, "Member must have length less than or equal to %d", mem->max));
    }
    if (mem->regex && n && !regex_matches(mem->regex, s)) {
        ad_awsmodel_violation(m, path_of(m, prefix, mem->key), s,
                              apr_pstrcat(m->p, "Member must satisfy regular expression pattern: ",
                                          mem->shown, NULL));
    }
    return s;
}

int ad_awsmodel_failed(const ad_awsmodel_t *m, const char **type, const char **message)
{
    int i, n = m->violations->nelts, total = n + m->unlisted;
    apr_array_header_t *parts;

    if (m->bad_type) {
        *type = "SerializationException";
        *message = m->bad_type;
        return 1;
    }
    if (n == 0) {
        return 0;
    }
    /* Joined once: appending each to the message so far copied it again
     * for every violation. */
    parts = apr_array_make(m->p, 2 * n + 2, sizeof(const char *));
    APR_ARRAY_PUSH(parts, const char *) =
        apr_psprintf(m->p, "%d validation error%s detected: ", total, total == 1 ? "" : "s");
    for (i = 0; i < n; i++) {
        APR_ARRAY_PUSH(parts, const char *) = i ? "; " : "";
        APR_ARRAY_PUSH(parts, const char *) = APR_ARRAY_IDX(m->violations, i, const char *);
    }
    if (m->unlisted) {
        APR_ARRAY_PUSH(parts, const char *) = apr_psprintf(m->p, "; and %d more", m->unlisted);
    }
    *type = "ValidationException";
    *message = apr_array_pstrcat(m->p, parts, 0);
    return 1;
}
