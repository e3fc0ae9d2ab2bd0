/* The master's decisions about its workers: see supervise.h. */

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "supervise.h"

int jq_supervise_init(jq_supervise_t *s, int slots, const jq_supervise_ops_t *ops) {
    s->slots = slots;
    s->streak = calloc((size_t)(slots > 0 ? slots : 1), sizeof(int));
    s->workers = NULL;
    s->shutting_down = s->announced = 0;
    s->roll_next = -1;
    s->starts = s->crashes = s->recycles = 0;
    s->ops = *ops;
    return s->streak ? 0 : -1;
}

void jq_supervise_destroy(jq_supervise_t *s) {
    free(s->streak);
    s->streak = NULL;
}

/* Workers serving the slot for good: neither draining nor waiting for
 * their replacement to be ready. None means the slot needs a new worker. */
static int serving_in_slot(const jq_supervise_t *s, int slot) {
    int n = 0;
    for (const jq_supervised_t *w = s->workers; w; w = w->next)
        if (w->slot == slot && !w->draining && !w->replaced) n++;
    return n;
}

static int slot_ready(const jq_supervise_t *s, int slot) {
    for (const jq_supervised_t *w = s->workers; w; w = w->next)
        if (w->slot == slot && w->ready && !w->draining) return 1;
    return 0;
}

int jq_supervise_serving(const jq_supervise_t *s) {
    int n = 0;
    for (int slot = 0; slot < s->slots; slot++) n += slot_ready(s, slot);
    return n;
}

int jq_supervise_count(const jq_supervise_t *s) {
    int n = 0;
    for (const jq_supervised_t *w = s->workers; w; w = w->next) n++;
    return n;
}

static void drain(jq_supervise_t *s, jq_supervised_t *w) {
    if (w->draining) return;
    w->draining = 1;
    s->ops.drain(s->ops.data, w);
}

void jq_supervise_started(jq_supervise_t *s, jq_supervised_t *w, int slot, int pid,
                          int64_t now_ms) {
    w->slot = slot;
    w->pid = pid;
    w->ready = w->draining = w->replaced = 0;
    w->started_ms = now_ms;
    w->next = s->workers;
    s->workers = w;
    s->starts++;
}

void jq_supervise_spawn_failed(jq_supervise_t *s, int slot) {
    s->streak[slot]++;
    s->ops.respawn_at(s->ops.data, slot, JQ_SUPERVISE_RESPAWN_RETRY_MS);
}

/* The wait before a slot's next worker: none after a clean exit or a
 * worker that lived, doubling per quick death in a row. */
static int64_t backoff(jq_supervise_t *s, int slot, int clean, int64_t lived) {
    if (clean || lived >= JQ_SUPERVISE_STABLE_MS)
        s->streak[slot] = 0;
    else
        s->streak[slot]++;
    if (s->streak[slot] == 0) return 0;
    int64_t delay = (int64_t)JQ_SUPERVISE_RESPAWN_MIN_MS
                    << (s->streak[slot] > 12 ? 12 : s->streak[slot] - 1);
    return delay > JQ_SUPERVISE_RESPAWN_MAX_MS ? JQ_SUPERVISE_RESPAWN_MAX_MS : delay;
}

