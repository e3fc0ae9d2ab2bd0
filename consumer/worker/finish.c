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
 * Why a script for the common writes: as four commands per job (HSET,
 * EXPIRE, LPUSH, EXPIRE) in the MULTI, each one cost Redis a parse, a
 * queued copy, a +QUEUED reply and an EXEC reply element, and cost the
 * worker a formatted command, a hiredis callback node and two parsed
 * replies: most of the worker's CPU per job. In the script they are one
 * command and one reply per batch (docs/BENCHMARKS.md has the figures).
 *
 * Commands are built with the one argv builder (common/args.h), kept in
 * the stage's state (finish.h) so that a warm batch allocates nothing for
 * its argv. */

#include <stdlib.h>
#include <string.h>

#include "finish.h"
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

static int send_args(jq_worker_t *w, redisCallbackFn *fn, void *priv) {
    return send_on(w, &w->finish.args, fn, priv);
}

/* The builder, emptied, with the command name in it. */
static jq_args_t *cmd(jq_worker_t *w, const char *name) {
    jq_args_t *a = &w->finish.args;
    jq_args_reset(a);
    jq_args_str(a, name);
    return a;
}

static int bucket_of(long long ms) {
    for (int i = 0; i < NBUCKETS - 1; i++)
        if (ms <= bucket_ms[i]) return i;
    return NBUCKETS - 1;
}

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
static void write_job_hash(jq_worker_t *w, jq_run_t *r, const char *key,
                           const char *const *extra, size_t nextra) {
    jq_args_t *a = cmd(w, "DEL");
    jq_args_str(a, key);
    send_args(w, NULL, NULL);
    a = cmd(w, "HSET");
    jq_args_str(a, key);
    const jq_reply_fields_t *f = r->fields;
    for (size_t i = 0; f && i + 1 < f->n; i += 2) {
        const jq_str_t *k = &f->f[i], *v = &f->f[i + 1];
        if (!k->p || !v->p) continue; /* not strings */
        if (!jq_job_field_kept(k->p, k->len)) continue;
        jq_args_add(a, k->p, k->len);
        jq_args_add(a, v->p, v->len);
    }
    for (size_t i = 0; i < nextra; i++) jq_args_str(a, extra[i]);
    send_args(w, NULL, NULL);
}

/* The handler is done with the decoded payload: free it (and for a done
 * job the entry's fields, which hold an inline payload) before the result
 * is copied into hiredis' output buffer, so that a large payload, its
 * result and that copy are never in memory at once. Not for an abandoned
 * cpu run, whose thread may still read it. */
static void drop_payload(jq_run_t *r) {
    if (r->keep) return;
    jq_run_drop_zone(r);
    r->payload.type = MSGPACK_OBJECT_NIL;
    if (r->jbuf.data) msgpack_sbuffer_destroy(&r->jbuf);
    memset(&r->jbuf, 0, sizeof(r->jbuf));
    if (r->outcome == JQ_OUT_DONE && r->fields) {
        /* Only retries and dead letters copy the fields (write_job_hash);
         * r->job's string views into them are not used past this point. */
        jq_reply_fields_release(r->fields);
        r->fields = NULL;
        memset(&r->job.type, 0, sizeof(r->job.type));
        memset(&r->job.payload, 0, sizeof(r->job.payload));
    }
}

/* ---- one outcome: its decisions ----
 *
 * What one attempt's end writes is decided once (decide): its state, then
 * what that state writes beside the result (write_retry, write_dead,
 * drop_payload_chunks), then the result itself (write_result), each step a
 * function named for what it decides. */

typedef enum { ST_DONE, ST_RETRYING, ST_DEAD } state_t;
static const char *const state_name[] = {"done", "retrying", "dead"};

typedef struct outcome {
    const char *qn, *id;
    state_t state;
    char attempts[24];            /* attempts made, counting this one */
    char now[24];                 /* finished_at, ms */
    long long ttl;                /* result_ttl, s; 0: no result, no notify */
} outcome_t;

/* Attempts made, counting this one; a job dead on arrival made none. */
static long long attempts_made(const jq_run_t *r) {
    return r->job.attempt + (r->outcome == JQ_OUT_DEAD ? 0 : 1);
}

