#ifndef JQ_RESOLVE_H
#define JQ_RESOLVE_H

/* A redis+sentinel:// connection's question to the sentinels, off the
 * loop: common/sentinel.c's resolution is blocking (each sentinel bounded
 * by JQ_SENTINEL_TIMEOUT_MS), so it runs on libuv's threadpool and its
 * answer comes back to the loop. It runs once per (re)connect, never per
 * command: rare, and the loop never waits for it. */

#include <uv.h>

#include "tls.h"
#include "url.h"

typedef struct jq_resolve jq_resolve_t;
typedef void (*jq_resolve_cb)(jq_resolve_t *r);

struct jq_resolve {
    uv_work_t work;
    const jq_url_t *url; /* borrowed; read by the thread, never written */
    jq_tls_t *tls;       /* borrowed: rediss+sentinel://'s settings, or NULL */
    int busy;            /* a resolution is running: the owner waits for
                            its callback before freeing this */
    int next;            /* the sentinel to ask first; after a success, the
                            one that answered */
    int rc;              /* 0, JQ_SENTINEL_DOWN or JQ_SENTINEL_REFUSED */
    jq_url_addr_t addr;  /* with rc 0: the master's address */
    char err[512];       /* otherwise: each sentinel and what it said */
    jq_resolve_cb cb;
    void *data; /* the owner's */
};

/* Asks r->url's sentinels on loop's threadpool; cb(r) runs on the loop
 * with r->rc and r->addr or r->err, also after jq_resolve_cancel. Returns
 * 0, or a libuv error (then cb never runs). */
int jq_resolve_start(jq_resolve_t *r, uv_loop_t *loop, jq_resolve_cb cb);

/* Cancels a resolution not started yet (its callback still runs, with
 * rc JQ_SENTINEL_DOWN); one already running finishes within its
 * timeouts. */
void jq_resolve_cancel(jq_resolve_t *r);

#endif
