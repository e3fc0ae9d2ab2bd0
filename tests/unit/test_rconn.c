/* The reconnect machine of consumer/redis/rconn.c against a fake Redis
 * served on the test's own loop: it accepts, answers the handshake (or
 * refuses it, or says LOADING, or stalls, or closes at once), answers ECHO,
 * holds every other command unanswered, and can drop its clients. libuv's
 * uv_poll_start is wrapped (ld --wrap, see the Makefile) so that a test can
 * make it fail and see the error passed on. */

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "args.h"
#include "rconn.h"
#include "switchsub.h"
#include "url.h"

/* ---- uv_poll_start, failing on demand ---- */

static int fail_polls; /* how many of the next calls fail */
int __real_uv_poll_start(uv_poll_t *h, int events, uv_poll_cb cb);
int __wrap_uv_poll_start(uv_poll_t *h, int events, uv_poll_cb cb) {
    if (fail_polls > 0) {
        fail_polls--;
        uv_poll_stop(h); /* as the real one leaves it when it fails */
        return UV_EBADF;
    }
    return __real_uv_poll_start(h, events, cb);
}

/* ---- the fake Redis ---- */

enum { SRV_ANSWER, SRV_CLOSE, SRV_STALL };

#define MAX_PEERS 256

typedef struct peer {
    uv_tcp_t h;
    char buf[8192];
    size_t len;
    int open;
} peer_t;

static uv_loop_t loop;
static uv_timer_t ticker; /* wakes uv_run(UV_RUN_ONCE) so RUN_UNTIL can look */

static struct {
    uv_tcp_t listener;
    int port;
    int mode;
    const char *auth_reply; /* NULL: +OK */
    const char *ping_reply; /* NULL: +PONG */
    int accepts;
    int64_t accept_ms[MAX_PEERS];
    peer_t *peers[MAX_PEERS];
    int npeers;
    peer_t *subscriber; /* the peer that sent SUBSCRIBE */
} srv;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        int64_t end_ = mono_ms() + (ms);                                                           \
        while (!(cond) && mono_ms() < end_) uv_run(&loop, UV_RUN_ONCE);                            \
    } while (0)

static void run_for(int ms) { RUN_UNTIL(0, ms); }

static void on_peer_closed(uv_handle_t *h) {
    for (int i = 0; i < srv.npeers; i++)
        if (srv.peers[i] == h->data) srv.peers[i] = NULL;
    free(h->data);
}

static void peer_close(peer_t *p) {
    if (!p->open) return;
    p->open = 0;
    uv_close((uv_handle_t *)&p->h, on_peer_closed);
}

static void drop_clients(void) {
    for (int i = 0; i < srv.npeers; i++)
        if (srv.peers[i] && srv.peers[i]->open) peer_close(srv.peers[i]);
}

static void reply(peer_t *p, const char *s, size_t n) {
    uv_buf_t b = uv_buf_init((char *)s, (unsigned)n);
    cr_assert_eq(uv_try_write((uv_stream_t *)&p->h, &b, 1), (int)n);
}

static void reply_str(peer_t *p, const char *s) { reply(p, s, strlen(s)); }

/* One command of RESP at the head of p->buf: its first two arguments in
 * name and arg. Returns the bytes it took, or 0 if it is not all there. */
static size_t parse(peer_t *p, char *name, size_t namecap, char *arg, size_t argcap) {
    char *s = p->buf, *end = p->buf + p->len;
    name[0] = arg[0] = '\0';
    char *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl) return 0;
    cr_assert_eq(*s, '*', "not an array of bulk strings");
    int argc = atoi(s + 1);
    s = nl + 1;
    for (int i = 0; i < argc; i++) {
        nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl) return 0;
        size_t len = (size_t)atol(s + 1);
        s = nl + 1;
        if ((size_t)(end - s) < len + 2) return 0;
        char *dst = i == 0 ? name : i == 1 ? arg : NULL;
        size_t cap = i == 0 ? namecap : argcap;
        if (dst) snprintf(dst, cap, "%.*s", (int)len, s);
        s += len + 2;
    }
    return (size_t)(s - p->buf);
}

