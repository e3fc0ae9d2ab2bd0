/* Tests of consumer/worker/sched.c against a fake connection (fake_rconn.c):
 * the scripts it loads, when it promotes and trims, the arguments of each
 * EVALSHA, and what it makes of the answers. Linked as test_reclaim is,
 * with sched.c; the scripts themselves are driven against a real Redis by
 * tests/integration/test_limits.py. */

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "fake_rconn.h"
#include "fake_stages.h"
#include "sched.h"
#include "worker.h"

#define SHA_P "1111111111111111111111111111111111111111"
#define SHA_T "2222222222222222222222222222222222222222"
#define NOW 1700000000000LL

static jq_worker_t *w;
static jq_options_t opt;

static void setup(void) {
    w = fake_worker_new(&opt);
    opt.dead_ttl = 604800;
    opt.dead_max = 10000;
    w->rfetch.up = 0; /* no reads */
    jq_stage_env_t env = jq_worker_env(w);
    jq_sched_init(&w->sched, &env, &w->draining, jq_worker_key_error_cb);
}

static void teardown(void) { fake_worker_free(w); }

TestSuite(sched, .init = setup, .fini = teardown);

/* Loads the two scripts and answers with their SHA1s. */
static void loaded(void) {
    jq_sched_on_connect(&w->sched);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "SCRIPT LOAD"), 2);
    cr_assert_str_eq(fake_cmds[0].argv[2], jq_sched_promote_lua);
    cr_assert_str_eq(fake_cmds[1].argv[2], jq_sched_trim_lua);
    fake_rconn_answer(0, fake_str(SHA_P));
    fake_rconn_answer(1, fake_str(SHA_T));
}

/* The promotion EVALSHA of queue name (its last), or -1. */
static int promotion(const char *q) {
    char p[128];
    snprintf(p, sizeof(p), "EVALSHA %s 5 jq:{%s}:scheduled", SHA_P, q);
    return fake_rconn_find(&w->rwrite, p);
}

/* Ticks at `at`, then expects n commands so far that start with prefix. */
static void tick_expect(int64_t at, const char *prefix, int n) {
    jq_sched_tick(&w->sched, at);
    cr_assert_eq(fake_rconn_count(NULL, prefix), n, "%d x %s by %lld", n, prefix, (long long)at);
}

Test(sched, nothing_is_sent_before_the_scripts_are_loaded) {
    jq_sched_tick(&w->sched, NOW);
    cr_assert_eq(fake_rconn_count(NULL, "SCRIPT LOAD"), 2, "loaded on the first tick");
    cr_assert_eq(fake_rconn_count(NULL, "EVALSHA"), 0);
    jq_sched_tick(&w->sched, NOW + 1000);
    cr_assert_eq(fake_rconn_count(NULL, "SCRIPT LOAD"), 2, "not again while answers are out");
    fake_rconn_answer(0, fake_err("ERR something"));
    fake_rconn_answer(1, fake_str(SHA_T));
    jq_sched_tick(&w->sched, NOW + 2000);
    cr_assert_eq(fake_rconn_count(NULL, "EVALSHA"), 0, "one failed: none runs");
    cr_assert_eq(fake_rconn_count(NULL, "SCRIPT LOAD"), 4, "both asked again");
}

Test(sched, promotes_each_healthy_queue_with_the_limits_of_a_job) {
    loaded();
    w->queues[1].health.state = JQ_QUEUE_BROKEN;
    jq_sched_tick(&w->sched, NOW);
    int i = promotion("a");
    cr_assert_geq(i, 0);
    cr_assert_eq(promotion("b"), -1, "a broken queue is not promoted");
    /* The high and low streams too: a job hash that says `priority high`
     * (a delayed job, a retry of one) goes back to its level. */
    const char *want[] = {"EVALSHA",
                          SHA_P,
                          "5",
                          "jq:{a}:scheduled",
                          "jq:{a}:stream",
                          "jq:{a}:dead",
                          "jq:{a}:stream:high",
                          "jq:{a}:stream:low",
                          NULL,
                          "500",
                          "jq:{a}:",
                          "1000",
                          "host:1"};
    cr_assert_eq(fake_cmds[i].argc, 13);
    for (int k = 0; k < 13; k++)
        if (want[k]) cr_assert_str_eq(fake_cmds[i].argv[k], want[k], "argv[%d]", k);
    /* Every 200 ms, not more often. */
    tick_expect(NOW + 100, "EVALSHA " SHA_P, 1);
    tick_expect(NOW + 200, "EVALSHA " SHA_P, 2);
}

