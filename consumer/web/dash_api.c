/* The dashboard's JSON API: see dash_api.h and docs/API.md. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "dash_api.h"
#include "dash_jobs.h"
#include "dash_json.h"
#include "job.h"
#include "jobq/watch.h"
#include "keys.h"
#include "view.h"

#define HISTORY_DEFAULT 30 /* minutes */
#define HISTORY_MAX 120

int jq_dash_api_error(msgpack_sbuffer *out, int status, const char *msg) {
    jw_t w = {out, 0};
    lit(&w, "{");
    cstr(&w, "error", msg, 1);
    lit(&w, "}");
    return status;
}

int jq_dash_api_methods(char **seg, int nseg) {
    if (nseg == 1)
        return !strcmp(seg[0], "overview") || !strcmp(seg[0], "history") ? JQ_DASH_API_GET : 0;
    if (nseg < 3 || strcmp(seg[0], "queues")) return 0;
    const char *what = seg[nseg - 1];
    int dead = !strcmp(seg[2], "dead");
    if (!strcmp(seg[2], "jobs")) /* dash_jobs.h */
        return nseg <= 4                              ? JQ_DASH_API_GET
               : nseg == 5 && !strcmp(what, "cancel") ? JQ_DASH_API_POST
                                                      : 0;
    if (nseg == 3 && (dead || !strcmp(what, "scheduled"))) return JQ_DASH_API_GET;
    if (nseg == 3 && (!strcmp(what, "pause") || !strcmp(what, "resume"))) return JQ_DASH_API_POST;
    if (nseg == 4 && dead)
        return JQ_DASH_API_GET | (!strcmp(what, "retry-all") ? JQ_DASH_API_POST : 0);
    if (nseg == 5 && dead && (!strcmp(what, "retry") || !strcmp(what, "delete")))
        return JQ_DASH_API_POST;
    return 0;
}

/* ---- GET ---- */

/* Running jobs listed per queue on the overview. */
#define DASH_RUNNING 20

/* GET overview: read-only or not, the heartbeat period (a worker silent
 * for three is stale), and the watch snapshot exactly as `jobq stats
 * --json` prints it (docs/CLI.md), so that page, CLI and /metrics agree,
 * with each queue's running jobs (up to 20) and their progress. */
static int get_overview(jq_client_t *c, const jq_dash_info_t *info, msgpack_sbuffer *out) {
    char err[JQ_ERR_LEN];
    jq_watch_t wt;
    char *text = NULL;
    size_t len = 0;
    int rc = jq_watch_read(c, NULL, &wt, err, sizeof(err));
    if (rc == 0) {
        FILE *f = open_memstream(&text, &len);
        rc = f ? jq_watch_json_running(c, &wt, DASH_RUNNING, f, err, sizeof(err)) : -2;
        if (f && fclose(f) != 0 && rc == 0) rc = -2;
    }
    jq_watch_destroy(&wt);
    if (rc == -1) {
        free(text);
        return redis_error(out, err);
    }
    jw_t w = {out, rc < 0};
    lit(&w, "{");
    num(&w, "now_ms", jq_now_ms(), 1);
    boolean(&w, "read_only", info->read_only, 0);
    num(&w, "heartbeat_ms", info->heartbeat_ms, 0);
    key(&w, "stats", 0);
    while (len > 0 && text[len - 1] == '\n') len--;
    if (text) raw(&w, text, len);
    lit(&w, "}");
    free(text);
    return done(&w);
}

