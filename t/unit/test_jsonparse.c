/* ad_json_parse against json_loadb(..., 0, ...): the same tree (types,
 * values, key order) or the same error, for crafted edge cases, every
 * conformance data file and thousands of mutations of them. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "ad_jsonparse.h"
#include "ad_util.h"
#include "unit_run.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17) | JSON_ENCODE_ANY)

/* NULL when both agree, else a description (static or malloc'd: leaked on
 * failure only). */
static const char *compare(const char *text, size_t len)
{
    json_error_t e1, e2;
    json_t *a = json_loadb(text, len, 0, &e1);
    json_t *b = ad_json_parse(text, len, &e2);
    const char *why = NULL;

    if (!a || !b) {
        if (a || b) {
            why = a ? "ad_json_parse refused what jansson takes"
                    : "ad_json_parse took what jansson refuses";
        }
        else if (strcmp(e1.text, e2.text) || e1.line != e2.line || e1.column != e2.column ||
                 e1.position != e2.position) {
            why = "different error";
        }
    }
    else {
        char *d1 = json_dumps(a, DUMP_FLAGS), *d2 = json_dumps(b, DUMP_FLAGS);
        if (!json_equal(a, b) || !d1 || !d2 || strcmp(d1, d2)) {
            why = "different tree";
        }
        free(d1);
        free(d2);
    }
    json_decref(a);
    json_decref(b);
    return why;
}

static void expect_same(const char *text, size_t len)
{
    const char *why = compare(text, len);
    ck_assert_msg(why == NULL, "%s for input %.*s", why ? why : "", (int)(len > 200 ? 200 : len),
                  text);
}

#define SAME(lit) expect_same(lit, sizeof(lit) - 1)

START_TEST(crafted)
{
    SAME("{}");
    SAME("[]");
    SAME("  {\"a\" : 1 , \"b\":[true,false,null]}\n\t ");
    SAME("{\"a\":1,\"b\":2,\"a\":3}"); /* duplicate: first place, last value */
    SAME("{\"\":\"\"}");
    SAME("[0,-0,1,-1,9223372036854775807,-9223372036854775808]");
    SAME("[9223372036854775808]");
    SAME("[-9223372036854775809]");
    SAME("[0.0,-0.0,1.5,1e5,1E+5,1e-5,1.25e-300,1e-400,2.5E10]");
    SAME("[1e400]");
    SAME("[-1e400]");
    SAME("[01]");
    SAME("[-]");
    SAME("[1.]");
    SAME("[.5]");
    SAME("[1e]");
    SAME("[1e+]");
    SAME("[+1]");
    SAME("[0x10]");
    SAME("[1x]");
    SAME("[12345678901234567890123456789012345678901234567890123456789012345.5]");
    SAME("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"]");
    SAME("[\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"]");
    SAME("[\"\\u0000\"]");
    SAME("[\"\\ud800\"]");
    SAME("[\"\\udc00\"]");
    SAME("[\"\\ud800\\u0041\"]");
    SAME("[\"\\uZZZZ\"]");
    SAME("[\"\\x\"]");
    SAME("[\"\\u12\"]");
    SAME("[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]");
    SAME("[\"\xc3\"]");
    SAME("[\"\xc0\xaf\"]");
    SAME("[\"\xed\xa0\x80\"]");
    SAME("[\"\xf4\x90\x80\x80\"]");
    SAME("[\"\xe0\x80\xaf\"]");
    SAME("[\"\xff\"]");
    SAME("[\"a\tb\"]");
    SAME("[\"a\nb\"]");
    SAME("[\"\x7f\"]");
    SAME("[\"abc");
    SAME("[\"abcdefghijklmnopqrstuvwxyz0123456789\\");
    SAME("[true,tru]");
    SAME("[truex]");
    SAME("[true1]");
    SAME("[nul]");
    SAME("[null,]");
    SAME("{\"a\":1,}");
    SAME("{\"a\" 1}");
    SAME("{a:1}");
    SAME("{\"a\":1} x");
    SAME("{\"a\":1}}");
    SAME("\"top\"");
    SAME("1");
    SAME("null");
    SAME("");
    SAME("   ");
    SAME("[1,2");
    SAME("{\"k\":\"v\"");
    expect_same("[\"a\0b\"]", 7);
    expect_same("[1]\0", 4);
    expect_same("{\"a\0\":1}", 8);
}
END_TEST

