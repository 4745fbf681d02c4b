/* EventBridge scheduled-rule expressions.
 *
 * The grammar, ranges and wildcards are those of the EventBridge user guide
 * ("Cron expressions reference") and of the expressions recorded against AWS
 * in LocalStack's snapshots. Where AWS says nothing, behaviour follows
 * Quartz's CronExpression, which EventBridge's syntax is taken from (the
 * same fields, '?', L, W and #, 1 = Sunday); where Quartz accepts more than
 * the AWS documentation lists (L-n, LW, '/' in day-of-week, several W days),
 * the expression is refused: an operator hears about it at config time
 * instead of finding out later that the rule fires on other days than on
 * AWS.
 *
 * Every cron field compiles to a bitset. The next fire time is found field
 * by field from the year down, resetting the smaller fields whenever a
 * larger one moves on, so a search costs about one step per month at worst
 * (some 2800 over the 230 years for a schedule that never fires again)
 * instead of one per minute. Dates come from days-from-civil arithmetic,
 * not libc, so results never depend on the process time zone or on the
 * range of time_t. */
#include "ad_schedule.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <string.h>

#define MAX_EXPR_LEN 256 /* PutRule's ScheduleExpression limit */
#define YEAR_MIN     1970
#define YEAR_MAX     2199
#define RATE_MAX     2147483647 /* a Java int; AWS documents no limit */
#define USEC_PER_MIN (APR_INT64_C(60) * APR_USEC_PER_SEC)
#define MINS_PER_DAY 1440

/* Comfortably above the worst case: a step per month of the 230 years,
 * plus a few for the partial day and hour the search starts in. */
#define MAX_STEPS 16384

enum { F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW, F_YEAR, F_COUNT };

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                          "AUG", "SEP", "OCT", "NOV", "DEC", NULL};

static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

typedef struct {
    const char *name;
    int min, max;
    const char *const *names; /* names of min, min + 1, ... */
    int slash;                /* AWS lists '/' for every field but dow */
} field_def;

static const field_def fields[F_COUNT] = {
    {"minutes", 0, 59, NULL, 1},         {"hours", 0, 23, NULL, 1},
    {"day-of-month", 1, 31, NULL, 1},    {"month", 1, 12, month_names, 1},
    {"day-of-week", 1, 7, dow_names, 0}, {"year", YEAR_MIN, YEAR_MAX, NULL, 1},
};

/* Bit (value - field min); 256 bits hold the 230 years. */
typedef struct {
    apr_uint64_t w[4];
} bitset;

enum dom_kind { DOM_ANY, DOM_SET, DOM_LAST, DOM_WEEKDAY };
enum dow_kind { DOW_ANY, DOW_SET, DOW_LAST, DOW_NTH };

struct ad_schedule_t {
    int is_rate;
    apr_int64_t period; /* rate(): seconds */
    bitset f[F_COUNT];  /* cron(): the values each field allows */
    enum dom_kind dom;
    enum dow_kind dow;
    int dom_day; /* DOM_WEEKDAY: n of nW */
    int dow_day; /* DOW_LAST, DOW_NTH: 1 = Sunday */
    int dow_nth; /* DOW_NTH: n of d#n */
};

typedef struct {
    int y, mo, d, h, mi;
} civil;

/* ------------------------------------------------------------------ */
/* Bitsets                                                             */
/* ------------------------------------------------------------------ */

static void bits_set(bitset *b, const field_def *fd, int v)
{
    int i = v - fd->min;

    b->w[i >> 6] |= APR_UINT64_C(1) << (i & 63);
}

static int bits_has(const bitset *b, const field_def *fd, int v)
{
    int i = v - fd->min;

    return (int)((b->w[i >> 6] >> (i & 63)) & 1);
}