static int get_history(jq_client_t *c, const char *query, msgpack_sbuffer *out) {
    long long minutes;
    if (query_ll(query, "minutes", HISTORY_DEFAULT, 1, HISTORY_MAX, &minutes) < 0)
        return bad_query(out, "minutes", HISTORY_MAX);
    char err[JQ_ERR_LEN];
    char **names;
    size_t n;
    if (jq_client_queues(c, &names, &n, err, sizeof(err)) < 0) return redis_error(out, err);
    long long now = jq_now_ms(), p[HISTORY_MAX], f[HISTORY_MAX];
    jw_t w = {out, 0};
    lit(&w, "{");
    num(&w, "now_ms", now, 1);
    num(&w, "first_minute_ms", (now / 60000 - (minutes - 1)) * 60000, 0);
    key(&w, "queues", 0);
    lit(&w, "{");
    int rc = 0, first = 1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!jq_name_valid(names[i], strlen(names[i]))) continue;
        if ((rc = jq_client_minutes(c, names[i], now, (int)minutes, p, f, err, sizeof(err))) < 0)
            break;
        key(&w, names[i], first);
        first = 0;
        lit(&w, "{");
        nums(&w, "processed", p, minutes, 1);
        nums(&w, "failed", f, minutes, 0);
        lit(&w, "}");
    }
    jq_client_queues_free(names, n);
    if (rc < 0) return redis_error(out, err);
    lit(&w, "}}");
    return done(&w);
}

/* GET queues/<q>/dead and queues/<q>/scheduled: one page, newest death
 * first for the dead set, soonest due first for the scheduled one. */
static int get_set(jq_client_t *c, const char *queue, jq_set_t set, const char *query,
                   msgpack_sbuffer *out) {
    long long start, count;
    if (query_ll(query, "start", 0, 0, 1LL << 40, &start) < 0)
        return bad_query(out, "start", 1LL << 40);
    if (query_ll(query, "count", JQ_DASH_PAGE_DEFAULT, 1, JQ_DASH_PAGE_MAX, &count) < 0)
        return bad_query(out, "count", JQ_DASH_PAGE_MAX);
    jq_set_page_t pg = {set, start, count, set == JQ_SET_DEAD, 1};
    jq_dead_job_t *jobs;
    size_t n;
    long long total;
    char err[JQ_ERR_LEN];
    if (jq_client_set_list(c, queue, &pg, &jobs, &n, &total, err, sizeof(err)) < 0)
        return redis_error(out, err);
    jw_t w = {out, 0};
    lit(&w, "{");
    cstr(&w, "queue", queue, 1);
    num(&w, "total", total, 0);
    num(&w, "start", start, 0);
    key(&w, "jobs", 0);
    lit(&w, "[");
    for (size_t i = 0; i < n; i++) {
        lit(&w, i ? ",{" : "{");
        cstr(&w, "id", jobs[i].id, 1);
        cstr(&w, "type", jobs[i].type, 0);
        cut(&w, "error", jobs[i].error, JQ_DASH_ERROR_MAX, 0);
        if (jobs[i].attempts >= 0)
            num(&w, "attempts", jobs[i].attempts, 0);
        else
            cstr(&w, "attempts", NULL, 0);
        num(&w, set == JQ_SET_DEAD ? "died_at" : "due_at", jobs[i].died_at, 0);
        lit(&w, "}");
    }
    lit(&w, "]}");
    jq_dead_jobs_free(jobs, n);
    return done(&w);
}

/* GET queues/<q>/dead/<id>: the job as `jobq dead show` gives it, but
 * with a bounded payload preview (view.h) in place of the payload. */
static int get_dead_job(jq_client_t *c, const char *queue, const char *id, msgpack_sbuffer *out) {
    static const char *const skip[] = {"id", "queue", "died_at", NULL};
    char err[JQ_ERR_LEN];
    jq_dead_job_t job;
    int rc = jq_client_dead_show(c, queue, id, &job, err, sizeof(err));
    if (rc == JQ_CLIENT_ENOTFOUND) return jq_dash_api_error(out, 404, "no such dead job");
    if (rc < 0) return redis_error(out, err);
    jw_t w = {out, 0};
    lit(&w, "{");
    cstr(&w, "id", job.id, 1);
    cstr(&w, "queue", queue, 0);
    num(&w, "died_at", job.died_at, 0);
    rc = job_body(&w, c, queue, &job, skip, err, sizeof(err));
    lit(&w, "}");
    jq_dead_job_destroy(&job);
    return rc < 0 ? redis_error(out, err) : done(&w);
}

