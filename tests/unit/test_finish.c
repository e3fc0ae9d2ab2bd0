/* Tests of consumer/worker/finish.c against a fake connection (fake_rconn.c):
 * the MULTI ... EXEC an outcome batch becomes, the done / retrying / dead
 * decisions, result_ttl 0, and what a refused or lost EXEC reply does.
 * Linked with the real trim.c, fetch.c (the runs are taken in by
 * jq_fetch_intake; the reads after a batch), admit.c, qhealth.c and
 * common/; worker.c's parts are the stand-ins of fake_stages.c.
 * Over 500 lines because each test spells out, command by command, the
 * exact batch it expects: the wire is what these tests pin down. */

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "fake_rconn.h"
#include "fake_stages.h"
#include "unique.h"
#include "worker.h"

#define FINISHED_MS 1700000000000LL

static jq_worker_t *w;
static jq_options_t opt;

static void setup(void) {
    w = fake_worker_new(&opt);
    jq_stage_env_t env = jq_worker_env(w);
    jq_trim_init(&w->trim, &env);
    jq_finish_init(&w->finish, &env, &w->trim);
    opt.chunk_size = 1 << 20;
    opt.backoff_ms = 1000;
    opt.backoff_max_ms = 60000;
}

static void teardown(void) {
    /* Every command still out is answered NULL, as by a lost connection:
     * their runs come back to the batch, which jq_finish_destroy frees. */
    w->stopping = 1;
    w->rfetch.up = w->rwrite.up = 0;
    fake_rconn_reset();
    jq_finish_destroy(&w->finish);
    jq_trim_destroy(&w->trim);
    fake_worker_free(w);
}

TestSuite(finish, .init = setup, .fini = teardown);

/* ---- runs, taken in by fetch.c and ended ---- */

/* The run fetch.c makes of entry id of queue q with the field array f
 * (fake_fields; type first). Intake borrows the reply, as in a callback:
 * freed right after. */
static jq_run_t *take(int q, const char *id, redisReply *f) {
    int before = nstarted;
    jq_fetch_intake(&w->fetch, q, id, f, 1);
    freeReplyObject(f);
    cr_assert_eq(nstarted, before + 1, "fetch.c starts %s", id);
    return started[nstarted - 1];
}

/* Ends r's attempt as worker.c does (record_end) and hands it to finish. */
static void end(jq_run_t *r, jq_outcome_t out, const char *what) {
    r->outcome = out;
    r->started_ms = FINISHED_MS - 3;
    r->finished_ms = FINISHED_MS;
    r->run_us = 3000;
    if (out == JQ_OUT_DONE)
        msgpack_sbuffer_write(&r->task.result, what, strlen(what));
    else
        snprintf(r->error, sizeof(r->error), "%s", what);
    jq_finish_add(&w->finish, r);
}

static jq_run_t *done(int q, const char *id, const char *result) {
    jq_run_t *r = take(q, id, fake_fields(2, "type", "io"));
    end(r, JQ_OUT_DONE, result);
    return r;
}

/* ---- what was sent ---- */

static int is(int i, const char *name) { return strcmp(fake_cmds[i].argv[0], name) == 0; }

/* The outcome script's EVAL, the trim's, the lost-reply check's: told
 * apart by their text (the recorded line is cut, the scripts are long). */
static int is_eval(int i, const char *text) {
    return is(i, "EVAL") && strncmp(fake_cmds[i].argv[1], text, strlen(text)) == 0;
}
#define OUTCOME_LUA "#!lua\nlocal t"
#define MOVE_LUA "#!lua\nif redis.call('TYPE'"
#define WRITABLE_LUA "#!lua\nreturn 1"
#define PENDING_LUA "local out = {}"

/* The index of the first command at or after from named name (an EVAL:
 * whose script starts with text), or -1. */
static int next_cmd(int from, const char *name, const char *text) {
    for (int i = from; i < fake_ncmds; i++)
        if (text ? is_eval(i, text) : is(i, name)) return i;
    return -1;
}

static int count_eval(const char *text) {
    int n = 0;
    for (int i = 0; i < fake_ncmds; i++) n += is_eval(i, text);
    return n;
}

/* The last retry's or dead letter's move script (ZADD to the set, then
 * the ack of the entry) into the sorted set zkey, or -1. Its argv: EVAL,
 * text, 3, job hash, set, stream, score, id, group, entry id. */
static int find_move(const char *zkey) {
    for (int i = fake_ncmds - 1; i >= 0; i--)
        if (is_eval(i, MOVE_LUA) && strcmp(fake_cmds[i].argv[4], zkey) == 0) return i;
    return -1;
}

/* Asserts that command i has exactly the n arguments given. */
static void assert_argv(int i, int n, ...) {
    cr_assert_geq(i, 0);
    cr_assert_eq(fake_cmds[i].argc, n, "argc of %s", fake_cmds[i].line);
    va_list ap;
    va_start(ap, n);
    for (int k = 0; k < n; k++) {
        const char *want = va_arg(ap, const char *);
        cr_assert_str_eq(fake_cmds[i].argv[k], want, "argv[%d] of %s", k, fake_cmds[i].line);
    }
    va_end(ap);
}

/* Asserts that the outcome script's arguments from argv[from] on are the
 * n given. */
static void assert_args_from(int i, int from, int n, ...) {
    cr_assert_geq(i, 0);
    cr_assert_eq(fake_cmds[i].argc, from + n, "argc of the outcome script");
    va_list ap;
    va_start(ap, n);
    for (int k = 0; k < n; k++) {
        const char *want = va_arg(ap, const char *);
        cr_assert_str_eq(fake_cmds[i].argv[from + k], want, "argv[%d]", from + k);
    }
    va_end(ap);
}

