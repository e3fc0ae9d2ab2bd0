/* Dead jobs (PROTOCOL §4): list, show, retry, delete. A retry or delete
 * WATCHes the dead set around its MULTI, so a job that another client
 * retried or deleted in between is reported missing instead of being
 * revived as a hash with nothing but `attempt 0`. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "job.h"

/* A busy consumer keeps adding to the dead set, which breaks the WATCH;
 * each try is cheap, so allow plenty before giving up. */
#define WATCH_TRIES 50

typedef enum { OP_RETRY, OP_DELETE } dead_op_t;

void jq_dead_job_destroy(jq_dead_job_t *job) {
    for (size_t i = 0; i < job->nfields; i++) {
        free(job->fields[i].name);
        free(job->fields[i].value);
    }
    free(job->fields);
    memset(job, 0, sizeof(*job));
}

void jq_dead_jobs_free(jq_dead_job_t *jobs, size_t n) {
    if (!jobs) return;
    for (size_t i = 0; i < n; i++) jq_dead_job_destroy(&jobs[i]);
    free(jobs);
}

const jq_field_t *jq_dead_job_field(const jq_dead_job_t *job, const char *name) {
    for (size_t i = 0; i < job->nfields; i++)
        if (!strcmp(job->fields[i].name, name)) return &job->fields[i];
    return NULL;
}

/* The fields a brief listing reads, with HMGET, in this order: of a job
 * hash (dead, scheduled), or of a result hash (done). */
static const char *const brief_fields[] = {"type", "error", "attempt"};
static const char *const brief_done[] = {"state", "error", "attempts"};
#define NBRIEF (sizeof(brief_fields) / sizeof(brief_fields[0]))

/* Copies one field into the next slot of job->fields and points the
 * summary members at it. Returns 0 or -1 (out of memory). */
static int add_field(jq_dead_job_t *job, const char *name, size_t nlen, const redisReply *v) {
    jq_field_t *out = &job->fields[job->nfields];
    out->name = jq_memdup(name, nlen);
    out->value = jq_memdup(v->str, v->len);
    out->value_len = v->len;
    job->nfields++;
    if (!out->name || !out->value) return -1;
    if (!strcmp(out->name, "type"))
        job->type = out->value;
    else if (!strcmp(out->name, "error"))
        job->error = out->value;
    else if (!strcmp(out->name, "attempt") || !strcmp(out->name, "attempts"))
        jq_parse_ll(v->str, v->len, 0, 1LL << 40, &job->attempts);
    return 0;
}

/* Fills job from its id, its score and its HGETALL reply (or, brief, its
 * HMGET reply of brief_fields). */
static int fill_job(jq_dead_job_t *job, const redisReply *id, const redisReply *score,
                    const redisReply *h, int brief, const char *const *names) {
    memset(job, 0, sizeof(*job));
    job->attempts = -1;
    snprintf(job->id, sizeof(job->id), "%.*s", (int)id->len, id->str);
    jq_reply_ll(score, &job->died_at);
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0) return 0;
    job->fields = calloc(brief ? NBRIEF : h->elements / 2, sizeof(*job->fields));
    if (!job->fields) return -1;
    if (brief) {
        for (size_t i = 0; i < NBRIEF && i < h->elements; i++)
            if (h->element[i]->type == REDIS_REPLY_STRING &&
                add_field(job, names[i], strlen(names[i]), h->element[i]) < 0)
                return -1;
        return 0;
    }
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (add_field(job, h->element[i]->str, h->element[i]->len, h->element[i + 1]) < 0)
            return -1;
    return 0;
}

/* Sends ZCARD and the ZRANGE of the page; returns the ZRANGE reply (ids
 * and scores) with *total set, or NULL. */
static redisReply *read_page_ids(jq_client_t *c, const char *queue, const jq_set_page_t *pg,
                                 long long *total, char *err, size_t errlen) {
    const char *set = pg->set == JQ_SET_SCHEDULED ? "scheduled"
                      : pg->set == JQ_SET_DONE    ? "done"
                                                  : "dead";
    long long start = pg->start > 0 ? pg->start : 0;
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    jq_args_str(&p.a, "ZCARD");
    jq_args_key(&p.a, c, queue, set, NULL);
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "ZRANGE");
    jq_args_key(&p.a, c, queue, set, NULL);
    jq_args_ll(&p.a, start);
    jq_args_ll(&p.a, pg->count > 0 ? start + pg->count - 1 : -1);
    if (pg->newest_first) jq_args_str(&p.a, "REV");
    jq_args_str(&p.a, "WITHSCORES");
    jq_pipe_send(&p, err, errlen);
    redisReply *card = jq_pipe_reply(&p, err, errlen);
    redisReply *z = jq_pipe_reply(&p, err, errlen);
    int rc = jq_pipe_end(&p);
    if (rc == 0 && jq_reply_ok(card, err, errlen) == 0 && jq_reply_ok(z, err, errlen) == 0) {
        jq_reply_ll(card, total);
        freeReplyObject(card);
        return z;
    }
    if (card) freeReplyObject(card);
    if (z) freeReplyObject(z);
    return NULL;
}

