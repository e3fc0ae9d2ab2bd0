/* Where a job is (jq_client_locate): one MULTI/EXEC over the queue's
 * keys, so a job moving between two places (a retry leaving the stream
 * for the scheduled set) is seen in exactly one of them. A job id chosen
 * by its producer names no stream entry, so for it the stream is read
 * page by page, bounded, after the snapshot. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "job.h"

#define SCAN_PAGE "1000"
#define SCAN_MAX 100000 /* entries looked through for a chosen id */

/* The replies of the snapshot, in the order sent. */
enum { R_STATE, R_SCHED, R_DEAD, R_ENTRY, R_PENDING, R_N };

const char *jq_where_name(jq_where_t w) {
    static const char *const names[] = {"unknown",   "ready",    "running",
                                        "scheduled", "finished", "dead"};
    return (unsigned)w < sizeof(names) / sizeof(names[0]) ? names[w] : "unknown";
}

/* "<ms>-<seq>": an id XADD made, which XRANGE can look up directly. */
static int is_entry_id(const char *id) {
    const char *d = strchr(id, '-');
    if (!d || d == id || !d[1]) return 0;
    for (const char *p = id; *p; p++)
        if (p != d && (*p < '0' || *p > '9')) return 0;
    return 1;
}

static void send_snapshot(jq_pipe_t *p, const char *queue, const char *id, int entry, char *err,
                          size_t errlen) {
    jq_args_t *a = &p->a;
    jq_args_str(a, "MULTI");
    jq_pipe_send(p, err, errlen);
    jq_args_str(a, "HGET");
    jq_args_key(a, p->c, queue, "result", id);
    jq_args_str(a, "state");
    jq_pipe_send(p, err, errlen);
    jq_args_str(a, "ZSCORE");
    jq_args_key(a, p->c, queue, "scheduled", NULL);
    jq_args_str(a, id);
    jq_pipe_send(p, err, errlen);
    jq_args_str(a, "ZSCORE");
    jq_args_key(a, p->c, queue, "dead", NULL);
    jq_args_str(a, id);
    jq_pipe_send(p, err, errlen);
    if (entry) {
        jq_args_str(a, "XRANGE");
        jq_args_key(a, p->c, queue, "stream", NULL);
        jq_args_str(a, id);
        jq_args_str(a, id);
        jq_pipe_send(p, err, errlen);
        jq_args_str(a, "XPENDING");
        jq_args_key(a, p->c, queue, "stream", NULL);
        jq_args_str(a, JQ_GROUP);
        jq_args_str(a, id);
        jq_args_str(a, id);
        jq_args_str(a, "1");
        jq_pipe_send(p, err, errlen);
    }
    jq_args_str(a, "EXEC");
    jq_pipe_send(p, err, errlen);
}

static int nonempty_array(const redisReply *r) {
    return r && r->type == REDIS_REPLY_ARRAY && r->elements > 0;
}

static long long reply_ll(const redisReply *r) {
    long long v = -1;
    if (r && r->type == REDIS_REPLY_STRING) jq_parse_ll(r->str, r->len, 0, 1LL << 62, &v);
    return v;
}

/* Fills out from the EXEC reply's elements. */
static void read_snapshot(redisReply **e, size_t n, jq_job_place_t *out) {
    const redisReply *st = e[R_STATE];
    if (st && st->type == REDIS_REPLY_STRING) {
        snprintf(out->state, sizeof(out->state), "%.*s", (int)st->len, st->str);
        /* A retrying job keeps a result hash while it waits in the set. */
        if (!strcmp(out->state, "done") || !strcmp(out->state, "dead") ||
            !strcmp(out->state, "cancelled")) {
            out->where = JQ_WHERE_FINISHED;
            return;
        }
    }
    if (e[R_SCHED] && e[R_SCHED]->type == REDIS_REPLY_STRING) {
        out->where = JQ_WHERE_SCHEDULED;
        out->at_ms = reply_ll(e[R_SCHED]);
    } else if (n > R_PENDING && nonempty_array(e[R_ENTRY])) {
        out->where = nonempty_array(e[R_PENDING]) ? JQ_WHERE_RUNNING : JQ_WHERE_READY;
    } else if (e[R_DEAD] && e[R_DEAD]->type == REDIS_REPLY_STRING) {
        out->where = JQ_WHERE_DEAD;
        out->at_ms = reply_ll(e[R_DEAD]);
    } else if (out->state[0]) {
        out->where = JQ_WHERE_RUNNING; /* e.g. "running": its worker wrote it */
    }
}

/* Looks through the stream for an entry whose `id` field is id. Returns
 * 1 with its entry id in out, 0 when not found, -1 on a fault. */
