#ifndef JQ_POOL_H
#define JQ_POOL_H

/* The worker's own CPU thread pool: N pthreads and a FIFO of work items.
 * Deliberately not libuv's shared threadpool, so that fs and DNS work of the
 * loop never waits behind a long hash or compression.
 *
 * For benchmarks only (`--cpu-mode`, bench/seed/), the same interface can
 * run items the two ways that design rejects, so that `make bench-seed` can
 * measure what each costs:
 *   inline - on the loop thread itself, one item per loop iteration, as a
 *            single-threaded Node.js process would (the loop is blocked
 *            while an item runs);
 *   uv     - on libuv's shared threadpool (uv_queue_work, sized by
 *            UV_THREADPOOL_SIZE, default 4), where the loop's fs and DNS
 *            requests queue behind them.
 * Production runs the default, pool.
 *
 * A work item is embedded by its owner (the worker's running job). `work`
 * runs on a pool thread; afterwards `done` runs on the loop thread (woken by
 * a uv_async_t), in completion order. The owner must keep the item alive
 * until `done` ran. */

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <uv.h>

typedef enum {
    JQ_POOL_THREADS = 0, /* "pool": the worker's own threads (default) */
    JQ_POOL_INLINE,      /* "inline": on the loop thread (benchmarks only) */
    JQ_POOL_UV,          /* "uv": libuv's shared threadpool (benchmarks only) */
} jq_pool_mode_t;

typedef struct jq_pool_item jq_pool_item_t;
typedef struct jq_pool jq_pool_t;
typedef void (*jq_pool_work_fn)(jq_pool_item_t *item);
typedef void (*jq_pool_done_fn)(jq_pool_item_t *item);

struct jq_pool_item {
    jq_pool_work_fn work;
    jq_pool_done_fn done;
    void *data;           /* the owner's */
    int64_t started_ms;   /* set by the pool when a thread takes it; 0 before */
    jq_pool_item_t *next; /* the pool's */
    jq_pool_t *pool;      /* the pool's: set by submit */
    uv_work_t uvreq;      /* the pool's: uv mode only */
};

typedef void (*jq_pool_closed_cb)(jq_pool_t *p);

struct jq_pool {
    uv_loop_t *loop;
    jq_pool_mode_t mode; /* the process-wide mode when it was started */
    uv_async_t async;    /* wakes the loop when items complete */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t *threads;
    int nthreads;
    int stopping;
    jq_pool_item_t *queued_head, *queued_tail; /* waiting for a thread */
    jq_pool_item_t *done_head, *done_tail;     /* finished, waiting for the loop */
    size_t backlog;                            /* items queued, not started */
    int busy;                                  /* items running on threads */
    jq_pool_item_t **running;                  /* per thread (per slot in uv mode): the item
                                 it runs, or NULL */
    int nrunning;                              /* slots in running */
    int inflight;                              /* uv mode: queued with libuv, after_work not run */
    jq_pool_closed_cb closed_cb;
    void *data; /* the owner's */
};

/* Sets the mode of every pool started afterwards in this process from its
 * name: "pool", "inline" or "uv". Returns 0, or -1 with err. Options call it
 * once; master and workers parse the same argv. */
int jq_pool_set_mode(const char *name, char *err, size_t errlen);

/* How the pool threads yield to everything else (--cpu-sched), so that with
 * every core busy hashing, a thread that wakes (the loop thread with an io
 * job or an ack, Redis, the client waiting for that job) gets a core at
 * once, and cpu jobs never hold back io jobs, even in the kernel's run
 * queue. Linux keeps these per thread.
 *   idle    SCHED_IDLE: any other thread that wakes preempts a pool thread
 *           at once; the pool gets only what the machine leaves over.
 *   slice   nice 5 and the shortest scheduler slice (0.1 ms, Linux 6.12+):
 *           a waking thread waits at most that long for a core.
 *   nice    nice 5: a lower share of the CPU, but a waking thread may
 *           still wait out a pool thread's slice (milliseconds).
 *   normal  like any thread of the process. */
typedef enum { JQ_SCHED_IDLE, JQ_SCHED_SLICE, JQ_SCHED_NICE, JQ_SCHED_NORMAL } jq_pool_sched_t;
/* Sets it for every pool thread started afterwards in this process.
 * Returns 0, or -1 with err for an unknown name. */
int jq_pool_set_sched(const char *name, char *err, size_t errlen);

/* Yield points: the kernel lets a busy thread keep its core after another
 * thread woke on it until its slice ends or the next tick (4 ms at HZ=250),
 * and neither nice nor a custom slice changes that (measured in
 * docs/BENCHMARKS.md, "Issue 8, fourth pass"): with both cores hashing,
 * the loop thread, Redis and the client waiting for a tiny job queued up
 * to a tick each. So a cpu handler's long loop calls jq_pool_yield_point()
 * often (each round, each block); at most every yield_us of wall time it
 * gives its core to whoever is runnable there (sched_yield, a no-op when
 * nobody waits), so a thread that wakes waits at most about that long.
 * Costs a clock read every 16 calls. Thread-safe: its state is per thread. */
void jq_pool_yield_point(void);
/* Sets the period for the whole process (--cpu-yield-us; 0: never). */
void jq_pool_set_yield_us(long long us);

/* Starts n threads on p (embedded by the caller). Returns 0, or -1 with err;
 * on failure nothing is left running. In inline and uv mode no thread of its
 * own is started, and n only has to be >= 1. */
int jq_pool_init(jq_pool_t *p, uv_loop_t *loop, int n, char *err, size_t errlen);

/* Queues item (work and done set by the caller). Never blocks. */
void jq_pool_submit(jq_pool_t *p, jq_pool_item_t *item);

/* Items queued but not started, and items running now. */
size_t jq_pool_backlog(jq_pool_t *p);
int jq_pool_busy(jq_pool_t *p);

/* Start time (ms since epoch) of the longest-running item, or 0 if idle. */
int64_t jq_pool_oldest_start(jq_pool_t *p);

/* Stops the pool: items still queued are dropped (their done never runs),
 * threads finish the item they run, then are joined; the done callbacks of
 * finished items run; then the async handle is closed and closed_cb(p) runs
 * from the loop. Joining blocks the loop thread, so callers close the pool
 * only when no item runs, or after giving up on stuck ones by exiting the
 * process instead. */
void jq_pool_close(jq_pool_t *p, jq_pool_closed_cb closed_cb);

#endif
