/* What an outcome means: the decisions of finish.c's batch. For each
 * attempt that ended (or job dead on arrival): its state (done, retrying,
 * dead) from the attempts made, what that state writes beside the result
 * (a retry's job hash and due time with backoff, a dead letter), and the
 * result itself, gathered for the batch's script (outcome_lua). The
 * commands go into the MULTI that finish.c opened, through its builder
 * (jq_finish_cmd, jq_finish_send).
 *
 * Why a script for the common writes: as four commands per job (HSET,
 * EXPIRE, LPUSH, EXPIRE) in the MULTI, each one cost Redis a parse, a
 * queued copy, a +QUEUED reply and an EXEC reply element, and cost the
 * worker a formatted command, a hiredis callback node and two parsed
 * replies: most of the worker's CPU per job. In the script they are one
 * command and one reply per batch (docs/BENCHMARKS.md has the figures). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finish.h"
#include "batch.h"
#include "log.h"
#include "outcome.h"
#include "progress.h"
#include "unique.h"

#define RESULT_CHUNKS_PER_CMD 8 /* result chunks per RPUSH */

/* The delay before retry number n (1-based): backoff * 2^(n-1) with +-20%
 * jitter, so that jobs failing together do not retry together, then capped:
 * the cap is a hard bound (--backoff-max-ms), so it comes after the jitter.
 * Doubled in a loop that stops at the cap (at most ~64 turns), not pow():
 * this was the consumer's only call into libm, whose mapping cost every
 * worker 0.3 MiB of RSS. */
static long long retry_delay(const jq_options_t *o, long long n) {
    double jitter = 0.8 + 0.4 * ((double)rand() / (double)RAND_MAX);
    double cap = (double)o->backoff_max_ms;
    double d = (double)o->backoff_ms * jitter;
    for (long long i = 1; i < n && d > 0 && d < cap; i++) d *= 2.0;
    if (d > cap) d = cap;
    return (long long)d;
}

/* <p>:{q}:job:<id> := the entry's own fields plus extra pairs. Deleted
 * first: a producer may reuse the id of a job that died, and the old job's
 * fields (enc, chunks, its own) must not ride along into this one's retry. */
static void write_job_hash(jq_finish_t *fin, jq_run_t *r, const char *key, const char *const *extra,
                           size_t nextra) {
    jq_args_t *a = jq_finish_cmd(fin, "DEL");
    jq_args_str(a, key);
    jq_finish_send(fin, NULL, NULL);
    a = jq_finish_cmd(fin, "HSET");
    jq_args_str(a, key);
    const jq_reply_fields_t *f = r->fields;
    for (size_t i = 0; f && i + 1 < f->n; i += 2) {
        const jq_str_t *k = &f->f[i], *v = &f->f[i + 1];
        if (k->p && !v->p && v->len && k->len == 7 && memcmp(k->p, "payload", 7) == 0) {
            /* Skipped unread for its size (bulkcap.h): the job says how
             * large it was, and does not run again without it (job.c). */
            jq_args_str(a, "payload_dropped");
            jq_args_ll(a, (long long)v->len);
            continue;
        }
        if (!k->p || !v->p) continue; /* not strings, or not read */
        if (!jq_job_field_kept(k->p, k->len)) continue;
        jq_args_add(a, k->p, k->len);
        jq_args_add(a, v->p, v->len);
    }
    for (size_t i = 0; i < nextra; i++) jq_args_str(a, extra[i]);
    /* A job read from a level's stream keeps its level when promoted
     * again (a retry, a dead job run again: sched.c). */
    const jq_queue_t *q = &fin->env.queues[r->q];
    if (q->is_level) {
        jq_args_str(a, "priority");
        jq_args_str(a, jq_prio_name(q->level));
    }
    jq_finish_send(fin, NULL, NULL);
}

/* ---- one outcome: its decisions ----
 *
 * What one attempt's end writes is decided once (decide): its state, then
 * what that state writes beside the result (write_retry, write_dead,
 * drop_payload_chunks), then the result itself (write_result), each step a
 * function named for what it decides. */