static int scan_stream(jq_client_t *c, const char *queue, const char *id, jq_job_place_t *out,
                       char *err, size_t errlen) {
    char from[64] = "-";
    size_t idlen = strlen(id);
    for (long long seen = 0; seen < SCAN_MAX;) {
        jq_args_t a;
        jq_args_init(&a);
        jq_args_str(&a, "XRANGE");
        jq_args_key(&a, c, queue, "stream", NULL);
        jq_args_str(&a, from);
        jq_args_str(&a, "+");
        jq_args_str(&a, "COUNT");
        jq_args_str(&a, SCAN_PAGE);
        redisReply *r = jq_client_run(c, &a, err, errlen);
        jq_args_destroy(&a);
        if (!r) return -1;
        int found = 0;
        size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        for (size_t i = 0; i < n && !found; i++) {
            const redisReply *ent = r->element[i];
            if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2) continue;
            const redisReply *eid = ent->element[0], *f = ent->element[1];
            for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
                if (jq_reply_is(f->element[k], "id") && f->element[k + 1]->len == idlen &&
                    !memcmp(f->element[k + 1]->str, id, idlen)) {
                    snprintf(out->entry_id, sizeof(out->entry_id), "%.*s", (int)eid->len, eid->str);
                    found = 1;
                    break;
                }
            /* The next page starts after the last entry of this one. */
            snprintf(from, sizeof(from), "(%.*s", (int)eid->len, eid->str);
        }
        freeReplyObject(r);
        if (found) return 1;
        if (n < (size_t)atoi(SCAN_PAGE)) return 0;
        seen += (long long)n;
    }
    out->where = JQ_WHERE_READY; /* beyond what we look through: assume it is there */
    return 2;
}

/* Ready or running: is the entry in the group's pending list? */
static int pending_or_ready(jq_client_t *c, const char *queue, jq_job_place_t *out, char *err,
                            size_t errlen) {
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "XPENDING");
    jq_args_key(&a, c, queue, "stream", NULL);
    jq_args_str(&a, JQ_GROUP);
    jq_args_str(&a, out->entry_id);
    jq_args_str(&a, out->entry_id);
    jq_args_str(&a, "1");
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!r && strstr(err, "NOGROUP")) {
        out->where = JQ_WHERE_READY; /* no consumer ever read the queue */
        return 0;
    }
    if (!r) return -1;
    out->where = nonempty_array(r) ? JQ_WHERE_RUNNING : JQ_WHERE_READY;
    freeReplyObject(r);
    return 0;
}

int jq_client_locate(jq_client_t *c, const char *queue, const char *id, jq_job_place_t *out,
                     char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (jq_check_queue(&queue, id, err, errlen) < 0) return -1;
    if (!id) {
        jq_seterr(err, errlen, "no job id");
        return -1;
    }
    if (jq_client_ready(c, err, errlen) < 0) return -1;
    int entry = is_entry_id(id);
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    send_snapshot(&p, queue, id, entry, err, errlen);
    redisReply *last = NULL;
    /* MULTI's +OK and the QUEUED replies, then EXEC's array. */
    for (size_t i = 0; i < p.sent; i++) {
        redisReply *r = jq_pipe_reply(&p, err, errlen);
        if (!r) break;
        if (last) freeReplyObject(last);
        last = r;
    }
    int rc = jq_pipe_end(&p);
    if (rc == 0 && (!last || last->type != REDIS_REPLY_ARRAY ||
                    last->elements < (entry ? (size_t)R_N : (size_t)R_ENTRY))) {
        jq_seterr(err, errlen, "redis: the job lookup's transaction failed");
        rc = -1;
    }
    if (rc == 0) {
        read_snapshot(last->element, last->elements, out);
        if (entry && out->where != JQ_WHERE_UNKNOWN && nonempty_array(last->element[R_ENTRY]))
            snprintf(out->entry_id, sizeof(out->entry_id), "%s", id);
    }
    if (last) freeReplyObject(last);
    if (rc < 0 || out->where != JQ_WHERE_UNKNOWN) return rc;
    /* A chosen id, or a retried job's (promoted back as a new entry that
     * carries it): in the stream only if an entry carries it. */
    int found = scan_stream(c, queue, id, out, err, errlen);
    if (found < 0) return -1;
    if (found == 1) return pending_or_ready(c, queue, out, err, errlen);
    if (found == 0) {
        /* It may have finished while the stream was read. */
        jq_result_t r;
        int got = jq_client_result(c, queue, id, &r, err, errlen);
        if (got == 0 && r.state[0]) {
            snprintf(out->state, sizeof(out->state), "%s", r.state);
            out->where = JQ_WHERE_FINISHED;
        }
        jq_result_destroy(&r);
        if (got < 0 && got != JQ_CLIENT_ENOTFOUND) return -1;
    }
    return 0;
}

int jq_client_served(jq_client_t *c, const char *queue, long long *ms_ago, char *err,
                     size_t errlen) {
    *ms_ago = -1;
    if (jq_check_queue(&queue, NULL, err, errlen) < 0) return -1;
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    jq_args_str(&p.a, "ZREVRANGE");
    jq_args_key(&p.a, c, queue, "types", NULL);
    jq_args_str(&p.a, "0");
    jq_args_str(&p.a, "0");
    jq_args_str(&p.a, "WITHSCORES");
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "TIME");
    jq_pipe_send(&p, err, errlen);
    redisReply *types = jq_pipe_reply(&p, err, errlen);
    redisReply *time = types ? jq_pipe_reply(&p, err, errlen) : NULL;
    int rc = jq_pipe_end(&p);
    if (rc == 0 && (jq_reply_ok(types, err, errlen) < 0 || jq_reply_ok(time, err, errlen) < 0))
        rc = -1;
    if (rc == 0 && nonempty_array(types) && types->elements == 2 && nonempty_array(time) &&
        time->elements == 2) {
        long long seen = reply_ll(types->element[1]);
        long long s = reply_ll(time->element[0]), us = reply_ll(time->element[1]);
        if (seen >= 0 && s >= 0 && us >= 0) {
            long long ago = s * 1000 + us / 1000 - seen;
            *ms_ago = ago < 0 ? 0 : ago;
        }
    }
    if (types) freeReplyObject(types);
    if (time) freeReplyObject(time);
    return rc;
}
