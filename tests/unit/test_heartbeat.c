/* Tests of consumer/worker/heartbeat.c against a fake connection
 * (fake_rconn.c): the commands of one heartbeat, in their order (PROTOCOL
 * §7), the worker's counters as its stats callback gives them, and the
 * recycling over --max-rss-mb. Linked as test_sched is, with heartbeat.c
 * and the real types.c. */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_rconn.h"
#include "fake_stages.h"
#include "heartbeat.h"
#include "worker.h"

static jq_worker_t *w;
static jq_options_t opt;
static jq_heartbeat_stats_t stats;
static int nstats, nrecycled;
static const char *recycle_msg, *recycle_why;

static void stats_cb(void *wp, jq_heartbeat_stats_t *st) {
    cr_assert_eq(wp, w);
    *st = stats;
    nstats++;
}

static void recycle_cb(void *wp, const char *msg, const char *why) {
    cr_assert_eq(wp, w);
    recycle_msg = msg;
    recycle_why = why;
    nrecycled++;
}

static void setup(void) {
    w = fake_worker_new(&opt);
    opt.heartbeat_ms = 1000;
    opt.threads = 4;
    snprintf(opt.queues_csv, sizeof(opt.queues_csv), "a,b");
    snprintf(w->host, sizeof(w->host), "box");
    w->started_ms = 1700000000000LL;
    w->rfetch.up = 0;
    jq_stage_env_t env = jq_worker_env(w);
    jq_heartbeat_borrow_t b = jq_worker_heartbeat_borrow(w);
    b.stats = stats_cb;
    b.recycle = recycle_cb;
    jq_heartbeat_init(&w->beat, &env, &b);
    stats = (jq_heartbeat_stats_t){.processed = 7,
                                   .failed = 2,
                                   .jobs_done = 9,
                                   .busy_io = 3,
                                   .busy_cpu = 1,
                                   .cpu_backlog = 5,
                                   .loop_lag_us = 1500};
    nstats = nrecycled = 0;
    recycle_msg = recycle_why = NULL;
}

static void teardown(void) { fake_worker_free(w); }

TestSuite(heartbeat, .init = setup, .fini = teardown);

/* The value of field name in HSET command i, or NULL. */
static const char *field(int i, const char *name) {
    for (int k = 2; k + 1 < fake_cmds[i].argc; k += 2)
        if (strcmp(fake_cmds[i].argv[k], name) == 0) return fake_cmds[i].argv[k + 1];
    return NULL;
}

Test(heartbeat, the_hash_its_expiry_the_workers_set_the_queues_then_the_types) {
    jq_heartbeat_send(&w->beat);
    cr_assert_eq(nstats, 1);
    cr_assert(strncmp(fake_cmds[0].line, "HSET jq:worker:host:1 host box pid ", 35) == 0, "%s",
              fake_cmds[0].line);
    static const char *names[] = {"host",      "pid",     "queues",   "started_at",  "processed",
                                  "failed",    "busy_io", "busy_cpu", "threads",     "cpu_backlog",
                                  "rss_bytes", "cpu_ms",  "open_fds", "loop_lag_us", "master_pid",
                                  "draining",  "types"};
    int n = (int)(sizeof(names) / sizeof(names[0]));
    cr_assert_eq(fake_cmds[0].argc, 2 + 2 * n);
    for (int k = 0; k < n; k++) cr_assert_str_eq(fake_cmds[0].argv[2 + 2 * k], names[k]);
    cr_assert_str_eq(field(0, "queues"), "a,b");
    cr_assert_str_eq(field(0, "started_at"), "1700000000000");
    cr_assert_str_eq(field(0, "processed"), "7");
    cr_assert_str_eq(field(0, "failed"), "2");
    cr_assert_str_eq(field(0, "busy_io"), "3");
    cr_assert_str_eq(field(0, "busy_cpu"), "1");
    cr_assert_str_eq(field(0, "threads"), "4");
    cr_assert_str_eq(field(0, "cpu_backlog"), "5");
    cr_assert_str_eq(field(0, "loop_lag_us"), "1500");
    cr_assert_str_eq(field(0, "draining"), "0");
    cr_assert_str_eq(fake_cmds[1].line, "PEXPIRE jq:worker:host:1 3000");
    cr_assert(strncmp(fake_cmds[2].line, "ZADD jq:workers ", 16) == 0);
    cr_assert_str_eq(fake_cmds[2].argv[3], "host:1");
    cr_assert(strncmp(fake_cmds[3].line, "ZREMRANGEBYSCORE jq:workers -inf ", 33) == 0);
    long long now = atoll(fake_cmds[2].argv[2]);
    cr_assert_eq(atoll(fake_cmds[3].argv[3]), now - 3000);
    cr_assert_str_eq(fake_cmds[4].line, "SADD jq:queues a");
    cr_assert_str_eq(fake_cmds[5].line, "SADD jq:queues b");
    /* Then the types (types.c): no handler here, so the stale ones go and
     * the set is read back. */
    cr_assert(strncmp(fake_cmds[6].line, "ZREMRANGEBYSCORE jq:{a}:types -inf ", 35) == 0, "%s",
              fake_cmds[6].line);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "ZRANGEBYSCORE jq:{"), 2);
    cr_assert_eq(nrecycled, 0);
}

Test(heartbeat, nothing_while_the_connection_is_down_or_the_worker_stops) {
    w->rwrite.up = 0;
    jq_heartbeat_send(&w->beat);
    w->rwrite.up = 1;
    w->stopping = 1;
    jq_heartbeat_send(&w->beat);
    w->stopping = 0;
    cr_assert_eq(fake_ncmds, 0);
    cr_assert_eq(nstats, 0);
}

Test(heartbeat, over_max_rss_a_worker_that_ran_jobs_is_recycled_an_idle_one_is_not) {
    opt.max_rss_mb = 1; /* any process is over it */
    stats.jobs_done = 0;
    jq_heartbeat_send(&w->beat);
    cr_assert_eq(nrecycled, 0, "idle: recycling would fork replacements in a loop");
    w->draining = 1;
    stats.jobs_done = 1;
    jq_heartbeat_send(&w->beat);
    cr_assert_eq(nrecycled, 0, "draining already");
    cr_assert_str_eq(field(fake_rconn_find(&w->rwrite, "HSET"), "draining"), "1");
    w->draining = 0;
    jq_heartbeat_send(&w->beat);
    cr_assert_eq(nrecycled, 1);
    cr_assert_str_eq(recycle_msg, "recycle max-rss");
    cr_assert_str_eq(recycle_why, "RSS over --max-rss-mb");
    opt.max_rss_mb = 0;
    jq_heartbeat_send(&w->beat);
    cr_assert_eq(nrecycled, 1, "0: never");
}