static const char *const state_name[] = {"done", "retrying", "dead", "cancelled"};

typedef struct outcome {
    const char *qn, *id;
    jq_job_state_t state;
    char attempts[24]; /* attempts made, counting this one */
    char now[24];      /* finished_at, ms */
    long long ttl;     /* result_ttl, s; 0: no result, no notify */
    int notify;        /* push the notify list (PROTOCOL 1.2 §3) */
} outcome_t;

/* Attempts made, counting this one; a job dead on arrival made none,
 * nor one cancelled before it started. */
static long long attempts_made(const jq_run_t *r) {
    if (r->outcome == JQ_OUT_CANCELLED) return r->job.attempt + (r->started_ms ? 1 : 0);
    return r->job.attempt + (r->outcome == JQ_OUT_DEAD || r->retry_after_ms ? 0 : 1);
}

/* A failed attempt retries while attempts are left, else it is dead; a
 * permanent failure is dead at once. */
static jq_job_state_t state_of(const jq_run_t *r) {
    if (r->outcome == JQ_OUT_DONE) return JQ_STATE_DONE;
    if (r->outcome == JQ_OUT_CANCELLED) return JQ_STATE_CANCELLED;
    if (r->outcome == JQ_OUT_FAILED && r->retry_after_ms) return JQ_STATE_RETRYING;
    if (r->outcome == JQ_OUT_FAILED && !r->permanent && attempts_made(r) < r->job.max_attempts)
        return JQ_STATE_RETRYING;
    return JQ_STATE_DEAD;
}

static void decide(jq_finish_t *fin, const jq_run_t *r, outcome_t *oc) {
    oc->qn = fin->env.queues[r->q].name;
    oc->id = r->job.id;
    oc->ttl = r->job.result_ttl;
    oc->state = state_of(r);
    /* Only a job that ended wakes its waiter, and only one whose entry
     * said a client waits: for the others the list would be a second key
     * per job that nobody pops. */
    oc->notify = r->job.notify && oc->state != JQ_STATE_RETRYING;
    jq_ll2str(oc->attempts, attempts_made(r));
    jq_ll2str(oc->now, (long long)r->finished_ms);
}

/* A retry's or a dead letter's last step, one script in the MULTI: the id
 * into `scheduled` or `dead`, then the ack of its entry, and the ack only
 * if the job hash and the ZADD are there. Each command of a MULTI stands
 * alone: with a plain ZADD and the batch's XACK, a ZADD that failed (the
 * set's key of another type) still let the XACK through, and the job was
 * in neither the stream nor a set: lost. Now the entry stays pending (the
 * script fails, the error is logged with the batch's), so the job runs
 * again after the visibility timeout: at least once. The shebang makes
 * Redis refuse it, with the whole MULTI, when it would refuse a write
 * (outcome_lua below says why); EVAL, not EVALSHA, for the same reason as
 * there. KEYS: job hash, set, stream; ARGV: score, id, group, entry id. */
static const char move_lua[] = "#!lua\n"
                               "if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then\n"
                               "  return redis.error_reply('ERR job hash ' .. KEYS[1] .. ' not "
                               "written: entry ' .. ARGV[4] .. ' left pending')\n"
                               "end\n"
                               "redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])\n"
                               "return redis.call('XACK', KEYS[3], ARGV[3], ARGV[4])\n";

static void move(jq_finish_t *fin, const jq_run_t *r, const outcome_t *oc, const char *jkey,
                 const char *set, const char *score) {
    char zkey[JQ_KEY_MAX];
    jq_key(zkey, sizeof(zkey), fin->env.opt->prefix, oc->qn, set);
    jq_args_t *a = jq_finish_cmd(fin, "EVAL");
    jq_args_add(a, move_lua, sizeof(move_lua) - 1);
    jq_args_str(a, "3");
    jq_args_str(a, jkey);
    jq_args_str(a, zkey);
    jq_args_str(a, fin->env.queues[r->q].stream);
    jq_args_str(a, score);
    jq_args_str(a, oc->id);
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, r->job.entry_id);
    jq_finish_send(fin, NULL, NULL);
}

