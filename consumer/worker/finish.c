/* Outcomes: every attempt that ends (and every job dead-lettered on
 * arrival) is queued here, and once per loop turn the queue is written as
 * one MULTI/EXEC per queue: the few commands of unusual outcomes (retries,
 * dead letters, chunked results, an earlier result to delete), one script
 * (outcome_lua) that writes every result hash and notify list, one XACK
 * for all entries, the small script that trims the stream (trim.h), and
 * the counters and latency buckets summed over the batch. So the hot
 * path costs no round trip per job, and a worker killed mid-batch leaves
 * every entry of it pending (EXEC never ran), to be run again elsewhere:
 * at least once, never zero.
 *
 * This file is the batch writer: the MULTI/EXEC per queue, the XACK, the
 * trim, and what each EXEC's answer means. What an outcome writes is
 * decided in outcome.c, the counters summed in counts.c. Commands are
 * built with the one argv builder (common/args.h), kept in the stage's
 * state (finish.h) so that a warm batch allocates nothing for its argv. */

#include <stdlib.h>
#include <string.h>

#include "finish.h"
#include "counts.h"
#include "log.h"
#include "outcome.h"
#include "worker.h"

/* Sends the command in builder a on the write connection and empties a.
 * Returns 0, or -1 if it was not sent (then fn never runs). */
static int send_on(jq_worker_t *w, jq_args_t *a, redisCallbackFn *fn, void *priv) {
    int rc = jq_rconn_args(&w->rwrite, a, fn, priv);
    /* Inside a MULTI a command that could not be built must not leave the
     * transaction without it: flush_queue discards it all (bad). */
    if (a->oom) w->finish.bad = 1;
    jq_args_reset(a);
    return rc;
}

int jq_finish_send(jq_worker_t *w, redisCallbackFn *fn, void *priv) {
    return send_on(w, &w->finish.args, fn, priv);
}

jq_args_t *jq_finish_cmd(jq_worker_t *w, const char *name) {
    jq_args_t *a = &w->finish.args;
    jq_args_reset(a);
    jq_args_str(a, name);
    return a;
}

void jq_finish_expire(jq_worker_t *w, const char *key, const char *ttl) {
    jq_args_t *a = jq_finish_cmd(w, "EXPIRE");
    jq_args_str(a, key);
    jq_args_str(a, ttl);
    jq_finish_send(w, NULL, NULL);
}

/* Everything one attempt's end writes, and its counts. Returns 1 when its
 * entry's ack is in its move (a retry or a dead letter, outcome.c), 0 when
 * it goes in the batch's XACK. */
static int write_outcome(jq_worker_t *w, jq_run_t *r, jq_counts_t *sum) {
    jq_run_drop_payload(r);
    jq_job_state_t st = jq_outcome_write(w, r);
    jq_counts_add(sum, r, st);
    return st != JQ_STATE_DONE;
}

static void flush_batch(jq_worker_t *w);

/* Whether r's entry id comes after the id ms-seq (ids parsed once, at
 * intake: jq_job_parse). */
static int id_after(const jq_run_t *r, uint64_t ms, uint64_t seq) {
    uint64_t rms = (uint64_t)r->job.enqueued_ms;
    return rms > ms || (rms == ms && r->job.entry_seq > seq);
}

typedef struct jq_flush {
    jq_worker_t *w;
    int q;
    jq_run_t *runs;
    struct jq_flush *next, *prev; /* in w->finish.flights while in flight */
} flush_t;

/* In flight: sent, its reply not yet handled. */
static void fly(jq_worker_t *w, flush_t *f) {
    f->prev = NULL;
    f->next = w->finish.flights;
    if (w->finish.flights) w->finish.flights->prev = f;
    w->finish.flights = f;
    w->flushing++;
}

