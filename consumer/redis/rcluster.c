/* The consumer's Redis Cluster router (rcluster.h). Commands travel in
 * *units*: one command, or a MULTI with everything up to its EXEC, each
 * with a copy of its RESP form so that a redirected unit can be sent
 * again whole. Units wait on a link while it is down, on the router while
 * their slot has no known master, and on the retry list while a
 * TRYAGAIN/CLUSTERDOWN backoff runs; a timer every TICK_MS moves them on
 * and reads the map again when something asked for it. */

#include "rcluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "job.h"
#include "log.h"
#include "slot.h"
#include "slotmap.h"

#define REDIRECTS_MAX 16
#define BACKOFF_FIRST_MS 20
#define BACKOFF_MAX_MS 640
#define TICK_MS 50
/* The map is read again at most this often (a failover makes every link
 * to the dead master ask). */
#define REFRESH_EVERY_MS 200
/* A unit that found no link up for this long gets NULL (as a lost reply);
 * its stage sends again later. */
#define WAIT_MAX_MS 30000
#define RLINKS_MAX 512
#define SCRIPTS_MAX 16

typedef struct unit unit_t;
typedef struct link link_t;

typedef struct ref {
    unit_t *u;
    int i;
} ref_t;

typedef struct cmd {
    char *buf;
    size_t len;
    redisCallbackFn *fn;
    void *priv;
    int done; /* its callback ran */
    ref_t ref;
} cmd_t;

struct unit {
    jq_rcluster_t *cl;
    jq_rconn_t *front;
    int slot; /* -1: no key in it: sent on the front */
    int read;
    cmd_t *cmds;
    int n, cap;
    int pending;         /* replies of the current send still to come */
    jq_redirect_t redir; /* the current send's first redirection */
    int rslot;
    jq_url_addr_t to;
    int tries;
    int asking; /* send ASKING first */
    int64_t since, due;
    unit_t *next;
};

struct link {
    jq_rcluster_t *cl;
    jq_rconn_t *c;     /* NULL until needed; replaced when the link moves */
    int node;          /* where c goes */
    int slot;          /* a read link's slot; -1 for a write link */
    jq_rconn_t *front; /* a read link's front (on_skipping) */
    unit_t *wait, *wait_tail;
};

typedef struct node {
    jq_url_addr_t addr;
    jq_url_t url; /* the seed URL's, to this node */
    link_t w;
} node_t;

typedef struct front {
    jq_rcluster_t *cl;
    jq_rconn_t *c;
    int read;
    unit_t *building; /* a MULTI being built */
} front_t;

struct jq_rcluster {
    uv_loop_t *loop;
    const jq_url_t *url;
    jq_tls_t *tls;
    long long cap;
    int16_t owner[JQ_SLOTS]; /* index in nodes; -1: not known */
    jq_slotmap_t spare;      /* a map read lands here first */
    jq_slotmap_t addrs;      /* nodes' addresses only (its owner unused) */
    node_t nodes[JQ_SLOTMAP_NODES_MAX];
    int nnodes;
    link_t *rlinks[RLINKS_MAX];
    int nrlinks;
    front_t fronts[JQ_RCLUSTER_FRONTS];
    int nfronts;
    unit_t *unrouted, *retry;
    char *scripts[SCRIPTS_MAX];
    size_t script_len[SCRIPTS_MAX];
    int nscripts;
    int stale, refreshing, asked_next, use_slots;
    int mapped; /* a map was read: later ones log the slots that moved */
    char asked_host[256];
    int64_t refreshed_ms;
    uv_timer_t timer;
    int closing, closes;
    void (*done)(void *);
    void *done_arg;
};

static void route_unit(unit_t *u);

/* ---- units ---- */

static unit_t *unit_new(front_t *f) {
    unit_t *u = calloc(1, sizeof(*u));
    if (!u) return NULL;
    u->cl = f->cl;
    u->front = f->c;
    u->read = f->read;
    u->slot = -1;
    u->since = jq_now_ms();
    return u;
}

