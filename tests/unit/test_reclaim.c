/* Tests of consumer/worker/reclaim.c against a fake connection (fake_rconn.c):
 * the XPENDING and XCLAIM it sends, what it makes of their replies, the
 * renewal's ids, and the pause after a reconnect. Linked with the real
 * fetch.c (intake), admit.c, qhealth.c and common/; the other stages are
 * the recording stubs of fake_stages.c. */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_rconn.h"
#include "fake_stages.h"
#include "worker.h"

#define VIS 30000

static jq_worker_t *w;
static jq_options_t opt;
static jq_run_t held[3]; /* runs the worker holds, for renewals (lists of one) */

static void setup(void) {
    memset(held, 0, sizeof(held));
    w = fake_worker_new(&opt);
    opt.visibility_ms = VIS;
    w->rfetch.up = 0; /* no reads */
}

static void teardown(void) { fake_worker_free(w); }

TestSuite(reclaim, .init = setup, .fini = teardown);

/* An XPENDING row [id, consumer, idle, deliveries]. */
static redisReply *pending(const char *id, long long deliveries) {
    return fake_arr(4, fake_str(id), fake_str("gone:9"), fake_int(VIS + 1), fake_int(deliveries));
}

static redisReply *entry(const char *id, const char *type, const char *max_attempts) {
    return fake_arr(2, fake_str(id),
                    fake_arr(4, fake_str("type"), fake_str(type), fake_str("max_attempts"),
                             fake_str(max_attempts)));
}

Test(reclaim, asks_each_queue_for_entries_idle_past_the_visibility_timeout) {
    w->queues[1].paused = 1;
    jq_reclaim_tick(&w->reclaim, 1000000);
    cr_assert_eq(fake_rconn_count(NULL, "XPENDING"), 1, "a paused queue is not reclaimed");
    int i = fake_rconn_find(&w->rwrite, "XPENDING");
    char want[256];
    snprintf(want, sizeof(want), "XPENDING jq:{a}:stream %s IDLE %d - + %lld", JQ_GROUP, VIS,
             jq_admit_free(&w->admit, 0));
    cr_assert_str_eq(fake_cmds[i].line, want);
    cr_assert(jq_reclaim_busy(&w->reclaim));
    jq_reclaim_tick(&w->reclaim, 1000000 + 1000);
    cr_assert_eq(fake_rconn_count(NULL, "XPENDING"), 1, "not while one is in flight");
    fake_rconn_answer(i, fake_arr(0));
    cr_assert_not(jq_reclaim_busy(&w->reclaim));
    cr_assert_eq(fake_rconn_count(NULL, "XCLAIM"), 0, "nothing idle: nothing claimed");
}

Test(reclaim, a_full_worker_takes_only_what_the_master_handed_back) {
    w->nqueues = 1;
    jq_admit_init(&w->admit, 2, 1, 1, NULL);
    jq_admit_hold(&w->admit, 0, JQ_KIND_IO, 2);
    jq_admit_hold(&w->admit, 0, JQ_KIND_CPU, 1);
    jq_reclaim_tick(&w->reclaim, 1000000);
    int i = fake_rconn_find(&w->rwrite, "XPENDING");
    char want[256];
    snprintf(want, sizeof(want), "XPENDING jq:{a}:stream %s IDLE %d - + 3", JQ_GROUP, VIS * 100);
    cr_assert_str_eq(fake_cmds[i].line, want);
}

Test(reclaim, claims_the_idle_entries_and_runs_them_counting_this_delivery) {
    w->nqueues = 1;
    jq_reclaim_tick(&w->reclaim, 1000000);
    int i = fake_rconn_find(&w->rwrite, "XPENDING");
    /* A row of the wrong shape is skipped. */
    fake_rconn_answer(i, fake_arr(4, pending("1-1", 1), fake_arr(2, fake_str("1-9"), fake_int(1)),
                                  pending("1-2", 2), pending("1-3", 1)));
    int c = fake_rconn_find(&w->rwrite, "XCLAIM");
    cr_assert_geq(c, 0);
    char want[256];
    snprintf(want, sizeof(want), "XCLAIM jq:{a}:stream %s host:1 %d 1-1 1-2 1-3", JQ_GROUP, VIS);
    cr_assert_str_eq(fake_cmds[c].line, want);
    cr_assert(jq_reclaim_busy(&w->reclaim));
    /* 1-1 runs (delivery 2 of 3); 1-2 was delivered twice and this is its
     * third delivery of 2 attempts: a poison job, dead as "worker lost";
     * 1-3 was deleted meanwhile (nil fields): skipped. */
    fake_rconn_answer(c, fake_arr(3, entry("1-1", "io", "3"), entry("1-2", "io", "2"),
                                  fake_arr(2, fake_str("1-3"), fake_nil())));
    cr_assert_not(jq_reclaim_busy(&w->reclaim));
    cr_assert_eq(nstarted, 1);
    cr_assert_str_eq(started[0]->job.entry_id, "1-1");
    cr_assert_eq(ndead, 1);
    cr_assert_str_eq(dead[0]->job.entry_id, "1-2");
    cr_assert_str_eq(dead[0]->error, "worker lost");
}

