#ifndef JQ_REGISTRY_H
#define JQ_REGISTRY_H

/* The handler registry: job type name -> handler. Every kind of handler
 * (builtins.c, plugin.c, exec.c, http.c) registers into it, and the worker
 * looks a job's type up in it; it knows none of them. A handler has a kind
 * that belongs to it, not to the job (PROTOCOL §8):
 *   io  - starts on the worker's event loop, must never block it, and reports
 *         the end of its work through jq_task_done() on the loop thread;
 *   cpu - runs to its end on a thread of the worker's own pool; it must not
 *         touch the loop or anything but its task.
 * The task and handler types, and the task API (jq_task_fail, jq_task_done,
 * jq_task_yield), are the public ABI of include/jobq/handler.h. */

#include <stddef.h>
#include <jobq/handler.h>

#define JQ_HANDLERS_MAX 64

typedef struct jq_registry {
    const jq_handler_t *h[JQ_HANDLERS_MAX];
    const char *origin[JQ_HANDLERS_MAX]; /* who added it: "built-in", a path */
    const char *adding;                  /* origin of the next jq_registry_add */
    int n;
} jq_registry_t;

void jq_registry_init(jq_registry_t *r);

/* Adds h (borrowed: it must outlive the registry, e.g. a static), noting
 * r->adding as its origin. Returns 0, or -1 with err if the name is invalid
 * or taken (the message names who took it), the table is full, or the
 * handler lacks the function its kind needs. */
int jq_registry_add(jq_registry_t *r, const jq_handler_t *h, char *err, size_t errlen);

/* Returns the handler named name[0..len), or NULL. */
const jq_handler_t *jq_registry_find(const jq_registry_t *r, const char *name, size_t len);

#endif