/* A handler's "retry after T" (handler.h): the queue's backoff key lives
 * T, or longer if it did already (PROTOCOL §9), so that no worker reads
 * the queue meanwhile. */
static void write_backoff(jq_finish_t *fin, const jq_run_t *r, const outcome_t *oc) {
    char key[JQ_KEY_MAX];
    jq_key(key, sizeof(key), fin->env.opt->prefix, oc->qn, "backoff");
    jq_args_t *a = jq_finish_cmd(fin, "SET");
    jq_args_str(a, key);
    jq_args_str(a, "1");
    jq_args_str(a, "PX");
    jq_args_ll(a, r->retry_after_ms);
    jq_args_str(a, "NX");
    jq_finish_send(fin, NULL, NULL);
    a = jq_finish_cmd(fin, "PEXPIRE");
    jq_args_str(a, key);
    jq_args_ll(a, r->retry_after_ms);
    jq_args_str(a, "GT");
    jq_finish_send(fin, NULL, NULL);
}

/* A retry: the job hash for promotion, and its due time in scheduled:
 * after the backoff, or after the handler's "retry after". */
static void write_retry(jq_finish_t *fin, jq_run_t *r, const outcome_t *oc) {
    char jkey[JQ_KEY_MAX], due[24];
    long long delay =
        r->retry_after_ms ? r->retry_after_ms : retry_delay(fin->env.opt, attempts_made(r));
    jq_ll2str(due, (long long)r->finished_ms + delay);
    if (r->retry_after_ms) write_backoff(fin, r, oc);
    jq_key_id(jkey, sizeof(jkey), fin->env.opt->prefix, oc->qn, "job", oc->id);
    const char *extra[] = {"id", oc->id, "attempt", oc->attempts, "error", r->error};
    write_job_hash(fin, r, jkey, extra, sizeof(extra) / sizeof(extra[0]));
    move(fin, r, oc, jkey, "scheduled", due);
}

/* A dead letter (§4): the job hash, kept, and its id in the dead set. */
static void write_dead(jq_finish_t *fin, jq_run_t *r, const outcome_t *oc) {
    char jkey[JQ_KEY_MAX];
    jq_key_id(jkey, sizeof(jkey), fin->env.opt->prefix, oc->qn, "job", oc->id);
    const char *extra[] = {"id",    oc->id,   "attempt",   oc->attempts,
                           "error", r->error, "failed_at", oc->now};
    write_job_hash(fin, r, jkey, extra, sizeof(extra) / sizeof(extra[0]));
    move(fin, r, oc, jkey, "dead", oc->now);
}

/* A done job's chunked payload has served its purpose. */
static void drop_payload_chunks(jq_finish_t *fin, const outcome_t *oc) {
    char pkey[JQ_KEY_MAX];
    jq_key_id(pkey, sizeof(pkey), fin->env.opt->prefix, oc->qn, "payload", oc->id);
    jq_args_t *a = jq_finish_cmd(fin, "DEL");
    jq_args_str(a, pkey);
    jq_finish_send(fin, NULL, NULL);
}

/* ---- the result (§3) ---- */

/* An earlier attempt may have left a result (and its chunks), unless this
 * is the first attempt of a job whose id is its own entry id: entry ids
 * are never reused. That common case skips the DEL. */
static int may_have_old_result(const jq_run_t *r) {
    return r->job.attempt != 0 || strcmp(r->job.id, r->job.entry_id) != 0;
}

/* A done job's result over --chunk-size goes to a list of chunks, never
 * one giant value (when a result is kept at all). */
static int result_chunked(const jq_finish_t *fin, const jq_run_t *r) {
    size_t rlen;
    jq_run_result(r, &rlen);
    return r->job.result_ttl > 0 && r->outcome == JQ_OUT_DONE &&
           (long long)rlen > fin->env.opt->chunk_size;
}

static long long result_nchunks(const jq_finish_t *fin, const jq_run_t *r) {
    size_t step = (size_t)fin->env.opt->chunk_size, rlen;
    jq_run_result(r, &rlen);
    return (long long)((rlen + step - 1) / step);
}