/* Pipelines one HGETALL (or HMGET) per id of z, then reads every reply,
 * even after a fault, to stay in step. Returns 0 or -1. */
static int read_page_jobs(jq_client_t *c, const char *queue, const redisReply *z, int brief,
                          int done, jq_dead_job_t *list, size_t total, char *err, size_t errlen) {
    const char *const *names = done ? brief_done : brief_fields;
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    for (size_t i = 0; i < total; i++) {
        jq_args_str(&p.a, brief ? "HMGET" : "HGETALL");
        jq_args_key(&p.a, c, queue, done ? "result" : "job", z->element[2 * i]->str);
        for (size_t k = 0; brief && k < NBRIEF; k++) jq_args_str(&p.a, names[k]);
        jq_pipe_send(&p, err, errlen);
    }
    int rc = 0;
    for (size_t i = 0; i < total; i++) {
        redisReply *h = jq_pipe_reply(&p, err, errlen);
        if (!h) break;
        if (rc == 0 && jq_reply_ok(h, err, errlen) < 0) rc = -1;
        if (rc == 0 &&
            fill_job(&list[i], z->element[2 * i], z->element[2 * i + 1], h, brief, names) < 0) {
            jq_seterr(err, errlen, "out of memory");
            rc = -1;
        }
        freeReplyObject(h);
    }
    return jq_pipe_end(&p) < 0 ? -1 : rc;
}

int jq_client_set_list(jq_client_t *c, const char *queue, const jq_set_page_t *pg,
                       jq_dead_job_t **jobs, size_t *n, long long *total, char *err,
                       size_t errlen) {
    *jobs = NULL;
    *n = 0;
    long long card = 0;
    if (total) *total = 0;
    if (jq_check_queue(&queue, NULL, err, errlen) < 0) return -1;
    redisReply *z = read_page_ids(c, queue, pg, &card, err, errlen);
    if (!z) return -1;
    if (total) *total = card;
    size_t count = z->type == REDIS_REPLY_ARRAY ? z->elements / 2 : 0;
    int rc = 0;
    if (count > 0) {
        /* calloc'd: a job that was never filled frees as empty. */
        jq_dead_job_t *list = calloc(count, sizeof(*list));
        if (!list) {
            jq_seterr(err, errlen, "out of memory");
            rc = -1;
        } else if ((rc = read_page_jobs(c, queue, z, pg->brief, pg->set == JQ_SET_DONE, list, count,
                                        err, errlen)) < 0) {
            jq_dead_jobs_free(list, count);
        } else {
            *jobs = list;
            *n = count;
        }
    }
    freeReplyObject(z);
    return rc;
}

int jq_client_dead_list(jq_client_t *c, const char *queue, long long start, long long count,
                        jq_dead_job_t **jobs, size_t *n, char *err, size_t errlen) {
    jq_set_page_t pg = {JQ_SET_DEAD, start, count, 0, 0};
    return jq_client_set_list(c, queue, &pg, jobs, n, NULL, err, errlen);
}

