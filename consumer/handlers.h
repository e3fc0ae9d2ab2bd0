#ifndef JQ_HANDLERS_H
#define JQ_HANDLERS_H

/* The handler registry: job type name -> handler. A handler has a kind that
 * belongs to it, not to the job (PROTOCOL §8):
 *   io  - starts on the worker's event loop, must never block it, and reports
 *         the end of its work through jq_task_done() on the loop thread;
 *   cpu - runs to its end on a thread of the worker's own pool; it must not
 *         touch the loop or anything but its task.
 * Built-in handlers are in builtins.c; users' handlers register the same
 * way. */

#include <stddef.h>
#include <msgpack.h>
#include <uv.h>

#include "codec.h"

typedef enum { JQ_KIND_IO = 0, JQ_KIND_CPU = 1 } jq_kind_t;

typedef struct jq_task jq_task_t;
typedef void (*jq_task_done_cb)(jq_task_t *t);

/* One attempt of one job, as its handler sees it. The worker owns the task
 * and keeps it alive until done_cb ran (io) or run returned (cpu). */
struct jq_task {
    const msgpack_object *payload; /* borrowed; a nil object when absent */
    msgpack_sbuffer result;        /* the handler appends its msgpack result;
                                      left empty means nil. Freed by worker. */
    char error[JQ_ERR_LEN];        /* the reason, when failed */
    int failed;                    /* set by jq_task_fail() */
    uv_loop_t *loop;               /* io: the loop to start work on */
    void *hstate;                  /* io: the handler's own per-task state */
    jq_task_done_cb done_cb;       /* io: set by the worker */
    void *owner;                   /* the worker's; handlers leave it alone */
};

typedef struct jq_handler {
    const char *name;
    jq_kind_t kind;
    /* cpu: runs on a pool thread. Returns 0, or -1 after jq_task_fail(). */
    int (*run)(jq_task_t *t);
    /* io: starts the work on t->loop and returns 0; later calls
     * jq_task_done(t) exactly once on the loop thread. Work that is finished
     * at once (noop, echo) may call jq_task_done(t) inside start, before it
     * returns 0: the handler touches t no more after that call, and the
     * worker must not touch t after start() returned 0 unless it knows its
     * done_cb has not run yet (done_cb may have freed t). If it fails to
     * start it returns -1 after jq_task_fail() and never calls
     * jq_task_done(). */
    int (*start)(jq_task_t *t);
    /* io: stops a started task that has not called jq_task_done() (timeout,
     * forced shutdown). After it returns the handler must never touch t
     * again nor call jq_task_done(); it frees its own state (possibly later,
     * in a close callback that does not touch t). May be NULL when start
     * always finishes synchronously. */
    void (*cancel)(jq_task_t *t);
} jq_handler_t;

#define JQ_HANDLERS_MAX 64

typedef struct jq_registry {
    const jq_handler_t *h[JQ_HANDLERS_MAX];
    int n;
} jq_registry_t;

void jq_registry_init(jq_registry_t *r);

/* Adds h (borrowed: it must outlive the registry, e.g. a static). Returns 0,
 * or -1 with err if the name is taken, the table is full, or the handler
 * lacks the function its kind needs. */
int jq_registry_add(jq_registry_t *r, const jq_handler_t *h, char *err,
                    size_t errlen);

/* Returns the handler named name[0..len), or NULL. */
const jq_handler_t *jq_registry_find(const jq_registry_t *r, const char *name,
                                     size_t len);

/* Marks t failed with a printf-style reason. Returns -1, so a handler can
 * `return jq_task_fail(t, "...")`. */
int jq_task_fail(jq_task_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* io handlers: reports the end of the task (calls t->done_cb). */
void jq_task_done(jq_task_t *t);

/* Registers the built-in types of PROTOCOL §8: noop, echo, sleep, sha256,
 * fail, and crash only when test_handlers is set. Returns 0 or -1. */
int jq_builtins_register(jq_registry_t *r, int test_handlers, char *err,
                         size_t errlen);

#endif
