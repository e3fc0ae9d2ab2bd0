/* consumer/master/supervise.c: the master's decisions, driven with a
 * clock of the test's own and recording callbacks in place of processes,
 * signals and timers. Each callback appends a line to `log_`, so a test
 * reads what the master would have done, in order. */

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "supervise.h"

#define MAXW 64

static jq_supervise_t sv;
static jq_supervised_t pool[MAXW];
static int nextpid;
static int fail_spawns; /* spawns that fail before one works */
static char log_[4096];

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
    char line[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    strncat(log_, line, sizeof(log_) - strlen(log_) - 1);
}

static void spawn(void *data, int slot) {
    if (fail_spawns > 0) {
        fail_spawns--;
        say("spawn-failed %d;", slot);
        jq_supervise_spawn_failed(&sv, slot);
        return;
    }
    cr_assert_lt(nextpid, MAXW);
    jq_supervised_t *w = &pool[nextpid];
    say("spawn %d=%d;", slot, nextpid);
    jq_supervise_started(&sv, w, slot, nextpid++, 0);
}

static void respawn_at(void *data, int slot, int64_t ms) {
    say("respawn %d in %lld;", slot, (long long)ms);
}
static void drain(void *data, jq_supervised_t *w) { say("drain %d;", w->pid); }
static void stop(void *data, jq_supervised_t *w) { say("stop %d;", w->pid); }
static void kill_(void *data, jq_supervised_t *w) { say("kill %d;", w->pid); }
static void ready(void *data) { say("READY;"); }

/* Starts `slots` slots, one worker each (pids 0..slots-1), clears the log. */
static void start(int slots) {
    static const jq_supervise_ops_t ops = {spawn, respawn_at, drain, stop, kill_, ready, NULL};
    memset(pool, 0, sizeof(pool));
    nextpid = 0;
    fail_spawns = 0;
    cr_assert_eq(jq_supervise_init(&sv, slots, &ops), 0);
    for (int i = 0; i < slots; i++) spawn(NULL, i);
    log_[0] = '\0';
}

/* The log since the last call. */
static const char *done(void) {
    static char out[4096];
    snprintf(out, sizeof(out), "%s", log_);
    log_[0] = '\0';
    return out;
}

static void all_ready(void) {
    for (jq_supervised_t *w = sv.workers; w; w = w->next)
        if (!w->ready && !w->draining) jq_supervise_ready(&sv, w);
}

Test(supervise, quick_deaths_back_off_doubling_to_the_cap) {
    start(1);
    all_ready();
    cr_expect_str_eq(done(), "READY;");
    int64_t now = 0;
    const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        jq_supervised_t *w = sv.workers;
        now = w->started_ms + 50; /* a crash 50 ms after its start */
        jq_supervise_exited(&sv, w, 0, now);
        char expect[64];
        snprintf(expect, sizeof(expect), "respawn 0 in %lld;", (long long)want[i]);
        cr_expect_str_eq(done(), expect, "death %zu", i + 1);
        jq_supervise_respawn_due(&sv, 0);
        done();
    }
    cr_expect_eq(sv.crashes, 11);
    /* One that lived JQ_SUPERVISE_STABLE_MS was not crash-looping: at once. */
    jq_supervise_exited(&sv, sv.workers, 0, JQ_SUPERVISE_STABLE_MS);
    cr_expect_str_eq(done(), "respawn 0 in 0;");
    cr_expect_eq(sv.streak[0], 0);
    jq_supervise_respawn_due(&sv, 0);
    /* A clean exit, however quick: at once too. */
    jq_supervise_exited(&sv, sv.workers, 0, 10);
    done();
    jq_supervise_respawn_due(&sv, 0);
    done();
    jq_supervise_exited(&sv, sv.workers, 1, 20);
    cr_expect_str_eq(done(), "respawn 0 in 0;");
    jq_supervise_destroy(&sv);
}

Test(supervise, a_failed_spawn_is_tried_again_in_a_second) {
    start(1);
    fail_spawns = 1;
    jq_supervise_exited(&sv, sv.workers, 1, 100);
    jq_supervise_respawn_due(&sv, 0);
    cr_expect_str_eq(done(), "respawn 0 in 0;spawn-failed 0;respawn 0 in 1000;");
    jq_supervise_respawn_due(&sv, 0);
    cr_expect_str_eq(done(), "spawn 0=1;");
    /* A timer that fires for a slot already served starts nothing. */
    jq_supervise_respawn_due(&sv, 0);
    cr_expect_str_eq(done(), "");
    jq_supervise_destroy(&sv);
}

Test(supervise, a_recycled_worker_drains_on_its_own_behind_its_replacement) {
    start(2);
    all_ready();
    done();
    jq_supervised_t *old = &pool[1];
    jq_supervise_recycle(&sv, old);
    /* No SIGTERM: it drains by itself; its replacement starts at once. */
    cr_expect_str_eq(done(), "spawn 1=2;");
    cr_expect_eq(sv.recycles, 1);
    cr_expect_eq(jq_supervise_serving(&sv), 1, "the slot is down until the new one is ready");
    jq_supervise_recycle(&sv, old); /* said twice: one replacement */
    cr_expect_str_eq(done(), "");
    jq_supervise_ready(&sv, &pool[2]);
    cr_expect_eq(jq_supervise_serving(&sv), 2);
    /* Its exit, with the replacement serving, needs no respawn. */
    jq_supervise_exited(&sv, old, 1, 1000);
    cr_expect_str_eq(done(), "");
    jq_supervise_destroy(&sv);
}

