/* EventBridge event patterns.
 *
 * The pattern text is read by a small streaming tokenizer that mirrors the
 * Jackson parser AWS uses, and compiled by a port of aws/event-ruler's
 * JsonRuleCompiler, so that validation fails on the same input, in the same
 * order and with the same reason texts as TestEventPattern. The result is a
 * list of sub-rules (one per $or combination), each a name-sorted list of
 * fields with their matchers; matching walks the event once through a byte
 * trie of the field paths and then checks each sub-rule with event-ruler's
 * array-consistency rules (ACFinder). Matching allocates only scratch memory
 * (stack, or malloc for large events) and never touches the pattern's pool. */
#include "ad_pattern.h"
#include "ad_util.h"
#include "ad_casemap.h"
#include "ad_pattern_int.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <limits.h>
#include <stddef.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits AWS applies on top of event-ruler. */
#define AD_MAX_SUBRULES 1000 /* product of the $or branches */
/* Field entries the compiler may copy while it expands $or into sub-rules
 * (about 24 bytes each), plus this many per byte of the pattern (a pattern
 * file may hold 64 KB of fields for 1,000 sub-rules): 1,000 sub-rules of a
 * few hundred fields, copied for every branch of a later $or, took 2.9 GB
 * and 15 s from a 4 KB pattern. Past it the pattern is refused. */
#define AD_MAX_EXPANSION          (1L << 21)
#define AD_MAX_EXPANSION_PER_BYTE 128
#define MSG_TOO_BIG_OR                                                                             \
    "Event pattern is too large to expand: its $or combinations copy more than %ld fields"
#define AD_MAX_COMPLEXITY 10   /* per-rule wildcard complexity */
#define AD_MAX_NESTING    1000 /* Jackson StreamReadConstraints default */
#define AD_SNIPPET_MAX    500  /* Jackson ErrorReportConfiguration default */
#define AD_TOKEN_MAX      256  /* Jackson max error token length */

#define MSG_TOO_MANY_OR "Event pattern has more than 1000 combinations of $or"
#define MSG_TOO_COMPLEX                                                                            \
    "Rule is too complex - try using fewer wildcard "                                              \
    "characters or fewer repeating character sequences after a wildcard character"
#define MSG_ONE_KEY        "Only one key allowed in match expression"
#define MSG_TOO_MANY_ELEMS "Too many elements in numeric expression"
#define VALID_VALUES                                                                               \
    "(JSON String, Number, Array, Object or token 'null', "                                        \
    "'true' or 'false')"

/* ------------------------------------------------------------------ */
/* Compiled form                                                       */
/* ------------------------------------------------------------------ */

enum mkind {
    MK_EXACT,
    MK_TRUE,
    MK_FALSE,
    MK_NULL,
    MK_NUM_TEXT,
    MK_NUM_EQ,
    MK_RANGE,
    MK_IP,
    MK_PREFIX,
    MK_PREFIX_IC,
    MK_SUFFIX,
    MK_SUFFIX_IC,
    MK_EQ_IC,
    MK_WILDCARD,
    MK_EXISTS,
    MK_ABSENT,
    MK_AB_STR,
    MK_AB_NUM,
    MK_AB_PREFIX,
    MK_AB_SUFFIX,
    MK_AB_IC,
    MK_AB_WILDCARD
};

typedef struct {
    const char *s;
    size_t n;
} ad_str;

/* A wildcard pattern cut at its stars: seg[0] is anchored at the start,
 * seg[nseg-1] at the end, the others float in between. */
typedef struct {
    ad_str *seg;
    int nseg;
} ad_wild;

typedef struct {
    int kind;
    ad_str str;
    ad_str *set; /* anything-but string forms */
    int nset;
    ad_wild *wild; /* wildcard, anything-but wildcard */
    int nwild;
    uint64_t key;   /* numeric equality */
    uint64_t *keys; /* anything-but numbers */
    int nkeys;
    uint64_t lo, hi; /* numeric range */
    int lo_open, hi_open;
    unsigned char ip_lo[16], ip_hi[16];
    int ip_len;
} ad_matcher;

typedef struct {
    int path;
    const ad_matcher *m;
    int nm;
    int numeric; /* event-ruler's hasNumeric for this field */
    int absent;  /* has {"exists": false} */
    long cost;   /* work units a test of one value costs (hit_cost) */
    int scans;   /* a matcher reads the whole value (a wildcard) */
    int prints;  /* a matcher tests a decimal's text (an address range) */
} ad_field;

typedef struct {
    ad_field *f;
    int nf;
} ad_subrule;

typedef struct {
    int edge0, nedge; /* children in ad_pattern_t.edges */
    int path;         /* path index ending here, or -1 */
} ad_tnode;

typedef struct {
    unsigned char byte;
    int to;
} ad_tedge;

struct ad_pattern_t {
    ad_tnode *nodes;
    ad_tedge *edges;
    int nnodes;
    int npaths;
    ad_subrule *subs;
    int nsubs;
};

/* ------------------------------------------------------------------ */
/* Compile-time state                                                  */
/* ------------------------------------------------------------------ */

enum tok {
    T_NONE,
    T_EOF,
    T_START_OBJECT,
    T_END_OBJECT,
    T_START_ARRAY,
    T_END_ARRAY,
    T_FIELD_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_TRUE,
    T_FALSE,
    T_NULL
};

typedef struct {
    char kind;     /* 'o' or 'a' */
    int line, col; /* where it started, for EOF messages */
    int count;     /* entries started so far */
} lx_ctx;

typedef struct {
    const char *s;
    size_t n, pos;
    int line;
    size_t row; /* byte offset where the current line starts */
    lx_ctx *ctx;
    int depth, cap;
    int tok, next_tok;
    int str_pending; /* a string value not yet decoded */
    size_t str_start;
    char *buf;
    size_t blen, bcap;
    char *name;
    size_t name_len;
    size_t num_start, num_len;
} lexer;

/* One field of a rule while compiling: its dotted path and matchers. */
typedef struct {
    const char *name;
    const ad_matcher *m;
    int nm;
} rentry;

typedef struct {
    rentry *e;
    int n, cap;
} rmap;

typedef struct {
    rmap **r;
    int n, cap;
} rlist;

typedef struct {
    apr_pool_t *p, *tp;
    lexer lx;
    jmp_buf jb;
    const char *reason;
    rlist *rules;
    int too_many; /* past AD_MAX_SUBRULES, or (too_big) the expansion bound */
    int too_big;
    long expansion;    /* field entries copied so far */
    apr_hash_t *names; /* one copy of each field path (intern) */
    int rewrap;        /* inside a catch(IOException) of the compiler */
    const char **path;
    int npath, cappath;
} cc_t;

static void fail_plain(cc_t *c, const char *msg)
{
    c->reason = apr_pstrdup(c->p, msg);
    longjmp(c->jb, 1);
}

/* ------------------------------------------------------------------ */
/* UTF-8 helpers                                                       */
/* ------------------------------------------------------------------ */

/* Decode one code point; invalid bytes decode as themselves (one byte). */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *len)
{
    unsigned char c = s[0];
    uint32_t cp;
    size_t need, i;

    if (c < 0x80 || n < 2) {
        *len = 1;
        return c;
    }
    if ((c & 0xE0) == 0xC0) {
        need = 2;
        cp = c & 0x1F;
    }
    else if ((c & 0xF0) == 0xE0) {
        need = 3;
        cp = c & 0x0F;
    }
    else if ((c & 0xF8) == 0xF0) {
        need = 4;
        cp = c & 0x07;
    }
    else {
        *len = 1;
        return c;
    }
    if (need > n) {
        *len = 1;
        return c;
    }
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *len = 1;
            return c;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *len = need;
    return cp;
}

/* Jackson counts columns in UTF-16 code units. */
static size_t utf16_len(const char *s, size_t n)
{
    size_t i = 0, units = 0, l;
    uint32_t cp;

    while (i < n) {
        cp = utf8_next((const unsigned char *)s + i, n - i, &l);
        units += cp >= 0x10000 ? 2 : 1;
        i += l;
    }
    return units;
}

/* Byte length of the longest prefix of s holding at most max UTF-16 units. */
static size_t utf16_prefix(const char *s, size_t n, size_t max, size_t *units)
{
    size_t i = 0, u = 0, l, w;
    uint32_t cp;

    while (i < n) {
        cp = utf8_next((const unsigned char *)s + i, n - i, &l);
        w = cp >= 0x10000 ? 2 : 1;
        if (u + w > max) {
            break;
        }
        u += w;
        i += l;
    }
    *units = u;
    return i;
}

/* Java's String.compareTo: UTF-16 code unit order. */
static int java_strcmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i = 0, j = 0, l;
    uint32_t ca, cb;
    unsigned ua[2], ub[2];
    int na, nb, k;

    while (i < la && j < lb) {
        ca = utf8_next((const unsigned char *)a + i, la - i, &l);
        i += l;
        cb = utf8_next((const unsigned char *)b + j, lb - j, &l);
        j += l;
        if (ca == cb) {
            continue;
        }
        na = ca >= 0x10000 ? 2 : 1;
        nb = cb >= 0x10000 ? 2 : 1;
        ua[0] = na == 2 ? 0xD800 + ((ca - 0x10000) >> 10) : ca;
        ua[1] = na == 2 ? 0xDC00 + ((ca - 0x10000) & 0x3FF) : 0;
        ub[0] = nb == 2 ? 0xD800 + ((cb - 0x10000) >> 10) : cb;
        ub[1] = nb == 2 ? 0xDC00 + ((cb - 0x10000) & 0x3FF) : 0;
        for (k = 0; k < 2; k++) {
            if (ua[k] != ub[k]) {
                return ua[k] < ub[k] ? -1 : 1;
            }
        }
    }
    return (i < la) - (j < lb);
}

/* ------------------------------------------------------------------ */
/* Jackson-style locations and syntax errors                           */
/* ------------------------------------------------------------------ */

