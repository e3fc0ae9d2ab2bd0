/* Results and waiting (PROTOCOL §3). The result hash is the truth; the
 * notify list is only a wake-up, which another waiter may already have
 * taken: so the hash is read before every blocking slice, and nothing is
 * pushed back. Since PROTOCOL 1.2 only a job enqueued with `notify 1` gets
 * that wake-up: a wait for any other job (or one whose producer is not
 * known) polls the hash, with a backoff. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bigbuf.h"
#include "client_int.h"
#include "job.h"

/* Longest BLPOP: bounds how long a waiter whose wake-up was taken by
 * another waiter sleeps before it looks at the hash again. */
#define WAIT_SLICE_MS 1000
/* Polling a job that pushes no wake-up: the first look again after
 * POLL_FIRST_MS, each pause twice the last up to POLL_MAX_MS. A job done
 * in a few ms is seen within a few ms; a long one costs Redis two small
 * reads a second per waiter. */
#define POLL_FIRST_MS 5
#define POLL_MAX_MS 500

void jq_result_destroy(jq_result_t *r) {
    free(r->result);
    free(r->error);
    free(r->worker);
    memset(r, 0, sizeof(*r));
}

static void result_reset(jq_result_t *r) {
    memset(r, 0, sizeof(*r));
    r->attempts = -1;
    r->finished_at = -1;
}

/* Chunks per LRANGE of a chunked result: 4 MiB at the default 256 KiB. */
#define RESULT_RANGE 16

/* Appends the chunks of one LRANGE reply (`want` of them) to r->result,
 * whose capacity is *cap: sized at the first reply to `chunks` times its
 * first chunk (each chunk but the last is --chunk-size long, PROTOCOL §3),
 * grown only for a list some other writer cut otherwise. */
static int take_range(const redisReply *l, long long want, long long chunks, jq_result_t *r,
                      size_t *cap) {
    if (l->type != REDIS_REPLY_ARRAY || (long long)l->elements != want) return -1;
    for (size_t i = 0; i < l->elements; i++) {
        const redisReply *e = l->element[i];
        if (e->type != REDIS_REPLY_STRING) return -1;
        if (r->result_len + e->len > *cap) {
            size_t grow = *cap ? *cap * 2 : (size_t)chunks * (e->len ? e->len : 1);
            if (grow < r->result_len + e->len) grow = r->result_len + e->len;
            char *bigger = *cap ? realloc(r->result, grow) : jq_bigbuf_alloc(grow);
            if (!bigger) return -2;
            r->result = bigger;
            *cap = grow;
        }
        memcpy(r->result + r->result_len, e->str, e->len);
        r->result_len += e->len;
    }
    return 0;
}

/* Concatenates the list <p>:{<q>}:result:<id>:chunks, which must hold
 * exactly `chunks` elements, RESULT_RANGE chunks per LRANGE with the next
 * one sent before the last is read: each reply is copied into the result
 * once and freed, so the chunks are held once (a single LRANGE of all held
 * them twice, and faulted both copies in). */
static int read_chunks(jq_client_t *c, const char *queue, const char *id, long long chunks,
                       jq_result_t *r, char *err, size_t errlen) {
    char what[JQ_CLIENT_ID_LEN + 16];
    snprintf(what, sizeof(what), "%s:chunks", id);
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    size_t cap = 0;
    long long sent = 0, got = 0; /* chunks asked for, chunks read */
    int rc = 0;
    while (rc == 0 && got < chunks) {
        /* One range in flight beyond the one read next. */
        while (sent < chunks && sent < got + 2 * RESULT_RANGE) {
            long long last = sent + RESULT_RANGE < chunks ? sent + RESULT_RANGE : chunks;
            jq_args_str(&p.a, "LRANGE");
            jq_args_key(&p.a, c, queue, "result", what);
            jq_args_ll(&p.a, sent);
            jq_args_ll(&p.a, last - 1);
            if (jq_pipe_send(&p, err, errlen) < 0) break;
            sent = last;
        }
        redisReply *l = jq_pipe_reply(&p, err, errlen);
        if (!l) {
            rc = -1;
            break;
        }
        long long want = chunks - got < RESULT_RANGE ? chunks - got : RESULT_RANGE;
        rc = take_range(l, want, chunks, r, &cap);
        if (rc == -1)
            jq_seterr(err, errlen, "result of job %s is incomplete: %lld of %lld chunks", id,
                      got + (l->type == REDIS_REPLY_ARRAY ? (long long)l->elements : 0), chunks);
        else if (rc == -2)
            jq_seterr(err, errlen, "out of memory for a result of %lld chunks", chunks);
        got += want;
        freeReplyObject(l);
    }
    if (jq_pipe_end(&p) < 0 || rc != 0) {
        free(r->result);
        r->result = NULL;
        r->result_len = 0;
        return -1;
    }
    return 0;
}

/* Fills r from the field/value pairs of an HGETALL reply. */
static int parse_hash(const redisReply *h, jq_result_t *r, long long *chunks,
                      const redisReply **result) {
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (v->type != REDIS_REPLY_STRING) continue;
        if (jq_reply_is(f, "state")) {
            snprintf(r->state, sizeof(r->state), "%.*s", (int)v->len, v->str);
        } else if (jq_reply_is(f, "result")) {
            *result = v;
        } else if (jq_reply_is(f, "chunks")) {
            if (jq_parse_ll(v->str, v->len, 1, 1LL << 40, chunks) < 0) *chunks = -1;
        } else if (jq_reply_is(f, "error")) {
            if (!(r->error = jq_memdup(v->str, v->len))) return -1;
        } else if (jq_reply_is(f, "worker")) {
            if (!(r->worker = jq_memdup(v->str, v->len))) return -1;
        } else if (jq_reply_is(f, "attempts")) {
            jq_parse_ll(v->str, v->len, 0, 1LL << 40, &r->attempts);
        } else if (jq_reply_is(f, "finished_at")) {
            jq_parse_ll(v->str, v->len, 0, 1LL << 62, &r->finished_at);
        }
    }
    return 0;
}

