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

const jq_field_t *jq_dead_job_field(const jq_dead_job_t *job,
                                    const char *name) {
    for (size_t i = 0; i < job->nfields; i++)
        if (!strcmp(job->fields[i].name, name)) return &job->fields[i];
    return NULL;
}

static char *copy_bytes(const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* Fills job from its id, its dead-set score and its HGETALL reply. */
static int fill_job(jq_dead_job_t *job, const redisReply *id,
                    const redisReply *score, const redisReply *h) {
    memset(job, 0, sizeof(*job));
    job->attempts = -1;
    snprintf(job->id, sizeof(job->id), "%.*s", (int)id->len, id->str);
    jq_reply_ll(score, &job->died_at);
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements < 2) return 0;
    job->fields = calloc(h->elements / 2, sizeof(*job->fields));
    if (!job->fields) return -1;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        jq_field_t *out = &job->fields[job->nfields];
        out->name = copy_bytes(f->str, f->len);
        out->value = copy_bytes(v->str, v->len);
        out->value_len = v->len;
        job->nfields++;
        if (!out->name || !out->value) return -1;
        if (!strcmp(out->name, "type")) job->type = out->value;
        else if (!strcmp(out->name, "error")) job->error = out->value;
        else if (!strcmp(out->name, "attempt"))
            jq_parse_ll(v->str, v->len, 0, 1LL << 40, &job->attempts);
    }
    return 0;
}

int jq_client_dead_list(jq_client_t *c, const char *queue, long long start,
                        long long count, jq_dead_job_t **jobs, size_t *n,
                        char *err, size_t errlen) {
    *jobs = NULL;
    *n = 0;
    if (!queue) queue = JQ_QUEUE_DEFAULT;
    if (jq_check_name("queue name", queue, err, errlen) < 0) return -1;
    if (start < 0) start = 0;
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "ZRANGE");
    jq_args_key(&a, c, queue, "dead", NULL);
    jq_args_ll(&a, start);
    jq_args_ll(&a, count > 0 ? start + count - 1 : -1);
    jq_args_str(&a, "WITHSCORES");
    redisReply *z = jq_client_run(c, &a, err, errlen);
    int rc = -1;
    if (!z) goto out;
    size_t total = z->type == REDIS_REPLY_ARRAY ? z->elements / 2 : 0;
    if (total == 0) {
        rc = 0;
        goto out;
    }
    /* One round trip for all the hashes: pipeline every HGETALL, then
     * read all the replies, even after a fault, to stay in step. */
    for (size_t i = 0; i < total; i++) {
        jq_args_reset(&a);
        jq_args_str(&a, "HGETALL");
        jq_args_key(&a, c, queue, "job", z->element[2 * i]->str);
        if (jq_client_append(c, &a, err, errlen) < 0) {
            if (c->ctx) c->ctx->err = REDIS_ERR_OTHER;
            goto out;
        }
    }
    jq_dead_job_t *list = calloc(total, sizeof(*list));
    size_t filled = 0;
    rc = list ? 0 : -1;
    if (!list) jq_seterr(err, errlen, "out of memory");
    for (size_t i = 0; i < total; i++) {
        redisReply *h = jq_client_reply(c, err, errlen);
        if (!h) {
            rc = -1;
            break;
        }
        if (rc == 0 && jq_reply_ok(h, err, errlen) < 0) rc = -1;
        if (rc == 0) {
            filled++;
            if (fill_job(&list[i], z->element[2 * i], z->element[2 * i + 1], h) < 0) {
                jq_seterr(err, errlen, "out of memory");
                rc = -1;
            }
        }
        freeReplyObject(h);
    }
    if (rc < 0) {
        jq_dead_jobs_free(list, filled);
    } else {
        *jobs = list;
        *n = total;
    }
out:
    if (z) freeReplyObject(z);
    jq_args_destroy(&a);
    return rc;
}