static void answer(peer_t *p, const char *name, const char *arg) {
    if (srv.mode == SRV_STALL) return;
    if (strcmp(name, "AUTH") == 0) {
        reply_str(p, srv.auth_reply ? srv.auth_reply : "+OK\r\n");
    } else if (strcmp(name, "SELECT") == 0) {
        reply_str(p, "+OK\r\n");
    } else if (strcmp(name, "PING") == 0) {
        reply_str(p, srv.ping_reply ? srv.ping_reply : "+PONG\r\n");
    } else if (strcmp(name, "SUBSCRIBE") == 0) {
        char head[96];
        reply(p, head,
              (size_t)snprintf(head, sizeof(head), "*3\r\n$9\r\nsubscribe\r\n$%zu\r\n%s\r\n:1\r\n",
                               strlen(arg), arg));
        srv.subscriber = p;
    } else if (strcmp(name, "ECHO") == 0) {
        char head[32];
        reply(p, head, (size_t)snprintf(head, sizeof(head), "$%zu\r\n", strlen(arg)));
        reply_str(p, arg);
        reply_str(p, "\r\n");
    }
    /* anything else is held: a command whose reply never comes */
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
    peer_t *p = h->data;
    *b = uv_buf_init(p->buf + p->len, (unsigned)(sizeof(p->buf) - p->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    peer_t *p = s->data;
    if (n < 0) {
        peer_close(p);
        return;
    }
    p->len += (size_t)n;
    char name[32], arg[128];
    size_t used;
    while (p->open && (used = parse(p, name, sizeof(name), arg, sizeof(arg))) > 0) {
        memmove(p->buf, p->buf + used, p->len - used);
        p->len -= used;
        answer(p, name, arg);
    }
}

static void on_connection(uv_stream_t *l, int status) {
    cr_assert_eq(status, 0);
    cr_assert_lt(srv.npeers, MAX_PEERS);
    peer_t *p = calloc(1, sizeof(*p));
    uv_tcp_init(&loop, &p->h);
    p->h.data = p;
    p->open = 1;
    cr_assert_eq(uv_accept(l, (uv_stream_t *)&p->h), 0);
    srv.peers[srv.npeers++] = p;
    srv.accept_ms[srv.accepts++] = mono_ms();
    if (srv.mode == SRV_CLOSE)
        peer_close(p);
    else
        uv_read_start((uv_stream_t *)&p->h, on_alloc, on_read);
}

static void on_tick(uv_timer_t *t) {}

/* ---- the connection under test ---- */

static jq_rconn_t c;
static jq_url_t url;
static int ups, downs, closed, refusals;
static char refused_step[16], refused_why[160];

static void on_up(jq_rconn_t *x) { ups++; }
static void on_down(jq_rconn_t *x) { downs++; }
static void on_closed(jq_rconn_t *x) { closed++; }
static void on_refused(jq_rconn_t *x, const char *step, const char *why) {
    refusals++;
    snprintf(refused_step, sizeof(refused_step), "%s", step);
    snprintf(refused_why, sizeof(refused_why), "%s", why);
}

typedef struct answer {
    int calls, nulls;
    int downs_then; /* on_down calls seen when the callback ran */
    char str[64];
} answer_t;

static void on_reply(redisAsyncContext *ac, void *rp, void *priv) {
    answer_t *a = priv;
    redisReply *r = rp;
    a->calls++;
    a->downs_then = downs;
    if (!r)
        a->nulls++;
    else if (r->type == REDIS_REPLY_STRING)
        snprintf(a->str, sizeof(a->str), "%s", r->str);
}

static int send_cmd(const char *name, const char *arg, answer_t *a) {
    jq_args_t args;
    jq_args_init(&args);
    jq_args_str(&args, name);
    if (arg) jq_args_str(&args, arg);
    int rc = jq_rconn_args(&c, &args, on_reply, a);
    jq_args_destroy(&args);
    return rc;
}

static void setup(void) {
    memset(&srv, 0, sizeof(srv));
    ups = downs = closed = refusals = 0;
    fail_polls = 0;
    cr_assert_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &ticker);
    uv_timer_start(&ticker, on_tick, 5, 5);
    uv_tcp_init(&loop, &srv.listener);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    cr_assert_eq(uv_tcp_bind(&srv.listener, (struct sockaddr *)&a, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&srv.listener, 128, on_connection), 0);
    int len = sizeof(a);
    uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&a, &len);
    srv.port = ntohs(a.sin_port);
}

