/* libjobq's Redis Cluster mode (cluster.h): routing by slot, redirections
 * and the slot map's refresh. Commands are sent in *units*: one command,
 * or a MULTI with everything up to its EXEC, so that a transaction is
 * never split and is sent again whole after a redirection. A flush sends
 * every unit to its node first and only then reads, so a pipeline over
 * queues on three masters costs one round trip, not three. */

#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "slot.h"
#include "slotmap.h"

/* A redirection chain longer than this is a cluster in flux: give up with
 * the last error rather than loop. */
#define REDIRECTS_MAX 16
/* TRYAGAIN and CLUSTERDOWN: 20 ms doubling to 640 ms, about 5 s in all
 * over REDIRECTS_MAX tries (a failover takes a node timeout or two). */
#define BACKOFF_FIRST_MS 20
#define BACKOFF_MAX_MS 640

typedef struct node {
    jq_url_addr_t addr;
    jq_link_t link;
} node_t;

struct jq_cluster {
    jq_slotmap_t map;
    jq_slotmap_t spare; /* a refresh parses here, then swaps */
    node_t nodes[JQ_SLOTMAP_NODES_MAX];
    int nnodes;
    int last;  /* the node of the last unit sent (keyless commands go there); -1 */
    int stale; /* the map is to be read again before the next command */
};

/* One command: borrowed from a jq_args_t, or owned (own != NULL). */
typedef struct cmd {
    int argc;
    const char **argv;
    const size_t *lens;
    void *own;
} cmd_t;

struct jq_cpipe {
    cmd_t *held;
    size_t nheld, cap;
    redisReply **replies; /* the last flush's, handed out from `taken` */
    size_t nreplies, taken;
    char why[512]; /* why the replies that are NULL are */
};

/* ---- nodes and their links ---- */

/* The node at addr, added if new; -1 when the table is full. */
static int node_of(struct jq_cluster *cl, const jq_url_addr_t *addr) {
    for (int i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].addr.port == addr->port && !strcmp(cl->nodes[i].addr.host, addr->host))
            return i;
    if (cl->nnodes == JQ_SLOTMAP_NODES_MAX) return -1;
    node_t *n = &cl->nodes[cl->nnodes];
    memset(n, 0, sizeof(*n));
    n->addr = *addr;
    return cl->nnodes++;
}

/* Node k's link, connected. Returns 0, or -1 with err. */
static int node_up(jq_client_t *c, int k, char *err, size_t errlen) {
    node_t *n = &c->cl->nodes[k];
    if (jq_link_up(&n->link)) return 0;
    jq_link_close(&n->link);
    char where[300];
    snprintf(where, sizeof(where), "%s:%d (cluster node)", n->addr.host, n->addr.port);
    return jq_link_open(c, &n->link, &n->addr, where, err, errlen);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the slot map ---- */

/* Asks node k for the map into cl->spare: CLUSTER SHARDS, or CLUSTER
 * SLOTS where SHARDS is unknown (before Redis 7.0). Returns 0 or -1. */
static int ask_map(jq_client_t *c, int k, char *err, size_t errlen) {
    struct jq_cluster *cl = c->cl;
    jq_link_t *link = &cl->nodes[k].link;
    const char *host = cl->nodes[k].addr.host;
    for (int shards = 1; shards >= 0; shards--) {
        const char *argv[] = {"CLUSTER", shards ? "SHARDS" : "SLOTS"};
        size_t lens[] = {7, strlen(argv[1])};
        if (jq_link_append(link, 2, argv, lens, err, errlen) < 0) return -1;
        redisReply *r = jq_link_read(link, err, errlen);
        if (!r) return -1;
        int rc = -1;
        if (r->type == REDIS_REPLY_ERROR)
            jq_seterr(err, errlen, "%s:%d: CLUSTER %s: %s", host, cl->nodes[k].addr.port, argv[1],
                      r->str);
        else if (shards)
            rc = jq_slotmap_from_shards(&cl->spare, r, host, c->url.tls, err, errlen);
        else
            rc = jq_slotmap_from_slots(&cl->spare, r, host, err, errlen);
        freeReplyObject(r);
        if (rc == 0 && cl->spare.nnodes > 0) return 0;
        if (rc == 0) jq_seterr(err, errlen, "the cluster names no master");
    }
    return -1;
}

/* Reads the map again from the first node that answers: those connected
 * first, then the masters of the old map, then the URL's seeds, so a node
 * that went away is not the only one asked. Returns 0, or -1 with err
 * (the old map kept). */
static int refresh(jq_client_t *c, char *err, size_t errlen) {
    struct jq_cluster *cl = c->cl;
    char why[512] = "no node to ask";
    for (int i = 0; i < cl->map.nnodes; i++) node_of(cl, &cl->map.nodes[i]);
    for (int i = 0; i < c->url.nseeds; i++) node_of(cl, &c->url.seeds[i]);
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < cl->nnodes; k++) {
            if (jq_link_up(&cl->nodes[k].link) != (pass == 0)) continue;
            if (node_up(c, k, why, sizeof(why)) < 0 || ask_map(c, k, why, sizeof(why)) < 0)
                continue;
            memcpy(&cl->map, &cl->spare, sizeof(cl->map));
            cl->stale = 0;
            return 0;
        }
    char url[700];
    jq_url_format(&c->url, url, sizeof(url));
    jq_seterr(err, errlen, "%s: no cluster node gave the slot map (%s)", url, why);
    return -1;
}

