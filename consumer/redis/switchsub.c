/* The +switch-master subscription. See switchsub.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "switchsub.h"

#define CHANNEL "+switch-master"

int jq_switchsub_parse(const char *msg, const char *name, jq_url_addr_t *old, jq_url_addr_t *now) {
    char n[128];
    /* The widths: jq_url_addr_t's host and the master name's room. */
    if (sscanf(msg, "%127s %255s %d %255s %d", n, old->host, &old->port, now->host, &now->port) !=
        5)
        return -1;
    if (strcmp(n, name) != 0 || old->port <= 0 || old->port > 65535 || now->port <= 0 ||
        now->port > 65535)
        return -1;
    return 0;
}

/* Each reply on the subscription: the SUBSCRIBE's own, then one per
 * message; NULL when the connection went (rconn.c reconnects and on_up
 * subscribes again). */
static void on_message(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    redisReply *r = rp;
    jq_switchsub_t *s = priv;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    jq_url_addr_t old, now;
    if (jq_switchsub_parse(r->element[2]->str, s->conn.url->master_name, &old, &now) != 0) return;
    s->cb(s->data, &s->conn.master, &old, &now);
}

static void on_up(jq_rconn_t *c) {
    jq_switchsub_t *s = c->data;
    jq_args_reset(&s->args);
    jq_args_str(&s->args, "SUBSCRIBE");
    jq_args_str(&s->args, CHANNEL);
    if (jq_rconn_args(c, &s->args, on_message, s) != 0)
        jq_warn("redis %s connection: cannot subscribe to %s", c->name, CHANNEL);
    jq_args_reset(&s->args);
    jq_debug("redis %s connection: subscribed to %s at sentinel %s:%d", c->name, CHANNEL,
             c->master.host, c->master.port);
}

int jq_switchsub_init(jq_switchsub_t *s, uv_loop_t *loop, const jq_url_t *url, jq_tls_t *tls,
                      jq_switchsub_cb cb, void *data) {
    jq_args_init(&s->args);
    s->cb = cb;
    s->data = data;
    if (jq_rconn_init_sentinel(&s->conn, loop, url, tls, "switch-master") != 0) {
        jq_args_destroy(&s->args);
        return -1;
    }
    s->conn.data = s;
    s->conn.on_up = on_up;
    return 0;
}

static void on_conn_closed(jq_rconn_t *c) {
    jq_switchsub_t *s = c->data;
    jq_args_destroy(&s->args);
    if (s->on_closed) s->on_closed(c);
}

void jq_switchsub_close(jq_switchsub_t *s, jq_rconn_cb on_closed) {
    s->on_closed = on_closed;
    /* Not graceful: a subscription has no reply to wait for. */
    jq_rconn_close(&s->conn, 0, on_conn_closed);
}
