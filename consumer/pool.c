/* The worker's CPU thread pool (see pool.h): N pthreads share one mutex, a
 * condition variable and a FIFO of items; finished items go on a done list
 * that the loop thread drains when the uv_async_t wakes it. */

/* pthread_setname_np is a GNU extension. */
#define _GNU_SOURCE
#include "pool.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

/* What a thread needs to know at birth; it frees this itself. */
typedef struct pool_thread_arg {
    jq_pool_t *p;
    int idx;
} pool_thread_arg_t;

static void *pool_thread_main(void *arg) {
    pool_thread_arg_t *a = arg;
    jq_pool_t *p = a->p;
    int idx = a->idx;
    free(a);

    char name[16];
    snprintf(name, sizeof name, "jq-cpu-%d", idx);
    pthread_setname_np(pthread_self(), name);

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && p->queued_head == NULL)
            pthread_cond_wait(&p->cv, &p->mu);
        /* On stop the queue was already emptied by jq_pool_close; leave
         * without looking at it again. */
        if (p->stopping)
            break;

        jq_pool_item_t *it = p->queued_head;
        p->queued_head = it->next;
        if (p->queued_head == NULL)
            p->queued_tail = NULL;
        it->next = NULL;
        p->backlog--;
        p->busy++;
        it->started_ms = jq_now_ms();
        p->running[idx] = it;
        pthread_mutex_unlock(&p->mu);

        it->work(it);

        pthread_mutex_lock(&p->mu);
        p->running[idx] = NULL;
        p->busy--;
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
        if (was_empty)
            uv_async_send(&p->async);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_on_close(uv_handle_t *h) {
    jq_pool_t *p = h->data;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    /* closed_cb may free p: it is the last thing that touches it. */
    if (p->closed_cb)
        p->closed_cb(p);
}

/* Loop thread: runs the done callbacks of everything finished so far, in
 * completion order. After jq_pool_close the threads are gone, so the last
 * wakeup also closes the handle. */
static void pool_on_async(uv_async_t *a) {
    jq_pool_t *p = a->data;

    pthread_mutex_lock(&p->mu);
    jq_pool_item_t *it = p->done_head;
    p->done_head = p->done_tail = NULL;
    int stopping = p->stopping;
    pthread_mutex_unlock(&p->mu);

    while (it != NULL) {
        /* done may free the item (and reuse it for a new submit). */
        jq_pool_item_t *next = it->next;
        it->next = NULL;
        it->done(it);
        it = next;
    }

    if (stopping && !uv_is_closing((uv_handle_t *)&p->async))
        uv_close((uv_handle_t *)&p->async, pool_on_close);
}

/* Stops and joins threads [0, n) of a pool whose async handle is not yet
 * initialised (the failure path of jq_pool_init). */
static void pool_join_threads(jq_pool_t *p, int n) {
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < n; i++)
        pthread_join(p->threads[i], NULL);
}

int jq_pool_init(jq_pool_t *p, uv_loop_t *loop, int n, char *err,
                 size_t errlen) {
    int started = 0, rc;

    memset(p, 0, sizeof *p);
    if (n < 1) {
        snprintf(err, errlen, "pool: need at least one thread, got %d", n);
        return -1;
    }
    p->loop = loop;
    p->nthreads = n;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        snprintf(err, errlen, "pool: pthread_mutex_init failed");
        return -1;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        snprintf(err, errlen, "pool: pthread_cond_init failed");
        pthread_mutex_destroy(&p->mu);
        return -1;
    }
    p->threads = calloc((size_t)n, sizeof *p->threads);
    p->running = calloc((size_t)n, sizeof *p->running);
    if (p->threads == NULL || p->running == NULL) {
        snprintf(err, errlen, "pool: out of memory");
        goto err;
    }

    /* Threads inherit the creator's signal mask. Blocking the asynchronous
     * signals here, before pthread_create, leaves no window in which a
     * SIGTERM could land on a pool thread: they all go to the loop thread.
     * Fault signals stay open so that a crash still kills the process. */
    sigset_t block, old;
    sigfillset(&block);
    sigdelset(&block, SIGSEGV);
    sigdelset(&block, SIGBUS);
    sigdelset(&block, SIGFPE);
    sigdelset(&block, SIGILL);
    sigdelset(&block, SIGABRT);
    sigdelset(&block, SIGTRAP);
    sigdelset(&block, SIGSYS);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (; started < n; started++) {
        pool_thread_arg_t *a = malloc(sizeof *a);
        if (a == NULL) {
            snprintf(err, errlen, "pool: out of memory");
            break;
        }
        a->p = p;
        a->idx = started;
        rc = pthread_create(&p->threads[started], NULL, pool_thread_main, a);
        if (rc != 0) {
            snprintf(err, errlen, "pool: pthread_create: %s", strerror(rc));
            free(a);
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started < n)
        goto err;

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

void jq_pool_submit(jq_pool_t *p, jq_pool_item_t *item) {
    item->next = NULL;
    item->started_ms = 0;
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
    for (int i = 0; i < p->nthreads; i++) {
        jq_pool_item_t *it = p->running[i];
        if (it != NULL && (oldest == 0 || it->started_ms < oldest))
            oldest = it->started_ms;
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

    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);

    pthread_mutex_lock(&p->mu);
    free(p->threads);
    free(p->running);
    p->threads = NULL;
    p->running = NULL;
    p->nthreads = 0;
    pthread_mutex_unlock(&p->mu);

    /* The done callbacks of finished items and the close run from the loop,
     * never inside this call, so a caller may close the pool from anywhere
     * on the loop thread without being re-entered. */
    uv_async_send(&p->async);
}
