/* Outcomes: every attempt that ends (and every job dead-lettered on
 * arrival) is queued here, and once per loop turn the queue is written as
 * one MULTI/EXEC per queue: results, notify lists, retries or dead letters,
 * then one XACK and one XDEL for all entries, then the counters and latency
 * buckets summed over the batch. So the hot path costs no round trip per
 * job, and a worker killed mid-batch leaves every entry of it pending (EXEC
 * never ran), to be run again elsewhere: at least once, never zero. */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

#define NBUCKETS 16
#define RESULT_CHUNKS_PER_CMD 8 /* result chunks per RPUSH */
static const long long bucket_ms[NBUCKETS - 1] = {1, 2, 5, 10, 25, 50, 100, 250, 500,
                                                  1000, 2500, 5000, 10000, 30000, 60000};

typedef struct qsum {
    long long processed, failed, retried, dead;
    long long wait[NBUCKETS], run[NBUCKETS];
    long long wait_n, run_n, wait_us, run_us;
} qsum_t;

typedef struct argv {
    const char **v;
    size_t *l;
    int n, cap;
    int failed;  /* an argument could not be added: never send this one */
} argv_t;

static int a_add(argv_t *a, const char *s, size_t len) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 32;
        const char **v = realloc(a->v, cap * sizeof(*v));
        if (!v) return a->failed = -1;
        a->v = v;
        size_t *l = realloc(a->l, cap * sizeof(*l));
        if (!l) return a->failed = -1;
        a->l = l;
        a->cap = cap;
    }
    a->v[a->n] = s;
    a->l[a->n] = len;
    a->n++;
    return 0;
}
static void a_str(argv_t *a, const char *s) { a_add(a, s, strlen(s)); }

/* Sends the command built in a, unless an argument is missing from it.
 * Returns 0, or -1 (nothing sent; inside a MULTI the caller discards). */
static int a_send(jq_worker_t *w, argv_t *a) {
    int rc = a->failed ? -1 : jq_rconn_cmdargv(&w->rwrite, NULL, NULL, a->n, a->v, a->l);
    a->n = 0;
    a->failed = 0;
    return rc;
}

static int bucket_of(long long ms) {
    for (int i = 0; i < NBUCKETS - 1; i++)
        if (ms <= bucket_ms[i]) return i;
    return NBUCKETS - 1;
}

/* The delay before retry number n (1-based): backoff * 2^(n-1) with +-20%
 * jitter, so that jobs failing together do not retry together, then capped:
 * the cap is a hard bound (--backoff-max-ms), so it comes after the jitter. */
static long long retry_delay(const jq_options_t *o, long long n) {
    double jitter = 0.8 + 0.4 * ((double)rand() / (double)RAND_MAX);
    double d = (double)o->backoff_ms * pow(2.0, (double)(n - 1)) * jitter;
    if (d > (double)o->backoff_max_ms) d = (double)o->backoff_max_ms;
    return (long long)d;
}

/* <p>:{q}:job:<id> := the entry's own fields plus extra pairs. Deleted
 * first: a producer may reuse the id of a job that died, and the old job's
 * fields (enc, chunks, its own) must not ride along into this one's retry. */
static int write_job_hash(jq_worker_t *w, jq_run_t *r, const char *key,
                          const char **extra, int nextra) {
    jq_rconn_cmd(&w->rwrite, NULL, NULL, "DEL %s", key);
    argv_t a = {0};
    a_str(&a, "HSET");
    a_str(&a, key);
    redisReply *f = r->fields;
    for (size_t i = 0; f && i + 1 < f->elements; i += 2) {
        redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (!jq_job_field_kept(k->str, k->len)) continue;
        a_add(&a, k->str, k->len);
        a_add(&a, v->str, v->len);
    }
    for (int i = 0; i < nextra; i++) a_str(&a, extra[i]);
    int rc = a_send(w, &a);
    free(a.v);
    free(a.l);
    return rc;
}

/* The handler is done with the decoded payload: free it (and for a done
 * job the entry's fields, which hold an inline payload) before the result
 * is copied into hiredis' output buffer, so that a large payload, its
 * result and that copy are never in memory at once. Not for an abandoned
 * cpu run, whose thread may still read it. */