/* How long a result's chunk list lives before the MULTI that writes its
 * hash sets the result's TTL on it: a worker killed in between leaves it
 * this long (and its job runs again, writing it anew). */
#define CHUNK_LIST_TTL_MS "60000"

static void chunk_list_ttl(jq_finish_t *fin, const char *ckey) {
    jq_args_t *a = jq_finish_cmd(fin, "PEXPIRE");
    jq_args_str(a, ckey);
    jq_args_str(a, CHUNK_LIST_TTL_MS);
    jq_finish_send(fin, NULL, NULL);
}

/* One result's chunks, before its queue's MULTI (docs/PROTOCOL.md §3):
 * inside it Redis kept every queued argument until EXEC, which cost it
 * 3-5x the plain RPUSHes. The first chunk goes in a small MULTI with the
 * DEL of an older list and the TTL, so the list never exists without one;
 * then RPUSHes of a few chunks each, each followed by the TTL again. The
 * chunks are written from the result itself (jq_finish_send_ref), not
 * copied into hiredis' output buffer: that copy was a second result in
 * memory (peak RSS, docs/BENCHMARKS.md); the run and its result live
 * until its EXEC's reply, which comes after these bytes are written. */
static void send_result_chunks(jq_finish_t *fin, jq_run_t *r) {
    char ckey[JQ_KEY_MAX + 8];
    int n = jq_key_id(ckey, sizeof(ckey), fin->env.opt->prefix, fin->env.queues[r->q].name,
                      "result", r->job.id);
    if (n < 0) return;
    snprintf(ckey + n, sizeof(ckey) - (size_t)n, ":chunks");
    size_t rlen, step = (size_t)fin->env.opt->chunk_size;
    const char *data = jq_run_result(r, &rlen);
    jq_finish_cmd(fin, "MULTI");
    jq_finish_send(fin, NULL, NULL);
    jq_args_t *a = jq_finish_cmd(fin, "DEL");
    jq_args_str(a, ckey);
    jq_finish_send(fin, NULL, NULL);
    a = jq_finish_cmd(fin, "RPUSH");
    jq_args_str(a, ckey);
    jq_args_add(a, data, step);
    jq_finish_send_ref(fin, 2);
    chunk_list_ttl(fin, ckey);
    jq_finish_cmd(fin, "EXEC");
    jq_finish_send(fin, NULL, NULL);
    for (size_t off = step; off < rlen;) {
        a = jq_finish_cmd(fin, "RPUSH");
        jq_args_str(a, ckey);
        for (int i = 0; i < RESULT_CHUNKS_PER_CMD && off < rlen; i++, off += step)
            jq_args_add(a, data + off, rlen - off < step ? rlen - off : step);
        jq_finish_send_ref(fin, 2);
        chunk_list_ttl(fin, ckey);
    }
}

void jq_outcome_send_chunks(jq_finish_t *fin, jq_run_t *runs) {
    for (jq_run_t *r = runs; r; r = r->bnext) {
        if (!result_chunked(fin, r)) continue;
        /* The payload's memory goes before the result's copy is made
         * (write_outcome drops it too, later: too late for the peak);
         * not when the result is the payload (jq_run_result). */
        jq_run_drop_payload(r);
        send_result_chunks(fin, r);
    }
}

/* The outcome's group in the script's ARGV (see outcome_lua): ttl, state,
 * attempts, finished_at, whether to push the notify list, and the count of
 * extra pairs, then those: the
 * error of an attempt that failed, and the result (or how many chunks
 * hold it). */