static void sb_add(char **buf, size_t *len, size_t *cap, apr_pool_t *p, const char *s, size_t n)
{
    char *nb;

    if (*len + n + 1 > *cap) {
        size_t nc = (*cap ? *cap * 2 : 64);
        while (nc < *len + n + 1) {
            nc *= 2;
        }
        nb = apr_palloc(p, nc);
        if (*len) {
            memcpy(nb, *buf, *len);
        }
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* "(String)"<source>"" with Jackson's escaping and truncation. */
static void source_desc(cc_t *c, char **o, size_t *ol, size_t *oc)
{
    const char *s = c->lx.s;
    size_t n = c->lx.n, units, total, cut, i, l;
    char tmp[32];
    uint32_t cp;

    sb_add(o, ol, oc, c->tp, "(String)\"", 9);
    cut = utf16_prefix(s, n, AD_SNIPPET_MAX, &units);
    for (i = 0; i < cut; i += l) {
        cp = utf8_next((const unsigned char *)s + i, cut - i, &l);
        if ((cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) && cp != '\r' && cp != '\n') {
            snprintf(tmp, sizeof(tmp), "\\u%04X", (unsigned)cp);
            sb_add(o, ol, oc, c->tp, tmp, strlen(tmp));
        }
        else {
            sb_add(o, ol, oc, c->tp, s + i, l);
        }
    }
    sb_add(o, ol, oc, c->tp, "\"", 1);
    if (cut < n) {
        total = utf16_len(s, n);
        snprintf(tmp, sizeof(tmp), "[truncated %lu chars]", (unsigned long)(total - units));
        sb_add(o, ol, oc, c->tp, tmp, strlen(tmp));
    }
}

/* "[Source: ...; line: L, column: C]" for a byte position on line/row. */
static void loc_desc(cc_t *c, int line, size_t row, size_t pos, char **o, size_t *ol, size_t *oc)
{
    char tmp[64];
    size_t col = utf16_len(c->lx.s + row, pos - row) + 1;

    sb_add(o, ol, oc, c->tp, "[Source: ", 9);
    source_desc(c, o, ol, oc);
    snprintf(tmp, sizeof(tmp), "; line: %d, column: %lu]", line, (unsigned long)col);
    sb_add(o, ol, oc, c->tp, tmp, strlen(tmp));
}

static void loc_desc_col(cc_t *c, int line, int col, char **o, size_t *ol, size_t *oc)
{
    char tmp[64];

    sb_add(o, ol, oc, c->tp, "[Source: ", 9);
    source_desc(c, o, ol, oc);
    snprintf(tmp, sizeof(tmp), "; line: %d, column: %d]", line, col);
    sb_add(o, ol, oc, c->tp, tmp, strlen(tmp));
}

/* A JsonParseException: the message, its location, and a second location
 * when event-ruler caught and re-threw it (anything-but lists). */
static void fail_syntax_at(cc_t *c, const char *msg, size_t pos)
{
    char *o = NULL;
    size_t ol = 0, oc = 0;

    sb_add(&o, &ol, &oc, c->tp, msg, strlen(msg));
    sb_add(&o, &ol, &oc, c->tp, "\n at ", 5);
    loc_desc(c, c->lx.line, c->lx.row, pos, &o, &ol, &oc);
    if (c->rewrap) {
        sb_add(&o, &ol, &oc, c->tp, "\n at ", 5);
        loc_desc(c, c->lx.line, c->lx.row, c->lx.pos, &o, &ol, &oc);
    }
    fail_plain(c, o);
}

static void fail_syntax(cc_t *c, const char *msg)
{
    fail_syntax_at(c, msg, c->lx.pos);
}

static int is_iso_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

static const char *char_desc(cc_t *c, uint32_t cp)
{
    char u[5];
    size_t l;

    if (is_iso_control(cp)) {
        return apr_psprintf(c->tp, "(CTRL-CHAR, code %u)", (unsigned)cp);
    }
    l = ad_utf8_put(u, cp);
    u[l] = '\0';
    if (cp > 255) {
        return apr_psprintf(c->tp, "'%s' (code %u / 0x%x)", u, (unsigned)cp, (unsigned)cp);
    }
    return apr_psprintf(c->tp, "'%s' (code %u)", u, (unsigned)cp);
}

/* Jackson reports an unexpected character at its own column. */
static void fail_unexpected(cc_t *c, size_t at, uint32_t cp, const char *comment)
{
    fail_syntax_at(
        c, apr_psprintf(c->tp, "Unexpected character (%s): %s", char_desc(c, cp), comment), at);
}

static void fail_unexpected_num(cc_t *c, size_t at, uint32_t cp, const char *comment)
{
    fail_syntax_at(c,
                   apr_psprintf(c->tp, "Unexpected character (%s) in numeric value: %s",
                                char_desc(c, cp), comment),
                   at);
}

static int java_ident_start(uint32_t cp)
{
    if (cp < 0x80) {
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_' || cp == '$';
    }
    return cp >= 0xA0 && cp != 0xD7 && cp != 0xF7;
}

static int java_ident_part(uint32_t cp)
{
    if (java_ident_start(cp) || (cp >= '0' && cp <= '9')) {
        return 1;
    }
    /* identifier-ignorable control characters */
    return (cp <= 8) || (cp >= 0x0E && cp <= 0x1B) || (cp >= 0x7F && cp <= 0x9F);
}

/* "Unrecognized token 'xyz'": Jackson extends the matched part with the
 * identifier characters that follow, then reports after them. */
static void fail_token(cc_t *c, const char *matched)
{
    lexer *x = &c->lx;
    char *o = NULL;
    size_t ol = 0, oc = 0, l, units = 0;
    uint32_t cp;

    sb_add(&o, &ol, &oc, c->tp, matched, strlen(matched));
    units = utf16_len(matched, strlen(matched));
    while (x->pos < x->n) {
        cp = utf8_next((const unsigned char *)x->s + x->pos, x->n - x->pos, &l);
        if (!java_ident_part(cp)) {
            break;
        }
        sb_add(&o, &ol, &oc, c->tp, x->s + x->pos, l);
        x->pos += l;
        units += cp >= 0x10000 ? 2 : 1;
        if (units >= AD_TOKEN_MAX) {
            sb_add(&o, &ol, &oc, c->tp, "...", 3);
            break;
        }
    }
    fail_syntax(c,
                apr_psprintf(c->tp, "Unrecognized token '%s': was expecting %s", o, VALID_VALUES));
}

/* ------------------------------------------------------------------ */
/* Tokenizer                                                           */
/* ------------------------------------------------------------------ */

static uint32_t lx_peek_cp(lexer *x, size_t *l)
{
    return utf8_next((const unsigned char *)x->s + x->pos, x->n - x->pos, l);
}

static void lx_newline(lexer *x)
{
    x->line++;
    x->row = x->pos;
}

/* Skip white space; returns the next character (consumed) or -1 at EOF. */
static int lx_skip_ws(cc_t *c)
{
    lexer *x = &c->lx;
    unsigned char ch;

    while (x->pos < x->n) {
        ch = (unsigned char)x->s[x->pos++];
        if (ch == ' ' || ch == '\t') {
            continue;
        }
        if (ch == '\n') {
            lx_newline(x);
            continue;
        }
        if (ch == '\r') {
            if (x->pos < x->n && x->s[x->pos] == '\n') {
                x->pos++;
            }
            lx_newline(x);
            continue;
        }
        if (ch < 0x20) {
            fail_syntax(c, apr_psprintf(c->tp,
                                        "Illegal character (%s): only "
                                        "regular white space (\\r, \\n, \\t) is allowed between "
                                        "tokens",
                                        char_desc(c, ch)));
        }
        if (ch == '/') {
            fail_unexpected(c, x->pos - 1, '/',
                            "maybe a (non-standard) "
                            "comment? (not recognized as one since Feature "
                            "'ALLOW_COMMENTS' not enabled for parser)");
        }
        return ch;
    }
    return -1;
}

/* The code point starting at byte pos-1 (the one lx_skip_ws returned). */
static uint32_t lx_cp_before(lexer *x)
{
    size_t l;

    return utf8_next((const unsigned char *)x->s + x->pos - 1, x->n - x->pos + 1, &l);
}

static const char *ctx_desc(char kind)
{
    return kind == 'o' ? "Object" : "Array";
}

static void lx_push(cc_t *c, char kind)
{
    lexer *x = &c->lx;
    lx_ctx *nc;

    if (x->depth + 1 > AD_MAX_NESTING) {
        fail_plain(c, apr_psprintf(c->tp,
                                   "Document nesting depth (%d) "
                                   "exceeds the maximum allowed (%d, from "
                                   "`StreamReadConstraints.getMaxNestingDepth()`)",
                                   x->depth + 1, AD_MAX_NESTING));
    }
    if (x->depth + 1 >= x->cap) {
        x->cap = x->cap ? x->cap * 2 : 16;
        nc = apr_palloc(c->tp, sizeof(*nc) * (size_t)x->cap);
        if (x->depth) {
            memcpy(nc, x->ctx, sizeof(*nc) * (size_t)(x->depth + 1));
        }
        x->ctx = nc;
    }
    x->depth++;
    x->ctx[x->depth].kind = kind;
    x->ctx[x->depth].line = x->line;
    x->ctx[x->depth].col = (int)utf16_len(x->s + x->row, x->pos - x->row);
    x->ctx[x->depth].count = 0;
}

static void lx_close(cc_t *c, int ch)
{
    lexer *x = &c->lx;
    char want = ch == ']' ? 'a' : 'o';
    char *o = NULL;
    size_t ol = 0, oc = 0;
    lx_ctx *top;

    if (x->depth == 0) {
        fail_syntax_at(c,
                       apr_psprintf(c->tp,
                                    "Unexpected close marker '%c': "
                                    "no open %s to close",
                                    ch, ctx_desc(want)),
                       x->pos - 1);
    }
    top = &x->ctx[x->depth];
    if (top->kind != want) {
        sb_add(&o, &ol, &oc, c->tp, "", 0);
        loc_desc_col(c, top->line, top->col, &o, &ol, &oc);
        fail_syntax_at(c,
                       apr_psprintf(c->tp,
                                    "Unexpected close marker '%c': "
                                    "expected '%c' (for %s starting at %s)",
                                    ch, top->kind == 'o' ? '}' : ']', ctx_desc(top->kind), o),
                       x->pos - 1);
    }
    x->depth--;
    x->tok = want == 'a' ? T_END_ARRAY : T_END_OBJECT;
}

static void lx_eof_in_context(cc_t *c)
{
    lexer *x = &c->lx;
    lx_ctx *top = &x->ctx[x->depth];
    char *o = NULL;
    size_t ol = 0, oc = 0;

    sb_add(&o, &ol, &oc, c->tp, "", 0);
    loc_desc_col(c, top->line, top->col, &o, &ol, &oc);
    fail_syntax(c, apr_psprintf(c->tp,
                                "Unexpected end-of-input: expected "
                                "close marker for %s (start marker at %s)",
                                ctx_desc(top->kind), o));
}

static void buf_reset(lexer *x)
{
    x->blen = 0;
}

static void buf_add(cc_t *c, const char *s, size_t n)
{
    sb_add(&c->lx.buf, &c->lx.blen, &c->lx.bcap, c->tp, s, n);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

static uint32_t lx_read_hex4(cc_t *c)
{
    lexer *x = &c->lx;
    uint32_t v = 0;
    int i, h;
    size_t l;
    uint32_t cp;

    for (i = 0; i < 4; i++) {
        if (x->pos >= x->n) {
            fail_syntax(c, "Unexpected end-of-input in character escape "
                           "sequence");
        }
        cp = lx_peek_cp(x, &l);
        x->pos += l;
        h = cp < 0x80 ? hexval((int)cp) : -1;
        if (h < 0) {
            fail_unexpected(c, x->pos - l, cp,
                            "expected a hex-digit for "
                            "character escape sequence");
        }
        v = (v << 4) | (uint32_t)h;
    }
    return v;
}

/* One backslash escape (the backslash is consumed); appends the result. */
static void lx_escape(cc_t *c)
{
    lexer *x = &c->lx;
    size_t l, save;
    uint32_t cp, lo;
    char u[4];
    const char *e = NULL;

    if (x->pos >= x->n) {
        fail_syntax(c, "Unexpected end-of-input in character escape sequence");
    }
    cp = lx_peek_cp(x, &l);
    x->pos += l;
    switch (cp) {
    case '"':
        e = "\"";
        break;
    case '\\':
        e = "\\";
        break;
    case '/':
        e = "/";
        break;
    case 'b':
        e = "\b";
        break;
    case 'f':
        e = "\f";
        break;
    case 'n':
        e = "\n";
        break;
    case 'r':
        e = "\r";
        break;
    case 't':
        e = "\t";
        break;
    case 'u':
        cp = lx_read_hex4(c);
        if (cp >= 0xD800 && cp <= 0xDBFF && x->pos + 6 <= x->n && x->s[x->pos] == '\\' &&
            x->s[x->pos + 1] == 'u') {
            save = x->pos;
            x->pos += 2;
            lo = lx_read_hex4(c);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            else {
                x->pos = save;
            }
        }
        buf_add(c, u, ad_utf8_put(u, cp));
        return;
    default:
        fail_syntax_at(c,
                       apr_psprintf(c->tp,
                                    "Unrecognized character escape "
                                    "%s",
                                    char_desc(c, cp)),
                       x->pos - l);
    }
    buf_add(c, e, 1);
}

/* Decode a string body (opening quote consumed) into the lexer buffer. */
static void lx_string(cc_t *c, int is_name)
{
    lexer *x = &c->lx;
    unsigned char ch;
    size_t run;

    buf_reset(x);
    buf_add(c, "", 0);
    for (;;) {
        run = x->pos;
        while (x->pos < x->n) {
            ch = (unsigned char)x->s[x->pos];
            if (ch == '"' || ch == '\\' || ch < 0x20) {
                break;
            }
            x->pos++;
        }
        buf_add(c, x->s + run, x->pos - run);
        if (x->pos >= x->n) {
            fail_syntax(c, is_name ? "Unexpected end-of-input in field name"
                                   : "Unexpected end-of-input: was expecting closing "
                                     "quote for a string value");
        }
        ch = (unsigned char)x->s[x->pos++];
        if (ch == '"') {
            return;
        }
        if (ch == '\\') {
            lx_escape(c);
            continue;
        }
        fail_syntax_at(c,
                       apr_psprintf(c->tp,
                                    "Illegal unquoted character "
                                    "(%s): has to be escaped using backslash to be "
                                    "included in %s",
                                    char_desc(c, ch), is_name ? "name" : "string value"),
                       x->pos - 1);
    }
}

static void lx_finish_string(cc_t *c)
{
    lexer *x = &c->lx;

    if (x->str_pending) {
        x->str_pending = 0;
        x->pos = x->str_start;
        lx_string(c, 0);
    }
}

static void lx_match_literal(cc_t *c, const char *word)
{
    lexer *x = &c->lx;
    size_t i, len = strlen(word), l;
    uint32_t cp;

    for (i = 1; i < len; i++) {
        if (x->pos >= x->n || x->s[x->pos] != word[i]) {
            fail_token(c, apr_pstrndup(c->tp, word, i));
        }
        x->pos++;
    }
    if (x->pos < x->n) {
        cp = lx_peek_cp(x, &l);
        if (cp >= '0' && cp != ']' && cp != '}' && java_ident_part(cp)) {
            fail_token(c, word);
        }
    }
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int lx_at(lexer *x)
{
    return x->pos < x->n ? (unsigned char)x->s[x->pos] : -1;
}

/* Read the rest of a number whose first character is at pos-1. */
static int lx_number(cc_t *c, int first)
{
    lexer *x = &c->lx;
    int ch, is_float = 0;
    size_t l;

    x->num_start = x->pos - 1;
    if (first == '-') {
        ch = lx_at(x);
        if (ch < 0) {
            fail_syntax(c, "Unexpected end-of-input in a Number value");
        }
        if (ch == '.') {
            x->pos++;
            fail_unexpected(c, x->pos - 1, '.', "expected a valid value " VALID_VALUES);
        }
        if (!is_digit(ch)) {
            fail_unexpected_num(c, x->pos, lx_peek_cp(x, &l),
                                "expected digit "
                                "(0-9) to follow minus sign, for valid numeric "
                                "value");
        }
        first = ch;
        x->pos++;
    }
    if (first == '0' && is_digit(lx_at(x))) {
        fail_syntax(c, "Invalid numeric value: Leading zeroes not allowed");
    }
    while (is_digit(lx_at(x))) {
        x->pos++;
    }
    if (lx_at(x) == '.') {
        is_float = 1;
        x->pos++;
        ch = lx_at(x);
        if (ch < 0) {
            fail_unexpected_num(c, x->pos - 1, '.',
                                "Decimal point not "
                                "followed by a digit");
        }
        if (!is_digit(ch)) {
            fail_unexpected_num(c, x->pos, lx_peek_cp(x, &l),
                                "Decimal point "
                                "not followed by a digit");
        }
        while (is_digit(lx_at(x))) {
            x->pos++;
        }
    }
    if (lx_at(x) == 'e' || lx_at(x) == 'E') {
        is_float = 1;
        x->pos++;
        if (lx_at(x) == '+' || lx_at(x) == '-') {
            x->pos++;
        }
        ch = lx_at(x);
        if (ch < 0) {
            /* sic: Jackson's getNextChar() message has no separator */
            fail_syntax(c, "Unexpected end-of-inputexpected a digit for "
                           "number exponent");
        }
        if (!is_digit(ch)) {
            fail_unexpected_num(c, x->pos, lx_peek_cp(x, &l),
                                "Exponent "
                                "indicator not followed by a digit");
        }
        while (is_digit(lx_at(x))) {
            x->pos++;
        }
    }
    x->num_len = x->pos - x->num_start;
    ch = lx_at(x);
    if (x->depth == 0 && ch >= 0 && ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
        fail_unexpected(c, x->pos, lx_peek_cp(x, &l),
                        "Expected space "
                        "separating root-level values");
    }
    return is_float ? T_FLOAT : T_INT;
}

/* A character that cannot start a value (Jackson's _handleOddValue). */
static void lx_odd_value(cc_t *c, int ch)
{
    lexer *x = &c->lx;
    uint32_t cp = lx_cp_before(x);
    size_t l, at = x->pos - 1;

    utf8_next((const unsigned char *)x->s + at, x->n - at, &l);
    x->pos = at + l;
    if (ch == 'N' || ch == 'I') {
        const char *word = ch == 'N' ? "NaN" : "Infinity";
        lx_match_literal(c, word);
        fail_syntax(c, apr_psprintf(c->tp,
                                    "Non-standard token '%s': enable "
                                    "`JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow",
                                    word));
    }
    if (ch == '+') {
        if (x->pos >= x->n) {
            fail_syntax(c, "Unexpected end-of-input in a Number value");
        }
        fail_unexpected_num(c, at, '+',
                            "JSON spec does not allow numbers to "
                            "have plus signs: enable `JsonReadFeature."
                            "ALLOW_LEADING_PLUS_SIGN_FOR_NUMBERS` to allow");
    }
    if (java_ident_start(cp)) {
        char u[5];
        u[ad_utf8_put(u, cp)] = '\0';
        fail_token(c, u);
    }
    fail_unexpected(c, at, cp, "expected a valid value " VALID_VALUES);
}

/* Scan the value starting with ch (already consumed). */
static int lx_value(cc_t *c, int ch)
{
    lexer *x = &c->lx;

    switch (ch) {
    case '"':
        x->str_pending = 1;
        x->str_start = x->pos;
        return T_STRING;
    case '[':
        lx_push(c, 'a');
        return T_START_ARRAY;
    case '{':
        lx_push(c, 'o');
        return T_START_OBJECT;
    case '}':
        fail_unexpected(c, x->pos - 1, '}', "expected a value");
        break;
    case 't':
        lx_match_literal(c, "true");
        return T_TRUE;
    case 'f':
        lx_match_literal(c, "false");
        return T_FALSE;
    case 'n':
        lx_match_literal(c, "null");
        return T_NULL;
    case '-':
        return lx_number(c, ch);
    default:
        if (is_digit(ch)) {
            return lx_number(c, ch);
        }
        break;
    }
    lx_odd_value(c, ch);
    return T_NONE;
}

static int lx_skip_colon(cc_t *c)
{
    lexer *x = &c->lx;
    int ch = lx_skip_ws(c);

    if (ch < 0) {
        fail_syntax(c, "Unexpected end-of-input within/between Object entries");
    }
    if (ch != ':') {
        fail_unexpected(c, x->pos - 1, lx_cp_before(x),
                        "was expecting a "
                        "colon to separate field name and value");
    }
    ch = lx_skip_ws(c);
    if (ch < 0) {
        fail_syntax(c, "Unexpected end-of-input within/between Object entries");
    }
    return ch;
}

/* Jackson's nextToken(), as far as a single root object needs it. */
static int lx_next(cc_t *c)
{
    lexer *x = &c->lx;
    lx_ctx *top;
    int ch;

    if (x->tok == T_FIELD_NAME) {
        x->tok = x->next_tok;
        return x->tok;
    }
    lx_finish_string(c);
    ch = lx_skip_ws(c);
    if (ch < 0) {
        if (x->depth > 0) {
            lx_eof_in_context(c);
        }
        x->tok = T_EOF;
        return x->tok;
    }
    if (ch == '}' || ch == ']') {
        lx_close(c, ch);
        return x->tok;
    }
    top = x->depth > 0 ? &x->ctx[x->depth] : NULL;
    if (top && top->count++ > 0) {
        if (ch != ',') {
            fail_unexpected(c, x->pos - 1, lx_cp_before(x),
                            apr_psprintf(c->tp, "was expecting comma to separate %s entries",
                                         ctx_desc(top->kind)));
        }
        ch = lx_skip_ws(c);
        if (ch < 0) {
            fail_syntax(c, apr_psprintf(c->tp,
                                        "Unexpected end-of-input "
                                        "within/between %s entries",
                                        ctx_desc(top->kind)));
        }
    }
    if (top && top->kind == 'o') {
        if (ch != '"') {
            fail_unexpected(c, x->pos - 1, lx_cp_before(x),
                            "was expecting "
                            "double-quote to start field name");
        }
        lx_string(c, 1);
        x->name = apr_pstrmemdup(c->tp, x->buf, x->blen);
        x->name_len = x->blen;
        ch = lx_skip_colon(c);
        x->next_tok = lx_value(c, ch);
        x->tok = T_FIELD_NAME;
        return x->tok;
    }
    if (top && ch == ']') {
        lx_odd_value(c, ch);
    }
    x->tok = lx_value(c, ch);
    return x->tok;
}

/* The text of the current token, as JsonParser.getText() gives it. */
static const char *lx_text(cc_t *c, size_t *len)
{
    lexer *x = &c->lx;
    const char *t;

    switch (x->tok) {
    case T_FIELD_NAME:
        *len = x->name_len;
        return x->name;
    case T_STRING:
        lx_finish_string(c);
        *len = x->blen;
        return x->buf;
    case T_INT:
    case T_FLOAT:
        *len = x->num_len;
        return x->s + x->num_start;
    case T_TRUE:
        t = "true";
        break;
    case T_FALSE:
        t = "false";
        break;
    case T_NULL:
        t = "null";
        break;
    case T_START_ARRAY:
        t = "[";
        break;
    case T_END_ARRAY:
        t = "]";
        break;
    case T_START_OBJECT:
        t = "{";
        break;
    case T_END_OBJECT:
        t = "}";
        break;
    default:
        t = "null";
        break;
    }
    *len = strlen(t);
    return t;
}

/* A token's text as a C string: field names and operators. "\u0000" in
 * one would cut it short ("exactly\u0000zz" read as "exactly", two names
 * equal up to it taken for one), and no event can have such a key (its
 * JSON is refused), so the pattern is refused. Our text; AWS's is not
 * recorded. */
static const char *lx_text_z(cc_t *c)
{
    size_t n;
    const char *t = lx_text(c, &n);

    if (memchr(t, '\0', n)) {
        fail_plain(c, "Field names and operators must not contain \\u0000");
    }
    return apr_pstrmemdup(c->tp, t, n);
}

static int tok_numeric(int t)
{
    return t == T_INT || t == T_FLOAT;
}

/* ------------------------------------------------------------------ */
/* Numbers: event-ruler's ComparableNumber                             */
/* ------------------------------------------------------------------ */

/* A decimal reduced to sign, significant digits and exponent, so that two
 * spellings of one value compare equal (BigDecimal.compareTo). */
typedef struct {
    int neg;
    char dig[800];
    size_t nd;
    long exp; /* value = 0.dig * 10^exp */
    int overflow;
} decimal;

static void decimal_parse(const char *s, size_t n, decimal *d)
{
    size_t i = 0;
    long lead = 0, point = -1, e = 0;
    int eneg = 0, seen = 0;

    d->neg = 0;
    d->overflow = 0;
    d->nd = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        d->neg = s[i] == '-';
        i++;
    }
    for (; i < n && (is_digit(s[i]) || s[i] == '.'); i++) {
        if (s[i] == '.') {
            point = seen;
            continue;
        }
        if (!d->nd && s[i] == '0') {
            lead++;
            seen++;
            continue;
        }
        if (d->nd < sizeof(d->dig)) {
            d->dig[d->nd++] = s[i];
        }
        else {
            d->overflow = 1;
        }
        seen++;
    }
    if (point < 0) {
        point = seen;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+')) {
            eneg = s[i] == '-';
            i++;
        }
        for (; i < n && is_digit(s[i]); i++) {
            if (e < 100000000L) {
                e = e * 10 + (s[i] - '0');
            }
        }
    }
    while (d->nd && d->dig[d->nd - 1] == '0') {
        d->nd--;
    }
    d->exp = point - lead + (eneg ? -e : e);
}

static int decimal_equal(const decimal *a, const decimal *b)
{
    if (!a->nd || !b->nd) {
        return !a->nd && !b->nd;
    }
    return !a->overflow && !b->overflow && a->neg == b->neg && a->nd == b->nd && a->exp == b->exp &&
           memcmp(a->dig, b->dig, a->nd) == 0;
}

/* Shortest round-trip decimal of d (what Double.toString prints). */
static void double_shortest(double d, char *out, size_t n)
{
    int prec;

    /* Double.toString always prints two digits at least (4.9E-324) */
    for (prec = 1; prec < 17; prec++) {
        snprintf(out, n, "%.*e", prec, d);
        if (strtod(out, NULL) == d) {
            return;
        }
    }
    snprintf(out, n, "%.17e", d);
}

/* The sortable key event-ruler derives from a double's bits. -0.0 is 0:
 * event-ruler goes through BigDecimal, which has no negative zero. */
static uint64_t double_key(double d)
{
    uint64_t bits, mask;

    if (d == 0) {
        d = 0.0;
    }
    memcpy(&bits, &d, sizeof(bits));
    mask = (bits >> 63) ? ~(uint64_t)0 : ((uint64_t)1 << 63);
    return bits ^ mask;
}

/* 1 when the decimal text is exactly a double (ComparableNumber.generate
 * succeeds); *key gets its sortable form. */
static int number_key(const char *s, size_t n, uint64_t *key)
{
    char tmp[64], *z;
    double d;
    decimal *a, *b;
    int ok;

    z = malloc(n + 1);
    if (!z) {
        return 0;
    }
    memcpy(z, s, n);
    z[n] = '\0';
    d = strtod(z, NULL);
    free(z);
    if (!isfinite(d)) {
        return 0;
    }
    double_shortest(d, tmp, sizeof(tmp));
    a = malloc(sizeof(*a) * 2);
    if (!a) {
        return 0;
    }
    b = a + 1;
    decimal_parse(s, n, a);
    decimal_parse(tmp, strlen(tmp), b);
    ok = decimal_equal(a, b);
    free(a);
    if (ok) {
        *key = double_key(d);
    }
    return ok;
}

/* ------------------------------------------------------------------ */
/* IP addresses: event-ruler's CIDR (Java InetAddress literal rules)   */
/* ------------------------------------------------------------------ */

static int looks_ipv4(const char *s, size_t n)
{
    size_t i = 0;
    int part, digits;

    for (part = 0; part < 4; part++) {
        digits = 0;
        while (i < n && is_digit(s[i])) {
            i++;
            digits++;
        }
        if (!digits || (part < 3 && (i >= n || s[i++] != '.'))) {
            return 0;
        }
    }
    return i == n;
}

static int looks_ipv6(const char *s, size_t n)
{
    size_t i;
    int colon = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == ':') {
            colon = 1;
        }
        else if (hexval((unsigned char)s[i]) < 0) {
            return 0;
        }
    }
    return colon;
}

