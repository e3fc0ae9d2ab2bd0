/* Attempts: a run started on the loop (io) or on the pool (cpu), its end
 * recorded and handed to finish, and the timeouts that end it early. See
 * attempt.h. */

#include <stdio.h>

#include "attempt.h"
#include "cancel_lua.h"
#include "log.h"
#include "worker.h"

/* ---- starting and ending attempts ---- */

static void end_attempt(jq_worker_t *w, jq_run_t *r);

static void on_io_done(jq_task_t *t) {
    jq_run_t *r = t->owner;
    if (r->state != JQ_RUN_RUNNING) return;
    end_attempt(r->w, r);
}

/* Wall-clock ms at monotonic time ns: the wall clock read at most every
 * 100 ms plus the monotonic time since, so that a run's start reads one
 * clock, not two (each read is ~1% of a noop job's CPU). It can be up to a
 * millisecond early, and a step of the wall clock shows within 100 ms. */
static int64_t run_wall_ms(jq_worker_t *w, uint64_t ns) {
    if (!w->wall_at_ns || ns - w->wall_at_ns > 100 * 1000000ULL) {
        w->wall_at_ns = ns;
        w->wall_ms = jq_now_ms();
    }
    return w->wall_ms + (int64_t)((ns - w->wall_at_ns) / 1000000);
}

static void start_io(jq_worker_t *w, jq_run_t *r) {
    r->state = JQ_RUN_RUNNING;
    r->started_ns = uv_hrtime();
    r->started_ms = run_wall_ms(w, r->started_ns);
    r->task.deadline_ms = r->started_ms + r->job.timeout_ms;
    w->busy_io++;
    jq_runlist_push(&w->running, r);
    r->task.done_cb = on_io_done;
    if (r->h->start(&r->task) != 0) {
        if (!r->task.failed) jq_task_fail(&r->task, "%s: failed to start", r->h->name);
        end_attempt(w, r);
    }
}

static void cpu_work(jq_pool_item_t *item) {
    jq_run_t *r = item->data;
    /* Cancelled while it waited for a thread: it never runs. */
    if (jq_task_cancelled(&r->task)) return;
    r->h->run(&r->task);
}

static void on_cpu_done(jq_pool_item_t *item) {
    jq_run_t *r = item->data;
    jq_worker_t *w = r->w;
    w->busy_cpu--;
    if (r->state == JQ_RUN_ABANDONED) {
        /* Its outcome (a timeout) was written already. */
        jq_runlist_remove(&w->abandoned, r);
        if (r->keep == 2)
            jq_run_free(r);
        else
            r->keep = 0;
        jq_fetch_kick(&w->fetch);
        jq_worker_maybe_exit(w);
        return;
    }
    r->started_ms = item->started_ms;
    end_attempt(w, r);
}

/* jq_task_progress(), any thread (progress.h). */
static void on_progress(jq_task_t *t, double fraction, const char *msg) {
    jq_run_t *r = t->owner;
    jq_progress_report(&r->w->progress, r, fraction, msg);
}

void jq_attempt_start(jq_worker_t *w, jq_run_t *r) {
    r->w = w;
    msgpack_sbuffer_init(&r->task.result);
    r->task.payload = &r->payload;
    r->task.loop = &w->loop;
    r->task.owner = r;
    r->task.handler = r->h;
    r->task.job_id = r->job.id;
    r->task.queue = w->queues[r->q].name;
    r->task.attempt = r->job.attempt + 1;
    r->task.yield_cb = r->h->kind == JQ_KIND_CPU ? jq_pool_yield_point : NULL;
    r->task.progress_cb = on_progress;
    if (r->h->kind == JQ_KIND_CPU) {
        r->state = JQ_RUN_RUNNING;
        r->started_ns = uv_hrtime();
        r->task.deadline_ms = run_wall_ms(w, r->started_ns) + r->job.timeout_ms;
        w->busy_cpu++;
        jq_runlist_push(&w->running, r);
        r->item.work = cpu_work;
        r->item.done = on_cpu_done;
        r->item.data = r;
        jq_pool_submit(&w->pool, &r->item);
    } else if (w->busy_io < w->opt->io_concurrency) {
        start_io(w, r);
    } else {
        r->state = JQ_RUN_WAITING;
        jq_runlist_push(&w->waiting, r);
    }
}

#define RETRY_AFTER_MAX_MS 3600000

/* The handler said "retry after T" (handler.h): the retry's delay, and
 * the queue not read by this worker meanwhile (the others learn it from
 * the backoff key the outcome sets, limit.h). */
static void retry_after(jq_worker_t *w, jq_run_t *r) {
    long long ms = r->task.retry_after_ms;
    if (ms < 1) ms = 1;
    if (ms > RETRY_AFTER_MAX_MS) ms = RETRY_AFTER_MAX_MS;
    r->retry_after_ms = ms;
    jq_limit_slow(&w->limit, r->q, r->finished_ms + ms);
}

/* jq_task_result_payload: the result is the payload's bytes, borrowed
 * (r->res_is_praw; the payload then stays to jq_run_free), or where they were not
 * kept (run.h: praw) the payload packed again into task.result. */
static int pass_payload(jq_run_t *r) {
    r->task.result.size = 0;
    if (r->praw) {
        r->res_is_praw = 1;
        return 0;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &r->task.result, msgpack_sbuffer_write);
    if (msgpack_pack_object(&pk, r->payload) != 0) {
        r->outcome = JQ_OUT_FAILED;
        snprintf(r->error, sizeof(r->error), "out of memory copying the payload into the result");
        return -1;
    }
    return 0;
}

