/* Cancellation in the worker: runs held and checked before their start,
 * running ones checked and stopped, the sweep. See cancel.h. */

#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "cancel_lua.h"
#include "log.h"

void jq_cancel_init(jq_cancel_t *c, const jq_stage_env_t *env, const jq_cancel_borrow_t *b) {
    memset(c, 0, sizeof(*c));
    c->env = *env;
    c->b = *b;
    jq_args_init(&c->args);
}

void jq_cancel_destroy(jq_cancel_t *c) { jq_args_destroy(&c->args); }

int jq_cancel_busy(const jq_cancel_t *c) { return (int)c->vetting.n + c->out; }

static void say_error(jq_cancel_t *c, const char *what, const char *err) {
    int64_t now = jq_now_ms();
    if (now - c->last_error_ms < 60000) return;
    c->last_error_ms = now;
    jq_error("cancel requests: %s: %s", what, err);
}

/* The request key of queue q, added to a. */
static void add_key(jq_cancel_t *c, jq_args_t *a, int q) {
    char key[JQ_KEY_MAX];
    int n = jq_key(key, sizeof(key), c->env.opt->prefix, c->env.queues[q].name, "cancel");
    jq_args_dup(a, key, n < 0 ? 0 : (size_t)n); /* a copy: key dies here */
}

/* ---- runs held before their start ---- */

typedef struct vet {
    jq_cancel_t *c;
    int n;
    jq_run_t *runs[];
} vet_t;

/* r never started: its outcome is `cancelled`, without an attempt. */
static void cancelled_unstarted(jq_cancel_t *c, jq_run_t *r) {
    r->cancel = 1;
    r->outcome = JQ_OUT_CANCELLED;
    r->started_ms = 0;
    r->finished_ms = jq_now_ms();
    snprintf(r->error, sizeof(r->error), "%s", JQ_CANCELLED);
    jq_finish_add(c->b.finish, r);
}

static void on_check(uv_check_t *h);

/* The held runs are checked at the end of this loop turn. */
static void start_check(jq_cancel_t *c) {
    if (!uv_is_active((uv_handle_t *)&c->check) && !uv_is_closing((uv_handle_t *)&c->check))
        uv_check_start(&c->check, on_check);
}

static void on_vetted(redisAsyncContext *ac, void *rp, void *priv) {
    vet_t *v = priv;
    jq_cancel_t *c = v->c;
    redisReply *reply = rp;
    c->out--;
    int ok = reply && reply->type == REDIS_REPLY_ARRAY && (int)reply->elements == v->n;
    if (reply && reply->type == REDIS_REPLY_ERROR) say_error(c, "check before start", reply->str);
    for (int i = 0; i < v->n; i++) {
        jq_run_t *r = v->runs[i];
        if (*c->env.stopping) {
            jq_run_free(r); /* its entry stays pending */
        } else if (!reply) {
            /* Lost with the connection: checked again once it is back. */
            jq_runlist_push(&c->vetting, r);
            start_check(c);
        } else if (ok && reply->element[i]->type != REDIS_REPLY_NIL) {
            cancelled_unstarted(c, r);
        } else {
            /* Not cancelled; or the check failed (a key of another type
             * under <p>:{q}:cancel): a job is not held back for it. */
            c->b.start(c->env.worker, r);
        }
    }
    free(v);
    if (*c->env.stopping) return;
    c->env.kick(c->env.worker);
    c->env.maybe_exit(c->env.worker);
}

/* One ZMSCORE for the held runs of queue q, taken out of the list. */
static void send_vet(jq_cancel_t *c, int q, int n) {
    vet_t *v = malloc(sizeof(*v) + (size_t)n * sizeof(jq_run_t *));
    if (!v) return; /* kept held: tried again next turn */
    v->c = c;
    v->n = 0;
    jq_args_t *a = &c->args;
    jq_args_reset(a);
    jq_args_str(a, "ZMSCORE");
    add_key(c, a, q);
    for (jq_run_t *r = c->vetting.head, *next; r; r = next) {
        next = r->next;
        if (r->q != q) continue;
        jq_runlist_remove(&c->vetting, r);
        v->runs[v->n++] = r;
        jq_args_str(a, r->job.id);
    }
    if (jq_rconn_args(c->env.conn, a, on_vetted, v) != 0) {
        for (int i = 0; i < v->n; i++) jq_runlist_push(&c->vetting, v->runs[i]);
        free(v);
    } else {
        c->out++;
    }
    jq_args_reset(a);
}

static void on_check(uv_check_t *h) {
    jq_cancel_t *c = h->data;
    if (!c->vetting.n || !c->env.conn->up) {
        /* Nothing held, or Redis away: the connection's return (or a new
         * run) starts the check again. */
        if (!c->vetting.n) uv_check_stop(h);
        return;
    }
    int per_q[JQ_QUEUES_MAX] = {0};
    for (jq_run_t *r = c->vetting.head; r; r = r->next) per_q[r->q]++;
    for (int q = 0; q < *c->env.nqueues; q++)
        if (per_q[q]) send_vet(c, q, per_q[q]);
}

