/* The dashboard's handler (dash.c, dash_api.c) against a throwaway
 * redis-server: files, methods, the admin token, escaping of job data,
 * paging, and actions checked in Redis with plain commands. Responses are
 * parsed back with json-c. */

#define _GNU_SOURCE /* memmem */
#include <json-c/json.h>
#include <time.h>

#include "dash.h"
#include "redis_fixture.h"

TestSuite(dash, .init = start_redis, .fini = stop_redis);

#define TOKEN "0123456789abcdef-secret"

static jq_dash_resp_t resp;

static jq_dash_t *dash(const char *token) {
    jq_dash_t *d = jq_dash_new(redis_url, NULL, "t", token, 1000, err, sizeof(err));
    cr_assert(d, "%s", err);
    return d;
}

/* Sends one request; the response stays in `resp` until the next call. */
static int req(jq_dash_t *d, const char *method, const char *target, const char *auth) {
    jq_dash_resp_destroy(&resp);
    jq_dash_req_t r = {method, target, auth, 0};
    jq_dash_handle(d, &r, &resp);
    return resp.status;
}

/* The response body parsed as JSON (the caller puts it). */
static json_object *body(void) {
    char *text = strndup(resp.body, resp.body_len);
    json_object *o = json_tokener_parse(text);
    cr_assert(o, "not JSON: %s", text);
    free(text);
    return o;
}

static const char *jstr(json_object *o, const char *k) {
    json_object *v;
    cr_assert(json_object_object_get_ex(o, k, &v), "no %s", k);
    return json_object_get_string(v);
}

static long long jint(json_object *o, const char *k) {
    json_object *v;
    cr_assert(json_object_object_get_ex(o, k, &v), "no %s", k);
    return json_object_get_int64(v);
}

static int has(const char *needle) {
    return memmem(resp.body, resp.body_len, needle, strlen(needle)) != NULL;
}

Test(dash, serves_the_page_without_inline_script) {
    jq_dash_t *d = dash(NULL);
    cr_assert_eq(req(d, "GET", "/", NULL), 200);
    cr_assert_str_eq(resp.content_type, "text/html; charset=utf-8");
    cr_assert(has("<script src=\"/app.js\""));
    /* Every script element loads a file: nothing inline. */
    for (const char *p = resp.body;
         (p = memmem(p, resp.body_len - (size_t)(p - resp.body), "<script", 7)); p++)
        cr_assert(!strncmp(p, "<script src=", 12), "inline script at %.40s", p);
    cr_assert_eq(req(d, "GET", "/app.js?v=1", NULL), 200);
    cr_assert_str_eq(resp.content_type, "text/javascript; charset=utf-8");
    cr_assert(!has("innerHTML"), "the page never parses data as HTML");
    cr_assert_eq(req(d, "GET", "/app.css", NULL), 200);
    cr_assert_eq(req(d, "GET", "/favicon.svg", NULL), 200);
    cr_assert_eq(req(d, "GET", "/etc/passwd", NULL), 404);
    cr_assert_eq(req(d, "GET", "/../app.js", NULL), 404);
    int csp = 0;
    for (int i = 0; jq_dash_headers[i][0]; i++)
        if (!strcmp(jq_dash_headers[i][0], "Content-Security-Policy")) {
            csp = 1;
            cr_assert(strstr(jq_dash_headers[i][1], "script-src 'self'"));
            cr_assert_null(strstr(jq_dash_headers[i][1], "unsafe-inline"));
        }
    cr_assert(csp);
    jq_dash_free(d);
}

/* A request and the answer it must get: its status and, for a 405, the
 * Allow header. */
typedef struct {
    const char *method, *target, *auth;
    int status;
    const char *allow;
} answer_t;

static void expect(jq_dash_t *d, const answer_t *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(req(d, a[i].method, a[i].target, a[i].auth), a[i].status, "%s %s: %d",
                     a[i].method, a[i].target, resp.status);
        if (a[i].allow) cr_assert_str_eq(resp.allow, a[i].allow, "%s %s", a[i].method, a[i].target);
    }
}

#define AUTH "Bearer " TOKEN

