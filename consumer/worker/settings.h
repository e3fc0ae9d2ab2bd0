#ifndef JQ_SETTINGS_H
#define JQ_SETTINGS_H

/* Per-queue settings a queue's operator changes while it runs, kept in
 * the hash <p>:{<q>}:settings (docs/PROTOCOL.md §7b) and read by every
 * worker once a second, one HGET per queue: a queue that sets nothing
 * costs that read and nothing per job.
 *
 *   keep_done N   index the last N done jobs of the queue in the sorted
 *                 set <p>:{<q>}:done (id scored by finish time), so that
 *                 `jobq jobs list --state done` and the dashboard can page
 *                 them: two more writes per done job (outcome.c), for this
 *                 queue only. 0 or absent: no index.
 *
 * The values land in each jq_queue_t (queue.h). */

#include <stdint.h>

#include "stage.h"

#define JQ_SETTINGS_POLL_MS 1000
#define JQ_KEEP_DONE_MAX 1000000

typedef struct jq_settings {
    jq_stage_env_t env;
    int64_t last_poll_ms;
} jq_settings_t;

void jq_settings_init(jq_settings_t *s, const jq_stage_env_t *env);
/* From the worker's tick: polls when a second has passed. */
void jq_settings_tick(jq_settings_t *s, int64_t now);

#endif
