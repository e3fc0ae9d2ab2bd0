/* The running jobs of each queue for the watchers (`jobq stats --json`,
 * the dashboard): which entries the group has handed out and not acked
 * (XPENDING of each level's stream, high first), then each one's fields
 * (XRANGE id id) and its result hash's progress (PROTOCOL §14). Three
 * pipelined round trips for all the queues together, each bounded by
 * per_queue entries a queue: nothing scans a stream or the keyspace.
 *
 * An entry is running from its delivery until its ack, so a job whose
 * worker died shows until it is claimed again; one handed back for its
 * type (held by a `type=<T>` consumer, §7) is waiting, not running, and
 * is left out. */

#include <json.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "keys.h"
#include "jobq/watch.h"
#include "watch_int.h"

#define PER_QUEUE_MAX 100
#define LEVELS 3

/* A queue's streams in the order its workers read them (§15). */
static const char *const level_stream[LEVELS] = {"stream:high", "stream", "stream:low"};
static const char *const level_name[LEVELS] = {"high", "normal", "low"};

/* The consumers that hold entries handed back for their type (§7). */
static const char type_consumer[] = "type=";

typedef struct run_row {
    size_t q; /* the snapshot's queue */
    int level;
    char entry[48];
    char worker[320];
    long long deliveries;
    char id[129]; /* the job's id (its `id` field, else the entry id) */
    char type[129];
    int has_id; /* the id may name a result key */
} run_row_t;

/* First round trip: the pending entries of every queue that runs any. */
static void send_pending(jq_pipe_t *p, const jq_watch_t *w, int per_queue, char *err,
                         size_t errlen) {
    for (size_t i = 0; i < w->nqueues; i++) {
        if (w->queues[i].s.running <= 0) continue;
        for (int l = 0; l < LEVELS; l++) {
            jq_args_str(&p->a, "XPENDING");
            jq_args_key(&p->a, p->c, w->queues[i].s.queue, level_stream[l], NULL);
            jq_args_str(&p->a, JQ_GROUP);
            jq_args_str(&p->a, "-");
            jq_args_str(&p->a, "+");
            jq_args_ll(&p->a, per_queue);
            jq_pipe_send(p, err, errlen);
        }
    }
}

/* Rows from one XPENDING reply ([id, consumer, idle, deliveries]...), up
 * to the queue's share. An error (no such stream or group: no level
 * there) is no rows. */
static void take_pending(const redisReply *r, size_t q, int level, int room, run_row_t *rows,
                         size_t *n) {
    for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k < r->elements && room > 0; k++) {
        const redisReply *e = r->element[k];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[1]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= sizeof(rows->entry) ||
            !strncmp(e->element[1]->str, type_consumer, sizeof(type_consumer) - 1))
            continue;
        run_row_t *row = &rows[(*n)++];
        memset(row, 0, sizeof(*row));
        row->q = q;
        row->level = level;
        snprintf(row->entry, sizeof(row->entry), "%s", e->element[0]->str);
        snprintf(row->worker, sizeof(row->worker), "%.*s", (int)e->element[1]->len,
                 e->element[1]->str);
        jq_reply_ll(e->element[3], &row->deliveries);
        room--;
    }
}

/* The entry's id and type from its XRANGE reply; an entry acked and
 * trimmed since the XPENDING has ended: 0. */
static int take_entry(const redisReply *r, run_row_t *row) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2)
        return 0;
    const redisReply *f = r->element[0]->element[1];
    snprintf(row->id, sizeof(row->id), "%s", row->entry);
    for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
        const redisReply *v = f->element[i + 1];
        if (v->type != REDIS_REPLY_STRING) continue;
        if (jq_reply_is(f->element[i], "type"))
            snprintf(row->type, sizeof(row->type), "%.*s", (int)v->len, v->str);
        else if (jq_reply_is(f->element[i], "id") && v->len < sizeof(row->id))
            snprintf(row->id, sizeof(row->id), "%.*s", (int)v->len, v->str);
    }
    /* A foreign producer's id may not name a key (PROTOCOL §1 refuses it). */
    row->has_id = jq_name_valid(row->id, strlen(row->id));
    return 1;
}

static json_object *str_or_null(const redisReply *v) {
    return v->type == REDIS_REPLY_STRING ? json_object_new_string_len(v->str, (int)v->len) : NULL;
}

/* One job's object; h is its result hash's HMGET (state, progress,
 * progress_msg, started_at) or NULL. */