/* A lone outcome's native writes (outcome.c, send_native): the result
 * hash of entry 1-1 with one extra field k = v, and its notify list
 * pushed with the state. */
static void assert_lone_result(const char *state, const char *attempts, const char *at,
                               const char *k, const char *v) {
    cr_assert_eq(count_eval(OUTCOME_LUA), 0);
    assert_argv(fake_rconn_find(NULL, "HSET jq:{a}:result:1-1"), 12, "HSET", "jq:{a}:result:1-1",
                "state", state, "attempts", attempts, "finished_at", at, "worker", "host:1", k, v);
    assert_argv(fake_rconn_find(NULL, "LPUSH"), 3, "LPUSH", "jq:{a}:notify:1-1", state);
    assert_argv(fake_rconn_find(NULL, "EXPIRE jq:{a}:notify:1-1"), 3, "EXPIRE", "jq:{a}:notify:1-1",
                "86400");
}

/* Answers the reads (XREADGROUP) not answered yet with nothing (not the
 * reads their answers kick); returns how many there were. */
static int answer_reads(void) {
    int n = 0, sent = fake_ncmds;
    for (int i = 0; i < sent; i++)
        if (!fake_cmds[i].answered && is(i, "XREADGROUP")) {
            fake_rconn_answer(i, fake_nil());
            n++;
        }
    return n;
}

/* An EXEC's reply that ran: one integer per command between MULTI and
 * EXEC (so the trim learns nothing from it: answered_pending). */
static redisReply *ran(int multi, int exec) {
    redisReply *r = fake_arr(0);
    free(r->element);
    r->elements = (size_t)(exec - multi - 1);
    r->element = calloc(r->elements, sizeof(redisReply *));
    for (size_t k = 0; k < r->elements; k++) r->element[k] = fake_int(0);
    return r;
}

/* Asserts that the batch counted n under field of queue a's stats
 * (§7), or, with n NULL, that it sent no such counter. */
static void assert_counted(const char *field, const char *n) {
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "HINCRBY jq:{a}:stats %s", field);
    if (!n) {
        cr_assert_eq(fake_rconn_count(NULL, prefix), 0, "%s not counted", field);
        return;
    }
    assert_argv(fake_rconn_find(NULL, prefix), 4, "HINCRBY", "jq:{a}:stats", field, n);
}

/* Asserts that key is queue a's per-minute stats key of a minute in
 * [from, to] (the flush read the clock somewhere in between). */
static void assert_minute_key(const char *key, long long from, long long to) {
    const char *head = "jq:{a}:stats:";
    cr_assert_eq(strncmp(key, head, strlen(head)), 0, "%s", key);
    long long m = atoll(key + strlen(head));
    cr_assert(m >= from && m <= to, "%s", key);
}

/* ---- one batch, one MULTI ---- */

Test(finish, a_batch_of_one_queue_is_one_multi_exec) {
    done(0, "1-1", "r1");
    /* A client waits for this one (PROTOCOL 1.2 §3). */
    end(take(0, "1-2", fake_fields(4, "type", "io", "notify", "1")), JQ_OUT_DONE, "r2");
    done(0, "1-3", "r3");
    cr_assert_eq(fake_ncmds, 0, "nothing is sent before the flush");
    long long minute = jq_now_ms() / 60000;
    jq_finish_flush(&w->finish);
    long long minute_after = jq_now_ms() / 60000;
    cr_assert_eq(fake_rconn_count(&w->rwrite, "MULTI"), 1);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "EXEC"), 1);
    cr_assert(is(0, "MULTI"));
    int exec = next_cmd(0, "EXEC", NULL);
    for (int i = 0; i <= exec; i++) cr_assert_eq(fake_cmds[i].c, &w->rwrite);
    /* First attempts of jobs whose id is their entry id: nothing earlier
     * to delete, nothing for a retry or a dead letter. */
    cr_assert_eq(fake_rconn_count(NULL, "DEL"), 0);
    cr_assert_eq(fake_rconn_count(NULL, "ZADD"), 0);
    /* One script writes every result hash, and the notify list of the
     * one job whose entry carries `notify 1`: only that one has a notify
     * key, and its group says to push it. */
    cr_assert_eq(count_eval(OUTCOME_LUA), 1);
    int o = next_cmd(0, "EVAL", OUTCOME_LUA);
    cr_assert_lt(o, exec);
    assert_args_from(o, 2, 1 + 4 + 1 + 3 * 8, "4", "jq:{a}:result:1-1", "jq:{a}:result:1-2",
                     "jq:{a}:notify:1-2", "jq:{a}:result:1-3", "host:1", "86400", "done", "1",
                     "1700000000000", "0", "1", "result", "r1", "86400", "done", "1",
                     "1700000000000", "1", "1", "result", "r2", "86400", "done", "1",
                     "1700000000000", "0", "1", "result", "r3");
    /* One XACK for all, then the trim's question: the oldest entry still
     * pending (trim.h). No trim yet: no answer has said what is acked. */
    int ack = next_cmd(0, "XACK", NULL);
    cr_assert_gt(ack, o);
    assert_argv(ack, 6, "XACK", "jq:{a}:stream", JQ_GROUP, "1-1", "1-2", "1-3");
    int pend = next_cmd(ack, "XPENDING", NULL);
    cr_assert_gt(pend, ack);
    assert_argv(pend, 6, "XPENDING", "jq:{a}:stream", JQ_GROUP, "-", "+", "1");
    cr_assert_lt(pend, exec);
    cr_assert_eq(fake_rconn_count(NULL, "XTRIM"), 0);
    /* The counters, summed over the batch (§7). */
    assert_counted("processed", "3");
    int m = fake_rconn_find(NULL, "HINCRBY jq:{a}:stats:");
    cr_assert_geq(m, 0, "the per-minute counters");
    assert_minute_key(fake_cmds[m].argv[1], minute, minute_after);
    assert_argv(m, 4, "HINCRBY", fake_cmds[m].argv[1], "processed", "3");
    assert_argv(fake_rconn_find(NULL, "EXPIRE jq:{a}:stats:"), 3, "EXPIRE", fake_cmds[m].argv[1],
                "86400");
    assert_counted("failed", NULL);
    assert_argv(fake_rconn_find(NULL, "HINCRBY jq:{a}:latency run:count"), 4, "HINCRBY",
                "jq:{a}:latency", "run:count", "3");
    assert_argv(fake_rconn_find(NULL, "HINCRBY jq:{a}:latency run:le:5"), 4, "HINCRBY",
                "jq:{a}:latency", "run:le:5", "3");
    /* Entries of 1970 (ids 1-n) waited longer than the last bucket. */
    assert_argv(fake_rconn_find(NULL, "HINCRBY jq:{a}:latency wait:le:inf"), 4, "HINCRBY",
                "jq:{a}:latency", "wait:le:inf", "3");
    assert_argv(fake_rconn_find(NULL, "HINCRBY jq:{a}:latency wait:count"), 4, "HINCRBY",
                "jq:{a}:latency", "wait:count", "3");
    cr_assert_lt(fake_rconn_find(NULL, "HINCRBY"), exec);
    /* Answered: the runs are freed, and nothing of them is held. */
    cr_assert(jq_finish_holds(&w->finish, 0, "1-2"));
    cr_assert_eq(nfreed, 0);
    fake_rconn_answer(exec, ran(0, exec));
    cr_assert_eq(nfreed, 3);
    cr_assert_not(jq_finish_holds(&w->finish, 0, "1-2"));
    cr_assert_eq(w->finish.unacked, 0);
}

