/* Refused writes, held, not dropped: finish.c's batch while Redis refuses
 * it (finish.h).
 *
 * An EXEC that Redis refuses as a whole (EXECABORT after an OOM, READONLY
 * after a failover, MISCONF, LOADING...) wrote nothing: its runs go back
 * to the batch, and the worker holds them, fetching and reclaiming nothing
 * new, until Redis takes them, trying again after HOLD_MIN_MS doubling to
 * HOLD_MAX_MS. Their entries stay pending in our name and renewed, so no
 * other worker runs them again and none dies "worker lost" for it. One log
 * line when the episode starts, one when it ends. */

#include "finish.h"
#include "log.h"

#define HOLD_MIN_MS 200
#define HOLD_MAX_MS 5000

void jq_finish_hold(jq_finish_t *fin, const char *why, int nruns) {
    int64_t now = jq_now_ms();
    if (!fin->held) {
        fin->held = 1;
        fin->held_since_ms = now;
        fin->hold_ms = HOLD_MIN_MS;
        jq_warn("redis refuses our writes (%s): holding %d finished jobs, fetching none, "
                "retrying every %d to %d ms",
                why, nruns, HOLD_MIN_MS, HOLD_MAX_MS);
    } else {
        fin->hold_ms = fin->hold_ms * 2 > HOLD_MAX_MS ? HOLD_MAX_MS : fin->hold_ms * 2;
    }
    fin->hold_next_ms = now + fin->hold_ms;
}

/* While held, whether Redis would take a write now is asked every
 * HOLD_MIN_MS with a script that does nothing: its shebang (no flags)
 * makes Redis refuse it up front exactly when it would refuse the held
 * MULTI's writes (OOM, READONLY, MISCONF...). A yes ends the wait at once;
 * the doubling backoff only spaces tries of the whole batch while Redis
 * answers no. Until 2026-12 a worker held its outcomes up to 5 s (3.8 s
 * seen) after Redis took writes again. */
static const char writable_lua[] = "#!lua\nreturn 1\n";

static void on_writable(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    jq_finish_t *fin = priv;
    redisReply *reply = rp;
    fin->asking = 0;
    if (reply && reply->type == REDIS_REPLY_INTEGER && fin->held) {
        fin->hold_next_ms = 0;
        jq_finish_flush(fin);
    }
}

static void ask_writable(jq_finish_t *fin, int64_t now) {
    if (fin->asking || now - fin->asked_ms < HOLD_MIN_MS) return;
    jq_args_t *a = jq_finish_cmd(fin, "EVAL");
    jq_args_str(a, writable_lua);
    jq_args_str(a, "0");
    if (jq_finish_send(fin, on_writable, fin) == 0) {
        fin->asking = 1;
        fin->asked_ms = now;
    }
    fin->bad = 0; /* not inside a MULTI */
}

void jq_finish_unhold(jq_finish_t *fin) {
    if (!fin->held) return;
    fin->held = 0;
    jq_info("redis takes our writes again: held outcomes written after %lld ms",
            (long long)(jq_now_ms() - fin->held_since_ms));
}

int jq_finish_hold_wait(jq_finish_t *fin) {
    int64_t now = jq_now_ms();
    if (now >= fin->hold_next_ms) return 0;
    ask_writable(fin, now);
    return 1;
}
