#ifndef JQ_DASH_JSON_H
#define JQ_DASH_JSON_H

/* What the files of the dashboard's JSON API share (dash_api.c,
 * dash_jobs.c): a JSON writer that remembers running out of memory, the
 * error answers, and query-string parsing. Static inline, as each file
 * uses a few of them; every writer appends to the caller's sbuffer. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "dash_api.h"
#include "job.h"
#include "keys.h"
#include "view.h"

/* A JSON writer that remembers running out of memory, so that callers
 * write without checking and look once at the end. */
typedef struct jw {
    msgpack_sbuffer *sb;
    int oom;
} jw_t;

static inline void raw(jw_t *w, const char *s, size_t len) {
    if (!w->oom && msgpack_sbuffer_write(w->sb, s, len) < 0) w->oom = 1;
}

static inline void lit(jw_t *w, const char *s) { raw(w, s, strlen(s)); }

static inline void str(jw_t *w, const char *s, size_t len) {
    if (!w->oom && jq_codec_json_string(w->sb, s, len) < 0) w->oom = 1;
}

/* `,"key":` (no comma when first), then a value follows. */
static inline void key(jw_t *w, const char *k, int first) {
    if (!first) lit(w, ",");
    str(w, k, strlen(k));
    lit(w, ":");
}

static inline void cstr(jw_t *w, const char *k, const char *s, int first) {
    key(w, k, first);
    if (s)
        str(w, s, strlen(s));
    else
        lit(w, "null");
}

static inline void val(jw_t *w, long long v) {
    char b[32];
    snprintf(b, sizeof(b), "%lld", v);
    lit(w, b);
}

static inline void num(jw_t *w, const char *k, long long v, int first) {
    key(w, k, first);
    val(w, v);
}

static inline void nums(jw_t *w, const char *k, const long long *v, long long n, int first) {
    key(w, k, first);
    lit(w, "[");
    for (long long i = 0; i < n; i++) {
        if (i) lit(w, ",");
        val(w, v[i]);
    }
    lit(w, "]");
}

static inline void boolean(jw_t *w, const char *k, int v, int first) {
    key(w, k, first);
    lit(w, v ? "true" : "false");
}

/* A string cut to at most max bytes, never inside a UTF-8 sequence. */
static inline void cut(jw_t *w, const char *k, const char *s, size_t max, int first) {
    key(w, k, first);
    if (!s) {
        lit(w, "null");
        return;
    }
    size_t len = strlen(s);
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--;
    }
    str(w, s, len);
}

/* Finishes an answer: 200, or 500 when the writer ran out of memory. */
static inline int done(jw_t *w) {
    if (!w->oom) return 200;
    w->sb->size = 0;
    return jq_dash_api_error(w->sb, 500, "out of memory");
}

static inline int redis_error(msgpack_sbuffer *out, const char *err) {
    char msg[JQ_ERR_LEN + 32];
    snprintf(msg, sizeof(msg), "redis: %s", err);
    out->size = 0;
    return jq_dash_api_error(out, 503, msg);
}

/* The value of name=N in a query string, within [min, max]; def when
 * absent. Returns 0, or -1 when present but not such a number. */
static inline int query_ll(const char *query, const char *name, long long def, long long min,
                           long long max, long long *v) {
    *v = def;
    size_t nlen = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && !strncmp(p, name, nlen) && p[nlen] == '=')
            return jq_parse_ll(p + nlen + 1, len - nlen - 1, min, max, v);
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* Appends a job's fields (view.h, less skip) and `,"payload":` with a
 * bounded preview of its payload, read (chunks too) through c. Returns 0,
 * or -1 with err when Redis could not be read. */
static inline int job_body(jw_t *w, jq_client_t *c, const char *queue, const jq_dead_job_t *job,
                           const char *const *skip, char *err, size_t errlen) {
    char *p = NULL;
    size_t len, total;
    if (jq_client_job_payload(c, queue, job, JQ_VIEW_DECODE_MAX, &p, &len, &total, err, errlen) < 0)
        return -1;
    const jq_field_t *enc = jq_dead_job_field(job, "enc");
    if (jq_view_fields(w->sb, job, skip) < 0) w->oom = 1;
    key(w, "payload", 0);
    if (!w->oom && jq_view_payload_preview(w->sb, p, len, total, enc && !strcmp(enc->value, "json"),
                                           JQ_DASH_TEXT_MAX) < 0)
        w->oom = 1;
    free(p);
    return 0;
}

/* The value of name=... in a query string, copied into buf (cap bytes,
 * NUL-terminated). Returns 1 when present, 0 when absent, -1 when longer
 * than cap - 1. No percent-decoding: every value the API takes (states,
 * numbers, entry ids) is plain ASCII, and one that needs decoding is
 * refused by the check that follows. */
static inline int query_str(const char *query, const char *name, char *buf, size_t cap) {
    size_t nlen = strlen(name);
    buf[0] = '\0';
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
            if (len - nlen - 1 >= cap) return -1;
            memcpy(buf, p + nlen + 1, len - nlen - 1);
            buf[len - nlen - 1] = '\0';
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static inline int bad_query(msgpack_sbuffer *out, const char *what, long long max) {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s: want an integer from %s to %lld", what,
             strcmp(what, "start") ? "1" : "0", max);
    return jq_dash_api_error(out, 400, msg);
}

/* The queue name and job id in a path, checked: they name Redis keys. */
static inline int bad_names(char **seg, int nseg, msgpack_sbuffer *out) {
    if (nseg >= 2 && !jq_name_valid(seg[1], strlen(seg[1])))
        return jq_dash_api_error(out, 400,
                                 "bad queue name: want 1 to 128 bytes of [A-Za-z0-9_.:-]");
    if (nseg >= 4 && !jq_name_valid(seg[3], strlen(seg[3])))
        return jq_dash_api_error(out, 400, "bad job id: want 1 to 128 bytes of [A-Za-z0-9_.:-]");
    return 0;
}

#endif