/* The EXEC reply of the MULTI from multi to exec, with the trim's
 * question answered: the oldest pending entry id, or "" for none. */
static redisReply *answered_pending(int multi, int exec, const char *oldest) {
    int pend = next_cmd(multi, "XPENDING", NULL);
    cr_assert(pend > multi && pend < exec);
    redisReply *reply = ran(multi, exec);
    freeReplyObject(reply->element[pend - multi - 1]);
    reply->element[pend - multi - 1] =
        oldest[0] ? fake_arr(1, fake_arr(4, fake_str(oldest), fake_str("other"), fake_int(5),
                                         fake_int(1)))
                  : fake_arr(0);
    return reply;
}

Test(finish, acked_entries_the_trim_could_not_reach_are_kept_for_a_later_pass) {
    done(0, "1-1", "x");
    done(0, "1-5", "y");
    done(0, "1-9", "z");
    jq_finish_flush(&w->finish);
    int exec = next_cmd(0, "EXEC", NULL);
    /* The oldest entry still pending (another worker's, or a long job's):
     * only what is above it stays, kept for a pass; the trim goes up to
     * it. */
    fake_rconn_answer(exec, answered_pending(0, exec, "1-4"));
    jq_trim_ids_t *kept = &w->trim.young[0];
    cr_assert_eq(kept->n, 2);
    cr_assert_str_eq(kept->ids[0], "1-5");
    cr_assert_str_eq(kept->ids[1], "1-9");
    cr_assert_eq(w->trim.young[1].n, 0);
    cr_assert_str_eq(w->trim.bound[0], "1-4");
}

Test(finish, the_next_batch_trims_what_the_last_answer_proved_acked) {
    done(0, "1-1", "x");
    done(0, "1-3", "y");
    jq_finish_flush(&w->finish);
    int exec = next_cmd(0, "EXEC", NULL);
    /* Nothing pending after the acks: everything up to 1-3 is acked. */
    fake_rconn_answer(exec, answered_pending(0, exec, ""));
    cr_assert_str_eq(w->trim.bound[0], "1-4");
    cr_assert_eq(fake_rconn_count(NULL, "XTRIM"), 0);
    done(0, "1-7", "z");
    jq_finish_flush(&w->finish);
    int multi = next_cmd(exec + 1, "MULTI", NULL), exec2 = next_cmd(multi, "EXEC", NULL);
    int pend = next_cmd(multi, "XPENDING", NULL), trim = next_cmd(multi, "XTRIM", NULL);
    cr_assert(multi > exec && pend > multi && trim > pend && trim < exec2,
              "in the MULTI, after the question");
    assert_argv(trim, 4, "XTRIM", "jq:{a}:stream", "MINID", "1-4");
    /* Another worker's 1-6 is pending now: the bound moves up to it, and
     * the tick trims there, once. */
    fake_rconn_answer(exec2, answered_pending(multi, exec2, "1-6"));
    cr_assert_str_eq(w->trim.bound[0], "1-6");
    jq_trim_tick(&w->trim);
    int t = fake_rconn_find(NULL, "XTRIM jq:{a}:stream MINID 1-6");
    cr_assert_gt(t, exec2, "the tick's trim");
    jq_trim_tick(&w->trim);
    cr_assert_eq(fake_rconn_count(NULL, "XTRIM"), 2, "a bound trims once");
    /* Lost with the connection: the next tick sends it again. */
    fake_rconn_answer(t, NULL);
    jq_trim_tick(&w->trim);
    cr_assert_eq(fake_rconn_count(NULL, "XTRIM jq:{a}:stream MINID 1-6"), 2, "sent again");
}