static void land(jq_worker_t *w, flush_t *f) {
    if (f->prev) f->prev->next = f->next;
    else w->finish.flights = f->next;
    if (f->next) f->next->prev = f->prev;
    w->flushing--;
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
 * counted in w->finish.unacked by jq_finish_add already. */
static void requeue(jq_worker_t *w, jq_run_t *r) {
    r->bnext = NULL;
    if (r->sent) {
        /* Not on its way after all: its slot is not free ahead of a read. */
        jq_admit_sent(&w->admit, r->q, r->kind, -1);
        r->sent = 0;
    }
    if (w->finish.batch_tail)
        w->finish.batch_tail->bnext = r;
    else
        w->finish.batch_head = r;
    w->finish.batch_tail = r;
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
    if (!w->finish.held) {
        w->finish.held = 1;
        w->finish.held_since_ms = now;
        w->finish.hold_ms = HOLD_MIN_MS;
        jq_warn("redis refuses our writes (%s): holding %d finished jobs, fetching none, "
                "retrying every %d to %d ms", why, nruns, HOLD_MIN_MS, HOLD_MAX_MS);
    } else {
        w->finish.hold_ms = w->finish.hold_ms * 2 > HOLD_MAX_MS ? HOLD_MAX_MS : w->finish.hold_ms * 2;
    }
    w->finish.hold_next_ms = now + w->finish.hold_ms;
}

/* While held, whether Redis would take a write now is asked every
 * HOLD_MIN_MS with a script that does nothing: its shebang (no flags)
 * makes Redis refuse it up front exactly when it would refuse the held
 * MULTI's writes (OOM, READONLY, MISCONF...). A yes ends the wait at once;
 * the doubling backoff only spaces tries of the whole batch while Redis
 * answers no. Until 2026-12 a worker held its outcomes up to 5 s (3.8 s
 * seen) after Redis took writes again. */
static const char writable_lua[] = "#!lua\nreturn 1\n";

static void on_writable(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    jq_worker_t *w = priv;
    redisReply *reply = rp;
    w->finish.asking = 0;
    if (reply && reply->type == REDIS_REPLY_INTEGER && w->finish.held) {
        w->finish.hold_next_ms = 0;
        jq_finish_flush(w);
    }
}

static void ask_writable(jq_worker_t *w, int64_t now) {
    jq_finish_t *fin = &w->finish;
    if (fin->asking || now - fin->asked_ms < HOLD_MIN_MS) return;
    jq_args_t *a = jq_finish_cmd(w, "EVAL");
    jq_args_str(a, writable_lua);
    jq_args_str(a, "0");
    if (jq_finish_send(w, on_writable, w) == 0) {
        fin->asking = 1;
        fin->asked_ms = now;
    }
    fin->bad = 0; /* not inside a MULTI */
}

static void unhold(jq_worker_t *w) {
    if (!w->finish.held) return;
    w->finish.held = 0;
    jq_info("redis takes our writes again: held outcomes written after %lld ms",
            (long long)(jq_now_ms() - w->finish.held_since_ms));
}

static void requeue_all(jq_worker_t *w, jq_run_t *r, int unsure) {
    for (jq_run_t *next; r; r = next) {
        next = r->bnext;
        r->unsure |= unsure;
        requeue(w, r);
    }
}

static int count_runs(const jq_run_t *r) {
    int n = 0;
    for (; r; r = r->bnext) n++;
    return n;
}

/* Acked entries above the oldest one still pending, which the batch's
 * trim could not reach yet: kept for a later pass (trim.h). */
static void keep_untrimmed(jq_worker_t *w, const flush_t *f, const redisReply *reply) {
    const char *min = jq_trim_answer(reply);
    if (!min) return;
    uint64_t min_ms, min_seq;
    jq_entry_id_parts(min, &min_ms, &min_seq);
    for (const jq_run_t *r = f->runs; r; r = r->bnext)
        if (id_after(r, min_ms, min_seq)) jq_trim_keep(w, f->q, r->job.entry_id);
}

/* The EXEC ran: every outcome of f is written. A command failing inside
 * it (a key of the wrong type under our result key) does not undo the
 * others: the ack went through with them, so the outcomes stand; say
 * what failed. */
static void exec_ran(jq_worker_t *w, flush_t *f, const redisReply *reply) {
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_ERROR) {
            jq_error("writing outcomes: %s", reply->element[i]->str);
            break;
        }
    keep_untrimmed(w, f, reply);
    for (jq_run_t *r = f->runs, *next; r; r = next) {
        next = r->bnext;
        w->finish.unacked--;
        release(r);
    }
    unhold(w);
}

