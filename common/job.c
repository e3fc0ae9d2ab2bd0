/* Parsing and validation of a stream entry into a job (PROTOCOL §1). Every
 * error names the field and the value, because the text ends up in the dead
 * set where an operator reads it without the producer's code at hand. */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job.h"

int64_t jq_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int jq_parse_ll(const char *s, size_t len, long long min, long long max, long long *out) {
    char tmp[32];
    if (len == 0 || len >= sizeof(tmp)) return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end != '\0' || isspace((unsigned char)tmp[0]) || tmp[0] == '+') return -1;
    if (v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int is(const jq_str_t *f, const char *name) {
    size_t n = strlen(name);
    return f->p && f->len == n && memcmp(f->p, name, n) == 0;
}

/* Copies at most 40 bytes of a bad value into the message, printable only,
 * so a binary blob in the wrong field cannot garble the error text. */
static void quote(char *dst, size_t cap, const jq_str_t *v) {
    size_t j = 0;
    if (!v->p && v->len) {
        snprintf(dst, cap, "(%zu bytes, not read)", v->len);
        return;
    }
    for (size_t i = 0; i < v->len && j + 4 < cap && i < 40; i++) {
        unsigned char c = (unsigned char)v->p[i];
        dst[j++] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    if (v->len > 40 && j + 4 < cap) {
        memcpy(dst + j, "...", 3);
        j += 3;
    }
    dst[j] = '\0';
}

static int bad_field(char *err, size_t errlen, const char *name, const jq_str_t *v,
                     const char *want) {
    char q[64];
    quote(q, sizeof(q), v);
    snprintf(err, errlen, "bad field %s: '%s' (want %s)", name, q, want);
    return -1;
}

int jq_job_field_kept(const char *name, size_t len) {
    static const char *const drop[] = {"error", "attempt", "failed_at", "priority", NULL};
    for (int i = 0; drop[i]; i++)
        if (strlen(drop[i]) == len && memcmp(drop[i], name, len) == 0) return 0;
    return 1;
}

static void set_id(jq_job_t *job, const char *s, size_t len) {
    memcpy(job->id, s, len);
    job->id[len] = '\0';
}

void jq_entry_id_parts(const char *s, uint64_t *ms, uint64_t *seq) {
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
    *ms = v;
    v = 0;
    if (*s == '-')
        for (s++; *s >= '0' && *s <= '9'; s++) v = v * 10 + (uint64_t)(*s - '0');
    *seq = v;
}

/* The bounds of JQ_JOB_MAX_*: checked before any field is looked at, so
 * that the job is dead-lettered for what it carries, whatever else is
 * wrong with it. */
static int check_bounds(const jq_str_t *fv, size_t n, char *err, size_t errlen) {
    size_t own = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        const jq_str_t *f = &fv[i], *v = &fv[i + 1];
        char q[64];
        if (!is(f, "id") && !is(f, "attempt")) own++;
        if (f->len > JQ_JOB_MAX_NAME) {
            quote(q, sizeof(q), f);
            snprintf(err, errlen, "field name too long: %zu bytes '%s' (at most %d)", f->len, q,
                     JQ_JOB_MAX_NAME);
            return -1;
        }
        if (v->len > JQ_JOB_MAX_VALUE && !is(f, "payload")) {
            quote(q, sizeof(q), f);
            snprintf(err, errlen,
                     "field %s too long: %zu bytes (at most %d; only payload may be larger)", q,
                     v->len, JQ_JOB_MAX_VALUE);
            return -1;
        }
    }
    if (own > JQ_JOB_MAX_FIELDS) {
        snprintf(err, errlen, "too many fields: %zu (at most %d besides id and attempt)", own,
                 JQ_JOB_MAX_FIELDS);
        return -1;
    }
    return 0;
}

/* A payload the reader skipped for its size ({NULL, length}: the consumer
 * never stored it), or one dropped so when its job died before
 * (payload_dropped, written by the consumer in its dead job's hash: a
 * retried dead job must not run with no payload). Named before anything
 * else, since the size is what is wrong. */
static int check_unread(const jq_str_t *fv, size_t n, const jq_job_limits_t *lim, char *err,
                        size_t errlen) {
    for (size_t i = 0; i + 1 < n; i += 2) {
        const jq_str_t *f = &fv[i], *v = &fv[i + 1];
        if (is(f, "payload") && !v->p && v->len) {
            snprintf(err, errlen, "payload too large: %zu bytes > max-payload %lld", v->len,
                     lim->max_payload);
            return -1;
        }
        if (is(f, "payload_dropped")) {
            char q[64];
            quote(q, sizeof(q), v);
            snprintf(err, errlen,
                     "payload dropped: the job died before with a payload of %s bytes, "
                     "over max-payload; enqueue it again",
                     q);
            return -1;
        }
    }
    return 0;
}

/* An integer field within [min, max]; `want` words the error. */
static int read_int(const char *name, const jq_str_t *v, long long min, long long max,
                    long long *dst, const char *want, char *err, size_t errlen) {
    return jq_parse_ll(v->p, v->len, min, max, dst) ? bad_field(err, errlen, name, v, want) : 0;
}

enum { SEEN_TYPE = 1, SEEN_SIZE = 2, SEEN_ID = 4 };

/* The defaults, and the ids of the stream entry. */
static void job_init(jq_job_t *job, const char *entry_id, const jq_job_limits_t *lim) {
    memset(job, 0, sizeof(*job));
    /* Copied, not snprintf'ed: this runs for every job (see keys.c). */
    size_t elen = strnlen(entry_id, sizeof(job->entry_id) - 1);
    memcpy(job->entry_id, entry_id, elen);
    memcpy(job->id, entry_id, elen);
    uint64_t ms;
    jq_entry_id_parts(entry_id, &ms, &job->entry_seq);
    job->enqueued_ms = (int64_t)ms;
    job->max_attempts = JQ_DEFAULT_MAX_ATTEMPTS;
    job->timeout_ms = lim->timeout_ms;
    job->result_ttl = JQ_DEFAULT_RESULT_TTL;
}

static int read_enc(jq_job_t *job, const jq_str_t *v, char *err, size_t errlen) {
    if (v->len == 7 && memcmp(v->p, "msgpack", 7) == 0) {
        job->enc = JQ_ENC_MSGPACK;
    } else if (v->len == 4 && memcmp(v->p, "json", 4) == 0) {
        job->enc = JQ_ENC_JSON;
    } else {
        char q[64];
        quote(q, sizeof(q), v);
        snprintf(err, errlen, "unknown enc: %s (want msgpack or json)", q);
        return -1;
    }
    return 0;
}

/* One field/value pair into *job (unknown fields are skipped), adding to
 * *seen. Returns 0 or -1 with err. */
static int read_field(jq_job_t *job, const jq_str_t *f, const jq_str_t *v, unsigned *seen,
                      char *err, size_t errlen) {
    if (is(f, "type")) {
        if (v->len == 0 || v->len > JQ_NAME_MAX)
            return bad_field(err, errlen, "type", v, "a handler name of 1 to 128 bytes");
        job->type = *v;
        *seen |= SEEN_TYPE;
        return 0;
    }
    if (is(f, "payload")) {
        job->payload = *v;
        job->has_payload = 1;
        return 0;
    }
    if (is(f, "enc")) return read_enc(job, v, err, errlen);
    /* A chain of is() on constants, not a table: the compiler turns each
     * into a length test and an inline compare, and this runs for every
     * field of every job. */
    if (is(f, "chunks"))
        return read_int("chunks", v, 1, 1LL << 40, &job->chunks, "an integer >= 1", err, errlen);
    if (is(f, "size")) {
        *seen |= SEEN_SIZE;
        return read_int("size", v, 0, 1LL << 50, &job->size, "an integer >= 0", err, errlen);
    }
    if (is(f, "max_attempts"))
        return read_int("max_attempts", v, 1, 1000000, &job->max_attempts,
                        "an integer from 1 to 1000000", err, errlen);
    if (is(f, "timeout_ms"))
        return read_int("timeout_ms", v, 1, 1LL << 40, &job->timeout_ms, "an integer >= 1", err,
                        errlen);
    if (is(f, "result_ttl"))
        return read_int("result_ttl", v, 0, 1LL << 40, &job->result_ttl, "an integer >= 0", err,
                        errlen);
    if (is(f, "attempt"))
        return read_int("attempt", v, 0, 1000000, &job->attempt, "an integer >= 0", err, errlen);
    if (is(f, "notify")) {
        long long n;
        return read_int("notify", v, 0, 1, &n, "0 or 1", err, errlen);
    }
    return 0;
}

/* What the fields must say together: a type; chunks with an id and a size
 * and no inline payload; a size that matches; a payload within bounds. */
static int check_whole(const jq_job_t *job, unsigned seen, const jq_job_limits_t *lim, char *err,
                       size_t errlen) {
    const char *why = !(seen & SEEN_TYPE)                  ? "missing field: type"
                      : job->chunks && !(seen & SEEN_ID)   ? "chunks needs an id field"
                      : job->chunks && !(seen & SEEN_SIZE) ? "chunks needs a size field"
                      : job->chunks && job->has_payload
                          ? "an entry with chunks must not carry a payload field"
                          : NULL;
    if (why) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (job->chunks && job->size > lim->max_payload) {
        snprintf(err, errlen, "payload too large: %lld bytes > max-payload %lld", job->size,
                 lim->max_payload);
        return -1;
    }
    if (!job->chunks && (seen & SEEN_SIZE) && job->has_payload &&
        (long long)job->payload.len != job->size) {
        snprintf(err, errlen, "size mismatch: field size %lld, payload has %zu bytes", job->size,
                 job->payload.len);
        return -1;
    }
    if (job->has_payload && (long long)job->payload.len > lim->max_payload) {
        snprintf(err, errlen, "payload too large: %zu bytes > max-payload %lld", job->payload.len,
                 lim->max_payload);
        return -1;
    }
    return 0;
}

/* A batch id is <queue>:<name>: the batch lives under its queue's hash
 * tag (PROTOCOL §12), the name after the last ':'. */
int jq_batch_id_split(const char *s, size_t len, size_t *qlen) {
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':') colon = s + i;
    if (!colon || !jq_name_valid(s, len)) return -1;
    size_t q = (size_t)(colon - s);
    if (q == 0 || q + 1 == len) return -1;
    *qlen = q;
    return 0;
}