Test(finish, each_queue_has_its_own_multi) {
    done(0, "1-1", "x");
    done(1, "2-1", "y");
    done(0, "1-2", "z");
    jq_finish_flush(&w->finish);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "MULTI"), 2);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "EXEC"), 2);
    assert_argv(fake_rconn_find(NULL, "XACK jq:{a}"), 5, "XACK", "jq:{a}:stream", JQ_GROUP, "1-1",
                "1-2");
    assert_argv(fake_rconn_find(NULL, "XACK jq:{b}"), 4, "XACK", "jq:{b}:stream", JQ_GROUP, "2-1");
    /* Queue a's MULTI ends before queue b's starts. */
    int exec_a = next_cmd(0, "EXEC", NULL);
    cr_assert_lt(fake_rconn_find(NULL, "XACK jq:{a}"), exec_a);
    cr_assert_gt(fake_rconn_find(NULL, "XACK jq:{b}"), exec_a);
}

Test(finish, result_ttl_0_writes_no_key_per_job) {
    jq_run_t *r = take(0, "1-1", fake_fields(4, "type", "io", "result_ttl", "0"));
    end(r, JQ_OUT_DONE, "r1");
    r = take(0, "1-2", fake_fields(4, "type", "io", "result_ttl", "0"));
    end(r, JQ_OUT_DONE, "r2");
    jq_finish_flush(&w->finish);
    cr_assert_eq(count_eval(OUTCOME_LUA), 0, "no script: it has nothing to write");
    for (int i = 0; i < fake_ncmds; i++) {
        cr_assert_null(strstr(fake_cmds[i].line, ":result:"), "%s", fake_cmds[i].line);
        cr_assert_null(strstr(fake_cmds[i].line, ":notify:"), "%s", fake_cmds[i].line);
    }
    assert_argv(fake_rconn_find(NULL, "XACK"), 5, "XACK", "jq:{a}:stream", JQ_GROUP, "1-1", "1-2");
    assert_counted("processed", "2");
}

/* A job alone in its batch (one at a time, a client waiting): its writes
 * go as native commands, which Redis runs sooner than the script's call,
 * in the same MULTI, before the XACK; the notify list after the hash. */
Test(finish, a_lone_outcome_is_written_by_native_commands_in_the_multi) {
    end(take(0, "1-1", fake_fields(4, "type", "io", "notify", "1")), JQ_OUT_DONE, "r1");
    jq_finish_flush(&w->finish);
    cr_assert_eq(count_eval(OUTCOME_LUA), 0);
    int exec = next_cmd(0, "EXEC", NULL), hset = next_cmd(0, "HSET", NULL);
    cr_assert(is(0, "MULTI"));
    for (int i = 0; i <= exec; i++) cr_assert_eq(fake_cmds[i].c, &w->rwrite);
    assert_argv(hset, 12, "HSET", "jq:{a}:result:1-1", "state", "done", "attempts", "1",
                "finished_at", "1700000000000", "worker", "host:1", "result", "r1");
    int x1 = next_cmd(hset, "EXPIRE", NULL), push = next_cmd(hset, "LPUSH", NULL);
    assert_argv(x1, 3, "EXPIRE", "jq:{a}:result:1-1", "86400");
    assert_argv(push, 3, "LPUSH", "jq:{a}:notify:1-1", "done");
    cr_assert_gt(push, x1);
    assert_argv(next_cmd(push, "EXPIRE", NULL), 3, "EXPIRE", "jq:{a}:notify:1-1", "86400");
    int ack = next_cmd(0, "XACK", NULL);
    cr_assert_gt(ack, push);
    cr_assert_lt(ack, exec);
    assert_counted("processed", "1");
}

/* ---- done, retrying, dead ---- */

Test(finish, a_failed_attempt_with_attempts_left_retries_after_a_backoff) {
    jq_run_t *r = take(
        0, "1-1", fake_fields(8, "type", "io", "max_attempts", "3", "mine", "kept", "notify", "1"));
    end(r, JQ_OUT_FAILED, "boom");
    jq_finish_flush(&w->finish);
    /* The job hash, anew (an old job of that id must not ride along), with
     * the entry's fields, for the promotion of the retry: `notify 1` too,
     * so that the attempt that ends the job wakes its waiter. */
    int del = fake_rconn_find(NULL, "DEL jq:{a}:job:1-1");
    assert_argv(del, 2, "DEL", "jq:{a}:job:1-1");
    int hset = next_cmd(del, "HSET", NULL);
    assert_argv(hset, 16, "HSET", "jq:{a}:job:1-1", "type", "io", "max_attempts", "3", "mine",
                "kept", "notify", "1", "id", "1-1", "attempt", "1", "error", "boom");
    /* Due after the backoff: 1000 ms +-20% for the first retry; the entry
     * acked in the same script, after the ZADD, not in the batch's XACK. */
    int z = find_move("jq:{a}:scheduled");
    cr_assert_gt(z, hset);
    cr_assert_eq(fake_cmds[z].argc, 10);
    assert_args_from(z, 2, 8, "3", "jq:{a}:job:1-1", "jq:{a}:scheduled", "jq:{a}:stream",
                     fake_cmds[z].argv[6], "1-1", JQ_GROUP, "1-1");
    long long due = atoll(fake_cmds[z].argv[6]);
    cr_assert(due >= FINISHED_MS + 800 && due <= FINISHED_MS + 1200, "due %lld", due);
    cr_assert_eq(find_move("jq:{a}:dead"), -1);
    /* Its result says retrying, with the error (alone in its batch: the
     * native commands, not the script); no notify list: nobody waiting
     * is woken by a retry. */
    cr_assert_eq(count_eval(OUTCOME_LUA), 0);
    assert_argv(fake_rconn_find(NULL, "HSET jq:{a}:result:1-1"), 12, "HSET", "jq:{a}:result:1-1",
                "state", "retrying", "attempts", "1", "finished_at", "1700000000000", "worker",
                "host:1", "error", "boom");
    assert_argv(fake_rconn_find(NULL, "EXPIRE jq:{a}:result:1-1"), 3, "EXPIRE", "jq:{a}:result:1-1",
                "86400");
    cr_assert_eq(fake_rconn_count(NULL, "LPUSH"), 0);
    assert_counted("failed", "1");
    assert_counted("retried", "1");
    assert_counted("dead", NULL);
    assert_counted("processed", NULL);
    cr_assert_eq(fake_rconn_count(NULL, "XACK"), 0, "an XACK of no id would abort the MULTI");
}