int jq_client_dead_show(jq_client_t *c, const char *queue, const char *id, jq_dead_job_t *job,
                        char *err, size_t errlen) {
    memset(job, 0, sizeof(*job));
    if (jq_check_queue(&queue, id, err, errlen) < 0) return -1;
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "ZSCORE");
    jq_args_key(&a, c, queue, "dead", NULL);
    jq_args_str(&a, id);
    redisReply *s = jq_client_run(c, &a, err, errlen), *h = NULL;
    int rc = -1;
    if (!s) goto out;
    if (s->type == REDIS_REPLY_NIL) {
        rc = JQ_CLIENT_ENOTFOUND;
        goto out;
    }
    jq_args_reset(&a);
    jq_args_str(&a, "HGETALL");
    jq_args_key(&a, c, queue, "job", id);
    h = jq_client_run(c, &a, err, errlen);
    if (!h) goto out;
    redisReply idr = {.type = REDIS_REPLY_STRING, .str = (char *)id, .len = strlen(id)};
    if (fill_job(job, &idr, s, h, 0, brief_fields) < 0) {
        jq_dead_job_destroy(job);
        jq_seterr(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    if (s) freeReplyObject(s);
    if (h) freeReplyObject(h);
    jq_args_destroy(&a);
    return rc;
}

/* A retry's last step: the ZREM from the dead set, only once the id is in
 * `scheduled`. The §4 MULTI's commands each stand alone: a ZADD that failed
 * (the key of another type) did not stop the ZREM, and the job was in
 * neither set. So jobq's own retry sends the ZADD first, then this. */
static const char unbury_lua[] = "if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then\n"
                                 "  return redis.error_reply('ERR job ' .. ARGV[1] .. ' is not in "
                                 "' .. KEYS[2] .. ': left in ' .. KEYS[1])\n"
                                 "end\n"
                                 "return redis.call('ZREM', KEYS[1], ARGV[1])\n";

/* Sends the commands of the op's MULTI body: for a retry §4's, with the
 * ZREM from the dead set last and only if the ZADD landed (unbury_lua). */
static void send_body(jq_pipe_t *p, const char *queue, const char *id, dead_op_t op, char *err,
                      size_t errlen) {
    jq_args_t *a = &p->a;
    if (op == OP_RETRY) {
        jq_args_str(a, "HSET");
        jq_args_key(a, p->c, queue, "job", id);
        jq_args_str(a, "attempt");
        jq_args_str(a, "0");
        jq_pipe_send(p, err, errlen);
        jq_args_str(a, "ZADD");
        jq_args_key(a, p->c, queue, "scheduled", NULL);
        jq_args_str(a, "0");
        jq_args_str(a, id);
        jq_pipe_send(p, err, errlen);
        jq_args_str(a, "EVAL");
        jq_args_str(a, unbury_lua);
        jq_args_str(a, "2");
        jq_args_key(a, p->c, queue, "dead", NULL);
        jq_args_key(a, p->c, queue, "scheduled", NULL);
        jq_args_str(a, id);
        jq_pipe_send(p, err, errlen);
        return;
    }
    jq_args_str(a, "DEL");
    jq_args_key(a, p->c, queue, "job", id);
    jq_pipe_send(p, err, errlen);
    jq_args_str(a, "ZREM");
    jq_args_key(a, p->c, queue, "dead", NULL);
    jq_args_str(a, id);
    jq_pipe_send(p, err, errlen);
    jq_args_str(a, "DEL");
    jq_args_key(a, p->c, queue, "payload", id);
    jq_pipe_send(p, err, errlen);
}

/* WATCHes the dead set, then looks for id in it. Returns 0 when it is
 * there (still watched), ENOTFOUND (unwatched), or -1. */
static int watch_dead(jq_client_t *c, jq_args_t *a, const char *queue, const char *id, char *err,
                      size_t errlen) {
    jq_args_str(a, "WATCH");
    jq_args_key(a, c, queue, "dead", NULL);
    if (jq_client_do(c, a, err, errlen) < 0) return -1;
    jq_args_str(a, "ZSCORE");
    jq_args_key(a, c, queue, "dead", NULL);
    jq_args_str(a, id);
    redisReply *r = jq_client_run(c, a, err, errlen);
    jq_args_reset(a);
    if (!r) return -1;
    int missing = r->type == REDIS_REPLY_NIL;
    freeReplyObject(r);
    if (!missing) return 0;
    jq_args_str(a, "UNWATCH");
    return jq_client_do(c, a, err, errlen) < 0 ? -1 : JQ_CLIENT_ENOTFOUND;
}

/* MULTI, the op's body, EXEC in one round trip. Returns 0 done, 1 when
 * the WATCH fired (EXEC's nil), or -1. */
static int run_transaction(jq_client_t *c, const char *queue, const char *id, dead_op_t op,
                           char *err, size_t errlen) {
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    jq_args_str(&p.a, "MULTI");
    jq_pipe_send(&p, err, errlen);
    send_body(&p, queue, id, op, err, errlen);
    jq_args_str(&p.a, "EXEC");
    jq_pipe_send(&p, err, errlen);
    int rc = 0;
    redisReply *r;
    while (p.read < p.sent && (r = jq_pipe_reply(&p, err, errlen))) {
        int exec = p.read == p.sent;
        if (rc == 0 && jq_reply_ok(r, err, errlen) < 0) rc = -1;
        if (rc == 0 && exec && r->type == REDIS_REPLY_NIL) rc = 1;
        if (rc == 0 && exec && r->type == REDIS_REPLY_ARRAY) rc = jq_reply_each_ok(r, err, errlen);
        freeReplyObject(r);
    }
    return jq_pipe_end(&p) < 0 ? -1 : rc;
}

/* One try: WATCH dead, ZSCORE, then MULTI body EXEC when the job is there.
 * Returns 0 done, 1 when the WATCH fired (try again), ENOTFOUND, or -1. */
static int dead_op_try(jq_client_t *c, const char *queue, const char *id, dead_op_t op, char *err,
                       size_t errlen) {
    jq_args_t a;
    jq_args_init(&a);
    int rc = watch_dead(c, &a, queue, id, err, errlen);
    if (rc == 0 && op == OP_RETRY) {
        /* The last run's result and wake-up would answer a waiter of the
         * new run at once: drop them before the job can run again (never
         * after EXEC, when the new run may already have written its own). */
        jq_args_del_result(&a, c, queue, id);
        rc = jq_client_do(c, &a, err, errlen);
    }
    jq_args_destroy(&a);
    return rc == 0 ? run_transaction(c, queue, id, op, err, errlen) : rc;
}

static int dead_op(jq_client_t *c, const char *queue, const char *id, dead_op_t op, char *err,
                   size_t errlen) {
    if (jq_check_queue(&queue, id, err, errlen) < 0) return -1;
    for (int i = 0; i < WATCH_TRIES; i++) {
        int rc = dead_op_try(c, queue, id, op, err, errlen);
        if (rc != 1) return rc;
    }
    jq_seterr(err, errlen, "dead set of queue %s kept changing; try again", queue);
    return -1;
}

int jq_client_dead_retry(jq_client_t *c, const char *queue, const char *id, char *err,
                         size_t errlen) {
    return dead_op(c, queue, id, OP_RETRY, err, errlen);
}

int jq_client_dead_delete(jq_client_t *c, const char *queue, const char *id, char *err,
                          size_t errlen) {
    return dead_op(c, queue, id, OP_DELETE, err, errlen);
}

static int dead_op_all(jq_client_t *c, const char *queue, dead_op_t op, size_t *done, char *err,
                       size_t errlen) {
    if (done) *done = 0;
    if (jq_check_queue(&queue, NULL, err, errlen) < 0) return -1;
    redisReply *z = jq_client_range(c, "ZRANGE", queue, "dead", NULL, err, errlen);
    if (!z) return -1;
    int rc = 0;
    for (size_t i = 0; z->type == REDIS_REPLY_ARRAY && i < z->elements; i++) {
        int one = dead_op(c, queue, z->element[i]->str, op, err, errlen);
        if (one == JQ_CLIENT_ENOTFOUND) continue;
        if (one < 0) {
            rc = -1;
            break;
        }
        if (done) (*done)++;
    }
    freeReplyObject(z);
    return rc;
}

int jq_client_dead_retry_all(jq_client_t *c, const char *queue, size_t *done, char *err,
                             size_t errlen) {
    return dead_op_all(c, queue, OP_RETRY, done, err, errlen);
}

int jq_client_dead_delete_all(jq_client_t *c, const char *queue, size_t *done, char *err,
                              size_t errlen) {
    return dead_op_all(c, queue, OP_DELETE, done, err, errlen);
}

/* ---- a dead job's payload, however it is stored ---- */

/* Reads a chunked payload: whole (LRANGE) when it fits in max, else only
 * its first chunk (LINDEX). */
static int read_chunks(jq_client_t *c, const char *queue, const char *id, int whole, char **buf,
                       size_t *len, char *err, size_t errlen) {
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, whole ? "LRANGE" : "LINDEX");
    jq_args_key(&a, c, queue, "payload", id);
    jq_args_str(&a, "0");
    if (whole) jq_args_str(&a, "-1");
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!r) return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING) {
        if (!(*buf = jq_memdup(r->str, r->len))) rc = -1;
        *len = r->len;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        if (!(*buf = jq_reply_join(r, len))) rc = -1;
    }
    if (rc < 0) jq_seterr(err, errlen, "out of memory");
    freeReplyObject(r);
    return rc;
}

