#ifndef JQ_DASH_API_H
#define JQ_DASH_API_H

/* The JSON API of the dashboard (docs/API.md), behind dash.c: each call
 * answers one request under /api/ through a libjobq client, blocking on
 * Redis, and reads and writes exactly what the `jobq` command does, so an
 * action follows PROTOCOL §4/§5 the same way. Authentication is dash.c's:
 * by the time jq_dash_api_post runs, the action is allowed.
 *
 * `seg` are the path's segments after "/api/" (nseg of them, each a
 * NUL-terminated string the caller owns); `query` is the text after '?'
 * or NULL. The answer (a JSON object, or {"error": "..."} for a status
 * >= 400) is appended to `out`, which the caller owns. Returns the HTTP
 * status. */

#include <stddef.h>
#include <msgpack.h>

#include "jobq/jobq.h"

#define JQ_DASH_PAGE_MAX 500 /* jobs per page at most */
#define JQ_DASH_PAGE_DEFAULT 50
#define JQ_DASH_TEXT_MAX 65536 /* bytes of a payload's JSON shown */
#define JQ_DASH_ERROR_MAX 1000 /* bytes of an error message in a listing */

/* What the overview tells the page beside the figures. */
typedef struct jq_dash_info {
    int read_only;          /* no admin token: actions are refused */
    long long heartbeat_ms; /* the workers' heartbeat period */
} jq_dash_info_t;

/* The methods a path answers to, from its shape alone (names are checked
 * later): JQ_DASH_API_GET for the reads, JQ_DASH_API_POST for the
 * actions, both for queues/<q>/dead/retry-all (also the dead job of that
 * id), 0 for no such path. So that a wrong method gets 405 with the Allow
 * header that names the right one, rather than 404. */
#define JQ_DASH_API_GET 1
#define JQ_DASH_API_POST 2
int jq_dash_api_methods(char **seg, int nseg);

int jq_dash_api_get(jq_client_t *c, char **seg, int nseg, const char *query,
                    const jq_dash_info_t *info, msgpack_sbuffer *out);
int jq_dash_api_post(jq_client_t *c, char **seg, int nseg, msgpack_sbuffer *out);

/* Appends {"error": msg} to out and returns status: for the answers that
 * dash.c itself gives. */
int jq_dash_api_error(msgpack_sbuffer *out, int status, const char *msg);

#endif