static int unit_add(unit_t *u, const char *cmd, size_t len, redisCallbackFn *fn, void *priv) {
    if (u->n == u->cap) {
        int cap = u->cap ? u->cap * 2 : 4;
        cmd_t *c = realloc(u->cmds, (size_t)cap * sizeof(*c));
        if (!c) return -1;
        u->cmds = c;
        u->cap = cap;
    }
    cmd_t *c = &u->cmds[u->n];
    memset(c, 0, sizeof(*c));
    if (!(c->buf = malloc(len ? len : 1))) return -1;
    memcpy(c->buf, cmd, len);
    c->len = len;
    c->fn = fn;
    c->priv = priv;
    u->n++;
    return 0;
}

static void unit_free(unit_t *u) {
    for (int i = 0; i < u->n; i++) free(u->cmds[i].buf);
    free(u->cmds);
    free(u);
}

/* Every callback not run yet gets NULL (a reply lost), then u goes. */
static void unit_fail(unit_t *u) {
    for (int i = 0; i < u->n; i++) {
        cmd_t *c = &u->cmds[i];
        if (c->done) continue;
        c->done = 1;
        if (c->fn) c->fn(NULL, NULL, c->priv);
    }
    unit_free(u);
}

static void push(unit_t **head, unit_t *u) {
    u->next = *head;
    *head = u;
}

static void wait_on(link_t *l, unit_t *u) {
    u->next = NULL;
    if (l->wait_tail)
        l->wait_tail->next = u;
    else
        l->wait = u;
    l->wait_tail = u;
}

static unit_t *take_waits(link_t *l) {
    unit_t *u = l->wait;
    l->wait = l->wait_tail = NULL;
    return u;
}

/* ---- sending and replies ---- */

static void unit_end(unit_t *u);

static void on_reply(redisAsyncContext *ac, void *rp, void *priv) {
    ref_t *ref = priv;
    unit_t *u = ref->u;
    cmd_t *c = &u->cmds[ref->i];
    redisReply *r = rp;
    u->pending--;
    if (r && r->type == REDIS_REPLY_ERROR && u->redir == JQ_REDIRECT_NONE) {
        int slot = -1;
        jq_url_addr_t to;
        jq_redirect_t k = jq_slotmap_redirect(r->str, r->len, &slot, &to);
        if (k != JQ_REDIRECT_NONE) {
            u->redir = k;
            u->rslot = slot;
            if (k != JQ_REDIRECT_RETRY) u->to = to;
        }
    }
    /* A redirected send ran nothing (its EXEC answers EXECABORT): it is
     * sent again, and the callbacks wait for that answer. */
    if (u->redir == JQ_REDIRECT_NONE && !c->done) {
        c->done = 1;
        if (c->fn) c->fn(ac, r, c->priv);
    }
    if (u->pending == 0) unit_end(u);
}

/* Sends u on c (up). */
static void send_unit(jq_rconn_t *c, unit_t *u) {
    static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
    u->pending = 0;
    u->redir = JQ_REDIRECT_NONE;
    if (u->asking) jq_rconn_raw(c, asking, sizeof(asking) - 1, NULL, NULL);
    u->asking = 0;
    int sent = 0;
    for (int i = 0; i < u->n; i++) {
        cmd_t *cmd = &u->cmds[i];
        cmd->ref.u = u;
        cmd->ref.i = i;
        if (jq_rconn_raw(c, cmd->buf, cmd->len, on_reply, &cmd->ref) == 0) u->pending++, sent++;
    }
    if (!sent) unit_fail(u); /* c went down between the check and now */
}

static void link_skipping(jq_rconn_t *c) {
    link_t *l = c->data;
    if (l->front && l->front->on_skipping) l->front->on_skipping(l->front);
}

static void link_up(jq_rconn_t *c);
static void link_down(jq_rconn_t *c) { ((link_t *)c->data)->cl->stale = 1; }
static void on_conn_closed(jq_rconn_t *c);