Test(supervise, a_rolling_restart_replaces_one_slot_at_a_time_without_a_gap) {
    start(2);
    all_ready();
    cr_expect_str_eq(done(), "READY;");
    cr_expect_eq(jq_supervise_roll(&sv), 0);
    cr_expect_str_eq(done(), "spawn 0=2;");
    cr_expect_eq(jq_supervise_roll(&sv), 1, "a second SIGHUP while rolling");
    cr_expect_eq(jq_supervise_serving(&sv), 2, "the old worker serves until the new one is ready");
    jq_supervise_ready(&sv, &pool[2]);
    cr_expect_str_eq(done(), "drain 0;spawn 1=3;");
    cr_expect_eq(jq_supervise_serving(&sv), 2);
    /* The old worker's exit while the roll goes on: its slot is served. */
    jq_supervise_exited(&sv, &pool[0], 1, 9000);
    cr_expect_str_eq(done(), "");
    jq_supervise_ready(&sv, &pool[3]);
    cr_expect_str_eq(done(), "drain 1;READY;", "the roll ends, systemd hears READY again");
    cr_expect_eq(sv.roll_next, -1);
    cr_expect_eq(jq_supervise_serving(&sv), 2);
    jq_supervise_destroy(&sv);
}

Test(supervise, a_roll_waits_for_a_slot_still_starting) {
    start(2);
    jq_supervise_ready(&sv, &pool[0]); /* slot 1's worker not ready yet */
    cr_expect_str_eq(done(), "");
    cr_expect_eq(jq_supervise_roll(&sv), 0);
    cr_expect_str_eq(done(), "", "nothing spawned while a worker is still starting");
    jq_supervise_ready(&sv, &pool[1]);
    cr_expect_str_eq(done(), "spawn 0=2;");
    jq_supervise_destroy(&sv);
}

Test(supervise, shutdown_drains_once_then_stops_then_kills) {
    start(3);
    all_ready();
    jq_supervise_recycle(&sv, &pool[2]); /* drains on its own: no SIGTERM for it */
    done();
    cr_expect_eq(jq_supervise_shutdown(&sv), 0);
    cr_expect_str_eq(done(), "drain 3;drain 1;drain 0;");
    cr_expect_eq(jq_supervise_shutdown(&sv), 1);
    cr_expect_str_eq(done(), "");
    cr_expect_eq(jq_supervise_roll(&sv), -1, "no roll while shutting down");
    /* Exits during the shutdown start nothing, whatever the cause. */
    jq_supervise_exited(&sv, &pool[0], 0, 10);
    jq_supervise_respawn_due(&sv, 0);
    cr_expect_str_eq(done(), "");
    cr_expect_not(jq_supervise_done(&sv));
    jq_supervise_stop_all(&sv);
    cr_expect_str_eq(done(), "stop 3;stop 2;stop 1;");
    jq_supervise_kill_all(&sv);
    cr_expect_str_eq(done(), "kill 3;kill 2;kill 1;");
    jq_supervise_exited(&sv, &pool[1], 1, 20);
    jq_supervise_exited(&sv, &pool[2], 1, 20);
    jq_supervise_exited(&sv, &pool[3], 1, 20);
    cr_expect(jq_supervise_done(&sv));
    cr_expect_str_eq(done(), "");
    jq_supervise_destroy(&sv);
}

Test(supervise, healthy_only_with_redis_answering_and_every_slot_serving) {
    char why[128];
    start(2);
    cr_expect_not(jq_supervise_healthy(&sv, 1, 0, 3500, why, sizeof(why)));
    cr_expect_str_eq(why, "2 of 2 workers not serving");
    all_ready();
    cr_expect(jq_supervise_healthy(&sv, 1, 3500, 3500, why, sizeof(why)));
    cr_expect_str_eq(why, "ok: redis up, 2 workers serving");
    cr_expect_not(jq_supervise_healthy(&sv, 1, 3501, 3500, why, sizeof(why)));
    cr_expect_str_eq(why, "redis has not answered for 3501 ms");
    cr_expect_not(jq_supervise_healthy(&sv, 0, 0, 3500, why, sizeof(why)));
    cr_expect_str_eq(why, "redis unreachable");
    jq_supervise_recycle(&sv, &pool[0]);
    cr_expect_not(jq_supervise_healthy(&sv, 1, 0, 3500, why, sizeof(why)));
    cr_expect_str_eq(why, "1 of 2 workers not serving");
    jq_supervise_shutdown(&sv);
    cr_expect_not(jq_supervise_healthy(&sv, 1, 0, 3500, why, sizeof(why)));
    cr_expect_str_eq(why, "shutting down");
    jq_supervise_destroy(&sv);
}
