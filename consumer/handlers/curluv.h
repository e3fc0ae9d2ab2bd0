#ifndef JQ_CURLUV_H
#define JQ_CURLUV_H

/* libcurl's multi "socket" interface driven by a libuv loop, as curl's
 * multi-uv example does it: curl's sockets are watched with uv_poll, its
 * timeouts with one uv_timer; no thread per transfer.
 *
 * There is one session per process (a worker has one loop): a CURLM and a
 * timer that exist while transfers run and are torn down when the last one
 * is removed, so a stopping worker finds no handle of ours on its loop.
 * Connections are reused within a burst of transfers, not across idle
 * times.
 *
 * The caller owns each easy handle: it adds it, gets one done call when
 * the transfer ends (success or error), and removes it (in the done call
 * or on cancel) before cleaning it up. Removing and adding the same handle
 * inside the done call (to follow a redirect by hand) is allowed. */

#include <uv.h>

#include "curlsym.h"

/* Called once per added handle whose transfer ended, with curl's result. */
typedef void jq_curluv_done_fn(CURL *easy, CURLcode rc);

/* Starts easy's transfer on loop (starting the session if none runs).
 * Returns 0, or -1 (out of memory, or curl refused the handle). */
int jq_curluv_add(uv_loop_t *loop, CURL *easy, jq_curluv_done_fn *done);

/* Takes easy out of its session (ending the session once it is empty and
 * no done call is under way). The caller then cleans easy up. */
void jq_curluv_remove(CURL *easy);

#endif
