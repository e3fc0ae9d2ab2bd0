/* Tests of consumer/worker/levels.c and its part of fetch.c against a fake
 * connection (fake_rconn.c): a queue's priority levels found by the
 * periodic EXISTS, read high first by the script for the free slots and
 * never more, and the blocking read that covers all three streams once
 * they run dry. */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fake_rconn.h"
#include "fake_stages.h"
#include "worker.h"

static jq_worker_t *w;
static jq_options_t opt;

/* One io queue, a, with 8 io slots; its pause state known. */
static void setup(void) {
    w = fake_worker_new(&opt);
    w->nqueues = 1;
    jq_admit_init(&w->admit, 8, 4, 1, NULL);
    jq_admit_learn(&w->admit, 0, JQ_KIND_IO);
}
static void teardown(void) { fake_worker_free(w); }

TestSuite(levels, .init = setup, .fini = teardown);

/* The level check's EXISTS of queue a, answered with n. */
static void levels_exist(long long n) {
    jq_fetch_check_paused(&w->fetch, 1000, 100);
    int i = fake_rconn_find(&w->rwrite, "EXISTS jq:{a}:stream:high jq:{a}:stream:low");
    cr_assert_geq(i, 0);
    fake_rconn_answer(i, fake_int(n));
}

/* The last script read on the write connection, or -1. */
static int script_read(void) { return fake_rconn_find(&w->rwrite, "EVAL"); }

Test(levels, a_queue_without_levels_is_read_as_before) {
    w->queues[0].levels_unknown = 1;
    jq_fetch_kick(&w->fetch);
    cr_assert_eq(fake_rconn_count(&w->rfetch, "XREADGROUP"), 0, "not read before it is known");
    levels_exist(0);
    cr_assert_eq(w->nqueues, 1);
    int i = fake_rconn_find(&w->rfetch, "XREADGROUP");
    cr_assert_geq(i, 0, "the answer kicks the read");
    cr_assert_str_eq(fake_cmds[i].line, "XREADGROUP GROUP " JQ_GROUP
                                        " host:1 COUNT 8 BLOCK 500 STREAMS jq:{a}:stream >");
    cr_assert_eq(script_read(), -1);
}

Test(levels, levels_are_read_high_first_for_the_free_slots) {
    levels_exist(1);
    cr_assert_eq(w->nqueues, 3, "high and low appended");
    cr_assert_eq(fake_rconn_count(&w->rwrite, "XGROUP CREATE jq:{a}:stream:high workers 0"), 1);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "XGROUP CREATE jq:{a}:stream:low workers 0"), 1);
    int i = script_read();
    cr_assert_geq(i, 0);
    const char *want[] = {
        "EVAL",   NULL,     "3", "jq:{a}:stream:high", "jq:{a}:stream", "jq:{a}:stream:low",
        JQ_GROUP, "host:1", "8"};
    cr_assert_eq(fake_cmds[i].argc, 9);
    for (int k = 0; k < 9; k++)
        if (want[k]) cr_assert_str_eq(fake_cmds[i].argv[k], want[k], "argv[%d]", k);
    cr_assert_eq(fake_rconn_count(&w->rfetch, "XREADGROUP"), 0, "no blocking read beside it");
    /* The script's reply: 2 high, 1 low; the entries are runs of their
     * level's entry (its stream, for the ack), counted in queue a. */
    fake_rconn_answer(
        i, fake_arr(
               2,
               fake_arr(2, fake_str("jq:{a}:stream:high"),
                        fake_arr(2, fake_arr(2, fake_str("1-1"), fake_fields(2, "type", "io")),
                                 fake_arr(2, fake_str("1-2"), fake_fields(2, "type", "io")))),
               fake_arr(2, fake_str("jq:{a}:stream:low"),
                        fake_arr(1, fake_arr(2, fake_str("1-3"), fake_fields(2, "type", "io"))))));
    cr_assert_eq(nstarted, 3);
    cr_assert_eq(started[0]->q, w->queues[0].at[JQ_PRIO_HIGH]);
    cr_assert_str_eq(started[0]->job.id, "1-1");
    cr_assert_eq(started[2]->q, w->queues[0].at[JQ_PRIO_LOW]);
    cr_assert_eq(w->admit.q[0].held, 3, "held by the queue, whatever the level");
    /* Fewer than asked: the levels are dry, and the blocking read covers
     * the three streams with the 5 slots left split three ways. */
    i = fake_rconn_find(&w->rfetch, "XREADGROUP");
    cr_assert_geq(i, 0);
    cr_assert_str_eq(fake_cmds[i].line,
                     "XREADGROUP GROUP " JQ_GROUP " host:1 COUNT 1 BLOCK 500 STREAMS "
                     "jq:{a}:stream:high jq:{a}:stream jq:{a}:stream:low > > >");
    cr_assert_eq(w->admit.reserved[JQ_KIND_IO], 3, "1 per stream: never more than the slots");
    /* Its end hands the queue back to the script. */
    fake_rconn_answer(i, fake_nil());
    cr_assert_eq(fake_rconn_count(&w->rwrite, "EVAL"), 2);
    cr_assert_str_eq(fake_cmds[script_read()].argv[8], "5");
}

Test(levels, an_empty_script_read_leaves_the_queue_to_the_blocking_read) {
    levels_exist(1);
    int i = script_read();
    redisReply *entries = fake_arr(0);
    fake_rconn_answer(i, fake_arr(1, fake_arr(2, fake_str("jq:{a}:stream:high"), entries)));
    /* 0 of 8: dry. */
    cr_assert_eq(fake_rconn_count(&w->rfetch, "XREADGROUP"), 1);
    cr_assert_eq(w->admit.reserved[JQ_KIND_IO], 6, "COUNT 2 on three streams");
}