/* l's connection, opened to l->node if it has none. */
static jq_rconn_t *link_conn(link_t *l) {
    if (l->c) return l->c;
    jq_rcluster_t *cl = l->cl;
    jq_rconn_t *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    if (jq_rconn_init(c, cl->loop, &cl->nodes[l->node].url, cl->tls,
                      l->slot < 0 ? "cluster write" : "cluster read") != 0) {
        free(c); /* only the timer failed: nothing to close */
        return NULL;
    }
    c->data = l;
    c->on_up = link_up;
    c->on_down = link_down;
    if (l->slot >= 0) c->on_skipping = link_skipping;
    jq_rconn_cap(c, cl->cap);
    return l->c = c;
}

static void link_send(link_t *l, unit_t *u) {
    jq_rconn_t *c = link_conn(l);
    if (c && c->up) {
        send_unit(c, u);
        return;
    }
    wait_on(l, u);
}

/* Points l at node k: its connection (a blocking read in it gets NULL)
 * is closed, a new one made when next needed. */
static void link_move(link_t *l, int k) {
    jq_rconn_t *old = l->c;
    /* First: the close runs the read's callback, which may route again. */
    l->c = NULL;
    l->node = k;
    if (old) {
        old->data = l->cl;
        l->cl->closes++;
        jq_rconn_close(old, 0, on_conn_closed);
    }
}

/* The read link of slot, on node k. */
static link_t *rlink(jq_rcluster_t *cl, int slot, int k, jq_rconn_t *front) {
    for (int i = 0; i < cl->nrlinks; i++) {
        link_t *l = cl->rlinks[i];
        if (l->slot != slot) continue;
        if (l->node != k) link_move(l, k);
        return l;
    }
    if (cl->nrlinks == RLINKS_MAX) return NULL;
    link_t *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    l->cl = cl;
    l->node = k;
    l->slot = slot;
    l->front = front;
    cl->rlinks[cl->nrlinks++] = l;
    return l;
}

static void route_unit(unit_t *u) {
    jq_rcluster_t *cl = u->cl;
    if (cl->closing) {
        unit_fail(u);
        return;
    }
    if (u->slot < 0) {
        if (u->front->up)
            send_unit(u->front, u);
        else
            unit_fail(u);
        return;
    }
    int k = cl->owner[u->slot];
    if (k < 0) {
        push(&cl->unrouted, u);
        cl->stale = 1;
        return;
    }
    link_t *l = u->read ? rlink(cl, u->slot, k, u->front) : &cl->nodes[k].w;
    if (!l) {
        unit_fail(u);
        return;
    }
    link_send(l, u);
}

/* The node at addr, added (not connected) if new; -1 when full. The
 * addresses are kept in cl->addrs (slotmap.h), in the order of nodes. */
static int node_of(jq_rcluster_t *cl, const jq_url_addr_t *addr) {
    int k = jq_slotmap_node(&cl->addrs, addr->host, addr->port);
    if (k < 0 || k < cl->nnodes) return k;
    node_t *n = &cl->nodes[k];
    memset(n, 0, sizeof(*n));
    n->addr = *addr;
    n->url = *cl->url;
    n->url.cluster = 0;
    n->url.nseeds = 0;
    snprintf(n->url.host, sizeof(n->url.host), "%s", addr->host);
    n->url.port = addr->port;
    n->w.cl = cl;
    n->w.node = k;
    n->w.slot = -1;
    cl->nnodes = k + 1;
    return k;
}

