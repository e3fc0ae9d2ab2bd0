#ifndef JQ_POOL_H
#define JQ_POOL_H

/* The worker's own CPU thread pool: N pthreads and a FIFO of work items.
 * Deliberately not libuv's shared threadpool, so that fs and DNS work of the
 * loop never waits behind a long hash or compression.
 *
 * A work item is embedded by its owner (the worker's running job). `work`
 * runs on a pool thread; afterwards `done` runs on the loop thread (woken by
 * a uv_async_t), in completion order. The owner must keep the item alive
 * until `done` ran. */

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <uv.h>

typedef struct jq_pool_item jq_pool_item_t;
typedef void (*jq_pool_work_fn)(jq_pool_item_t *item);
typedef void (*jq_pool_done_fn)(jq_pool_item_t *item);

struct jq_pool_item {
    jq_pool_work_fn work;
    jq_pool_done_fn done;
    void *data;            /* the owner's */
    int64_t started_ms;    /* set by the pool when a thread takes it; 0 before */
    jq_pool_item_t *next;  /* the pool's */
};

typedef struct jq_pool jq_pool_t;
typedef void (*jq_pool_closed_cb)(jq_pool_t *p);

struct jq_pool {
    uv_loop_t *loop;
    uv_async_t async;      /* wakes the loop when items complete */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t *threads;
    int nthreads;
    int stopping;
    jq_pool_item_t *queued_head, *queued_tail;  /* waiting for a thread */
    jq_pool_item_t *done_head, *done_tail;  /* finished, waiting for the loop */
    size_t backlog;        /* items queued, not started */
    int busy;              /* items running on threads */
    jq_pool_item_t **running; /* per thread: the item it runs, or NULL */
    jq_pool_closed_cb closed_cb;
    void *data;            /* the owner's */
};

/* Starts n threads on p (embedded by the caller). Returns 0, or -1 with err;
 * on failure nothing is left running. */
int jq_pool_init(jq_pool_t *p, uv_loop_t *loop, int n, char *err,
                 size_t errlen);

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
