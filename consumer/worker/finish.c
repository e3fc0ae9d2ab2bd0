/* Outcomes: every attempt that ends (and every job dead-lettered on
 * arrival) is queued here, and once per loop turn the queue is written as
 * one MULTI/EXEC per queue: the few commands of unusual outcomes (retries,
 * dead letters, a chunked result's TTL (its list written just before
 * the MULTI, outcome.c), an earlier result to delete), one script
 * (outcome_lua) that writes every result hash and the notify lists asked
 * for (`notify 1`, PROTOCOL 1.2), one XACK
 * for all entries, the small script that trims the stream (trim.h), and
 * the counters and latency buckets summed over the batch. So the hot
 * path costs no round trip per job, and a worker killed mid-batch leaves
 * every entry of it pending (EXEC never ran), to be run again elsewhere:
 * at least once, never zero.
 *
 * This file is the batch writer: the MULTI/EXEC per queue, the XACK, the
 * trim, and what each EXEC's answer means. What an outcome writes is
 * decided in outcome.c, the counters summed in counts.c, a batch Redis
 * refuses is held in finish_hold.c. Commands are
 * built with the one argv builder (common/args.h), kept in the stage's
 * state (finish.h) so that a warm batch allocates nothing for its argv. */

#include <stdlib.h>
#include <string.h>

#include "finish.h"
#include "counts.h"
#include "log.h"
#include "outcome.h"

/* Sends the command in builder a on the write connection and empties a.
 * Returns 0, or -1 if it was not sent (then fn never runs). */
static int send_on(jq_finish_t *fin, jq_args_t *a, redisCallbackFn *fn, void *priv) {
    int rc = jq_rconn_args(fin->env.conn, a, fn, priv);
    if (rc == 0) fin->queued++;
    /* Inside a MULTI a command that could not be built must not leave the
     * transaction without it: flush_queue discards it all (bad). */
    if (a->oom) fin->bad = 1;
    jq_args_reset(a);
    return rc;
}

int jq_finish_send(jq_finish_t *fin, redisCallbackFn *fn, void *priv) {
    return send_on(fin, &fin->args, fn, priv);
}

int jq_finish_send_ref(jq_finish_t *fin, int n_copy) {
    jq_args_t *a = &fin->args;
    int rc = jq_rconn_args_ref(fin->env.conn, a, n_copy, NULL, NULL);
    if (rc == 0) fin->queued++;
    if (a->oom) fin->bad = 1;
    jq_args_reset(a);
    return rc;
}

jq_args_t *jq_finish_cmd(jq_finish_t *fin, const char *name) {
    jq_args_t *a = &fin->args;
    jq_args_reset(a);
    jq_args_str(a, name);
    return a;
}

void jq_finish_expire(jq_finish_t *fin, const char *key, const char *ttl) {
    jq_args_t *a = jq_finish_cmd(fin, "EXPIRE");
    jq_args_str(a, key);
    jq_args_str(a, ttl);
    jq_finish_send(fin, NULL, NULL);
}

/* Everything one attempt's end writes, and its counts. Returns 1 when its
 * entry's ack is in its move (a retry or a dead letter, outcome.c), 0 when
 * it goes in the batch's XACK. */
static int write_outcome(jq_finish_t *fin, jq_run_t *r, jq_counts_t *sum) {
    jq_run_drop_payload(r);
    jq_job_state_t st = jq_outcome_write(fin, r);
    jq_counts_add(sum, r, st);
    return st == JQ_STATE_RETRYING || st == JQ_STATE_DEAD;
}

static void flush_batch(jq_finish_t *fin);

/* Whether r's entry id comes after the id ms-seq (ids parsed once, at
 * intake: jq_job_parse). */
static int id_after(const jq_run_t *r, uint64_t ms, uint64_t seq) {
    uint64_t rms = (uint64_t)r->job.enqueued_ms;
    return rms > ms || (rms == ms && r->job.entry_seq > seq);
}

