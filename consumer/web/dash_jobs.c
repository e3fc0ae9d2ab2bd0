/* Browsing and cancelling jobs from the dashboard: see dash_jobs.h and
 * docs/API.md. */

#include <stdlib.h>
#include <string.h>

#include "dash_jobs.h"
#include "dash_json.h"
#include "view.h"

#define CURSOR_MAX 48 /* [level:]<ms>-<seq>, or a position */
#define STATE_MAX 16

typedef enum { ST_READY, ST_RUNNING, ST_SCHEDULED, ST_DONE, ST_DEAD, ST_N } state_t;
static const char *const state_names[ST_N] = {"ready", "running", "scheduled", "done", "dead"};

/* "<digits>-<digits>", after "high:" or "low:" for a job of that
 * priority level (PROTOCOL §15: its own stream): the only cursors ready
 * and running pages take, so that nothing else reaches XRANGE or
 * XPENDING. */
static int cursor_valid(const char *s) {
    if (!strncmp(s, "high:", 5))
        s += 5;
    else if (!strncmp(s, "low:", 4))
        s += 4;
    const char *d = strchr(s, '-');
    if (!d || d == s || !d[1] || strlen(s) > 41) return 0;
    for (const char *p = s; *p; p++)
        if (p != d && (*p < '0' || *p > '9')) return 0;
    return 1;
}

static const char *field(const jq_dead_job_t *j, const char *name) {
    const jq_field_t *f = jq_dead_job_field(j, name);
    return f ? f->value : NULL;
}

/* A field holding a number (idle_ms, deliveries) written as one. */
static void num_field(jw_t *w, const jq_dead_job_t *j, const char *name) {
    long long v;
    const jq_field_t *f = jq_dead_job_field(j, name);
    if (f && jq_parse_ll(f->value, f->value_len, 0, 1LL << 62, &v) == 0)
        num(w, name, v, 0);
    else
        cstr(w, name, NULL, 0);
}

static void row(jw_t *w, state_t st, const jq_dead_job_t *j) {
    lit(w, "{");
    cstr(w, "id", j->id, 1);
    /* A done job's row comes from its result hash: no type, but a state
     * (done, or cancelled for a queue that indexes those too). */
    cstr(w, "type", j->type, 0);
    if (st == ST_DONE) cstr(w, "state", field(j, "state"), 0);
    num(w, "at", j->died_at, 0);
    if (j->attempts >= 0)
        num(w, "attempts", j->attempts, 0);
    else
        cstr(w, "attempts", NULL, 0);
    cut(w, "error", j->error, JQ_DASH_ERROR_MAX, 0);
    if (st == ST_READY || st == ST_RUNNING) {
        cstr(w, "entry_id", field(j, "entry_id"), 0);
        cstr(w, "priority", field(j, "priority"), 0);
    }
    if (st == ST_RUNNING) {
        cstr(w, "consumer", field(j, "consumer"), 0);
        num_field(w, j, "idle_ms");
        num_field(w, j, "deliveries");
    }
    lit(w, "}");
}

static int bad_cursor(msgpack_sbuffer *out, int stream) {
    return jq_dash_api_error(out, 400,
                             stream ? "cursor: want the `next` of the previous page, an entry id "
                                      "such as 1796405124916-0"
                                    : "cursor: want the `next` of the previous page, a position "
                                      "from 0");
}

int jq_dash_jobs_list(jq_client_t *c, const char *queue, const char *query, msgpack_sbuffer *out) {
    char sname[STATE_MAX], cursor[CURSOR_MAX];
    int has = query_str(query, "state", sname, sizeof(sname));
    state_t st = has ? ST_N : ST_READY;
    for (int i = 0; has > 0 && i < ST_N; i++)
        if (!strcmp(sname, state_names[i])) st = (state_t)i;
    if (st == ST_N)
        return jq_dash_api_error(out, 400,
                                 "state: want one of ready, running, scheduled, done, dead");
    long long count, start = 0;
    if (query_ll(query, "count", JQ_DASH_PAGE_DEFAULT, 1, JQ_DASH_PAGE_MAX, &count) < 0)
        return bad_query(out, "count", JQ_DASH_PAGE_MAX);
    int stream = st == ST_READY || st == ST_RUNNING;
    has = query_str(query, "cursor", cursor, sizeof(cursor));
    if (has < 0 || (has && stream && !cursor_valid(cursor)) ||
        (has && !stream && jq_parse_ll(cursor, strlen(cursor), 0, 1LL << 40, &start) < 0))
        return bad_cursor(out, stream);

    char err[JQ_ERR_LEN];
    jq_dead_job_t *jobs = NULL;
    size_t n = 0;
    long long total = -1;
    int rc;
    if (stream) {
        rc = jq_client_stream_list(c, queue, st == ST_RUNNING, has ? cursor : NULL, count, 1, &jobs,
                                   &n, err, sizeof(err));
    } else {
        jq_set_page_t pg = {st == ST_DEAD   ? JQ_SET_DEAD
                            : st == ST_DONE ? JQ_SET_DONE
                                            : JQ_SET_SCHEDULED,
                            start, count, st != ST_SCHEDULED, 1};
        rc = jq_client_set_list(c, queue, &pg, &jobs, &n, &total, err, sizeof(err));
    }
    if (rc < 0) return redis_error(out, err);

    jw_t w = {out, 0};
    lit(&w, "{");
    cstr(&w, "queue", queue, 1);
    cstr(&w, "state", state_names[st], 0);
    /* The next page's cursor: after the last entry (a full page may be
     * followed by an empty one), or the next position while the set holds
     * more. null: this is the last page. */
    char next[CURSOR_MAX + 8] = "";
    if (stream && (long long)n == count) {
        /* A job of another level than normal pages on in its own stream. */
        const char *eid = field(&jobs[n - 1], "entry_id"), *prio = field(&jobs[n - 1], "priority");
        int lv = prio && strcmp(prio, "normal");
        snprintf(next, sizeof(next), "%s%s%s", lv ? prio : "", lv ? ":" : "", eid ? eid : "");
    } else if (!stream && total > start + (long long)n) {
        snprintf(next, sizeof(next), "%lld", start + (long long)n);
    }
    cstr(&w, "next", next[0] ? next : NULL, 0);
    if (stream)
        cstr(&w, "total", NULL, 0); /* a stream page does not count the rest */
    else
        num(&w, "total", total, 0);
    key(&w, "jobs", 0);
    lit(&w, "[");
    for (size_t i = 0; i < n; i++) {
        if (i) lit(&w, ",");
        row(&w, st, &jobs[i]);
    }
    lit(&w, "]}");
    jq_dead_jobs_free(jobs, n);
    return done(&w);
}

