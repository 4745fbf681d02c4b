/* Small pure helpers: ids, time formatting, JSON text. */
#ifndef AD_UTIL_H
#define AD_UTIL_H

#include <apr_pools.h>
#include <apr_time.h>
#include <jansson.h>

#define AD_UUID_LEN 36

/* A version-4 UUID, lowercase, NUL-terminated into buf[AD_UUID_LEN + 1],
 * from the system's random source (drawn a block at a time per thread; a
 * process made by fork() never repeats its parent's ids). */
void ad_uuid4(char *buf);

/* The same from 16 given bytes (for tests). */
void ad_uuid4_of(char *buf, const unsigned char *random16);

/* "YYYY-MM-DDThh:mm:ssZ" (UTC, whole seconds) into buf[21]. */
void ad_time_rfc3339(char *buf, apr_time_t t);

/* Parse an RFC 3339 / ISO 8601 UTC-or-offset timestamp; APR_EGENERAL when
 * it is not one. */
apr_status_t ad_time_parse_rfc3339(const char *s, apr_time_t *t);

/* Whether s holds a control character other than tab (or DEL): one that
 * ends or bends a header line (CR, LF) or has no place in it (RFC 9110
 * 5.5). The one rule for header values, at config time and at send time. */
int ad_has_control(const char *s);

/* 1 for RFC 3986's unreserved characters (ASCII letters, digits, -._~),
 * whatever the locale. */
int ad_url_unreserved(unsigned char c);

/* RFC 3986 percent-encoding of everything but unreserved characters, so a
 * value cannot add path segments, query parameters or fragments. */
char *ad_url_encode(apr_pool_t *p, const char *s);
/* The same for n bytes that may hold NUL (SigV4 encodes decoded values). */
char *ad_url_encode_n(apr_pool_t *p, const char *s, apr_size_t n);

/* Where url's path starts: just after scheme://authority (at its '/', '?',
 * '#' or end); url itself when it has no "://". */
const char *ad_url_path(const char *url);

/* Whether the path of url (after scheme://authority, before '?' or '#')
 * has a "." or ".." segment, spelled out or percent-encoded, or one
 * between percent-encoded '/' or '\\' ("..%2Fadmin"): HTTP clients and
 * servers resolve those, so the request would go to another path. */
int ad_url_has_dot_segment(const char *url);

/* A URL's scheme://host[:port] as connections see it: lower case, without
 * userinfo, a trailing dot on the host or the scheme's default port, the
 * port as a plain number (":0443" is ":443", so https's default). Written
 * to buf (cut at AD_URL_ORIGIN_MAX - 1 bytes); returns its length. */
#define AD_URL_ORIGIN_MAX 320
apr_size_t ad_url_origin(const char *url, char *buf);

/* Compact JSON text of v in p (NULL on failure). Object key order is kept. */
char *ad_json_dump(apr_pool_t *p, const json_t *v, size_t *len);

/* The growing buffer ad_json_dump writes into, for callers that write a
 * document's parts themselves in the same form (start it as {NULL, 0, 0,
 * pool}; buf is not NUL-terminated). */
typedef struct ad_jbuf_t {
    char *buf;
    size_t len, cap;
    apr_pool_t *p;
} ad_jbuf_t;
void ad_jbuf_put(ad_jbuf_t *b, const char *s, size_t n);
/* s (n bytes) as a quoted JSON string; v as ad_json_dump writes it. */
void ad_jbuf_string(ad_jbuf_t *b, const char *s, size_t n);
void ad_jbuf_value(ad_jbuf_t *b, const json_t *v);

/* How many bytes from s (n in all) a JSON string carries as they are: up to
 * the first '"', '\\' or control character and, with ascii_only, the first
 * byte >= 0x80 (which then needs a UTF-8 check). 32, 16 or 8 bytes at a
 * time (AVX2 where the CPU has it, SSE2, then words): event details are
 * mostly long plain strings. */
size_t ad_json_plain_run(const unsigned char *s, size_t n, int ascii_only);
/* For tests: the widest step it may take, 8, 16 or 32 bytes (0: whatever
 * the CPU allows, the default), so each path can be held to the same
 * answers on a CPU that would always take the widest. */
void ad_json_plain_run_width(int max_bytes);

/* s (n bytes) as a JSON string, quotes included, escaped as ad_json_dump
 * escapes strings: '"', '\\' and control characters only (UTF-8 passes as
 * it is). put receives the pieces in order. */
typedef void ad_json_put_fn(void *baton, const char *p, size_t n);
void ad_json_write_string(const char *s, size_t n, ad_json_put_fn *put, void *baton);

/* A JSON "backslash u" escape at q (the 'u', after the backslash), with its
 * low surrogate when it is a high one, as jansson decodes it: the code
 * point, the bytes it took in *used; -1 when jansson rejects it (bad hex,
 * a lone or mismatched surrogate, code point 0). */
long ad_json_unicode_escape(const unsigned char *q, const unsigned char *end, int *used);

/* A JSON number at q as jansson's lexer reads it,
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?: 1 with its length, whether
 * it is real (a fraction or an exponent), its digits before the point and
 * the offset of its exponent mark (-1: none); 0 when q holds none. */
typedef struct ad_json_number_t {
    size_t len;
    int real;
    int intdig;
    long exp;
} ad_json_number_t;
int ad_json_number_lex(const unsigned char *q, const unsigned char *end, ad_json_number_t *num);

/* Code point cp as UTF-8 into out (room for 4): the byte count. */
size_t ad_utf8_put(char *out, apr_uint32_t cp);

/* Length of the strict UTF-8 sequence at s (as jansson checks it: no
 * overlong forms, surrogates or code points above U+10FFFF), 0 when it is
 * not one. */
size_t ad_utf8_seq_len(const unsigned char *s, const unsigned char *end);

/* The len bytes at s with every byte that is not part of valid UTF-8 as
 * U+FFFD, as a NUL-terminated copy in p: jansson takes only UTF-8 strings.
 * *out_len (may be NULL) is the copy's length. */
const char *ad_utf8_clean(apr_pool_t *p, const char *s, apr_size_t len, apr_size_t *out_len);

/* A real as ad_json_dump writes it (shortest text that reads back as v, with
 * ".0" when it would read as an integer), NUL-terminated in out; returns its
 * length. */
#define AD_JSON_REAL_MAX 40
size_t ad_json_real_text(double v, char *out);

/* Register json_decref of v as a cleanup of p; returns v. */
json_t *ad_json_own(apr_pool_t *p, json_t *v);

/* A pool of its own allocator, which keeps at most max_free bytes of freed
 * blocks for reuse and is locked, so that subpools may come and go on any
 * thread; destroyed with owner. For pools that live long and see peaks. */
apr_status_t ad_bounded_pool_create(apr_pool_t *owner, apr_size_t max_free, apr_pool_t **out);

/* The wall clock every part of mod_apidest reads. For tests only, the
 * environment can make it run faster: APIDEST_TEST_CLOCK_RATE=N (N times
 * real speed) from APIDEST_TEST_CLOCK_BASE (epoch seconds, the same for
 * every process). ad_clock_init reads them once, before forking; it returns
 * the rate (1 when the clock is real). */
double ad_clock_init(void);
apr_time_t ad_now(void);
/* How long to really wait for clock_interval to pass on ad_now's clock. */
apr_interval_time_t ad_real_interval(apr_interval_time_t clock_interval);
/* Microseconds on a clock that a change of the time of day does not move:
 * for budgets and elapsed times, not for dates. */
apr_time_t ad_monotonic(void);

#endif