int jq_cluster_ready(jq_client_t *c, char *err, size_t errlen) {
    if (c->cl->map.nnodes > 0 && !c->cl->stale) return 0;
    return refresh(c, err, errlen);
}

static int cluster_new(jq_client_t *c, char *err, size_t errlen) {
    if (!(c->cl = calloc(1, sizeof(*c->cl)))) {
        jq_seterr(err, errlen, "out of memory");
        return -1;
    }
    jq_slotmap_init(&c->cl->map);
    c->cl->last = -1;
    if (c->url.db) {
        jq_seterr(err, errlen, "Redis Cluster has no database but 0 (the URL asks for %d)",
                  c->url.db);
        return -1;
    }
    return 0;
}

int jq_cluster_start(jq_client_t *c, char *err, size_t errlen) {
    if (cluster_new(c, err, errlen) < 0) return -1;
    return refresh(c, err, errlen);
}

int jq_cluster_detect(jq_client_t *c, char *err, size_t errlen) {
    const char *argv[] = {"INFO", "cluster"};
    size_t lens[] = {4, 7};
    char why[256];
    if (jq_link_append(&c->link, 2, argv, lens, why, sizeof(why)) < 0) return 0;
    redisReply *r = jq_link_read(&c->link, why, sizeof(why));
    int on = r && r->type == REDIS_REPLY_STRING && jq_slotmap_info_enabled(r->str, r->len);
    if (r) freeReplyObject(r);
    if (!on) return 0;
    if (cluster_new(c, err, errlen) < 0) return -1;
    c->url.cluster = 1;
    c->url.nseeds = 1;
    snprintf(c->url.seeds[0].host, sizeof(c->url.seeds[0].host), "%s", c->url.host);
    c->url.seeds[0].port = c->url.port;
    /* The seed's connection serves as its node's link. */
    int k = node_of(c->cl, &c->url.seeds[0]);
    c->cl->nodes[k].link = c->link;
    memset(&c->link, 0, sizeof(c->link));
    return refresh(c, err, errlen);
}

void jq_cluster_free(jq_client_t *c) {
    if (!c->cl) return;
    for (int k = 0; k < c->cl->nnodes; k++) jq_link_close(&c->cl->nodes[k].link);
    free(c->cl);
    c->cl = NULL;
}

void jq_cluster_timeouts(jq_client_t *c) {
    for (int k = 0; k < c->cl->nnodes; k++) jq_link_timeout(c, &c->cl->nodes[k].link);
}

/* ---- routing ---- */

/* The slot of a unit: its first command with a key; -1 when none has. */
static int unit_slot(const cmd_t *cmds, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int k = jq_slot_cmd_key(cmds[i].argc, cmds[i].argv, cmds[i].lens);
        if (k >= 0) return jq_slot_of(cmds[i].argv[k], cmds[i].lens[k]);
    }
    return -1;
}