Test(finish, a_later_retry_doubles_the_backoff_and_clears_the_old_result) {
    /* Promoted from a retry: an earlier attempt wrote a result. */
    jq_run_t *r = take(
        0, "1-7", fake_fields(8, "type", "io", "id", "job7", "max_attempts", "5", "attempt", "2"));
    end(r, JQ_OUT_FAILED, "again");
    jq_finish_flush(&w->finish);
    assert_argv(fake_rconn_find(NULL, "DEL jq:{a}:result:job7"), 3, "DEL", "jq:{a}:result:job7",
                "jq:{a}:result:job7:chunks");
    int z = find_move("jq:{a}:scheduled");
    long long due = atoll(fake_cmds[z].argv[6]);
    cr_assert(due >= FINISHED_MS + 3200 && due <= FINISHED_MS + 4800,
              "third attempt: 4 s +-20%%, %lld", due);
    cr_assert_str_eq(fake_cmds[z].argv[7], "job7");
    cr_assert_str_eq(fake_cmds[z].argv[9], "1-7", "the entry acked");
    cr_assert_eq(fake_rconn_count(
                     NULL, "HSET jq:{a}:job:job7 type io id job7 max_attempts 5 id job7 attempt 3"),
                 1);
}

Test(finish, the_backoff_is_capped) {
    opt.backoff_max_ms = 1500;
    jq_run_t *r = take(0, "1-1", fake_fields(6, "type", "io", "max_attempts", "9", "attempt", "5"));
    end(r, JQ_OUT_FAILED, "boom");
    jq_finish_flush(&w->finish);
    long long due = atoll(fake_cmds[find_move("jq:{a}:scheduled")].argv[6]);
    cr_assert_eq(due, FINISHED_MS + 1500);
}

Test(finish, the_last_attempt_failing_is_dead_with_its_reason) {
    /* A retry promoted from its job hash, which carried `notify 1`. */
    jq_run_t *r = take(
        0, "1-1", fake_fields(8, "type", "io", "max_attempts", "3", "attempt", "2", "notify", "1"));
    end(r, JQ_OUT_FAILED, "boom");
    jq_finish_flush(&w->finish);
    assert_argv(fake_rconn_find(NULL, "HSET jq:{a}:job:1-1"), 16, "HSET", "jq:{a}:job:1-1", "type",
                "io", "max_attempts", "3", "notify", "1", "id", "1-1", "attempt", "3", "error",
                "boom", "failed_at", "1700000000000");
    assert_args_from(find_move("jq:{a}:dead"), 2, 8, "3", "jq:{a}:job:1-1", "jq:{a}:dead",
                     "jq:{a}:stream", "1700000000000", "1-1", JQ_GROUP, "1-1");
    cr_assert_eq(find_move("jq:{a}:scheduled"), -1);
    /* Dead is an end: its waiter is woken. */
    assert_lone_result("dead", "3", "1700000000000", "error", "boom");
    assert_counted("failed", "1");
    assert_counted("dead", "1");
    assert_counted("retried", NULL);
}

Test(finish, a_permanent_failure_is_dead_at_once_with_the_attempts_made) {
    /* The first of 3 attempts, failed by jq_task_fail_permanent. */
    jq_run_t *r = take(0, "1-1", fake_fields(6, "type", "io", "max_attempts", "3", "notify", "1"));
    r->permanent = 1;
    end(r, JQ_OUT_FAILED, "sha256: rounds must be an integer >= 1");
    jq_finish_flush(&w->finish);
    cr_assert_eq(find_move("jq:{a}:scheduled"), -1, "not retried");
    assert_args_from(find_move("jq:{a}:dead"), 2, 8, "3", "jq:{a}:job:1-1", "jq:{a}:dead",
                     "jq:{a}:stream", "1700000000000", "1-1", JQ_GROUP, "1-1");
    assert_lone_result("dead", "1", "1700000000000", "error",
                       "sha256: rounds must be an integer >= 1");
    assert_counted("failed", "1");
    assert_counted("dead", "1");
    assert_counted("retried", NULL);
}