static void on_exec(redisAsyncContext *ac, void *rp, void *priv) {
    flush_t *f = priv;
    jq_worker_t *w = f->w;
    redisReply *reply = rp;
    land(w, f);
    if (reply == NULL) {
        /* Lost before EXEC answered: it may or may not have run. Once the
         * connection is back, the runs whose entries are still pending
         * are written again, the others were (see verify). */
        requeue_all(w, f->runs, 1);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* Refused as a whole: nothing was written. */
        int n = count_runs(f->runs);
        requeue_all(w, f->runs, 0);
        hold(w, reply->str, n);
    } else {
        exec_ran(w, f, reply);
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
    int n = count_runs(f->runs);
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
                w->finish.unacked--; /* acked with its outcome: written */
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

/* Takes the runs of queue q (only the unsure ones when only_unsure) out of
 * the batch, in order; NULL if none. */
static jq_run_t *take_queue(jq_worker_t *w, int q, int only_unsure) {
    jq_run_t **pp = &w->finish.batch_head, *prev = NULL, *runs = NULL, **tail = &runs;
    while (*pp) {
        jq_run_t *r = *pp;
        if (r->q != q || (only_unsure && !r->unsure)) {
            prev = r;
            pp = &r->bnext;
            continue;
        }
        *pp = r->bnext;
        if (w->finish.batch_tail == r) w->finish.batch_tail = prev;
        r->bnext = NULL;
        *tail = r;
        tail = &r->bnext;
    }
    return runs;
}

/* Takes the unsure runs of queue q out of the batch and asks about them.
 * Returns how many were sent to be checked. */
static int verify(jq_worker_t *w, int q) {
    flush_t *f = calloc(1, sizeof(*f));
    if (!f) return 0;
    f->w = w;
    f->q = q;
    jq_args_t *a = jq_finish_cmd(w, "EVAL");
    jq_args_str(a, pending_lua);
    jq_args_str(a, "1");
    jq_args_str(a, w->queues[q].stream);
    f->runs = take_queue(w, q, 1);
    int n = 0;
    for (jq_run_t *r = f->runs; r; r = r->bnext, n++)
        jq_args_str(a, r->job.entry_id);
    if (n && jq_finish_send(w, on_verified, f) != 0) {
        w->finish.bad = 0;
        requeue_all(w, f->runs, 1);
        n = -1;
    } else if (n) {
        fly(w, f);
    } else {
        jq_args_reset(a);
    }
    if (n <= 0) free(f);
    return n;
}

void jq_finish_flush(jq_worker_t *w) {
    if (!w->finish.batch_head || !w->rwrite.up) return;
    /* Refused before: wait out the backoff, then try the whole batch;
     * sooner if Redis says it takes writes again. */
    if (w->finish.held) {
        int64_t now = jq_now_ms();
        if (now < w->finish.hold_next_ms) {
            ask_writable(w, now);
            return;
        }
    }
    flush_batch(w);
    /* With every outcome sent, the next read can ride behind the acks, on
     * the same connection, in the same round trip (see jq_fetch_kick). */
    jq_fetch_kick(w);
}


/* Opens queue q's MULTI, with the builders emptied and the XACK begun. */
static void open_multi(jq_worker_t *w, int q) {
    jq_finish_t *fin = &w->finish;
    jq_args_reset(&fin->ack);
    jq_args_str(&fin->ack, "XACK");
    jq_args_str(&fin->ack, w->queues[q].stream);
    jq_args_str(&fin->ack, JQ_GROUP);
    jq_args_reset(&fin->keys);
    jq_args_reset(&fin->out);
    fin->nout = 0;
    fin->bad = 0;
    jq_finish_cmd(w, "MULTI");
    jq_finish_send(w, NULL, NULL);
}

/* Each run's outcome, and its entry id in the XACK. */
static void add_outcomes(jq_worker_t *w, jq_run_t *runs, jq_counts_t *sum) {
    for (jq_run_t *r = runs; r; r = r->bnext) {
        int acked = write_outcome(w, r, sum);
        if (!r->keep) {
            /* A read behind this EXEC may count its slot (fetch.c); an
             * abandoned cpu run's thread stays busy, so it may not. */
            jq_admit_sent(&w->admit, r->q, r->kind, 1);
            r->sent = 1;
        }
        if (!acked) jq_args_str(&w->finish.ack, r->job.entry_id);
    }
}

/* The newest entry id of runs: the trim goes up to it (trim.h). */
static const char *newest_id(const jq_run_t *runs) {
    const jq_run_t *top = runs;
    for (const jq_run_t *r = runs->bnext; r; r = r->bnext)
        if (id_after(r, (uint64_t)top->job.enqueued_ms, top->job.entry_seq)) top = r;
    return top->job.entry_id;
}

/* Ends f's MULTI with EXEC, in flight until on_exec; or discards it when
 * one of its commands could not be built (out of memory): a MULTI must
 * not run without it. Either way f's runs are kept until written. */
static void close_multi(jq_worker_t *w, flush_t *f) {
    if (w->finish.bad) {
        jq_error("out of memory writing %s outcomes; trying again", w->queues[f->q].name);
        w->finish.bad = 0;
        jq_finish_cmd(w, "DISCARD");
        jq_finish_send(w, NULL, NULL);
        requeue_all(w, f->runs, 0);
        free(f);
        return;
    }
    jq_finish_cmd(w, "EXEC");
    if (jq_finish_send(w, on_exec, f) == 0) {
        fly(w, f);
        return;
    }
    /* Down in the middle: hiredis called nothing; keep them. */
    requeue_all(w, f->runs, 0);
    free(f);
}

/* One queue's MULTI: every outcome, one XACK, the trim, the counters. */
static void flush_queue(jq_worker_t *w, int q, jq_run_t *runs) {
    flush_t *f = calloc(1, sizeof(*f));
    if (!f) {
        requeue_all(w, runs, 0);
        return;
    }
    f->w = w;
    f->q = q;
    f->runs = runs;
    jq_counts_t sum;
    memset(&sum, 0, sizeof(sum));
    open_multi(w, q);
    add_outcomes(w, runs, &sum);
    jq_outcome_send_script(w);
    /* Not without ids (every outcome acked in its move): an XACK with
     * none is refused as a whole, and with it the MULTI. */
    if (w->finish.ack.argc > 3) send_on(w, &w->finish.ack, NULL, NULL);
    jq_trim_send(w, q, newest_id(runs));
    jq_counts_write(w, w->queues[q].name, &sum);
    close_multi(w, f);
}

static void flush_batch(jq_worker_t *w) {
    for (int q = 0; q < w->nqueues && w->finish.batch_head; q++) {
        /* Runs whose last EXEC reply was lost are checked first; the ones
         * not yet written come back to the batch without the flag. */
        if (verify(w, q) != 0) continue;
        jq_run_t *runs = take_queue(w, q, 0);
        if (runs) flush_queue(w, q, runs);
    }
}

static void on_check(uv_check_t *h) { jq_finish_flush(h->data); }

int jq_finish_init(jq_worker_t *w) {
    if (uv_check_init(&w->loop, &w->finish.flush_check) != 0) return -1;
    w->finish.flush_check.data = w;
    return uv_check_start(&w->finish.flush_check, on_check);
}

void jq_finish_add(jq_worker_t *w, jq_run_t *r) {
    w->finish.unacked++;
    if (!r->keep && !r->finished) {
        /* Its slot may serve a read that runs ahead of the ack (admit.h). */
        jq_admit_finished(&w->admit, r->kind, 1);
        r->finished = 1;
    }
    requeue(w, r);
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
                "pending and run again elsewhere", n);
    jq_args_destroy(&fin->args);
    jq_args_destroy(&fin->ack);
    jq_args_destroy(&fin->keys);
    jq_args_destroy(&fin->out);
}