/* The newest entry id of runs: the trim goes up to it (trim.h). */
static const char *newest_id(const jq_run_t *runs) {
    const jq_run_t *top = runs;
    for (const jq_run_t *r = runs->bnext; r; r = r->bnext)
        if (id_after(r, (uint64_t)top->job.enqueued_ms, top->job.entry_seq)) top = r;
    return top->job.entry_id;
}

typedef struct jq_flush {
    jq_finish_t *fin;
    int q;
    int pend_at; /* the trim's question in the EXEC reply (trim.h) */
    jq_run_t *runs;
    struct jq_flush *next, *prev; /* in fin->flights while in flight */
} flush_t;

/* In flight: sent, its reply not yet handled. */
static void fly(jq_finish_t *fin, flush_t *f) {
    f->prev = NULL;
    f->next = fin->flights;
    if (fin->flights) fin->flights->prev = f;
    fin->flights = f;
    fin->flying++;
}

static void land(jq_finish_t *fin, flush_t *f) {
    if (f->prev)
        f->prev->next = f->next;
    else
        fin->flights = f->next;
    if (f->next) f->next->prev = f->prev;
    fin->flying--;
}

int jq_finish_ids(const jq_finish_t *fin, int q, const char **ids, int max) {
    int n = 0;
    for (jq_run_t *r = fin->batch_head; r && n < max; r = r->bnext)
        if (r->q == q) ids[n++] = r->job.entry_id;
    for (flush_t *f = fin->flights; f; f = f->next)
        for (jq_run_t *r = f->runs; r && n < max; r = r->bnext)
            if (r->q == q) ids[n++] = r->job.entry_id;
    return n;
}

int jq_finish_holds(const jq_finish_t *fin, int q, const char *id) {
    for (jq_run_t *r = fin->batch_head; r; r = r->bnext)
        if (r->q == q && strcmp(r->job.entry_id, id) == 0) return 1;
    for (flush_t *f = fin->flights; f; f = f->next)
        for (jq_run_t *r = f->runs; r; r = r->bnext)
            if (r->q == q && strcmp(r->job.entry_id, id) == 0) return 1;
    return 0;
}

/* Appends r to the batch again (a write that did not happen): it was
 * counted in fin->unacked by jq_finish_add already. */
static void requeue(jq_finish_t *fin, jq_run_t *r) {
    r->bnext = NULL;
    if (r->sent) {
        /* Not on its way after all: its slot is not free ahead of a read. */
        jq_admit_sent(fin->env.admit, r->q, r->kind, -1);
        r->sent = 0;
    }
    if (fin->batch_tail)
        fin->batch_tail->bnext = r;
    else
        fin->batch_head = r;
    fin->batch_tail = r;
}

static void release(jq_run_t *r) {
    r->bnext = NULL;
    if (r->keep) {
        r->keep = 2; /* written; the pool's done callback frees it */
        return;
    }
    jq_run_free(r);
}

static void requeue_all(jq_finish_t *fin, jq_run_t *r, int unsure) {
    for (jq_run_t *next; r; r = next) {
        next = r->bnext;
        r->unsure |= unsure;
        requeue(fin, r);
    }
}

static int count_runs(const jq_run_t *r) {
    int n = 0;
    for (; r; r = r->bnext) n++;
    return n;
}

/* Acked entries above the oldest one still pending, which the batch's
 * trim could not reach yet: kept for a later pass (trim.h). */
static void keep_untrimmed(jq_finish_t *fin, const flush_t *f, const redisReply *reply) {
    const redisReply *pend = NULL;
    if (reply->type == REDIS_REPLY_ARRAY && f->pend_at >= 0 && (size_t)f->pend_at < reply->elements)
        pend = reply->element[f->pend_at];
    const char *min = jq_trim_answer(fin->trim, f->q, pend, newest_id(f->runs));
    if (!min) return;
    uint64_t min_ms, min_seq;
    jq_entry_id_parts(min, &min_ms, &min_seq);
    for (const jq_run_t *r = f->runs; r; r = r->bnext)
        if (id_after(r, min_ms, min_seq)) jq_trim_keep(fin->trim, f->q, r->job.entry_id);
}