static void drop_payload(jq_run_t *r) {
    if (r->keep) return;
    if (r->zone) msgpack_zone_free(r->zone);
    r->zone = NULL;
    r->payload.type = MSGPACK_OBJECT_NIL;
    if (r->jbuf.data) msgpack_sbuffer_destroy(&r->jbuf);
    memset(&r->jbuf, 0, sizeof(r->jbuf));
    if (r->outcome == JQ_OUT_DONE && r->fields) {
        /* Only retries and dead letters copy the fields (write_job_hash);
         * r->job's string views into them are not used past this point. */
        freeReplyObject(r->fields);
        r->fields = NULL;
        memset(&r->job.type, 0, sizeof(r->job.type));
        memset(&r->job.payload, 0, sizeof(r->job.payload));
    }
}

/* Appends r's outcome to the MULTI. Returns 0, or -1 when a command could
 * not be built (out of memory): the caller discards the MULTI. */
static int write_outcome(jq_worker_t *w, jq_run_t *r, qsum_t *sum) {
    int bad = 0;
    const jq_options_t *o = w->opt;
    drop_payload(r);
    const char *qn = w->queues[r->q].name, *id = r->job.id;
    char rkey[JQ_KEY_MAX], nkey[JQ_KEY_MAX], jkey[JQ_KEY_MAX], zkey[JQ_KEY_MAX];
    char attempts[24], now[24], ttl[24];
    jq_key_id(rkey, sizeof(rkey), o->prefix, qn, "result", id);
    jq_key_id(nkey, sizeof(nkey), o->prefix, qn, "notify", id);
    jq_key_id(jkey, sizeof(jkey), o->prefix, qn, "job", id);

    long long made = r->job.attempt + (r->outcome == JQ_OUT_DEAD ? 0 : 1);
    const char *state = "done";
    if (r->outcome == JQ_OUT_DEAD) {
        state = "dead";
    } else if (r->outcome == JQ_OUT_FAILED) {
        sum->failed++;
        state = made < r->job.max_attempts ? "retrying" : "dead";
    } else {
        sum->processed++;
    }
    snprintf(attempts, sizeof(attempts), "%lld", made);
    snprintf(now, sizeof(now), "%lld", (long long)r->finished_ms);
    long long ttl_s = r->job.result_ttl;

    if (strcmp(state, "retrying") == 0) {
        sum->retried++;
        char due[24], zkey2[JQ_KEY_MAX];
        snprintf(due, sizeof(due), "%lld", (long long)r->finished_ms + retry_delay(o, made));
        const char *extra[] = {"id", id, "attempt", attempts, "error", r->error};
        bad |= write_job_hash(w, r, jkey, extra, 6);
        jq_key(zkey2, sizeof(zkey2), o->prefix, qn, "scheduled");
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "ZADD %s %s %s", zkey2, due, id);
    } else if (strcmp(state, "dead") == 0) {
        sum->dead++;
        const char *extra[] = {"id", id, "attempt", attempts, "error", r->error, "failed_at", now};
        bad |= write_job_hash(w, r, jkey, extra, 8);
        jq_key(zkey, sizeof(zkey), o->prefix, qn, "dead");
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "ZADD %s %s %s", zkey, now, id);
    } else if (r->job.chunks) {
        char pkey[JQ_KEY_MAX];
        jq_key_id(pkey, sizeof(pkey), o->prefix, qn, "payload", id);
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "DEL %s", pkey);
    }

    /* The result hash: written anew each attempt, so no field of an
     * earlier attempt (an old error) lingers. A first attempt of a job
     * whose id is its own entry id can have no earlier result (entry ids
     * are never reused), so the common case skips the DEL: one command of
     * about six per job. */
    char ckey[JQ_KEY_MAX];
    jq_key_id(ckey, sizeof(ckey), o->prefix, qn, "result", id);
    strncat(ckey, ":chunks", sizeof(ckey) - strlen(ckey) - 1);
    if (r->job.attempt > 0 || strcmp(id, r->job.entry_id) != 0)
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "DEL %s %s", rkey, ckey);
    if (ttl_s > 0) {
        argv_t a = {0};
        char nchunks[24];
        a_str(&a, "HSET");
        a_str(&a, rkey);
        a_str(&a, "state");
        a_str(&a, state);
        a_str(&a, "attempts");
        a_str(&a, attempts);
        a_str(&a, "finished_at");
        a_str(&a, now);
        a_str(&a, "worker");
        a_str(&a, w->id);
        if (r->outcome != JQ_OUT_DONE) {
            a_str(&a, "error");
            a_str(&a, r->error);
        }
        size_t rlen = r->task.result.size;
        if (r->outcome == JQ_OUT_DONE && rlen > 0) {
            if ((long long)rlen <= o->chunk_size) {
                a_str(&a, "result");
                a_add(&a, r->task.result.data, rlen);
            } else {
                /* Large results go to a list of chunk_size pieces, never one
                 * giant value (PROTOCOL §3). */
                long long n = ((long long)rlen + o->chunk_size - 1) / o->chunk_size;
                snprintf(nchunks, sizeof(nchunks), "%lld", n);
                a_str(&a, "chunks");
                a_str(&a, nchunks);
                /* Several RPUSHes of a few chunks: hiredis formats each
                 * command into one buffer before it copies it to its output
                 * buffer, so one RPUSH of everything would hold a third
                 * copy of the result for a moment. */
                argv_t c = {0};
                size_t step = (size_t)o->chunk_size;
                for (size_t off = 0; off < rlen; off += step) {
                    if (c.n == 0) {
                        a_str(&c, "RPUSH");
                        a_str(&c, ckey);
                    }
                    a_add(&c, r->task.result.data + off, rlen - off < step ? rlen - off : step);
                    if (c.n == 2 + RESULT_CHUNKS_PER_CMD || off + step >= rlen) bad |= a_send(w, &c);
                }
                free(c.v);
                free(c.l);
                jq_rconn_cmd(&w->rwrite, NULL, NULL, "EXPIRE %s %lld", ckey, ttl_s);
            }
        }
        bad |= a_send(w, &a);
        free(a.v);
        free(a.l);
        snprintf(ttl, sizeof(ttl), "%lld", ttl_s);
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "EXPIRE %s %s", rkey, ttl);
    }
    if (strcmp(state, "retrying") != 0) {
        long long nttl = ttl_s > 0 ? ttl_s : 60;
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "LPUSH %s %s", nkey, state);
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "EXPIRE %s %lld", nkey, nttl);
    }

    if (r->outcome != JQ_OUT_DEAD || r->started_ms) {
        if (r->started_ms && r->job.enqueued_ms) {
            long long wait_ms = r->started_ms - r->job.enqueued_ms;
            if (wait_ms < 0) wait_ms = 0;
            sum->wait[bucket_of(wait_ms)]++;
            sum->wait_n++;
            sum->wait_us += wait_ms * 1000;
        }
        if (r->started_ms) {
            sum->run[bucket_of(r->run_us / 1000)]++;
            sum->run_n++;
            sum->run_us += r->run_us;
        }
    }
    return bad ? -1 : 0;
}

