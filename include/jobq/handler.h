#ifndef JOBQ_HANDLER_H
#define JOBQ_HANDLER_H

/* jobq's handler interface: how a job type is written, for the built-in
 * types and for plugins alike. This header is public and self-contained: a
 * plugin needs only it, msgpack.h and uv.h.
 *
 * A plugin is a shared object that `jobq-consumer --plugin PATH.so` loads
 * (dlopen) in the master, to check it, and in every worker. It exports two
 * symbols:
 *
 *     JQ_PLUGIN_DECLARE_ABI;                       the ABI it was built for
 *     int jobq_plugin_register(jq_plugin_host_t *host) {
 *         return jq_plugin_add(host, &my_handler);  once per handler
 *     }
 *
 * A plugin whose ABI version differs from the consumer's, or that registers a
 * name already taken (by a built-in or by another plugin), stops the consumer
 * at start with a message that names the plugin; nothing runs.
 *
 * Two kinds of handler (the kind belongs to the handler, not to the job):
 *   io  - start() begins the work on t->loop (the worker's libuv loop) and
 *         returns at once; the work ends with exactly one jq_task_done(t),
 *         on the loop thread. It must never block the loop.
 *   cpu - run() does the whole work on a thread of the worker's own pool and
 *         returns; it must not touch the loop. Several tasks of one handler
 *         may run at once on different threads.
 *
 * The result is msgpack appended to t->result (msgpack_packer_init(&pk,
 * &t->result, msgpack_sbuffer_write)); left empty it is nil. A failure is
 * jq_task_fail(t, "reason"): the attempt fails with that error (retried while
 * the job has attempts left). A failure that no retry can mend (a malformed
 * payload, a refused request) is jq_task_fail_permanent(t, "reason"): the
 * job goes to the dead set at once, with that error and the attempts made.
 *
 * A cpu handler whose run() takes long (more than about a millisecond)
 * calls jq_task_yield(t) often in its loop: every round, every block. It
 * costs almost nothing, and lets the threads that wake on a core the pool
 * keeps busy (the worker's loop with an io job, Redis, a waiting client)
 * have it within --cpu-yield-us instead of a scheduler tick.
 *
 * Cancellation (`jobq cancel`, docs/PROTOCOL.md §11): an io task is stopped
 * with its handler's cancel(), as on a timeout. A cpu task cannot be
 * stopped from outside: jq_task_yield(t) returns JQ_TASK_CANCELLED once
 * its job is cancelled, and the handler then returns at once (what it
 * returns and any result are dropped: the job ends `cancelled`). A task
 * queued behind busy threads is never run. jq_task_cancelled(t) asks the
 * same without yielding.
 *
 * Progress: jq_task_progress(t, fraction, message) reports how far the
 * task is (0.0 to 1.0, and a short message), from the loop thread (io)
 * or the task's pool thread (cpu). The worker writes the latest one into
 * the job's result hash, a few times a second at most; calling it more
 * often costs a mutex and a copy. A task that never calls it costs
 * nothing.
 *
 * ABI version history:
 *   1  the first layout.
 *   2  jq_task gains yield_cb at its end, for jq_task_yield(). A plugin
 *      built for 1 still loads (it never reads the new field).
 *      Later, same layout and version: `failed` may be
 *      JQ_TASK_FAILED_PERMANENT (2), set by jq_task_fail_permanent(). A
 *      plugin that never sets it is unchanged; a consumer from before it
 *      takes 2 as any failure (retried while attempts are left).
 *   3  jq_task gains deadline_ms at its end: the wall-clock time the
 *      attempt's timeout falls at. A plugin built for 1 or 2 still loads.
 *   4  jq_task gains `cancelled` and progress_cb at its end, for
 *      jq_task_yield()'s JQ_TASK_CANCELLED, jq_task_cancelled() and
 *      jq_task_progress(). A plugin built for 1 to 3 still loads: its
 *      jq_task_yield() never says cancelled (its cpu jobs run to their end,
 *      and are then dropped as cancelled) and it reports no progress.
 *   5  jq_task gains retry_after_ms at its end, and `failed` may be
 *      JQ_TASK_RETRY_AFTER (3), set by jq_task_retry_after(): "rate
 *      limited, retry after T". A plugin built for 1 to 4 still loads; one
 *      built for 5 does not load in an older consumer, whose jq_task is
 *      shorter.
 *   6  jq_task gains result_is_payload at its end, set by
 *      jq_task_result_payload(): the result is the payload's own bytes,
 *      written from them, not copied (a 60 MiB echo held the payload and
 *      its copy at once). A plugin built for 1 to 5 still loads. */