/* The EXEC ran: every outcome of f is written. A command failing inside
 * it (a key of the wrong type under our result key) does not undo the
 * others: the ack went through with them, so the outcomes stand; say
 * what failed. */
static void exec_ran(jq_finish_t *fin, flush_t *f, const redisReply *reply) {
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_ERROR) {
            jq_error("writing outcomes: %s", reply->element[i]->str);
            break;
        }
    keep_untrimmed(fin, f, reply);
    for (jq_run_t *r = f->runs, *next; r; r = next) {
        next = r->bnext;
        fin->unacked--;
        release(r);
    }
    jq_finish_unhold(fin);
}

static void on_exec(redisAsyncContext *ac, void *rp, void *priv) {
    flush_t *f = priv;
    jq_finish_t *fin = f->fin;
    redisReply *reply = rp;
    land(fin, f);
    if (reply == NULL) {
        /* Lost before EXEC answered: it may or may not have run. Once the
         * connection is back, the runs whose entries are still pending
         * are written again, the others were (see verify). */
        requeue_all(fin, f->runs, 1);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* Refused as a whole: nothing was written. */
        int n = count_runs(f->runs);
        requeue_all(fin, f->runs, 0);
        jq_finish_hold(fin, reply->str, n);
    } else {
        exec_ran(fin, f, reply);
    }
    free(f);
    /* The acked entries' slots are free only now (see unacked). */
    fin->env.kick(fin->env.worker);
    fin->env.maybe_exit(fin->env.worker);
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
    jq_finish_t *fin = f->fin;
    land(fin, f);
    redisReply *reply = rp;
    int n = count_runs(f->runs);
    if (!reply || reply->type != REDIS_REPLY_ARRAY || (int)reply->elements != n) {
        /* Lost again, or refused: still unsure; asked again later. */
        if (reply && reply->type == REDIS_REPLY_ERROR) jq_finish_hold(fin, reply->str, n);
        requeue_all(fin, f->runs, 1);
    } else {
        size_t i = 0;
        for (jq_run_t *r = f->runs, *next; r; r = next, i++) {
            next = r->bnext;
            r->unsure = 0;
            if (reply->element[i]->type == REDIS_REPLY_INTEGER && reply->element[i]->integer == 0) {
                fin->unacked--; /* acked with its outcome: written */
                release(r);
            } else {
                requeue(fin, r);
            }
        }
    }
    free(f);
    fin->env.kick(fin->env.worker);
    fin->env.maybe_exit(fin->env.worker);
}

/* Takes the runs of queue q (only the unsure ones when only_unsure) out of
 * the batch, in order; NULL if none. */
static jq_run_t *take_queue(jq_finish_t *fin, int q, int only_unsure) {
    jq_run_t **pp = &fin->batch_head, *prev = NULL, *runs = NULL, **tail = &runs;
    while (*pp) {
        jq_run_t *r = *pp;
        if (r->q != q || (only_unsure && !r->unsure)) {
            prev = r;
            pp = &r->bnext;
            continue;
        }
        *pp = r->bnext;
        if (fin->batch_tail == r) fin->batch_tail = prev;
        r->bnext = NULL;
        *tail = r;
        tail = &r->bnext;
    }
    return runs;
}

/* Takes the unsure runs of queue q out of the batch and asks about them.
 * Returns how many were sent to be checked. */
