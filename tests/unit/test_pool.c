/* Tests of consumer/worker/pool.c on a real uv loop and real threads. */

#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "job.h"
#include "pool.h"

#define NITEMS 200

/* One test's shared state; items point at it through data. */
typedef struct fixture {
    uv_loop_t loop;
    jq_pool_t pool;
    pthread_t loop_thread;
    jq_pool_item_t items[NITEMS];
    pthread_t work_thread[NITEMS];
    int work_runs[NITEMS];
    int done_runs[NITEMS];
    int done_order[NITEMS];
    int ndone;
    int nexpect; /* close the pool once this many dones ran */
    int closed;
    int done_after_close; /* dones seen after closed_cb: must stay 0 */
    int done_off_loop;    /* dones seen off the loop thread: must stay 0 */
    int work_on_loop;     /* works seen on the loop thread: must stay 0 */
    sem_t gate;           /* work items of some tests wait on it */
    int use_gate;
    int sleep_us;
    char name[NITEMS][16];
    int sigterm_blocked[NITEMS];
} fixture_t;

static fixture_t F;

static int item_index(jq_pool_item_t *it) { return (int)(it - F.items); }

static void on_work(jq_pool_item_t *it) {
    int i = item_index(it);
    F.work_thread[i] = pthread_self();
    if (pthread_equal(pthread_self(), F.loop_thread)) F.work_on_loop++;
    F.work_runs[i]++;
    pthread_getname_np(pthread_self(), F.name[i], sizeof F.name[i]);
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    F.sigterm_blocked[i] =
        sigismember(&cur, SIGTERM) && sigismember(&cur, SIGINT) && sigismember(&cur, SIGHUP);
    if (F.use_gate) sem_wait(&F.gate);
    if (F.sleep_us) usleep((useconds_t)F.sleep_us);
}

static void on_closed(jq_pool_t *p) {
    cr_assert_eq(p, &F.pool);
    F.closed++;
}

static void on_done(jq_pool_item_t *it) {
    int i = item_index(it);
    if (!pthread_equal(pthread_self(), F.loop_thread)) F.done_off_loop++;
    if (F.closed) F.done_after_close++;
    F.done_runs[i]++;
    F.done_order[F.ndone++] = i;
    if (F.ndone == F.nexpect) jq_pool_close(&F.pool, on_closed);
}

static void setup(void) {
    memset(&F, 0, sizeof F);
    cr_assert_eq(uv_loop_init(&F.loop), 0);
    F.loop_thread = pthread_self();
    sem_init(&F.gate, 0, 0);
    for (int i = 0; i < NITEMS; i++) {
        F.items[i].work = on_work;
        F.items[i].done = on_done;
    }
}

static void start_pool(int n) {
    char err[256] = "";
    cr_assert_eq(jq_pool_init(&F.pool, &F.loop, n, err, sizeof err), 0, "%s", err);
}

/* Runs the loop until the pool closed; then the loop must close cleanly. */
static void finish(void) {
    uv_run(&F.loop, UV_RUN_DEFAULT);
    cr_assert_eq(F.closed, 1);
    cr_assert_eq(uv_loop_close(&F.loop), 0);
    cr_assert_eq(F.done_off_loop, 0);
    cr_assert_eq(F.done_after_close, 0);
    cr_assert_eq(F.work_on_loop, 0);
}

/* Polls fn until it returns true or about two seconds passed. */
static int wait_for(int (*fn)(void)) {
    for (int i = 0; i < 2000; i++) {
        if (fn()) return 1;
        usleep(1000);
    }
    return 0;
}

Test(pool, runs_every_item_once_and_done_on_loop_thread) {
    setup();
    start_pool(4);
    F.sleep_us = 500;
    F.nexpect = NITEMS;
    for (int i = 0; i < NITEMS; i++) jq_pool_submit(&F.pool, &F.items[i]);
    finish();

    int threads_seen = 0;
    pthread_t seen[NITEMS];
    for (int i = 0; i < NITEMS; i++) {
        cr_assert_eq(F.work_runs[i], 1, "item %d work ran %d times", i, F.work_runs[i]);
        cr_assert_eq(F.done_runs[i], 1, "item %d done ran %d times", i, F.done_runs[i]);
        cr_assert_gt(F.items[i].started_ms, 0);
        int known = 0;
        for (int j = 0; j < threads_seen; j++) known |= pthread_equal(seen[j], F.work_thread[i]);
        if (!known) seen[threads_seen++] = F.work_thread[i];
    }
    cr_assert_gt(threads_seen, 1, "all work ran on one thread");
    cr_assert_leq(threads_seen, 4);
}

Test(pool, one_thread_is_fifo) {
    setup();
    start_pool(1);
    F.nexpect = 50;
    for (int i = 0; i < 50; i++) jq_pool_submit(&F.pool, &F.items[i]);
    finish();
    for (int i = 0; i < 50; i++) cr_assert_eq(F.done_order[i], i);
}