static void record_end(jq_worker_t *w, jq_run_t *r) {
    if (r->h && r->h->kind == JQ_KIND_CPU && r->item.started_ms) {
        r->finished_ms = jq_now_ms();
        r->run_us = (r->finished_ms - r->item.started_ms) * 1000;
    } else {
        /* The end's wall time is the start's plus the monotonic run time:
         * one clock read per end, not two (each is ~1% of a noop job's
         * CPU), and never earlier than the start if the clock steps. */
        uint64_t ns = uv_hrtime() - r->started_ns;
        r->run_us = (long long)(ns / 1000);
        r->finished_ms = r->started_ms ? r->started_ms + (int64_t)(ns / 1000000) : jq_now_ms();
    }
    if (r->cancel) {
        /* Whatever the handler said: its job is cancelled. */
        r->outcome = JQ_OUT_CANCELLED;
        snprintf(r->error, sizeof(r->error), "%s", JQ_CANCELLED);
    } else if (r->task.failed) {
        r->outcome = JQ_OUT_FAILED;
        r->permanent = r->task.failed == JQ_TASK_FAILED_PERMANENT;
        snprintf(r->error, sizeof(r->error), "%s", r->task.error);
        w->failed++;
        if (r->task.failed == JQ_TASK_RETRY_AFTER) retry_after(w, r);
    } else {
        r->outcome = JQ_OUT_DONE;
        /* A payload that could not be copied fails its attempt: counted
         * as the failure the outcome will write, not as processed. */
        if (r->task.result_is_payload && pass_payload(r) < 0)
            w->failed++;
        else
            w->processed++;
    }
    w->jobs_done++;
}

static void end_attempt(jq_worker_t *w, jq_run_t *r) {
    jq_runlist_remove(&w->running, r);
    if (r->h->kind == JQ_KIND_IO) w->busy_io--;
    record_end(w, r);
    jq_finish_add(&w->finish, r);
    while (w->waiting.head && w->busy_io < w->opt->io_concurrency) {
        jq_run_t *n = w->waiting.head;
        jq_runlist_remove(&w->waiting, n);
        start_io(w, n);
    }
    if (w->opt->max_jobs && w->jobs_done >= w->opt->max_jobs && !w->draining) {
        jq_worker_tell(w, "recycle max-jobs");
        jq_worker_drain(w, "reached --max-jobs");
    }
    jq_fetch_kick(&w->fetch);
}

/* ---- cancellation (cancel.h) ---- */

void jq_attempt_cancel(jq_worker_t *w, jq_run_t *r) {
    if (r->cancel) return;
    r->cancel = 1;
    if (r->state == JQ_RUN_WAITING) {
        /* Never started: no attempt made. */
        jq_runlist_remove(&w->waiting, r);
        r->outcome = JQ_OUT_CANCELLED;
        r->started_ms = 0;
        r->finished_ms = jq_now_ms();
        snprintf(r->error, sizeof(r->error), "%s", JQ_CANCELLED);
        jq_finish_add(&w->finish, r);
        jq_fetch_kick(&w->fetch);
        return;
    }
    if (r->state != JQ_RUN_RUNNING) return;
    /* Seen by the task's next jq_task_yield() (cpu), or by cpu_work
     * before it starts. */
    __atomic_store_n(&r->task.cancelled, 1, __ATOMIC_RELAXED);
    if (r->h->kind == JQ_KIND_IO) {
        /* After cancel the handler never calls jq_task_done: exec's
         * guard kills the command's whole process group. */
        if (r->h->cancel) r->h->cancel(&r->task);
        end_attempt(w, r);
    }
    /* cpu: ends when run() returns (on_cpu_done). */
}

/* ---- timeouts ---- */

void jq_attempt_timeouts(jq_worker_t *w, int64_t now) {
    jq_run_t *r = w->running.head, *next;
    for (; r; r = next) {
        next = r->next;
        if (r->h->kind == JQ_KIND_IO) {
            if (now - r->started_ms <= r->job.timeout_ms) continue;
            /* After cancel the handler never calls jq_task_done. */
            if (r->h->cancel) r->h->cancel(&r->task);
            jq_task_fail(&r->task, "timeout: attempt ran longer than %lld ms", r->job.timeout_ms);
            end_attempt(w, r);
        } else {
            int64_t s = r->item.started_ms;
            if (!s || now - s <= r->job.timeout_ms) continue;
            /* A thread cannot be cancelled safely: fail the attempt now and
             * let the thread run on; its result is dropped. */
            jq_runlist_remove(&w->running, r);
            jq_runlist_push(&w->abandoned, r);
            r->state = JQ_RUN_ABANDONED;
            r->keep = 1;
            r->started_ms = s;
            jq_task_fail(&r->task, "timeout: attempt ran longer than %lld ms", r->job.timeout_ms);
            r->finished_ms = now;
            r->run_us = (now - s) * 1000;
            r->outcome = r->cancel ? JQ_OUT_CANCELLED : JQ_OUT_FAILED;
            snprintf(r->error, sizeof(r->error), "%s", r->cancel ? JQ_CANCELLED : r->task.error);
            w->failed++;
            jq_finish_add(&w->finish, r);
        }
    }
    /* A cpu thread stuck long past its job's timeout can only be freed by
     * ending the process: ask the master for a replacement, then drain. */
    jq_run_t *a = w->abandoned.head;
    if (a && !w->draining && now - a->item.started_ms > a->job.timeout_ms + w->opt->cpu_grace_ms) {
        jq_warn("cpu job %s stuck %lld ms past its timeout: recycling this worker", a->job.id,
                (long long)(now - a->item.started_ms - a->job.timeout_ms));
        jq_worker_tell(w, "recycle stuck-cpu");
        jq_worker_drain(w, "stuck cpu thread");
    }
}