static void write_sums(jq_worker_t *w, const char *qn, const qsum_t *s) {
    const jq_options_t *o = w->opt;
    char key[JQ_KEY_MAX], mkey[JQ_KEY_MAX], lkey[JQ_KEY_MAX], suffix[48];
    jq_key(key, sizeof(key), o->prefix, qn, "stats");
    snprintf(suffix, sizeof(suffix), "stats:%lld", (long long)(jq_now_ms() / 60000));
    jq_key(mkey, sizeof(mkey), o->prefix, qn, suffix);
    const char *names[] = {"processed", "failed", "retried", "dead"};
    long long vals[] = {s->processed, s->failed, s->retried, s->dead};
    for (int i = 0; i < 4; i++) {
        if (!vals[i]) continue;
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "HINCRBY %s %s %lld", key, names[i], vals[i]);
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "HINCRBY %s %s %lld", mkey, names[i], vals[i]);
    }
    jq_rconn_cmd(&w->rwrite, NULL, NULL, "EXPIRE %s 86400", mkey);
    jq_key(lkey, sizeof(lkey), o->prefix, qn, "latency");
    const char *kinds[] = {"wait", "run"};
    const long long *b[] = {s->wait, s->run};
    const long long cnt[] = {s->wait_n, s->run_n}, us[] = {s->wait_us, s->run_us};
    for (int k = 0; k < 2; k++) {
        if (!cnt[k]) continue;
        for (int i = 0; i < NBUCKETS; i++) {
            if (!b[k][i]) continue;
            char f[32];
            if (i < NBUCKETS - 1)
                snprintf(f, sizeof(f), "%s:le:%lld", kinds[k], bucket_ms[i]);
            else
                snprintf(f, sizeof(f), "%s:le:inf", kinds[k]);
            jq_rconn_cmd(&w->rwrite, NULL, NULL, "HINCRBY %s %s %lld", lkey, f, b[k][i]);
        }
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "HINCRBY %s %s:count %lld", lkey, kinds[k], cnt[k]);
        jq_rconn_cmd(&w->rwrite, NULL, NULL, "HINCRBY %s %s:sum_us %lld", lkey, kinds[k], us[k]);
    }
}

