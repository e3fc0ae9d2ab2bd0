/* The slot map (slotmap.h): parsing CLUSTER SHARDS, CLUSTER SLOTS and the
 * cluster's error replies. */

#include "slotmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jq_slotmap_init(jq_slotmap_t *m) {
    m->nnodes = 0;
    for (int i = 0; i < JQ_SLOTS; i++) m->owner[i] = -1;
}

int jq_slotmap_node(jq_slotmap_t *m, const char *host, int port) {
    for (int i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0) return i;
    if (m->nnodes == JQ_SLOTMAP_NODES_MAX) return -1;
    jq_url_addr_t *a = &m->nodes[m->nnodes];
    snprintf(a->host, sizeof(a->host), "%s", host);
    a->port = port;
    return m->nnodes++;
}

int jq_slotmap_unserved(const jq_slotmap_t *m) {
    int n = 0;
    for (int i = 0; i < JQ_SLOTS; i++) n += m->owner[i] < 0;
    return n;
}

static int str_is(const redisReply *r, const char *s) {
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
           r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* A flat [name, value, ...] array's value for name, or NULL. */
static const redisReply *field(const redisReply *r, const char *name) {
    if (!r || r->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (str_is(r->element[i], name)) return r->element[i + 1];
    return NULL;
}

static int set_range(jq_slotmap_t *m, long long lo, long long hi, int node) {
    if (lo < 0 || hi >= JQ_SLOTS || lo > hi) return -1;
    for (long long s = lo; s <= hi; s++) m->owner[s] = (int16_t)node;
    return 0;
}

/* The host a node is reached at: its endpoint, or the asked one when the
 * node does not know its own ("?", "" : Redis's "unknown endpoint"). */
static const char *endpoint(const redisReply *e, const char *asked) {
    if (!e || e->type != REDIS_REPLY_STRING || e->len == 0 || e->len >= 256 || str_is(e, "?"))
        return asked;
    return e->str;
}

static int bad(jq_slotmap_t *m, char *err, size_t errlen, const char *what) {
    jq_slotmap_init(m);
    snprintf(err, errlen, "odd reply to %s", what);
    return -1;
}

/* The master of one shard of CLUSTER SHARDS: its index in m, or -1. */
static int shard_master(jq_slotmap_t *m, const redisReply *nodes, const char *asked, int tls) {
    if (!nodes || nodes->type != REDIS_REPLY_ARRAY) return -1;
    for (size_t i = 0; i < nodes->elements; i++) {
        const redisReply *n = nodes->element[i];
        if (!str_is(field(n, "role"), "master")) continue;
        const redisReply *ep = field(n, "endpoint");
        if (!ep) ep = field(n, "ip");
        const redisReply *port = field(n, tls ? "tls-port" : "port");
        if (!port || port->type != REDIS_REPLY_INTEGER || port->integer < 1 ||
            port->integer > 65535)
            return -1;
        return jq_slotmap_node(m, endpoint(ep, asked), (int)port->integer);
    }
    return -1;
}

int jq_slotmap_from_shards(jq_slotmap_t *m, const redisReply *r, const char *asked, int tls,
                           char *err, size_t errlen) {
    jq_slotmap_init(m);
    if (!r || r->type != REDIS_REPLY_ARRAY) return bad(m, err, errlen, "CLUSTER SHARDS");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *slots = field(r->element[i], "slots");
        if (!slots || slots->type != REDIS_REPLY_ARRAY || slots->elements % 2)
            return bad(m, err, errlen, "CLUSTER SHARDS");
        if (slots->elements == 0) continue; /* a master that serves nothing */
        int node = shard_master(m, field(r->element[i], "nodes"), asked, tls);
        /* A shard whose master failed and has no successor yet: its slots
         * stay unserved until the next refresh. */
        if (node < 0) continue;
        for (size_t k = 0; k < slots->elements; k += 2) {
            const redisReply *lo = slots->element[k], *hi = slots->element[k + 1];
            if (lo->type != REDIS_REPLY_INTEGER || hi->type != REDIS_REPLY_INTEGER ||
                set_range(m, lo->integer, hi->integer, node) < 0)
                return bad(m, err, errlen, "CLUSTER SHARDS");
        }
    }
    return 0;
}

int jq_slotmap_from_slots(jq_slotmap_t *m, const redisReply *r, const char *asked, char *err,
                          size_t errlen) {
    jq_slotmap_init(m);
    if (!r || r->type != REDIS_REPLY_ARRAY) return bad(m, err, errlen, "CLUSTER SLOTS");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER)
            return bad(m, err, errlen, "CLUSTER SLOTS");
        const redisReply *master = e->element[2];
        if (master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
            master->element[1]->type != REDIS_REPLY_INTEGER || master->element[1]->integer < 1 ||
            master->element[1]->integer > 65535)
            return bad(m, err, errlen, "CLUSTER SLOTS");
        int node = jq_slotmap_node(m, endpoint(master->element[0], asked),
                                   (int)master->element[1]->integer);
        if (node < 0 || set_range(m, e->element[0]->integer, e->element[1]->integer, node) < 0)
            return bad(m, err, errlen, "CLUSTER SLOTS");
    }
    return 0;
}

static int starts(const char *msg, size_t len, const char *word) {
    size_t n = strlen(word);
    return len >= n && memcmp(msg, word, n) == 0 && (len == n || msg[n] == ' ');
}

/* "<slot> <host>:<port>" of a MOVED or ASK. */
static int parse_target(const char *s, size_t len, int *slot, jq_url_addr_t *to) {
    char buf[320];
    if (len >= sizeof(buf)) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    if (end == buf || *end != ' ' || v < 0 || v >= JQ_SLOTS) return -1;
    char *addr = end + 1, *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(to->host)) return -1;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) return -1;
    memcpy(to->host, addr, (size_t)(colon - addr));
    to->host[colon - addr] = '\0';
    to->port = (int)port;
    *slot = (int)v;
    return 0;
}

jq_redirect_t jq_slotmap_redirect(const char *msg, size_t len, int *slot, jq_url_addr_t *to) {
    if (starts(msg, len, "MOVED") && parse_target(msg + 6, len - 6, slot, to) == 0)
        return JQ_REDIRECT_MOVED;
    if (starts(msg, len, "ASK") && parse_target(msg + 4, len - 4, slot, to) == 0)
        return JQ_REDIRECT_ASK;
    if (starts(msg, len, "TRYAGAIN") || starts(msg, len, "CLUSTERDOWN")) return JQ_REDIRECT_RETRY;
    return JQ_REDIRECT_NONE;
}

int jq_slotmap_info_enabled(const char *info, size_t len) {
    static const char key[] = "cluster_enabled:1";
    size_t n = sizeof(key) - 1;
    for (size_t i = 0; i + n <= len; i++)
        if ((i == 0 || info[i - 1] == '\n') && memcmp(info + i, key, n) == 0) return 1;
    return 0;
}