static int backoff_ms(int tries) {
    int ms = BACKOFF_FIRST_MS;
    for (int i = 1; i < tries && ms < BACKOFF_MAX_MS; i++) ms *= 2;
    return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

static void unit_end(unit_t *u) {
    jq_rcluster_t *cl = u->cl;
    if (u->redir == JQ_REDIRECT_NONE) {
        unit_free(u);
        return;
    }
    if (++u->tries > REDIRECTS_MAX || cl->closing) {
        jq_warn("redis cluster: slot %d still redirected after %d tries; giving up on a command",
                u->slot, REDIRECTS_MAX);
        unit_fail(u);
        return;
    }
    int k = u->redir == JQ_REDIRECT_RETRY ? -1 : node_of(cl, &u->to);
    if (u->redir == JQ_REDIRECT_MOVED && k >= 0) {
        if (cl->owner[u->rslot] != k)
            jq_info("redis cluster: slot %d moved (to %s:%d)", u->rslot, u->to.host, u->to.port);
        cl->owner[u->rslot] = (int16_t)k;
        cl->stale = 1; /* one slot moved: others may have too */
        route_unit(u);
        return;
    }
    if (u->redir == JQ_REDIRECT_ASK && k >= 0 && !u->read) {
        /* Once, there; the slot stays where it was. */
        u->asking = 1;
        link_send(&cl->nodes[k].w, u);
        return;
    }
    /* TRYAGAIN, CLUSTERDOWN, and an ASK for a read (a blocking read may
     * not hold a write link): after a backoff, to the slot's master. */
    u->due = jq_now_ms() + backoff_ms(u->tries);
    push(&cl->retry, u);
}

/* A link came up: the scripts first (a new master after a failover has
 * none), then what waited for it, or for where its slot is now. */
static void link_up(jq_rconn_t *c) {
    link_t *l = c->data;
    jq_rcluster_t *cl = l->cl;
    if (l->slot < 0)
        for (int i = 0; i < cl->nscripts; i++)
            jq_rconn_raw(c, cl->scripts[i], cl->script_len[i], NULL, NULL);
    for (unit_t *u = take_waits(l), *next; u; u = next) {
        next = u->next;
        if (u->asking || cl->owner[u->slot] == l->node)
            send_unit(c, u);
        else
            route_unit(u);
    }
}

static void on_conn_closed(jq_rconn_t *c) {
    jq_rcluster_t *cl = c->data;
    free(c);
    if (--cl->closes == 0 && cl->closing && cl->done) cl->done(cl->done_arg);
}

/* ---- the slot map ---- */

static void on_map(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    jq_rcluster_t *cl = priv;
    redisReply *r = rp;
    cl->refreshing = 0;
    cl->refreshed_ms = jq_now_ms();
    if (!r || cl->closing) return;
    char err[256];
    if (r->type == REDIS_REPLY_ERROR) {
        if (!cl->use_slots) cl->use_slots = 1; /* before 7.0: CLUSTER SLOTS */
        return;
    }
    int rc = cl->use_slots ? jq_slotmap_from_slots(&cl->spare, r, cl->asked_host, err, sizeof(err))
                           : jq_slotmap_from_shards(&cl->spare, r, cl->asked_host, cl->url->tls,
                                                    err, sizeof(err));
    if (rc != 0 || cl->spare.nnodes == 0) {
        jq_warn("redis cluster: cannot read the slot map: %s", rc ? err : "no master");
        return;
    }
    int moved = 0, to = -1;
    for (int s = 0; s < JQ_SLOTS; s++) {
        int o = cl->spare.owner[s];
        int k = o < 0 ? -1 : node_of(cl, &cl->spare.nodes[o]);
        if (cl->mapped && k != cl->owner[s]) moved++, to = k;
        cl->owner[s] = (int16_t)k;
    }
    if (moved && to >= 0)
        jq_info("redis cluster: %d slots moved (to %s:%d, the last of them)", moved,
                cl->nodes[to].addr.host, cl->nodes[to].addr.port);
    cl->mapped = 1;
    cl->stale = 0;
    /* Read links go where their slot is now: a blocking read on the old
     * master gets NULL and is sent again by its stage. */
    for (int i = 0; i < cl->nrlinks; i++) {
        link_t *l = cl->rlinks[i];
        int k = cl->owner[l->slot];
        if (k >= 0 && k != l->node) {
            unit_t *w = take_waits(l);
            link_move(l, k);
            for (unit_t *next; w; w = next) next = w->next, wait_on(l, w);
            link_conn(l);
        }
    }
    unit_t *u = cl->unrouted;
    cl->unrouted = NULL;
    for (unit_t *next; u; u = next) {
        next = u->next;
        route_unit(u);
    }
}

/* Reads the map from the next connection that is up: a front or a
 * master's write link, in turn, so a node that went away is not the only
 * one asked. */
static void refresh(jq_rcluster_t *cl) {
    jq_rconn_t *up[JQ_RCLUSTER_FRONTS + JQ_SLOTMAP_NODES_MAX];
    int n = 0;
    for (int i = 0; i < cl->nfronts; i++)
        if (cl->fronts[i].c->up) up[n++] = cl->fronts[i].c;
    for (int i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].w.c && cl->nodes[i].w.c->up) up[n++] = cl->nodes[i].w.c;
    if (!n) return;
    jq_rconn_t *c = up[cl->asked_next++ % n];
    static const char shards[] = "*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n";
    static const char slots[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
    const char *host = c->url->cluster ? c->master.host : c->url->host;
    snprintf(cl->asked_host, sizeof(cl->asked_host), "%s", host);
    int rc = cl->use_slots ? jq_rconn_raw(c, slots, sizeof(slots) - 1, on_map, cl)
                           : jq_rconn_raw(c, shards, sizeof(shards) - 1, on_map, cl);
    if (rc == 0) cl->refreshing = 1;
}

/* Units waiting on l: to where their slot is now, or NULL after too long;
 * a wait on a link that is down asks for the map. */
static void check_waits(jq_rcluster_t *cl, link_t *l, int64_t now) {
    if (!l->wait) return;
    if (!l->c || !l->c->up) cl->stale = 1;
    unit_t *u = take_waits(l);
    for (unit_t *next; u; u = next) {
        next = u->next;
        int k = cl->owner[u->slot];
        if (now - u->since > WAIT_MAX_MS)
            unit_fail(u);
        else if (!u->asking && k >= 0 && k != l->node)
            route_unit(u);
        else
            wait_on(l, u);
    }
}

static void on_tick(uv_timer_t *t) {
    jq_rcluster_t *cl = t->data;
    int64_t now = jq_now_ms();
    unit_t *u = cl->retry, *keep = NULL;
    cl->retry = NULL;
    for (unit_t *next; u; u = next) {
        next = u->next;
        if (u->due <= now)
            route_unit(u);
        else
            push(&keep, u);
    }
    for (; keep; keep = u) u = keep->next, push(&cl->retry, keep);
    for (int i = 0; i < cl->nnodes; i++) check_waits(cl, &cl->nodes[i].w, now);
    for (int i = 0; i < cl->nrlinks; i++) check_waits(cl, cl->rlinks[i], now);
    if (cl->unrouted) cl->stale = 1;
    if (cl->stale && !cl->refreshing && now - cl->refreshed_ms >= REFRESH_EVERY_MS) refresh(cl);
}

/* ---- the fronts ---- */

static int is(const jq_args_t *a, int i, const char *name) {
    return i < a->argc && strlen(name) == a->lens[i] && !strncasecmp(a->argv[i], name, a->lens[i]);
}

/* SCRIPT LOAD: on the front (its answer is the stage's), on every master
 * linked now, and on each link that comes up later. */
static int script_load(front_t *f, const char *cmd, size_t len, redisCallbackFn *fn, void *priv) {
    jq_rcluster_t *cl = f->cl;
    int known = 0;
    for (int i = 0; i < cl->nscripts; i++)
        known |= cl->script_len[i] == len && !memcmp(cl->scripts[i], cmd, len);
    if (!known && cl->nscripts < SCRIPTS_MAX && (cl->scripts[cl->nscripts] = malloc(len))) {
        memcpy(cl->scripts[cl->nscripts], cmd, len);
        cl->script_len[cl->nscripts++] = len;
    }
    for (int i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].w.c && cl->nodes[i].w.c->up)
            jq_rconn_raw(cl->nodes[i].w.c, cmd, len, NULL, NULL);
    return jq_rconn_raw(f->c, cmd, len, fn, priv);
}

