#ifndef JQ_BATCH_INT_H
#define JQ_BATCH_INT_H

/* A job's steps on its batch at enqueue (batch.c, for jobq.c): join
 * counts n jobs more (refused when the batch is unknown or sealed);
 * leaving is joining with -1 (a job that was not added after all).
 * Returns 0 or -1 with err. */

#include <stddef.h>

#include "jobq/jobq.h"

int jq_batch_join(jq_client_t *c, const char *id, int n, char *err, size_t errlen);

#endif
