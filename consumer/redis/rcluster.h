#ifndef JQ_RCLUSTER_H
#define JQ_RCLUSTER_H

/* The consumer in Redis Cluster mode (redis+cluster://, docs/PROTOCOL.md
 * "Redis Cluster: which keys live where"): a router behind the process's
 * ordinary connections (rconn.h), which stay what the stages send on.
 *
 * A connection attached here (a *front*, connected to one of the URL's
 * seeds in turn) no longer sends a command that names a key itself: the
 * command goes, by its key's slot (common/slot.h, common/slotmap.h), to
 * a connection of the router:
 *  - a write front's commands to the write link of the slot's master (one
 *    per master), a MULTI ... EXEC whole to the master of its first key;
 *  - a read front's commands to the read link of the slot (one per slot:
 *    a blocking XREADGROUP holds its connection, and may only name
 *    streams of one slot), on the slot's master.
 * Commands without a key (PING, CLIENT ID, EVAL with no key) stay on the
 * front; SCRIPT LOAD goes there and to every master, and again to each
 * master its link reaches later (a new one after a failover).
 *
 * MOVED: the slot is taken as the node's, the map read again, and the
 * command (the whole MULTI) sent there again; ASK: sent there once after
 * ASKING; TRYAGAIN and CLUSTERDOWN: sent again after a backoff (20 ms
 * doubling to 640 ms, 16 tries). A link that is down holds what is routed
 * to it until it is up, or until the map names another master for its
 * slot (then it goes there); a link lost, and any wait, makes the map be
 * read again from another node. A command sent again was refused, never
 * run. A reply lost with its link reaches its callback as NULL, as on a
 * plain connection (finish.c then asks what was written).
 *
 * The router lives as long as its process's loop; jq_rcluster_close ends
 * its links and timer. */

#include <uv.h>

#include "rconn.h"
#include "tls.h"
#include "url.h"

typedef struct jq_rcluster jq_rcluster_t;

/* A router for url (url->cluster set), which must outlive it, as tls
 * (rediss+cluster://). NULL when out of memory or the loop refused its
 * timer. */
jq_rcluster_t *jq_rcluster_new(uv_loop_t *loop, const jq_url_t *url, jq_tls_t *tls);

/* Routes front's commands from now on (front initialised, jq_rconn_init,
 * its cap set): read 1 for the blocking read's connection, 0 for a write
 * connection. The links made for it get its bulk cap (jq_rconn_cap) and,
 * for reads, call its on_skipping with front. Returns 0, or -1 when the
 * router holds JQ_RCLUSTER_FRONTS fronts already. */
#define JQ_RCLUSTER_FRONTS 4
int jq_rcluster_attach(jq_rcluster_t *cl, jq_rconn_t *front, int read);

/* Closes every link (write links gracefully: their replies come first;
 * what waits for a link gets NULL) and the timer; done(arg) once all are
 * closed. The fronts are the caller's to close. */
void jq_rcluster_close(jq_rcluster_t *cl, void (*done)(void *arg), void *arg);

/* Frees cl's memory, after jq_rcluster_close's done and the loop's end. */
void jq_rcluster_free(jq_rcluster_t *cl);

#endif