/* A failed attempt retries while attempts are left, else it is dead. */
static state_t state_of(const jq_run_t *r) {
    if (r->outcome == JQ_OUT_DONE) return ST_DONE;
    if (r->outcome == JQ_OUT_FAILED && attempts_made(r) < r->job.max_attempts) return ST_RETRYING;
    return ST_DEAD;
}

/* The counters (§7): a failed attempt counts as failed, and as retried or
 * dead; a job dead on arrival only as dead. */
static void count(qsum_t *sum, const jq_run_t *r, state_t st) {
    if (r->outcome == JQ_OUT_FAILED) sum->failed++;
    if (st == ST_DONE) sum->processed++;
    else if (st == ST_RETRYING) sum->retried++;
    else sum->dead++;
}

static void decide(jq_worker_t *w, const jq_run_t *r, outcome_t *oc) {
    oc->qn = w->queues[r->q].name;
    oc->id = r->job.id;
    oc->ttl = r->job.result_ttl;
    oc->state = state_of(r);
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
 * (finish.c's outcome_lua says why); EVAL, not EVALSHA, for the same
 * reason as there. KEYS: job hash, set, stream; ARGV: score, id, group,
 * entry id. */
static const char move_lua[] =
    "#!lua\n"
    "if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then\n"
    "  return redis.error_reply('ERR job hash ' .. KEYS[1] .. ' not written: entry ' .. ARGV[4] .. ' left pending')\n"
    "end\n"
    "redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])\n"
    "return redis.call('XACK', KEYS[3], ARGV[3], ARGV[4])\n";

static void move(jq_worker_t *w, const jq_run_t *r, const outcome_t *oc, const char *jkey,
                 const char *set, const char *score) {
    char zkey[JQ_KEY_MAX];
    jq_key(zkey, sizeof(zkey), w->opt->prefix, oc->qn, set);
    jq_args_t *a = cmd(w, "EVAL");
    jq_args_add(a, move_lua, sizeof(move_lua) - 1);
    jq_args_str(a, "3");
    jq_args_str(a, jkey);
    jq_args_str(a, zkey);
    jq_args_str(a, w->queues[r->q].stream);
    jq_args_str(a, score);
    jq_args_str(a, oc->id);
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, r->job.entry_id);
    send_args(w, NULL, NULL);
}

/* A retry: the job hash for promotion, and its due time in scheduled. */
static void write_retry(jq_worker_t *w, jq_run_t *r, const outcome_t *oc) {
    char jkey[JQ_KEY_MAX], due[24];
    jq_ll2str(due, (long long)r->finished_ms + retry_delay(w->opt, attempts_made(r)));
    jq_key_id(jkey, sizeof(jkey), w->opt->prefix, oc->qn, "job", oc->id);
    const char *extra[] = {"id", oc->id, "attempt", oc->attempts, "error", r->error};
    write_job_hash(w, r, jkey, extra, sizeof(extra) / sizeof(extra[0]));
    move(w, r, oc, jkey, "scheduled", due);
}

/* A dead letter (§4): the job hash, kept, and its id in the dead set. */
static void write_dead(jq_worker_t *w, jq_run_t *r, const outcome_t *oc) {
    char jkey[JQ_KEY_MAX];
    jq_key_id(jkey, sizeof(jkey), w->opt->prefix, oc->qn, "job", oc->id);
    const char *extra[] = {"id", oc->id, "attempt", oc->attempts, "error", r->error,
                           "failed_at", oc->now};
    write_job_hash(w, r, jkey, extra, sizeof(extra) / sizeof(extra[0]));
    move(w, r, oc, jkey, "dead", oc->now);
}

/* A done job's chunked payload has served its purpose. */
static void drop_payload_chunks(jq_worker_t *w, const outcome_t *oc) {
    char pkey[JQ_KEY_MAX];
    jq_key_id(pkey, sizeof(pkey), w->opt->prefix, oc->qn, "payload", oc->id);
    jq_args_t *a = cmd(w, "DEL");
    jq_args_str(a, pkey);
    send_args(w, NULL, NULL);
}

static void expire(jq_worker_t *w, const char *key, const char *ttl) {
    jq_args_t *a = cmd(w, "EXPIRE");
    jq_args_str(a, key);
    jq_args_str(a, ttl);
    send_args(w, NULL, NULL);
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
static int result_chunked(const jq_worker_t *w, const jq_run_t *r, const outcome_t *oc) {
    return oc->ttl > 0 && r->outcome == JQ_OUT_DONE &&
           (long long)r->task.result.size > w->opt->chunk_size;
}

/* The chunks, in several RPUSHes of a few: hiredis formats each command
 * into one buffer before it copies it to its output buffer, so one RPUSH
 * of everything would hold a third copy of the result for a moment.
 * Returns the number of chunks. */
static long long write_result_chunks(jq_worker_t *w, jq_run_t *r, const char *ckey,
                                     const char *ttl) {
    size_t rlen = r->task.result.size, step = (size_t)w->opt->chunk_size;
    jq_args_t *a = &w->finish.args;
    long long n = 0;
    jq_args_reset(a);
    for (size_t off = 0; off < rlen; off += step, n++) {
        if (a->argc == 0) {
            jq_args_str(a, "RPUSH");
            jq_args_str(a, ckey);
        }
        jq_args_add(a, r->task.result.data + off, rlen - off < step ? rlen - off : step);
        if (a->argc == 2 + RESULT_CHUNKS_PER_CMD || off + step >= rlen) send_args(w, NULL, NULL);
    }
    expire(w, ckey, ttl);
    return n;
}

/* The outcome's group in the script's ARGV (see outcome_lua): ttl, state,
 * attempts, finished_at, and the count of extra pairs, then those: the
 * error of an attempt that failed, and the result (or how many chunks
 * hold it). */
static void add_script_args(jq_args_t *a, const jq_run_t *r, const outcome_t *oc,
                            const char *ttl, long long chunks) {
    size_t rlen = r->task.result.size;
    int failed = r->outcome != JQ_OUT_DONE;
    int result = !chunks && !failed && rlen > 0;
    int nextra = failed + (chunks || result);
    jq_args_dup(a, ttl, strlen(ttl));
    jq_args_str(a, state_name[oc->state]);
    jq_args_dup(a, oc->attempts, strlen(oc->attempts));
    jq_args_dup(a, oc->now, strlen(oc->now));
    jq_args_str(a, nextra == 2 ? "2" : nextra == 1 ? "1" : "0");
    if (failed) {
        jq_args_str(a, "error");
        jq_args_str(a, r->error);
    }
    if (chunks) {
        jq_args_str(a, "chunks");
        jq_args_ll(a, chunks);
    } else if (result) {
        jq_args_str(a, "result");
        jq_args_add(a, r->task.result.data, rlen);
    }
}

/* Adds the key `what` of this job (result, notify) to the script's KEYS. */
static void add_script_key(jq_worker_t *w, const outcome_t *oc, const char *what) {
    char key[JQ_KEY_MAX];
    int n = jq_key_id(key, sizeof(key), w->opt->prefix, oc->qn, what, oc->id);
    jq_args_dup(&w->finish.keys, key, n < 0 ? 0 : (size_t)n);
}

/* The result hash (§3), written anew each attempt so no field of an
 * earlier attempt (an old error) lingers, and the notify list of a job
 * that ended (not of one retrying: nobody waiting is woken by a retry).
 * Nothing with result_ttl 0 (PROTOCOL 1.1): no key per job. The hash and
 * the list are written by the batch's script: here they are only added
 * to its KEYS and ARGV (see outcome_lua). */
static void write_result(jq_worker_t *w, jq_run_t *r, const outcome_t *oc) {
    char rkey[JQ_KEY_MAX], ckey[JQ_KEY_MAX + 8], ttl[24];
    int old = may_have_old_result(r), chunked = result_chunked(w, r, oc);
    if (old || chunked) {
        jq_key_id(rkey, sizeof(rkey), w->opt->prefix, oc->qn, "result", oc->id);
        snprintf(ckey, sizeof(ckey), "%s:chunks", rkey);
    }
    if (old) {
        jq_args_t *a = cmd(w, "DEL");
        jq_args_str(a, rkey);
        jq_args_str(a, ckey);
        send_args(w, NULL, NULL);
    }
    if (oc->ttl <= 0) return;
    jq_ll2str(ttl, oc->ttl);
    long long chunks = chunked ? write_result_chunks(w, r, ckey, ttl) : 0;
    add_script_key(w, oc, "result");
    add_script_args(&w->finish.out, r, oc, ttl, chunks);
    w->finish.nout++;
    if (oc->state != ST_RETRYING) add_script_key(w, oc, "notify");
}

static void add_latency(const jq_run_t *r, qsum_t *sum) {
    if (!r->started_ms) return;
    if (r->job.enqueued_ms) {
        long long wait_ms = r->started_ms - r->job.enqueued_ms;
        if (wait_ms < 0) wait_ms = 0;
        sum->wait[bucket_of(wait_ms)]++;
        sum->wait_n++;
        sum->wait_us += wait_ms * 1000;
    }
    sum->run[bucket_of(r->run_us / 1000)]++;
    sum->run_n++;
    sum->run_us += r->run_us;
}

/* Everything one attempt's end writes, each decision in its own step.
 * Returns 1 when its entry's ack is in its move (a retry or a dead
 * letter), 0 when it goes in the batch's XACK. */
static int write_outcome(jq_worker_t *w, jq_run_t *r, qsum_t *sum) {
    outcome_t oc;
    drop_payload(r);
    decide(w, r, &oc);
    count(sum, r, oc.state);
    if (oc.state == ST_RETRYING) write_retry(w, r, &oc);
    else if (oc.state == ST_DEAD) write_dead(w, r, &oc);
    else if (r->job.chunks) drop_payload_chunks(w, &oc);
    write_result(w, r, &oc);
    add_latency(r, sum);
    return oc.state != ST_DONE;
}

static void hincrby(jq_worker_t *w, const char *key, const char *field, long long by) {
    char v[24];
    jq_ll2str(v, by);
    jq_args_t *a = cmd(w, "HINCRBY");
    jq_args_str(a, key);
    jq_args_str(a, field);
    jq_args_str(a, v);
    send_args(w, NULL, NULL);
}

/* The batch's counts (§7), summed: in the queue's stats hash and in its
 * per-minute one, kept a day. */
static void write_counts(jq_worker_t *w, const char *qn, const qsum_t *s) {
    char key[JQ_KEY_MAX], mkey[JQ_KEY_MAX], suffix[48];
    jq_key(key, sizeof(key), w->opt->prefix, qn, "stats");
    snprintf(suffix, sizeof(suffix), "stats:%lld", (long long)(jq_now_ms() / 60000));
    jq_key(mkey, sizeof(mkey), w->opt->prefix, qn, suffix);
    const char *names[] = {"processed", "failed", "retried", "dead"};
    const long long vals[] = {s->processed, s->failed, s->retried, s->dead};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!vals[i]) continue;
        hincrby(w, key, names[i], vals[i]);
        hincrby(w, mkey, names[i], vals[i]);
    }
    expire(w, mkey, "86400");
}

