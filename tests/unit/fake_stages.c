/* The recording stand-ins of the stage tests. See fake_stages.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_rconn.h"
#include "fake_stages.h"

jq_run_t *started[FAKE_RUNS_MAX], *dead[FAKE_RUNS_MAX];
int nstarted, ndead, nchunked;

void jq_worker_run_start(jq_worker_t *w, jq_run_t *r) {
    if (nstarted == FAKE_RUNS_MAX) abort();
    started[nstarted++] = r;
}

void jq_finish_add(jq_worker_t *w, jq_run_t *r) {
    if (ndead == FAKE_RUNS_MAX) abort();
    dead[ndead++] = r;
}

int jq_chunks_load(jq_worker_t *w, jq_run_t *r) {
    nchunked++;
    jq_reply_fields_release(r->fields);
    free(r);
    return 0;
}

void jq_worker_maybe_exit(jq_worker_t *w) {}

int jq_finish_ids(jq_worker_t *w, int q, const char **ids, int max) {
    int n = 0;
    for (jq_run_t *r = w->batch_head; r && n < max; r = r->bnext)
        if (r->q == q) ids[n++] = r->job.entry_id;
    return n;
}

int jq_finish_holds(jq_worker_t *w, int q, const char *id) {
    for (jq_run_t *r = w->batch_head; r; r = r->bnext)
        if (r->q == q && strcmp(r->job.entry_id, id) == 0) return 1;
    return 0;
}

static const jq_handler_t io_handler = {.name = "io", .kind = JQ_KIND_IO};
static const jq_handler_t cpu_handler = {.name = "cpu", .kind = JQ_KIND_CPU};

const jq_handler_t *jq_registry_find(const jq_registry_t *r, const char *name, size_t len) {
    if (len == 2 && memcmp(name, "io", 2) == 0) return &io_handler;
    if (len == 3 && memcmp(name, "cpu", 3) == 0) return &cpu_handler;
    return NULL;
}

static void free_run(jq_run_t *r) {
    jq_reply_fields_release(r->fields);
    if (r->zone == &r->zone_mem) msgpack_zone_destroy(r->zone);
    else if (r->zone) msgpack_zone_free(r->zone);
    msgpack_sbuffer_destroy(&r->jbuf); /* enc json's msgpack copy, if any */
    free(r);
}

void fake_stages_reset(void) {
    for (int i = 0; i < nstarted; i++) free_run(started[i]);
    for (int i = 0; i < ndead; i++) free_run(dead[i]);
    nstarted = ndead = nchunked = 0;
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
    jq_fetch_init(&w->fetch);
    jq_reclaim_init(&w->reclaim);
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
    free(w);
}
