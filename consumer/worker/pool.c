/* The worker's CPU thread pool (see pool.h): N pthreads share one mutex, a
 * condition variable and a FIFO of items; finished items go on a done list
 * that the loop thread drains when the uv_async_t wakes it. How its threads
 * are scheduled and yield, and which mode runs, is pool_policy.c's.
 *
 * The benchmark-only modes reuse the same state: inline runs the FIFO from
 * the async callback on the loop thread, one item per wakeup; uv hands each
 * item to uv_queue_work and counts what libuv still holds (inflight). */

/* pthread_setname_np is a GNU extension. */
#define _GNU_SOURCE
#include "pool.h"

#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "pool_policy.h"

/* libuv's own cap on UV_THREADPOOL_SIZE: one running slot per thread. */
#define POOL_UV_SLOTS 1024

/* What a thread needs to know at birth; it frees this itself. */
typedef struct pool_thread_arg {
    jq_pool_t *p;
    int idx;
} pool_thread_arg_t;

/* With p->mu held: takes the first queued item, or NULL. */
static jq_pool_item_t *pool_pop_locked(jq_pool_t *p) {
    jq_pool_item_t *it = p->queued_head;
    if (it == NULL) return NULL;
    p->queued_head = it->next;
    if (p->queued_head == NULL) p->queued_tail = NULL;
    it->next = NULL;
    return it;
}

/* With p->mu held: it starts in running slot `slot` (-1: none free). */
static void pool_start_locked(jq_pool_t *p, jq_pool_item_t *it, int slot) {
    p->backlog--;
    p->busy++;
    it->started_ms = jq_now_ms();
    if (slot >= 0) p->running[slot] = it;
}

/* With p->mu held: the item in running slot `slot` ended. */
static void pool_end_locked(jq_pool_t *p, int slot) {
    if (slot >= 0) p->running[slot] = NULL;
    p->busy--;
}

static void *pool_thread_main(void *arg) {
    pool_thread_arg_t *a = arg;
    jq_pool_t *p = a->p;
    int idx = a->idx;
    free(a);

    char name[16];
    snprintf(name, sizeof name, "jq-cpu-%d", idx);
    pthread_setname_np(pthread_self(), name);
    jq_pool_policy_thread();

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && p->queued_head == NULL) pthread_cond_wait(&p->cv, &p->mu);
        /* On stop the queue was already emptied by jq_pool_close; leave
         * without looking at it again. */
        if (p->stopping) break;

        jq_pool_item_t *it = pool_pop_locked(p);
        pool_start_locked(p, it, idx);
        pthread_mutex_unlock(&p->mu);

        it->work(it);

        pthread_mutex_lock(&p->mu);
        pool_end_locked(p, idx);
        /* Only the thread that makes the done list non-empty wakes the loop:
         * whoever appends behind it is covered by that same wakeup, since
         * the loop always takes the whole list. */
        int was_empty = p->done_head == NULL;
        if (was_empty)
            p->done_head = it;
        else
            p->done_tail->next = it;
        p->done_tail = it;
        pthread_mutex_unlock(&p->mu);
        if (was_empty) uv_async_send(&p->async);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_on_close(uv_handle_t *h) {
    jq_pool_t *p = h->data;
    free(p->running);
    p->running = NULL;
    p->nrunning = 0;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    /* closed_cb may free p: it is the last thing that touches it. */
    if (p->closed_cb) p->closed_cb(p);
}

/* Inline mode, loop thread: runs the first queued item to its end, blocking
 * the loop as a single-threaded process would, and wakes itself again for
 * the next, so that the loop's other events get a turn between items. */
static void pool_run_inline(jq_pool_t *p) {
    pthread_mutex_lock(&p->mu);
    jq_pool_item_t *it = p->stopping ? NULL : pool_pop_locked(p);
    if (it != NULL) pool_start_locked(p, it, 0);
    pthread_mutex_unlock(&p->mu);
    if (it == NULL) return;

    it->work(it);

    pthread_mutex_lock(&p->mu);
    pool_end_locked(p, 0);
    int more = p->queued_head != NULL;
    pthread_mutex_unlock(&p->mu);
    if (more) uv_async_send(&p->async);
    it->done(it); /* last: it may free the item */
}