/* The fields of job control (§10, §12), read with the id, before any check
 * can fail: a job dead-lettered on arrival still ends, and still gives
 * back its unique key and counts in its batch. A value that is not valid
 * is left unread (the script that writes them never writes one); such a
 * field holds nothing to give back. */
static void read_ctl(jq_job_t *job, const jq_str_t *f, const jq_str_t *v) {
    size_t ql;
    if (is(f, "unique") && v->p && jq_name_valid(v->p, v->len))
        job->unique = *v;
    else if (is(f, "unique_until") && v->p)
        jq_parse_ll(v->p, v->len, 1, 1LL << 50, &job->unique_until);
    else if (is(f, "batch") && v->p && jq_batch_id_split(v->p, v->len, &ql) == 0)
        job->batch = *v;
}

int jq_job_parse(jq_job_t *job, const char *entry_id, const jq_str_t *fv, size_t n,
                 const jq_job_limits_t *lim, char *err, size_t errlen) {
    job_init(job, entry_id, lim);
    unsigned seen = 0;
    /* The id first, so that every later error is reported under it, and
     * whether a client waits (PROTOCOL 1.2 §3: exactly `1`; other values
     * are refused below), so that a job dead-lettered for any error still
     * wakes its waiter. */
    const jq_str_t *bad_id = NULL;
    for (size_t i = 0; i + 1 < n; i += 2) {
        const jq_str_t *v = &fv[i + 1];
        if (is(&fv[i], "notify")) job->notify = v->len == 1 && v->p && v->p[0] == '1';
        if (fv[i].p && fv[i].len && (fv[i].p[0] == 'u' || fv[i].p[0] == 'b'))
            read_ctl(job, &fv[i], v);
        if (!is(&fv[i], "id") || bad_id) continue;
        if (!jq_name_valid(v->p, v->len)) {
            bad_id = v;
            continue;
        }
        set_id(job, v->p, v->len);
        seen |= SEEN_ID;
    }
    if (bad_id) return bad_field(err, errlen, "id", bad_id, "1 to 128 bytes of [A-Za-z0-9_.:-]");
    if (n % 2) {
        snprintf(err, errlen, "odd number of fields in entry");
        return -1;
    }
    if (check_bounds(fv, n, err, errlen)) return -1;
    if (check_unread(fv, n, lim, err, errlen)) return -1;
    for (size_t i = 0; i < n; i += 2)
        if (read_field(job, &fv[i], &fv[i + 1], &seen, err, errlen) < 0) return -1;
    return check_whole(job, seen, lim, err, errlen);
}