static int parse_ipv4(const char *s, size_t n, unsigned char *out)
{
    size_t i = 0;
    int part;
    unsigned v;

    if (n > 15) {
        return 0;
    }
    for (part = 0; part < 4; part++) {
        v = 0;
        while (i < n && is_digit(s[i])) {
            v = v * 10 + (unsigned)(s[i++] - '0');
            if (v > 255) {
                return 0;
            }
        }
        out[part] = (unsigned char)v;
        i++;
    }
    return 1;
}

static int parse_ipv6(const char *s, size_t n, unsigned char *out)
{
    unsigned short g[8];
    int ng = 0, gap = -1, k;
    size_t i = 0;
    unsigned v;
    int digits;

    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;
    }
    else if (n && s[0] == ':') {
        return 0;
    }
    while (i < n) {
        v = 0;
        digits = 0;
        while (i < n && s[i] != ':') {
            v = (v << 4) | (unsigned)hexval((unsigned char)s[i++]);
            digits++;
            if (v > 0xFFFF) {
                return 0;
            }
        }
        if (!digits || ng >= 8) {
            return 0;
        }
        g[ng++] = (unsigned short)v;
        if (i < n) {
            i++;
            if (i < n && s[i] == ':') {
                if (gap >= 0) {
                    return 0;
                }
                gap = ng;
                i++;
            }
            else if (i == n) {
                return 0;
            }
        }
    }
    if ((gap < 0 && ng != 8) || (gap >= 0 && ng > 7)) {
        return 0;
    }
    memset(out, 0, 16);
    for (k = 0; k < ng; k++) {
        int slot = (gap >= 0 && k >= gap) ? 8 - (ng - k) : k;
        out[slot * 2] = (unsigned char)(g[k] >> 8);
        out[slot * 2 + 1] = (unsigned char)(g[k] & 0xFF);
    }
    return 1;
}

/* 4 or 16 bytes on success; 0 when it does not look like an address
 * ("Nonstandard"), -1 when it looks like one but is not ("Invalid"). */
static int ip_parse(const char *s, size_t n, unsigned char *out)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

    if (looks_ipv4(s, n)) {
        return parse_ipv4(s, n, out) ? 4 : -1;
    }
    if (!looks_ipv6(s, n)) {
        return 0;
    }
    if (!parse_ipv6(s, n, out)) {
        return -1;
    }
    /* Java turns IPv4-mapped IPv6 addresses into IPv4 ones. */
    if (memcmp(out, mapped, 12) == 0) {
        memmove(out, out + 12, 4);
        return 4;
    }
    return 16;
}

static const unsigned char *ip_bytes_or_fail(cc_t *c, const char *s, size_t n, unsigned char *out,
                                             int *len)
{
    const char *z = apr_pstrmemdup(c->tp, s, n);

    *len = ip_parse(s, n, out);
    if (*len == 0) {
        fail_plain(c, apr_pstrcat(c->tp, "Nonstandard IP address: ", z, NULL));
    }
    if (*len < 0) {
        fail_plain(c, apr_pstrcat(c->tp, "Invalid IP address: ", z, NULL));
    }
    return out;
}

/* Integer.parseInt: optional sign, decimal digits, int range. */
static int java_parse_int(const char *s, size_t n, long *out)
{
    size_t i = 0;
    long v = 0;
    int neg = 0;

    if (n && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i >= n) {
        return 0;
    }
    for (; i < n; i++) {
        if (!is_digit(s[i])) {
            return 0;
        }
        v = v * 10 + (s[i] - '0');
        if (v > 2147483648L) {
            return 0;
        }
    }
    if (!neg && v > 2147483647L) {
        return 0;
    }
    *out = neg ? -v : v;
    return 1;
}

static void cidr_compile(cc_t *c, const char *s, size_t n, ad_matcher *m)
{
    const char *slash = memchr(s, '/', n), *mask;
    size_t ipn, maskn, end = n;
    long bits;
    int len, i, var;

    /* String.split("/") drops trailing empty parts */
    while (end && s[end - 1] == '/') {
        end--;
    }
    if (!slash || slash >= s + end || memchr(slash + 1, '/', end - (size_t)(slash + 1 - s))) {
        fail_plain(c, "Malformed CIDR, one '/' required");
    }
    ipn = (size_t)(slash - s);
    mask = slash + 1;
    maskn = end - ipn - 1;
    if (!java_parse_int(mask, maskn, &bits)) {
        fail_plain(c, "Malformed CIDR, mask bits must be an integer");
    }
    if (bits < 0) {
        fail_plain(c, "Malformed CIDR, mask bits must not be negative");
    }
    ip_bytes_or_fail(c, s, ipn, m->ip_lo, &len);
    if (len == 4 && bits > 31) {
        fail_plain(c, "IPv4 mask bits must be < 32");
    }
    if (len == 16 && bits > 127) {
        fail_plain(c, "IPv6 mask bits must be < 128");
    }
    memcpy(m->ip_hi, m->ip_lo, 16);
    var = len * 8 - (int)bits;
    for (i = len - 1; i >= 0 && var > 0; i--, var -= 8) {
        unsigned char low = var >= 8 ? 0xFF : (unsigned char)((1u << var) - 1);
        m->ip_lo[i] &= (unsigned char)~low;
        m->ip_hi[i] |= low;
    }
    m->ip_len = len;
    m->kind = MK_IP;
}

/* ------------------------------------------------------------------ */
/* Case folding, as event-ruler's EqualsIgnoreCaseParser                */
/* ------------------------------------------------------------------ */

/* The two forms the value may have where the pattern has the character of
 * p[0..*plen): its lower and upper case (ad_casemap.h), or itself. */
typedef struct case_forms_t {
    const char *lo, *up;
    size_t lo_len, up_len;
    char ascii[2];
} case_forms_t;

static int casemap_cmp(const void *key, const void *elt)
{
    unsigned int cp = *(const unsigned int *)key, e = ((const ad_casemap_t *)elt)->cp;

    return cp < e ? -1 : cp > e;
}