static int verify(jq_finish_t *fin, int q) {
    flush_t *f = calloc(1, sizeof(*f));
    if (!f) return 0;
    f->fin = fin;
    f->q = q;
    jq_args_t *a = jq_finish_cmd(fin, "EVAL");
    jq_args_str(a, pending_lua);
    jq_args_str(a, "1");
    jq_args_str(a, fin->env.queues[q].stream);
    f->runs = take_queue(fin, q, 1);
    int n = 0;
    for (jq_run_t *r = f->runs; r; r = r->bnext, n++) jq_args_str(a, r->job.entry_id);
    if (n && jq_finish_send(fin, on_verified, f) != 0) {
        fin->bad = 0;
        requeue_all(fin, f->runs, 1);
        n = -1;
    } else if (n) {
        fly(fin, f);
    } else {
        jq_args_reset(a);
    }
    if (n <= 0) free(f);
    return n;
}

void jq_finish_flush(jq_finish_t *fin) {
    if (!fin->batch_head || !fin->env.conn->up) return;
    /* Refused before: wait out the backoff, then try the whole batch;
     * sooner if Redis says it takes writes again. */
    if (fin->held && jq_finish_hold_wait(fin)) return;
    flush_batch(fin);
    /* With every outcome sent, the next read can ride behind the acks, on
     * the same connection, in the same round trip (see jq_fetch_kick). */
    fin->env.kick(fin->env.worker);
}

/* Opens queue q's MULTI, with the builders emptied and the XACK begun. */
static void open_multi(jq_finish_t *fin, int q) {
    jq_args_reset(&fin->ack);
    jq_args_str(&fin->ack, "XACK");
    jq_args_str(&fin->ack, fin->env.queues[q].stream);
    jq_args_str(&fin->ack, JQ_GROUP);
    jq_args_reset(&fin->keys);
    jq_args_reset(&fin->out);
    fin->nout = 0;
    fin->bad = 0;
    jq_finish_cmd(fin, "MULTI");
    jq_finish_send(fin, NULL, NULL);
    fin->queued = 0; /* EXEC answers for each command after MULTI */
}

/* Each run's outcome, and its entry id in the XACK. */
static void add_outcomes(jq_finish_t *fin, jq_run_t *runs, jq_counts_t *sum) {
    for (jq_run_t *r = runs; r; r = r->bnext) {
        int acked = write_outcome(fin, r, sum);
        if (!r->keep) {
            /* A read behind this EXEC may count its slot (fetch.c); an
             * abandoned cpu run's thread stays busy, so it may not. */
            jq_admit_sent(fin->env.admit, r->q, r->kind, 1);
            r->sent = 1;
        }
        if (!acked) jq_args_str(&fin->ack, r->job.entry_id);
    }
}

/* A queue with a concurrency limit (limit.h): the runs' leases go in the
 * same MULTI as their acks, so a slot comes back when its job's outcome
 * is written. Only for such queues: the others send nothing more. */
static void release_leases(jq_finish_t *fin, int q, const jq_run_t *runs) {
    char key[JQ_KEY_MAX];
    jq_key(key, sizeof(key), fin->env.opt->prefix, fin->env.queues[q].name, "leases");
    jq_args_t *a = jq_finish_cmd(fin, "ZREM");
    jq_args_str(a, key);
    for (const jq_run_t *r = runs; r; r = r->bnext) jq_args_str(a, r->job.entry_id);
    jq_finish_send(fin, NULL, NULL);
}

/* Ends f's MULTI with EXEC, in flight until on_exec; or discards it when
 * one of its commands could not be built (out of memory): a MULTI must
 * not run without it. Either way f's runs are kept until written. */
static void close_multi(jq_finish_t *fin, flush_t *f) {
    if (fin->bad) {
        jq_error("out of memory writing %s outcomes; trying again", fin->env.queues[f->q].name);
        fin->bad = 0;
        jq_finish_cmd(fin, "DISCARD");
        jq_finish_send(fin, NULL, NULL);
        requeue_all(fin, f->runs, 0);
        free(f);
        return;
    }
    jq_finish_cmd(fin, "EXEC");
    if (jq_finish_send(fin, on_exec, f) == 0) {
        fly(fin, f);
        return;
    }
    /* Down in the middle: hiredis called nothing; keep them. */
    requeue_all(fin, f->runs, 0);
    free(f);
}