Test(dash, bad_methods_and_targets) {
    jq_dash_t *d = dash(TOKEN);
    static const answer_t answers[] = {
        /* An action path read with GET (docs/API.md: 405 with Allow), and
         * a read posted to, even with the token: the method is checked
         * first. retry-all is both an action and a job id: GET reads the
         * job. */
        {"DELETE", "/api/overview", NULL, 405, "GET"},
        {"GET", "/api/queues/q/pause", NULL, 405, "POST"},
        {"GET", "/api/queues/q/dead/x1/retry", NULL, 405, "POST"},
        {"DELETE", "/api/queues/q/dead/x1/delete", NULL, 405, "POST"},
        {"POST", "/api/overview", AUTH, 405, "GET"},
        {"POST", "/api/queues/q/dead/x1", AUTH, 405, "GET"},
        {"GET", "/api/queues/q/dead/retry-all", NULL, 404, NULL},
        {"PUT", "/api/queues/q/dead/retry-all", NULL, 405, "GET, POST"},
        {"POST", "/api/nothing", AUTH, 404, NULL},
        {"POST", "/", NULL, 405, "GET"},
        /* Targets and names. */
        {"GET", "nope", NULL, 400, NULL},
        {"GET", "/api/nothing", NULL, 404, NULL},
        {"GET", "/api/queues//dead", NULL, 404, NULL},
        {"GET", "/api/queues/a%20b/dead", NULL, 400, NULL},
        {"GET", "/api/queues/q/dead?count=0", NULL, 400, NULL},
        {"GET", "/api/queues/q/dead?count=501", NULL, 400, NULL},
        {"GET", "/api/queues/q/dead/nosuch", NULL, 404, NULL},
        /* The pages of every job (dash_jobs.h): reads, and cancel an
         * action. */
        {"GET", "/api/queues/q/jobs/x1/cancel", NULL, 405, "POST"},
        {"POST", "/api/queues/q/jobs/x1", AUTH, 405, "GET"},
        {"POST", "/api/queues/q/jobs/x1/cancel", NULL, 401, NULL},
        {"GET", "/api/queues/q/jobs/x1/frob", NULL, 404, NULL},
        {"GET", "/api/queues/q/jobs?state=lost", NULL, 400, NULL},
        {"GET", "/api/queues/q/jobs?cursor=0-0x", NULL, 400, NULL},
        {"GET", "/api/queues/q/jobs?state=dead&cursor=1-0", NULL, 400, NULL},
        {"GET", "/api/queues/q/jobs?state=done&count=0", NULL, 400, NULL},
        {"GET", "/api/queues/q/jobs?state=ready", NULL, 200, NULL},
        {"GET", "/api/queues/q/jobs/nosuch", NULL, 404, NULL},
    };
    expect(d, answers, sizeof(answers) / sizeof(answers[0]));
    char longt[JQ_DASH_TARGET_MAX + 10];
    memset(longt, 'a', sizeof(longt));
    longt[0] = '/';
    longt[sizeof(longt) - 1] = '\0';
    cr_assert_eq(req(d, "GET", longt, NULL), 414);
    cr_assert_eq(req(d, "GET", "/api/queues/q/dead?start=x", NULL), 400);
    json_object *o = body();
    cr_assert(strstr(jstr(o, "error"), "start"), "%s", jstr(o, "error"));
    json_object_put(o);
    jq_dash_free(d);
}

Test(dash, read_only_without_token_refuses_actions) {
    jq_dash_t *d = dash(NULL);
    cr_assert(jq_dash_read_only(d));
    cr_assert_eq(req(d, "POST", "/api/queues/q/pause", "Bearer " TOKEN), 403);
    json_object *o = body();
    cr_assert(strstr(jstr(o, "error"), "--admin-token"), "%s", jstr(o, "error"));
    json_object_put(o);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{q}:paused"), 0);
    cr_assert_eq(req(d, "GET", "/api/overview", NULL), 200);
    o = body();
    cr_assert(json_object_get_boolean(json_object_object_get(o, "read_only")));
    json_object_put(o);
    jq_dash_free(d);
    cr_assert_null(jq_dash_new(redis_url, NULL, "t", "short", 1000, err, sizeof(err)));
    cr_assert(strstr(err, "at least"), "%s", err);
}