Test(reclaim, claims_at_most_1024_ids_at_once) {
    w->nqueues = 1;
    jq_reclaim_tick(&w->reclaim, 1000000);
    redisReply *rows = fake_arr(0);
    rows->elements = 1100;
    free(rows->element);
    rows->element = calloc(rows->elements, sizeof(redisReply *));
    for (size_t k = 0; k < rows->elements; k++) {
        char id[32];
        snprintf(id, sizeof(id), "1-%zu", k);
        rows->element[k] = pending(id, 1);
    }
    fake_rconn_answer(fake_rconn_find(&w->rwrite, "XPENDING"), rows);
    int c = fake_rconn_find(&w->rwrite, "XCLAIM");
    cr_assert_eq(fake_cmds[c].argc, 5 + 1024);
    cr_assert_str_eq(fake_cmds[c].argv[5], "1-0");
    cr_assert_str_eq(fake_cmds[c].argv[5 + 1023], "1-1023");
}

Test(reclaim, renewal_names_what_the_worker_holds_and_nothing_else) {
    const char *ids[] = {"5-1", "5-2", "5-3"};
    for (int k = 0; k < 3; k++) {
        held[k].q = k == 1 ? 1 : 0;
        snprintf(held[k].job.entry_id, sizeof(held[k].job.entry_id), "%s", ids[k]);
    }
    w->running.head = &held[0];
    w->waiting.head = &held[1];
    w->finish.batch_head = &held[2]; /* its outcome not written yet */
    w->queues[1].health.state = JQ_QUEUE_BROKEN;
    w->draining = 1; /* renewals only */
    jq_reclaim_tick(&w->reclaim, 1000000);
    cr_assert_eq(fake_rconn_count(NULL, "XPENDING"), 0);
    cr_assert_eq(fake_rconn_count(NULL, "EVAL"), 1, "queue b is broken: not renewed");
    int e = fake_rconn_find(&w->rwrite, "EVAL");
    cr_assert_eq(fake_cmds[e].argc, 8);
    cr_assert_str_eq(fake_cmds[e].argv[3], "jq:{a}:stream");
    cr_assert_str_eq(fake_cmds[e].argv[5], "host:1");
    cr_assert_str_eq(fake_cmds[e].argv[6], "5-1");
    cr_assert_str_eq(fake_cmds[e].argv[7], "5-3");
    jq_reclaim_tick(&w->reclaim, 1000000 + VIS / 3 - 1);
    cr_assert_eq(fake_rconn_count(NULL, "EVAL"), 1, "every visibility/3");
    jq_reclaim_tick(&w->reclaim, 1000000 + VIS / 3);
    cr_assert_eq(fake_rconn_count(NULL, "EVAL"), 2);
}

Test(reclaim, after_a_reconnect_it_renews_at_once_and_reclaims_later) {
    held[0].q = 0;
    snprintf(held[0].job.entry_id, sizeof(held[0].job.entry_id), "5-1");
    w->running.head = &held[0];
    jq_reclaim_tick(&w->reclaim, 1000000);
    fake_rconn_answer(fake_rconn_find(&w->rwrite, "XPENDING jq:{a}"), fake_arr(0));
    fake_rconn_answer(fake_rconn_find(&w->rwrite, "XPENDING jq:{b}"), fake_arr(0));
    fake_rconn_reset();
    jq_reclaim_reconnected(&w->reclaim, 1000100, 2500);
    cr_assert_eq(fake_rconn_count(NULL, "EVAL"), 1, "renewed at once");
    cr_assert_eq(fake_rconn_count(NULL, "XPENDING"), 0);
    jq_reclaim_now(&w->reclaim, 1000100 + 2000);
    jq_reclaim_tick(&w->reclaim, 1000100 + 2000);
    cr_assert_eq(fake_rconn_count(NULL, "XPENDING"), 0, "paused, even for the master");
    jq_reclaim_now(&w->reclaim, 1000100 + 2500);
    cr_assert_eq(fake_rconn_count(NULL, "XPENDING"), 2);
}

/* ---- after an outage ---- */