int jq_dash_api_get(jq_client_t *c, char **seg, int nseg, const char *query,
                    const jq_dash_info_t *info, msgpack_sbuffer *out) {
    if (nseg == 1 && !strcmp(seg[0], "overview")) return get_overview(c, info, out);
    if (nseg == 1 && !strcmp(seg[0], "history")) return get_history(c, query, out);
    if (nseg >= 3 && !strcmp(seg[0], "queues")) {
        int bad = bad_names(seg, nseg, out);
        if (bad) return bad;
        if (nseg == 3 && !strcmp(seg[2], "dead"))
            return get_set(c, seg[1], JQ_SET_DEAD, query, out);
        if (nseg == 3 && !strcmp(seg[2], "scheduled"))
            return get_set(c, seg[1], JQ_SET_SCHEDULED, query, out);
        if (nseg == 4 && !strcmp(seg[2], "dead")) return get_dead_job(c, seg[1], seg[3], out);
        if (nseg == 3 && !strcmp(seg[2], "jobs")) return jq_dash_jobs_list(c, seg[1], query, out);
        if (nseg == 4 && !strcmp(seg[2], "jobs")) return jq_dash_jobs_show(c, seg[1], seg[3], out);
    }
    return jq_dash_api_error(out, 404, "no such API path");
}

/* ---- POST: the actions, through the calls the `jobq` command makes ---- */

static int action_done(msgpack_sbuffer *out, const char *action, const char *queue, const char *id,
                       long long count) {
    jw_t w = {out, 0};
    lit(&w, "{\"ok\":true");
    cstr(&w, "action", action, 0);
    cstr(&w, "queue", queue, 0);
    if (id) cstr(&w, "id", id, 0);
    if (count >= 0) num(&w, "count", count, 0);
    lit(&w, "}");
    return done(&w);
}

int jq_dash_api_post(jq_client_t *c, char **seg, int nseg, msgpack_sbuffer *out) {
    if (nseg < 3 || strcmp(seg[0], "queues"))
        return jq_dash_api_error(out, 404, "no such API path");
    const char *q = seg[1], *what = seg[nseg - 1];
    char err[JQ_ERR_LEN];
    int rc = bad_names(seg, nseg, out);
    if (rc) return rc;
    if (nseg == 3 && (!strcmp(what, "pause") || !strcmp(what, "resume"))) {
        int pause = !strcmp(what, "pause");
        rc = pause ? jq_client_pause(c, q, err, sizeof(err))
                   : jq_client_resume(c, q, err, sizeof(err));
        return rc < 0 ? redis_error(out, err) : action_done(out, what, q, NULL, -1);
    }
    if (nseg == 4 && !strcmp(seg[2], "dead") && !strcmp(what, "retry-all")) {
        size_t n = 0;
        rc = jq_client_dead_retry_all(c, q, &n, err, sizeof(err));
        return rc < 0 ? redis_error(out, err) : action_done(out, what, q, NULL, (long long)n);
    }
    if (nseg == 5 && !strcmp(seg[2], "jobs") && !strcmp(what, "cancel"))
        return jq_dash_jobs_cancel(c, q, seg[3], out);
    if (nseg == 5 && !strcmp(seg[2], "dead") &&
        (!strcmp(what, "retry") || !strcmp(what, "delete"))) {
        const char *id = seg[3];
        rc = !strcmp(what, "retry") ? jq_client_dead_retry(c, q, id, err, sizeof(err))
                                    : jq_client_dead_delete(c, q, id, err, sizeof(err));
        if (rc == JQ_CLIENT_ENOTFOUND) return jq_dash_api_error(out, 404, "no such dead job");
        return rc < 0 ? redis_error(out, err) : action_done(out, what, q, id, -1);
    }
    return jq_dash_api_error(out, 404, "no such API path");
}