Test(finish, a_job_dead_on_arrival_counts_no_attempt) {
    /* fetch.c dead-letters a type no live worker handles at once (the
     * queue's types read, none, the grace 0), through finish. */
    w->types.loaded[0] = 1;
    redisReply *f = fake_fields(4, "type", "nope", "notify", "1");
    jq_fetch_intake(&w->fetch, 0, "1-1", f, 1);
    freeReplyObject(f);
    cr_assert_eq(nstarted, 0);
    jq_finish_flush(&w->finish);
    int z = find_move("jq:{a}:dead");
    cr_assert_geq(z, 0);
    const char *at = fake_cmds[z].argv[6]; /* when fetch.c dead-lettered it */
    assert_args_from(z, 2, 8, "3", "jq:{a}:job:1-1", "jq:{a}:dead", "jq:{a}:stream", at, "1-1",
                     JQ_GROUP, "1-1");
    assert_lone_result("dead", "0", at, "error", "unknown job type: nope");
    assert_counted("dead", "1");
    assert_counted("failed", NULL);
    cr_assert_eq(fake_rconn_count(NULL, "HINCRBY jq:{a}:latency"), 0, "it never started");
}

/* PROTOCOL 1.2 §3: `notify 1` is read before any other field, so that a
 * job dead-lettered for a bad field still wakes the client that waits;
 * any other value than 0 or 1 is a bad field, and wakes nobody. */
Test(finish, a_job_dead_on_a_bad_field_still_wakes_its_waiter) {
    redisReply *f = fake_fields(6, "type", "io", "max_attempts", "x", "notify", "1");
    jq_fetch_intake(&w->fetch, 0, "1-1", f, 1);
    freeReplyObject(f);
    f = fake_fields(4, "type", "io", "notify", "yes");
    jq_fetch_intake(&w->fetch, 0, "1-2", f, 1);
    freeReplyObject(f);
    cr_assert_eq(nstarted, 0);
    jq_finish_flush(&w->finish);
    int o = next_cmd(0, "EVAL", OUTCOME_LUA);
    cr_assert_geq(o, 0);
    assert_args_from(
        o, 2, 1 + 3 + 1 + 2 * 8, "3", "jq:{a}:result:1-1", "jq:{a}:notify:1-1", "jq:{a}:result:1-2",
        "host:1", "86400", "dead", "0", fake_cmds[o].argv[10], "1", "1", "error",
        "bad field max_attempts: 'x' (want an integer from 1 to 1000000)", "86400", "dead", "0",
        fake_cmds[o].argv[18], "0", "1", "error", "bad field notify: 'yes' (want 0 or 1)");
}

/* The last MULTI before command i, or -1. */
static int multi_before(int i) {
    while (--i >= 0)
        if (is(i, "MULTI")) return i;
    return -1;
}

Test(finish, a_large_result_goes_to_a_list_of_chunks) {
    /* Written before the queue's MULTI (docs/PROTOCOL.md §3): the first
     * chunk in a small MULTI with a DEL and a short TTL, then the rest,
     * each RPUSH followed by that TTL; the queue's MULTI sets the
     * result's TTL beside the hash. */
    opt.chunk_size = 4;
    done(0, "1-1", "0123456789");
    jq_finish_flush(&w->finish);
    int first = next_cmd(0, "RPUSH", NULL);
    assert_argv(first - 2, 1, "MULTI");
    assert_argv(first - 1, 2, "DEL", "jq:{a}:result:1-1:chunks");
    assert_argv(first, 3, "RPUSH", "jq:{a}:result:1-1:chunks", "0123");
    assert_argv(first + 1, 3, "PEXPIRE", "jq:{a}:result:1-1:chunks", "60000");
    assert_argv(first + 2, 1, "EXEC");
    assert_argv(first + 3, 4, "RPUSH", "jq:{a}:result:1-1:chunks", "4567", "89");
    assert_argv(first + 4, 3, "PEXPIRE", "jq:{a}:result:1-1:chunks", "60000");
    int ex = fake_rconn_find(NULL, "EXPIRE jq:{a}:result:1-1:chunks");
    assert_argv(ex, 3, "EXPIRE", "jq:{a}:result:1-1:chunks", "86400");
    /* Alone in its batch: the hash by a native HSET (send_native). */
    int hset = fake_rconn_find(NULL, "HSET jq:{a}:result:1-1");
    cr_assert_gt(multi_before(hset), first + 4, "no RPUSH inside the queue's MULTI");
    cr_assert_eq(multi_before(ex), multi_before(hset));
    assert_argv(hset, 12, "HSET", "jq:{a}:result:1-1", "state", "done", "attempts", "1",
                "finished_at", "1700000000000", "worker", "host:1", "chunks", "3");
}

Test(finish, a_result_of_many_chunks_is_pushed_a_few_at_a_time) {
    /* 15 chunks of 1 byte: the first alone (with its TTL, in a MULTI),
     * then RPUSHes of 8 and of the 6 left. */
    opt.chunk_size = 1;
    done(0, "1-1", "0123456789abcde");
    jq_finish_flush(&w->finish);
    cr_assert_eq(fake_rconn_count(NULL, "RPUSH"), 3);
    int first = next_cmd(0, "RPUSH", NULL);
    assert_argv(first, 3, "RPUSH", "jq:{a}:result:1-1:chunks", "0");
    int second = next_cmd(first + 1, "RPUSH", NULL);
    assert_argv(second, 10, "RPUSH", "jq:{a}:result:1-1:chunks", "1", "2", "3", "4", "5", "6", "7",
                "8");
    assert_argv(next_cmd(second + 1, "RPUSH", NULL), 8, "RPUSH", "jq:{a}:result:1-1:chunks", "9",
                "a", "b", "c", "d", "e");
}