Test(dash, actions_need_the_token_in_a_header) {
    jq_dash_t *d = dash(TOKEN);
    cr_assert_not(jq_dash_read_only(d));
    cr_assert_eq(req(d, "POST", "/api/queues/q/pause", NULL), 401);
    cr_assert_eq(req(d, "POST", "/api/queues/q/pause", "Bearer " TOKEN "x"), 401);
    cr_assert_eq(req(d, "POST", "/api/queues/q/pause", "Bearer 0123456789abcdef-secreT"), 401);
    cr_assert_eq(req(d, "POST", "/api/queues/q/pause", TOKEN), 401);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{q}:paused"), 0);
    cr_assert_eq(req(d, "POST", "/api/queues/q/pause", "bearer " TOKEN), 200);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{q}:paused"), 1);
    cr_assert_eq(req(d, "POST", "/api/queues/q/resume", "Bearer " TOKEN), 200);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{q}:paused"), 0);
    cr_assert_eq(req(d, "POST", "/api/queues/q/explode", "Bearer " TOKEN), 404);
    jq_dash_free(d);
}

static void make_dead(const char *id, long long at, const char *error) {
    char score[32];
    snprintf(score, sizeof(score), "%lld", at);
    freeReplyObject(cmd("HSET t:{q}:job:%s type fail attempt 3 error %s", id, error));
    freeReplyObject(cmd("ZADD t:{q}:dead %s %s", score, id));
    freeReplyObject(cmd("SADD t:queues q"));
}

Test(dash, job_data_comes_back_escaped) {
    jq_dash_t *d = dash(NULL);
    make_dead("x1", 1000, "<script>alert(1)</script> & more");
    freeReplyObject(cmd("HSET t:{q}:job:x1 payload %b", "\xa5<img>", (size_t)6));
    cr_assert_eq(req(d, "GET", "/api/queues/q/dead", NULL), 200);
    cr_assert_str_eq(resp.content_type, "application/json; charset=utf-8");
    cr_assert(!memchr(resp.body, '<', resp.body_len), "raw '<' in %.*s", (int)resp.body_len,
              resp.body);
    cr_assert(!memchr(resp.body, '&', resp.body_len));
    cr_assert(has("\\u003cscript\\u003e"));
    json_object *o = body();
    json_object *job = json_object_array_get_idx(json_object_object_get(o, "jobs"), 0);
    cr_assert_str_eq(jstr(job, "error"), "<script>alert(1)</script> & more");
    json_object_put(o);
    cr_assert_eq(req(d, "GET", "/api/queues/q/dead/x1", NULL), 200);
    cr_assert(!memchr(resp.body, '<', resp.body_len));
    o = body();
    json_object *pl = json_object_object_get(o, "payload");
    cr_assert_str_eq(jstr(pl, "kind"), "json");
    cr_assert_str_eq(jstr(pl, "text"), "\"<img>\"");
    cr_assert_eq(jint(o, "died_at"), 1000);
    cr_assert_eq(jint(o, "attempt"), 3);
    json_object_put(o);
    jq_dash_free(d);
}

Test(dash, dead_pages_newest_first_retry_and_delete) {
    jq_dash_t *d = dash(TOKEN);
    for (int i = 1; i <= 7; i++) {
        char id[16];
        snprintf(id, sizeof(id), "d%d", i);
        make_dead(id, 1000 * i, "oops");
    }
    cr_assert_eq(req(d, "GET", "/api/queues/q/dead?start=2&count=3", NULL), 200);
    json_object *o = body();
    cr_assert_eq(jint(o, "total"), 7);
    cr_assert_eq(jint(o, "start"), 2);
    json_object *jobs = json_object_object_get(o, "jobs");
    cr_assert_eq(json_object_array_length(jobs), 3);
    cr_assert_str_eq(jstr(json_object_array_get_idx(jobs, 0), "id"), "d5");
    cr_assert_eq(jint(json_object_array_get_idx(jobs, 0), "died_at"), 5000);
    cr_assert_eq(jint(json_object_array_get_idx(jobs, 0), "attempts"), 3);
    json_object_put(o);

    cr_assert_eq(req(d, "POST", "/api/queues/q/dead/d5/retry", "Bearer " TOKEN), 200);
    cr_assert_eq(cmd_int("ZSCORE t:{q}:scheduled %s", "d5"), 0);
    cr_assert_eq(cmd_int("HGET t:{q}:job:d5 %s", "attempt"), 0);
    cr_assert_eq(req(d, "POST", "/api/queues/q/dead/d5/retry", "Bearer " TOKEN), 404);
    cr_assert_eq(req(d, "POST", "/api/queues/q/dead/d6/delete", "Bearer " TOKEN), 200);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{q}:job:d6"), 0);

    cr_assert_eq(req(d, "GET", "/api/queues/q/scheduled", NULL), 200);
    o = body();
    cr_assert_eq(jint(o, "total"), 1);
    cr_assert_str_eq(jstr(json_object_array_get_idx(json_object_object_get(o, "jobs"), 0), "id"),
                     "d5");
    cr_assert_eq(jint(json_object_array_get_idx(json_object_object_get(o, "jobs"), 0), "due_at"),
                 0);
    json_object_put(o);

    cr_assert_eq(req(d, "POST", "/api/queues/q/dead/retry-all", "Bearer " TOKEN), 200);
    o = body();
    cr_assert_eq(jint(o, "count"), 5);
    json_object_put(o);
    cr_assert_eq(cmd_int("ZCARD %s", "t:{q}:dead"), 0);
    cr_assert_eq(cmd_int("ZCARD %s", "t:{q}:scheduled"), 6);
    jq_dash_free(d);
}

