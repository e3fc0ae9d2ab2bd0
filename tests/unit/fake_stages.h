#ifndef JQ_FAKE_STAGES_H
#define JQ_FAKE_STAGES_H

/* Recording stand-ins for the worker's stages that fetch.c, reclaim.c and
 * finish.c hand their runs to (attempt.c's start, chunks.c), and the
 * callbacks the worker gives its stages (worker.h's jq_worker_*_cb: start
 * records, kick kicks the real fetch, maybe_exit does nothing), for the
 * stage tests (test_fetch, test_reclaim, test_finish). The runs' life
 * cycle is the real run.c, watched: jq_run_free counts in nfreed. The
 * runs handed over are kept in started[] and dead[] (owned here:
 * fake_stages_reset frees them, unless jq_run_free freed them first).
 * finish.c's own stand-ins are in fake_finish.c (not linked into
 * test_finish, which has the real one).
 *
 * Job types: "io" and "cpu" are known, of those kinds; any other is not. */

#include "worker.h"

#define FAKE_RUNS_MAX 64

extern jq_run_t *started[FAKE_RUNS_MAX], *dead[FAKE_RUNS_MAX];
extern int nstarted, ndead, nchunked;
extern int nfreed; /* runs jq_run_free freed */

/* Frees the runs recorded and forgets them. */
void fake_stages_reset(void);

/* A worker as the stage tests start it: id "host:1", queues "a" and "b"
 * (streams jq:{a}:stream...), 8 io and 4 cpu slots, its runs, fetch (with
 * what it borrows, as worker.c lends it) and reclaim state ready, both connections up, with options opt (prefix "jq",
 * visibility 30 s). */
jq_worker_t *fake_worker_new(jq_options_t *opt);
/* Stops w, answers its commands still pending with NULL, frees the runs
 * recorded and w. */
void fake_worker_free(jq_worker_t *w);

#endif
