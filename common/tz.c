/* Time zones from TZif files (RFC 8536). See tz.h. */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

#define TZ_FILE_MAX (1 << 20) /* the largest zone file is about 4 KiB */

/* The POSIX TZ rule of a file's footer ("EST5EDT,M3.2.0,M11.1.0"): the
 * offsets and, with DST, its start and end as month, week (5: last) and
 * weekday, at a local time of day in seconds. */
typedef struct tz_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    int mon[2], week[2], wday[2];
    int32_t secs[2];
} tz_rule_t;

struct jq_tz {
    size_t n;     /* transitions */
    int64_t *at;  /* their instants, ascending */
    int32_t *off; /* the offset from each one on */
    int32_t off0; /* before the first (time type 0) */
    int has_rule; /* after the last: the footer's rule */
    tz_rule_t rule;
};

int64_t jq_days_from_civil(int64_t y, int m, int d) {
    /* Howard Hinnant's days_from_civil. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void jq_civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t be(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = v << 8 | p[i];
    if (bytes == 4) return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

/* ---- the footer's POSIX rule ---- */

static const char *skip_name(const char *s) {
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e ? e + 1 : NULL;
    }
    const char *b = s;
    while (isalpha((unsigned char)*s)) s++;
    return s - b >= 3 ? s : NULL;
}

/* [+-]hh[:mm[:ss]] into seconds; NULL when malformed. */
static const char *parse_hms(const char *s, int32_t *out) {
    int sign = 1;
    if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*s)) return NULL;
    long v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        char *e;
        v[i] = strtol(s, &e, 10);
        if (e == s || v[i] > 167) return NULL;
        s = e;
        if (*s != ':' || i == 2) break;
        s++;
    }
    *out = (int32_t)(sign * (v[0] * 3600 + v[1] * 60 + v[2]));
    return s;
}

/* ",Mm.w.d[/time]"; only the M form (every zone of tzdata uses it). */
static const char *parse_date(const char *s, tz_rule_t *r, int i) {
    if (*s++ != ',' || *s++ != 'M') return NULL;
    char *e;
    long m = strtol(s, &e, 10), w, d;
    if (e == s || *e != '.') return NULL;
    s = e + 1;
    w = strtol(s, &e, 10);
    if (e == s || *e != '.') return NULL;
    s = e + 1;
    d = strtol(s, &e, 10);
    if (e == s || m < 1 || m > 12 || w < 1 || w > 5 || d < 0 || d > 6) return NULL;
    s = e;
    r->mon[i] = (int)m, r->week[i] = (int)w, r->wday[i] = (int)d;
    r->secs[i] = 7200;
    if (*s == '/' && !(s = parse_hms(s + 1, &r->secs[i]))) return NULL;
    return s;
}

static int parse_rule(const char *s, tz_rule_t *r) {
    int32_t v;
    memset(r, 0, sizeof(*r));
    if (!(s = skip_name(s)) || !(s = parse_hms(s, &v))) return -1;
    r->std_off = -v;
    if (!*s) return 0;
    if (!(s = skip_name(s))) return -1;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (!(s = parse_hms(s, &v))) return -1;
        r->dst_off = -v;
    }
    if (!(s = parse_date(s, r, 0)) || !(s = parse_date(s, r, 1)) || *s) return -1;
    r->has_dst = 1;
    return 0;
}

/* The instant, in year y, of the rule's change i (0: to DST, given in
 * standard time; 1: back, given in DST). */
static int64_t rule_change(const tz_rule_t *r, int64_t y, int i) {
    int64_t first = jq_days_from_civil(y, r->mon[i], 1);
    int wd = (int)(((first + 4) % 7 + 7) % 7);
    int64_t day = first + (r->wday[i] - wd + 7) % 7 + 7 * (r->week[i] - 1);
    int nm = r->mon[i] == 12 ? 1 : r->mon[i] + 1;
    int64_t next_month = jq_days_from_civil(r->mon[i] == 12 ? y + 1 : y, nm, 1);
    while (day >= next_month) day -= 7;
    return day * 86400 + r->secs[i] - (i == 0 ? r->std_off : r->dst_off);
}

static int64_t year_of(int64_t t) {
    int64_t y;
    int m, d;
    jq_civil_from_days(t >= 0 ? t / 86400 : (t - 86399) / 86400, &y, &m, &d);
    return y;
}

static int32_t rule_offset(const tz_rule_t *r, int64_t t) {
    if (!r->has_dst) return r->std_off;
    int64_t y = year_of(t + r->std_off);
    int64_t start = rule_change(r, y, 0), end = rule_change(r, y, 1);
    int in_dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return in_dst ? r->dst_off : r->std_off;
}

static int64_t rule_next(const tz_rule_t *r, int64_t t) {
    if (!r->has_dst) return INT64_MAX;
    int64_t y = year_of(t), best = INT64_MAX;
    for (int64_t yy = y - 1; yy <= y + 1; yy++)
        for (int i = 0; i < 2; i++) {
            int64_t c = rule_change(r, yy, i);
            if (c > t && c < best) best = c;
        }
    return best;
}