static void add_script_args(jq_args_t *a, const jq_run_t *r, const outcome_t *oc, const char *ttl,
                            long long chunks) {
    size_t rlen;
    const char *rdata = jq_run_result(r, &rlen);
    int failed = r->outcome != JQ_OUT_DONE;
    int result = !chunks && !failed && rlen > 0;
    /* A job that reported progress ends with its last report, which the
     * throttle may not have written yet (progress.h); an abandoned cpu
     * run's thread may still be reporting: left as it was. */
    const struct jq_run_progress *pg = r->keep ? NULL : r->prog;
    int nextra = failed + (chunks || result) + (pg ? 2 : 0);
    char ne[4];
    jq_ll2str(ne, nextra);
    jq_args_dup(a, ttl, strlen(ttl));
    jq_args_str(a, state_name[oc->state]);
    jq_args_dup(a, oc->attempts, strlen(oc->attempts));
    jq_args_dup(a, oc->now, strlen(oc->now));
    jq_args_str(a, oc->notify ? "1" : "0");
    jq_args_dup(a, ne, strlen(ne));
    if (pg) {
        char frac[32];
        snprintf(frac, sizeof(frac), "%.4g", pg->fraction);
        jq_args_str(a, "progress");
        jq_args_dup(a, frac, strlen(frac));
        jq_args_str(a, "progress_msg");
        jq_args_str(a, pg->msg);
    }
    if (failed) {
        jq_args_str(a, "error");
        jq_args_str(a, r->error);
    }
    if (chunks) {
        jq_args_str(a, "chunks");
        jq_args_ll(a, chunks);
    } else if (result) {
        jq_args_str(a, "result");
        jq_args_add(a, rdata, rlen);
    }
}

/* Adds the key `what` of this job (result, notify) to the script's KEYS. */
static void add_script_key(jq_finish_t *fin, const outcome_t *oc, const char *what) {
    char key[JQ_KEY_MAX];
    int n = jq_key_id(key, sizeof(key), fin->env.opt->prefix, oc->qn, what, oc->id);
    jq_args_dup(&fin->keys, key, n < 0 ? 0 : (size_t)n);
}

/* The result hash (§3), written anew each attempt so no field of an
 * earlier attempt (an old error) lingers, and the notify list of a job
 * that ended (not of one retrying: nobody waiting is woken by a retry)
 * whose entry carries `notify 1` (PROTOCOL 1.2). Nothing with result_ttl
 * 0 (PROTOCOL 1.1): no key per job. The hash and
 * the list are written by the batch's script: here they are only added
 * to its KEYS and ARGV (see outcome_lua). */
static void write_result(jq_finish_t *fin, jq_run_t *r, const outcome_t *oc) {
    char rkey[JQ_KEY_MAX], ckey[JQ_KEY_MAX + 8], ttl[24];
    int old = may_have_old_result(r), chunked = result_chunked(fin, r);
    if (old || chunked) {
        jq_key_id(rkey, sizeof(rkey), fin->env.opt->prefix, oc->qn, "result", oc->id);
        snprintf(ckey, sizeof(ckey), "%s:chunks", rkey);
    }
    if (old) {
        /* A chunked result's list was written afresh before the MULTI
         * (jq_outcome_send_chunks): only the hash goes. */
        jq_args_t *a = jq_finish_cmd(fin, "DEL");
        jq_args_str(a, rkey);
        if (!chunked) jq_args_str(a, ckey);
        jq_finish_send(fin, NULL, NULL);
    }
    if (oc->ttl <= 0) return;
    jq_ll2str(ttl, oc->ttl);
    long long chunks = 0;
    if (chunked) {
        /* The list is whole: from now on it lives as long as the hash. */
        chunks = result_nchunks(fin, r);
        jq_finish_expire(fin, ckey, ttl);
    }
    add_script_key(fin, oc, "result");
    add_script_args(&fin->out, r, oc, ttl, chunks);
    fin->nout++;
    if (oc->notify) add_script_key(fin, oc, "notify");
}

/* A job that ended (any state but retrying) gives back its unique key
 * (PROTOCOL §10), in the MULTI that acks it: compare-and-delete, so a key
 * taken over since (a dead job run again) stays with its new holder; with
 * `unique_until` it expires then instead. Only for entries carrying
 * `unique`: other jobs send nothing more. */
