#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#define AD_PLAIN_AVX2 1
#include <immintrin.h>
#else
#define AD_PLAIN_AVX2 0
#endif
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <ctype.h>
#include <stdint.h>
#include <pthread.h>
#include <unistd.h>

#include <apr_allocator.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_thread_mutex.h>
#include <apr_general.h>

#include "ad_util.h"

static const char hexdigits[] = "0123456789abcdef";

static apr_uint64_t splitmix64(apr_uint64_t *x)
{
    apr_uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void random_bytes(unsigned char *b, apr_size_t n)
{
    static apr_uint64_t calls;
    apr_uint64_t x, v = 0;
    apr_size_t i;

    if (apr_generate_random_bytes(b, n) == APR_SUCCESS) {
        return;
    }
    /* getrandom() does not fail once the kernel's pool is seeded (APR
     * retries short reads). Should it, ids must still differ between
     * processes, threads and calls rather than abort: the time, the pid,
     * this thread's stack and a count seed the sequence. */
    x = (apr_uint64_t)apr_time_now() ^ ((apr_uint64_t)getpid() << 40) ^
        (apr_uint64_t)(uintptr_t)&v ^ (++calls << 20);
    for (i = 0; i < n; i++) {
        if (i % 8 == 0) {
            v = splitmix64(&x);
        }
        b[i] = (unsigned char)(v >> ((i % 8) * 8));
    }
}

static void hex_into(char *out, const unsigned char *b, apr_size_t n)
{
    apr_size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = hexdigits[b[i] >> 4];
        out[2 * i + 1] = hexdigits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Ids draw their random bytes from a per-thread block filled by one
 * getrandom() for every 32 ids: a stored PutEvents request needed two such
 * system calls (its request id and its EventIds), each a few microseconds of
 * the kernel's ChaCha on this VM. A forked child must never hand out what
 * its parent has yet to: every fork bumps, in the child, the generation each
 * thread's block is checked against (glibc drops the handler when the module
 * is unloaded). */
#define RANDOM_BLOCK 512

typedef struct {
    unsigned char b[RANDOM_BLOCK];
    apr_size_t left;
    unsigned int gen;
} random_block_t;

static __thread random_block_t rnd;
static unsigned int rnd_gen = 1; /* a thread's zeroed block is never current */
static pthread_once_t rnd_once = PTHREAD_ONCE_INIT;

static void rnd_forked(void)
{
    rnd_gen++;
}

static void rnd_watch_forks(void)
{
    pthread_atfork(NULL, NULL, rnd_forked);
}

static void random_take(unsigned char *out, apr_size_t n)
{
    random_block_t *r = &rnd; /* one TLS lookup: the module's TLS is dynamic */

    pthread_once(&rnd_once, rnd_watch_forks);
    if (r->gen != rnd_gen || r->left < n) {
        random_bytes(r->b, sizeof(r->b));
        r->left = sizeof(r->b);
        r->gen = rnd_gen;
    }
    r->left -= n;
    memcpy(out, r->b + r->left, n);
    memset(r->b + r->left, 0, n); /* what was handed out is not kept */
}

void ad_uuid4_of(char *buf, const unsigned char *random16)
{
    unsigned char b[16];
    char hex[33];

    memcpy(b, random16, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    hex_into(hex, b, sizeof(b));
    memcpy(buf, hex, 8);
    buf[8] = '-';
    memcpy(buf + 9, hex + 8, 4);
    buf[13] = '-';
    memcpy(buf + 14, hex + 12, 4);
    buf[18] = '-';
    memcpy(buf + 19, hex + 16, 4);
    buf[23] = '-';
    memcpy(buf + 24, hex + 20, 12);
    buf[36] = '\0';
}

void ad_uuid4(char *buf)
{
    unsigned char b[16];

    random_take(b, sizeof(b));
    ad_uuid4_of(buf, b);
}

int ad_has_control(const char *s)
{
    const unsigned char *v;

    for (v = (const unsigned char *)s; *v; v++) {
        if ((*v < 0x20 && *v != '\t') || *v == 0x7f) {
            return 1;
        }
    }
    return 0;
}

/* RFC 3986's unreserved characters, in ASCII whatever the locale: a
 * module that sets a single-byte locale would make isalnum() take bytes
 * over 0x7F, which would then reach the URL unencoded. */
int ad_url_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

char *ad_url_encode(apr_pool_t *p, const char *s)
{
    return ad_url_encode_n(p, s, strlen(s));
}

char *ad_url_encode_n(apr_pool_t *p, const char *s, apr_size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, n * 3 + 1), *o = out;
    const char *end = s + n;

    for (; s < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (ad_url_unreserved(c)) {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* The proleptic Gregorian date of day z (0 = 1970-01-01), in the manner of
 * H. Hinnant's civil_from_days: arithmetic only, where gmtime_r takes
 * glibc's time-zone lock for every entry of every request. */
static void civil_from_days(long long z, long long *y, int *m, int *d)
{
    long long era;
    unsigned doe, yoe, doy, mp;

    z += 719468; /* days from 0000-03-01 */
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

static void put_digits(char *out, long long v, int n)
{
    while (n-- > 0) {
        out[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

void ad_time_rfc3339(char *buf, apr_time_t t)
{
    long long secs = (long long)apr_time_sec(t), days, rem, y;
    int m, d;

    /* Years outside 0000-9999 do not fit buf[21]. Clamped (callers keep
     * their times in range). */
    if (secs < -62167219200LL) {
        secs = -62167219200LL; /* 0000-01-01T00:00:00Z */
    }
    else if (secs > 253402300799LL) {
        secs = 253402300799LL; /* 9999-12-31T23:59:59Z */
    }
    days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    rem = secs - days * 86400;
    civil_from_days(days, &y, &m, &d);
    memcpy(buf, "0000-00-00T00:00:00Z", 21);
    put_digits(buf, y, 4);
    put_digits(buf + 5, m, 2);
    put_digits(buf + 8, d, 2);
    put_digits(buf + 11, rem / 3600, 2);
    put_digits(buf + 14, rem / 60 % 60, 2);
    put_digits(buf + 17, rem % 60, 2);
}

static int parse_digits(const char **s, int n, int *out)
{
    int v = 0, i;
    for (i = 0; i < n; i++) {
        if ((*s)[i] < '0' || (*s)[i] > '9') {
            return 0;
        }
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return 1;
}

static int expect_char(const char **s, char c)
{
    if (**s != c) {
        return 0;
    }
    (*s)++;
    return 1;
}

static apr_status_t parse_offset(const char *s, long *offset)
{
    int sign, oh, om;

    if ((*s == 'Z' || *s == 'z') && s[1] == '\0') {
        *offset = 0;
        return APR_SUCCESS;
    }
    if (*s != '+' && *s != '-') {
        return APR_EGENERAL;
    }
    sign = (*s == '-') ? -1 : 1;
    s++;
    if (!parse_digits(&s, 2, &oh) || !expect_char(&s, ':') || !parse_digits(&s, 2, &om) ||
        *s != '\0' || om > 59 || oh * 60 + om > 18 * 60) {
        return APR_EGENERAL;
    }
    *offset = sign * (oh * 3600L + om * 60L);
    return APR_SUCCESS;
}

static int days_in_month(int y, int mo)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return mo == 2 && leap ? 29 : days[mo - 1];
}

/* Impossible dates are refused, not rolled over by timegm (2024-02-31
 * would be 2024-03-02), as java.time's ISO_INSTANT refuses them: offsets
 * within 18:00, a leap second only at 23:59:60, read as 23:59:59 with its
 * fraction. */
apr_status_t ad_time_parse_rfc3339(const char *s, apr_time_t *t)
{
    struct tm tm;
    int y, mo, d, h, mi, sec;
    long offset;
    apr_int64_t usec = 0;

    memset(&tm, 0, sizeof(tm));
    if (!parse_digits(&s, 4, &y) || !expect_char(&s, '-') || !parse_digits(&s, 2, &mo) ||
        !expect_char(&s, '-') || !parse_digits(&s, 2, &d) ||
        (*s != 'T' && *s != 't' && *s != ' ')) {
        return APR_EGENERAL;
    }
    s++;
    if (!parse_digits(&s, 2, &h) || !expect_char(&s, ':') || !parse_digits(&s, 2, &mi) ||
        !expect_char(&s, ':') || !parse_digits(&s, 2, &sec)) {
        return APR_EGENERAL;
    }
    if (*s == '.') {
        apr_int64_t scale = 100000;
        s++;
        if (*s < '0' || *s > '9') {
            return APR_EGENERAL;
        }
        while (*s >= '0' && *s <= '9') {
            usec += (*s - '0') * scale;
            scale /= 10;
            s++;
        }
    }
    if (parse_offset(s, &offset) != APR_SUCCESS || mo < 1 || mo > 12 || d < 1 ||
        d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 ||
        (sec == 60 && (h != 23 || mi != 59))) {
        return APR_EGENERAL;
    }
    if (sec == 60) {
        sec = 59;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *t = apr_time_from_sec((apr_int64_t)timegm(&tm) - offset) + usec;
    return APR_SUCCESS;
}

static apr_status_t json_decref_cleanup(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

json_t *ad_json_own(apr_pool_t *p, json_t *v)
{
    if (v) {
        apr_pool_cleanup_register(p, v, json_decref_cleanup, apr_pool_cleanup_null);
    }
    return v;
}

static void jb_reserve(ad_jbuf_t *b, size_t more)
{
    char *nbuf;
    size_t ncap;

    if (b->len + more <= b->cap) {
        return;
    }
    ncap = b->cap ? b->cap * 2 : 256;
    while (ncap < b->len + more) {
        ncap *= 2;
    }
    nbuf = apr_palloc(b->p, ncap);
    if (b->len) {
        memcpy(nbuf, b->buf, b->len);
    }
    b->buf = nbuf;
    b->cap = ncap;
}

void ad_jbuf_put(ad_jbuf_t *b, const char *s, size_t n)
{
    jb_reserve(b, n);
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static int hex4_value(const unsigned char *q)
{
    int i, v = 0, d;

    for (i = 0; i < 4; i++) {
        if (q[i] >= '0' && q[i] <= '9') {
            d = q[i] - '0';
        }
        else if ((q[i] | 0x20) >= 'a' && (q[i] | 0x20) <= 'f') {
            d = (q[i] | 0x20) - 'a' + 10;
        }
        else {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

long ad_json_unicode_escape(const unsigned char *q, const unsigned char *end, int *used)
{
    long v, lo;

    if (end - q < 5 || (v = hex4_value(q + 1)) < 0) {
        return -1;
    }
    *used = 5;
    if (v >= 0xD800 && v <= 0xDBFF) {
        if (end - q < 11 || q[5] != '\\' || q[6] != 'u' || (lo = hex4_value(q + 7)) < 0 ||
            lo < 0xDC00 || lo > 0xDFFF) {
            return -1;
        }
        *used = 11;
        return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
    }
    if ((v >= 0xDC00 && v <= 0xDFFF) || v == 0) {
        return -1;
    }
    return v;
}

static const unsigned char *skip_digits(const unsigned char *q, const unsigned char *end)
{
    while (q < end && *q >= '0' && *q <= '9') {
        q++;
    }
    return q;
}

int ad_json_number_lex(const unsigned char *q, const unsigned char *end, ad_json_number_t *num)
{
    const unsigned char *start = q, *after;

    memset(num, 0, sizeof(*num));
    num->exp = -1;
    if (q < end && *q == '-') {
        q++;
    }
    after = skip_digits(q, end);
    if (after == q || (*q == '0' && after - q > 1)) {
        return 0; /* no digit, or a leading zero */
    }
    num->intdig = (int)(after - q);
    q = after;
    if (q < end && *q == '.') {
        after = skip_digits(++q, end);
        if (after == q) {
            return 0;
        }
        q = after;
        num->real = 1;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        num->exp = q - start;
        if (++q < end && (*q == '+' || *q == '-')) {
            q++;
        }
        after = skip_digits(q, end);
        if (after == q) {
            return 0;
        }
        q = after;
        num->real = 1;
    }
    num->len = (size_t)(q - start);
    return 1;
}

size_t ad_utf8_put(char *out, apr_uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t ad_utf8_seq_len(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0], n, i;
    apr_uint32_t u;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, u = c & 0x1f;
    }
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3, u = c & 0x0f;
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, u = c & 0x07;
    }
    else {
        return 0;
    }
    if ((size_t)(end - s) < n) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        u = (u << 6) | (s[i] & 0x3f);
    }
    if (u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff) || (n == 3 && u < 0x800) ||
        (n == 4 && u < 0x10000)) {
        return 0;
    }
    return n;
}

static int utf8_valid(const unsigned char *q, const unsigned char *end)
{
    size_t n;

    while (q < end) {
        if (*q < 0x80) {
            q++;
        }
        else if ((n = ad_utf8_seq_len(q, end)) > 0) {
            q += n;
        }
        else {
            return 0;
        }
    }
    return 1;
}

const char *ad_utf8_clean(apr_pool_t *p, const char *s, apr_size_t len, apr_size_t *out_len)
{
    const unsigned char *q, *end = (const unsigned char *)s + len;
    char *out, *o;
    size_t n;

    if (utf8_valid((const unsigned char *)s, end)) {
        if (out_len) {
            *out_len = len;
        }
        return apr_pstrmemdup(p, s, len);
    }
    o = out = apr_palloc(p, 3 * len + 1);
    for (q = (const unsigned char *)s; q < end; q += n) {
        if (*q < 0x80) {
            n = 1;
            *o++ = (char)*q;
        }
        else if ((n = ad_utf8_seq_len(q, end)) > 0) {
            memcpy(o, q, n);
            o += n;
        }
        else {
            n = 1;
            o += ad_utf8_put(o, 0xFFFD);
        }
    }
    *o = '\0';
    if (out_len) {
        *out_len = (apr_size_t)(o - out);
    }
    return out;
}

#if defined(__SSE2__)
/* Sixteen bytes at a time where every x86-64 CPU can: the offset of the
 * first byte that ends a plain run within the first n - n % 16 bytes, or
 * that count when none does. */
static size_t plain_run_sse2(const unsigned char *s, size_t n, int ascii_only)
{
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i ctl_max = _mm_set1_epi8(0x1f);
    size_t i = 0;

    for (; n - i >= 16; i += 16) {
        __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, bslash));
        int mask;
        /* a byte below 0x20: unsigned min(w, 0x1f) == w */
        stop = _mm_or_si128(stop, _mm_cmpeq_epi8(_mm_min_epu8(w, ctl_max), w));
        mask = _mm_movemask_epi8(stop) | (ascii_only ? _mm_movemask_epi8(w) : 0);
        if (mask) {
            return i + (size_t)__builtin_ctz((unsigned)mask);
        }
    }
    return i;
}
#endif

#if AD_PLAIN_AVX2
/* The same, thirty-two bytes at a time, on CPUs that have AVX2 (asked once:
 * the answer is the same for every thread, so a race only repeats it). */
__attribute__((target("avx2"))) static size_t plain_run_avx2(const unsigned char *s, size_t n,
                                                             int ascii_only)
{
    const __m256i quote = _mm256_set1_epi8('"'), bslash = _mm256_set1_epi8('\\');
    const __m256i ctl_max = _mm256_set1_epi8(0x1f);
    size_t i = 0;

    for (; n - i >= 32; i += 32) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
        __m256i stop = _mm256_or_si256(_mm256_cmpeq_epi8(w, quote), _mm256_cmpeq_epi8(w, bslash));
        unsigned mask;
        stop = _mm256_or_si256(stop, _mm256_cmpeq_epi8(_mm256_min_epu8(w, ctl_max), w));
        mask = (unsigned)_mm256_movemask_epi8(stop) |
               (ascii_only ? (unsigned)_mm256_movemask_epi8(w) : 0u);
        if (mask) {
            return i + (size_t)__builtin_ctz(mask);
        }
    }
    return i;
}

static int cpu_has_avx2(void)
{
    static int known; /* 0: not asked yet, 1: no, 2: yes */

    if (!known) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") ? 2 : 1;
    }
    return known == 2;
}
#endif

static int plain_width_max; /* 0: no limit */

void ad_json_plain_run_width(int max_bytes)
{
    plain_width_max = max_bytes;
}

size_t ad_json_plain_run(const unsigned char *s, size_t n, int ascii_only)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint64_t keep_high = ascii_only ? highs : 0;
    size_t i = 0;

#if AD_PLAIN_AVX2
    if (n >= 32 && (!plain_width_max || plain_width_max >= 32) && cpu_has_avx2() &&
        (i = plain_run_avx2(s, n, ascii_only)) < n - n % 32) {
        return i;
    }
#endif
#if defined(__SSE2__)
    if (n - i >= 16 && (!plain_width_max || plain_width_max >= 16)) {
        size_t rest = n - i, k = plain_run_sse2(s + i, rest, ascii_only);
        if (k < rest - rest % 16) {
            return i + k;
        }
        i += k;
    }
#endif
    while (n - i >= 8) {
        uint64_t w, quote, bslash, ctl;
        memcpy(&w, s + i, 8);
        quote = w ^ (ones * '"');
        bslash = w ^ (ones * '\\');
        quote = (quote - ones) & ~quote;
        bslash = (bslash - ones) & ~bslash;
        ctl = (w - ones * 0x20) & ~w; /* a byte < 0x20 */
        if ((quote | bslash | ctl | (w & keep_high)) & highs) {
            break;
        }
        i += 8;
    }
    while (i < n && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20 && (!ascii_only || s[i] < 0x80)) {
        i++;
    }
    return i;
}

void ad_json_write_string(const char *s, size_t n, ad_json_put_fn *put, void *baton)
{
    size_t i, run = 0;

    put(baton, "\"", 1);
    for (i = ad_json_plain_run((const unsigned char *)s, n, 0); i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ubuf[7];

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        put(baton, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            snprintf(ubuf, sizeof(ubuf), "\\u%04X", c);
            esc = ubuf;
        }
        put(baton, esc, strlen(esc));
    }
    put(baton, s + run, n - run);
    put(baton, "\"", 1);
}

static void jb_put_piece(void *baton, const char *p, size_t n)
{
    ad_jbuf_put(baton, p, n);
}

void ad_jbuf_string(ad_jbuf_t *b, const char *s, size_t n)
{
    jb_reserve(b, n + 2);
    ad_json_write_string(s, n, jb_put_piece, b);
}

/* The shortest significant digits that read back as v, in digits (no
 * point, no trailing zeros but the first digit); returns v's decimal
 * exponent (v = 0.d1d2... x 10^(exp+1)). */
static int shortest_digits(double v, char *digits)
{
    char sci[AD_JSON_REAL_MAX], *e, *w = digits;
    const char *r;
    int prec;

    /* two digits at least, as Java: the closest two-digit decimal where
     * one digit would do but is not the closest (4.9E-324, not 5.0E-324) */
    for (prec = 1; prec <= 16; prec++) {
        snprintf(sci, sizeof(sci), "%.*e", prec, v);
        if (strtod(sci, NULL) == v) {
            break;
        }
    }
    e = strchr(sci, 'e');
    for (r = sci + (*sci == '-'); r < e; r++) {
        if (*r != '.') {
            *w++ = *r;
        }
    }
    while (w > digits + 1 && w[-1] == '0') {
        w--;
    }
    *w = '\0';
    return atoi(e + 1);
}

/* The shortest text that reads back as the same double, laid out as Java's
 * Double.toString (what EventBridge's Jackson writes): plain decimal with at
 * least one fractional digit for 1e-3 <= |v| < 1e7 ("2500.0", "0.001"),
 * otherwise d.ddd"E"n ("1.0E21", "-2.5E-7"). jansson's default printed 17
 * digits (0.1 as 0.10000000000000001), %g an exponent for 2500.0. */
size_t ad_json_real_text(double v, char *out)
{
    char digits[24];
    int exp, nd, i;
    char *w = out;

    if (v != v || v == HUGE_VAL || v == -HUGE_VAL) {
        return (size_t)snprintf(out, AD_JSON_REAL_MAX, "null"); /* never from JSON text */
    }
    if (signbit(v)) {
        *w++ = '-';
        v = -v;
    }
    if (v == 0) {
        strcpy(w, "0.0");
        return strlen(out);
    }
    exp = shortest_digits(v, digits);
    nd = (int)strlen(digits);
    if (exp >= -3 && exp < 7) {
        if (exp < 0) {
            w += sprintf(w, "0.");
            for (i = -1; i > exp; i--) {
                *w++ = '0';
            }
            w += sprintf(w, "%s", digits);
        }
        else {
            for (i = 0; i <= exp; i++) {
                *w++ = i < nd ? digits[i] : '0';
            }
            *w++ = '.';
            w += sprintf(w, "%s", nd > exp + 1 ? digits + exp + 1 : "0");
        }
    }
    else {
        w += sprintf(w, "%c.%sE%d", digits[0], nd > 1 ? digits + 1 : "0", exp);
    }
    return (size_t)(w - out);
}

static void jb_real(ad_jbuf_t *b, double v)
{
    char tmp[AD_JSON_REAL_MAX];

    ad_jbuf_put(b, tmp, ad_json_real_text(v, tmp));
}

void ad_jbuf_value(ad_jbuf_t *b, const json_t *v)
{
    char tmp[32];

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        int first = 1;
        ad_jbuf_put(b, "{", 1);
        json_object_foreach((json_t *)v, k, m)
        {
            if (!first) {
                ad_jbuf_put(b, ",", 1);
            }
            first = 0;
            ad_jbuf_string(b, k, strlen(k));
            ad_jbuf_put(b, ":", 1);
            ad_jbuf_value(b, m);
        }
        ad_jbuf_put(b, "}", 1);
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        ad_jbuf_put(b, "[", 1);
        for (i = 0; i < json_array_size(v); i++) {
            if (i) {
                ad_jbuf_put(b, ",", 1);
            }
            ad_jbuf_value(b, json_array_get(v, i));
        }
        ad_jbuf_put(b, "]", 1);
        break;
    }
    case JSON_STRING:
        ad_jbuf_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        ad_jbuf_put(b, tmp, strlen(tmp));
        break;
    case JSON_REAL:
        jb_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        ad_jbuf_put(b, "true", 4);
        break;
    case JSON_FALSE:
        ad_jbuf_put(b, "false", 5);
        break;
    case JSON_NULL:
        ad_jbuf_put(b, "null", 4);
        break;
    }
}

char *ad_json_dump(apr_pool_t *p, const json_t *v, size_t *len)
{
    ad_jbuf_t b = {NULL, 0, 0, p};

    if (!v) { /* a failed json_pack: never a crash */
        if (len) {
            *len = 4;
        }
        return apr_pstrdup(p, "null");
    }
    ad_jbuf_value(&b, v);
    ad_jbuf_put(&b, "", 1);
    if (len) {
        *len = b.len - 1;
    }
    return b.buf;
}

static double clock_rate = 1.0;
static apr_time_t clock_base;

double ad_clock_init(void)
{
    const char *rate = getenv("APIDEST_TEST_CLOCK_RATE");
    const char *base = getenv("APIDEST_TEST_CLOCK_BASE");

    clock_rate = 1.0;
    if (rate && base && atof(rate) > 0) {
        clock_rate = atof(rate);
        clock_base = apr_time_from_sec(apr_atoi64(base));
    }
    return clock_rate;
}

apr_time_t ad_now(void)
{
    apr_time_t real = apr_time_now();

    if (clock_rate == 1.0) {
        return real;
    }
    return clock_base + (apr_time_t)((double)(real - clock_base) * clock_rate);
}

apr_interval_time_t ad_real_interval(apr_interval_time_t clock_interval)
{
    return (apr_interval_time_t)((double)clock_interval / clock_rate);
}

apr_time_t ad_monotonic(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (apr_time_t)ts.tv_sec * APR_USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* The port as a number: -1 when it is not all digits or out of range (it is
 * then kept as written), 0 when empty (RFC 3986: the scheme's default). */
static long origin_port(const char *port, const char *end)
{
    long v = 0;

    for (; port < end; port++) {
        if (!apr_isdigit(*port) || (v = v * 10 + (*port - '0')) > 65535) {
            return -1;
        }
    }
    return v;
}

/* One path segment, n bytes at seg: "." or "..", with any dot as %2e. */
static int is_dot_segment(const char *seg, apr_size_t n)
{
    int dots = 0;

    while (n) {
        if (*seg == '.') {
            seg++;
            n--;
        }
        else if (n >= 3 && seg[0] == '%' && seg[1] == '2' && (seg[2] == 'e' || seg[2] == 'E')) {
            seg += 3;
            n -= 3;
        }
        else {
            return 0;
        }
        dots++;
    }
    return dots == 1 || dots == 2;
}

/* A percent-encoded '/' or '\\': servers that decode before they resolve
 * dot segments (nginx, IIS) treat it as a separator. */
static int is_encoded_separator(const char *s, apr_size_t n)
{
    return n >= 3 && s[0] == '%' &&
           ((s[1] == '2' && (s[2] == 'f' || s[2] == 'F')) ||
            (s[1] == '5' && (s[2] == 'c' || s[2] == 'C')));
}

/* Whether a segment, or a piece of it between encoded separators
 * ("..%2Fadmin"), is a dot segment. */
static int has_dot_piece(const char *seg, apr_size_t n)
{
    apr_size_t start = 0, i;

    for (i = 0; i <= n; i++) {
        if (i == n || is_encoded_separator(seg + i, n - i)) {
            if (is_dot_segment(seg + start, i - start)) {
                return 1;
            }
            if (i < n) {
                i += 2;
                start = i + 1;
            }
        }
    }
    return 0;
}

const char *ad_url_path(const char *url)
{
    const char *sep = strstr(url, "://");

    return sep ? sep + 3 + strcspn(sep + 3, "/?#") : url;
}

int ad_url_has_dot_segment(const char *url)
{
    const char *p = ad_url_path(url);
    apr_size_t end = strcspn(p, "?#");

    while (end && *p == '/') {
        apr_size_t n = strcspn(p + 1, "/?#");
        if (n > end - 1) {
            n = end - 1;
        }
        if (has_dot_piece(p + 1, n)) {
            return 1;
        }
        p += n + 1;
        end -= n + 1;
    }
    return 0;
}

static int origin_default_port(const char *url, long port)
{
    return port == 0 || (port == 80 && !strncasecmp(url, "http:", 5)) ||
           (port == 443 && !strncasecmp(url, "https:", 6));
}

/* The authority's host ends at the last ':' not inside an IPv6 literal. */
apr_size_t ad_url_origin(const char *url, char *buf)
{
    const char *sep = strstr(url, "://"), *auth, *end, *at, *host_end, *port = NULL;
    apr_size_t n = 0;
    const char *p;
    long port_num;
    char digits[8];

#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (n < AD_URL_ORIGIN_MAX - 1) {                                                           \
            buf[n++] = (char)apr_tolower(c);                                                       \
        }                                                                                          \
    } while (0)
    if (!sep) {
        for (p = url; *p; p++) {
            PUT(*p);
        }
        buf[n] = '\0';
        return n;
    }
    auth = sep + 3;
    end = ad_url_path(url);
    for (at = auth, p = auth; p < end; p++) {
        if (*p == '@') {
            at = p + 1;
        }
    }
    host_end = end;
    for (p = end; p > at; p--) {
        if (p[-1] == ']') {
            break;
        }
        if (p[-1] == ':') {
            port = p;
            host_end = p - 1;
            break;
        }
    }
    if (host_end > at && host_end[-1] == '.') {
        host_end--;
    }
    for (p = url; p < auth; p++) {
        PUT(*p);
    }
    for (p = at; p < host_end; p++) {
        PUT(*p);
    }
    if (port && !origin_default_port(url, port_num = origin_port(port, end))) {
        PUT(':');
        if (port_num > 0) {
            apr_snprintf(digits, sizeof(digits), "%ld", port_num);
            port = digits;
            end = digits + strlen(digits);
        }
        for (p = port; p < end; p++) {
            PUT(*p);
        }
    }
#undef PUT
    buf[n] = '\0';
    return n;
}

static apr_status_t destroy_bounded_pool(void *data)
{
    apr_pool_destroy(data);
    return APR_SUCCESS;
}

apr_status_t ad_bounded_pool_create(apr_pool_t *owner, apr_size_t max_free, apr_pool_t **out)
{
    apr_allocator_t *a;
    apr_thread_mutex_t *mu;
    apr_pool_t *p;
    apr_status_t rv;

    if ((rv = apr_allocator_create(&a)) != APR_SUCCESS) {
        return rv;
    }
    apr_allocator_max_free_set(a, max_free);
    if ((rv = apr_pool_create_unmanaged_ex(&p, NULL, a)) != APR_SUCCESS) {
        apr_allocator_destroy(a);
        return rv;
    }
    apr_allocator_owner_set(a, p);
    apr_pool_cleanup_register(owner, p, destroy_bounded_pool, apr_pool_cleanup_null);
    if ((rv = apr_thread_mutex_create(&mu, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS) {
        return rv;
    }
    apr_allocator_mutex_set(a, mu);
    *out = p;
    return APR_SUCCESS;
}