void jq_supervise_exited(jq_supervise_t *s, jq_supervised_t *w, int clean, int64_t now_ms) {
    for (jq_supervised_t **pp = &s->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    if (!clean) s->crashes++;
    if (s->shutting_down) return;
    /* Its replacement runs (or it was one, and the worker it replaces
     * still serves: then a new replacement is due, with the backoff). */
    int slot = w->slot;
    if (serving_in_slot(s, slot) > 0) return;
    int64_t delay = backoff(s, slot, clean, now_ms - w->started_ms);
    if (delay > 0)
        jq_warn("slot %d: worker died %d times in a row; respawning in %lld ms", slot,
                s->streak[slot], (long long)delay);
    s->ops.respawn_at(s->ops.data, slot, delay);
}

void jq_supervise_respawn_due(jq_supervise_t *s, int slot) {
    if (!s->shutting_down && serving_in_slot(s, slot) == 0) s->ops.spawn(s->ops.data, slot);
}

/* The next slot of a rolling restart, once every worker not draining is
 * serving (the previous slot's replacement included). */
static void roll_step(jq_supervise_t *s) {
    for (jq_supervised_t *w = s->workers; w; w = w->next)
        if (!w->ready && !w->draining) return;
    if (s->roll_next >= s->slots) {
        s->roll_next = -1;
        jq_info("rolling restart done");
        return;
    }
    int slot = s->roll_next++;
    for (jq_supervised_t *w = s->workers; w; w = w->next)
        if (w->slot == slot && !w->draining) w->replaced = 1;
    s->ops.spawn(s->ops.data, slot);
}

/* Once every slot has a worker serving, and no rolling restart is under
 * way: at start, and again after each rolling restart. */
static void announce_if_ready(jq_supervise_t *s) {
    if (s->announced || s->shutting_down || s->roll_next >= 0) return;
    for (int slot = 0; slot < s->slots; slot++)
        if (!slot_ready(s, slot)) return;
    s->announced = 1;
    s->ops.ready(s->ops.data);
}

void jq_supervise_ready(jq_supervise_t *s, jq_supervised_t *w) {
    w->ready = 1;
    /* A replacement is serving: now the workers it replaces may go. */
    for (jq_supervised_t *o = s->workers; o; o = o->next)
        if (o != w && o->slot == w->slot && o->replaced) drain(s, o);
    if (s->roll_next >= 0) roll_step(s);
    announce_if_ready(s);
}

void jq_supervise_recycle(jq_supervise_t *s, jq_supervised_t *w) {
    s->recycles++;
    w->draining = 1; /* it drains on its own: no signal */
    if (!w->replaced && !s->shutting_down) {
        w->replaced = 1;
        s->ops.spawn(s->ops.data, w->slot);
    }
}

int jq_supervise_roll(jq_supervise_t *s) {
    if (s->shutting_down) return -1;
    if (s->roll_next >= 0) return 1;
    s->roll_next = 0;
    s->announced = 0;
    roll_step(s);
    return 0;
}

int jq_supervise_shutdown(jq_supervise_t *s) {
    if (s->shutting_down) return 1;
    s->shutting_down = 1;
    s->roll_next = -1; /* a rolling restart spawns no more */
    /* Workers already draining (recycled, or rolled) were told, or drain
     * on their own: one more SIGTERM would be their second, the one that
     * stops them at once. */
    for (jq_supervised_t *w = s->workers; w; w = w->next) drain(s, w);
    return 0;
}

void jq_supervise_stop_all(jq_supervise_t *s) {
    for (jq_supervised_t *w = s->workers; w; w = w->next) s->ops.stop(s->ops.data, w);
}

void jq_supervise_kill_all(jq_supervise_t *s) {
    for (jq_supervised_t *w = s->workers; w; w = w->next) {
        jq_warn("worker %d did not stop in time; killing it", w->pid);
        s->ops.kill(s->ops.data, w);
    }
}

int jq_supervise_done(const jq_supervise_t *s) { return s->shutting_down && !s->workers; }

int jq_supervise_healthy(const jq_supervise_t *s, int redis_up, int64_t redis_silent_ms,
                         int64_t stale_ms, char *why, size_t len) {
    if (s->shutting_down) return snprintf(why, len, "shutting down"), 0;
    if (!redis_up) return snprintf(why, len, "redis unreachable"), 0;
    if (redis_silent_ms > stale_ms)
        return snprintf(why, len, "redis has not answered for %lld ms", (long long)redis_silent_ms),
               0;
    int missing = s->slots - jq_supervise_serving(s);
    if (missing) return snprintf(why, len, "%d of %d workers not serving", missing, s->slots), 0;
    return snprintf(why, len, "ok: redis up, %d workers serving", s->slots), 1;
}