static void case_forms(const char *p, size_t pn, size_t *plen, case_forms_t *f)
{
    unsigned char c = (unsigned char)*p;
    const ad_casemap_t *m = NULL;
    unsigned int cp;

    if (c < 0x80) {
        *plen = 1;
        f->ascii[0] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        f->ascii[1] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
        f->lo = f->ascii;
        f->up = f->ascii + 1;
        f->lo_len = f->up_len = 1;
        return;
    }
    cp = (unsigned int)utf8_next((const unsigned char *)p, pn, plen);
    if (cp <= 0xFFFF) {
        m = bsearch(&cp, ad_casemap, (size_t)ad_casemap_n, sizeof(*m), casemap_cmp);
    }
    if (m) {
        f->lo = m->lo;
        f->lo_len = m->lo_len;
        f->up = m->up;
        f->up_len = m->up_len;
        return;
    }
    f->lo = f->up = p;
    f->lo_len = f->up_len = *plen;
}

static int starts_with(const char *v, size_t vn, const char *w, size_t wn)
{
    return vn >= wn && !memcmp(v, w, wn);
}

static int ends_with(const char *v, size_t vn, const char *w, size_t wn)
{
    return vn >= wn && !memcmp(v + vn - wn, w, wn);
}

/* Match pattern p against the start of v, character by character of p;
 * returns the number of bytes of v consumed when all of p matched, or -1. */
static long ic_forward(const char *p, size_t pn, const char *v, size_t vn)
{
    size_t i = 0, j = 0, lp;
    case_forms_t f;

    while (i < pn) {
        case_forms(p + i, pn - i, &lp, &f);
        if (starts_with(v + j, vn - j, f.lo, f.lo_len)) {
            j += f.lo_len;
        }
        else if (starts_with(v + j, vn - j, f.up, f.up_len)) {
            j += f.up_len;
        }
        else {
            return -1;
        }
        i += lp;
    }
    return (long)j;
}

static size_t utf8_back(const char *s, size_t end)
{
    size_t i = end - 1;

    while (i > 0 && end - i < 4 && ((unsigned char)s[i] & 0xC0) == 0x80) {
        i--;
    }
    return i;
}

static int ic_suffix(const char *p, size_t pn, const char *v, size_t vn)
{
    size_t i = pn, j = vn, ip, lp;
    case_forms_t f;

    while (i > 0) {
        ip = utf8_back(p, i);
        case_forms(p + ip, i - ip, &lp, &f);
        if (ends_with(v, j, f.lo, f.lo_len)) {
            j -= f.lo_len;
        }
        else if (ends_with(v, j, f.up, f.up_len)) {
            j -= f.up_len;
        }
        else {
            return 0;
        }
        i = ip;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Wildcards                                                           */
/* ------------------------------------------------------------------ */

/* Validate and cut a wildcard value. Positions in messages count bytes of
 * the quoted form event-ruler parses ('"' + value + '"'). */
static const char *wild_compile(apr_pool_t *p, const char *s, size_t n, ad_wild *w)
{
    size_t i, start;
    int nseg = 1;
    char *lit = apr_palloc(p, n + 1);
    size_t litn = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '*') {
            if (i + 1 < n && s[i + 1] == '*') {
                return apr_psprintf(p,
                                    "Consecutive wildcard characters at "
                                    "pos %lu",
                                    (unsigned long)(i + 1));
            }
            nseg++;
        }
        else if (s[i] == '\\') {
            if (i + 1 < n && (s[i + 1] == '*' || s[i + 1] == '\\')) {
                i++;
                continue;
            }
            return apr_psprintf(p, "Invalid escape character at pos %lu", (unsigned long)(i + 1));
        }
    }
    w->seg = apr_pcalloc(p, sizeof(ad_str) * (size_t)nseg);
    w->nseg = 0;
    start = 0;
    for (i = 0; i <= n; i++) {
        if (i == n || s[i] == '*') {
            w->seg[w->nseg].s = lit + start;
            w->seg[w->nseg].n = litn - start;
            w->nseg++;
            start = litn;
            continue;
        }
        if (s[i] == '\\') {
            i++;
        }
        lit[litn++] = s[i];
    }
    return NULL;
}

static const char *mem_find(const char *h, size_t hn, const char *nd, size_t nn)
{
    size_t i;

    if (!nn) {
        return h;
    }
    for (i = 0; i + nn <= hn; i++) {
        if (h[i] == nd[0] && memcmp(h + i, nd, nn) == 0) {
            return h + i;
        }
    }
    return NULL;
}

static int wild_match(const ad_wild *w, const char *v, size_t n)
{
    const ad_str *first = &w->seg[0], *last = &w->seg[w->nseg - 1];
    size_t pos, end;
    int k;
    const char *hit;

    if (w->nseg == 1) {
        return n == first->n && memcmp(v, first->s, n) == 0;
    }
    if (first->n + last->n > n || memcmp(v, first->s, first->n) != 0 ||
        memcmp(v + n - last->n, last->s, last->n) != 0) {
        return 0;
    }
    pos = first->n;
    end = n - last->n;
    for (k = 1; k < w->nseg - 1; k++) {
        hit = mem_find(v + pos, end - pos, w->seg[k].s, w->seg[k].n);
        if (!hit) {
            return 0;
        }
        pos = (size_t)(hit - v) + w->seg[k].n;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Compiler: a port of event-ruler's JsonRuleCompiler                  */
/* ------------------------------------------------------------------ */

typedef struct {
    ad_matcher *m;
    int n, cap;
} mvec;

static ad_matcher *mvec_push(cc_t *c, mvec *v, int kind)
{
    ad_matcher *nm;

    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 4;
        nm = apr_pcalloc(c->tp, sizeof(*nm) * (size_t)v->cap);
        if (v->n) {
            memcpy(nm, v->m, sizeof(*nm) * (size_t)v->n);
        }
        v->m = nm;
    }
    nm = &v->m[v->n++];
    memset(nm, 0, sizeof(*nm));
    nm->kind = kind;
    return nm;
}

static ad_str pstr(cc_t *c, const char *s, size_t n)
{
    ad_str r;

    r.s = apr_pstrmemdup(c->p, s, n);
    r.n = n;
    return r;
}

static long expansion_bound(const cc_t *c)
{
    return AD_MAX_EXPANSION + AD_MAX_EXPANSION_PER_BYTE * (long)c->lx.n;
}

/* Count n more field entries of $or expansion; past the bound the pattern
 * is refused, so from then on the rules are only parsed, not built. */
static void expand(cc_t *c, long n)
{
    c->expansion += n;
    if (c->expansion > expansion_bound(c)) {
        c->too_many = c->too_big = 1;
    }
}

static rmap *rmap_copy(cc_t *c, const rmap *src)
{
    rmap *m = apr_pcalloc(c->tp, sizeof(*m));

    expand(c, 1 + (src ? src->n : 0));
    if (src && src->n) {
        m->cap = src->n;
        m->n = src->n;
        m->e = apr_pmemdup(c->tp, src->e, sizeof(rentry) * (size_t)src->n);
    }
    return m;
}

/* The one copy of a field path: rmap_put then compares names by pointer.
 * Each of up to 1,000 sub-rules is searched for every name written to it,
 * and comparing strings made a 4 KB pattern of 400 fields take 0.4 s. */
static const char *intern(cc_t *c, const char *name)
{
    const char *known;

    if (!c->names) {
        c->names = apr_hash_make(c->tp);
    }
    if ((known = apr_hash_get(c->names, name, APR_HASH_KEY_STRING)) != NULL) {
        return known;
    }
    apr_hash_set(c->names, name, APR_HASH_KEY_STRING, name);
    return name;
}

/* Map.put: a later value for the same path replaces the earlier one. name
 * is interned. */
static void rmap_put(cc_t *c, rmap *m, const char *name, const ad_matcher *ms, int nm)
{
    int i;
    rentry *ne;

    for (i = 0; i < m->n; i++) {
        if (m->e[i].name == name) {
            m->e[i].m = ms;
            m->e[i].nm = nm;
            return;
        }
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        ne = apr_palloc(c->tp, sizeof(*ne) * (size_t)m->cap);
        if (m->n) {
            memcpy(ne, m->e, sizeof(*ne) * (size_t)m->n);
        }
        m->e = ne;
    }
    m->e[m->n].name = name;
    m->e[m->n].m = ms;
    m->e[m->n].nm = nm;
    m->n++;
}

static void rlist_add(cc_t *c, rlist *l, rmap *m)
{
    rmap **nr;

    if (l->n >= AD_MAX_SUBRULES) {
        /* keep parsing for earlier-reported errors; the count is enough */
        c->too_many = 1;
        return;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        nr = apr_palloc(c->tp, sizeof(*nr) * (size_t)l->cap);
        if (l->n) {
            memcpy(nr, l->r, sizeof(*nr) * (size_t)l->n);
        }
        l->r = nr;
    }
    l->r[l->n++] = m;
}

/* Once the pattern is refused (too_many), one sub-rule is enough to go on
 * parsing for the errors AWS reports first. */
static rlist *rlist_copy(cc_t *c, const rlist *src)
{
    rlist *l = apr_pcalloc(c->tp, sizeof(*l));
    int i;

    for (i = 0; i < src->n && !(c->too_many && i > 0); i++) {
        rlist_add(c, l, rmap_copy(c, src->r[i]));
    }
    return l;
}

static void path_push(cc_t *c, const char *step)
{
    const char **np;

    if (c->npath == c->cappath) {
        c->cappath = c->cappath ? c->cappath * 2 : 8;
        np = apr_palloc(c->tp, sizeof(*np) * (size_t)c->cappath);
        if (c->npath) {
            memcpy(np, c->path, sizeof(*np) * (size_t)c->npath);
        }
        c->path = np;
    }
    c->path[c->npath++] = step;
}

static const char *path_extended(cc_t *c, const char *step)
{
    char *o = NULL;
    size_t ol = 0, oc = 0;
    int i;

    for (i = 0; i < c->npath; i++) {
        sb_add(&o, &ol, &oc, c->tp, c->path[i], strlen(c->path[i]));
        sb_add(&o, &ol, &oc, c->tp, ".", 1);
    }
    sb_add(&o, &ol, &oc, c->tp, step, strlen(step));
    return o;
}

static void expect_end_object(cc_t *c, const char *msg)
{
    if (lx_next(c) != T_END_OBJECT) {
        fail_plain(c, msg);
    }
}

static void wildcard_or_fail(cc_t *c, const char *s, size_t n, ad_wild *w)
{
    const char *err = wild_compile(c->p, s, n, w);

    if (err) {
        fail_plain(c, err);
    }
}

/* {"prefix"|"suffix": {"equals-ignore-case": "..."}} */
static void compile_affix_ic(cc_t *c, mvec *v, int prefix)
{
    const char *t;
    size_t n;
    ad_matcher *m;

    if (lx_next(c) != T_FIELD_NAME) {
        fail_plain(c, prefix ? "Prefix expression name not found"
                             : "Suffix expression name not found");
    }
    t = lx_text_z(c);
    if (strcmp(t, "equals-ignore-case") != 0) {
        fail_plain(
            c, apr_pstrcat(c->tp,
                           prefix ? "Unsupported prefix pattern: " : "Unsupported suffix pattern: ",
                           t, NULL));
    }
    if (lx_next(c) != T_STRING) {
        fail_plain(c, "equals-ignore-case match pattern must be a string");
    }
    t = lx_text(c, &n);
    m = mvec_push(c, v, prefix ? MK_PREFIX_IC : MK_SUFFIX_IC);
    m->str = pstr(c, t, n);
    expect_end_object(c, MSG_ONE_KEY);
    expect_end_object(c, MSG_ONE_KEY);
}

static void compile_affix(cc_t *c, mvec *v, int prefix)
{
    int t = lx_next(c);
    const char *s;
    size_t n;
    ad_matcher *m;

    if (t == T_START_OBJECT) {
        compile_affix_ic(c, v, prefix);
        return;
    }
    if (t != T_STRING) {
        fail_plain(c, prefix ? "prefix match pattern must be a string"
                             : "suffix match pattern must be a string");
    }
    s = lx_text(c, &n);
    m = mvec_push(c, v, prefix ? MK_PREFIX : MK_SUFFIX);
    m->str = pstr(c, s, n);
    expect_end_object(c, MSG_ONE_KEY);
}

/* A number's key; failures are IllegalArgumentExceptions the compiler turns
 * into reasons. event-ruler converts bounds only once the whole numeric
 * expression has been read, so callers keep the text until then. */
static uint64_t text_key(cc_t *c, const char *s)
{
    uint64_t k;

    if (!number_key(s, strlen(s), &k)) {
        fail_plain(c, apr_pstrcat(c->tp, "Cannot compare number : ", s, NULL));
    }
    return k;
}

static uint64_t bound_key(cc_t *c)
{
    return text_key(c, lx_text_z(c));
}

#define KEY_MIN (double_key(-1.7976931348623157e308))
#define KEY_MAX (double_key(1.7976931348623157e308))

static void set_range(ad_matcher *m, uint64_t lo, int lo_open, uint64_t hi, int hi_open)
{
    m->kind = MK_RANGE;
    m->lo = lo;
    m->lo_open = lo_open;
    m->hi = hi;
    m->hi_open = hi_open;
}

/* [">" | ">=", low, "<" | "<=", high]: the upper half. */
static void compile_range_top(cc_t *c, ad_matcher *m, int t, const char *low, int lo_open)
{
    const char *op, *high;
    int hi_open = 0;
    uint64_t lo, hi;

    if (t != T_STRING) {
        fail_plain(c, apr_pstrcat(c->tp, "Bad value in numeric range: ", lx_text_z(c), NULL));
    }
    op = lx_text_z(c);
    if (strcmp(op, "<") == 0) {
        hi_open = 1;
    }
    else if (strcmp(op, "<=") != 0) {
        fail_plain(c, apr_pstrcat(c->tp, "Bad numeric range operator: ", op, NULL));
    }
    if (!tok_numeric(lx_next(c))) {
        fail_plain(c, apr_pstrcat(c->tp, "Value of ", op, " must be numeric", NULL));
    }
    high = lx_text_z(c);
    if (lx_next(c) != T_END_ARRAY) {
        fail_plain(c, "Too many terms in numeric range expression");
    }
    lo = text_key(c, low);
    hi = text_key(c, high);
    if (lo >= hi) {
        fail_plain(c, "Bottom must be less than top");
    }
    set_range(m, lo, lo_open, hi, hi_open);
}

static void compile_numeric(cc_t *c, mvec *v)
{
    const char *op, *val;
    ad_matcher *m;
    int t = lx_next(c), lower, upper;

    if (t != T_STRING) {
        fail_plain(c, apr_pstrcat(c->tp, "Invalid member in numeric match: ", lx_text_z(c), NULL));
    }
    op = lx_text_z(c);
    t = lx_next(c);
    m = mvec_push(c, v, MK_RANGE);
    lower = strcmp(op, ">") == 0 || strcmp(op, ">=") == 0;
    upper = strcmp(op, "<") == 0 || strcmp(op, "<=") == 0;
    if (!lower && !upper && strcmp(op, "=") != 0) {
        fail_plain(c, apr_pstrcat(c->tp, "Unrecognized numeric range operator: ", op, NULL));
    }
    if (!tok_numeric(t)) {
        fail_plain(c, apr_pstrcat(c->tp, "Value of ", lower || upper ? op : "equals",
                                  " must be numeric", NULL));
    }
    val = lx_text_z(c);
    t = lx_next(c);
    if (lower && t != T_END_ARRAY) {
        compile_range_top(c, m, t, val, op[1] == '\0');
    }
    else if (t != T_END_ARRAY) {
        fail_plain(c, MSG_TOO_MANY_ELEMS);
    }
    else if (lower) {
        set_range(m, text_key(c, val), op[1] == '\0', KEY_MAX, 0);
    }
    else if (upper) {
        set_range(m, KEY_MIN, 0, text_key(c, val), op[1] == '\0');
    }
    else {
        m->kind = MK_NUM_EQ;
        m->key = text_key(c, val);
    }
    expect_end_object(c, MSG_TOO_MANY_ELEMS);
}

static void compile_exists(cc_t *c, mvec *v)
{
    int t = lx_next(c);

    if (t != T_TRUE && t != T_FALSE) {
        fail_plain(c, "exists match pattern must be either true or false.");
    }
    mvec_push(c, v, t == T_TRUE ? MK_EXISTS : MK_ABSENT);
    expect_end_object(c, MSG_ONE_KEY);
}

static void compile_cidr(cc_t *c, mvec *v)
{
    const char *s;
    size_t n;
    ad_matcher *m;

    if (lx_next(c) != T_STRING) {
        fail_plain(c, "prefix match pattern must be a string");
    }
    s = lx_text(c, &n);
    m = mvec_push(c, v, MK_IP);
    cidr_compile(c, s, n, m);
    expect_end_object(c, MSG_ONE_KEY);
}

static void compile_string_op(cc_t *c, mvec *v, int kind, const char *what)
{
    const char *s;
    size_t n;
    ad_matcher *m;

    if (lx_next(c) != T_STRING) {
        fail_plain(c, apr_pstrcat(c->tp, what, " match pattern must be a string", NULL));
    }
    s = lx_text(c, &n);
    m = mvec_push(c, v, kind);
    m->str = pstr(c, s, n);
    if (kind == MK_WILDCARD) {
        m->wild = apr_pcalloc(c->p, sizeof(ad_wild));
        m->nwild = 1;
        wildcard_or_fail(c, s, n, m->wild);
    }
    expect_end_object(c, MSG_ONE_KEY);
}

/* ---- anything-but ---- */

typedef struct {
    ad_str *s;
    int n, cap;
    uint64_t *k;
    int nk, capk;
} abset;

static void abset_str(cc_t *c, abset *a, const char *s, size_t n)
{
    ad_str *ns;

    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 4;
        ns = apr_palloc(c->p, sizeof(*ns) * (size_t)a->cap);
        if (a->n) {
            memcpy(ns, a->s, sizeof(*ns) * (size_t)a->n);
        }
        a->s = ns;
    }
    a->s[a->n++] = pstr(c, s, n);
}