int jq_dash_jobs_show(jq_client_t *c, const char *queue, const char *id, msgpack_sbuffer *out) {
    static const char *const skip[] = {"id", "queue", "state", "at", "result", NULL};
    char err[JQ_ERR_LEN];
    jq_job_place_t at;
    jq_dead_job_t job;
    int rc = jq_client_job_show(c, queue, id, &at, &job, err, sizeof(err));
    if (rc < 0) {
        jq_dead_job_destroy(&job);
        return rc == JQ_CLIENT_ENOTFOUND ? jq_dash_api_error(out, 404, "no such job")
                                         : redis_error(out, err);
    }
    const char *st =
        at.where == JQ_WHERE_FINISHED && at.state[0] ? at.state : jq_where_name(at.where);
    const jq_field_t *res = jq_dead_job_field(&job, "result");
    jw_t w = {out, 0};
    lit(&w, "{");
    cstr(&w, "id", job.id, 1);
    cstr(&w, "queue", queue, 0);
    cstr(&w, "state", st, 0);
    num(&w, "at", job.died_at, 0);
    /* Previews, bounded like the dead job's: a page never carries a
     * multi-megabyte payload or result whole. */
    rc = job_body(&w, c, queue, &job, skip, err, sizeof(err));
    if (res) {
        key(&w, "result", 0);
        if (!w.oom && jq_view_payload_preview(out, res->value, res->value_len, res->value_len, 0,
                                              JQ_DASH_TEXT_MAX) < 0)
            w.oom = 1;
    }
    lit(&w, "}");
    jq_dead_job_destroy(&job);
    return rc < 0 ? redis_error(out, err) : done(&w);
}

int jq_dash_jobs_cancel(jq_client_t *c, const char *queue, const char *id, msgpack_sbuffer *out) {
    char err[JQ_ERR_LEN], state[48];
    /* Located first, bounded: jq_client_cancel looks through the whole
     * stream for an id it cannot find otherwise, which on a big queue
     * would hold the dashboard's only thread. jq_client_locate stops after
     * 100,000 entries and then only assumes the job is there. */
    jq_job_place_t at;
    if (jq_client_locate(c, queue, id, &at, err, sizeof(err)) < 0) return redis_error(out, err);
    if (at.where == JQ_WHERE_UNKNOWN) return jq_dash_api_error(out, 404, "no such job");
    if (at.where == JQ_WHERE_READY && !at.entry_id[0])
        return jq_dash_api_error(out, 404,
                                 "no such job among the queue's first 100,000 entries "
                                 "(`jobq cancel` looks through them all)");
    int rc = jq_client_cancel(c, queue, id, state, sizeof(state), err, sizeof(err));
    if (rc == JQ_CLIENT_ENOTFOUND) return jq_dash_api_error(out, 404, "no such job");
    if (rc < 0) return redis_error(out, err);
    /* cancelled (removed at once), requested (a worker stops it), pending
     * (asked before), or ended:<state>. */
    const char *ended = !strncmp(state, "ended:", 6) ? state + 6 : NULL;
    jw_t w = {out, 0};
    lit(&w, "{\"ok\":true");
    cstr(&w, "action", "cancel", 0);
    cstr(&w, "queue", queue, 0);
    cstr(&w, "id", id, 0);
    cstr(&w, "outcome", ended ? "ended" : state, 0);
    cstr(&w, "state", ended ? ended : !strcmp(state, "cancelled") ? "cancelled" : NULL, 0);
    lit(&w, "}");
    return done(&w);
}
