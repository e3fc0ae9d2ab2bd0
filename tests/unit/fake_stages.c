/* The recording stand-ins of the stage tests. See fake_stages.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_rconn.h"
#include "fake_stages.h"

jq_run_t *started[FAKE_RUNS_MAX], *dead[FAKE_RUNS_MAX];
int nstarted, ndead, nchunked, nfreed;

void jq_attempt_start(jq_worker_t *w, jq_run_t *r) {
    if (nstarted == FAKE_RUNS_MAX) abort();
    started[nstarted++] = r;
}

int jq_chunks_load(jq_chunks_t *c, jq_run_t *r) {
    nchunked++;
    jq_reply_fields_release(r->fields);
    free(r);
    return 0;
}

void jq_worker_maybe_exit(jq_worker_t *w) {}

/* The callbacks the worker gives its stages (worker.h), as worker.c's. */
void jq_worker_start_cb(void *w, jq_run_t *r) { jq_attempt_start(w, r); }
void jq_worker_kick_cb(void *w) { jq_fetch_kick(&((jq_worker_t *)w)->fetch); }
void jq_worker_exit_cb(void *w) {}
/* Cancellation is not these stages' concern: no queue has requests. */
void jq_worker_cancels_cb(void *w, int q, int any) {}
void jq_worker_vetted_cb(void *w, jq_run_t *r) { jq_attempt_start(w, r); }
void jq_worker_stop_cb(void *w, jq_run_t *r) {}
void jq_worker_read_failed_cb(void *w, const char *err) {
    jq_qhealth_read_failed(&((jq_worker_t *)w)->qhealth, err);
}
void jq_worker_key_error_cb(void *w, int q, const char *err) {
    jq_qhealth_key_error(&((jq_worker_t *)w)->qhealth, q, err);
}

static const jq_handler_t io_handler = {.name = "io", .kind = JQ_KIND_IO};
static const jq_handler_t cpu_handler = {.name = "cpu", .kind = JQ_KIND_CPU};

const jq_handler_t *jq_registry_find(const jq_registry_t *r, const char *name, size_t len) {
    if (len == 2 && memcmp(name, "io", 2) == 0) return &io_handler;
    if (len == 3 && memcmp(name, "cpu", 3) == 0) return &cpu_handler;
    return NULL;
}

/* The stages' calls of jq_run_free come here (ld --wrap, see the
 * Makefile): r is forgotten in started[] and dead[], so that the reset
 * does not free it again, and freed by the real run.c. */
void __real_jq_run_free(jq_run_t *r);
void __wrap_jq_run_free(jq_run_t *r) {
    if (!r) return;
    for (int i = 0; i < nstarted; i++)
        if (started[i] == r) started[i] = NULL;
    for (int i = 0; i < ndead; i++)
        if (dead[i] == r) dead[i] = NULL;
    __real_jq_run_free(r);
    nfreed++;
}

void fake_stages_reset(void) {
    for (int i = 0; i < nstarted; i++) __real_jq_run_free(started[i]);
    for (int i = 0; i < ndead; i++) __real_jq_run_free(dead[i]);
    nstarted = ndead = nchunked = nfreed = 0;
}

jq_worker_t *fake_worker_new(jq_options_t *opt) {
    jq_worker_t *w = calloc(1, sizeof(*w));
    if (!w) abort();
    memset(opt, 0, sizeof(*opt));
    snprintf(opt->prefix, sizeof(opt->prefix), "jq");
    opt->visibility_ms = 30000;
    w->opt = opt;
    snprintf(w->id, sizeof(w->id), "host:1");
    w->limits.max_payload = 1 << 20;
    w->limits.timeout_ms = 1000;
    w->nqueues = 2;
    static const char *names[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        w->queues[i].name = names[i];
        snprintf(w->queues[i].stream, sizeof(w->queues[i].stream), "jq:{%s}:stream", names[i]);
    }
    jq_admit_init(&w->admit, 8, 4, 2, NULL);
    jq_runs_init(&w->runs, &w->admit);
    jq_stage_env_t env = jq_worker_env(w);
    jq_fetch_borrow_t borrow = jq_worker_fetch_borrow(w);
    jq_fetch_init(&w->fetch, &env, &borrow);
    jq_qhealth_init(&w->qhealth, &env, &w->fetch);
    jq_reclaim_borrow_t rborrow = jq_worker_reclaim_borrow(w);
    jq_reclaim_init(&w->reclaim, &env, &rborrow);
    if (jq_types_init(&w->types, &env, &w->reg) != 0) abort();
    w->rfetch.up = w->rwrite.up = 1;
    w->rfetch.data = w->rwrite.data = w;
    fake_rconn_reset();
    return w;
}

void fake_worker_free(jq_worker_t *w) {
    /* Stopping and down: the callbacks answered NULL send nothing more. */
    w->stopping = 1;
    w->rfetch.up = w->rwrite.up = 0;
    fake_rconn_reset();
    fake_stages_reset();
    jq_reclaim_destroy(&w->reclaim);
    jq_fetch_destroy(&w->fetch);
    jq_types_destroy(&w->types);
    jq_runs_destroy(&w->runs);
    free(w);
}