int jq_cancel_start(jq_cancel_t *c, uv_loop_t *loop) {
    int rc = uv_check_init(loop, &c->check);
    c->check.data = c;
    return rc;
}

int jq_cancel_vet(jq_cancel_t *c, jq_run_t *r) {
    if (c->env.queues[r->q].cancels == 0) return 0;
    jq_runlist_push(&c->vetting, r);
    start_check(c);
    return 1;
}

void jq_cancel_drop(jq_cancel_t *c) {
    for (jq_run_t *r = c->vetting.head, *next; r; r = next) {
        next = r->next;
        jq_runlist_remove(&c->vetting, r);
        jq_run_free(r);
    }
}

/* ---- running jobs checked ---- */

typedef struct probe {
    jq_cancel_t *c;
    int q, n;
    char ids[][JQ_NAME_MAX_BUF];
} probe_t;

static jq_run_t *find_run(jq_runlist_t *l, int q, const char *id) {
    for (jq_run_t *r = l->head; r; r = r->next)
        if (r->q == q && !r->cancel && strcmp(r->job.id, id) == 0) return r;
    return NULL;
}

static void on_probed(redisAsyncContext *ac, void *rp, void *priv) {
    probe_t *p = priv;
    jq_cancel_t *c = p->c;
    redisReply *reply = rp;
    c->probing[p->q] = 0;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        say_error(c, "check of running jobs", reply->str);
    if (reply && !*c->env.stopping && reply->type == REDIS_REPLY_ARRAY &&
        (int)reply->elements == p->n) {
        for (int i = 0; i < p->n; i++) {
            if (reply->element[i]->type == REDIS_REPLY_NIL) continue;
            jq_run_t *r = find_run(c->b.running, p->q, p->ids[i]);
            if (!r) r = find_run(c->b.waiting, p->q, p->ids[i]);
            if (r) {
                jq_info("job %s cancelled: stopping it", r->job.id);
                c->b.stop(c->env.worker, r);
            }
        }
    }
    free(p);
}

static int count_runs(const jq_runlist_t *l, int q) {
    int n = 0;
    for (const jq_run_t *r = l->head; r; r = r->next) n += r->q == q && !r->cancel;
    return n;
}

static void add_ids(probe_t *p, jq_args_t *a, const jq_runlist_t *l, int max) {
    for (const jq_run_t *r = l->head; r && p->n < max; r = r->next) {
        if (r->q != p->q || r->cancel) continue;
        snprintf(p->ids[p->n++], JQ_NAME_MAX_BUF, "%s", r->job.id);
        jq_args_str(a, r->job.id);
    }
}

static void probe_running(jq_cancel_t *c, int q) {
    int n = count_runs(c->b.running, q) + count_runs(c->b.waiting, q);
    if (!n || c->probing[q]) return;
    probe_t *p = malloc(sizeof(*p) + (size_t)n * JQ_NAME_MAX_BUF);
    if (!p) return;
    p->c = c;
    p->q = q;
    p->n = 0;
    jq_args_t *a = &c->args;
    jq_args_reset(a);
    jq_args_str(a, "ZMSCORE");
    add_key(c, a, q);
    add_ids(p, a, c->b.running, n);
    add_ids(p, a, c->b.waiting, n);
    if (jq_rconn_args(c->env.conn, a, on_probed, p) != 0)
        free(p);
    else
        c->probing[q] = 1;
    jq_args_reset(a);
}

/* ---- the sweep ---- */

static void on_swept(redisAsyncContext *ac, void *rp, void *priv) {
    jq_cancel_t *c = priv;
    redisReply *reply = rp;
    if (reply && reply->type == REDIS_REPLY_ERROR) say_error(c, "sweep", reply->str);
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 4 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer > 0)
        jq_info("cancelled %lld scheduled jobs", reply->element[0]->integer);
}

static void sweep(jq_cancel_t *c, int q) {
    char base[JQ_KEY_MAX], k[JQ_KEY_MAX];
    const char *qn = c->env.queues[q].name;
    snprintf(base, sizeof(base), "%s:{%s}:", c->env.opt->prefix, qn);
    jq_args_t *a = &c->args;
    jq_args_reset(a);
    jq_args_str(a, "EVAL");
    jq_args_str(a, jq_cancel_lua);
    jq_args_str(a, "4");
    static const char *const keys[] = {"cancel", "scheduled", "dead", "stream"};
    for (int i = 0; i < 4; i++) {
        int n = jq_key(k, sizeof(k), c->env.opt->prefix, qn, keys[i]);
        jq_args_dup(a, k, n < 0 ? 0 : (size_t)n);
    }
    jq_args_str(a, base);
    jq_args_str(a, "sweep");
    jq_args_str(a, c->env.worker_id);
    jq_args_ll(a, JQ_CANCEL_MAX_AGE_MS);
    jq_rconn_args(c->env.conn, a, on_swept, c);
    jq_args_reset(a);
}

void jq_cancel_learned(jq_cancel_t *c, int q, int any, int64_t now) {
    if (!any || *c->env.stopping) return;
    probe_running(c, q);
    if (now - c->last_sweep_ms[q] >= JQ_CANCEL_SWEEP_MS) {
        c->last_sweep_ms[q] = now;
        sweep(c, q);
    }
}