START_TEST(long_strings)
{
    size_t n;
    /* every length around the eight-byte steps, every position of a quote,
     * escape, control and non-ASCII byte */
    for (n = 0; n < 40; n++) {
        static const char *specials[] = {"\\\"", "\\n", "\x01", "\xc3\xa9", "\\u00e9", "\xc3"};
        size_t k, pos;
        for (k = 0; k < sizeof(specials) / sizeof(*specials); k++) {
            for (pos = 0; pos <= n; pos++) {
                char buf[128];
                size_t len = 0;
                buf[len++] = '[';
                buf[len++] = '"';
                memset(buf + len, 'x', pos);
                len += pos;
                memcpy(buf + len, specials[k], strlen(specials[k]));
                len += strlen(specials[k]);
                memset(buf + len, 'y', n - pos);
                len += n - pos;
                buf[len++] = '"';
                buf[len++] = ']';
                expect_same(buf, len);
            }
        }
    }
}
END_TEST

START_TEST(deep_nesting)
{
    static char buf[2 * 3000 + 1];
    int depth;
    for (depth = 250; depth <= 2100; depth += 925) {
        int i;
        for (i = 0; i < depth; i++) {
            buf[i] = '[';
            buf[depth + i] = ']';
        }
        expect_same(buf, (size_t)depth * 2);
    }
    memset(buf, '[', 2049);
    expect_same(buf, 2049);
}
END_TEST

/* ad_json_dump's string writer skips plain runs eight bytes at a time: every
 * special byte at every position must still be escaped (read back equal). */
START_TEST(dump_escapes_every_position)
{
    static const char *specials[] = {"\"", "\\", "\n", "\x01", "\x1f", "\xc3\xa9", "/"};
    apr_pool_t *p;
    size_t n, k, pos;

    apr_pool_create(&p, NULL);
    for (n = 0; n < 40; n++) {
        for (k = 0; k < sizeof(specials) / sizeof(*specials); k++) {
            for (pos = 0; pos <= n; pos++) {
                char buf[64];
                size_t len = 0, out_len;
                json_t *v, *back;
                json_error_t e;
                const char *out;

                memset(buf, 'x', pos);
                len = pos;
                memcpy(buf + len, specials[k], strlen(specials[k]));
                len += strlen(specials[k]);
                memset(buf + len, 'y', n - pos);
                len += n - pos;
                v = json_pack("[s#]", buf, (int)len);
                out = ad_json_dump(p, v, &out_len);
                back = json_loadb(out, out_len, 0, &e);
                ck_assert_msg(back && json_equal(v, back), "dump %s does not read back", out);
                json_decref(v);
                json_decref(back);
            }
        }
    }
    apr_pool_destroy(p);
}
END_TEST

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
        buf[n] = '\0';
    }
    else {
        free(buf);
        buf = NULL;
    }
    if (f) {
        fclose(f);
    }
    return buf;
}

static unsigned rnd_state = 12345;

static unsigned rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) & 0xffffff;
}

/* Mutations of text: replaced, dropped and cut bytes from an alphabet that
 * reaches every branch of both parsers. */
static int mutate_and_compare(const char *text, size_t len, int rounds)
{
    static const char alphabet[] = "\"\\{}[],:0123456789eE.-+tfnu/bx \t\n\x01\x7f\xc3\xa9\xed\xa0"
                                   "\x80\xf4\x90\xff";
    char *buf = malloc(len + 1);
    int r, checked = 0;

    for (r = 0; r < rounds && len > 0; r++) {
        size_t n = len, i;
        int edits = 1 + (int)(rnd() % 3);
        memcpy(buf, text, len);
        for (i = 0; i < (size_t)edits; i++) {
            size_t at = rnd() % n;
            switch (rnd() % 3) {
            case 0:
                buf[at] = alphabet[rnd() % (sizeof(alphabet) - 1)];
                break;
            case 1:
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
                break;
            default:
                n = at + 1;
            }
            if (n == 0) {
                break;
            }
        }
        expect_same(buf, n);
        checked++;
    }
    free(buf);
    return checked;
}