/* One latency histogram (wait or run) of the batch into the queue's
 * latency hash: its non-empty buckets, count and sum. */
static void write_latency(jq_worker_t *w, const char *lkey, const char *kind,
                          const long long *buckets, long long n, long long sum_us) {
    char f[32];
    if (!n) return;
    for (int i = 0; i < NBUCKETS; i++) {
        if (!buckets[i]) continue;
        if (i < NBUCKETS - 1)
            snprintf(f, sizeof(f), "%s:le:%lld", kind, bucket_ms[i]);
        else
            snprintf(f, sizeof(f), "%s:le:inf", kind);
        hincrby(w, lkey, f, buckets[i]);
    }
    snprintf(f, sizeof(f), "%s:count", kind);
    hincrby(w, lkey, f, n);
    snprintf(f, sizeof(f), "%s:sum_us", kind);
    hincrby(w, lkey, f, sum_us);
}

/* The batch's counters (§7), summed: a few commands per batch. */
static void write_sums(jq_worker_t *w, const char *qn, const qsum_t *s) {
    char lkey[JQ_KEY_MAX];
    write_counts(w, qn, s);
    jq_key(lkey, sizeof(lkey), w->opt->prefix, qn, "latency");
    write_latency(w, lkey, "wait", s->wait, s->wait_n, s->wait_us);
    write_latency(w, lkey, "run", s->run, s->run_n, s->run_us);
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
 * KEYS: for each outcome written its result key and, unless it is
 * retrying, its notify key. ARGV: worker id, then per outcome ttl, state,
 * attempts, finished_at, k, and k extra field/value pairs. */
static const char outcome_lua[] =
    "#!lua\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local pcall, err, ats = redis.pcall, nil, {}\n"
    "local wid = ARGV[1]\n"
    "local i, k = 2, 1\n"
    "while i <= #ARGV do\n"
    "  local ttl, st, nx = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 4])\n"
    "  local at = ats[ttl]\n"
    "  if not at then\n"
    "    at = string.format('%.0f', now + tonumber(ttl) * 1000)\n"
    "    ats[ttl] = at\n"
    "  end\n"
    "  local key = KEYS[k]\n"
    "  local r\n"
    "  if nx == 0 then\n"
    "    r = pcall('HSET', key, 'state', st, 'attempts', ARGV[i + 2], 'finished_at', ARGV[i + 3], 'worker', wid)\n"
    "  else\n"
    "    r = pcall('HSET', key, 'state', st, 'attempts', ARGV[i + 2], 'finished_at', ARGV[i + 3], 'worker', wid, unpack(ARGV, i + 5, i + 4 + 2 * nx))\n"
    "  end\n"
    "  if type(r) == 'table' then err = err or r.err end\n"
    "  pcall('PEXPIREAT', key, at)\n"
    "  k = k + 1\n"
    "  if st ~= 'retrying' then\n"
    "    key = KEYS[k]\n"
    "    r = pcall('LPUSH', key, st)\n"
    "    if type(r) == 'table' then err = err or r.err end\n"
    "    pcall('PEXPIREAT', key, at)\n"
    "    k = k + 1\n"
    "  end\n"
    "  i = i + 5 + 2 * nx\n"
    "end\n"
    "if err then return redis.error_reply(err) end\n"
    "return 0\n";

/* Sends the batch's script (in the MULTI) with what write_result
 * gathered in fin.keys and fin.out; none when nothing was. */
static void send_outcomes(jq_worker_t *w) {
    jq_finish_t *fin = &w->finish;
    if (fin->nout == 0) return;
    jq_args_t *a = cmd(w, "EVAL");
    jq_args_add(a, outcome_lua, sizeof(outcome_lua) - 1);
    jq_args_ll(a, fin->keys.argc);
    jq_args_cat(a, &fin->keys);
    jq_args_str(a, w->id);
    jq_args_cat(a, &fin->out);
    send_args(w, NULL, NULL);
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
    jq_args_t *a = cmd(w, "EVAL");
    jq_args_str(a, pending_lua);
    jq_args_str(a, "1");
    jq_args_str(a, w->queues[q].stream);
    f->runs = take_queue(w, q, 1);
    int n = 0;
    for (jq_run_t *r = f->runs; r; r = r->bnext, n++)
        jq_args_str(a, r->job.entry_id);
    if (n && send_args(w, on_verified, f) != 0) {
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
    /* Refused before: wait out the backoff, then try the whole batch. */
    if (w->finish.held && jq_now_ms() < w->finish.hold_next_ms) return;
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
    cmd(w, "MULTI");
    send_args(w, NULL, NULL);
}

/* Each run's outcome, and its entry id in the XACK. */
static void add_outcomes(jq_worker_t *w, jq_run_t *runs, qsum_t *sum) {
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
        cmd(w, "DISCARD");
        send_args(w, NULL, NULL);
        requeue_all(w, f->runs, 0);
        free(f);
        return;
    }
    cmd(w, "EXEC");
    if (send_args(w, on_exec, f) == 0) {
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
    qsum_t sum;
    memset(&sum, 0, sizeof(sum));
    open_multi(w, q);
    add_outcomes(w, runs, &sum);
    send_outcomes(w);
    /* Not without ids (every outcome acked in its move): an XACK with
     * none is refused as a whole, and with it the MULTI. */
    if (w->finish.ack.argc > 3) send_on(w, &w->finish.ack, NULL, NULL);
    jq_trim_send(w, q, newest_id(runs));
    write_sums(w, w->queues[q].name, &sum);
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