int jq_client_result(jq_client_t *c, const char *queue, const char *id, jq_result_t *r, char *err,
                     size_t errlen) {
    result_reset(r);
    if (jq_check_queue(&queue, id, err, errlen) < 0) return -1;
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "HGETALL");
    jq_args_key(&a, c, queue, "result", id);
    redisReply *h = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!h) return -1;
    int rc = -1;
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
        rc = JQ_CLIENT_ENOTFOUND;
        goto out;
    }
    r->has_hash = 1;
    long long chunks = 0;
    const redisReply *result = NULL;
    if (parse_hash(h, r, &chunks, &result) < 0) {
        jq_seterr(err, errlen, "out of memory");
        goto out;
    }
    if (strcmp(r->state, "done") != 0) {
        rc = 0;
        goto out;
    }
    if (chunks < 0) {
        jq_seterr(err, errlen, "result of job %s has a bad chunks field", id);
    } else if (chunks > 0) {
        rc = read_chunks(c, queue, id, chunks, r, err, errlen);
    } else if (result) {
        r->result = malloc(result->len ? result->len : 1);
        if (!r->result) {
            jq_seterr(err, errlen, "out of memory");
            goto out;
        }
        memcpy(r->result, result->str, result->len);
        r->result_len = result->len;
        rc = 0;
    } else {
        rc = 0;
    }
out:
    freeReplyObject(h);
    return rc;
}

static int finished(const jq_result_t *r) {
    return !strcmp(r->state, "done") || !strcmp(r->state, "dead") || !strcmp(r->state, "cancelled");
}

/* One BLPOP of at most slice_ms. Returns 1 with the popped state in
 * state[], 0 when nothing came, -1 on a fault. */
static int blpop_slice(jq_client_t *c, const char *queue, const char *id, long long slice_ms,
                       char *state, size_t cap, char *err, size_t errlen) {
    char secs[32];
    snprintf(secs, sizeof(secs), "%lld.%03lld", slice_ms / 1000, slice_ms % 1000);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "BLPOP");
    jq_args_key(&a, c, queue, "notify", id);
    jq_args_str(&a, secs);
    redisReply *p = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!p) return -1;
    int got = 0;
    if (p->type == REDIS_REPLY_ARRAY && p->elements == 2 &&
        p->element[1]->type == REDIS_REPLY_STRING) {
        snprintf(state, cap, "%.*s", (int)p->element[1]->len, p->element[1]->str);
        got = 1;
    }
    freeReplyObject(p);
    return got;
}

static void sleep_ms(long long ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) continue;
}

/* The pause before the next look at the hash: one BLPOP slice for a job
 * that pushes its wake-up (1 with the popped state, 0 when nothing came),
 * else a sleep of *poll_ms, which doubles (0). -1 on a fault. */
static int pause_slice(jq_client_t *c, const char *queue, const char *id, unsigned flags,
                       long long left, long long *poll_ms, char *state, size_t cap, char *err,
                       size_t errlen) {
    if (flags & JQ_NOTIFY)
        return blpop_slice(c, queue, id, left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS, state, cap,
                           err, errlen);
    sleep_ms(left < *poll_ms ? left : *poll_ms);
    *poll_ms = *poll_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : *poll_ms * 2;
    return 0;
}

int jq_client_wait(jq_client_t *c, const char *queue, const char *id, long long timeout_ms,
                   jq_result_t *r, char *err, size_t errlen) {
    return jq_client_wait_flags(c, queue, id, timeout_ms, 0, r, err, errlen);
}

int jq_client_wait_flags(jq_client_t *c, const char *queue, const char *id, long long timeout_ms,
                         unsigned flags, jq_result_t *r, char *err, size_t errlen) {
    if (!queue) queue = JQ_QUEUE_DEFAULT;
    long long poll_ms = POLL_FIRST_MS;
    long long deadline = (long long)jq_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    result_reset(r);
    for (;;) {
        jq_result_destroy(r);
        int rc = jq_client_result(c, queue, id, r, err, errlen);
        if (rc == 0 && finished(r)) return 0;
        if (rc < 0 && rc != JQ_CLIENT_ENOTFOUND) return rc;
        long long left = deadline - (long long)jq_now_ms();
        if (left <= 0) return JQ_CLIENT_ETIMEOUT;
        char state[16];
        int got =
            pause_slice(c, queue, id, flags, left, &poll_ms, state, sizeof(state), err, errlen);
        if (got < 0) return -1;
        if (!got) continue;
        /* Woken: the hash says the rest, unless the job kept none
         * (result_ttl 0), in which case the popped state is all there is. */
        jq_result_destroy(r);
        rc = jq_client_result(c, queue, id, r, err, errlen);
        if (rc == 0 && finished(r)) return 0;
        if (rc == JQ_CLIENT_ENOTFOUND) {
            snprintf(r->state, sizeof(r->state), "%s", state);
            return 0;
        }
        if (rc < 0) return rc;
    }
}
