#ifndef JQ_SWITCHSUB_H
#define JQ_SWITCHSUB_H

/* The sentinels' +switch-master, followed: one subscription, on one
 * sentinel of a redis+sentinel:// URL at a time (the next in turn after a
 * loss, with rconn.c's backoff), on the loop, never blocking it.
 *
 * Why: a planned switchover (SENTINEL FAILOVER) kills nothing. The old
 * master says role:master and takes writes for some seconds after the
 * sentinels promoted another, until they make it a replica; a connection
 * that waits for READONLY or UNBLOCKED there runs jobs on a server whose
 * writes are then thrown away. The announcement is the first word of the
 * switch, so each connection moves on it (jq_rconn_switch), within a
 * second, whether a command is in flight or not.
 *
 * The master process holds the one subscription and tells its workers
 * over their control pipes (master.h): one connection per consumer to a
 * sentinel instead of one per worker. */

#include <uv.h>

#include "args.h"
#include "rconn.h"
#include "tls.h"
#include "url.h"

/* A switch of url's master, announced by the sentinel at sentinel. The
 * addresses live during the call. */
typedef void (*jq_switchsub_cb)(void *data, const jq_url_addr_t *sentinel, const jq_url_addr_t *old,
                                const jq_url_addr_t *now);

typedef struct jq_switchsub {
    jq_rconn_t conn; /* to a sentinel (jq_rconn_init_sentinel) */
    jq_args_t args;
    jq_switchsub_cb cb;
    void *data;
    jq_rconn_cb on_closed;
} jq_switchsub_t;

/* Subscribes to url's sentinels (url, tls and s outlive the
 * subscription; url must be redis+sentinel://). cb runs for each
 * +switch-master of url's master name. Returns 0, or -1 (then cb never
 * runs). */
int jq_switchsub_init(jq_switchsub_t *s, uv_loop_t *loop, const jq_url_t *url, jq_tls_t *tls,
                      jq_switchsub_cb cb, void *data);

/* Parses a +switch-master message, "NAME OLDIP OLDPORT NEWIP NEWPORT".
 * Returns 0 with *old and *now when it is name's, else -1. */
int jq_switchsub_parse(const char *msg, const char *name, jq_url_addr_t *old, jq_url_addr_t *now);

/* Ends the subscription; on_closed(&s->conn) runs once all is closed
 * (then s may be freed). */
void jq_switchsub_close(jq_switchsub_t *s, jq_rconn_cb on_closed);

#endif