static void release_unique(jq_finish_t *fin, const jq_run_t *r, const outcome_t *oc) {
    char ukey[JQ_KEY_MAX], key[JQ_NAME_MAX_BUF], until[24] = "";
    memcpy(key, r->job.unique.p, r->job.unique.len);
    key[r->job.unique.len] = '\0';
    if (jq_key_id(ukey, sizeof(ukey), fin->env.opt->prefix, oc->qn, "unique", key) < 0) return;
    if (r->job.unique_until > 0) jq_ll2str(until, r->job.unique_until);
    jq_args_t *a = jq_finish_cmd(fin, "EVAL");
    jq_args_str(a, jq_unique_release_lua);
    jq_args_str(a, "1");
    jq_args_dup(a, ukey, strlen(ukey));
    jq_args_str(a, oc->id);
    jq_args_dup(a, until, strlen(until));
    jq_finish_send(fin, NULL, NULL);
}

/* A queue that asked for it (settings.h) keeps its last done jobs in a
 * sorted set by finish time, for browsing: two writes per done job, only
 * there. */
static void index_done(jq_finish_t *fin, const outcome_t *oc, long long keep) {
    char key[JQ_KEY_MAX];
    jq_key(key, sizeof(key), fin->env.opt->prefix, oc->qn, "done");
    jq_args_t *a = jq_finish_cmd(fin, "ZADD");
    jq_args_str(a, key);
    jq_args_dup(a, oc->now, strlen(oc->now));
    jq_args_str(a, oc->id);
    jq_finish_send(fin, NULL, NULL);
    a = jq_finish_cmd(fin, "ZREMRANGEBYRANK");
    jq_args_str(a, key);
    jq_args_str(a, "0");
    jq_args_ll(a, -keep - 1);
    jq_finish_send(fin, NULL, NULL);
}

void jq_outcome_send_unrequest(jq_finish_t *fin, int q, const jq_run_t *runs) {
    int any = fin->env.queues[q].cancels != 0;
    for (const jq_run_t *r = runs; r && !any; r = r->bnext) any = r->outcome == JQ_OUT_CANCELLED;
    if (!any) return;
    char key[JQ_KEY_MAX];
    jq_key(key, sizeof(key), fin->env.opt->prefix, fin->env.queues[q].name, "cancel");
    jq_args_t *a = jq_finish_cmd(fin, "ZREM");
    jq_args_str(a, key);
    for (const jq_run_t *r = runs; r; r = r->bnext)
        if (state_of(r) != JQ_STATE_RETRYING) jq_args_str(a, r->job.id);
    if (a->argc > 2)
        jq_finish_send(fin, NULL, NULL);
    else
        jq_args_reset(a);
}

/* ---- batches (PROTOCOL §12) ---- */

static void on_batch_step(redisAsyncContext *ac, void *rp, void *priv) {
    const redisReply *reply = rp;
    (void)ac;
    (void)priv;
    if (reply && reply->type == REDIS_REPLY_ERROR) jq_warn("batch step: %s", reply->str);
}

/* One job of a batch ended: the batch script counts it (once per job,
 * whatever the repeats) and, when it was the sealed batch's last, adds the
 * callbacks. Sent before the MULTI that acks the job, on the same
 * connection, so Redis runs it first: a worker killed between the two
 * leaves the entry pending, to end again elsewhere and be counted then
 * (or found counted already). Not inside the MULTI: the batch's keys live
 * in its own queue's slot, which may not be this job's. */
static void batch_step(jq_finish_t *fin, const jq_run_t *r, jq_job_state_t st) {
    char bkey[JQ_KEY_MAX], ekey[JQ_KEY_MAX + 8], skey[JQ_KEY_MAX], member[2 * JQ_NAME_MAX_BUF + 2];
    char bq[JQ_NAME_MAX_BUF], name[JQ_NAME_MAX_BUF];
    size_t ql;
    if (jq_batch_id_split(r->job.batch.p, r->job.batch.len, &ql) < 0) return;
    memcpy(bq, r->job.batch.p, ql);
    bq[ql] = '\0';
    memcpy(name, r->job.batch.p + ql + 1, r->job.batch.len - ql - 1);
    name[r->job.batch.len - ql - 1] = '\0';
    const char *prefix = fin->env.opt->prefix;
    if (jq_key_id(bkey, sizeof(bkey), prefix, bq, "batch", name) < 0 ||
        jq_key(skey, sizeof(skey), prefix, bq, "stream") < 0)
        return;
    snprintf(ekey, sizeof(ekey), "%s:ended", bkey);
    snprintf(member, sizeof(member), "%s/%s", fin->env.queues[r->q].name, r->job.id);
    jq_args_t *a = jq_finish_cmd(fin, "EVAL");
    jq_args_str(a, jq_batch_lua);
    jq_args_str(a, "3");
    jq_args_dup(a, bkey, strlen(bkey));
    jq_args_dup(a, ekey, strlen(ekey));
    jq_args_dup(a, skey, strlen(skey));
    jq_args_str(a, "end");
    jq_args_dup(a, member, strlen(member));
    jq_args_str(a, state_name[st]);
    if (jq_finish_send(fin, on_batch_step, NULL) < 0) fin->bad = 0; /* not in a MULTI */
}