int jq_client_dead_show(jq_client_t *c, const char *queue, const char *id,
                        jq_dead_job_t *job, char *err, size_t errlen) {
    memset(job, 0, sizeof(*job));
    if (!queue) queue = JQ_QUEUE_DEFAULT;
    if (jq_check_name("queue name", queue, err, errlen) < 0 ||
        jq_check_name("job id", id, err, errlen) < 0)
        return -1;
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
    if (fill_job(job, &idr, s, h) < 0) {
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

/* Appends the commands of the op's MULTI body: §4 exactly for a retry. */
static void append_body(jq_args_t *a, jq_client_t *c, const char *queue,
                        const char *id, dead_op_t op, int *ok, char *err,
                        size_t errlen) {
#define SEND() \
    do { if (*ok && jq_client_append(c, a, err, errlen) < 0) *ok = 0; jq_args_reset(a); } while (0)
    if (op == OP_RETRY) {
        jq_args_str(a, "HSET");
        jq_args_key(a, c, queue, "job", id);
        jq_args_str(a, "attempt");
        jq_args_str(a, "0");
        SEND();
        jq_args_str(a, "ZREM");
        jq_args_key(a, c, queue, "dead", NULL);
        jq_args_str(a, id);
        SEND();
        jq_args_str(a, "ZADD");
        jq_args_key(a, c, queue, "scheduled", NULL);
        jq_args_str(a, "0");
        jq_args_str(a, id);
        SEND();
    } else {
        jq_args_str(a, "DEL");
        jq_args_key(a, c, queue, "job", id);
        SEND();
        jq_args_str(a, "ZREM");
        jq_args_key(a, c, queue, "dead", NULL);
        jq_args_str(a, id);
        SEND();
        jq_args_str(a, "DEL");
        jq_args_key(a, c, queue, "payload", id);
        SEND();
    }
#undef SEND
}

/* One try: WATCH dead, ZSCORE, then MULTI body EXEC when the job is there.
 * Returns 0 done, 1 when the WATCH fired (try again), ENOTFOUND, or -1. */
static int dead_op_try(jq_client_t *c, const char *queue, const char *id,
                       dead_op_t op, char *err, size_t errlen) {
    jq_args_t a;
    jq_args_init(&a);
    int rc = -1;
    redisReply *r = NULL;
    jq_args_str(&a, "WATCH");
    jq_args_key(&a, c, queue, "dead", NULL);
    if (!(r = jq_client_run(c, &a, err, errlen))) goto out;
    freeReplyObject(r);
    jq_args_reset(&a);
    jq_args_str(&a, "ZSCORE");
    jq_args_key(&a, c, queue, "dead", NULL);
    jq_args_str(&a, id);
    if (!(r = jq_client_run(c, &a, err, errlen))) goto out;
    int missing = r->type == REDIS_REPLY_NIL;
    freeReplyObject(r);
    r = NULL;
    jq_args_reset(&a);
    if (missing) {
        jq_args_str(&a, "UNWATCH");
        if ((r = jq_client_run(c, &a, err, errlen))) rc = JQ_CLIENT_ENOTFOUND;
        goto out;
    }
    if (op == OP_RETRY) {
        /* The last run's result and wake-up would answer a waiter of the
         * new run at once: drop them before the job can run again (never
         * after EXEC, when the new run may already have written its own). */
        char chunks[JQ_CLIENT_ID_LEN + 16];
        snprintf(chunks, sizeof(chunks), "%s:chunks", id);
        jq_args_str(&a, "DEL");
        jq_args_key(&a, c, queue, "result", id);
        jq_args_key(&a, c, queue, "result", chunks);
        jq_args_key(&a, c, queue, "notify", id);
        if (!(r = jq_client_run(c, &a, err, errlen))) goto out;
        freeReplyObject(r);
        r = NULL;
        jq_args_reset(&a);
    }
    int ok = 1;
    jq_args_str(&a, "MULTI");
    if (jq_client_append(c, &a, err, errlen) < 0) ok = 0;
    jq_args_reset(&a);
    append_body(&a, c, queue, id, op, &ok, err, errlen);
    jq_args_str(&a, "EXEC");
    if (ok && jq_client_append(c, &a, err, errlen) < 0) ok = 0;
    if (!ok) {
        if (c->ctx) c->ctx->err = REDIS_ERR_OTHER;
        goto out;
    }
    rc = 0;
    for (int i = 0; i < 5; i++) { /* MULTI, 3 QUEUED, EXEC */
        r = jq_client_reply(c, err, errlen);
        if (!r) {
            rc = -1;
            goto out;
        }
        if (rc == 0 && jq_reply_ok(r, err, errlen) < 0) rc = -1;
        if (rc == 0 && i == 4 && r->type == REDIS_REPLY_NIL) rc = 1;
        if (rc == 0 && i == 4 && r->type == REDIS_REPLY_ARRAY)
            for (size_t k = 0; k < r->elements; k++)
                if (rc == 0 && jq_reply_ok(r->element[k], err, errlen) < 0) rc = -1;
        freeReplyObject(r);
        r = NULL;
    }
out:
    if (r) freeReplyObject(r);
    jq_args_destroy(&a);
    return rc;
}

static int dead_op(jq_client_t *c, const char *queue, const char *id,
                   dead_op_t op, char *err, size_t errlen) {
    if (!queue) queue = JQ_QUEUE_DEFAULT;
    if (jq_check_name("queue name", queue, err, errlen) < 0 ||
        jq_check_name("job id", id, err, errlen) < 0)
        return -1;
    for (int i = 0; i < WATCH_TRIES; i++) {
        int rc = dead_op_try(c, queue, id, op, err, errlen);
        if (rc != 1) return rc;
    }
    jq_seterr(err, errlen, "dead set of queue %s kept changing; try again", queue);
    return -1;
}

int jq_client_dead_retry(jq_client_t *c, const char *queue, const char *id,
                         char *err, size_t errlen) {
    return dead_op(c, queue, id, OP_RETRY, err, errlen);
}

int jq_client_dead_delete(jq_client_t *c, const char *queue, const char *id,
                          char *err, size_t errlen) {
    return dead_op(c, queue, id, OP_DELETE, err, errlen);
}

static int dead_op_all(jq_client_t *c, const char *queue, dead_op_t op,
                       size_t *done, char *err, size_t errlen) {
    if (done) *done = 0;
    if (!queue) queue = JQ_QUEUE_DEFAULT;
    if (jq_check_name("queue name", queue, err, errlen) < 0) return -1;
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "ZRANGE");
    jq_args_key(&a, c, queue, "dead", NULL);
    jq_args_str(&a, "0");
    jq_args_str(&a, "-1");
    redisReply *z = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
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

int jq_client_dead_retry_all(jq_client_t *c, const char *queue, size_t *done,
                             char *err, size_t errlen) {
    return dead_op_all(c, queue, OP_RETRY, done, err, errlen);
}

int jq_client_dead_delete_all(jq_client_t *c, const char *queue,
                              size_t *done, char *err, size_t errlen) {
    return dead_op_all(c, queue, OP_DELETE, done, err, errlen);
}
