/* libcurl's multi socket interface on a libuv loop. See curluv.h. */

#include "curluv.h"

#include <stdlib.h>

typedef struct session {
    CURLM *multi;
    uv_timer_t timer;
    jq_curluv_done_fn *done;
    int active;      /* handles in the multi */
    int dispatching; /* inside check_done: do not end it yet */
} session_t;

static session_t *cur; /* the loop's session, or NULL */

typedef struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    session_t *s;
} sock_t;

static void on_session_closed(uv_handle_t *h) { free(h->data); }

/* Ends the session once nothing runs in it. */
static void session_maybe_end(session_t *s) {
    if (s->active > 0 || s->dispatching || s != cur) return;
    cur = NULL;
    /* Cleanup tells the socket callback to drop every socket left. */
    curl_multi_cleanup(s->multi);
    s->multi = NULL;
    uv_close((uv_handle_t *)&s->timer, on_session_closed);
}

/* Hands each finished transfer to its owner. The owner removes its
 * handle (or re-adds it to follow a redirect) from inside the call, so
 * the session may only end after the last message is read. */
static void check_done(session_t *s) {
    CURLMsg *m;
    int left;
    s->dispatching++;
    while ((m = curl_multi_info_read(s->multi, &left)) != NULL)
        if (m->msg == CURLMSG_DONE) s->done(m->easy_handle, m->data.result);
    s->dispatching--;
    session_maybe_end(s);
}

static void on_sock_closed(uv_handle_t *h) { free(h->data); }

static void on_poll(uv_poll_t *p, int status, int events) {
    sock_t *k = p->data;
    session_t *s = k->s;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(s->multi, k->fd, flags, &running);
    check_done(s);
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp) {
    session_t *s = userp;
    sock_t *k = sockp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (k == NULL) return 0;
        curl_multi_assign(s->multi, fd, NULL);
        int rc = uv_poll_stop(&k->poll);
        uv_close((uv_handle_t *)&k->poll, on_sock_closed);
        return rc == 0 ? 0 : -1;
    }
    if (k == NULL) {
        k = calloc(1, sizeof(*k));
        if (k == NULL) return -1;
        k->fd = fd;
        k->s = s;
        if (uv_poll_init_socket(s->timer.loop, &k->poll, fd) != 0) {
            free(k);
            return -1;
        }
        k->poll.data = k;
        curl_multi_assign(s->multi, fd, k);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
    return uv_poll_start(&k->poll, events, on_poll) == 0 ? 0 : -1;
}

static void on_timer(uv_timer_t *t) {
    session_t *s = t->data;
    int running;
    curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(s);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp) {
    session_t *s = userp;
    (void)m;
    /* Never act from inside curl: a 0 timeout fires on the next turn. A
     * timer we cannot set is told to curl (-1), which then fails every
     * transfer of the session with its own error instead of letting them
     * wait for a call that never comes. */
    int rc;
    if (timeout_ms < 0)
        rc = uv_timer_stop(&s->timer);
    else
        rc = uv_timer_start(&s->timer, on_timer, (uint64_t)timeout_ms, 0);
    return rc == 0 ? 0 : -1;
}

static session_t *session_get(uv_loop_t *loop) {
    if (cur != NULL) return cur;
    session_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return NULL;
    s->multi = curl_multi_init();
    if (s->multi == NULL || uv_timer_init(loop, &s->timer) != 0) {
        if (s->multi) curl_multi_cleanup(s->multi);
        free(s);
        return NULL;
    }
    s->timer.data = s;
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
    cur = s;
    return s;
}

int jq_curluv_add(uv_loop_t *loop, CURL *easy, jq_curluv_done_fn *done) {
    session_t *s = session_get(loop);
    if (s == NULL) return -1;
    if (curl_multi_add_handle(s->multi, easy) != CURLM_OK) {
        session_maybe_end(s);
        return -1;
    }
    s->done = done;
    s->active++;
    return 0;
}

void jq_curluv_remove(CURL *easy) {
    session_t *s = cur;
    if (s == NULL || curl_multi_remove_handle(s->multi, easy) != CURLM_OK) return;
    s->active--;
    session_maybe_end(s);
}