/* ---- refused and lost ---- */

Test(finish, a_refused_exec_holds_the_outcomes_and_fetches_nothing) {
    jq_admit_learn(&w->admit, 0, JQ_KIND_IO);
    done(0, "1-1", "r1");
    done(0, "1-2", "r2");
    jq_finish_flush(&w->finish);
    cr_assert_eq(w->admit.sent[JQ_KIND_IO], 2, "a read behind the EXEC may count their slots");
    int exec = next_cmd(0, "EXEC", NULL);
    answer_reads();
    fake_rconn_answer(exec, fake_err("EXECABORT Transaction discarded because of: OOM command "
                                     "not allowed when used memory > 'maxmemory'."));
    cr_assert(w->finish.held);
    cr_assert_eq(nfreed, 0, "nothing was written: the outcomes are kept");
    cr_assert_eq(w->admit.sent[JQ_KIND_IO], 0, "not on their way after all");
    cr_assert(jq_finish_holds(&w->finish, 0, "1-1"));
    cr_assert(jq_finish_holds(&w->finish, 0, "1-2"));
    /* No new job while Redis refuses: the reads in flight come back empty
     * and none follows. */
    answer_reads();
    jq_fetch_kick(&w->fetch);
    cr_assert_eq(answer_reads(), 0, "no read while held");
    /* Not again before the backoff (200 ms at first): only asked whether
     * Redis takes writes (a script that does nothing), once. */
    int n = fake_ncmds;
    jq_finish_flush(&w->finish);
    cr_assert_eq(fake_ncmds, n + 1);
    cr_assert(is_eval(n, WRITABLE_LUA));
    fake_rconn_answer(n, fake_err("OOM command not allowed when used memory > 'maxmemory'."));
    jq_finish_flush(&w->finish);
    cr_assert_eq(fake_ncmds, n + 1, "asked at most every 200 ms");
    cr_assert(w->finish.held);
    usleep(250 * 1000);
    jq_finish_flush(&w->finish);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "MULTI"), 2, "the whole batch again");
    int again = next_cmd(exec + 1, "EXEC", NULL);
    assert_argv(fake_rconn_find(NULL, "XACK"), 5, "XACK", "jq:{a}:stream", JQ_GROUP, "1-1", "1-2");
    cr_assert_eq(answer_reads(), 0, "still no read while held");
    fake_rconn_answer(again, ran(next_cmd(exec + 1, "MULTI", NULL), again));
    cr_assert_not(w->finish.held);
    cr_assert_eq(nfreed, 2);
    cr_assert_geq(answer_reads(), 1, "taken: the reads start again");
}

Test(finish, a_lost_exec_reply_is_checked_before_writing_again) {
    done(0, "1-1", "r1");
    done(0, "1-2", "r2");
    jq_finish_flush(&w->finish);
    int exec = next_cmd(0, "EXEC", NULL);
    answer_reads();
    fake_rconn_answer(exec, NULL);
    cr_assert_eq(nfreed, 0);
    cr_assert_not(w->finish.held, "not refused: it may have run");
    cr_assert(jq_finish_holds(&w->finish, 0, "1-1"));
    /* Back: not written again blindly (counted twice, a retry scheduled
     * twice), but asked whether each entry is still pending. */
    int n = fake_ncmds;
    jq_finish_flush(&w->finish);
    cr_assert_eq(fake_rconn_count(NULL, "MULTI"), 1, "no second MULTI yet");
    int check = next_cmd(n, "EVAL", PENDING_LUA);
    assert_argv(check, 6, "EVAL", fake_cmds[check].argv[1], "1", "jq:{a}:stream", "1-1", "1-2");
    /* 1-1 was acked (written with it), 1-2 is still pending. */
    fake_rconn_answer(check, fake_arr(2, fake_int(0), fake_int(1)));
    cr_assert_eq(nfreed, 1);
    cr_assert_not(jq_finish_holds(&w->finish, 0, "1-1"));
    cr_assert(jq_finish_holds(&w->finish, 0, "1-2"));
    n = fake_ncmds;
    jq_finish_flush(&w->finish);
    cr_assert_eq(fake_rconn_count(NULL, "MULTI"), 2);
    assert_argv(fake_rconn_find(NULL, "XACK"), 4, "XACK", "jq:{a}:stream", JQ_GROUP, "1-2");
    assert_counted("processed", "1");
    int again = next_cmd(n, "EXEC", NULL);
    fake_rconn_answer(again, ran(next_cmd(n, "MULTI", NULL), again));
    cr_assert_eq(nfreed, 2);
    cr_assert_eq(w->finish.unacked, 0);
}

Test(finish, a_check_whose_reply_is_lost_too_is_asked_again) {
    done(0, "1-1", "r1");
    jq_finish_flush(&w->finish);
    answer_reads();
    fake_rconn_answer(next_cmd(0, "EXEC", NULL), NULL);
    jq_finish_flush(&w->finish);
    fake_rconn_answer(next_cmd(0, "EVAL", PENDING_LUA), NULL);
    cr_assert_eq(nfreed, 0);
    int n = fake_ncmds;
    jq_finish_flush(&w->finish);
    cr_assert_geq(next_cmd(n, "EVAL", PENDING_LUA), 0, "still unsure: asked again");
    cr_assert_eq(fake_rconn_count(NULL, "MULTI"), 1);
}