static int compare_file(const char *path, int mutations)
{
    size_t len, start, i;
    char *text = slurp(path, &len);
    int lines = 0;

    if (!text) {
        return 0;
    }
    expect_same(text, len);
    /* JSON-lines files: every line too */
    for (start = 0, i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            if (i > start) {
                expect_same(text + start, i - start);
                if (mutations) {
                    mutate_and_compare(text + start, i - start, mutations);
                }
                lines++;
            }
            start = i + 1;
        }
    }
    free(text);
    return lines;
}

static int walk(const char *dir, int mutations)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int files = 0;

    ck_assert_msg(d != NULL, "cannot open %s", dir);
    while ((de = readdir(d))) {
        char path[4096];
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR) {
            files += walk(path, mutations);
        }
        else if ((n > 5 && !strcmp(de->d_name + n - 5, ".json")) ||
                 (n > 6 && !strcmp(de->d_name + n - 6, ".jsonl"))) {
            compare_file(path, mutations);
            files++;
        }
    }
    closedir(d);
    return files;
}

/* ad_json_plain_run, however many bytes it looks at at a time (8, 16, 32), stops where
 * a byte-by-byte reading stops: at every offset and length, for each kind
 * of byte that ends a run. */
static size_t plain_run_bytewise(const unsigned char *s, size_t n, int ascii_only)
{
    size_t i = 0;
    while (i < n && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20 && (!ascii_only || s[i] < 0x80)) {
        i++;
    }
    return i;
}

START_TEST(plain_run_as_bytewise)
{
    static const unsigned char stops[] = {'"',  '\\', 0x00, 0x1f, 0x0a,
                                          0x80, 0xc3, 0xff, 0x20, 0x7f};
    static const int widths[] = {8, 16, 32, 0};
    unsigned char buf[176];
    size_t n, at, k, w;
    int ascii;

    for (w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
        ad_json_plain_run_width(widths[w]);
        for (n = 0; n <= 160; n++) {
            for (at = 0; at <= n; at++) {
                for (k = 0; k < sizeof(stops); k++) {
                    for (ascii = 0; ascii <= 1; ascii++) {
                        size_t want, got;
                        memset(buf, 'x', sizeof(buf));
                        if (at < n) {
                            buf[at] = stops[k];
                        }
                        buf[n] = '"'; /* past the end: never looked at */
                        want = plain_run_bytewise(buf + 1, n > 0 ? n - 1 : 0, ascii);
                        got = ad_json_plain_run(buf + 1, n > 0 ? n - 1 : 0, ascii);
                        ck_assert_msg(got == want,
                                      "width %d n %zu at %zu byte %02x ascii %d: %zu, want %zu",
                                      widths[w], n, at, stops[k], ascii, got, want);
                    }
                }
            }
        }
    }
}
END_TEST

START_TEST(conformance_files_and_mutations)
{
    const char *dir = getenv("AD_CONFORMANCE_DIR");
    ck_assert_msg(dir != NULL, "AD_CONFORMANCE_DIR is not set");
    /* 20 mutations of every line of every file: tens of thousands of inputs */
    ck_assert_int_gt(walk(dir, 20), 3);
}
END_TEST

int main(void)
{
    Suite *s;
    TCase *tc;

    s = suite_create("jsonparse");
    tc = tcase_create("same as jansson");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, crafted);
    tcase_add_test(tc, long_strings);
    tcase_add_test(tc, deep_nesting);
    tcase_add_test(tc, dump_escapes_every_position);
    tcase_add_test(tc, conformance_files_and_mutations);
    tcase_add_test(tc, plain_run_as_bytewise);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