/* One queue's MULTI: every outcome, one XACK, the trim, the counters. */
static void flush_queue(jq_finish_t *fin, int q, jq_run_t *runs) {
    flush_t *f = calloc(1, sizeof(*f));
    if (!f) {
        requeue_all(fin, runs, 0);
        return;
    }
    f->fin = fin;
    f->q = q;
    f->runs = runs;
    jq_counts_t sum;
    memset(&sum, 0, sizeof(sum));
    jq_outcome_batch_steps(fin, runs);
    fin->bad = 0;
    jq_outcome_send_chunks(fin, runs);
    /* A chunk that could not be built (out of memory) fails the MULTI
     * too, so the batch is written again, chunks and all. */
    int bad = fin->bad;
    open_multi(fin, q);
    fin->bad = bad;
    add_outcomes(fin, runs, &sum);
    jq_outcome_send_script(fin);
    jq_outcome_send_unrequest(fin, q, runs);
    /* Not without ids (every outcome acked in its move): an XACK with
     * none is refused as a whole, and with it the MULTI. */
    if (fin->ack.argc > 3) send_on(fin, &fin->ack, NULL, NULL);
    if (fin->env.queues[q].leased) release_leases(fin, q, runs);
    f->pend_at = fin->queued;
    jq_trim_send(fin->trim, q);
    jq_counts_write(fin, fin->env.queues[q].name, &sum);
    close_multi(fin, f);
}

static void flush_batch(jq_finish_t *fin) {
    for (int q = 0; q < *fin->env.nqueues && fin->batch_head; q++) {
        /* Runs whose last EXEC reply was lost are checked first; the ones
         * not yet written come back to the batch without the flag. */
        if (verify(fin, q) != 0) continue;
        jq_run_t *runs = take_queue(fin, q, 0);
        if (runs) flush_queue(fin, q, runs);
    }
}

static void on_check(uv_check_t *h) { jq_finish_flush(h->data); }

void jq_finish_init(jq_finish_t *fin, const jq_stage_env_t *env, jq_trim_t *trim) {
    memset(fin, 0, sizeof(*fin));
    fin->env = *env;
    fin->trim = trim;
    jq_args_init(&fin->args);
    jq_args_init(&fin->ack);
    jq_args_init(&fin->keys);
    jq_args_init(&fin->out);
}

int jq_finish_start(jq_finish_t *fin, uv_loop_t *loop) {
    if (uv_check_init(loop, &fin->flush_check) != 0) return -1;
    fin->flush_check.data = fin;
    return uv_check_start(&fin->flush_check, on_check);
}

void jq_finish_add(jq_finish_t *fin, jq_run_t *r) {
    fin->unacked++;
    if (!r->keep && !r->finished) {
        /* Its slot may serve a read that runs ahead of the ack (admit.h). */
        jq_admit_finished(fin->env.admit, r->kind, 1);
        r->finished = 1;
    }
    requeue(fin, r);
}

void jq_finish_destroy(jq_finish_t *fin) {
    /* Outcomes Redis never took (a drain cut short by the shutdown
     * timeout while it refused our writes). Every reply has come back by
     * now, so they are all in the batch; their entries stay pending in
     * Redis, to run again on another consumer: at least once. */
    int n = 0;
    for (jq_run_t *r = fin->batch_head, *next; r; r = next, n++) {
        next = r->bnext;
        jq_run_free(r);
    }
    fin->batch_head = fin->batch_tail = NULL;
    if (n)
        jq_warn("exiting with %d finished jobs whose outcomes redis did not take; they stay "
                "pending and run again elsewhere",
                n);
    jq_args_destroy(&fin->args);
    jq_args_destroy(&fin->ack);
    jq_args_destroy(&fin->keys);
    jq_args_destroy(&fin->out);
}