/* uv mode, on a thread of libuv's pool. */
static void pool_on_uv_work(uv_work_t *req) {
    jq_pool_item_t *it = req->data;
    jq_pool_t *p = it->pool;
    int slot = -1;

    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nrunning && slot < 0; i++)
        if (p->running[i] == NULL) slot = i;
    pool_start_locked(p, it, slot);
    pthread_mutex_unlock(&p->mu);

    it->work(it);

    pthread_mutex_lock(&p->mu);
    pool_end_locked(p, slot);
    pthread_mutex_unlock(&p->mu);
}

/* uv mode, loop thread: the item's done, as in the other modes; the last
 * one after jq_pool_close lets the async handle close. */
static void pool_on_uv_after(uv_work_t *req, int status) {
    jq_pool_item_t *it = req->data;
    jq_pool_t *p = it->pool;
    (void)status; /* never cancelled */

    pthread_mutex_lock(&p->mu);
    p->inflight--;
    int last = p->stopping && p->inflight == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) uv_async_send(&p->async);
    it->done(it); /* last: it may free the item */
}

/* Loop thread: runs the done callbacks of everything finished so far, in
 * completion order. After jq_pool_close the threads are gone, so the last
 * wakeup also closes the handle. */
static void pool_on_async(uv_async_t *a) {
    jq_pool_t *p = a->data;

    pthread_mutex_lock(&p->mu);
    jq_pool_item_t *it = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);

    while (it != NULL) {
        /* done may free the item (and reuse it for a new submit). */
        jq_pool_item_t *next = it->next;
        it->next = NULL;
        it->done(it);
        it = next;
    }

    if (p->mode == JQ_POOL_INLINE) pool_run_inline(p);

    pthread_mutex_lock(&p->mu);
    int stopping = p->stopping, inflight = p->inflight;
    pthread_mutex_unlock(&p->mu);
    if (stopping && inflight == 0 && !uv_is_closing((uv_handle_t *)&p->async))
        uv_close((uv_handle_t *)&p->async, pool_on_close);
}

/* Stops and joins threads [0, n) of a pool whose async handle is not yet
 * initialised (the failure path of jq_pool_init). */
static void pool_join_threads(jq_pool_t *p, int n) {
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < n; i++) pthread_join(p->threads[i], NULL);
}

/* The mutex and the condition variable; 0, or -1 with err and neither. */
static int pool_init_sync(jq_pool_t *p, char *err, size_t errlen) {
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        snprintf(err, errlen, "pool: pthread_mutex_init failed");
        return -1;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        snprintf(err, errlen, "pool: pthread_cond_init failed");
        pthread_mutex_destroy(&p->mu);
        return -1;
    }
    return 0;
}

/* Threads inherit the creator's signal mask. Blocking the asynchronous
 * signals before pthread_create leaves no window in which a SIGTERM could
 * land on a pool thread: they all go to the loop thread. Fault signals
 * stay open so that a crash still kills the process. The caller restores
 * *old. */
static void pool_block_signals(sigset_t *old) {
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    sigset_t block;
    sigfillset(&block);
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigdelset(&block, faults[i]);
    pthread_sigmask(SIG_BLOCK, &block, old);
}

/* Starts p->nthreads threads with the asynchronous signals blocked.
 * Returns how many started: fewer than p->nthreads is a failure, said in
 * err, and the caller joins those that did. */