int jq_client_job_payload(jq_client_t *c, const char *queue, const jq_dead_job_t *job, size_t max,
                          char **buf, size_t *len, size_t *total, char *err, size_t errlen) {
    *buf = NULL;
    *len = *total = 0;
    if (!queue) queue = JQ_QUEUE_DEFAULT;
    const jq_field_t *f = jq_dead_job_field(job, "payload");
    if (f) {
        if (!(*buf = jq_memdup(f->value, f->value_len))) {
            jq_seterr(err, errlen, "out of memory");
            return -1;
        }
        *len = *total = f->value_len;
        return 0;
    }
    if (!jq_dead_job_field(job, "chunks")) return 0; /* nil payload */
    const jq_field_t *size = jq_dead_job_field(job, "size");
    long long sz = -1;
    if (size) jq_parse_ll(size->value, size->value_len, 0, 1LL << 50, &sz);
    int whole = sz >= 0 && (unsigned long long)sz <= max;
    if (read_chunks(c, queue, job->id, whole, buf, len, err, errlen) < 0) return -1;
    *total = sz >= 0 ? (size_t)sz : *len;
    if (whole && *len != *total) *total = *len > *total ? *len : *total; /* incomplete list */
    return 0;
}

/* The one place of a job's fields, for jq_client_job_show: its stream
 * entry (ready, running), its job hash (scheduled), its result hash
 * (finished). */