/* The smallest allowed value >= from, or -1. */
static int bits_next(const bitset *b, const field_def *fd, int from)
{
    int v;

    for (v = from < fd->min ? fd->min : from; v <= fd->max; v++) {
        if (bits_has(b, fd, v)) {
            return v;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* Each parser returns NULL on success or the operator-facing reason.  */
/* ------------------------------------------------------------------ */

/* Names compare in any case: Quartz upper-cases the whole expression and
 * the EventBridge console accepts "mOn". */
static int name_is(const char *s, const char *name)
{
    int i;

    for (i = 0; i < 3; i++) {
        if (apr_toupper((unsigned char)s[i]) != name[i]) {
            return 0;
        }
    }
    return 1;
}

/* Up to 4 digits, leading zeros allowed as in Quartz; *len gets the count
 * (0 when there is no digit, 5 when there are too many). */
static int read_number(const char **sp, int *len)
{
    const char *s = *sp;
    int n = 0, digits = 0;

    while (apr_isdigit((unsigned char)*s)) {
        if (digits < 5) {
            n = n * 10 + (*s - '0');
        }
        digits++;
        s++;
    }
    *sp = s;
    *len = digits > 4 ? 5 : digits;
    return n;
}

/* A number or, for month and day-of-week, a three-letter name. */
static const char *parse_value(apr_pool_t *p, const field_def *fd, const char **sp, int *v)
{
    const char *start = *sp, *s = *sp;
    int n, len, i;

    n = read_number(&s, &len);
    if (len == 0 && fd->names) {
        for (i = 0; fd->names[i]; i++) {
            if (name_is(s, fd->names[i])) {
                n = fd->min + i;
                s += 3;
                len = 3;
                break;
            }
        }
    }
    if (len == 0) {
        return apr_psprintf(p, "%s: expected a value at \"%s\"", fd->name, start);
    }
    if (len > 4 || n < fd->min || n > fd->max) {
        return apr_psprintf(p, "%s: \"%.*s\" is out of range %d-%d", fd->name, (int)(s - start),
                            start, fd->min, fd->max);
    }
    *sp = s;
    *v = n;
    return NULL;
}

/* Quartz's bound: an increment may not exceed the field's largest value. */
static const char *parse_step(apr_pool_t *p, const field_def *fd, const char **sp, int *step)
{
    int len, n = read_number(sp, &len);

    if (len == 0 || len > 4 || n < 1 || n > fd->max) {
        return apr_psprintf(p, "%s: the increment after '/' must be 1-%d", fd->name, fd->max);
    }
    *step = n;
    return NULL;
}

/* One item of a list: "*", "* / n", "a", "a-b", "a / n" or "a-b / n"
 * (without the spaces). A reversed range wraps round the field as in Quartz
 * ("22-2" hours is 22,23,0,1,2), except for years, which Quartz refuses. */
static const char *parse_item(apr_pool_t *p, const field_def *fd, const char *item, bitset *b)
{
    const char *s = item, *why;
    int lo, hi, step = 1, span = fd->max - fd->min + 1, i;

    if (*s == '*') {
        lo = fd->min;
        hi = fd->max;
        s++;
    }
    else {
        if ((why = parse_value(p, fd, &s, &lo)) != NULL) {
            return why;
        }
        hi = *s == '/' ? fd->max : lo;
        if (*s == '-') {
            s++;
            if ((why = parse_value(p, fd, &s, &hi)) != NULL) {
                return why;
            }
        }
    }
    if (*s == '/') {
        if (!fd->slash) {
            return apr_psprintf(p, "%s: '/' is not allowed", fd->name);
        }
        s++;
        if ((why = parse_step(p, fd, &s, &step)) != NULL) {
            return why;
        }
    }
    if (*s) {
        return apr_psprintf(p, "%s: unexpected \"%s\" in \"%s\"", fd->name, s, item);
    }
    if (hi < lo) {
        if (fd == &fields[F_YEAR]) {
            return apr_psprintf(p, "year: range %s ends before it starts", item);
        }
        hi += span;
    }
    for (i = lo; i <= hi; i += step) {
        bits_set(b, fd, fd->min + (i - fd->min) % span);
    }
    return NULL;
}

/* Comma-separated items; an empty item ("1,,2", "1,") is an error, which
 * is why this does not use apr_strtok. */
static const char *parse_list(apr_pool_t *p, const field_def *fd, const char *text, bitset *b)
{
    const char *why, *comma;
    const char *item;

    for (;;) {
        comma = strchr(text, ',');
        item = comma ? apr_pstrmemdup(p, text, comma - text) : text;
        if ((why = parse_item(p, fd, item, b)) != NULL) {
            return why;
        }
        if (!comma) {
            return NULL;
        }
        text = comma + 1;
    }
}

static int is_letter(const char *s, char c)
{
    return s[0] && !s[1] && apr_toupper((unsigned char)s[0]) == c;
}

/* "?", "L" (last day), "nW" (weekday nearest day n) or a list. L-n and LW
 * are Quartz extensions the AWS documentation does not list. */
static const char *parse_dom(apr_pool_t *p, ad_schedule_t *s, const char *text)
{
    const field_def *fd = &fields[F_DOM];
    size_t n = strlen(text);
    const char *q = text, *why;

    if (strcmp(text, "?") == 0) {
        s->dom = DOM_ANY;
        return NULL;
    }
    if (is_letter(text, 'L')) {
        s->dom = DOM_LAST;
        return NULL;
    }
    if (n > 1 && apr_toupper((unsigned char)text[n - 1]) == 'W' &&
        apr_isdigit((unsigned char)text[0])) {
        if ((why = parse_value(p, fd, &q, &s->dom_day)) != NULL) {
            return why;
        }
        if (q != text + n - 1) {
            return "day-of-month: W takes one day, as in 3W";
        }
        s->dom = DOM_WEEKDAY;
        return NULL;
    }
    if (strpbrk(text, "LlWw")) {
        return apr_psprintf(p,
                            "day-of-month: \"%s\" is not supported; "
                            "use L alone or one day with W, as in 3W",
                            text);
    }
    s->dom = DOM_SET;
    return parse_list(p, fd, text, &s->f[F_DOM]);
}

/* "d#n" (n-th weekday d of the month): AWS allows only one such
 * expression, so no list. */
static const char *parse_nth(apr_pool_t *p, ad_schedule_t *s, const char *text, const char *hash)
{
    const char *q = text, *why;

    if (strchr(text, ',') || strchr(hash + 1, '#')) {
        return "day-of-week: only one # expression is allowed";
    }
    if ((why = parse_value(p, &fields[F_DOW], &q, &s->dow_day)) != NULL) {
        return why;
    }
    if (q != hash || hash[1] < '1' || hash[1] > '5' || hash[2]) {
        return "day-of-week: # takes one day and a week 1-5, as in 3#2";
    }
    s->dow_nth = hash[1] - '0';
    s->dow = DOW_NTH;
    return NULL;
}

/* "?", "L" (Saturday, the last day of the week, as in Quartz), "dL" (last
 * weekday d of the month), "d#n" or a list. */
static const char *parse_dow(apr_pool_t *p, ad_schedule_t *s, const char *text)
{
    const field_def *fd = &fields[F_DOW];
    size_t n = strlen(text);
    const char *q = text, *hash = strchr(text, '#'), *why;

    if (strcmp(text, "?") == 0) {
        s->dow = DOW_ANY;
        return NULL;
    }
    if (is_letter(text, 'L')) {
        s->dow = DOW_SET;
        bits_set(&s->f[F_DOW], fd, 7);
        return NULL;
    }
    if (hash) {
        return parse_nth(p, s, text, hash);
    }
    if (n > 1 && apr_toupper((unsigned char)text[n - 1]) == 'L') {
        if ((why = parse_value(p, fd, &q, &s->dow_day)) != NULL) {
            return why;
        }
        if (q != text + n - 1) {
            return "day-of-week: L takes one day, as in 6L";
        }
        s->dow = DOW_LAST;
        return NULL;
    }
    s->dow = DOW_SET;
    return parse_list(p, fd, text, &s->f[F_DOW]);
}

/* Six fields separated by exactly one space each: AWS refuses the spaces
 * around the value of rate() and nothing suggests cron() is laxer. */
static const char *split_fields(apr_pool_t *p, char *body, char **f)
{
    int n = 1, i;
    char *q;

    for (q = body; *q; q++) {
        n += *q == ' ';
    }
    if (n != F_COUNT) {
        return apr_psprintf(p,
                            "cron() takes 6 fields separated by spaces, "
                            "not %d",
                            n);
    }
    for (i = 0, q = body; i < F_COUNT; i++) {
        f[i] = q;
        q += strcspn(q, " ");
        if (*q) {
            *q++ = '\0';
        }
        if (!*f[i]) {
            return "cron() fields must be separated by a single space";
        }
    }
    return NULL;
}

static const char *parse_cron(apr_pool_t *p, ad_schedule_t *s, const char *body, size_t len)
{
    static const int plain[] = {F_MIN, F_HOUR, F_MONTH, F_YEAR};
    char *f[F_COUNT];
    const char *why;
    int i;

    if ((why = split_fields(p, apr_pstrmemdup(p, body, len), f)) != NULL) {
        return why;
    }
    for (i = 0; i < (int)(sizeof(plain) / sizeof(plain[0])); i++) {
        why = parse_list(p, &fields[plain[i]], f[plain[i]], &s->f[plain[i]]);
        if (why) {
            return why;
        }
    }
    if ((why = parse_dom(p, s, f[F_DOM])) != NULL || (why = parse_dow(p, s, f[F_DOW])) != NULL) {
        return why;
    }
    if ((s->dom == DOM_ANY) == (s->dow == DOW_ANY)) {
        return "exactly one of day-of-month and day-of-week must be ?";
    }
    return NULL;
}

/* "value unit": a positive integer, one space, and a unit that is singular
 * exactly when the value is 1. Units are case-sensitive (AWS refuses
 * "rate(10 MINUTES)"). */
static const char *parse_rate(apr_pool_t *p, ad_schedule_t *s, const char *body, size_t len)
{
    static const struct {
        const char *one, *many;
        apr_int64_t secs;
    } units[] = {
        {"minute", "minutes", 60},
        {"hour", "hours", 3600},
        {"day", "days", 86400},
    };
    const char *q = body, *end = body + len;
    const char *unit;
    apr_int64_t v = 0;
    size_t i;

    if (q == end || !apr_isdigit((unsigned char)*q)) {
        return "rate() takes a positive integer and a unit, "
               "as in rate(5 minutes)";
    }
    while (q < end && apr_isdigit((unsigned char)*q)) {
        v = v * 10 + (*q++ - '0');
        if (v > RATE_MAX) {
            return apr_psprintf(p, "rate(): the value must be at most %d", RATE_MAX);
        }
    }
    if (v == 0) {
        return "rate(): the value must be positive";
    }
    if (q == end || *q != ' ') {
        return "rate() takes a positive integer and a unit, "
               "as in rate(5 minutes)";
    }
    unit = apr_pstrmemdup(p, q + 1, end - q - 1);
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        int singular = strcmp(unit, units[i].one) == 0;

        if (!singular && strcmp(unit, units[i].many) != 0) {
            continue;
        }
        if (singular != (v == 1)) {
            return apr_psprintf(p, "rate(): use \"%s\" for a value %s",
                                v == 1 ? units[i].one : units[i].many,
                                v == 1 ? "of 1" : "other than 1");
        }
        s->period = v * units[i].secs;
        return NULL;
    }
    return "rate(): the unit must be minute(s), hour(s) or day(s)";
}

static const char *parse_expr(apr_pool_t *p, ad_schedule_t *s, const char *expr)
{
    size_t len = expr ? strlen(expr) : 0;

    if (len == 0) {
        return "the expression is empty";
    }
    if (len > MAX_EXPR_LEN) {
        return apr_psprintf(p, "the expression is longer than %d characters", MAX_EXPR_LEN);
    }
    if (len >= 6 && expr[len - 1] == ')') {
        if (strncmp(expr, "rate(", 5) == 0) {
            s->is_rate = 1;
            return parse_rate(p, s, expr + 5, len - 6);
        }
        if (strncmp(expr, "cron(", 5) == 0) {
            return parse_cron(p, s, expr + 5, len - 6);
        }
    }
    return "the expression must be rate(value unit) or "
           "cron(minutes hours day-of-month month day-of-week year)";
}

ad_schedule_t *ad_schedule_parse(apr_pool_t *p, const char *expr, const char **err,
                                 const char **detail)
{
    ad_schedule_t *s = apr_pcalloc(p, sizeof(*s));
    const char *why = parse_expr(p, s, expr);

    if (why) {
        if (err) {
            *err = AD_SCHEDULE_ERR_INVALID;
        }
        if (detail) {
            *detail = why;
        }
        return NULL;
    }
    return s;
}

int ad_schedule_is_rate(const ad_schedule_t *s)
{
    return s ? s->is_rate : 0;
}

/* ------------------------------------------------------------------ */
/* Calendar                                                            */
/* ------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static apr_int64_t days_from_civil(int y, int m, int d)
{
    apr_int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse, for days >= 0 (H. Hinnant's civil_from_days). */
static void civil_from_days(apr_int64_t z, civil *t)
{
    apr_int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    t->d = (int)(doy - (153 * mp + 2) / 5 + 1);
    t->mo = (int)(mp < 10 ? mp + 3 : mp - 9);
    t->y = (int)(yoe + era * 400 + (t->mo <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return dim[m - 1] + (m == 2 && leap);
}

/* 1 = Sunday ... 7 = Saturday, as cron counts; 1970-01-01 was a Thursday. */
static int weekday(int y, int m, int d)
{
    apr_int64_t z = days_from_civil(y, m, d);

    return (int)((z % 7 + 11) % 7) + 1;
}

/* Quartz's nW: the weekday nearest day n without leaving the month. A
 * Saturday moves back to Friday unless it is the 1st (then Monday the 3rd),
 * a Sunday on to Monday unless it is the last day (then Friday). A month
 * without day n has no match, as for a plain n. */
static int nearest_weekday(int y, int m, int n, int dim)
{
    int wd;

    if (n > dim) {
        return -1;
    }
    wd = weekday(y, m, n);
    if (wd == 7) {
        return n == 1 ? 3 : n - 1;
    }
    if (wd == 1) {
        return n == dim ? n - 2 : n + 1;
    }
    return n;
}

static int dow_allows(const ad_schedule_t *s, int d, int wd, int dim)
{
    switch (s->dow) {
    case DOW_LAST:
        return wd == s->dow_day && d + 7 > dim;
    case DOW_NTH:
        return wd == s->dow_day && (d + 6) / 7 == s->dow_nth;
    default:
        return bits_has(&s->f[F_DOW], &fields[F_DOW], wd);
    }
}

/* The first day >= from of the month that the day fields allow, or -1. */
static int next_day(const ad_schedule_t *s, int y, int m, int from)
{
    int dim = days_in_month(y, m), d, wd;

    switch (s->dom) {
    case DOM_SET:
        d = bits_next(&s->f[F_DOM], &fields[F_DOM], from);
        return d <= dim ? d : -1;
    case DOM_LAST:
        return from <= dim ? dim : -1;
    case DOM_WEEKDAY:
        d = nearest_weekday(y, m, s->dom_day, dim);
        return d >= from ? d : -1;
    case DOM_ANY:
        break;
    }
    if (from > dim) {
        return -1;
    }
    wd = weekday(y, m, from);
    for (d = from; d <= dim; d++, wd = wd % 7 + 1) {
        if (dow_allows(s, d, wd, dim)) {
            return d;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Next fire time                                                      */
/* ------------------------------------------------------------------ */

/* The first whole minute strictly after `after`. The epoch itself is
 * never a candidate: 0 is how ad_schedule_next() says "none". */
static void start_minute(apr_time_t after, civil *t)
{
    apr_int64_t mins, days;

    mins = (after < 0 ? 0 : after / USEC_PER_MIN) + 1;
    days = mins / MINS_PER_DAY;
    civil_from_days(days, t);
    mins -= days * MINS_PER_DAY;
    t->h = (int)(mins / 60);
    t->mi = (int)(mins % 60);
}

static apr_time_t civil_to_time(const civil *t)
{
    apr_int64_t days = days_from_civil(t->y, t->mo, t->d);

    return ((days * MINS_PER_DAY) + t->h * 60 + t->mi) * USEC_PER_MIN;
}

static void next_month(civil *t)
{
    if (++t->mo > 12) {
        t->mo = 1;
        t->y++;
    }
    t->d = 1;
    t->h = t->mi = 0;
}

/* Settle the fields from the largest down; when one has no allowed value
 * left, carry into the next larger unit and start again from there. */
static apr_time_t cron_next(const ad_schedule_t *s, apr_time_t after)
{
    civil t;
    int v, steps;

    start_minute(after, &t);
    for (steps = 0; steps < MAX_STEPS; steps++) {
        if ((v = bits_next(&s->f[F_YEAR], &fields[F_YEAR], t.y)) < 0) {
            return 0;
        }
        if (v != t.y) {
            t.y = v;
            t.mo = t.d = 1;
            t.h = t.mi = 0;
        }
        if ((v = bits_next(&s->f[F_MONTH], &fields[F_MONTH], t.mo)) < 0) {
            t.mo = 12;
            next_month(&t);
            continue;
        }
        if (v != t.mo) {
            t.mo = v;
            t.d = 1;
            t.h = t.mi = 0;
        }
        if ((v = next_day(s, t.y, t.mo, t.d)) < 0) {
            next_month(&t);
            continue;
        }
        if (v != t.d) {
            t.d = v;
            t.h = t.mi = 0;
        }
        if ((v = bits_next(&s->f[F_HOUR], &fields[F_HOUR], t.h)) < 0) {
            t.d++;
            t.h = t.mi = 0;
            continue;
        }
        if (v != t.h) {
            t.h = v;
            t.mi = 0;
        }
        if ((v = bits_next(&s->f[F_MIN], &fields[F_MIN], t.mi)) < 0) {
            t.h++;
            t.mi = 0;
            continue;
        }
        t.mi = v;
        return civil_to_time(&t);
    }
    return 0;
}

/* anchor + k * period for the least k >= 1 that is after `after`, in
 * unsigned arithmetic so that no k or distance can overflow unnoticed. */
static apr_time_t rate_next(const ad_schedule_t *s, apr_time_t anchor, apr_time_t after)
{
    apr_uint64_t period, k, room;
    apr_int64_t rem = anchor % USEC_PER_MIN;

    anchor -= rem < 0 ? rem + USEC_PER_MIN : rem;
    if (s->period > APR_INT64_MAX / APR_USEC_PER_SEC) {
        return 0;
    }
    period = (apr_uint64_t)s->period * APR_USEC_PER_SEC;
    k = after < anchor ? 1 : ((apr_uint64_t)after - (apr_uint64_t)anchor) / period + 1;
    room = (apr_uint64_t)APR_INT64_MAX - (apr_uint64_t)anchor;
    if (k > room / period) {
        return 0;
    }
    return (apr_time_t)((apr_uint64_t)anchor + k * period);
}

apr_time_t ad_schedule_next(const ad_schedule_t *s, apr_time_t anchor, apr_time_t after)
{
    if (!s) {
        return 0;
    }
    return s->is_rate ? rate_next(s, anchor, after) : cron_next(s, after);
}