Test(pool, threads_are_named_and_block_signals) {
    setup();
    start_pool(2);
    F.nexpect = 20;
    F.sleep_us = 1000;
    for (int i = 0; i < 20; i++) jq_pool_submit(&F.pool, &F.items[i]);
    finish();
    for (int i = 0; i < 20; i++) {
        cr_assert(strcmp(F.name[i], "jq-cpu-0") == 0 || strcmp(F.name[i], "jq-cpu-1") == 0,
                  "thread name %s", F.name[i]);
        cr_assert(F.sigterm_blocked[i], "signals not blocked in pool thread");
    }
    /* The creator's own mask is left as it was. */
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    cr_assert_not(sigismember(&cur, SIGTERM));
}

static int two_busy(void) { return jq_pool_busy(&F.pool) == 2; }

Test(pool, backlog_busy_and_oldest_start) {
    setup();
    int64_t before = jq_now_ms();
    start_pool(2);
    cr_assert_eq(jq_pool_backlog(&F.pool), 0);
    cr_assert_eq(jq_pool_busy(&F.pool), 0);
    cr_assert_eq(jq_pool_oldest_start(&F.pool), 0);

    F.use_gate = 1;
    F.nexpect = 5;
    jq_pool_submit(&F.pool, &F.items[0]);
    /* Item 1 starts visibly later, so the oldest start is item 0's. */
    usleep(30000);
    for (int i = 1; i < 5; i++) jq_pool_submit(&F.pool, &F.items[i]);
    cr_assert(wait_for(two_busy), "busy is %d", jq_pool_busy(&F.pool));
    cr_assert_eq(jq_pool_backlog(&F.pool), 3);

    int64_t oldest = jq_pool_oldest_start(&F.pool);
    cr_assert_eq(oldest, F.items[0].started_ms);
    cr_assert_geq(oldest, before);
    cr_assert_leq(oldest, jq_now_ms());
    cr_assert_gt(F.items[1].started_ms, oldest);
    cr_assert_eq(F.items[2].started_ms, 0, "a queued item has a start time");

    for (int i = 0; i < 5; i++) sem_post(&F.gate);
    finish();
    for (int i = 0; i < 5; i++) cr_assert_eq(F.done_runs[i], 1);
}

Test(pool, counters_return_to_zero) {
    setup();
    start_pool(3);
    F.nexpect = 10;
    for (int i = 0; i < 10; i++) jq_pool_submit(&F.pool, &F.items[i]);
    /* Close from the last done: counters are read before that point. */
    F.nexpect = 11;
    while (F.ndone < 10) uv_run(&F.loop, UV_RUN_ONCE);
    cr_assert_eq(jq_pool_backlog(&F.pool), 0);
    cr_assert_eq(jq_pool_busy(&F.pool), 0);
    cr_assert_eq(jq_pool_oldest_start(&F.pool), 0);
    jq_pool_close(&F.pool, on_closed);
    finish();
}

Test(pool, close_with_idle_threads) {
    setup();
    start_pool(3);
    jq_pool_close(&F.pool, on_closed);
    cr_assert_eq(F.closed, 0, "closed_cb ran inside jq_pool_close");
    finish();
}

static void *release_gate_later(void *arg) {
    (void)arg;
    usleep(50000);
    sem_post(&F.gate);
    return NULL;
}

static int one_busy(void) { return jq_pool_busy(&F.pool) == 1; }

Test(pool, close_finishes_running_and_drops_queued) {
    setup();
    start_pool(1);
    F.use_gate = 1;
    F.nexpect = -1;
    for (int i = 0; i < 4; i++) jq_pool_submit(&F.pool, &F.items[i]);
    cr_assert(wait_for(one_busy));
    pthread_t helper;
    pthread_create(&helper, NULL, release_gate_later, NULL);
    /* Blocks until item 0 finished (the helper opens the gate). */
    jq_pool_close(&F.pool, on_closed);
    pthread_join(helper, NULL);
    cr_assert_eq(F.done_runs[0], 0, "done ran inside jq_pool_close");
    /* Between close and closed_cb a submit is dropped, never run. */
    jq_pool_submit(&F.pool, &F.items[5]);
    finish();
    cr_assert_eq(F.work_runs[0], 1);
    cr_assert_eq(F.done_runs[0], 1);
    for (int i = 1; i < 4; i++) {
        cr_assert_eq(F.work_runs[i], 0, "queued item %d ran", i);
        cr_assert_eq(F.done_runs[i], 0, "queued item %d got done", i);
    }
    cr_assert_eq(F.work_runs[5], 0);
    cr_assert_eq(F.done_runs[5], 0);
}

