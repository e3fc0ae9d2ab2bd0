#ifndef JQ_WATCH_INT_H
#define JQ_WATCH_INT_H

/* libjobq's snapshot (jobq/watch.h) as a json-c object, and a broken
 * queue's report (PROTOCOL §7), for the jobq command to add what the
 * snapshot does not hold. Not exported from libjobq.so: a field added to the public structs
 * instead would change their size under programs built against
 * libjobq.so.1. Not installed. */

#include <json.h>
#include <stdio.h>

#include "jobq/watch.h"

/* The object jq_watch_json prints; owned by the caller. */
json_object *jq_watch_to_json(const jq_watch_t *w);

/* Prints root as jq_watch_json does and releases it. Returns 0, or -1 if
 * the stream failed. */
int jq_watch_print_json(json_object *root, FILE *out);

/* Adds `running_jobs` to each queue of root (jq_watch_to_json(w)'s):
 * up to per_queue (1 to 100) of its running jobs, read now over c
 * (watch_running.c). Returns 0, or -1 with err when Redis failed (some
 * arrays may then be short). */
int jq_watch_add_running(jq_client_t *c, const jq_watch_t *w, json_object *root, int per_queue,
                         char *err, size_t errlen);

/* A queue a worker found broken (<p>:{q}:broken). Its fields come from
 * Redis, where any client may have written them: copied bounded. */
typedef struct jq_broken {
    char error[256];
    long long since; /* ms since the epoch, 0 if absent */
    char worker[320];
} jq_broken_t;

/* Returns 1 with *b filled when the queue is broken, 0 when not, or when
 * its key cannot be read (the figures beside it could: say nothing). */
int jq_watch_broken(jq_client_t *c, const char *queue, jq_broken_t *b);

#endif