static void abset_num(cc_t *c, abset *a)
{
    uint64_t *nk;
    uint64_t k = bound_key(c);

    if (a->nk == a->capk) {
        a->capk = a->capk ? a->capk * 2 : 4;
        nk = apr_palloc(c->p, sizeof(*nk) * (size_t)a->capk);
        if (a->nk) {
            memcpy(nk, a->k, sizeof(*nk) * (size_t)a->nk);
        }
        a->k = nk;
    }
    a->k[a->nk++] = k;
}

static const char *ab_type_error(int kind)
{
    if (kind == MK_AB_IC) {
        return "Inside anything-but/equals-ignore-case list, "
               "number|start|null|boolean is not supported.";
    }
    if (kind == MK_AB_WILDCARD) {
        return "wildcard match pattern must be a string";
    }
    return "prefix/suffix match pattern must be a string";
}

/* One string of an anything-but prefix/suffix/equals-ignore-case/wildcard. */
static void ab_value(cc_t *c, abset *a, int kind, int t)
{
    const char *s;
    size_t n;

    if (t != T_STRING) {
        fail_plain(c, ab_type_error(kind));
    }
    s = lx_text(c, &n);
    if ((kind == MK_AB_PREFIX || kind == MK_AB_SUFFIX) && n == 0) {
        fail_plain(c, "Null prefix/suffix not allowed");
    }
    abset_str(c, a, s, n);
}

/* Java's String.hashCode of '"' + s + '"' (UTF-16 code units). */
static uint32_t java_hash_quoted(const ad_str *v)
{
    uint32_t h = '"', cp;
    size_t i = 0, l;

    while (i < v->n) {
        cp = utf8_next((const unsigned char *)v->s + i, v->n - i, &l);
        if (cp >= 0x10000) {
            h = 31 * h + (0xD800 + ((cp - 0x10000) >> 10));
            h = 31 * h + (0xDC00 + ((cp - 0x10000) & 0x3FF));
        }
        else {
            h = 31 * h + cp;
        }
        i += l;
    }
    return 31 * h + '"';
}

/* The distinct values (*count of them, as indexes into a) in the iteration
 * order of the HashSet event-ruler keeps them in, which decides which bad
 * wildcard it reports first. */
static int *hashset_order(cc_t *c, const abset *a, int *count)
{
    int *order = apr_palloc(c->tp, sizeof(int) * (size_t)(a->n + 1));
    unsigned cap = 16, *bucket;
    int n = 0, j, k, tmp;
    uint32_t h;

    for (j = 0; j < a->n; j++) {
        for (k = 0; k < j; k++) {
            if (a->s[k].n == a->s[j].n && memcmp(a->s[k].s, a->s[j].s, a->s[j].n) == 0) {
                break;
            }
        }
        if (k == j) {
            order[n++] = j;
        }
    }
    while ((unsigned)n > cap * 3 / 4) {
        cap *= 2;
    }
    bucket = apr_palloc(c->tp, sizeof(unsigned) * (size_t)(n + 1));
    for (j = 0; j < n; j++) {
        h = java_hash_quoted(&a->s[order[j]]);
        bucket[j] = (h ^ (h >> 16)) & (cap - 1);
    }
    for (j = 1; j < n; j++) { /* stable insertion sort */
        for (k = j; k > 0 && bucket[k - 1] > bucket[k]; k--) {
            tmp = order[k];
            order[k] = order[k - 1];
            order[k - 1] = tmp;
            tmp = (int)bucket[k];
            bucket[k] = bucket[k - 1];
            bucket[k - 1] = (unsigned)tmp;
        }
    }
    *count = n;
    return order;
}

static void ab_finish(cc_t *c, ad_matcher *m, abset *a)
{
    int i, n, *order;

    m->set = a->s;
    m->nset = a->n;
    m->keys = a->k;
    m->nkeys = a->nk;
    if (m->kind != MK_AB_WILDCARD) {
        return;
    }
    m->wild = apr_pcalloc(c->p, sizeof(ad_wild) * (size_t)(a->n ? a->n : 1));
    m->nwild = a->n;
    /* the order once: it is a sort of the whole set (once per element, a
     * list of 1,000 took 3.4 s) */
    order = hashset_order(c, a, &n);
    for (i = 0; i < n; i++) {
        wildcard_or_fail(c, a->s[order[i]].s, a->s[order[i]].n, &m->wild[order[i]]);
    }
    for (i = 0; i < a->n; i++) { /* duplicates of the set */
        if (!m->wild[i].seg) {
            wildcard_or_fail(c, a->s[i].s, a->s[i].n, &m->wild[i]);
        }
    }
}

/* The list forms; event-ruler re-throws parse errors met inside them, which
 * appends a second location to syntax errors. */
static void ab_list(cc_t *c, ad_matcher *m, abset *a)
{
    int t, strings = 0, numbers = 0;

    c->rewrap = 1;
    while ((t = lx_next(c)) != T_END_ARRAY) {
        if (m->kind != MK_AB_STR) {
            ab_value(c, a, m->kind, t);
        }
        else if (t == T_STRING) {
            size_t n;
            const char *s = lx_text(c, &n);
            abset_str(c, a, s, n);
            strings = 1;
        }
        else if (tok_numeric(t)) {
            abset_num(c, a);
            numbers = 1;
        }
        else {
            fail_plain(c, "Inside anything but list, start|null|boolean is not "
                          "supported.");
        }
    }
    c->rewrap = 0;
    if (m->kind == MK_AB_STR && strings == numbers) {
        fail_plain(c, "Inside anything but list, either all values are number "
                      "or string, mixed type is not supported");
    }
    if (m->kind == MK_AB_STR && numbers) {
        m->kind = MK_AB_NUM;
    }
}

static void compile_anything_but(cc_t *c, mvec *v)
{
    ad_matcher *m = mvec_push(c, v, MK_AB_STR);
    abset a = {0};
    const char *op;
    int t = lx_next(c), kind = MK_AB_STR;

    if (t == T_START_OBJECT) {
        if (lx_next(c) != T_FIELD_NAME) {
            fail_plain(c, "Anything-But expression name not found");
        }
        op = lx_text_z(c);
        if (strcmp(op, "equals-ignore-case") == 0) {
            kind = MK_AB_IC;
        }
        else if (strcmp(op, "prefix") == 0) {
            kind = MK_AB_PREFIX;
        }
        else if (strcmp(op, "suffix") == 0) {
            kind = MK_AB_SUFFIX;
        }
        else if (strcmp(op, "wildcard") == 0) {
            kind = MK_AB_WILDCARD;
        }
        else {
            fail_plain(c, apr_pstrcat(c->tp,
                                      "Unsupported anything-but "
                                      "pattern: ",
                                      op, NULL));
        }
        t = lx_next(c);
    }
    m->kind = kind;
    if (t != T_START_ARRAY && t != T_STRING && !tok_numeric(t)) {
        fail_plain(c, "Value of anything-but must be an array or single "
                      "string/number value.");
    }
    if (t == T_START_ARRAY) {
        ab_list(c, m, &a);
    }
    else if (kind != MK_AB_STR) {
        ab_value(c, &a, kind, t);
    }
    else if (t == T_STRING) {
        size_t n;
        const char *s = lx_text(c, &n);
        abset_str(c, &a, s, n);
    }
    else {
        abset_num(c, &a);
        m->kind = MK_AB_NUM;
    }
    ab_finish(c, m, &a);
    expect_end_object(c, MSG_TOO_MANY_ELEMS);
    if (kind != MK_AB_STR) {
        expect_end_object(c, MSG_TOO_MANY_ELEMS);
    }
}

/* {"<operator>": ...} inside a value array. */
static void compile_match_expression(cc_t *c, mvec *v)
{
    const char *op;

    if (lx_next(c) != T_FIELD_NAME) {
        fail_plain(c, "Match expression name not found");
    }
    op = lx_text_z(c);
    if (strcmp(op, "exactly") == 0) {
        compile_string_op(c, v, MK_EXACT, "exact");
    }
    else if (strcmp(op, "prefix") == 0) {
        compile_affix(c, v, 1);
    }
    else if (strcmp(op, "suffix") == 0) {
        compile_affix(c, v, 0);
    }
    else if (strcmp(op, "numeric") == 0) {
        if (lx_next(c) != T_START_ARRAY) {
            fail_plain(c, "Value of numeric must be an array.");
        }
        compile_numeric(c, v);
    }
    else if (strcmp(op, "anything-but") == 0) {
        compile_anything_but(c, v);
    }
    else if (strcmp(op, "exists") == 0) {
        compile_exists(c, v);
    }
    else if (strcmp(op, "cidr") == 0) {
        compile_cidr(c, v);
    }
    else if (strcmp(op, "equals-ignore-case") == 0) {
        compile_string_op(c, v, MK_EQ_IC, "equals-ignore-case");
    }
    else if (strcmp(op, "wildcard") == 0) {
        compile_string_op(c, v, MK_WILDCARD, "wildcard");
    }
    else {
        fail_plain(c, apr_pstrcat(c->tp, "Unrecognized match type ", op, NULL));
    }
}

int ad_pattern_value_is_address(const char *s, size_t n)
{
    unsigned char ip[16];

    return ip_parse(s, n, ip) > 0;
}

/* A literal string: an IP address matches as an address range. */
static void compile_literal_string(cc_t *c, mvec *v)
{
    size_t n;
    const char *s = lx_text(c, &n);
    unsigned char ip[16];
    int len = ip_parse(s, n, ip);
    ad_matcher *m;

    if (len > 0) {
        m = mvec_push(c, v, MK_IP);
        memcpy(m->ip_lo, ip, 16);
        memcpy(m->ip_hi, ip, 16);
        m->ip_len = len;
        return;
    }
    m = mvec_push(c, v, MK_EXACT);
    m->str = pstr(c, s, n);
}

/* A literal number matches numerically when it is exactly a double, and
 * always by its text. */
static void compile_literal_number(cc_t *c, mvec *v)
{
    size_t n;
    const char *s = lx_text(c, &n);
    uint64_t k;
    ad_matcher *m;

    if (number_key(s, n, &k)) {
        m = mvec_push(c, v, MK_NUM_EQ);
        m->key = k;
    }
    m = mvec_push(c, v, MK_NUM_TEXT);
    m->str = pstr(c, s, n);
}

static void write_rules(cc_t *c, const char *name)
{
    mvec v = {0};
    int t, i;
    ad_matcher *final;

    while ((t = lx_next(c)) != T_END_ARRAY) {
        switch (t) {
        case T_START_OBJECT:
            compile_match_expression(c, &v);
            break;
        case T_STRING:
            compile_literal_string(c, &v);
            break;
        case T_INT:
        case T_FLOAT:
            compile_literal_number(c, &v);
            break;
        case T_NULL:
        case T_TRUE:
        case T_FALSE:
            mvec_push(c, &v, t == T_NULL ? MK_NULL : t == T_TRUE ? MK_TRUE : MK_FALSE);
            break;
        default:
            fail_plain(c, "Match value must be String, number, true, false, "
                          "or null");
        }
    }
    if (!v.n) {
        fail_plain(c, "Empty arrays are not allowed");
    }
    final = apr_pmemdup(c->p, v.m, sizeof(*final) * (size_t)v.n);
    if (!c->rules->n) {
        rlist_add(c, c->rules, rmap_copy(c, NULL));
    }
    name = intern(c, name);
    for (i = 0; i < c->rules->n && !(c->too_many && i > 0); i++) {
        rmap_put(c, c->rules->r[i], name, final, v.n);
    }
}

