#ifndef JQ_CLUSTER_H
#define JQ_CLUSTER_H

/* libjobq in Redis Cluster mode: the slot map (common/slotmap.h), one
 * link per master, and each command routed by its key's slot (common/
 * slot.h). A MULTI ... EXEC goes whole to the node of its first key;
 * commands without a key (UNWATCH, TIME) go where the last command went.
 * MOVED updates the slot and sends again (the whole map is read again
 * before the next call), ASK sends again there after ASKING, TRYAGAIN and
 * CLUSTERDOWN back off and send again, and a connection that fails makes
 * the map be read again from another node.
 *
 * Called by conn.c only, when c->cl is set; everything c owns. */

#include "client_int.h"

/* redis+cluster://: reads the slot map from the first seed that answers.
 * Returns 0, or -1 with err. */
int jq_cluster_start(jq_client_t *c, char *err, size_t errlen);

/* After a plain connect: asks the server (INFO cluster) whether it is a
 * cluster node and, if so, switches c to cluster mode with that node as
 * its seed (its connection kept). A refused INFO means no. Returns 0, or
 * -1 with err when it is a cluster that cannot be used (a database other
 * than 0, no slot map). */
int jq_cluster_detect(jq_client_t *c, char *err, size_t errlen);

/* Closes every link and frees the map; nothing when c is no cluster. */
void jq_cluster_free(jq_client_t *c);

/* Reads the map again if it is empty or stale. Returns 0, or -1 with err. */
int jq_cluster_ready(jq_client_t *c, char *err, size_t errlen);

/* Applies c's command timeout to every link. */
void jq_cluster_timeouts(jq_client_t *c);

/* jq_client_run in cluster mode: the same contract. */
redisReply *jq_cluster_run(jq_client_t *c, const jq_args_t *a, char *err, size_t errlen);

/* Pipes in cluster mode: hold copies p->a (the caller resets it); reply
 * sends every held command, at the first call after a hold, and hands the
 * replies out in order (NULL with err for the commands that got none);
 * pipe_end frees what is left. */
int jq_cluster_hold(jq_pipe_t *p, char *err, size_t errlen);
redisReply *jq_cluster_reply(jq_pipe_t *p, char *err, size_t errlen);
void jq_cluster_pipe_end(jq_pipe_t *p);

#endif