#include <stdarg.h>
#include <stdio.h>
#include <msgpack.h>
#include <uv.h>

#define JQ_HANDLER_ABI_VERSION 6u
/* The oldest version a consumer still loads. */
#define JQ_HANDLER_ABI_MIN 1u
#define JQ_TASK_ERROR_LEN 256
/* jq_task's `failed`: 0, or one of these. */
#define JQ_TASK_FAILED 1           /* retried while attempts are left */
#define JQ_TASK_FAILED_PERMANENT 2 /* dead at once, never retried */
/* What jq_task_yield() and jq_task_cancelled() return once the job is
 * cancelled: stop, return from run(). */
#define JQ_TASK_CANCELLED 1
#define JQ_TASK_PROGRESS_MSG_LEN 200 /* longer messages are cut */
/* ABI 5: retried after retry_after_ms, its attempt not used; the queue is
 * not read for that long. */
#define JQ_TASK_RETRY_AFTER 3

typedef enum { JQ_KIND_IO = 0, JQ_KIND_CPU = 1 } jq_kind_t;

typedef struct jq_task jq_task_t;
typedef struct jq_handler jq_handler_t;
typedef void (*jq_task_done_cb)(jq_task_t *t);

/* One attempt of one job, as its handler sees it. The worker owns the task
 * and every pointer in it; they stay valid until the handler's work ends:
 * jq_task_done() (io), run() returning (cpu), or cancel() returning (io). */
struct jq_task {
    const msgpack_object *payload; /* a nil object when the job has none */
    msgpack_sbuffer result;        /* the handler appends its msgpack result */
    char error[JQ_TASK_ERROR_LEN]; /* the reason, when failed */
    int failed;                    /* set by jq_task_fail() (1) or
                                      jq_task_fail_permanent() (2) */
    uv_loop_t *loop;               /* io: the worker's loop */
    void *hstate;                  /* io: the handler's own per-task state */
    jq_task_done_cb done_cb;       /* io: the worker's; use jq_task_done() */
    void *owner;                   /* the worker's; leave it alone */
    const jq_handler_t *handler;   /* the handler running this task */
    const char *job_id;            /* NUL-terminated */
    const char *queue;             /* NUL-terminated */
    long long attempt;             /* 1 for the first attempt */
    void (*yield_cb)(void);        /* cpu: the worker's (ABI 2); use
                                      jq_task_yield() */
    long long deadline_ms;         /* wall-clock ms (Unix epoch) at which the
                                      attempt times out (ABI 3) */
    int cancelled;                 /* set by the worker, any thread (ABI
                                      4); use jq_task_cancelled() */
    /* The worker's (ABI 4); use jq_task_progress(). */
    void (*progress_cb)(jq_task_t *t, double fraction, const char *message);
    long long retry_after_ms; /* ABI 5: set by jq_task_retry_after() */
    int result_is_payload;    /* ABI 6: set by jq_task_result_payload() */
};

/* A named handler. The struct (and its name) is borrowed: it must live as
 * long as the process (a static in the plugin; plugins are never unloaded). */
struct jq_handler {
    const char *name; /* the job type: 1 to 128 bytes of [A-Za-z0-9_.:-] */
    jq_kind_t kind;
    /* cpu: runs on a pool thread. Returns 0, or -1 after jq_task_fail(). */
    int (*run)(jq_task_t *t);
    /* io: starts the work on t->loop and returns 0; later calls
     * jq_task_done(t) exactly once, on the loop thread. Work finished at
     * once may call jq_task_done(t) inside start() before returning 0, and
     * then touches t no more. If it cannot start it returns -1 after
     * jq_task_fail() and never calls jq_task_done(). */
    int (*start)(jq_task_t *t);
    /* io: stops a started task that has not called jq_task_done() (its
     * timeout passed, or the worker is stopping). After it returns the
     * handler never touches t again and never calls jq_task_done(); it frees
     * its own state, possibly later (in a close callback that does not touch
     * t). May be NULL only when start() always finishes synchronously. */
    void (*cancel)(jq_task_t *t);
    void *data; /* the handler's own; jobq never touches it */
};

/* Marks t failed (how: JQ_TASK_FAILED or JQ_TASK_FAILED_PERMANENT) with a
 * reason formatted from fmt and ap (truncated to fit). Returns -1. */
