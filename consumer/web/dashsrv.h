#ifndef JQ_DASHSRV_H
#define JQ_DASHSRV_H

/* The dashboard on the master's HTTP server (httpd.h): registers "/" (the
 * page's files, answered at once on the loop) and "/api/" (answered by
 * dash.c on a thread of its own, because libjobq blocks on Redis and the
 * master's loop must never wait for Redis). Requests wait for that thread
 * in a queue of at most JQ_DASHSRV_QUEUE; one more is answered 503 at
 * once. The thread's answer is handed back to the loop with a uv_async_t.
 *
 * Ownership: the jq_dashsrv_t belongs to the master; jq_dashsrv_close()
 * answers what is still queued with 503, joins the thread (which may wait
 * for a Redis call in flight, bounded by libjobq's timeouts), and frees the
 * server once its async handle is closed. Close it before the httpd. */

#include <uv.h>

#include "httpd.h"
#include "jobq/jobq.h" /* jq_client_tls_t */

#define JQ_DASHSRV_QUEUE 16

typedef struct jq_dashsrv jq_dashsrv_t;

/* Starts the thread and adds the routes to http. The other arguments are
 * jq_dash_new()'s. Returns NULL with err. */
jq_dashsrv_t *jq_dashsrv_new(uv_loop_t *loop, jq_httpd_t *http, const char *redis_url,
                             const jq_client_tls_t *tls, const char *prefix, const char *token,
                             long long heartbeat_ms, char *err, size_t errlen);

void jq_dashsrv_close(jq_dashsrv_t *s);

#endif