void jq_outcome_batch_steps(jq_finish_t *fin, const jq_run_t *runs) {
    for (const jq_run_t *r = runs; r; r = r->bnext) {
        if (!r->job.batch.len) continue;
        jq_job_state_t st = state_of(r);
        if (st != JQ_STATE_RETRYING) batch_step(fin, r, st);
    }
}

/* Everything one outcome writes into the open MULTI but its counters,
 * each decision in its own step. */
jq_job_state_t jq_outcome_write(jq_finish_t *fin, jq_run_t *r) {
    outcome_t oc;
    decide(fin, r, &oc);
    if (oc.state == JQ_STATE_RETRYING)
        write_retry(fin, r, &oc);
    else if (oc.state == JQ_STATE_DEAD)
        write_dead(fin, r, &oc);
    else if (r->job.chunks)
        drop_payload_chunks(fin, &oc); /* done or cancelled */
    if (oc.state != JQ_STATE_RETRYING && r->job.unique.len) release_unique(fin, r, &oc);
    write_result(fin, r, &oc);
    /* A level's entry (levels.h) has its queue's settings. */
    long long keep = fin->env.queues[jq_queue_base(fin->env.queues, r->q)].keep_done;
    if (oc.state == JQ_STATE_DONE && keep > 0) index_done(fin, &oc, keep);
    return oc.state;
}

/* The batch's per-job writes. It runs inside the MULTI, so the batch
 * stays one atomic step, and its shebang (no flags) makes Redis refuse it
 * before it runs (out of memory, a read-only replica, a failed save),
 * which refuses the whole MULTI (EXECABORT: held, see below), instead of
 * failing at its first write. Each write is a pcall, as each command of a
 * MULTI was: one that fails (a key of the wrong type under our result
 * key) does not stop the others; the script answers with the first
 * error. The TTLs are PEXPIREAT from Redis's own clock (TIME), worked out
 * once per distinct result_ttl: EXPIRE's relative form is rewritten by
 * Redis into that for each call, which cost it about 0.5 us a key. Sent
 * with EVAL, not EVALSHA: a script cache emptied by a restart or SCRIPT
 * FLUSH can never make an EVALSHA in the MULTI fail while the batch's
 * other writes (its XACK) go through; hashing its text costs Redis a few
 * microseconds per batch. The XACK and the counters stay native commands
 * of the MULTI: in the script they cost Redis more than they saved the
 * worker (a batch of `result_ttl 0` jobs, which writes nothing per job,
 * sends no script at all).
 *
 * KEYS: for each outcome written its result key and, when it pushes one,
 * its notify key. ARGV: worker id, then per outcome ttl, state, attempts,
 * finished_at, notify (1: push the notify list), k, and k extra
 * field/value pairs. */