static inline int jq_task_vfail(jq_task_t *t, int how, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static inline int jq_task_vfail(jq_task_t *t, int how, const char *fmt, va_list ap) {
    vsnprintf(t->error, sizeof t->error, fmt, ap);
    t->failed = how;
    return -1;
}

/* Marks t failed with a printf-style reason (truncated to fit). Returns -1,
 * so that a handler can `return jq_task_fail(t, "...")`. */
static inline int jq_task_fail(jq_task_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int jq_task_fail(jq_task_t *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    jq_task_vfail(t, JQ_TASK_FAILED, fmt, ap);
    va_end(ap);
    return -1;
}

/* As jq_task_fail, but no retry can mend it: the job is dead at once
 * (its error the reason, its attempts those made). */
static inline int jq_task_fail_permanent(jq_task_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int jq_task_fail_permanent(jq_task_t *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    jq_task_vfail(t, JQ_TASK_FAILED_PERMANENT, fmt, ap);
    va_end(ap);
    return -1;
}

/* JQ_TASK_CANCELLED once t's job is cancelled (see the top of this file),
 * else 0. Any thread. */
static inline int jq_task_cancelled(jq_task_t *t) {
    return __atomic_load_n(&t->cancelled, __ATOMIC_RELAXED) ? JQ_TASK_CANCELLED : 0;
}

/* "Rate limited, retry after ms": the job goes back, to run again in ms
 * (at least 1, at most an hour), without using an attempt (its attempt
 * count is unchanged), and no worker reads its queue for that long
 * (docs/PROTOCOL.md §9). The reason is the job's error meanwhile. A
 * handler that is refused for good should fail instead: a job answered
 * "retry after" forever is retried forever. Returns -1. */
static inline int jq_task_retry_after(jq_task_t *t, long long ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int jq_task_retry_after(jq_task_t *t, long long ms, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    jq_task_vfail(t, JQ_TASK_RETRY_AFTER, fmt, ap);
    va_end(ap);
    t->retry_after_ms = ms;
    return -1;
}

/* The result is the payload itself (what echo returns), written from the
 * payload's own bytes, byte for byte as the producer sent them: no copy,
 * however large (ABI 6). Only a chunked payload with no string or bin in
 * it, whose bytes are not kept once decoded, is packed again (the same
 * value). Whatever was appended to t->result is ignored; a failed task has
 * no result either way. */
static inline void jq_task_result_payload(jq_task_t *t) { t->result_is_payload = 1; }

/* cpu: a yield point for long loops (see the top of this file); a no-op
 * for io tasks. Returns JQ_TASK_CANCELLED when the job is cancelled: the
 * handler stops and returns. */
static inline int jq_task_yield(jq_task_t *t) {
    if (t->yield_cb) t->yield_cb();
    return jq_task_cancelled(t);
}

/* Reports t's progress: fraction from 0.0 to 1.0 (clamped), message
 * NULL or a short text (cut at JQ_TASK_PROGRESS_MSG_LEN bytes). From the
 * loop thread (io) or t's pool thread (cpu). */
static inline void jq_task_progress(jq_task_t *t, double fraction, const char *message) {
    if (t->progress_cb) t->progress_cb(t, fraction, message);
}

/* io: reports the end of the task. The worker may free t inside this call:
 * it is the handler's last touch of t. */
static inline void jq_task_done(jq_task_t *t) { t->done_cb(t); }

/* ---- plugins ---- */

typedef struct jq_plugin_host jq_plugin_host_t;

/* What the consumer hands to jobq_plugin_register(). */
struct jq_plugin_host {
    unsigned abi_version; /* the consumer's JQ_HANDLER_ABI_VERSION */
    const char *path;     /* the plugin's path, as given to --plugin */
    /* Registers h (borrowed for the life of the process). Returns 0, or -1
     * when the name is taken or invalid or h lacks the function its kind
     * needs; the consumer then stops with its own message. */
    int (*add)(jq_plugin_host_t *host, const jq_handler_t *h);
    void *priv; /* the consumer's */
};

static inline int jq_plugin_add(jq_plugin_host_t *host, const jq_handler_t *h) {
    return host->add(host, h);
}

#define JQ_PLUGIN_ABI_SYMBOL "jobq_plugin_abi"
#define JQ_PLUGIN_REGISTER_SYMBOL "jobq_plugin_register"

/* The two symbols a plugin defines. jobq_plugin_register returns 0, or -1
 * (after which the consumer stops). It runs once per process (the master's
 * check, then each worker) before any job: it must not start threads or
 * touch a loop. */
extern const unsigned jobq_plugin_abi;
int jobq_plugin_register(jq_plugin_host_t *host);

/* Defines jobq_plugin_abi as the version this header describes. */
#define JQ_PLUGIN_DECLARE_ABI const unsigned jobq_plugin_abi = JQ_HANDLER_ABI_VERSION

#endif