static redisReply *read_fields(jq_client_t *c, const char *queue, const char *id,
                               const jq_job_place_t *at, redisReply **keep, char *err,
                               size_t errlen) {
    jq_args_t a;
    jq_args_init(&a);
    if (at->where == JQ_WHERE_READY || at->where == JQ_WHERE_RUNNING) {
        jq_args_str(&a, "XRANGE");
        jq_args_key(&a, c, queue, "stream", NULL);
        jq_args_str(&a, at->entry_id);
        jq_args_str(&a, at->entry_id);
    } else {
        jq_args_str(&a, "HGETALL");
        jq_args_key(&a, c, queue, at->where == JQ_WHERE_FINISHED ? "result" : "job", id);
    }
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    *keep = r;
    if (!r || at->where == JQ_WHERE_FINISHED || at->where == JQ_WHERE_SCHEDULED) return r;
    /* [[entry id, [field, value, ...]]]: the entry's fields, or none if it
     * went meanwhile. */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
        return r->element[0]->element[1];
    static redisReply none = {.type = REDIS_REPLY_ARRAY};
    return &none;
}

int jq_client_job_show(jq_client_t *c, const char *queue, const char *id, jq_job_place_t *at,
                       jq_dead_job_t *job, char *err, size_t errlen) {
    memset(job, 0, sizeof(*job));
    if (jq_client_locate(c, queue, id, at, err, errlen) < 0) return -1;
    if (!queue) queue = JQ_QUEUE_DEFAULT;
    if (at->where == JQ_WHERE_UNKNOWN) return JQ_CLIENT_ENOTFOUND;
    /* A job that died in a worker has a result hash (state dead) as well
     * as its job hash in the dead set; the latter says more (type,
     * payload, died_at), so it is shown while the job is in the set. */
    int finished_dead = at->where == JQ_WHERE_FINISHED && !strcmp(at->state, "dead");
    if (at->where == JQ_WHERE_DEAD || finished_dead) {
        int rc = jq_client_dead_show(c, queue, id, job, err, errlen);
        if (rc != JQ_CLIENT_ENOTFOUND || !finished_dead)
            /* Gone from the dead set meanwhile (retried, trimmed): nowhere now. */
            return rc == JQ_CLIENT_ENOTFOUND ? -1 : rc;
        /* Trimmed from the set: its result hash is all there is. */
        jq_dead_job_destroy(job);
    }
    redisReply *keep = NULL;
    const redisReply *h = read_fields(c, queue, id, at, &keep, err, errlen);
    if (!h) return -1;
    char when[24] = "0";
    if (at->entry_id[0])
        snprintf(when, sizeof(when), "%lld", strtoll(at->entry_id, NULL, 10));
    else if (at->at_ms > 0)
        snprintf(when, sizeof(when), "%lld", at->at_ms);
    redisReply idr = {.type = REDIS_REPLY_STRING, .str = (char *)id, .len = strlen(id)};
    redisReply sr = {.type = REDIS_REPLY_STRING, .str = when, .len = strlen(when)};
    int rc = fill_job(job, &idr, &sr, h, 0, brief_fields);
    if (rc < 0) {
        jq_dead_job_destroy(job);
        jq_seterr(err, errlen, "out of memory");
    }
    freeReplyObject(keep);
    return rc;
}