static json_object *job_json(const run_row_t *row, const redisReply *h, long long at) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(row->id));
    json_object_object_add(o, "entry_id", json_object_new_string(row->entry));
    json_object_object_add(o, "type", json_object_new_string(row->type));
    json_object_object_add(o, "priority", json_object_new_string(level_name[row->level]));
    json_object_object_add(o, "worker", json_object_new_string(row->worker));
    json_object_object_add(o, "deliveries", json_object_new_int64(row->deliveries));
    /* An entry id starts with the ms it was added: when it became ready. */
    json_object_object_add(o, "queued_at", json_object_new_int64(strtoll(row->entry, NULL, 10)));
    long long started = 0;
    json_object *progress = NULL, *msg = NULL;
    if (h && h->type == REDIS_REPLY_ARRAY && h->elements == 4) {
        if (h->element[1]->type == REDIS_REPLY_STRING) {
            double f = strtod(h->element[1]->str, NULL);
            progress = json_object_new_double_s(f, h->element[1]->str);
        }
        msg = str_or_null(h->element[2]);
        jq_reply_ll(h->element[3], &started);
    }
    json_object_object_add(o, "started_at", started > 0 ? json_object_new_int64(started) : NULL);
    json_object_object_add(
        o, "elapsed_ms", started > 0 && at >= started ? json_object_new_int64(at - started) : NULL);
    json_object_object_add(o, "progress", progress);
    json_object_object_add(o, "progress_msg", msg);
    return o;
}

/* A result hash already ended (the entry's ack is on its way): not
 * running any more. */
static int ended(const redisReply *h) {
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != 4) return 0;
    const redisReply *s = h->element[0];
    return s->type == REDIS_REPLY_STRING && !jq_reply_is(s, "running");
}

/* Rounds two and three: the entries, then the result hashes of those
 * still there. Adds each row that is still running to its queue's
 * array in arr. */
static int read_rows(jq_client_t *c, const jq_watch_t *w, run_row_t *rows, size_t n,
                     json_object **arr, char *err, size_t errlen) {
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    for (size_t i = 0; i < n; i++) {
        jq_args_str(&p.a, "XRANGE");
        jq_args_key(&p.a, c, w->queues[rows[i].q].s.queue, level_stream[rows[i].level], NULL);
        jq_args_str(&p.a, rows[i].entry);
        jq_args_str(&p.a, rows[i].entry);
        jq_pipe_send(&p, err, errlen);
    }
    char *live = calloc(n ? n : 1, 1);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = jq_pipe_reply(&p, err, errlen);
        if (!r) break;
        if (live) live[i] = (char)take_entry(r, &rows[i]);
        freeReplyObject(r);
    }
    int rc = jq_pipe_end(&p);
    if (!live) {
        jq_seterr(err, errlen, "out of memory");
        return -1;
    }
    jq_pipe_init(&p, c);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!live[i] || !rows[i].has_id) continue;
        jq_args_str(&p.a, "HMGET");
        jq_args_key(&p.a, c, w->queues[rows[i].q].s.queue, "result", rows[i].id);
        jq_args_str(&p.a, "state");
        jq_args_str(&p.a, "progress");
        jq_args_str(&p.a, "progress_msg");
        jq_args_str(&p.a, "started_at");
        jq_pipe_send(&p, err, errlen);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!live[i]) continue;
        redisReply *h = NULL;
        if (rows[i].has_id && !(h = jq_pipe_reply(&p, err, errlen))) break;
        if (!ended(h)) json_object_array_add(arr[rows[i].q], job_json(&rows[i], h, w->at_ms));
        if (h) freeReplyObject(h);
    }
    if (jq_pipe_end(&p) < 0) rc = -1;
    free(live);
    return rc;
}

int jq_watch_add_running(jq_client_t *c, const jq_watch_t *w, json_object *root, int per_queue,
                         char *err, size_t errlen) {
    if (per_queue < 1) per_queue = 1;
    if (per_queue > PER_QUEUE_MAX) per_queue = PER_QUEUE_MAX;
    json_object *qs = NULL;
    if (!json_object_object_get_ex(root, "queues", &qs) ||
        json_object_array_length(qs) != w->nqueues)
        return 0;
    json_object **arr = calloc(w->nqueues ? w->nqueues : 1, sizeof(*arr));
    run_row_t *rows = calloc(w->nqueues ? w->nqueues * (size_t)per_queue : 1, sizeof(*rows));
    if (!arr || !rows) {
        free(arr);
        free(rows);
        jq_seterr(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < w->nqueues; i++) {
        arr[i] = json_object_new_array();
        json_object_object_add(json_object_array_get_idx(qs, i), "running_jobs", arr[i]);
    }
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    send_pending(&p, w, per_queue, err, errlen);
    size_t n = 0;
    for (size_t i = 0; i < w->nqueues && !p.broken; i++) {
        if (w->queues[i].s.running <= 0) continue;
        size_t first = n;
        for (int l = 0; l < LEVELS; l++) {
            redisReply *r = jq_pipe_reply(&p, err, errlen);
            if (!r) break;
            take_pending(r, i, l, per_queue - (int)(n - first), rows, &n);
            freeReplyObject(r);
        }
    }
    int rc = jq_pipe_end(&p);
    if (rc == 0) rc = read_rows(c, w, rows, n, arr, err, errlen);
    free(arr);
    free(rows);
    return rc;
}

int jq_watch_json_running(jq_client_t *c, const jq_watch_t *w, int per_queue, FILE *out, char *err,
                          size_t errlen) {
    json_object *root = jq_watch_to_json(w);
    if (jq_watch_add_running(c, w, root, per_queue, err, errlen) < 0) {
        json_object_put(root);
        return -1;
    }
    return jq_watch_print_json(root, out) < 0 ? -2 : 0;
}