Test(dash, overview_and_history_count_what_is_there) {
    jq_dash_t *d = dash(NULL);
    make_dead("a", 1, "x");
    freeReplyObject(cmd("XADD t:{q}:stream * type noop"));
    freeReplyObject(cmd("XADD t:{q}:stream * type noop"));
    freeReplyObject(cmd("ZADD t:{q}:scheduled 99999999999999 s1"));
    freeReplyObject(cmd("HSET t:{q}:stats processed 12 failed 2"));
    freeReplyObject(cmd("SADD t:queues bad%%name"));
    cr_assert_eq(req(d, "GET", "/api/overview", NULL), 200);
    json_object *o = body();
    cr_assert_eq(jint(o, "heartbeat_ms"), 1000);
    json_object *qs = json_object_object_get(json_object_object_get(o, "stats"), "queues");
    cr_assert_eq(json_object_array_length(qs), 1, "a member that cannot name keys is skipped");
    json_object *q = json_object_array_get_idx(qs, 0);
    cr_assert_str_eq(jstr(q, "queue"), "q");
    cr_assert_eq(jint(q, "ready"), 2);
    cr_assert_eq(jint(q, "dead"), 1);
    cr_assert_eq(jint(q, "scheduled"), 1);
    cr_assert_eq(jint(q, "processed"), 12);
    json_object_put(o);

    long long minute = (long long)time(NULL) / 60;
    char key[64];
    snprintf(key, sizeof(key), "t:{q}:stats:%lld", minute);
    freeReplyObject(cmd("HSET %s processed 5 failed 1", key));
    cr_assert_eq(req(d, "GET", "/api/history?minutes=3", NULL), 200);
    o = body();
    json_object *h = json_object_object_get(json_object_object_get(o, "queues"), "q");
    json_object *p = json_object_object_get(h, "processed");
    cr_assert_eq(json_object_array_length(p), 3);
    /* The current minute is last (unless the minute turned meanwhile). */
    long long last = json_object_get_int64(json_object_array_get_idx(p, 2));
    long long before = json_object_get_int64(json_object_array_get_idx(p, 1));
    cr_assert(last == 5 || before == 5, "%s", json_object_to_json_string(h));
    json_object_put(o);
    cr_assert_eq(req(d, "GET", "/api/history?minutes=121", NULL), 400);
    jq_dash_free(d);
}

Test(dash, redis_down_is_503_and_recovers) {
    jq_dash_t *d = jq_dash_new("redis://127.0.0.1:1", NULL, "t", NULL, 1000, err, sizeof(err));
    cr_assert(d);
    cr_assert_eq(req(d, "GET", "/api/overview", NULL), 503);
    json_object *o = body();
    cr_assert(strstr(jstr(o, "error"), "redis"), "%s", jstr(o, "error"));
    json_object_put(o);
    cr_assert_eq(req(d, "GET", "/", NULL), 200, "the page needs no Redis");
    jq_dash_free(d);
    jq_dash_resp_destroy(&resp);
}