static void flush_batch(jq_worker_t *w);

typedef struct jq_flush {
    jq_worker_t *w;
    jq_run_t *runs;
    struct jq_flush *next, *prev; /* in w->flights while in flight */
} flush_t;

/* In flight: sent, its reply not yet handled. */
static void fly(jq_worker_t *w, flush_t *f) {
    f->prev = NULL;
    f->next = w->flights;
    if (w->flights) w->flights->prev = f;
    w->flights = f;
    w->flushing++;
}

static void land(jq_worker_t *w, flush_t *f) {
    if (f->prev) f->prev->next = f->next;
    else w->flights = f->next;
    if (f->next) f->next->prev = f->prev;
    w->flushing--;
}

int jq_finish_holds(jq_worker_t *w, int q, const char *id) {
    for (jq_run_t *r = w->batch_head; r; r = r->bnext)
        if (r->q == q && strcmp(r->job.entry_id, id) == 0) return 1;
    for (flush_t *f = w->flights; f; f = f->next)
        for (jq_run_t *r = f->runs; r; r = r->bnext)
            if (r->q == q && strcmp(r->job.entry_id, id) == 0) return 1;
    return 0;
}

/* Appends r to the batch again (a write that did not happen): it was
 * counted in w->unacked by jq_finish_add already. */
static void requeue(jq_worker_t *w, jq_run_t *r) {
    r->bnext = NULL;
    if (r->sent) {
        /* Not on its way after all: its slot is not free ahead of a read. */
        jq_admit_sent(&w->admit, r->q, r->kind, -1);
        r->sent = 0;
    }
    if (w->batch_tail)
        w->batch_tail->bnext = r;
    else
        w->batch_head = r;
    w->batch_tail = r;
}

static void release(jq_run_t *r) {
    r->bnext = NULL;
    if (r->keep) {
        r->keep = 2; /* written; the pool's done callback frees it */
        return;
    }
    jq_run_free(r);
}

/* ---- refused writes: held, not dropped ----
 *
 * An EXEC that Redis refuses as a whole (EXECABORT after an OOM, READONLY
 * after a failover, MISCONF, LOADING...) wrote nothing: its runs go back
 * to the batch, and the worker holds them, fetching and reclaiming nothing
 * new, until Redis takes them, trying again after HOLD_MIN_MS doubling to
 * HOLD_MAX_MS. Their entries stay pending in our name and renewed, so no
 * other worker runs them again and none dies "worker lost" for it. One log
 * line when the episode starts, one when it ends. */

#define HOLD_MIN_MS 200
#define HOLD_MAX_MS 5000

static void hold(jq_worker_t *w, const char *why, int nruns) {
    int64_t now = jq_now_ms();
    if (!w->held) {
        w->held = 1;
        w->held_since_ms = now;
        w->hold_ms = HOLD_MIN_MS;
        jq_warn("redis refuses our writes (%s): holding %d finished jobs, fetching none, "
                "retrying every %d to %d ms", why, nruns, HOLD_MIN_MS, HOLD_MAX_MS);
    } else {
        w->hold_ms = w->hold_ms * 2 > HOLD_MAX_MS ? HOLD_MAX_MS : w->hold_ms * 2;
    }
    w->hold_next_ms = now + w->hold_ms;
}