Test(pool, init_rejects_zero_threads) {
    setup();
    char err[256] = "";
    cr_assert_eq(jq_pool_init(&F.pool, &F.loop, 0, err, sizeof err), -1);
    cr_assert_neq(err[0], '\0');
    cr_assert_eq(uv_loop_close(&F.loop), 0);
}

/* --- the benchmark-only modes (--cpu-mode inline, uv) */

static void restore_mode(void) {
    char err[256];
    cr_assert_eq(jq_pool_set_mode("pool", err, sizeof err), 0);
}

Test(pool, set_mode_rejects_unknown_names) {
    char err[256] = "";
    cr_assert_eq(jq_pool_set_mode("threads", err, sizeof err), -1);
    cr_assert_str_eq(err, "--cpu-mode: 'threads' is not one of pool, inline, uv");
}

/* The names come from one table per option: each is accepted, a name of
 * the other option is not, and the error lists them all. */
Test(pool, set_sched_takes_its_names_and_lists_them_on_error) {
    char err[256] = "";
    const char *names[] = {"idle", "slice", "nice", "normal"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect_eq(jq_pool_set_sched(names[i], err, sizeof err), 0, "%s", names[i]);
    cr_assert_eq(jq_pool_set_sched("pool", err, sizeof err), -1);
    cr_assert_str_eq(err, "--cpu-sched: 'pool' is not one of idle, slice, nice, normal");
    /* A short buffer gets the start of the message, terminated. */
    char small[20];
    memset(small, 'x', sizeof small);
    cr_assert_eq(jq_pool_set_sched("nope", small, sizeof small), -1);
    cr_assert_str_eq(small, "--cpu-sched: 'nope'");
    cr_assert_eq(jq_pool_set_sched("nice", err, sizeof err), 0); /* the default again */
}

static int inline_saw_loop;

static void on_inline_work(jq_pool_item_t *it) {
    int i = item_index(it);
    F.work_runs[i]++;
    if (pthread_equal(pthread_self(), F.loop_thread)) inline_saw_loop++;
}

Test(pool, inline_mode_runs_items_on_the_loop_thread_in_order, .fini = restore_mode) {
    char err[256] = "";
    setup();
    cr_assert_eq(jq_pool_set_mode("inline", err, sizeof err), 0, "%s", err);
    inline_saw_loop = 0;
    start_pool(2);
    F.nexpect = 30;
    for (int i = 0; i < 30; i++) {
        F.items[i].work = on_inline_work;
        jq_pool_submit(&F.pool, &F.items[i]);
    }
    /* Never inside submit: the caller is not re-entered. */
    cr_assert_eq(F.ndone, 0);
    cr_assert_eq(jq_pool_backlog(&F.pool), 30);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    cr_assert_eq(F.closed, 1);
    cr_assert_eq(uv_loop_close(&F.loop), 0);
    cr_assert_eq(inline_saw_loop, 30);
    for (int i = 0; i < 30; i++) {
        cr_assert_eq(F.work_runs[i], 1);
        cr_assert_eq(F.done_order[i], i);
    }
}

Test(pool, uv_mode_runs_items_on_libuv_threads, .fini = restore_mode) {
    char err[256] = "";
    setup();
    cr_assert_eq(jq_pool_set_mode("uv", err, sizeof err), 0, "%s", err);
    start_pool(1);
    F.sleep_us = 200;
    F.nexpect = 40;
    for (int i = 0; i < 40; i++) jq_pool_submit(&F.pool, &F.items[i]);
    finish();
    for (int i = 0; i < 40; i++) {
        cr_assert_eq(F.work_runs[i], 1, "item %d work ran %d times", i, F.work_runs[i]);
        cr_assert_eq(F.done_runs[i], 1);
        cr_assert_gt(F.items[i].started_ms, 0);
        cr_assert(strncmp(F.name[i], "jq-cpu-", 7) != 0, "ran on our own thread %s", F.name[i]);
    }
    cr_assert_eq(jq_pool_busy(&F.pool), 0);
}

Test(pool, uv_mode_counts_backlog_and_busy, .fini = restore_mode) {
    char err[256] = "";
    setup();
    cr_assert_eq(jq_pool_set_mode("uv", err, sizeof err), 0, "%s", err);
    start_pool(1);
    F.use_gate = 1;
    F.nexpect = 2;
    jq_pool_submit(&F.pool, &F.items[0]);
    jq_pool_submit(&F.pool, &F.items[1]);
    cr_assert(wait_for(two_busy), "busy is %d", jq_pool_busy(&F.pool));
    cr_assert_eq(jq_pool_backlog(&F.pool), 0);
    cr_assert_gt(jq_pool_oldest_start(&F.pool), 0);
    sem_post(&F.gate);
    sem_post(&F.gate);
    finish();
}