static int pool_start_threads(jq_pool_t *p, char *err, size_t errlen) {
    sigset_t old;
    int started = 0;
    pool_block_signals(&old);
    for (; started < p->nthreads; started++) {
        pool_thread_arg_t *a = malloc(sizeof *a);
        if (a == NULL) {
            snprintf(err, errlen, "pool: out of memory");
            break;
        }
        a->p = p;
        a->idx = started;
        int rc = pthread_create(&p->threads[started], NULL, pool_thread_main, a);
        if (rc != 0) {
            snprintf(err, errlen, "pool: pthread_create: %s", strerror(rc));
            free(a);
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return started;
}

int jq_pool_init(jq_pool_t *p, uv_loop_t *loop, int n, char *err, size_t errlen) {
    int started = 0, rc;

    memset(p, 0, sizeof *p);
    if (n < 1) {
        snprintf(err, errlen, "pool: need at least one thread, got %d", n);
        return -1;
    }
    p->loop = loop;
    p->mode = jq_pool_policy_mode();
    p->nthreads = p->mode == JQ_POOL_THREADS ? n : 0;
    p->nrunning = p->mode == JQ_POOL_UV ? POOL_UV_SLOTS : p->mode == JQ_POOL_INLINE ? 1 : n;
    if (pool_init_sync(p, err, errlen) != 0) return -1;
    p->threads = calloc((size_t)n, sizeof *p->threads);
    p->running = calloc((size_t)p->nrunning, sizeof *p->running);
    if (p->threads == NULL || p->running == NULL) {
        snprintf(err, errlen, "pool: out of memory");
        goto err;
    }
    if ((started = pool_start_threads(p, err, errlen)) < p->nthreads) goto err;
    /* Last, so that a failure above leaves nothing in the loop to close. */
    rc = uv_async_init(loop, &p->async, pool_on_async);
    if (rc != 0) {
        snprintf(err, errlen, "pool: uv_async_init: %s", uv_strerror(rc));
        goto err;
    }
    p->async.data = p;
    return 0;

err:
    pool_join_threads(p, started);
    free(p->threads);
    free(p->running);
    p->threads = NULL;
    p->running = NULL;
    p->nthreads = 0;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    return -1;
}

/* uv mode: hands the item to libuv, which cannot refuse a well-formed
 * request; should it ever, the item still runs, on the loop. */
static void pool_submit_uv(jq_pool_t *p, jq_pool_item_t *item) {
    pthread_mutex_lock(&p->mu);
    int stopping = p->stopping;
    if (!stopping) {
        p->backlog++;
        p->inflight++;
    }
    pthread_mutex_unlock(&p->mu);
    if (stopping) return;
    item->uvreq.data = item;
    if (uv_queue_work(p->loop, &item->uvreq, pool_on_uv_work, pool_on_uv_after) != 0) {
        pool_on_uv_work(&item->uvreq);
        pool_on_uv_after(&item->uvreq, 0);
    }
}

void jq_pool_submit(jq_pool_t *p, jq_pool_item_t *item) {
    item->next = NULL;
    item->started_ms = 0;
    item->pool = p;
    if (p->mode == JQ_POOL_UV) {
        pool_submit_uv(p, item);
        return;
    }
    pthread_mutex_lock(&p->mu);
    /* After close nothing would ever take it: drop it, as close drops the
     * queue, rather than leave it dangling in a dead list. */
    if (!p->stopping) {
        if (p->queued_tail)
            p->queued_tail->next = item;
        else
            p->queued_head = item;
        p->queued_tail = item;
        p->backlog++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    /* Inline: the loop runs it from the async callback, never inside
     * submit, so the caller is not re-entered by its done. */
    if (p->mode == JQ_POOL_INLINE) uv_async_send(&p->async);
}

size_t jq_pool_backlog(jq_pool_t *p) {
    pthread_mutex_lock(&p->mu);
    size_t n = p->backlog;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int jq_pool_busy(jq_pool_t *p) {
    pthread_mutex_lock(&p->mu);
    int n = p->busy;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int64_t jq_pool_oldest_start(jq_pool_t *p) {
    int64_t oldest = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nrunning; i++) {
        jq_pool_item_t *it = p->running[i];
        if (it != NULL && (oldest == 0 || it->started_ms < oldest)) oldest = it->started_ms;
    }
    pthread_mutex_unlock(&p->mu);
    return oldest;
}

void jq_pool_close(jq_pool_t *p, jq_pool_closed_cb closed_cb) {
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->stopping = 1;
    p->closed_cb = closed_cb;
    p->queued_head = p->queued_tail = NULL;
    p->backlog = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);

    for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);

    pthread_mutex_lock(&p->mu);
    free(p->threads);
    p->threads = NULL;
    p->nthreads = 0;
    /* uv mode: items still with libuv use their running slots until they
     * end, so the slots go with the pool. */
    if (p->mode != JQ_POOL_UV) {
        free(p->running);
        p->running = NULL;
        p->nrunning = 0;
    }
    pthread_mutex_unlock(&p->mu);

    /* The done callbacks of finished items and the close run from the loop,
     * never inside this call, so a caller may close the pool from anywhere
     * on the loop thread without being re-entered. */
    uv_async_send(&p->async);
}
