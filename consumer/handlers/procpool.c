/* The pools of handler processes (procpool.h): registration, the jobs
 * waiting for a process, the choice of a process, and the supervision
 * tick. One process's life (spawn, frames, death) is procproc.c's. */

#include "procpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "log.h"
#include "options.h"
#include "procproc.h"

#define TICK_MS 100
#define RSS_EVERY 10 /* ticks: the RSS is read once a second */

jq_procpool_state_t jq_pp;

/* ---- registration ---- */

/* Splits TYPES ("a+b+c", before the '=' of entry) into pool->types. */
static int parse_types(jq_procpool_t *pool, const char *entry, size_t len, char *err,
                       size_t errlen) {
    const char *eq = memchr(entry, '=', len);
    const char *s = entry, *end = eq ? eq : entry + len;
    while (s <= end) {
        const char *plus = memchr(s, '+', (size_t)(end - s));
        const char *e = plus ? plus : end;
        size_t n = (size_t)(e - s);
        if (!jq_name_valid(s, n) || pool->ntypes == JQ_PROCPOOL_TYPES_MAX) {
            snprintf(err, errlen,
                     "--proc '%.*s': bad TYPES (want 1 to %d names of [A-Za-z0-9_.:-] joined by "
                     "'+')",
                     (int)(len > 160 ? 160 : len), entry, JQ_PROCPOOL_TYPES_MAX);
            return -1;
        }
        memcpy(pool->types[pool->ntypes], s, n);
        pool->types[pool->ntypes++][n] = '\0';
        s = e + 1;
    }
    return 0;
}

static int add_pool(jq_registry_t *r, const char *entry, size_t len, char *err, size_t errlen) {
    if (jq_pp.npools == JQ_PROCPOOL_MAX) {
        snprintf(err, errlen, "--proc: at most %d entries", JQ_PROCPOOL_MAX);
        return -1;
    }
    jq_procpool_t *pool = &jq_pp.pools[jq_pp.npools];
    memset(pool, 0, sizeof *pool);
    pool->cmd.conf = &jq_pp.conf;
    pool->cmd.flag = "--proc";
    if (parse_types(pool, entry, len, err, errlen) != 0 ||
        jq_exec_cmd_parse(&pool->cmd, entry, len, err, errlen) != 0)
        return -1;
    jq_pp.npools++;
    r->adding = "--proc";
    for (int i = 0; i < pool->ntypes; i++) {
        jq_handler_t *h = &pool->h[i];
        h->name = pool->types[i];
        h->kind = JQ_KIND_IO;
        h->start = jq_procpool_job_start;
        h->cancel = jq_procpool_job_cancel;
        h->data = pool;
        if (jq_registry_add(r, h, err, errlen) != 0) return -1;
    }
    return 0;
}

int jq_procpool_register(jq_registry_t *r, const jq_options_t *o, char *err, size_t errlen) {
    jq_pp.npools = 0;
    jq_pp.count = (int)o->proc_count;
    jq_pp.max_jobs = o->proc_max_jobs;
    jq_pp.max_rss = o->proc_max_rss_mb * 1024 * 1024;
    /* A reply holds a result as large as a payload may be, and a little
     * around it. */
    jq_pp.max_frame = (size_t)o->max_payload + 65536;
    snprintf(jq_pp.conf.worker_pid, sizeof(jq_pp.conf.worker_pid), "%ld", (long)getpid());
    jq_exec_find_guard(jq_pp.conf.guard, sizeof(jq_pp.conf.guard));
    const char *pos = o->procs, *e;
    size_t n;
    while ((e = jq_opts_list_next(&pos, &n)) != NULL)
        if (add_pool(r, e, n, err, errlen) != 0) return -1;
    return 0;
}

/* ---- jobs ---- */

static void wait_push(jq_procpool_t *pool, jq_procpool_ticket_t *tk) {
    tk->next = NULL;
    if (pool->wait_tail)
        pool->wait_tail->next = tk;
    else
        pool->wait_head = tk;
    pool->wait_tail = tk;
}

static jq_procpool_ticket_t *wait_pop(jq_procpool_t *pool) {
    jq_procpool_ticket_t *tk = pool->wait_head;
    if (tk == NULL) return NULL;
    pool->wait_head = tk->next;
    if (pool->wait_head == NULL) pool->wait_tail = NULL;
    return tk;
}

static void wait_remove(jq_procpool_t *pool, jq_procpool_ticket_t *tk) {
    jq_procpool_ticket_t **pp = &pool->wait_head, *prev = NULL;
    for (; *pp; prev = *pp, pp = &(*pp)->next)
        if (*pp == tk) {
            *pp = tk->next;
            if (pool->wait_tail == tk) pool->wait_tail = prev;
            return;
        }
}