static int reserved_in_or(const char *name)
{
    static const char *const words[] = {"exactly",
                                        "equals-ignore-case",
                                        "prefix",
                                        "suffix",
                                        "anything-but",
                                        "exists",
                                        "wildcard",
                                        "numeric",
                                        "cidr",
                                        "=",
                                        "<",
                                        "<=",
                                        ">",
                                        ">=",
                                        "regex",
                                        "not-wildcard",
                                        "not-equals-ignore-case",
                                        "date-after",
                                        "date-on-or-after",
                                        "date-before",
                                        "date-on-or-before",
                                        "in-date-range",
                                        "ip-address-in-range",
                                        "ip-address-not-in-range",
                                        NULL};
    int i;

    for (i = 0; words[i]; i++) {
        if (strcmp(words[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static void parse_object(cc_t *c, int inside_or);

/* "$or": [ {...}, {...} ]: every branch extends a copy of the rules so far. */
static void parse_or(cc_t *c)
{
    rlist *saved = c->rules, *current = rlist_copy(c, c->rules), *branch;
    rlist *result = apr_pcalloc(c->tp, sizeof(*result));
    int t, count = 0, i;

    saved->n = 0;
    if (lx_next(c) != T_START_ARRAY) {
        fail_plain(c, "It must be an Array followed with $or.");
    }
    while ((t = lx_next(c)) != T_END_ARRAY) {
        count++;
        if (t != T_START_OBJECT) {
            fail_plain(c, "Only JSON object is allowed in array of $or "
                          "relationship.");
        }
        branch = rlist_copy(c, current);
        if (!branch->n) {
            rlist_add(c, branch, rmap_copy(c, NULL));
        }
        c->rules = branch;
        parse_object(c, 1);
        c->rules = saved;
        for (i = 0; i < branch->n; i++) {
            rlist_add(c, result, branch->r[i]);
        }
    }
    if (count < 2) {
        fail_plain(c, "There must have at least 2 Objects in $or relationship.");
    }
    *saved = *result;
}

static void parse_object(cc_t *c, int inside_or)
{
    int fields = 0, t;
    const char *name;

    while (lx_next(c) != T_END_OBJECT) {
        fields = 1;
        name = lx_text_z(c);
        if (strcmp(name, "$or") == 0) {
            parse_or(c);
            continue;
        }
        if (inside_or && reserved_in_or(name)) {
            fail_plain(c, apr_pstrcat(c->tp, name,
                                      " is Ruler reserved "
                                      "fieldName which cannot be used inside $or.",
                                      NULL));
        }
        t = lx_next(c);
        if (t == T_START_OBJECT) {
            path_push(c, name);
            parse_object(c, inside_or);
            c->npath--;
        }
        else if (t == T_START_ARRAY) {
            write_rules(c, path_extended(c, name));
        }
        else {
            fail_plain(c, apr_psprintf(c->tp,
                                       "\"%s\" must be an object or an "
                                       "array",
                                       name));
        }
    }
    if (!fields) {
        fail_plain(c, "Empty objects are not allowed");
    }
}

static void compile_document(cc_t *c)
{
    if (lx_next(c) != T_START_OBJECT) {
        fail_syntax(c, "Filter is not an object");
    }
    parse_object(c, 0);
    if (c->too_big) {
        fail_plain(c, apr_psprintf(c->tp, MSG_TOO_BIG_OR, expansion_bound(c)));
    }
    if (c->too_many) {
        fail_plain(c, MSG_TOO_MANY_OR);
    }
}

/* ------------------------------------------------------------------ */
/* Finishing the compiled pattern                                      */
/* ------------------------------------------------------------------ */

typedef struct {
    int first, next, path;
    unsigned char b;
} tnode_tmp;

typedef struct {
    tnode_tmp *n;
    int nn, cap;
} trie_tmp;

static int trie_tmp_node(cc_t *c, trie_tmp *t, unsigned char b)
{
    tnode_tmp *nn;

    if (t->nn == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        nn = apr_palloc(c->tp, sizeof(*nn) * (size_t)t->cap);
        if (t->nn) {
            memcpy(nn, t->n, sizeof(*nn) * (size_t)t->nn);
        }
        t->n = nn;
    }
    t->n[t->nn].first = -1;
    t->n[t->nn].next = -1;
    t->n[t->nn].path = -1;
    t->n[t->nn].b = b;
    return t->nn++;
}

static void trie_tmp_insert(cc_t *c, trie_tmp *t, const char *s, int path)
{
    int node = 0, ch, prev;
    size_t i, n = strlen(s);

    for (i = 0; i < n; i++) {
        prev = -1;
        for (ch = t->n[node].first; ch >= 0; ch = t->n[ch].next) {
            if (t->n[ch].b == (unsigned char)s[i]) {
                break;
            }
            prev = ch;
        }
        if (ch < 0) {
            ch = trie_tmp_node(c, t, (unsigned char)s[i]);
            if (prev < 0) {
                t->n[node].first = ch;
            }
            else {
                t->n[prev].next = ch;
            }
        }
        node = ch;
    }
    t->n[node].path = path;
}

/* Lay the trie out flat: node i's children are edges[edge0 .. +nedge). */
static void trie_flatten(cc_t *c, const trie_tmp *t, ad_pattern_t *pat)
{
    int i, ch, e = 0;

    pat->nodes = apr_pcalloc(c->p, sizeof(ad_tnode) * (size_t)t->nn);
    pat->edges = apr_pcalloc(c->p, sizeof(ad_tedge) * (size_t)(t->nn + 1));
    pat->nnodes = t->nn;
    for (i = 0; i < t->nn; i++) {
        pat->nodes[i].path = t->n[i].path;
        pat->nodes[i].edge0 = e;
        for (ch = t->n[i].first; ch >= 0; ch = t->n[ch].next) {
            pat->edges[e].byte = t->n[ch].b;
            pat->edges[e].to = ch;
            e++;
        }
        pat->nodes[i].nedge = e - pat->nodes[i].edge0;
    }
}

static int field_cmp(const void *a, const void *b)
{
    const rentry *x = a, *y = b;

    return java_strcmp(x->name, y->name);
}

static void field_fill(ad_field *f, const rentry *e, int path)
{
    int i;

    f->path = path;
    f->m = e->m;
    f->nm = e->nm;
    for (i = 0; i < e->nm; i++) {
        const ad_matcher *m = &e->m[i];
        f->cost += 1 + m->nset + m->nkeys + 4L * m->nwild + (long)(m->str.n / 16);
        f->scans |= m->kind == MK_WILDCARD || m->kind == MK_AB_WILDCARD;
        f->prints |= m->kind == MK_IP;
        switch (m->kind) {
        case MK_NUM_EQ:
        case MK_RANGE:
        case MK_AB_NUM:
            f->numeric = 1;
            break;
        case MK_ABSENT:
            f->absent = 1;
            break;
        default:
            break;
        }
    }
}

static int rule_complexity(cc_t *c, const ad_pattern_t *pat);

static ad_pattern_t *finalize(cc_t *c)
{
    ad_pattern_t *pat = apr_pcalloc(c->p, sizeof(*pat));
    apr_hash_t *paths = apr_hash_make(c->tp);
    trie_tmp t = {0};
    rmap *r;
    int i, j, *idx;

    trie_tmp_node(c, &t, 0);
    pat->nsubs = c->rules->n;
    pat->subs = apr_pcalloc(c->p, sizeof(ad_subrule) * (size_t)pat->nsubs);
    for (i = 0; i < c->rules->n; i++) {
        r = c->rules->r[i];
        qsort(r->e, (size_t)r->n, sizeof(rentry), field_cmp);
        pat->subs[i].nf = r->n;
        pat->subs[i].f = apr_pcalloc(c->p, sizeof(ad_field) * (size_t)r->n);
        for (j = 0; j < r->n; j++) {
            idx = apr_hash_get(paths, r->e[j].name, APR_HASH_KEY_STRING);
            if (!idx) {
                idx = apr_palloc(c->tp, sizeof(*idx));
                *idx = pat->npaths++;
                apr_hash_set(paths, r->e[j].name, APR_HASH_KEY_STRING, idx);
                trie_tmp_insert(c, &t, r->e[j].name, *idx);
            }
            field_fill(&pat->subs[i].f[j], &r->e[j], *idx);
        }
    }
    trie_flatten(c, &t, pat);
    if (rule_complexity(c, pat) > AD_MAX_COMPLEXITY) {
        fail_plain(c, MSG_TOO_COMPLEX);
    }
    return pat;
}

/* ------------------------------------------------------------------ */
/* Occurrence store (shared with ad_match.c, see ad_pattern_int.h)     */
/* ------------------------------------------------------------------ */

void ad_occs_init(ad_occs_t *o)
{
    memset(o, 0, offsetof(ad_occs_t, occ0));
    o->occ = o->occ0;
    o->capocc = AD_OCC_INLINE;
    o->mem = o->mem0;
    o->capmem = AD_MEM_INLINE;
    o->cur = o->cur0;
    o->capcur = AD_MEM_INLINE;
    o->head = o->head0;
    o->caphead = AD_HEAD_INLINE;
    o->hit = o->hit0;
    o->caphit = AD_HIT_INLINE;
}

void ad_occs_free(ad_occs_t *o)
{
    if (o->occ != o->occ0) {
        free(o->occ);
    }
    if (o->mem != o->mem0) {
        free(o->mem);
    }
    if (o->cur != o->cur0) {
        free(o->cur);
    }
    if (o->head != o->head0) {
        free(o->head);
    }
    if (o->hit != o->hit0) {
        free(o->hit);
    }
    ad_occs_init(o);
}

/* Grow a scratch array that may still live inside ad_occs_t. */
static void *grow(void *buf, const void *inl, int *cap, size_t elem, int used)
{
    int nc = *cap * 2;
    void *nb;

    if (buf == inl) {
        nb = malloc(elem * (size_t)nc);
        if (nb) {
            memcpy(nb, buf, elem * (size_t)used);
        }
    }
    else {
        nb = realloc(buf, elem * (size_t)nc);
    }
    if (nb) {
        *cap = nc;
    }
    return nb;
}

int ad_occs_reset(ad_occs_t *o, int npaths)
{
    int i;
    void *nb;

    o->nocc = o->nmem = o->ncur = 0;
    o->arrays = o->maxmem = o->failed = 0;
    o->steps = 0;
    while (npaths > o->caphead) {
        nb = grow(o->head, o->head0, &o->caphead, sizeof(int), 0);
        if (!nb) {
            o->failed = 1;
            return 0;
        }
        o->head = nb;
    }
    for (i = 0; i < npaths; i++) {
        o->head[i] = -1;
    }
    return 1;
}

void ad_occs_add(ad_occs_t *o, int path, const ad_val_t *v)
{
    ad_occ_t *oc;
    void *nb;

    if (o->nmem + o->ncur > AD_OCCS_MAX_MEM) {
        o->failed = 1;
        return;
    }
    if (o->nocc == o->capocc) {
        nb = grow(o->occ, o->occ0, &o->capocc, sizeof(ad_occ_t), o->nocc);
        if (!nb) {
            o->failed = 1;
            return;
        }
        o->occ = nb;
    }
    while (o->nmem + o->ncur > o->capmem) {
        nb = grow(o->mem, o->mem0, &o->capmem, sizeof(ad_mem_t), o->nmem);
        if (!nb) {
            o->failed = 1;
            return;
        }
        o->mem = nb;
    }
    oc = &o->occ[o->nocc];
    oc->v = *v;
    oc->num = 0;
    oc->dead = 0;
    oc->m0 = o->nmem;
    oc->mn = o->ncur;
    if (o->ncur) {
        memcpy(o->mem + o->nmem, o->cur, sizeof(ad_mem_t) * (size_t)o->ncur);
    }
    o->nmem += o->ncur;
    if (o->ncur > o->maxmem) {
        o->maxmem = o->ncur;
    }
    oc->next = o->head[path];
    o->head[path] = o->nocc++;
}

int ad_occs_array(ad_occs_t *o)
{
    return o->arrays++;
}

void ad_occs_enter(ad_occs_t *o, int arr, int idx)
{
    void *nb;

    if (o->ncur == o->capcur) {
        nb = grow(o->cur, o->cur0, &o->capcur, sizeof(ad_mem_t), o->ncur);
        if (!nb) {
            /* keep enter/leave balanced: overwrite the last slot */
            o->failed = 1;
            o->ncur--;
        }
        else {
            o->cur = nb;
        }
    }
    o->cur[o->ncur].arr = arr;
    o->cur[o->ncur].idx = idx;
    o->ncur++;
}

void ad_occs_leave(ad_occs_t *o)
{
    o->ncur--;
}

/* ------------------------------------------------------------------ */
/* Walking a jansson event                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    const ad_pattern_t *pat;
    ad_occs_t *o;
} mctx;

static int trie_step(const ad_pattern_t *p, int node, unsigned char b)
{
    const ad_tnode *n = &p->nodes[node];
    const ad_tedge *e = p->edges + n->edge0;
    int i;

    for (i = 0; i < n->nedge; i++) {
        if (e[i].byte == b) {
            return e[i].to;
        }
    }
    return -1;
}

static void leaf_value(const json_t *j, ad_val_t *v)
{
    memset(v, 0, sizeof(*v));
    switch (json_typeof(j)) {
    case JSON_STRING:
        v->type = AD_V_STRING;
        v->s = json_string_value(j);
        v->n = json_string_length(j);
        break;
    case JSON_INTEGER:
        v->type = AD_V_INT;
        v->i = json_integer_value(j);
        break;
    case JSON_REAL:
        v->type = AD_V_REAL;
        v->d = json_real_value(j);
        break;
    case JSON_TRUE:
        v->type = AD_V_TRUE;
        break;
    case JSON_FALSE:
        v->type = AD_V_FALSE;
        break;
    default:
        v->type = AD_V_NULL;
        break;
    }
}

static void walk_value(mctx *m, const json_t *v, int node);

static void walk_object(mctx *m, const json_t *obj, int node, int dot)
{
    void *it;
    const char *key;
    size_t klen, i;
    int n;

    for (it = json_object_iter((json_t *)obj); it && !m->o->failed;
         it = json_object_iter_next((json_t *)obj, it)) {
        key = json_object_iter_key(it);
        klen = json_object_iter_key_len(it);
        n = dot ? trie_step(m->pat, node, '.') : node;
        for (i = 0; i < klen && n >= 0; i++) {
            n = trie_step(m->pat, n, (unsigned char)key[i]);
        }
        if (n >= 0) {
            walk_value(m, json_object_iter_value(it), n);
        }
    }
}

/* Objects and arrays inside an array carry the element's position; plain
 * values in it do not (as in event-ruler's Event). */
static void walk_array(mctx *m, const json_t *arr, int node)
{
    int id = ad_occs_array(m->o);
    size_t i, n = json_array_size(arr);
    const json_t *e;

    for (i = 0; i < n && !m->o->failed; i++) {
        e = json_array_get(arr, i);
        if (!json_is_object(e) && !json_is_array(e)) {
            walk_value(m, e, node);
            continue;
        }
        ad_occs_enter(m->o, id, (int)i);
        walk_value(m, e, node);
        ad_occs_leave(m->o);
    }
}

static void walk_value(mctx *m, const json_t *v, int node)
{
    int path;
    ad_val_t lv;

    if (json_is_object(v)) {
        walk_object(m, v, node, 1);
    }
    else if (json_is_array(v)) {
        walk_array(m, v, node);
    }
    else if ((path = m->pat->nodes[node].path) >= 0) {
        leaf_value(v, &lv);
        ad_occs_add(m->o, path, &lv);
    }
}

/* ------------------------------------------------------------------ */
/* Matching                                                            */
/* ------------------------------------------------------------------ */

/* ComparableNumber of an event number: integers beyond 2^53 are often not
 * exactly doubles; reals are taken as written in shortest form. */
static int occ_comparable(ad_occ_t *o)
{
    char buf[32];
    json_int_t i;

    if (o->num) {
        return o->num == 1;
    }
    o->num = 2;
    if (o->v.type == AD_V_INT) {
        i = o->v.i;
        if (i >= -((json_int_t)1 << 53) && i <= ((json_int_t)1 << 53)) {
            o->key = double_key((double)i);
            o->num = 1;
        }
        else {
            snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, i);
            if (number_key(buf, strlen(buf), &o->key)) {
                o->num = 1;
            }
        }
    }
    /* isfinite() is a macro using sizeof: no call happens inside it */
    // cppcheck-suppress sizeofFunctionCall
    else if (o->v.type == AD_V_REAL && isfinite(o->v.d)) {
        o->key = double_key(o->v.d);
        o->num = 1;
    }
    return o->num == 1;
}

static int str_in(const ad_str *set, int n, const char *s, size_t len)
{
    int i;

    for (i = 0; i < n; i++) {
        if (set[i].n == len && memcmp(set[i].s, s, len) == 0) {
            return 1;
        }
    }
    return 0;
}

static int has_prefix(const ad_str *p, const char *s, size_t n)
{
    return n >= p->n && memcmp(s, p->s, p->n) == 0;
}

static int has_suffix(const ad_str *p, const char *s, size_t n)
{
    return n >= p->n && memcmp(s + n - p->n, p->s, p->n) == 0;
}

static int eq_ic(const ad_str *p, const char *s, size_t n)
{
    return ic_forward(p->s, p->n, s, n) == (long)n;
}

static int ip_in(const ad_matcher *m, const char *s, size_t n)
{
    unsigned char ip[16];
    int len = ip_parse(s, n, ip);

    return len == m->ip_len && memcmp(ip, m->ip_lo, (size_t)len) >= 0 &&
           memcmp(ip, m->ip_hi, (size_t)len) <= 0;
}

static int in_range(const ad_matcher *m, uint64_t k)
{
    if (k < m->lo || (k == m->lo && m->lo_open)) {
        return 0;
    }
    return k < m->hi || (k == m->hi && !m->hi_open);
}

static int any_of(const ad_matcher *m, const char *s, size_t n,
                  int (*test)(const ad_str *, const char *, size_t))
{
    int i;

    for (i = 0; i < m->nset; i++) {
        if (test(&m->set[i], s, n)) {
            return 1;
        }
    }
    return 0;
}

static int any_wild(const ad_matcher *m, const char *s, size_t n)
{
    int i;

    for (i = 0; i < m->nwild; i++) {
        if (wild_match(&m->wild[i], s, n)) {
            return 1;
        }
    }
    return 0;
}

/* Matchers on a string value. */
static int string_hit(const ad_matcher *m, const char *s, size_t n)
{
    switch (m->kind) {
    case MK_EXACT:
        return m->str.n == n && memcmp(m->str.s, s, n) == 0;
    case MK_IP:
        return ip_in(m, s, n);
    case MK_PREFIX:
        return has_prefix(&m->str, s, n);
    case MK_PREFIX_IC:
        return ic_forward(m->str.s, m->str.n, s, n) >= 0;
    case MK_SUFFIX:
        return has_suffix(&m->str, s, n);
    case MK_SUFFIX_IC:
        return ic_suffix(m->str.s, m->str.n, s, n);
    case MK_EQ_IC:
        return eq_ic(&m->str, s, n);
    case MK_WILDCARD:
        return wild_match(m->wild, s, n);
    case MK_EXISTS:
    case MK_AB_NUM:
        return 1;
    case MK_AB_STR:
        return !str_in(m->set, m->nset, s, n);
    case MK_AB_PREFIX:
        return !any_of(m, s, n, has_prefix);
    case MK_AB_SUFFIX:
        return !any_of(m, s, n, has_suffix);
    case MK_AB_IC:
        return !any_of(m, s, n, eq_ic);
    case MK_AB_WILDCARD:
        return !any_wild(m, s, n);
    default:
        return 0;
    }
}

/* event-ruler walks a number's text through the hex-digit trie of address
 * ranges too, so digits that spell a prefix inside a range match it. */
static int ip_text_hit(const ad_matcher *m, const ad_occ_t *o)
{
    char buf[40];
    size_t n, d;
    int lo_eq = 1, hi_eq = 1, v, blo, bhi;

    if (o->v.type == AD_V_INT) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, o->v.i);
    }
    else {
        double_shortest(o->v.d, buf, sizeof(buf));
    }
    n = strlen(buf);
    for (d = 0; d < (size_t)m->ip_len * 2; d++) {
        if (d >= n || !is_digit(buf[d])) {
            return 0;
        }
        v = buf[d] - '0';
        blo = (m->ip_lo[d / 2] >> (d % 2 ? 0 : 4)) & 0xF;
        bhi = (m->ip_hi[d / 2] >> (d % 2 ? 0 : 4)) & 0xF;
        if ((lo_eq && v < blo) || (hi_eq && v > bhi)) {
            return 0;
        }
        lo_eq = lo_eq && v == blo;
        hi_eq = hi_eq && v == bhi;
        if (!lo_eq && !hi_eq) {
            return 1;
        }
    }
    return 1;
}

/* Matchers on a number. With numeric matchers on the field a comparable
 * number is matched by value only; otherwise by its text (event-ruler's
 * NUMERIC vs STRING transition). */
static int number_hit(const ad_matcher *m, ad_occ_t *o, int numeric)
{
    char buf[32];
    int by_value = numeric && occ_comparable(o);

    switch (m->kind) {
    case MK_NUM_EQ:
        return by_value && o->key == m->key;
    case MK_RANGE:
        return by_value && in_range(m, o->key);
    case MK_AB_NUM: {
        int i;
        if (!by_value) {
            return 1;
        }
        for (i = 0; i < m->nkeys; i++) {
            if (m->keys[i] == o->key) {
                return 0;
            }
        }
        return 1;
    }
    case MK_IP:
        return !by_value && ip_text_hit(m, o);
    case MK_NUM_TEXT:
        if (by_value || o->v.type != AD_V_INT) {
            return 0;
        }
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, o->v.i);
        return strlen(buf) == m->str.n && memcmp(buf, m->str.s, m->str.n) == 0;
    case MK_EXISTS:
    case MK_AB_STR:
    case MK_AB_PREFIX:
    case MK_AB_SUFFIX:
    case MK_AB_IC:
    case MK_AB_WILDCARD:
        return 1;
    default:
        return 0;
    }
}

static int matcher_hit(const ad_matcher *m, ad_occ_t *o, int numeric)
{
    switch (o->v.type) {
    case AD_V_STRING:
        return string_hit(m, o->v.s, o->v.n);
    case AD_V_INT:
    case AD_V_REAL:
        return number_hit(m, o, numeric);
    case AD_V_TRUE:
        return m->kind == MK_TRUE || (m->kind >= MK_AB_STR) || m->kind == MK_EXISTS;
    case AD_V_FALSE:
        return m->kind == MK_FALSE || (m->kind >= MK_AB_STR) || m->kind == MK_EXISTS;
    case AD_V_NULL:
        return m->kind == MK_NULL || (m->kind >= MK_AB_STR) || m->kind == MK_EXISTS;
    default:
        return 0;
    }
}

static int field_hit(const ad_field *f, ad_occ_t *o)
{
    int i;

    for (i = 0; i < f->nm; i++) {
        if (matcher_hit(&f->m[i], o, f->numeric)) {
            return 1;
        }
    }
    return 0;
}

/* ArrayMembership.checkArrayConsistency: extend sofar[0..n) with the
 * occurrence's memberships; -1 when one array is seen at two indexes. */
static int merge(const ad_occs_t *m, ad_mem_t *sofar, int n, const ad_occ_t *o)
{
    int i, j, nn = n;
    const ad_mem_t *fm = m->mem + o->m0;

    for (i = 0; i < o->mn; i++) {
        for (j = 0; j < n; j++) {
            if (sofar[j].arr == fm[i].arr) {
                break;
            }
        }
        if (j < n) {
            if (sofar[j].idx != fm[i].idx) {
                return -1;
            }
        }
        else {
            sofar[nn++] = fm[i];
        }
    }
    return nn;
}

static int consistent(const ad_occs_t *m, const ad_mem_t *sofar, int n, const ad_occ_t *o)
{
    int i, j;
    const ad_mem_t *fm = m->mem + o->m0;

    for (i = 0; i < o->mn; i++) {
        for (j = 0; j < n; j++) {
            if (sofar[j].arr == fm[i].arr && sofar[j].idx != fm[i].idx) {
                return 0;
            }
        }
    }
    return 1;
}

/* Work units (about one simple comparison each: AD_OCCS_MAX_TESTS) that
 * testing occurrence o against f costs: its matchers and their lists, plus
 * the value's length for a wildcard, which reads it all, and the printing
 * of a decimal for an address range, which tests its text. */
static long hit_cost(const ad_field *f, const ad_occ_t *o)
{
    if (o->v.type == AD_V_STRING && f->scans) {
        return f->cost + (long)(o->v.n / 16);
    }
    /* up to 17 snprintf and strtod to find the decimal's shortest text */
    return o->v.type == AD_V_REAL && f->prints ? f->cost + 512 : f->cost;
}

/* What merge() or consistent() of o against n chosen memberships costs. */
static long merge_cost(const ad_occ_t *o, int n)
{
    return 1 + (long)o->mn * n / 16;
}

/* Charge c work units to a budget of max: 0, and the event failed, once
 * it is used up. */
static int charge(ad_occs_t *m, long *spent, long max, long c)
{
    *spent += c;
    if (*spent > max) {
        m->failed = 1;
        return 0;
    }
    return 1;
}

static int push_hit(ad_occs_t *m, int *n, int oi)
{
    if (*n == m->caphit) {
        void *nb = grow(m->hit, m->hit0, &m->caphit, sizeof(int), *n);
        if (!nb) {
            m->failed = 1;
            return 0;
        }
        m->hit = nb;
    }
    m->hit[(*n)++] = oi;
    return 1;
}

/* The live occurrences that hit each field of sr, tested once per sub-rule
 * (field fi's are m->hit[start[fi] .. start[fi + 1])): the search tries
 * them for every choice made for the fields before it, and testing every
 * occurrence anew for each made the search cost the product of the
 * fields' value counts. 0 when the event failed, or when a field that
 * needs a value has none: then there is nothing to search. */
static int find_hits(ad_occs_t *m, const ad_subrule *sr, int *start)
{
    int fi, oi, n = 0;

    for (fi = 0; fi < sr->nf; fi++) {
        const ad_field *f = &sr->f[fi];
        start[fi] = n;
        for (oi = m->head[f->path]; oi >= 0; oi = m->occ[oi].next) {
            if (m->occ[oi].dead) {
                continue;
            }
            if (!charge(m, &m->tests, AD_OCCS_MAX_TESTS, hit_cost(f, &m->occ[oi]))) {
                return 0;
            }
            if (field_hit(f, &m->occ[oi]) && !push_hit(m, &n, oi)) {
                return 0;
            }
        }
        if (n == start[fi] && !f->absent) {
            return 0;
        }
    }
    start[sr->nf] = n;
    return 1;
}

/* ACFinder over one sub-rule: fields in name order, each matched by an
 * occurrence consistent with those chosen before, or absent when it has
 * {"exists": false} and no consistent occurrence exists. Occurrences a
 * duplicate key replaced (dead) do not exist for the event. */
static int sub_match(ad_occs_t *m, const ad_subrule *sr, const int *start, int fi, ad_mem_t *sofar,
                     int n)
{
    const ad_field *f;
    int k, oi, nn;

    if (fi == sr->nf) {
        return 1;
    }
    f = &sr->f[fi];
    for (k = start[fi]; k < start[fi + 1] && !m->failed; k++) {
        const ad_occ_t *o = &m->occ[m->hit[k]];
        if (!charge(m, &m->steps, AD_OCCS_MAX_STEPS, merge_cost(o, n))) {
            return 0;
        }
        nn = merge(m, sofar, n, o);
        if (nn >= 0 && sub_match(m, sr, start, fi + 1, sofar, nn)) {
            return 1;
        }
    }
    if (!f->absent || m->failed) {
        return 0;
    }
    for (oi = m->head[f->path]; oi >= 0; oi = m->occ[oi].next) {
        if (m->occ[oi].dead) {
            continue;
        }
        if (!charge(m, &m->steps, AD_OCCS_MAX_STEPS, merge_cost(&m->occ[oi], n))) {
            return 0;
        }
        if (consistent(m, sofar, n, &m->occ[oi])) {
            return 0;
        }
    }
    return sub_match(m, sr, start, fi + 1, sofar, n);
}

int ad_pattern_eval(const ad_pattern_t *pat, ad_occs_t *m)
{
    ad_mem_t sofar0[AD_MEM_INLINE], *sofar = sofar0;
    int start0[AD_MEM_INLINE], *start = start0;
    int i, maxf = 0, r = 0;
    size_t need;

    if (m->failed) {
        return 0;
    }
    m->tests = 0;
    for (i = 0; i < pat->nsubs; i++) {
        if (pat->subs[i].nf > maxf) {
            maxf = pat->subs[i].nf;
        }
    }
    need = (size_t)maxf * (size_t)m->maxmem + 1;
    if (need > AD_MEM_INLINE) {
        sofar = malloc(sizeof(ad_mem_t) * need);
    }
    if (maxf + 1 > AD_MEM_INLINE) {
        start = malloc(sizeof(int) * (size_t)(maxf + 1));
    }
    m->failed |= !sofar || !start;
    for (i = 0; i < pat->nsubs && !r && !m->failed; i++) {
        r = find_hits(m, &pat->subs[i], start) && sub_match(m, &pat->subs[i], start, 0, sofar, 0);
    }
    if (sofar != sofar0) {
        free(sofar);
    }
    if (start != start0) {
        free(start);
    }
    return r && !m->failed;
}

int ad_pattern_match(const ad_pattern_t *pat, const json_t *event)
{
    ad_occs_t o;
    mctx m;
    int r = 0;

    if (!pat || !json_is_object(event)) {
        return 0;
    }
    ad_occs_init(&o);
    if (ad_occs_reset(&o, pat->npaths)) {
        m.pat = pat;
        m.o = &o;
        walk_object(&m, event, 0, 0);
        r = o.failed ? -1 : ad_pattern_eval(pat, &o);
        r = o.failed ? -1 : r;
    }
    else {
        r = -1;
    }
    ad_occs_free(&o);
    return r;
}

/* ------------------------------------------------------------------ */
/* What ad_match needs of a compiled pattern                           */
/* ------------------------------------------------------------------ */

static void names_walk(apr_pool_t *p, const ad_pattern_t *pat, int node, char *buf, size_t len,
                       size_t cap, const char **names)
{
    const ad_tnode *n = &pat->nodes[node];
    int e;

    if (n->path >= 0) {
        names[n->path] = apr_pstrmemdup(p, buf, len);
    }
    for (e = n->edge0; e < n->edge0 + n->nedge && len < cap; e++) {
        buf[len] = (char)pat->edges[e].byte;
        names_walk(p, pat, pat->edges[e].to, buf, len + 1, cap, names);
    }
}

int ad_pattern_path_names(apr_pool_t *p, const ad_pattern_t *pat, const char ***names)
{
    /* a name is at most as long as the trie has nodes */
    size_t cap = (size_t)pat->nnodes + 1;

    *names = apr_pcalloc(p, sizeof(char *) * (size_t)(pat->npaths + 1));
    if (pat->npaths) {
        names_walk(p, pat, 0, apr_palloc(p, cap), 0, cap, *names);
    }
    return pat->npaths;
}

ad_pattern_t *ad_pattern_remap(apr_pool_t *p, const ad_pattern_t *pat, const int *map)
{
    ad_pattern_t *cp = apr_pmemdup(p, pat, sizeof(*pat));
    int i, j;

    cp->subs = apr_pmemdup(p, pat->subs, sizeof(ad_subrule) * (size_t)pat->nsubs);
    for (i = 0; i < pat->nsubs; i++) {
        cp->subs[i].f = apr_pmemdup(p, pat->subs[i].f, sizeof(ad_field) * (size_t)pat->subs[i].nf);
        for (j = 0; j < pat->subs[i].nf; j++) {
            cp->subs[i].f[j].path = map[pat->subs[i].f[j].path];
        }
    }
    /* the trie speaks the original indexes: no walks on the copy */
    cp->nodes = NULL;
    cp->edges = NULL;
    cp->nnodes = 0;
    return cp;
}

/* A field every match needs a string leaf equal to one of its values for:
 * all its matchers are exact strings and it has no {"exists": false}. */
static int field_is_exact(const ad_field *f)
{
    int i;

    if (f->absent || f->nm == 0) {
        return 0;
    }
    for (i = 0; i < f->nm; i++) {
        if (f->m[i].kind != MK_EXACT) {
            return 0;
        }
    }
    return 1;
}

static void anchor_of(apr_pool_t *p, const ad_subrule *sr, ad_anchor_t *a)
{
    const ad_field *f = NULL;
    const char **vals;
    size_t *lens;
    int i;

    a->kind = AD_ANCHOR_ALWAYS;
    a->path = -1;
    for (i = 0; i < sr->nf; i++) {
        if (field_is_exact(&sr->f[i]) && (!f || sr->f[i].nm < f->nm)) {
            f = &sr->f[i];
        }
        else if (!sr->f[i].absent && a->kind == AD_ANCHOR_ALWAYS) {
            a->kind = AD_ANCHOR_PATH;
            a->path = sr->f[i].path;
        }
    }
    if (!f) {
        return;
    }
    a->kind = AD_ANCHOR_EXACT;
    a->path = f->path;
    a->nvals = f->nm;
    a->vals = vals = apr_palloc(p, sizeof(char *) * (size_t)f->nm);
    a->lens = lens = apr_palloc(p, sizeof(size_t) * (size_t)f->nm);
    for (i = 0; i < f->nm; i++) {
        vals[i] = f->m[i].str.s;
        lens[i] = f->m[i].str.n;
    }
}

int ad_pattern_anchors(apr_pool_t *p, const ad_pattern_t *pat, ad_anchor_t **out)
{
    int i;

    *out = apr_pcalloc(p, sizeof(ad_anchor_t) * (size_t)(pat->nsubs + 1));
    for (i = 0; i < pat->nsubs; i++) {
        anchor_of(p, &pat->subs[i], &(*out)[i]);
    }
    return pat->nsubs;
}

int ad_pattern_event_is_valid(const json_t *event)
{
    static const char *const required[] = {"id",     "account",     "source", "time",
                                           "region", "detail-type", NULL};
    int i;

    if (!json_is_object(event)) {
        return 0;
    }
    for (i = 0; required[i]; i++) {
        if (!json_object_get(event, required[i])) {
            return 0;
        }
    }
    return 1;
}

ad_pattern_t *ad_pattern_compile(apr_pool_t *p, const char *json, size_t len, const char **reason)
{
    apr_pool_t *tp;
    cc_t *c;
    ad_pattern_t *pat;

    if (reason) {
        *reason = NULL;
    }
    if (apr_pool_create(&tp, p) != APR_SUCCESS) {
        if (reason) {
            *reason = "Out of memory";
        }
        return NULL;
    }
    c = apr_pcalloc(tp, sizeof(*c));
    c->p = p;
    c->tp = tp;
    c->lx.s = json ? json : "";
    c->lx.n = json ? len : 0;
    c->lx.line = 1;
    c->rules = apr_pcalloc(tp, sizeof(rlist));
    if (setjmp(c->jb)) {
        if (reason) {
            *reason = c->reason;
        }
        apr_pool_destroy(tp);
        return NULL;
    }
    compile_document(c);
    pat = finalize(c);
    apr_pool_destroy(tp);
    return pat;
}

/* ------------------------------------------------------------------ */
/* Wildcard complexity (event-ruler's MachineComplexityEvaluator)      */
/* ------------------------------------------------------------------ */

/* The NFA event-ruler builds for the wildcard values of one field: each
 * value is '"' + value + '"' as bytes and stars (-1); a state is a position
 * in one value. One anything-but wildcard list is one pattern, so values of
 * it sharing a prefix share states; separate wildcard matchers never do. */
typedef struct {
    int *ch; /* bytes, -1 for a star */
    int len, base, obj;
} cx_member;

typedef struct {
    cx_member *mem;
    int nmem, npos, words;
    int *canon; /* position -> first position with that prefix */
    int *owner; /* position -> member */
} cx_nfa;

static void cx_add_value(cc_t *c, cx_nfa *a, const ad_str *v, int obj)
{
    cx_member *m = &a->mem[a->nmem++];
    size_t i;
    int n = 0;

    m->ch = apr_palloc(c->tp, sizeof(int) * (v->n + 2));
    m->ch[n++] = '"';
    for (i = 0; i < v->n; i++) {
        if (v->s[i] == '*') {
            m->ch[n++] = -1;
        }
        else {
            if (v->s[i] == '\\') {
                i++;
            }
            m->ch[n++] = (unsigned char)v->s[i];
        }
    }
    m->ch[n++] = '"';
    m->len = n;
    m->obj = obj;
    m->base = a->npos;
    a->npos += n + 1;
}

static int cx_same_prefix(const cx_member *x, const cx_member *y, int j)
{
    int i;

    if (x->obj != y->obj || x->len < j || y->len < j) {
        return 0;
    }
    for (i = 0; i < j; i++) {
        if (x->ch[i] != y->ch[i]) {
            return 0;
        }
    }
    return 1;
}

static void cx_build(cc_t *c, cx_nfa *a, const ad_field *f)
{
    int i, k, obj = 0, j, q;

    for (i = 0; i < f->nm; i++) {
        if (f->m[i].kind == MK_WILDCARD) {
            a->nmem++;
        }
        else if (f->m[i].kind == MK_AB_WILDCARD) {
            a->nmem += f->m[i].nset;
        }
    }
    a->mem = apr_pcalloc(c->tp, sizeof(cx_member) * (size_t)(a->nmem + 1));
    a->nmem = 0;
    for (i = 0; i < f->nm; i++) {
        if (f->m[i].kind == MK_WILDCARD) {
            cx_add_value(c, a, &f->m[i].str, obj++);
        }
        else if (f->m[i].kind == MK_AB_WILDCARD) {
            for (k = 0; k < f->m[i].nset; k++) {
                cx_add_value(c, a, &f->m[i].set[k], obj);
            }
            obj++;
        }
    }
    a->words = (a->npos + 63) / 64;
    a->canon = apr_palloc(c->tp, sizeof(int) * (size_t)(a->npos + 1));
    a->owner = apr_palloc(c->tp, sizeof(int) * (size_t)(a->npos + 1));
    for (k = 0; k < a->nmem; k++) {
        for (j = 0; j <= a->mem[k].len; j++) {
            int pos = a->mem[k].base + j;
            a->owner[pos] = k;
            a->canon[pos] = pos;
            for (q = 0; q < k; q++) {
                if (cx_same_prefix(&a->mem[q], &a->mem[k], j)) {
                    a->canon[pos] = a->mem[q].base + j;
                    break;
                }
            }
        }
    }
}

#define BIT_SET(b, i) ((b)[(i) / 64] |= (uint64_t)1 << ((i) % 64))
#define BIT_GET(b, i) (((b)[(i) / 64] >> ((i) % 64)) & 1)

/* The next set position of s at or after *w's word, or -1: the sets are
 * sparse, and scanning every position of a long wildcard for each step
 * made one 4 KB pattern take seconds to judge. */
static int cx_next(const uint64_t *s, int words, int *w, uint64_t *bits)
{
    while (!*bits) {
        if (++*w >= words) {
            return -1;
        }
        *bits = s[*w];
    }
    {
        int pos = *w * 64 + __builtin_ctzll(*bits);
        *bits &= *bits - 1;
        return pos;
    }
}

#define CX_EACH(a, s, pos, w, bits)                                                                \
    for ((w) = 0, (bits) = (s)[0]; ((pos) = cx_next((s), (a)->words, &(w), &(bits))) >= 0;)

/* The states reached from set s on byte b (b < 0: a byte no value has). */
static int cx_step(const cx_nfa *a, const uint64_t *s, int b, uint64_t *t)
{
    int j, any = 0, pos, w;
    uint64_t bits;
    const cx_member *m;

    memset(t, 0, sizeof(uint64_t) * (size_t)a->words);
    CX_EACH(a, s, pos, w, bits)
    {
        m = &a->mem[a->owner[pos]];
        j = pos - m->base;
        if (j > 0 && m->ch[j - 1] < 0) {
            BIT_SET(t, m->base + j);
            any = 1;
        }
        if (j >= m->len) {
            continue;
        }
        if (m->ch[j] < 0) {
            BIT_SET(t, m->base + j + 1);
            if (b >= 0 && m->ch[j + 1] == b) {
                BIT_SET(t, m->base + j + 2);
            }
            any = 1;
        }
        else if (m->ch[j] == b) {
            BIT_SET(t, m->base + j + 1);
            any = 1;
        }
    }
    return any;
}

/* The bytes on which a step from s can differ from a step on a byte no
 * value has: those an active position reads, directly or after a star.
 * Any other byte reaches what b = -1 reaches. */
static void cx_bytes(const cx_nfa *a, const uint64_t *s, unsigned char *cand)
{
    int j, pos, w;
    uint64_t bits;
    const cx_member *m;

    memset(cand, 0, 256);
    CX_EACH(a, s, pos, w, bits)
    {
        m = &a->mem[a->owner[pos]];
        j = pos - m->base;
        if (j < m->len) { /* a star reads what follows it */
            int b = m->ch[j] >= 0 ? m->ch[j] : m->ch[j + 1];
            if (b >= 0) {
                cand[b] = 1;
            }
        }
    }
}

/* Distinct states of a set, plus the wildcard state each position before a
 * star implies (a value matching "foo" also matches "foo*"). */
static int cx_size(const cx_nfa *a, const uint64_t *t, uint64_t *seen)
{
    int pos, n = 0, w, wi;
    uint64_t bits;
    const cx_member *m;

    memset(seen, 0, sizeof(uint64_t) * (size_t)a->words);
    CX_EACH(a, t, pos, wi, bits)
    {
        if (!BIT_GET(seen, a->canon[pos])) {
            BIT_SET(seen, a->canon[pos]);
            n++;
        }
    }
    CX_EACH(a, t, pos, wi, bits)
    {
        m = &a->mem[a->owner[pos]];
        if (pos - m->base < m->len && m->ch[pos - m->base] < 0) {
            w = a->canon[pos + 1];
            if (!BIT_GET(seen, w)) {
                BIT_SET(seen, w);
                n++;
            }
        }
    }
    return n;
}

#define CX_MAX_SETS 1024

/* Largest state set any input can reach (breadth-first over subsets). */
static int field_complexity(cc_t *c, const ad_field *f)
{
    cx_nfa a = {0};
    uint64_t *sets, *t, *seen;
    int nsets = 1, head = 0, best = 0, i, k, b, size, used[257], nb = 0;
    unsigned char cand[256];
    size_t w;

    cx_build(c, &a, f);
    if (!a.nmem) {
        return 0;
    }
    w = (size_t)a.words;
    sets = apr_pcalloc(c->tp, sizeof(uint64_t) * w * (CX_MAX_SETS + 2));
    t = sets + w * (CX_MAX_SETS + 0);
    seen = sets + w * (CX_MAX_SETS + 1);
    memset(used, 0, sizeof(used));
    for (k = 0; k < a.nmem; k++) {
        for (i = 0; i < a.mem[k].len; i++) {
            if (a.mem[k].ch[i] >= 0 && !used[a.mem[k].ch[i]]) {
                used[a.mem[k].ch[i]] = 1;
                nb++;
            }
        }
        BIT_SET(sets, a.mem[k].base);
    }
    while (head < nsets && best <= AD_MAX_COMPLEXITY) {
        /* in ascending order, b = -1 first, as over every byte: the sets
         * other bytes reach are b = -1's, found first */
        cx_bytes(&a, sets + w * (size_t)head, cand);
        for (b = -1; b < 256; b++) {
            if (b >= 0 && (!used[b] || !cand[b])) {
                continue;
            }
            if (!cx_step(&a, sets + w * (size_t)head, b, t)) {
                continue;
            }
            size = cx_size(&a, t, seen);
            best = size > best ? size : best;
            for (i = 0; i < nsets; i++) {
                if (memcmp(sets + w * (size_t)i, t, w * sizeof(uint64_t)) == 0) {
                    break;
                }
            }
            if (i == nsets && nsets < CX_MAX_SETS) {
                memcpy(sets + w * (size_t)nsets++, t, w * sizeof(uint64_t));
            }
        }
        head++;
    }
    (void)nb;
    return best;
}

/* The largest complexity of any field holding wildcards. */
static int rule_complexity(cc_t *c, const ad_pattern_t *pat)
{
    int i, j, k, cx, best = 0;
    const ad_field *f;
    apr_hash_t *done = apr_hash_make(c->tp);

    for (i = 0; i < pat->nsubs; i++) {
        for (j = 0; j < pat->subs[i].nf; j++) {
            f = &pat->subs[i].f[j];
            for (k = 0; k < f->nm; k++) {
                if (f->m[k].kind == MK_WILDCARD || f->m[k].kind == MK_AB_WILDCARD) {
                    break;
                }
            }
            /* sub-rules from one $or share their matcher lists */
            if (k == f->nm || apr_hash_get(done, &f->m, sizeof(f->m))) {
                continue;
            }
            apr_hash_set(done, apr_pmemdup(c->tp, &f->m, sizeof(f->m)), sizeof(f->m), "");
            cx = field_complexity(c, f);
            best = cx > best ? cx : best;
        }
    }
    return best;
}