static int slot_of_args(const jq_args_t *a) {
    int k = jq_slot_cmd_key(a->argc, a->argv, a->lens);
    return k < 0 ? -1 : jq_slot_of(a->argv[k], a->lens[k]);
}

static int route(void *data, const jq_args_t *a, const char *cmd, size_t len, redisCallbackFn *fn,
                 void *priv) {
    front_t *f = data;
    jq_rcluster_t *cl = f->cl;
    if (cl->closing) return -1;
    if (f->building) {
        unit_t *u = f->building;
        if (is(a, 0, "DISCARD")) {
            f->building = NULL;
            unit_free(u); /* never sent: nothing ran */
            return 0;
        }
        if (unit_add(u, cmd, len, fn, priv) != 0) {
            f->building = NULL;
            unit_free(u);
            return -1;
        }
        if (u->slot < 0) u->slot = slot_of_args(a);
        if (is(a, 0, "EXEC")) {
            f->building = NULL;
            route_unit(u);
        }
        return 0;
    }
    if (is(a, 0, "SCRIPT") && is(a, 1, "LOAD")) return script_load(f, cmd, len, fn, priv);
    int slot = is(a, 0, "MULTI") ? -1 : slot_of_args(a);
    if (slot < 0 && !is(a, 0, "MULTI")) return jq_rconn_raw(f->c, cmd, len, fn, priv);
    unit_t *u = unit_new(f);
    if (!u || unit_add(u, cmd, len, fn, priv) != 0) {
        if (u) unit_free(u);
        return -1;
    }
    u->slot = slot;
    if (slot < 0)
        f->building = u;
    else
        route_unit(u);
    return 0;
}

