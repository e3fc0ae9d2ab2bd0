/* The dashboard served from the master: see dashsrv.h. */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "dashsrv.h"
#include "log.h"

void jq_dashsrv_close(jq_dashsrv_t *s);

/* One request on its way through the thread. What the thread reads is
 * copied here on the loop: the httpd request itself is the loop's. */
typedef struct item {
    jq_http_req_t *req;
    char method[16];
    char target[JQ_HTTPD_MAX_URL + 2];
    char *auth; /* owned copy, wiped when freed */
    size_t body_len;
    jq_dash_resp_t resp; /* filled by the thread */
    struct item *next;
} item_t;

struct jq_dashsrv {
    uv_loop_t *loop;
    uv_async_t async; /* the thread's "answers are ready" */
    jq_dash_t *dash;  /* touched by the thread only, once started */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    item_t *waiting, *waiting_tail; /* for the thread (under lock) */
    item_t *done;                   /* for the loop (under lock) */
    int queued;                     /* items in waiting and being handled */
    int stopping;
};

static void free_item(item_t *it) {
    if (it->auth) {
        memset(it->auth, 0, strlen(it->auth));
        free(it->auth);
    }
    jq_dash_resp_destroy(&it->resp);
    free(it);
}

/* Sends a dashboard response through httpd, with the security headers. */
static void send_resp(jq_http_req_t *req, const jq_dash_resp_t *r) {
    for (int i = 0; jq_dash_headers[i][0]; i++)
        jq_httpd_add_header(req, jq_dash_headers[i][0], jq_dash_headers[i][1]);
    if (r->allow) jq_httpd_add_header(req, "Allow", r->allow);
    jq_httpd_respond(req, r->status, r->content_type, r->body, r->body_len);
}

static void *thread_main(void *arg) {
    jq_dashsrv_t *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->waiting && !s->stopping) pthread_cond_wait(&s->wake, &s->lock);
        if (!s->waiting) break; /* stopping, nothing left */
        item_t *it = s->waiting;
        s->waiting = it->next;
        if (!s->waiting) s->waiting_tail = NULL;
        pthread_mutex_unlock(&s->lock);
        jq_dash_req_t rq = {it->method, it->target, it->auth, it->body_len};
        jq_dash_handle(s->dash, &rq, &it->resp);
        pthread_mutex_lock(&s->lock);
        it->next = s->done;
        s->done = it;
        uv_async_send(&s->async);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* On the loop: answers whatever the thread finished. */
static void on_answers_ready(uv_async_t *a) {
    jq_dashsrv_t *s = a->data;
    pthread_mutex_lock(&s->lock);
    item_t *list = s->done;
    s->done = NULL;
    for (item_t *it = list; it; it = it->next) s->queued--;
    pthread_mutex_unlock(&s->lock);
    while (list) {
        item_t *it = list;
        list = it->next;
        send_resp(it->req, &it->resp);
        free_item(it);
    }
}

static void answer_now(jq_http_req_t *req, int status, const char *msg) {
    jq_dash_resp_t r;
    memset(&r, 0, sizeof(r));
    r.status = status;
    r.content_type = "application/json; charset=utf-8";
    char body[160];
    snprintf(body, sizeof(body), "{\"error\":\"%s\"}", msg);
    r.body = body;
    r.body_len = strlen(body);
    send_resp(req, &r);
}

/* Builds the target (path and query) httpd split for us. */
static void target_of(jq_http_req_t *req, char *buf, size_t cap) {
    const char *q = jq_httpd_query(req);
    snprintf(buf, cap, "%s%s%s", jq_httpd_path(req), *q ? "?" : "", q);
}

static void on_request(jq_http_req_t *req, void *data) {
    jq_dashsrv_t *s = data;
    char target[JQ_HTTPD_MAX_URL + 2];
    target_of(req, target, sizeof(target));
    size_t body_len = 0;
    jq_httpd_body(req, &body_len);
    const char *method = jq_httpd_method(req);
    if (!strcmp(method, "HEAD")) method = "GET"; /* httpd drops the body */
    if (!jq_dash_needs_redis(target)) {
        /* The page's files: constant data, answered on the loop. */
        jq_dash_req_t rq = {method, target, NULL, body_len};
        jq_dash_resp_t r;
        jq_dash_handle(s->dash, &rq, &r);
        send_resp(req, &r);
        jq_dash_resp_destroy(&r);
        return;
    }
    item_t *it = calloc(1, sizeof(*it));
    const char *auth = jq_httpd_header(req, "Authorization");
    if (!it || (auth && !(it->auth = strdup(auth)))) {
        if (it) free_item(it);
        answer_now(req, 500, "out of memory");
        return;
    }
    it->req = req;
    snprintf(it->method, sizeof(it->method), "%s", method);
    snprintf(it->target, sizeof(it->target), "%s", target);
    it->body_len = body_len;
    pthread_mutex_lock(&s->lock);
    int full = s->queued >= JQ_DASHSRV_QUEUE || s->stopping;
    if (!full) {
        s->queued++;
        if (s->waiting_tail)
            s->waiting_tail->next = it;
        else
            s->waiting = it;
        s->waiting_tail = it;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    if (full) {
        free_item(it);
        answer_now(req, 503, "the dashboard is busy; try again");
    }
}

static void on_async_closed(uv_handle_t *h);

jq_dashsrv_t *jq_dashsrv_new(uv_loop_t *loop, jq_httpd_t *http, const char *redis_url,
                             const jq_client_tls_t *tls, const char *prefix, const char *token,
                             long long heartbeat_ms, char *err, size_t errlen) {
    jq_dashsrv_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    if (!(s->dash = jq_dash_new(redis_url, tls, prefix, token, heartbeat_ms, err, errlen))) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    int rc = uv_async_init(loop, &s->async, on_answers_ready);
    if (rc != 0) {
        snprintf(err, errlen, "uv_async_init: %s", uv_strerror(rc));
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        jq_dash_free(s->dash);
        free(s);
        return NULL;
    }
    s->async.data = s;
    /* The thread takes no signals: they are the loop's (uv_signal_t), and
     * one landing in a blocking Redis read would only interrupt it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&s->thread, NULL, thread_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the dashboard's thread: %s", strerror(rc));
        uv_close((uv_handle_t *)&s->async, on_async_closed); /* frees s */
        return NULL;
    }
    if (jq_httpd_route(http, "GET", "/", on_request, s) < 0 ||
        jq_httpd_route(http, "GET", "/api/", on_request, s) < 0 ||
        jq_httpd_route(http, "POST", "/api/", on_request, s) < 0) {
        snprintf(err, errlen, "the HTTP server's route table is full");
        jq_dashsrv_close(s);
        return NULL;
    }
    return s;
}

static void on_async_closed(uv_handle_t *h) {
    jq_dashsrv_t *s = h->data;
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    jq_dash_free(s->dash);
    free(s);
}

void jq_dashsrv_close(jq_dashsrv_t *s) {
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    item_t *left = s->waiting;
    s->waiting = s->waiting_tail = NULL;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    while (left) {
        item_t *it = left;
        left = it->next;
        answer_now(it->req, 503, "the consumer is shutting down");
        free_item(it);
    }
    on_answers_ready(&s->async); /* what the thread finished last */
    uv_close((uv_handle_t *)&s->async, on_async_closed);
}
