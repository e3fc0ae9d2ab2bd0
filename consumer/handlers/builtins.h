#ifndef JQ_BUILTINS_H
#define JQ_BUILTINS_H

/* The built-in job types of PROTOCOL §8, static handlers of builtins.c. */

#include <stddef.h>

#include "registry.h"

/* Registers noop, echo, sleep, sha256, fail, and crash and fsstat only when
 * test_handlers is set. Returns 0, or -1 with err. */
int jq_builtins_register(jq_registry_t *r, int test_handlers, char *err, size_t errlen);

#endif
