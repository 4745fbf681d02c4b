/* bench/ingest_instr.c: one PutEvents body (bench/ingest.lua's) handled N
 * times in process, for counting instructions under callgrind:
 *   ingest_instr ENTRIES DETAIL_BYTES N ingest PATTERN   ad_ingest_put_events
 *   ingest_instr ENTRIES DETAIL_BYTES N loadb            json_loadb of the body
 * (the baseline: what merely reading the request into a jansson tree costs).
 * The rule has one target, so every entry gives one record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <jansson.h>

#include "ad_conf.h"
#include "ad_ingest.h"
#include "ad_pattern.h"
#include "ad_util.h"

static ad_conf_t *conf_with_rule(apr_pool_t *p, const char *pattern)
{
    ad_conf_t *c = ad_conf_make(p);
    ad_rule_t *r = apr_pcalloc(p, sizeof(*r));
    ad_target_t *t = ad_conf_target_make(p, "t");
    ad_destination_t *d = apr_pcalloc(p, sizeof(*d));
    const char *why = NULL;

    c->account = "123456789012";
    c->region = "us-east-1";
    r->name = "ingest";
    r->bus = "default";
    r->enabled = 1;
    r->pattern_text = pattern;
    if (!(r->pattern = ad_pattern_compile(p, pattern, strlen(pattern), &why))) {
        fprintf(stderr, "pattern: %s\n", why ? why : "invalid");
        exit(2);
    }
    r->targets = apr_array_make(p, 1, sizeof(ad_target_t *));
    d->name = "sink";
    d->endpoint = "http://127.0.0.1:9/ingest";
    d->method = "POST";
    t->destination = d;
    APR_ARRAY_PUSH(r->targets, ad_target_t *) = t;
    APR_ARRAY_PUSH(c->rules, ad_rule_t *) = r;
    ad_conf_index_targets(c);
    ad_conf_index_rules(c, p);
    return c;
}

/* The body bench/ingest.lua posts. */
static char *body_of(apr_pool_t *p, int entries, int dsize)
{
    int pad = dsize > 10 ? dsize - 10 : 0, i; /* 10: {"pad":""} */
    char *x = apr_palloc(p, (apr_size_t)pad + 1), *entry, *body;

    memset(x, 'x', (size_t)pad);
    x[pad] = '\0';
    entry = apr_psprintf(p,
                         "{\"Source\":\"bench.src\",\"DetailType\":\"bench.type\","
                         "\"Detail\":\"{\\\"pad\\\":\\\"%s\\\"}\"}",
                         x);
    body = "{\"Entries\":[";
    for (i = 0; i < entries; i++) {
        body = apr_pstrcat(p, body, i ? "," : "", entry, NULL);
    }
    return apr_pstrcat(p, body, "]}", NULL);
}

int main(int argc, char **argv)
{
    apr_pool_t *pool, *rp;
    ad_conf_t *c = NULL;
    const char *body;
    int entries, n, i, loadb;

    if (argc < 5 || (strcmp(argv[4], "loadb") && (strcmp(argv[4], "ingest") || argc < 6))) {
        fprintf(stderr, "usage: ingest_instr ENTRIES DETAIL_BYTES N ingest PATTERN | loadb\n");
        return 2;
    }
    entries = atoi(argv[1]);
    n = atoi(argv[3]);
    loadb = !strcmp(argv[4], "loadb");
    apr_initialize();
    apr_pool_create(&pool, NULL);
    body = body_of(pool, entries, atoi(argv[2]));
    if (!loadb) {
        c = conf_with_rule(pool, argv[5]);
    }
    for (i = 0; i < n; i++) {
        apr_pool_create(&rp, pool);
        if (loadb) {
            json_t *v = json_loadb(body, strlen(body), 0, NULL);
            if (!v) {
                return 1;
            }
            json_decref(v);
        }
        else {
            ad_ingest_t *in =
                ad_ingest_put_events(rp, c, AD_INGEST_AWSJSON, body, strlen(body), ad_now());
            if (in->failed_count || in->records->nelts != entries) {
                fprintf(stderr, "%d entries failed, %d records\n", in->failed_count,
                        in->records->nelts);
                return 1;
            }
        }
        apr_pool_destroy(rp);
    }
    printf("done %d\n", n);
    return 0;
}
