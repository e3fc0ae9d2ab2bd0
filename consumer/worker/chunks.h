#ifndef JQ_CHUNKS_H
#define JQ_CHUNKS_H

/* Chunked payloads (PROTOCOL §1), a stage between fetch and the attempt:
 * a run whose payload is a chunk list is loaded here in bounded batches
 * and streamed into the decoder (chunks.c's header says how), then started
 * (the worker's start callback) or dead-lettered with the reason (finish).
 * The run is the loader's until then.
 *
 * Its state is a jq_chunks_t embedded in the worker (w->chunks): what it
 * borrows (stage.h; its reads go on the write connection), the finish
 * stage it hands bad payloads to, and how many loads are under way. */

#include "args.h"
#include "finish.h"
#include "run.h"
#include "stage.h"

typedef struct jq_chunks {
    jq_stage_env_t env;  /* borrowed from the worker (stage.h) */
    jq_finish_t *finish; /* borrowed: where a bad payload goes */
    jq_args_t args;      /* each command's argv, reused */
    int loading;         /* loads under way: a drain waits */
} jq_chunks_t;

/* Readies c with what it borrows (a copy of env; finish outlives c). */
void jq_chunks_init(jq_chunks_t *c, const jq_stage_env_t *env, jq_finish_t *finish);
/* Frees the builder's memory, after the loop ended. */
void jq_chunks_destroy(jq_chunks_t *c);

/* Loads r's chunked payload, then starts r or dead-letters it; a load cut
 * short by a lost connection frees r (its entry stays pending). Returns 0. */
int jq_chunks_load(jq_chunks_t *c, jq_run_t *r);

/* Loads under way: a drain waits for them. */
static inline int jq_chunks_busy(const jq_chunks_t *c) { return c->loading; }

#endif
