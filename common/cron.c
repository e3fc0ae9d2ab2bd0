/* Cron expressions and intervals: parsing and the next fire time. See
 * cron.h for the rules, daylight saving time included. */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"

#define SEARCH_YEARS 10

typedef struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[i] is value lo + i, or NULL */
} field_t;

static const char *const MONTHS[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const DAYS[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static const field_t FIELDS[5] = {
    {"minute", 0, 59, NULL},  {"hour", 0, 23, NULL},       {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, MONTHS}, {"day-of-week", 0, 7, DAYS},
};

/* A number or (f->names) a three-letter name. */
static const char *value(const field_t *f, const char *s, int *v, char *err, size_t errlen) {
    if (isdigit((unsigned char)*s)) {
        char *e;
        long n = strtol(s, &e, 10);
        if (n < f->lo || n > f->hi) {
            snprintf(err, errlen, "cron %s field: %ld is out of range %d-%d", f->name, n, f->lo,
                     f->hi);
            return NULL;
        }
        *v = (int)n;
        return e;
    }
    if (f->names && isalpha((unsigned char)*s))
        for (int i = 0; i <= f->hi - f->lo; i++)
            if (!strncasecmp(s, f->names[i], 3) && !isalpha((unsigned char)s[3])) {
                *v = f->lo + i;
                return s + 3;
            }
    snprintf(err, errlen, "cron %s field: bad value at '%.20s'", f->name, s);
    return NULL;
}

/* One comma-separated item: `*`, `a`, `a-b`, each with an optional `/n`. */
static const char *item(const field_t *f, const char *s, uint64_t *bits, char *err, size_t errlen) {
    int lo = f->lo, hi = f->hi, step = 1, single = 0;
    if (*s == '*') {
        s++;
    } else {
        if (!(s = value(f, s, &lo, err, errlen))) return NULL;
        hi = lo;
        single = 1;
        if (*s == '-') {
            if (!(s = value(f, s + 1, &hi, err, errlen))) return NULL;
            single = 0;
            if (hi < lo) {
                snprintf(err, errlen, "cron %s field: range %d-%d goes backwards", f->name, lo, hi);
                return NULL;
            }
        }
    }
    if (*s == '/') {
        char *e;
        long n = strtol(s + 1, &e, 10);
        if (e == s + 1 || n < 1 || n > f->hi - f->lo + 1) {
            snprintf(err, errlen, "cron %s field: bad step '%.20s'", f->name, s + 1);
            return NULL;
        }
        step = (int)n;
        s = e;
        if (single) hi = f->hi; /* `a/n`: from a to the end */
    }
    for (int v = lo; v <= hi; v += step) *bits |= 1ULL << v;
    return s;
}

static int parse_field(const field_t *f, const char *s, size_t len, uint64_t *bits, int *star,
                       char *err, size_t errlen) {
    char buf[128];
    if (len >= sizeof(buf)) {
        snprintf(err, errlen, "cron %s field is too long", f->name);
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    *bits = 0;
    *star = buf[0] == '*';
    for (const char *p = buf;;) {
        if (!(p = item(f, p, bits, err, errlen))) return -1;
        if (!*p) return 0;
        if (*p != ',') {
            snprintf(err, errlen, "cron %s field: unexpected '%c' in '%s'", f->name, *p, buf);
            return -1;
        }
        p++;
    }
}

static const char *macro(const char *expr) {
    static const char *const M[][2] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
    };
    for (size_t i = 0; i < sizeof(M) / sizeof(M[0]); i++)
        if (!strcmp(expr, M[i][0])) return M[i][1];
    return NULL;
}

int jq_cron_parse(jq_cron_t *c, const char *expr, char *err, size_t errlen) {
    memset(c, 0, sizeof(*c));
    while (isspace((unsigned char)*expr)) expr++;
    if (*expr == '@') {
        const char *m = macro(expr);
        if (!m) {
            snprintf(err, errlen, "unknown cron macro '%.20s'", expr);
            return -1;
        }
        expr = m;
    }
    uint64_t bits[5];
    int star[5], n = 0;
    const char *s = expr;
    while (*s) {
        while (isspace((unsigned char)*s)) s++;
        if (!*s) break;
        const char *b = s;
        while (*s && !isspace((unsigned char)*s)) s++;
        if (n == 5) {
            snprintf(err, errlen, "cron expression has more than 5 fields: '%.60s'", expr);
            return -1;
        }
        if (parse_field(&FIELDS[n], b, (size_t)(s - b), &bits[n], &star[n], err, errlen) < 0)
            return -1;
        n++;
    }
    if (n != 5) {
        snprintf(err, errlen, "cron expression needs 5 fields (MIN HOUR DOM MON DOW), got %d: '%s'",
                 n, expr);
        return -1;
    }
    c->min = bits[0];
    c->hour = (uint32_t)bits[1];
    c->dom = (uint32_t)bits[2];
    c->mon = (uint16_t)bits[3];
    c->dow = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f); /* 7 is Sunday */
    c->dom_star = star[2];
    c->dow_star = star[4];
    c->fixed = !star[0] && !star[1];
    return 0;
}

/* A local time broken down. */
typedef struct lt {
    int64_t days, y;
    int mon, mday, wday, hour, min, sec;
} lt_t;

static void breakdown(int64_t local, lt_t *t) {
    t->days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    int64_t s = local - t->days * 86400;
    jq_civil_from_days(t->days, &t->y, &t->mon, &t->mday);
    t->wday = (int)(((t->days + 4) % 7 + 7) % 7);
    t->hour = (int)(s / 3600);
    t->min = (int)(s / 60 % 60);
    t->sec = (int)(s % 60);
}

static int day_ok(const jq_cron_t *c, const lt_t *t) {
    int dom = (c->dom >> t->mday) & 1, dow = (c->dow >> t->wday) & 1;
    return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

static int matches(const jq_cron_t *c, int64_t local) {
    lt_t t;
    breakdown(local, &t);
    return t.sec == 0 && ((c->mon >> t.mon) & 1) && day_ok(c, &t) && ((c->hour >> t.hour) & 1) &&
           ((c->min >> t.min) & 1);
}

/* At instant t the clock jumped forward (from offset before to after): a
 * fixed job whose local time fell in the skipped stretch fires now. */
static int gap_fires(const jq_cron_t *c, int64_t t, int32_t before, int32_t after) {
    for (int64_t l = t + before; l < t + after; l += 60)
        if (matches(c, l - (l % 60 + 60) % 60)) return 1;
    return 0;
}

/* Whether the local time of instant t already happened earlier (the clock
 * went back within the last day, from a larger offset). */
static int repeated(const jq_tz_t *tz, int64_t t, int32_t off) {
    int32_t before = jq_tz_offset(tz, t - 86400);
    if (before <= off) return 0;
    int64_t earlier = t + off - before;
    return jq_tz_offset(tz, earlier) == before;
}

int64_t jq_cron_next(const jq_cron_t *c, const jq_tz_t *tz, int64_t after_ms) {
    int64_t t = (after_ms >= 0 ? after_ms / 60000 : (after_ms - 59999) / 60000) * 60 + 60;
    int64_t end = t + (int64_t)SEARCH_YEARS * 366 * 86400;
    int64_t change = jq_tz_next_change(tz, t - 1);
    while (t < end) {
        int32_t off = jq_tz_offset(tz, t);
        if (t == change) {
            int32_t before = jq_tz_offset(tz, t - 1);
            if (c->fixed && before < off && gap_fires(c, t, before, off)) return t * 1000;
        }
        while (change <= t) change = jq_tz_next_change(tz, t);
        lt_t l;
        breakdown(t + off, &l);
        int64_t step;
        if (!((c->mon >> l.mon) & 1)) {
            int64_t ny = l.mon == 12 ? l.y + 1 : l.y;
            step = jq_days_from_civil(ny, l.mon == 12 ? 1 : l.mon + 1, 1) * 86400 - (t + off);
        } else if (!day_ok(c, &l)) {
            step = 86400 - (l.hour * 3600 + l.min * 60 + l.sec);
        } else if (!((c->hour >> l.hour) & 1)) {
            step = 3600 - (l.min * 60 + l.sec);
        } else if (l.sec != 0 || !((c->min >> l.min) & 1)) {
            step = 60 - l.sec;
        } else if (c->fixed && repeated(tz, t, off)) {
            step = 60;
        } else {
            return t * 1000;
        }
        /* Within one offset, local and UTC move together: never step
         * over a change of offset without looking at it. */
        if (t + step > change) step = change - t;
        t += step;
    }
    return -1;
}

int jq_duration_parse(const char *s, int64_t *ms, char *err, size_t errlen) {
    static const struct {
        const char *unit;
        int64_t ms;
    } U[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *e;
    if (!isdigit((unsigned char)*s)) goto bad;
    long long n = strtoll(s, &e, 10);
    for (size_t i = 0; i < sizeof(U) / sizeof(U[0]); i++)
        if (!strcmp(e, U[i].unit)) {
            if (n < 1 || n > 366LL * 86400000 / U[i].ms) goto bad;
            *ms = n * U[i].ms;
            if (*ms >= 100) return 0;
            snprintf(err, errlen, "duration '%s' is shorter than 100ms", s);
            return -1;
        }
bad:
    snprintf(err, errlen,
             "bad duration '%s' (want a whole number and ms, s, m, h or d: 500ms, 10s, "
             "5m, 1h; at most 366d)",
             s);
    return -1;
}

int64_t jq_every_next(int64_t every_ms, int64_t after_ms) {
    if (after_ms < 0) return every_ms;
    return (after_ms / every_ms + 1) * every_ms;
}