Test(sched, a_full_batch_is_followed_at_once_by_the_next) {
    loaded();
    w->nqueues = 1;
    jq_sched_tick(&w->sched, NOW);
    fake_rconn_answer(promotion("a"), fake_arr(3, fake_int(500), fake_int(0), fake_int(0)));
    cr_assert_eq(fake_rconn_count(NULL, "EVALSHA " SHA_P), 2, "more may be due");
    fake_rconn_answer(promotion("a"), fake_arr(3, fake_int(12), fake_int(1), fake_int(2)));
    cr_assert_eq(fake_rconn_count(NULL, "EVALSHA " SHA_P), 2, "all due moved");
}

Test(sched, a_lost_script_cache_loads_the_scripts_again) {
    loaded();
    w->nqueues = 1;
    jq_sched_tick(&w->sched, NOW);
    fake_rconn_answer(promotion("a"), fake_err("NOSCRIPT No matching script."));
    cr_assert_eq(fake_rconn_count(NULL, "SCRIPT LOAD"), 4);
}

Test(sched, a_wrong_type_makes_the_queue_a_suspect) {
    loaded();
    w->nqueues = 1;
    jq_sched_tick(&w->sched, NOW);
    fake_rconn_answer(promotion("a"), fake_err("WRONGTYPE Operation against a key holding the "
                                               "wrong kind of value"));
    cr_assert_eq(w->queues[0].health.state, JQ_QUEUE_SUSPECT);
    cr_assert_eq(fake_rconn_count(NULL, "XGROUP CREATE jq:{a}:stream"), 1, "probed");
}

Test(sched, a_read_only_redis_is_waited_out_quietly) {
    loaded();
    w->nqueues = 1;
    jq_sched_tick(&w->sched, NOW);
    fake_rconn_answer(promotion("a"),
                      fake_err("READONLY You can't write against a read only replica."));
    cr_assert_eq(w->queues[0].health.state, JQ_QUEUE_OK, "the queue is fine");
    cr_assert_eq(fake_rconn_count(NULL, "EVALSHA " SHA_P), 1, "tried again next tick");
}

Test(sched, trims_the_dead_sets_every_second) {
    loaded();
    jq_sched_tick(&w->sched, NOW);
    char want[256];
    snprintf(want, sizeof(want),
             "EVALSHA %s 2 jq:{a}:dead jq:{a}:scheduled %lld 604800000 10000 1000 jq:{a}:", SHA_T,
             NOW);
    cr_assert_eq(fake_rconn_count(NULL, want), 1);
    cr_assert_eq(fake_rconn_count(NULL, "EVALSHA " SHA_T " 2 jq:{b}:dead"), 1);
    tick_expect(NOW + 500, "EVALSHA " SHA_T, 2);
    tick_expect(NOW + 1000, "EVALSHA " SHA_T, 4);
}

Test(sched, a_draining_worker_moves_nothing) {
    loaded();
    w->draining = 1;
    tick_expect(NOW, "EVALSHA", 0);
}

/* The order that keeps a job (issue 21): in the promotion script each
 * removal comes after the write that lands the job elsewhere. */
Test(sched, the_promotion_script_removes_a_job_only_after_it_has_landed) {
    const char *s = jq_sched_promote_lua;
    const char *xadd = strstr(s, "redis.call('XADD'");
    cr_assert_not_null(xadd);
    cr_assert_not_null(strstr(xadd, "redis.call('DEL', jkey)"), "hash deleted after the XADD");
    cr_assert_not_null(strstr(xadd, "redis.call('ZREM', KEYS[1], id)"), "unscheduled after it");
    const char *zadd = strstr(s, "redis.call('ZADD', KEYS[3]");
    cr_assert_not_null(zadd);
    cr_assert_not_null(strstr(zadd, "redis.call('ZREM', KEYS[1], id)"), "dead before unscheduled");
}