Test(reclaim, after_an_outage_our_own_lost_deliveries_are_claimed_back) {
    held[0].q = 0;
    snprintf(held[0].job.entry_id, sizeof(held[0].job.entry_id), "7-1");
    held[1].q = 0;
    snprintf(held[1].job.entry_id, sizeof(held[1].job.entry_id), "7-2");
    w->running.head = &held[0];
    w->finish.batch_head = &held[1];
    jq_reclaim_own(&w->reclaim);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "XPENDING"), 2);
    cr_assert(jq_reclaim_busy(&w->reclaim), "a drain waits for it");
    int p = fake_rconn_find(&w->rwrite, "XPENDING jq:{a}");
    char want[256];
    snprintf(want, sizeof(want), "XPENDING jq:{a}:stream %s IDLE 100 - + 1024 host:1", JQ_GROUP);
    cr_assert_str_eq(fake_cmds[p].line, want);
    /* 7-1 runs here, 7-2's outcome is being written: only 7-3 was lost. */
    fake_rconn_answer(p, fake_arr(3, pending("7-1", 1), pending("7-2", 1), pending("7-3", 2)));
    fake_rconn_answer(fake_rconn_find(&w->rwrite, "XPENDING jq:{b}"), fake_arr(0));
    cr_assert_eq(fake_rconn_count(NULL, "XCLAIM"), 1);
    int c = fake_rconn_find(&w->rwrite, "XCLAIM");
    snprintf(want, sizeof(want), "XCLAIM jq:{a}:stream %s host:1 100 7-3 RETRYCOUNT 2", JQ_GROUP);
    cr_assert_str_eq(fake_cmds[c].line, want, "its lost delivery is not counted");
    cr_assert(jq_reclaim_busy(&w->reclaim));
    /* Two deliveries of two attempts: it runs (the lost one never did). */
    fake_rconn_answer(c, fake_arr(1, entry("7-3", "io", "2")));
    cr_assert_not(jq_reclaim_busy(&w->reclaim));
    cr_assert_eq(nstarted, 1);
    cr_assert_str_eq(started[0]->job.entry_id, "7-3");
    cr_assert_eq(ndead, 0);
}

/* An XPENDING row of an entry handed back for its type (types.h). */
static redisReply *handed(const char *id, const char *type) {
    char owner[64];
    snprintf(owner, sizeof(owner), JQ_TYPES_CONSUMER "%s", type);
    return fake_arr(4, fake_str(id), fake_str(owner), fake_int(VIS * 200), fake_int(0));
}

Test(reclaim, takes_an_entry_handed_back_for_its_type_only_if_it_handles_it_or_the_grace_is_over) {
    w->nqueues = 1;
    opt.heartbeat_ms = 1000;
    int64_t now = jq_now_ms();
    char young[32], old[32];
    snprintf(young, sizeof(young), "%lld-0", (long long)now - 100);
    snprintf(old, sizeof(old), "%lld-0", (long long)now - 5000);
    jq_reclaim_tick(&w->reclaim, now);
    int i = fake_rconn_find(&w->rwrite, "XPENDING");
    char want[256];
    snprintf(want, sizeof(want), "XPENDING jq:{a}:stream %s IDLE %d - + %lld", JQ_GROUP, VIS,
             jq_admit_free(&w->admit, 0));
    cr_assert_str_eq(fake_cmds[i].line, want);
    /* The types not read yet: only what it handles ("io") and what is
     * no type's. */
    w->types.loaded[0] = 1;
    fake_rconn_answer(i, fake_arr(4, handed("1-1", "io"), handed(young, "other"),
                                  handed(old, "other"), pending("1-4", 1)));
    int c = fake_rconn_find(&w->rwrite, "XCLAIM");
    cr_assert_geq(c, 0);
    char line[256];
    /* "other": nobody handles it, so the old one is taken (to be
     * dead-lettered), the young one waits for the grace. */
    snprintf(line, sizeof(line), "XCLAIM jq:{a}:stream %s host:1 %d 1-1 %s 1-4", JQ_GROUP, VIS,
             old);
    cr_assert_str_eq(fake_cmds[c].line, line);
}

Test(reclaim, leaves_an_entry_handed_back_for_a_type_a_live_worker_handles) {
    w->nqueues = 1;
    opt.heartbeat_ms = 1000;
    int64_t now = jq_now_ms();
    jq_reclaim_tick(&w->reclaim, now);
    int i = fake_rconn_find(&w->rwrite, "XPENDING");
    /* The set read back: "other" heartbeat just now. */
    w->types.loaded[0] = 1;
    w->types.known[0] = calloc(1, sizeof(jq_types_known_t));
    w->types.nknown[0] = 1;
    snprintf(w->types.known[0][0].name, sizeof(w->types.known[0][0].name), "other");
    w->types.known[0][0].seen_ms = now;
    fake_rconn_answer(i, fake_arr(2, handed("1-1", "other"), handed("1-2", "io")));
    int c = fake_rconn_find(&w->rwrite, "XCLAIM");
    cr_assert_geq(c, 0);
    char line[256];
    snprintf(line, sizeof(line), "XCLAIM jq:{a}:stream %s host:1 %d 1-2", JQ_GROUP, VIS);
    cr_assert_str_eq(fake_cmds[c].line, line);
}
