#ifndef JQ_HANDLERS_H
#define JQ_HANDLERS_H

/* Which handlers a consumer has: the one place that loads every kind
 * (builtins.h, plugin.h, exec.h, http.h, procpool.h) into a registry
 * (registry.h), and starts and stops what runs beside the jobs (the
 * handler processes of --proc). */

#include <stddef.h>
#include <uv.h>

#include "codec.h" /* JQ_ERR_LEN, the size of callers' err buffers */
#include "registry.h"

struct jq_options;

/* Fills r with every handler the options ask for: the built-ins, then each
 * --plugin, each --exec, and http when --http-allow is given. Run by the
 * master once at start, to refuse a bad setup before any worker exists, and
 * by each worker. Returns 0, or -1 with err naming the culprit. What it
 * allocates lives as long as the process. */
int jq_handlers_setup(jq_registry_t *r, const struct jq_options *o, char *err, size_t errlen);

/* Starts what the handlers keep running on a worker's loop (the --proc
 * processes), after jq_handlers_setup and before the first job. Returns 0
 * or a libuv error. */
int jq_handlers_start(uv_loop_t *loop);

/* Stops it, when the worker ends: its handles close and the loop can end.
 * Safe to call when nothing was started. */
void jq_handlers_stop(void);

#endif