/* The node (connected) that serves a unit: its slot's master, or, for a
 * unit without a key, the last node used or any. With may_refresh, a
 * stale map is read again first and a master that cannot be reached has
 * the map read again, then is tried once more; without, nothing but the
 * unit's own link is touched (other links may hold commands whose replies
 * are not read yet). Returns the node, or -1 with err. */
static int route(jq_client_t *c, int slot, int may_refresh, char *err, size_t errlen) {
    struct jq_cluster *cl = c->cl;
    for (int attempt = 0; attempt < 1 + may_refresh; attempt++) {
        if (may_refresh && (attempt || cl->stale)) refresh(c, err, errlen);
        int k = -1;
        if (slot < 0) {
            k = cl->last >= 0 ? cl->last : cl->map.nnodes > 0 ? node_of(cl, &cl->map.nodes[0]) : -1;
        } else if (cl->map.owner[slot] >= 0) {
            k = node_of(cl, &cl->map.nodes[cl->map.owner[slot]]);
        } else {
            jq_seterr(err, errlen, "Redis Cluster: no master serves slot %d", slot);
            cl->stale = 1;
            continue;
        }
        if (k < 0) {
            jq_seterr(err, errlen, "Redis Cluster: more than %d nodes", JQ_SLOTMAP_NODES_MAX);
            return -1;
        }
        if (node_up(c, k, err, errlen) == 0) return k;
        cl->stale = 1;
        if (slot < 0) cl->last = -1;
    }
    return -1;
}

static int unit_send(jq_client_t *c, int k, const cmd_t *cmds, size_t n, int asking, char *err,
                     size_t errlen) {
    jq_link_t *link = &c->cl->nodes[k].link;
    if (asking) {
        const char *argv[] = {"ASKING"};
        size_t lens[] = {6};
        if (jq_link_append(link, 1, argv, lens, err, errlen) < 0) return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (jq_link_append(link, cmds[i].argc, cmds[i].argv, cmds[i].lens, err, errlen) < 0) {
            /* Half a unit queued: never let it be written. */
            if (link->ctx) link->ctx->err = REDIS_ERR_OTHER;
            return -1;
        }
    c->cl->last = k;
    return 0;
}

static void free_replies(redisReply **out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (out[i]) freeReplyObject(out[i]);
        out[i] = NULL;
    }
}

/* Reads a sent unit's replies into out[0..n) (ASKING's own dropped).
 * Returns 0, or -1 with err and out all NULL when the link broke. */
static int unit_read(jq_client_t *c, int k, size_t n, int asking, redisReply **out, char *err,
                     size_t errlen) {
    jq_link_t *link = &c->cl->nodes[k].link;
    if (asking) {
        redisReply *r = jq_link_read(link, err, errlen);
        if (!r) goto lost;
        freeReplyObject(r);
    }
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = jq_link_read(link, err, errlen))) goto lost;
    return 0;
lost:
    free_replies(out, n);
    c->cl->stale = 1; /* that node may be gone: ask another for the map */
    return -1;
}

/* The first redirection among a unit's replies, with its slot and target. */
static jq_redirect_t unit_redirect(redisReply **out, size_t n, int *slot, jq_url_addr_t *to) {
    for (size_t i = 0; i < n; i++) {
        if (!out[i] || out[i]->type != REDIS_REPLY_ERROR) continue;
        jq_redirect_t r = jq_slotmap_redirect(out[i]->str, out[i]->len, slot, to);
        if (r != JQ_REDIRECT_NONE) return r;
    }
    return JQ_REDIRECT_NONE;
}

/* Sends a unit again until no redirection answers, at most REDIRECTS_MAX
 * times; out holds the replies that said to. Nothing of the unit ran
 * where a redirection answered (Redis refuses before running, and a
 * transaction with a refused command runs nothing), so sending again
 * cannot run it twice. Returns 0, or -1 with err and out all NULL. */
