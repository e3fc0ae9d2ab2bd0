#ifndef JQ_WATCH_INT_H
#define JQ_WATCH_INT_H

/* libjobq's snapshot (jobq/watch.h) as a json-c object, for the jobq
 * command to add what the library does not read (a broken queue, PROTOCOL
 * §7). Not exported from libjobq.so: a field added to the public structs
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

#endif
