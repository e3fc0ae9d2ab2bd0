#ifndef JQ_HANDLERS_H
#define JQ_HANDLERS_H

/* Which handlers a consumer has: the one place that loads every kind
 * (builtins.h, plugin.h, exec.h, http.h) into a registry (registry.h). */

#include <stddef.h>

#include "codec.h" /* JQ_ERR_LEN, the size of callers' err buffers */
#include "registry.h"

struct jq_options;

/* Fills r with every handler the options ask for: the built-ins, then each
 * --plugin, each --exec, and http when --http-allow is given. Run by the
 * master once at start, to refuse a bad setup before any worker exists, and
 * by each worker. Returns 0, or -1 with err naming the culprit. What it
 * allocates lives as long as the process. */
int jq_handlers_setup(jq_registry_t *r, const struct jq_options *o, char *err, size_t errlen);

#endif