static int redirect(jq_client_t *c, const cmd_t *cmds, size_t n, redisReply **out, char *err,
                    size_t errlen) {
    struct jq_cluster *cl = c->cl;
    long backoff = BACKOFF_FIRST_MS;
    int slot;
    jq_url_addr_t to;
    jq_redirect_t why = unit_redirect(out, n, &slot, &to);
    for (int tries = 0; why != JQ_REDIRECT_NONE && tries < REDIRECTS_MAX; tries++) {
        int k, asking = why == JQ_REDIRECT_ASK;
        if (why == JQ_REDIRECT_RETRY) {
            sleep_ms(backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            cl->stale = 1;
            k = route(c, unit_slot(cmds, n), 1, err, errlen);
        } else {
            if (why == JQ_REDIRECT_MOVED) {
                /* The slot's new owner now, the whole map at the next call. */
                int m = jq_slotmap_node(&cl->map, to.host, to.port);
                if (m >= 0) cl->map.owner[slot] = (int16_t)m;
                cl->stale = 1;
            }
            k = node_of(cl, &to);
            if (k >= 0 && node_up(c, k, err, errlen) < 0) k = -1;
        }
        free_replies(out, n);
        if (k < 0 || unit_send(c, k, cmds, n, asking, err, errlen) < 0 ||
            unit_read(c, k, n, asking, out, err, errlen) < 0)
            return -1;
        why = unit_redirect(out, n, &slot, &to);
    }
    return 0;
}

/* The end of the unit that starts at cmds[i]: i + 1, or past its EXEC (or
 * DISCARD) when it is a MULTI. */
static size_t unit_end(const cmd_t *cmds, size_t n, size_t i) {
    if (cmds[i].argc < 1 || cmds[i].lens[0] != 5 || strncasecmp(cmds[i].argv[0], "MULTI", 5))
        return i + 1;
    for (size_t j = i + 1; j < n; j++)
        if ((cmds[j].lens[0] == 4 && !strncasecmp(cmds[j].argv[0], "EXEC", 4)) ||
            (cmds[j].lens[0] == 7 && !strncasecmp(cmds[j].argv[0], "DISCARD", 7)))
            return j + 1;
    return n;
}

/* Sends cmds[0..n) and reads their replies into out[0..n). First every
 * unit is sent to its node and every reply read, in order, touching no
 * other link (so that one round trip serves all the nodes); then, with
 * every link drained and the map free to be read again, each unit that
 * could not be routed is sent alone and each unit a redirection answered
 * is sent again. A command that got no reply has NULL, and err says why
 * (the first such). A unit whose link broke after it was sent is not sent
 * again: it may have run. */
static void flush(jq_client_t *c, const cmd_t *cmds, size_t n, redisReply **out, char *err,
                  size_t errlen) {
    int *node = malloc(n * sizeof(*node));
    memset(out, 0, n * sizeof(*out));
    if (!node) {
        jq_seterr(err, errlen, "out of memory");
        return;
    }
    char why[512];
    int failed = 0;
    if (c->cl->stale) refresh(c, why, sizeof(why));
    for (size_t i = 0, e; i < n; i = e) {
        e = unit_end(cmds, n, i);
        node[i] = route(c, unit_slot(cmds + i, e - i), 0, why, sizeof(why));
        if (node[i] >= 0 && unit_send(c, node[i], cmds + i, e - i, 0, why, sizeof(why)) < 0)
            node[i] = -1;
    }
    for (size_t i = 0, e; i < n; i = e) {
        e = unit_end(cmds, n, i);
        if (node[i] >= 0 && unit_read(c, node[i], e - i, 0, out + i, why, sizeof(why)) < 0) {
            node[i] = -2; /* sent, and lost: not again */
            if (!failed++) jq_seterr(err, errlen, "%s", why);
        }
    }
    for (size_t i = 0, e; i < n; i = e) {
        e = unit_end(cmds, n, i);
        int rc = 0;
        if (node[i] == -1) {
            int k = route(c, unit_slot(cmds + i, e - i), 1, why, sizeof(why));
            rc = k < 0 || unit_send(c, k, cmds + i, e - i, 0, why, sizeof(why)) < 0 ||
                         unit_read(c, k, e - i, 0, out + i, why, sizeof(why)) < 0
                     ? -1
                     : 0;
        }
        if (node[i] != -2 &&
            (rc < 0 || redirect(c, cmds + i, e - i, out + i, why, sizeof(why)) < 0))
            if (!failed++) jq_seterr(err, errlen, "%s", why);
    }
    free(node);
}

redisReply *jq_cluster_run(jq_client_t *c, const jq_args_t *a, char *err, size_t errlen) {
    if (a->oom) {
        jq_seterr(err, errlen, "out of memory building a redis command");
        return NULL;
    }
    cmd_t cmd = {a->argc, a->argv, a->lens, NULL};
    redisReply *r = NULL;
    flush(c, &cmd, 1, &r, err, errlen);
    if (r && jq_reply_ok(r, err, errlen) < 0) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* ---- pipelines ---- */

/* A copy of a's command in one allocation: argv, lens, then the bytes. */
static int cmd_copy(cmd_t *cmd, const jq_args_t *a) {
    size_t bytes = 0;
    for (int i = 0; i < a->argc; i++) bytes += a->lens[i];
    size_t n = (size_t)a->argc;
    char *own = malloc(n * (sizeof(char *) + sizeof(size_t)) + bytes + 1);
    if (!own) return -1;
    const char **argv = (const char **)own;
    size_t *lens = (size_t *)(own + n * sizeof(char *));
    char *at = (char *)(lens + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(at, a->argv[i], a->lens[i]);
        argv[i] = at;
        lens[i] = a->lens[i];
        at += a->lens[i];
    }
    *cmd = (cmd_t){a->argc, argv, lens, own};
    return 0;
}

static void drop_held(struct jq_cpipe *cp) {
    for (size_t i = 0; i < cp->nheld; i++) free(cp->held[i].own);
    cp->nheld = 0;
}

int jq_cluster_hold(jq_pipe_t *p, char *err, size_t errlen) {
    if (p->a.oom) {
        jq_seterr(err, errlen, "out of memory building a redis command");
        return -1;
    }
    if (!p->cp && !(p->cp = calloc(1, sizeof(*p->cp)))) goto oom;
    struct jq_cpipe *cp = p->cp;
    if (cp->nheld == cp->cap) {
        size_t cap = cp->cap ? cp->cap * 2 : 16;
        cmd_t *held = realloc(cp->held, cap * sizeof(*held));
        if (!held) goto oom;
        cp->held = held;
        cp->cap = cap;
    }
    if (cmd_copy(&cp->held[cp->nheld], &p->a) < 0) goto oom;
    cp->nheld++;
    return 0;
oom:
    jq_seterr(err, errlen, "out of memory");
    return -1;
}

redisReply *jq_cluster_reply(jq_pipe_t *p, char *err, size_t errlen) {
    struct jq_cpipe *cp = p->cp;
    if (!cp) {
        jq_seterr(err, errlen, "redis pipeline: no command left to read");
        return NULL;
    }
    if (cp->taken == cp->nreplies && cp->nheld > 0) {
        free(cp->replies);
        cp->nreplies = cp->taken = 0;
        if (!(cp->replies = malloc(cp->nheld * sizeof(*cp->replies)))) {
            drop_held(cp);
            jq_seterr(err, errlen, "out of memory");
            return NULL;
        }
        cp->why[0] = '\0';
        flush(p->c, cp->held, cp->nheld, cp->replies, cp->why, sizeof(cp->why));
        cp->nreplies = cp->nheld;
        drop_held(cp);
    }
    if (cp->taken == cp->nreplies) {
        jq_seterr(err, errlen, "redis pipeline: no command left to read");
        return NULL;
    }
    redisReply *r = cp->replies[cp->taken++];
    if (!r) jq_seterr(err, errlen, "%s", cp->why[0] ? cp->why : "no reply from redis");
    return r;
}

void jq_cluster_pipe_end(jq_pipe_t *p) {
    struct jq_cpipe *cp = p->cp;
    if (!cp) return;
    drop_held(cp);
    if (cp->replies) free_replies(cp->replies + cp->taken, cp->nreplies - cp->taken);
    free(cp->replies);
    free(cp->held);
    free(cp);
    p->cp = NULL;
}