static void unhold(jq_worker_t *w) {
    if (!w->held) return;
    w->held = 0;
    jq_info("redis takes our writes again: held outcomes written after %lld ms",
            (long long)(jq_now_ms() - w->held_since_ms));
}

static void requeue_all(jq_worker_t *w, jq_run_t *r, int unsure) {
    for (jq_run_t *next; r; r = next) {
        next = r->bnext;
        r->unsure |= unsure;
        requeue(w, r);
    }
}

static void on_exec(redisAsyncContext *ac, void *rp, void *priv) {
    flush_t *f = priv;
    jq_worker_t *w = f->w;
    land(w, f);
    redisReply *reply = rp;
    jq_run_t *r = f->runs, *next;
    int n = 0;
    for (jq_run_t *k = r; k; k = k->bnext) n++;
    if (reply == NULL) {
        /* Lost before EXEC answered: it may or may not have run. Once the
         * connection is back, the runs whose entries are still pending
         * are written again, the others were (see verify). */
        requeue_all(w, r, 1);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* Refused as a whole: nothing was written. */
        requeue_all(w, r, 0);
        hold(w, reply->str, n);
    } else {
        /* Run. A command failing inside it (a key of the wrong type under
         * our result key) does not undo the others: the ack went through
         * with them, so the outcome stands; say what failed. */
        for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
            if (reply->element[i]->type == REDIS_REPLY_ERROR) {
                jq_error("writing outcomes: %s", reply->element[i]->str);
                break;
            }
        for (; r; r = next) {
            next = r->bnext;
            w->unacked--;
            release(r);
        }
        unhold(w);
    }
    free(f);
    /* The acked entries' slots are free only now (see unacked). */
    jq_fetch_kick(w);
    jq_worker_maybe_exit(w);
}

/* ---- after a lost EXEC reply: which outcomes were written ----
 *
 * Writing them all again would count them twice in the stats and, for a
 * retry, schedule a second attempt. An outcome was written if and only if
 * its entry was acked (the XACK is in the same MULTI): so ask, for each,
 * whether it is still pending, in one script per queue. */

static const char pending_lua[] =
    "local out = {}\n"
    "for i = 1, #ARGV do\n"
    "  out[i] = #redis.call('XPENDING', KEYS[1], '" JQ_GROUP "', ARGV[i], ARGV[i], 1)\n"
    "end\n"
    "return out\n";

static void on_verified(redisAsyncContext *ac, void *rp, void *priv) {
    flush_t *f = priv;
    jq_worker_t *w = f->w;
    land(w, f);
    redisReply *reply = rp;
    int n = 0;
    for (jq_run_t *k = f->runs; k; k = k->bnext) n++;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || (int)reply->elements != n) {
        /* Lost again, or refused: still unsure; asked again later. */
        if (reply && reply->type == REDIS_REPLY_ERROR) hold(w, reply->str, n);
        requeue_all(w, f->runs, 1);
    } else {
        size_t i = 0;
        for (jq_run_t *r = f->runs, *next; r; r = next, i++) {
            next = r->bnext;
            r->unsure = 0;
            if (reply->element[i]->type == REDIS_REPLY_INTEGER && reply->element[i]->integer == 0) {
                w->unacked--; /* acked with its outcome: written */
                release(r);
            } else {
                requeue(w, r);
            }
        }
    }
    free(f);
    jq_fetch_kick(w);
    jq_worker_maybe_exit(w);
}

/* Takes the unsure runs of queue q out of the batch and asks about them.
 * Returns how many were sent to be checked. */
static int verify(jq_worker_t *w, int q) {
    flush_t *f = calloc(1, sizeof(*f));
    if (!f) return 0;
    f->w = w;
    argv_t a = {0};
    a_str(&a, "EVAL");
    a_str(&a, pending_lua);
    a_str(&a, "1");
    a_str(&a, w->queues[q].stream);
    jq_run_t **pp = &w->batch_head, *prev = NULL, **tail = &f->runs;
    int n = 0;
    while (*pp) {
        jq_run_t *r = *pp;
        if (r->q != q || !r->unsure) {
            prev = r;
            pp = &r->bnext;
            continue;
        }
        *pp = r->bnext;
        if (w->batch_tail == r) w->batch_tail = prev;
        r->bnext = NULL;
        *tail = r;
        tail = &r->bnext;
        a_str(&a, r->job.entry_id);
        n++;
    }
    if (n && (a.failed || jq_rconn_cmdargv(&w->rwrite, on_verified, f, a.n, a.v, a.l) != 0)) {
        requeue_all(w, f->runs, 1);
        n = -1;
    } else if (n) {
        fly(w, f);
    }
    if (n <= 0) free(f);
    free(a.v);
    free(a.l);
    return n;
}

