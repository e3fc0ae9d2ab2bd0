/* finish.c's stand-ins for the stage tests of fetch.c and reclaim.c: a run
 * handed to finish is recorded in dead[] (fake_stages.h), and finish's ids
 * are those of the runs the test chains on w->finish.batch_head (by bnext), as
 * finish.c keeps its batch. test_finish links the real finish.c instead. */

#include <stdlib.h>
#include <string.h>

#include "fake_stages.h"

void jq_finish_add(jq_finish_t *f, jq_run_t *r) {
    if (ndead == FAKE_RUNS_MAX) abort();
    dead[ndead++] = r;
}

int jq_finish_ids(const jq_finish_t *f, int q, const char **ids, int max) {
    int n = 0;
    for (jq_run_t *r = f->batch_head; r && n < max; r = r->bnext)
        if (r->q == q) ids[n++] = r->job.entry_id;
    return n;
}

int jq_finish_holds(const jq_finish_t *f, int q, const char *id) {
    for (jq_run_t *r = f->batch_head; r; r = r->bnext)
        if (r->q == q && strcmp(r->job.entry_id, id) == 0) return 1;
    return 0;
}