jq_rcluster_t *jq_rcluster_new(uv_loop_t *loop, const jq_url_t *url, jq_tls_t *tls) {
    jq_rcluster_t *cl = calloc(1, sizeof(*cl));
    if (!cl) return NULL;
    cl->loop = loop;
    cl->url = url;
    cl->tls = tls;
    for (int s = 0; s < JQ_SLOTS; s++) cl->owner[s] = -1;
    jq_slotmap_init(&cl->addrs);
    cl->stale = 1;
    if (uv_timer_init(loop, &cl->timer) != 0 ||
        uv_timer_start(&cl->timer, on_tick, TICK_MS, TICK_MS) != 0) {
        free(cl);
        return NULL;
    }
    cl->timer.data = cl;
    return cl;
}

int jq_rcluster_attach(jq_rcluster_t *cl, jq_rconn_t *front, int read) {
    if (cl->nfronts == JQ_RCLUSTER_FRONTS) return -1;
    front_t *f = &cl->fronts[cl->nfronts++];
    f->cl = cl;
    f->c = front;
    f->read = read;
    if (front->bulkcap.cap > cl->cap) cl->cap = front->bulkcap.cap;
    front->route = route;
    front->route_data = f;
    return 0;
}

static void on_timer_closed(uv_handle_t *h) {
    jq_rcluster_t *cl = h->data;
    if (--cl->closes == 0 && cl->done) cl->done(cl->done_arg);
}

static void close_link(jq_rcluster_t *cl, link_t *l, int graceful) {
    for (unit_t *u = take_waits(l), *next; u; u = next) next = u->next, unit_fail(u);
    jq_rconn_t *c = l->c;
    if (!c) return;
    l->c = NULL;
    c->data = cl;
    cl->closes++;
    jq_rconn_close(c, graceful, on_conn_closed);
}

void jq_rcluster_close(jq_rcluster_t *cl, void (*done)(void *arg), void *arg) {
    if (cl->closing) return;
    cl->closing = 1;
    cl->done = done;
    cl->done_arg = arg;
    cl->closes++; /* the timer */
    for (int i = 0; i < cl->nfronts; i++)
        if (cl->fronts[i].building)
            unit_free(cl->fronts[i].building), cl->fronts[i].building = NULL;
    for (unit_t *u = cl->retry, *next; u; u = next) next = u->next, unit_fail(u);
    for (unit_t *u = cl->unrouted, *next; u; u = next) next = u->next, unit_fail(u);
    cl->retry = cl->unrouted = NULL;
    for (int i = 0; i < cl->nnodes; i++) close_link(cl, &cl->nodes[i].w, 1);
    for (int i = 0; i < cl->nrlinks; i++) close_link(cl, cl->rlinks[i], 0);
    uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
}

void jq_rcluster_free(jq_rcluster_t *cl) {
    if (!cl) return;
    for (int i = 0; i < cl->nrlinks; i++) free(cl->rlinks[i]);
    for (int i = 0; i < cl->nscripts; i++) free(cl->scripts[i]);
    free(cl);
}