void jq_procpool_dispatch(jq_procpool_t *pool) {
    while (pool->wait_head) {
        jq_procproc_t *best = NULL;
        for (int i = 0; i < jq_pp.count; i++) {
            jq_procproc_t *p = pool->cur[i];
            if (p && p->state == JQ_PROCPROC_READY && p->inflight < p->max_inflight &&
                (!best || p->inflight < best->inflight))
                best = p;
        }
        if (best == NULL) return;
        jq_procproc_send(best, wait_pop(pool));
    }
}

void jq_procpool_fail_waiting(jq_procpool_t *pool, const char *why) {
    jq_procpool_ticket_t *tk;
    while ((tk = wait_pop(pool)) != NULL) {
        jq_task_t *t = tk->t;
        free(tk);
        t->hstate = NULL;
        jq_task_fail(t, "%s: %s", t->handler->name, why);
        jq_task_done(t);
    }
}

int jq_procpool_job_start(jq_task_t *t) {
    jq_procpool_t *pool = t->handler->data;
    if (jq_pp.stopping) return jq_task_fail(t, "%s: the worker is stopping", t->handler->name);
    jq_procpool_ticket_t *tk = calloc(1, sizeof *tk);
    if (tk == NULL) return jq_task_fail(t, "%s: out of memory", t->handler->name);
    tk->t = t;
    t->hstate = tk;
    wait_push(pool, tk);
    jq_procpool_dispatch(pool);
    return 0;
}

void jq_procpool_job_cancel(jq_task_t *t) {
    jq_procpool_ticket_t *tk = t->hstate;
    if (tk == NULL) return;
    t->hstate = NULL;
    tk->t = NULL;
    if (tk->p == NULL) {
        wait_remove(t->handler->data, tk);
        free(tk);
        return;
    }
    jq_procproc_cancel(tk->p, tk);
}

/* ---- supervision ---- */

/* The delay before slot i of pool is started again: 100 ms after the first
 * failure, doubling to 10 s. */
static int64_t backoff_ms(int failures) {
    int64_t ms = 100;
    for (int i = 1; i < failures && ms < 10000; i++) ms *= 2;
    return ms < 10000 ? ms : 10000;
}

void jq_procpool_vacate(jq_procpool_t *pool, int slot, int failed) {
    pool->cur[slot] = NULL;
    if (jq_pp.stopping) return;
    if (failed) {
        pool->failures[slot]++;
        pool->restart_at[slot] = uv_now(jq_pp.loop) + (uint64_t)backoff_ms(pool->failures[slot]);
    } else {
        pool->restart_at[slot] = 0;
        jq_procproc_spawn(pool, slot);
    }
}

int jq_procpool_up(const jq_procpool_t *pool) {
    for (int i = 0; i < jq_pp.count; i++)
        if (pool->cur[i] && pool->cur[i]->state == JQ_PROCPROC_READY) return 1;
    return 0;
}

static void on_tick(uv_timer_t *timer) {
    (void)timer;
    uint64_t now = uv_now(jq_pp.loop);
    int rss = jq_pp.max_rss > 0 && ++jq_pp.ticks % RSS_EVERY == 0;
    jq_procproc_t *p, *next;
    for (p = jq_pp.live; p; p = next) {
        next = p->next;
        jq_procproc_tick(p, now, rss);
    }
    for (int k = 0; k < jq_pp.npools; k++) {
        jq_procpool_t *pool = &jq_pp.pools[k];
        for (int i = 0; i < jq_pp.count; i++)
            if (!pool->cur[i] && pool->restart_at[i] && now >= pool->restart_at[i]) {
                pool->restart_at[i] = 0;
                jq_procproc_spawn(pool, i);
            }
    }
}

int jq_procpool_start(uv_loop_t *loop) {
    if (jq_pp.npools == 0) return 0;
    jq_pp.loop = loop;
    int rc = uv_timer_init(loop, &jq_pp.timer);
    if (rc == 0) rc = uv_timer_start(&jq_pp.timer, on_tick, TICK_MS, TICK_MS);
    if (rc != 0) return rc;
    /* The processes keep the loop alive; the tick alone must not. */
    uv_unref((uv_handle_t *)&jq_pp.timer);
    jq_pp.started = 1;
    for (int k = 0; k < jq_pp.npools; k++)
        for (int i = 0; i < jq_pp.count; i++) jq_procproc_spawn(&jq_pp.pools[k], i);
    return 0;
}

void jq_procpool_stop(void) {
    if (!jq_pp.started || jq_pp.stopping) return;
    jq_pp.stopping = 1;
    uv_close((uv_handle_t *)&jq_pp.timer, NULL);
    for (int k = 0; k < jq_pp.npools; k++)
        jq_procpool_fail_waiting(&jq_pp.pools[k], "the worker is stopping");
    jq_procproc_t *p, *next;
    for (p = jq_pp.live; p; p = next) {
        next = p->next;
        jq_procproc_kill(p, NULL);
    }
}
