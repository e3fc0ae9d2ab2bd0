/* The sentinels asked on libuv's threadpool. See resolve.h. */

#include <stdio.h>

#include "resolve.h"
#include "sentinel.h"

static void run(uv_work_t *w) {
    jq_resolve_t *r = w->data;
    r->rc = jq_sentinel_resolve(r->url, r->tls, JQ_SENTINEL_TIMEOUT_MS, &r->next, &r->addr, r->err,
                                sizeof(r->err));
}

static void done(uv_work_t *w, int status) {
    jq_resolve_t *r = w->data;
    r->busy = 0;
    if (status == UV_ECANCELED) {
        r->rc = JQ_SENTINEL_DOWN;
        snprintf(r->err, sizeof(r->err), "cancelled");
    }
    r->cb(r);
}

int jq_resolve_start(jq_resolve_t *r, uv_loop_t *loop, jq_resolve_cb cb) {
    r->cb = cb;
    r->work.data = r;
    int rc = uv_queue_work(loop, &r->work, run, done);
    if (rc == 0) r->busy = 1;
    return rc;
}

void jq_resolve_cancel(jq_resolve_t *r) {
    if (r->busy) uv_cancel((uv_req_t *)&r->work);
}