/* Connects to the fake as redis://AUTH127.0.0.1:port (AUTH: "" or ":pw@"). */
static void connect_to(const char *auth) {
    char s[128], err[128];
    snprintf(s, sizeof(s), "redis://%s127.0.0.1:%d", auth, srv.port);
    cr_assert_eq(jq_url_parse(s, &url, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(jq_rconn_init(&c, &loop, &url, NULL, "test"), 0);
    c.on_up = on_up;
    c.on_down = on_down;
}

static void teardown(void) {
    if (!c.closing) jq_rconn_close(&c, 0, on_closed);
    RUN_UNTIL(closed, 2000);
    cr_assert_eq(closed, 1, "on_closed did not run");
    drop_clients();
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_close((uv_handle_t *)&srv.listener, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Every handle of the connection's glue was closed: */
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
}

TestSuite(rconn, .init = setup, .fini = teardown, .timeout = 30);

Test(rconn, connects_sends_the_handshake_and_answers) {
    answer_t a = {0};
    connect_to("");
    /* Down until the handshake is answered: nothing is sent, fn never runs. */
    cr_assert_eq(send_cmd("ECHO", "early", &a), -1);
    RUN_UNTIL(ups == 1, 2000);
    cr_assert_eq(ups, 1);
    cr_assert(c.up);
    cr_assert_eq(send_cmd("ECHO", "hi", &a), 0);
    RUN_UNTIL(a.calls == 1, 2000);
    cr_assert_eq(a.calls, 1);
    cr_assert_str_eq(a.str, "hi");
    cr_assert_eq(srv.accepts, 1);
}

Test(rconn, a_command_that_could_not_be_built_is_not_sent) {
    answer_t a = {0};
    connect_to("");
    RUN_UNTIL(ups == 1, 2000);
    jq_args_t args;
    jq_args_init(&args);
    jq_args_str(&args, "ECHO");
    jq_args_str(&args, "x");
    args.oom = 1;
    cr_assert_eq(jq_rconn_args(&c, &args, on_reply, &a), -1);
    jq_args_destroy(&args);
    run_for(50);
    cr_assert_eq(a.calls, 0);
}

Test(rconn, a_drop_fails_pending_commands_then_calls_on_down_and_reconnects) {
    answer_t held = {0}, again = {0};
    connect_to("");
    RUN_UNTIL(ups == 1, 2000);
    cr_assert_eq(send_cmd("HOLD", NULL, &held), 0);
    run_for(30);
    cr_assert_eq(held.calls, 0);
    drop_clients();
    RUN_UNTIL(downs == 1, 2000);
    cr_assert_eq(downs, 1);
    cr_assert_eq(held.calls, 1, "the pending command's callback ran %d times", held.calls);
    cr_assert_eq(held.nulls, 1, "a lost command's callback gets NULL");
    cr_assert_eq(held.downs_then, 0, "pending callbacks run before on_down");
    cr_assert_eq(c.up, 0);
    cr_assert_eq(send_cmd("ECHO", "lost", &again), -1, "nothing is sent while down");
    RUN_UNTIL(ups == 2, 2000);
    cr_assert_eq(ups, 2);
    cr_assert_eq(send_cmd("ECHO", "back", &again), 0);
    RUN_UNTIL(again.calls == 1, 2000);
    cr_assert_str_eq(again.str, "back");
}

/* Each failed attempt doubles the delay up to the cap; a connection that
 * came up starts again from the shortest. */
Test(rconn, backoff_doubles_to_its_cap_and_resets_once_up) {
    srv.mode = SRV_CLOSE;
    connect_to("");
    c.backoff_max_ms = 400;
    RUN_UNTIL(srv.accepts >= 7, 5000);
    cr_assert_geq(srv.accepts, 7);
    static const int want[] = {50, 100, 200, 400, 400, 400};
    for (int i = 0; i < 6; i++) {
        int64_t gap = srv.accept_ms[i + 1] - srv.accept_ms[i];
        cr_expect(gap >= want[i] * 9 / 10 && gap <= want[i] + 250,
                  "attempt %d came %lld ms after the one before, not ~%d", i + 2, (long long)gap,
                  want[i]);
    }
    cr_assert_eq(ups, 0);
    cr_assert_eq(c.down_logged, 1, "the outage is logged (once)");
    srv.mode = SRV_ANSWER;
    RUN_UNTIL(ups == 1, 2000);
    cr_assert_eq(ups, 1);
    cr_assert_eq(c.down_logged, 0, "its end is logged");
    int before = srv.accepts;
    int64_t t0 = mono_ms();
    drop_clients();
    RUN_UNTIL(srv.accepts > before, 2000);
    cr_assert_gt(srv.accepts, before);
    cr_assert_lt(srv.accept_ms[before] - t0, 150, "the first retry after an up waits the shortest");
}

Test(rconn, a_refused_password_goes_to_on_refused_and_is_not_retried) {
    srv.auth_reply = "-WRONGPASS invalid username-password pair\r\n";
    connect_to(":secret@");
    c.on_refused = on_refused;
    RUN_UNTIL(refusals == 1, 2000);
    cr_assert_eq(refusals, 1);
    cr_assert_str_eq(refused_step, "AUTH");
    cr_assert(strstr(refused_why, "WRONGPASS"), "why: %s", refused_why);
    cr_assert(!strstr(refused_why, "secret"));
    run_for(300);
    cr_assert_eq(srv.accepts, 1, "a refusal with on_refused set is not retried");
    cr_assert_eq(ups, 0);
}

Test(rconn, a_refusal_without_on_refused_is_retried_like_an_outage) {
    srv.auth_reply = "-WRONGPASS invalid username-password pair\r\n";
    connect_to(":secret@");
    RUN_UNTIL(srv.accepts >= 3, 2000);
    cr_assert_geq(srv.accepts, 3);
    cr_assert_eq(c.down_logged, 2, "logged as a refusal");
    srv.auth_reply = NULL;
    RUN_UNTIL(ups == 1, 3000);
    cr_assert_eq(ups, 1);
}

Test(rconn, loading_is_an_outage_retried_at_the_shortest_backoff) {
    srv.ping_reply = "-LOADING Redis is loading the dataset in memory\r\n";
    connect_to("");
    c.on_refused = on_refused;
    RUN_UNTIL(srv.accepts >= 6, 3000);
    cr_assert_geq(srv.accepts, 6);
    for (int i = 1; i < 6; i++)
        cr_expect_leq(srv.accept_ms[i] - srv.accept_ms[i - 1], 250, "attempt %d waited %lld ms",
                      i + 1, (long long)(srv.accept_ms[i] - srv.accept_ms[i - 1]));
    cr_assert_eq(refusals, 0, "LOADING is not a configuration error");
    srv.ping_reply = NULL;
    RUN_UNTIL(ups == 1, 2000);
    cr_assert_eq(ups, 1);
}

Test(rconn, a_server_that_accepts_and_stalls_is_timed_out_and_retried) {
    connect_to("");
    RUN_UNTIL(ups == 1, 2000);
    c.connect_timeout_ms = 100;
    srv.mode = SRV_STALL;
    drop_clients();
    RUN_UNTIL(srv.accepts >= 4, 3000);
    cr_assert_geq(srv.accepts, 4, "each stalled handshake timed out and was tried again");
    cr_assert_eq(ups, 1);
    cr_assert_eq(c.up, 0);
    srv.mode = SRV_ANSWER;
    RUN_UNTIL(ups == 2, 3000);
    cr_assert_eq(ups, 2);
}

Test(rconn, close_at_once_fails_pending_commands) {
    answer_t held = {0};
    connect_to("");
    RUN_UNTIL(ups == 1, 2000);
    cr_assert_eq(send_cmd("HOLD", NULL, &held), 0);
    run_for(20);
    jq_rconn_close(&c, 0, on_closed);
    cr_assert_eq(held.nulls, 1, "a pending callback gets NULL at once");
    RUN_UNTIL(closed, 2000);
    cr_assert_eq(closed, 1);
    cr_assert_eq(downs, 0, "a close is not an outage");
    cr_assert_eq(send_cmd("ECHO", "x", &held), -1);
}

Test(rconn, a_graceful_close_waits_for_pending_replies) {
    answer_t a = {0};
    connect_to("");
    RUN_UNTIL(ups == 1, 2000);
    cr_assert_eq(send_cmd("ECHO", "last", &a), 0);
    jq_rconn_close(&c, 1, on_closed);
    RUN_UNTIL(closed, 2000);
    cr_assert_eq(closed, 1);
    cr_assert_eq(a.calls, 1);
    cr_assert_str_eq(a.str, "last");
}

Test(rconn, a_close_while_connecting_closes) {
    srv.mode = SRV_STALL;
    connect_to("");
    jq_rconn_close(&c, 1, on_closed);
    RUN_UNTIL(closed, 2000);
    cr_assert_eq(closed, 1);
}

/* libuv refusing to watch the socket is passed on: the attempt is dropped
 * at once and retried, not left waiting for the connect timeout. */
Test(rconn, a_poll_that_cannot_start_drops_the_attempt_at_once) {
    connect_to("");
    RUN_UNTIL(ups == 1, 2000);
    c.connect_timeout_ms = 5000;
    fail_polls = 1;
    int before = srv.accepts;
    drop_clients();
    RUN_UNTIL(ups == 2, 1000);
    cr_assert_eq(fail_polls, 0, "the poll was started (and failed)");
    cr_assert_eq(ups, 2, "the connection is back within 1 s of a failed poll");
    cr_assert_geq(srv.accepts, before + 2, "the failed attempt was dropped and tried again");
}

/* ---- the +switch-master subscription (switchsub.h) on the fake ---- */

static int switches;
static jq_url_addr_t sw_sentinel, sw_old, sw_now;

static void on_switch(void *data, const jq_url_addr_t *s, const jq_url_addr_t *old,
                      const jq_url_addr_t *now) {
    switches++;
    sw_sentinel = *s;
    sw_old = *old;
    sw_now = *now;
}

static void publish(const char *msg) {
    char head[256];
    cr_assert(srv.subscriber && srv.subscriber->open);
    reply(srv.subscriber, head,
          (size_t)snprintf(head, sizeof(head),
                           "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$%zu\r\n%s\r\n",
                           strlen(msg), msg));
}

static void on_sub_closed(jq_rconn_t *x) { closed++; }

Test(rconn, switch_master_is_followed_on_a_sentinel_and_resubscribed_after_a_loss) {
    static jq_switchsub_t sub;
    char u[128], err[128];
    /* The first sentinel listens nowhere: the subscription goes on to the
     * next, the fake. */
    snprintf(u, sizeof(u), "redis+sentinel://127.0.0.1:1,127.0.0.1:%d/mymaster", srv.port);
    cr_assert_eq(jq_url_parse(u, &url, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(jq_switchsub_init(&sub, &loop, &url, NULL, on_switch, NULL), 0);
    RUN_UNTIL(srv.subscriber, 3000);
    cr_assert(srv.subscriber, "never subscribed");
    run_for(20);
    publish("other 127.0.0.1 7000 127.0.0.1 7001"); /* another master's */
    publish("mymaster 127.0.0.1 6380 127.0.0.2 6381");
    RUN_UNTIL(switches, 2000);
    cr_expect_eq(switches, 1);
    cr_expect_str_eq(sw_old.host, "127.0.0.1");
    cr_expect_eq(sw_old.port, 6380);
    cr_expect_str_eq(sw_now.host, "127.0.0.2");
    cr_expect_eq(sw_now.port, 6381);
    cr_expect_eq(sw_sentinel.port, srv.port);
    /* Lost: it subscribes again (the fake is the one sentinel up). */
    peer_t *first = srv.subscriber;
    drop_clients();
    RUN_UNTIL(srv.subscriber != first && srv.subscriber, 5000);
    cr_assert(srv.subscriber != first, "not subscribed again");
    run_for(20);
    publish("mymaster 127.0.0.2 6381 127.0.0.1 6380");
    RUN_UNTIL(switches == 2, 2000);
    cr_expect_eq(switches, 2);
    cr_expect_eq(sw_now.port, 6380);
    c.closing = 1; /* the teardown closes sub, not c */
    jq_switchsub_close(&sub, on_sub_closed);
}

Test(rconn, switch_master_messages_parse) {
    jq_url_addr_t o, n;
    cr_expect_eq(jq_switchsub_parse("m 10.0.0.4 6379 10.0.0.5 6380", "m", &o, &n), 0);
    cr_expect_str_eq(n.host, "10.0.0.5");
    cr_expect_eq(o.port, 6379);
    cr_expect_eq(jq_switchsub_parse("m2 10.0.0.4 6379 10.0.0.5 6380", "m", &o, &n), -1);
    cr_expect_eq(jq_switchsub_parse("m 10.0.0.4 6379 10.0.0.5", "m", &o, &n), -1);
    cr_expect_eq(jq_switchsub_parse("m 10.0.0.4 0 10.0.0.5 6380", "m", &o, &n), -1);
    cr_expect_eq(jq_switchsub_parse("", "m", &o, &n), -1);
    c.closing = 1; /* no connection to close */
    closed = 1;
}