Test(finish, a_failed_command_inside_the_exec_does_not_undo_the_outcomes) {
    done(0, "1-1", "r1");
    jq_finish_flush(&w->finish);
    int exec = next_cmd(0, "EXEC", NULL);
    redisReply *reply = ran(0, exec);
    freeReplyObject(reply->element[1]);
    reply->element[1] =
        fake_err("WRONGTYPE Operation against a key holding the wrong kind of value");
    fake_rconn_answer(exec, reply);
    cr_assert_eq(nfreed, 1, "acked with the others: the outcome stands");
    cr_assert_not(w->finish.held);
}

Test(finish, nothing_is_sent_while_the_connection_is_down) {
    done(0, "1-1", "r1");
    w->rwrite.up = 0;
    jq_finish_flush(&w->finish);
    cr_assert_eq(fake_ncmds, 0);
    cr_assert(jq_finish_holds(&w->finish, 0, "1-1"));
    w->rwrite.up = 1;
    jq_finish_flush(&w->finish);
    cr_assert_eq(fake_rconn_count(NULL, "EXEC"), 1);
}

/* Issue 21: a worker held its outcomes up to 5 s after Redis took writes
 * again. Its yes to the writability script sends the batch at once. */
Test(finish, held_outcomes_go_as_soon_as_redis_takes_writes) {
    done(0, "1-1", "r1");
    jq_finish_flush(&w->finish);
    int exec = next_cmd(0, "EXEC", NULL);
    answer_reads();
    fake_rconn_answer(exec, fake_err("EXECABORT Transaction discarded because of: READONLY You "
                                     "can't write against a read only replica."));
    cr_assert(w->finish.held);
    w->finish.hold_ms = 5000; /* deep in the backoff */
    w->finish.hold_next_ms = jq_now_ms() + 5000;
    usleep(210 * 1000);
    int n = fake_ncmds;
    jq_finish_flush(&w->finish);
    cr_assert(is_eval(n, WRITABLE_LUA));
    cr_assert_eq(fake_rconn_count(&w->rwrite, "MULTI"), 1, "not before redis says yes");
    fake_rconn_answer(n, fake_int(1));
    cr_assert_eq(fake_rconn_count(&w->rwrite, "MULTI"), 2, "the batch at once");
    int again = next_cmd(exec + 1, "EXEC", NULL);
    fake_rconn_answer(again, ran(next_cmd(exec + 1, "MULTI", NULL), again));
    cr_assert_not(w->finish.held);
    cr_assert_eq(nfreed, 1);
}

/* ---- unique keys and batches (PROTOCOL §10, §12) ---- */

#define RELEASE_LUA "#!lua\nlocal v = redis.pcall('GET'"
#define BATCH_LUA "#!lua\nlocal b, op"

Test(finish, unique_and_batch_steps_go_only_for_jobs_that_carry_them_and_ended) {
    done(0, "1-1", "plain");
    end(take(0, "1-2", fake_fields(6, "type", "io", "unique", "k", "batch", "b:n")), JQ_OUT_DONE,
        "x");
    /* Retrying: it keeps its key and has not ended for its batch. */
    end(take(0, "1-3",
             fake_fields(8, "type", "io", "unique", "k2", "unique_until", "1799999999999", "batch",
                         "b:n")),
        JQ_OUT_FAILED, "boom");
    /* Dead on its last attempt: its key expires at unique_until. */
    end(take(0, "1-4",
             fake_fields(10, "type", "io", "unique", "k3", "unique_until", "1799999999999",
                         "max_attempts", "1", "batch", "b:n")),
        JQ_OUT_FAILED, "boom");
    jq_finish_flush(&w->finish);
    int multi = next_cmd(0, "MULTI", NULL), exec = next_cmd(0, "EXEC", NULL);
    cr_assert_eq(count_eval(RELEASE_LUA), 2);
    int rel = next_cmd(multi, "EVAL", RELEASE_LUA);
    cr_assert(rel > multi && rel < exec, "released in the outcome's MULTI");
    assert_argv(rel, 6, "EVAL", jq_unique_release_lua, "1", "jq:{a}:unique:k", "1-2", "");
    rel = next_cmd(rel + 1, "EVAL", RELEASE_LUA);
    assert_argv(rel, 6, "EVAL", jq_unique_release_lua, "1", "jq:{a}:unique:k3", "1-4",
                "1799999999999");
    /* The batch steps come before the MULTI, one per job that ended. */
    cr_assert_eq(count_eval(BATCH_LUA), 2);
    int b = next_cmd(0, "EVAL", BATCH_LUA);
    cr_assert_lt(b, multi);
    assert_argv(b, 9, "EVAL", jq_batch_lua, "3", "jq:{b}:batch:n", "jq:{b}:batch:n:ended",
                "jq:{b}:stream", "end", "a/1-2", "done");
    b = next_cmd(b + 1, "EVAL", BATCH_LUA);
    cr_assert_lt(b, multi);
    assert_argv(b, 9, "EVAL", jq_batch_lua, "3", "jq:{b}:batch:n", "jq:{b}:batch:n:ended",
                "jq:{b}:stream", "end", "a/1-4", "dead");
    fake_rconn_answer(exec, ran(multi, exec));
    cr_assert_eq(nfreed, 4);
}

Test(finish, plain_jobs_send_nothing_more) {
    done(0, "1-1", "x");
    done(0, "1-2", "y");
    jq_finish_flush(&w->finish);
    cr_assert_eq(count_eval(RELEASE_LUA), 0);
    cr_assert_eq(count_eval(BATCH_LUA), 0);
    cr_assert(is(0, "MULTI"), "nothing before the MULTI");
}