static const char outcome_lua[] =
    "#!lua\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local pcall, err, ats = redis.pcall, nil, {}\n"
    "local wid = ARGV[1]\n"
    "local i, k = 2, 1\n"
    "while i <= #ARGV do\n"
    "  local ttl, st, nx = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 5])\n"
    "  local at = ats[ttl]\n"
    "  if not at then\n"
    "    at = string.format('%.0f', now + tonumber(ttl) * 1000)\n"
    "    ats[ttl] = at\n"
    "  end\n"
    "  local key = KEYS[k]\n"
    "  local r\n"
    "  if nx == 0 then\n"
    "    r = pcall('HSET', key, 'state', st, 'attempts', ARGV[i + 2], 'finished_at', ARGV[i + 3], "
    "'worker', wid)\n"
    "  else\n"
    "    r = pcall('HSET', key, 'state', st, 'attempts', ARGV[i + 2], 'finished_at', ARGV[i + 3], "
    "'worker', wid, unpack(ARGV, i + 6, i + 5 + 2 * nx))\n"
    "  end\n"
    "  if type(r) == 'table' then err = err or r.err end\n"
    "  pcall('PEXPIREAT', key, at)\n"
    "  k = k + 1\n"
    "  if ARGV[i + 4] == '1' then\n"
    "    key = KEYS[k]\n"
    "    r = pcall('LPUSH', key, st)\n"
    "    if type(r) == 'table' then err = err or r.err end\n"
    "    pcall('PEXPIREAT', key, at)\n"
    "    k = k + 1\n"
    "  end\n"
    "  i = i + 6 + 2 * nx\n"
    "end\n"
    "if err then return redis.error_reply(err) end\n"
    "return 0\n";

/* A batch of one outcome: the same writes as native commands, for its
 * latency. A job enqueued and waited for alone (one at a time) has its
 * waiter's BLPOP answered only once the whole EXEC has run, and the
 * script's call is most of that EXEC when Redis's caches are cold
 * between jobs: about 120 us of EXEC with it, 70 without (INFO
 * commandstats, one job every 5 ms, docs/BENCHMARKS.md "issue 22"). From
 * two outcomes on the script wins (it costs Redis less per job), and a
 * batch of one is a worker with little to do. The same refusals hold:
 * Redis refuses a write command queued in a MULTI when it would refuse it
 * alone (out of memory, a read-only replica), which aborts the EXEC as
 * the script's shebang does; one that fails at run time (a key of the
 * wrong type) fails alone, as the script's pcall does. EXPIRE, not
 * PEXPIREAT: one key, so nothing to share the clock reading with. The
 * group's layout is add_script_args's; KEYS the result key, then the
 * notify key when the group says to push it. */
static void send_native(jq_finish_t *fin) {
    const jq_args_t *k = &fin->keys, *o = &fin->out;
    static const char *const fields[] = {"state", "attempts", "finished_at"};
    jq_args_t *a = jq_finish_cmd(fin, "HSET");
    jq_args_add(a, k->argv[0], k->lens[0]);
    for (int i = 0; i < 3; i++) {
        jq_args_str(a, fields[i]);
        jq_args_add(a, o->argv[1 + i], o->lens[1 + i]);
    }
    jq_args_str(a, "worker");
    jq_args_str(a, fin->env.worker_id);
    for (int i = 6; i < o->argc; i++) jq_args_add(a, o->argv[i], o->lens[i]);
    jq_finish_send(fin, NULL, NULL);
    for (int i = 0; i < k->argc; i++) {
        if (i > 0) {
            a = jq_finish_cmd(fin, "LPUSH");
            jq_args_add(a, k->argv[i], k->lens[i]);
            jq_args_add(a, o->argv[1], o->lens[1]);
            jq_finish_send(fin, NULL, NULL);
        }
        a = jq_finish_cmd(fin, "EXPIRE");
        jq_args_add(a, k->argv[i], k->lens[i]);
        jq_args_add(a, o->argv[0], o->lens[0]);
        jq_finish_send(fin, NULL, NULL);
    }
}

void jq_outcome_send_script(jq_finish_t *fin) {
    if (fin->nout == 0) return;
    if (fin->nout == 1) {
        send_native(fin);
        return;
    }
    jq_args_t *a = jq_finish_cmd(fin, "EVAL");
    jq_args_add(a, outcome_lua, sizeof(outcome_lua) - 1);
    jq_args_ll(a, fin->keys.argc);
    jq_args_cat(a, &fin->keys);
    jq_args_str(a, fin->env.worker_id);
    jq_args_cat(a, &fin->out);
    jq_finish_send(fin, NULL, NULL);
}