void jq_finish_flush(jq_worker_t *w) {
    if (!w->batch_head || !w->rwrite.up) return;
    /* Refused before: wait out the backoff, then try the whole batch. */
    if (w->held && jq_now_ms() < w->hold_next_ms) return;
    flush_batch(w);
    /* With every outcome sent, the next read can ride behind the acks, on
     * the same connection, in the same round trip (see jq_fetch_kick). */
    jq_fetch_kick(w);
}

static void flush_batch(jq_worker_t *w) {
    for (int q = 0; q < w->nqueues; q++) {
        /* Runs whose last EXEC reply was lost are checked first; the ones
         * not yet written come back to the batch without the flag. */
        if (verify(w, q) != 0) continue;
        flush_t *f = calloc(1, sizeof(*f));
        if (!f) return;
        f->w = w;
        qsum_t sum;
        memset(&sum, 0, sizeof(sum));
        argv_t ack = {0}, del = {0};
        a_str(&ack, "XACK");
        a_str(&ack, w->queues[q].stream);
        a_str(&ack, JQ_GROUP);
        a_str(&del, "XDEL");
        a_str(&del, w->queues[q].stream);
        jq_run_t **pp = &w->batch_head, *prev = NULL, **tail = &f->runs;
        int began = 0, bad = 0;
        while (*pp) {
            jq_run_t *r = *pp;
            if (r->q != q) {
                prev = r;
                pp = &r->bnext;
                continue;
            }
            *pp = r->bnext;
            if (w->batch_tail == r) w->batch_tail = prev;
            r->bnext = NULL;
            *tail = r;
            tail = &r->bnext;
            if (!began) {
                jq_rconn_cmd(&w->rwrite, NULL, NULL, "MULTI");
                began = 1;
            }
            bad |= write_outcome(w, r, &sum);
            if (!r->keep) {
                /* A read behind this EXEC may count its slot (fetch.c); an
                 * abandoned cpu run's thread stays busy, so it may not. */
                jq_admit_sent(&w->admit, r->q, r->kind, 1);
                r->sent = 1;
            }
            a_str(&ack, r->job.entry_id);
            a_str(&del, r->job.entry_id);
        }
        if (began) {
            bad |= a_send(w, &ack);
            bad |= a_send(w, &del);
            write_sums(w, w->queues[q].name, &sum);
            /* A command that could not be built (out of memory) must not
             * leave a MULTI without it: discard it all, keep the runs. */
            if (bad) {
                jq_error("out of memory writing %s outcomes; trying again", w->queues[q].name);
                jq_rconn_cmd(&w->rwrite, NULL, NULL, "DISCARD");
                requeue_all(w, f->runs, 0);
                free(f);
            } else if (jq_rconn_cmd(&w->rwrite, on_exec, f, "EXEC") == 0) {
                fly(w, f);
            } else {
                /* Down in the middle: hiredis called nothing; keep them. */
                for (jq_run_t *r = f->runs, *n; r; r = n) {
                    n = r->bnext;
                    requeue(w, r);
                }
                free(f);
            }
        } else {
            free(f);
        }
        free(ack.v);
        free(ack.l);
        free(del.v);
        free(del.l);
    }
}

static void on_check(uv_check_t *h) { jq_finish_flush(h->data); }

int jq_finish_init(jq_worker_t *w) {
    if (uv_check_init(&w->loop, &w->flush_check) != 0) return -1;
    w->flush_check.data = w;
    return uv_check_start(&w->flush_check, on_check);
}

void jq_finish_add(jq_worker_t *w, jq_run_t *r) {
    w->unacked++;
    requeue(w, r);
}
