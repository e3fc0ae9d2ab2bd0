#ifndef JQ_SUPERVISE_H
#define JQ_SUPERVISE_H

/* The master's decisions about its workers, apart from the processes,
 * pipes and timers that carry them out (master.c): when a slot gets a new
 * worker and after what backoff, which workers drain and when, the rolling
 * restart, the shutdown, and whether the cluster is healthy. Nothing here
 * reads the clock or touches a process: the caller passes the time in, and
 * the decisions come back through the callbacks of jq_supervise_ops_t, in
 * the order they must happen. So tests/unit/test_supervise.c drives it
 * with recording callbacks and a clock of its own.
 *
 * The rules (master.h says what they guarantee):
 *   - each of `slots` slots has one worker serving; one that exits is
 *     replaced at once if it exited cleanly or lived JQ_SUPERVISE_STABLE_MS,
 *     else after a backoff doubling from JQ_SUPERVISE_RESPAWN_MIN_MS per
 *     quick death in a row, up to JQ_SUPERVISE_RESPAWN_MAX_MS; a spawn that
 *     failed is tried again after 1 s;
 *   - a worker asking to be recycled drains, and its replacement starts at
 *     once;
 *   - a rolling restart replaces one slot at a time: the next starts once
 *     every worker not draining has said ready, and the worker replaced
 *     drains only once its replacement is ready (no gap in service);
 *   - a shutdown drains every worker; a second one stops them at once. */

#include <stddef.h>
#include <stdint.h>

#define JQ_SUPERVISE_RESPAWN_MIN_MS 100
#define JQ_SUPERVISE_RESPAWN_MAX_MS 30000
#define JQ_SUPERVISE_RESPAWN_RETRY_MS 1000 /* after a spawn that failed */
#define JQ_SUPERVISE_STABLE_MS 5000        /* a worker that lived this long was not crash-looping */

/* One worker as supervision sees it. The caller embeds it in its own
 * record of the process (data points back at that) and keeps it alive
 * until jq_supervise_exited has unlinked it. */
typedef struct jq_supervised {
    int slot;
    int pid;
    int ready;    /* said "ready" */
    int draining; /* told to drain, or drains on its own */
    int replaced; /* a replacement was spawned for it */
    int64_t started_ms;
    void *data; /* the caller's */
    struct jq_supervised *next;
} jq_supervised_t;

/* What the decisions ask for; each gets ops.data first. */
typedef struct jq_supervise_ops {
    /* Start a worker in slot; then call jq_supervise_started, or
     * jq_supervise_spawn_failed when it could not start. */
    void (*spawn)(void *data, int slot);
    /* Call jq_supervise_respawn_due(slot) after delay_ms (0: on the next
     * turn of the loop, not from inside this call). */
    void (*respawn_at)(void *data, int slot, int64_t delay_ms);
    void (*drain)(void *data, jq_supervised_t *w); /* SIGTERM: finish, then exit */
    void (*stop)(void *data, jq_supervised_t *w);  /* exit now, leaving jobs pending */
    void (*kill)(void *data, jq_supervised_t *w);  /* SIGKILL */
    void (*ready)(void *data);                     /* every slot serves (systemd READY) */
    void *data;
} jq_supervise_ops_t;

typedef struct jq_supervise {
    int slots;
    int *streak;              /* per slot: quick deaths in a row */
    jq_supervised_t *workers; /* running, newest first */
    int shutting_down;
    int roll_next;                       /* next slot of a rolling restart, -1 when none */
    int announced;                       /* ready() called since the last (re)start */
    long long starts, crashes, recycles; /* for /metrics */
    jq_supervise_ops_t ops;
} jq_supervise_t;

/* 0, or -1 out of memory. Released by jq_supervise_destroy (which leaves
 * the workers alone: they are the caller's). */
int jq_supervise_init(jq_supervise_t *s, int slots, const jq_supervise_ops_t *ops);
void jq_supervise_destroy(jq_supervise_t *s);

/* w (filled by the caller: data) started in slot as pid at now_ms. */
void jq_supervise_started(jq_supervise_t *s, jq_supervised_t *w, int slot, int pid, int64_t now_ms);
void jq_supervise_spawn_failed(jq_supervise_t *s, int slot);

/* w exited (clean: status 0, no signal) at now_ms: unlinked, and its slot
 * given a new worker when it has none left serving, after the backoff.
 * w may be freed once this returns. */
void jq_supervise_exited(jq_supervise_t *s, jq_supervised_t *w, int clean, int64_t now_ms);
/* A respawn_at timer fired: a worker starts if the slot still needs one. */
void jq_supervise_respawn_due(jq_supervise_t *s, int slot);

/* w said "ready" / asked to be recycled. */
void jq_supervise_ready(jq_supervise_t *s, jq_supervised_t *w);
void jq_supervise_recycle(jq_supervise_t *s, jq_supervised_t *w);

/* A rolling restart: 1 when one is already under way (nothing done), -1
 * while shutting down (nothing done), else 0 and it starts. */
int jq_supervise_roll(jq_supervise_t *s);

/* A shutdown: every worker drains, no new one starts. Returns 0 the first
 * time, 1 when one was already under way (then nothing is done). */
int jq_supervise_shutdown(jq_supervise_t *s);
/* The second signal: every worker stops at once. */
void jq_supervise_stop_all(jq_supervise_t *s);
/* The shutdown took too long: every worker left is killed. */
void jq_supervise_kill_all(jq_supervise_t *s);
/* 1 once shutting down and every worker has exited. */
int jq_supervise_done(const jq_supervise_t *s);

/* Slots with a worker that said ready and is not draining. */
int jq_supervise_serving(const jq_supervise_t *s);
int jq_supervise_count(const jq_supervise_t *s);

/* /healthz: 1 when Redis answers (up, and its last PING answered no more
 * than stale_ms ago: redis_silent_ms) and every slot serves; else 0. why
 * gets the sentence either way. */
int jq_supervise_healthy(const jq_supervise_t *s, int redis_up, int64_t redis_silent_ms,
                         int64_t stale_ms, char *why, size_t len);

#endif
