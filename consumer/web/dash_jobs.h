#ifndef JQ_DASH_JOBS_H
#define JQ_DASH_JOBS_H

/* The dashboard's pages of every job of a queue (issue 27) and its cancel
 * button (issue 26), behind dash_api.c: the same libjobq calls as `jobq
 * jobs list`, `jobq jobs show` and `jobq cancel` (PROTOCOL §5b, §11), so
 * that page and CLI always agree. Every read is one bounded page:
 *
 *   GET  queues/<q>/jobs?state=S&count=N&cursor=C   one page of jobs in S
 *   GET  queues/<q>/jobs/<id>                      one job, wherever it is
 *   POST queues/<q>/jobs/<id>/cancel               (token checked by dash.c)
 *
 * Paths arrive as dash_api.h's segments, names already checked; answers
 * are appended to out (caller-owned) and the HTTP status returned. */

#include <msgpack.h>

#include "jobq/jobq.h"

int jq_dash_jobs_list(jq_client_t *c, const char *queue, const char *query, msgpack_sbuffer *out);
int jq_dash_jobs_show(jq_client_t *c, const char *queue, const char *id, msgpack_sbuffer *out);
int jq_dash_jobs_cancel(jq_client_t *c, const char *queue, const char *id, msgpack_sbuffer *out);

#endif
