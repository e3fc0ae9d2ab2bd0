#ifndef JQ_SLOTMAP_H
#define JQ_SLOTMAP_H

/* Which master serves each of Redis Cluster's 16384 slots (slot.h), read
 * from a node's answer to CLUSTER SHARDS (Redis 7.0 and later) or CLUSTER
 * SLOTS (before), and the cluster's redirections (MOVED, ASK) and
 * retryable refusals (TRYAGAIN, CLUSTERDOWN) read from an error reply.
 *
 * Pure: no I/O. Whoever holds the connections (libjobq's
 * producer/cluster.c; the consumer's connection layer later) sends the
 * commands and hands the replies here, so both route alike. A map is a
 * plain struct the caller embeds or allocates (about 33 KiB); it owns
 * nothing. */

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "slot.h"
#include "url.h"

#define JQ_SLOTMAP_NODES_MAX 64

typedef struct jq_slotmap {
    int nnodes;
    jq_url_addr_t nodes[JQ_SLOTMAP_NODES_MAX]; /* the masters */
    int16_t owner[JQ_SLOTS];                   /* index in nodes; -1: no master known */
} jq_slotmap_t;

/* Empties m: no node, no slot served. */
void jq_slotmap_init(jq_slotmap_t *m);

/* The index of host:port in m->nodes, added if new. -1 when m is full. */
int jq_slotmap_node(jq_slotmap_t *m, const char *host, int port);

/* Fills m (emptied first) from r, the reply of CLUSTER SHARDS (RESP2: each
 * shard a flat array "slots" [start, end...] "nodes" [[field, value...]]),
 * taking each shard's master: its "endpoint" (or "ip"), and its
 * "tls-port" when tls is set, else "port". A node that gives no endpoint
 * ("?" or "") is reached at asked, the host the reply came from. Returns
 * 0, or -1 with err when r is not such a reply. */
int jq_slotmap_from_shards(jq_slotmap_t *m, const redisReply *r, const char *asked, int tls,
                           char *err, size_t errlen);

/* The same from CLUSTER SLOTS' reply ([start, end, [host, port, id...],
 * replicas...] per range; the first node is the master). */
int jq_slotmap_from_slots(jq_slotmap_t *m, const redisReply *r, const char *asked, char *err,
                          size_t errlen);

/* Slots no master serves in m (0 when the map covers the cluster). */
int jq_slotmap_unserved(const jq_slotmap_t *m);

/* What an error reply's text asks of the client. */
typedef enum {
    JQ_REDIRECT_NONE = 0, /* an ordinary error */
    JQ_REDIRECT_MOVED,    /* "MOVED <slot> <host>:<port>": the slot's owner now */
    JQ_REDIRECT_ASK,      /* "ASK <slot> <host>:<port>": once, there, after ASKING */
    JQ_REDIRECT_RETRY     /* TRYAGAIN (a migration in progress) or CLUSTERDOWN: back off */
} jq_redirect_t;

/* Reads an error reply's text msg[0..len); for MOVED and ASK fills *slot
 * and *to (an IPv6 host comes without brackets: the port is after the
 * last ':'). */
jq_redirect_t jq_slotmap_redirect(const char *msg, size_t len, int *slot, jq_url_addr_t *to);

/* Whether INFO's text (INFO cluster or INFO) says cluster_enabled:1. */
int jq_slotmap_info_enabled(const char *info, size_t len);

#endif
