/* Progress of running jobs: reports kept per run, written a few times a
 * second. See progress.h. */

#include <stdlib.h>
#include <string.h>

#include "progress.h"

void jq_progress_init(jq_progress_t *p, const jq_stage_env_t *env, jq_runlist_t *running) {
    memset(p, 0, sizeof(*p));
    p->env = *env;
    p->running = running;
    pthread_mutex_init(&p->mu, NULL);
    jq_args_init(&p->args);
}

void jq_progress_destroy(jq_progress_t *p) {
    pthread_mutex_destroy(&p->mu);
    jq_args_destroy(&p->args);
}

void jq_progress_report(jq_progress_t *p, jq_run_t *r, double fraction, const char *msg) {
    if (!(fraction >= 0)) fraction = 0; /* NaN too */
    if (fraction > 1) fraction = 1;
    pthread_mutex_lock(&p->mu);
    if (!r->prog) r->prog = calloc(1, sizeof(*r->prog));
    if (r->prog) {
        r->prog->fraction = fraction;
        snprintf(r->prog->msg, sizeof(r->prog->msg), "%s", msg ? msg : "");
        r->prog->dirty = 1;
        __atomic_store_n(&p->pending, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&p->mu);
}

/* One report into the result hash: HSET and its TTL (the job's
 * result_ttl, as the outcome sets it). */
static void write_one(jq_progress_t *p, const jq_run_t *r, double fraction, const char *msg,
                      int64_t started_ms) {
    char key[JQ_KEY_MAX], frac[32];
    int n = jq_key_id(key, sizeof(key), p->env.opt->prefix, p->env.queues[r->q].name, "result",
                      r->job.id);
    if (n < 0) return;
    snprintf(frac, sizeof(frac), "%.4g", fraction);
    jq_args_t *a = &p->args;
    jq_args_reset(a);
    jq_args_str(a, "HSET");
    jq_args_str(a, key);
    jq_args_str(a, "state");
    jq_args_str(a, "running");
    jq_args_str(a, "progress");
    jq_args_str(a, frac);
    jq_args_str(a, "progress_msg");
    jq_args_str(a, msg);
    jq_args_str(a, "worker");
    jq_args_str(a, p->env.worker_id);
    /* When it started, for the watchers' elapsed time (free: same
     * command, and only a job that reports has it). */
    if (started_ms > 0) {
        jq_args_str(a, "started_at");
        jq_args_ll(a, started_ms);
    }
    jq_rconn_args(p->env.conn, a, NULL, NULL);
    jq_args_reset(a);
    jq_args_str(a, "EXPIRE");
    jq_args_str(a, key);
    jq_args_ll(a, r->job.result_ttl);
    jq_rconn_args(p->env.conn, a, NULL, NULL);
    jq_args_reset(a);
}

void jq_progress_flush(jq_progress_t *p, int64_t now) {
    if (!__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) || !p->env.conn->up) return;
    __atomic_store_n(&p->pending, 0, __ATOMIC_RELAXED);
    for (jq_run_t *r = p->running->head; r; r = r->next) {
        if (!r->prog || r->cancel || r->job.result_ttl <= 0) continue;
        double fraction;
        char msg[sizeof(r->prog->msg)];
        pthread_mutex_lock(&p->mu);
        /* A cpu job's start is its pool thread's, written before its
         * report took the mutex. */
        int64_t started = r->started_ms ? r->started_ms : r->item.started_ms;
        int due = r->prog->dirty && now - r->prog->written_ms >= JQ_PROGRESS_EVERY_MS;
        if (due) {
            fraction = r->prog->fraction;
            memcpy(msg, r->prog->msg, sizeof(msg));
            r->prog->dirty = 0;
            r->prog->written_ms = now;
        } else if (r->prog->dirty) {
            __atomic_store_n(&p->pending, 1, __ATOMIC_RELAXED); /* later */
        }
        pthread_mutex_unlock(&p->mu);
        if (due) write_one(p, r, fraction, msg, started);
    }
}