/* ---- the file ---- */

typedef struct hdr {
    uint32_t isut, isstd, leap, time, type, chr;
} hdr_t;

static int read_hdr(const unsigned char *p, size_t len, hdr_t *h) {
    if (len < 44 || memcmp(p, "TZif", 4)) return -1;
    uint32_t *v = &h->isut;
    for (int i = 0; i < 6; i++) v[i] = (uint32_t)be(p + 20 + 4 * i, 4);
    if (h->type == 0 || h->type > 256 || h->time > 100000 || h->chr > 100000 || h->leap > 100000)
        return -1;
    return 0;
}

static size_t block_len(const hdr_t *h, int tb) {
    return (size_t)h->time * (tb + 1) + (size_t)h->type * 6 + h->chr + (size_t)h->leap * (tb + 4) +
           h->isstd + h->isut;
}

static int parse_file(jq_tz_t *tz, const unsigned char *p, size_t len) {
    hdr_t h;
    if (read_hdr(p, len, &h) < 0) return -1;
    int tb = 4;
    const unsigned char *data = p + 44, *end = p + len;
    if (p[4] >= '2') { /* skip the 32-bit block for the 64-bit one */
        size_t skip = block_len(&h, 4);
        if (skip > (size_t)(end - data)) return -1;
        if (read_hdr(data + skip, (size_t)(end - data - skip), &h) < 0) return -1;
        data += skip + 44;
        tb = 8;
    }
    size_t need = block_len(&h, tb);
    if (need > (size_t)(end - data)) return -1;
    const unsigned char *idx = data + (size_t)h.time * tb, *types = idx + h.time;
    tz->n = h.time;
    tz->at = calloc(h.time + 1, sizeof(*tz->at));
    tz->off = calloc(h.time + 1, sizeof(*tz->off));
    if (!tz->at || !tz->off) return -1;
    for (uint32_t i = 0; i < h.time; i++) {
        if (idx[i] >= h.type) return -1;
        tz->at[i] = be(data + (size_t)i * tb, tb);
        tz->off[i] = (int32_t)be(types + 6 * idx[i], 4);
    }
    tz->off0 = (int32_t)be(types, 4);
    const unsigned char *foot = data + need;
    if (tb == 8 && end - foot > 2 && foot[0] == '\n') {
        const unsigned char *nl = memchr(foot + 1, '\n', (size_t)(end - foot - 1));
        char rule[128];
        size_t n = nl ? (size_t)(nl - foot - 1) : 0;
        if (n > 0 && n < sizeof(rule)) {
            memcpy(rule, foot + 1, n);
            rule[n] = '\0';
            tz->has_rule = parse_rule(rule, &tz->rule) == 0;
        }
    }
    return 0;
}

/* A zone name as tzdata spells them: no "..", no leading '/'. */
static int name_ok(const char *s) {
    if (!*s || *s == '/' || strstr(s, "..") || strlen(s) > 200) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("/_+-", *s)) return 0;
    return 1;
}

jq_tz_t *jq_tz_load(const char *name, char *err, size_t errlen) {
    jq_tz_t *tz = calloc(1, sizeof(*tz));
    if (!tz) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!name || !*name || !strcmp(name, "UTC")) return tz;
    if (!name_ok(name)) {
        snprintf(err, errlen, "unknown time zone '%s'", name);
        goto fail;
    }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "unknown time zone '%s' (%s: %s; is tzdata installed?)", name, path,
                 strerror(errno));
        goto fail;
    }
    unsigned char *buf = malloc(TZ_FILE_MAX);
    size_t len = buf ? fread(buf, 1, TZ_FILE_MAX, f) : 0;
    fclose(f);
    int rc = buf ? parse_file(tz, buf, len) : -1;
    free(buf);
    if (rc == 0) return tz;
    snprintf(err, errlen, "time zone '%s': %s is not a TZif file", name, path);
fail:
    jq_tz_free(tz);
    return NULL;
}

void jq_tz_free(jq_tz_t *tz) {
    if (!tz) return;
    free(tz->at);
    free(tz->off);
    free(tz);
}

/* The index of the last transition at or before t, or -1. */
static long find(const jq_tz_t *tz, int64_t t) {
    long lo = 0, hi = (long)tz->n - 1, ans = -1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        if (tz->at[mid] <= t) {
            ans = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return ans;
}

int32_t jq_tz_offset(const jq_tz_t *tz, int64_t t) {
    if (!tz) return 0;
    if (tz->has_rule && (tz->n == 0 || t >= tz->at[tz->n - 1])) return rule_offset(&tz->rule, t);
    long i = find(tz, t);
    return i < 0 ? tz->off0 : tz->off[i];
}

int64_t jq_tz_next_change(const jq_tz_t *tz, int64_t t) {
    if (!tz) return INT64_MAX;
    long i = find(tz, t);
    if (i + 1 < (long)tz->n) return tz->at[i + 1];
    return tz->has_rule ? rule_next(&tz->rule, t) : INT64_MAX;
}
