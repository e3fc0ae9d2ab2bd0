/* consumer/web/httpd.c in one process: the server and a libuv client share
 * one loop; each test ends by closing the server and checking that the
 * loop closes clean (every handle closed, uv_loop_close() == 0). The
 * limits against hostile clients are exercised over real sockets by
 * tests/integration/test_httpd.py. */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "httpd_admit.h"

typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    const char *req;
    char buf[8192];
    size_t len;
    int done;
} client_t;

static void on_client_closed(uv_handle_t *h) { ((client_t *)h->data)->done = 1; }

static void on_client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
    client_t *c = h->data;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    client_t *c = s->data;
    if (n > 0) {
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    } else if (n < 0) {
        uv_close((uv_handle_t *)s, on_client_closed);
    }
}

static void on_client_written(uv_write_t *w, int status) {}

static void on_client_connect(uv_connect_t *req, int status) {
    client_t *c = req->data;
    cr_assert_eq(status, 0);
    uv_buf_t b = uv_buf_init((char *)c->req, (unsigned)strlen(c->req));
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_client_written);
    uv_read_start((uv_stream_t *)&c->tcp, on_client_alloc, on_client_read);
}

/* Sends req to the server and runs the loop until the server closed the
 * connection; returns the whole response (static storage). */
static const char *roundtrip(uv_loop_t *loop, jq_httpd_t *s, const char *req) {
    static client_t c;
    memset(&c, 0, sizeof(c));
    c.req = req;
    uv_tcp_init(loop, &c.tcp);
    c.tcp.data = &c;
    c.conn.data = &c;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", jq_httpd_port(s), &a);
    uv_tcp_connect(&c.conn, &c.tcp, (struct sockaddr *)&a, on_client_connect);
    while (!c.done) uv_run(loop, UV_RUN_ONCE);
    return c.buf;
}

static void close_clean(uv_loop_t *loop, jq_httpd_t *s) {
    jq_httpd_close(s, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(loop), 0, "a handle was left open");
}

static void on_hello(jq_http_req_t *req, void *data) {
    char body[512];
    const char *ua = jq_httpd_header(req, "x-test");
    size_t len;
    const char *b = jq_httpd_body(req, &len);
    snprintf(body, sizeof(body), "%s %s %s q=%s h=%s b=%zu:%s", (const char *)data,
             jq_httpd_method(req), jq_httpd_path(req), jq_httpd_query(req), ua ? ua : "-", len, b);
    jq_httpd_respond_text(req, 200, body);
}

static jq_httpd_t *server(uv_loop_t *loop) {
    char err[256];
    jq_httpd_t *s = jq_httpd_new(loop, "127.0.0.1:0", err, sizeof(err));
    cr_assert(s, "%s", err);
    cr_assert_gt(jq_httpd_port(s), 0);
    return s;
}

Test(httpd, routes_exact_subtree_longest_and_methods) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    jq_httpd_t *s = server(&loop);
    cr_assert_eq(jq_httpd_route(s, "GET", "/", on_hello, "root"), 0);
    cr_assert_eq(jq_httpd_route(s, "GET", "/api/", on_hello, "api"), 0);
    cr_assert_eq(jq_httpd_route(s, "POST", "/api/pause", on_hello, "pause"), 0);
    cr_assert_eq(jq_httpd_route(s, "GET", "/metrics", on_hello, "metrics"), 0);
    cr_expect_eq(jq_httpd_route(s, "GET", "no-slash", on_hello, NULL), -1);

    const char *r = roundtrip(&loop, s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_expect(strstr(r, "HTTP/1.1 200 OK\r\n") == r, "%s", r);
    cr_expect(strstr(r, "\r\n\r\nmetrics GET /metrics q= h=- b=0:"), "%s", r);
    r = roundtrip(&loop, s, "GET /metricsx HTTP/1.1\r\n\r\n"); /* not exact: the "/" subtree */
    cr_expect(strstr(r, "root GET /metricsx"), "%s", r);
    r = roundtrip(&loop, s, "GET /api/queues/a?x=1 HTTP/1.1\r\nX-Test: yes\r\n\r\n");
    cr_expect(strstr(r, "api GET /api/queues/a q=x=1 h=yes"), "%s", r);
    r = roundtrip(&loop, s,
                  "POST /api/pause HTTP/1.1\r\nContent-Length: 5\r\nx-TEST: tok\r\n\r\nhello");
    cr_expect(strstr(r, "pause POST /api/pause q= h=tok b=5:hello"), "%s", r);
    r = roundtrip(&loop, s, "DELETE /api/pause HTTP/1.1\r\n\r\n");
    cr_expect(strstr(r, "HTTP/1.1 405 ") == r, "%s", r);
    /* GET /api/pause would be served, by the "/api/" subtree. */
    cr_expect(strstr(r, "\r\nAllow: GET, POST\r\n"), "%s", r);
    r = roundtrip(&loop, s, "PUT /api/x HTTP/1.1\r\n\r\n");
    cr_expect(strstr(r, "\r\nAllow: GET\r\n"), "%s", r);
    r = roundtrip(&loop, s, "HEAD /metrics HTTP/1.1\r\n\r\n");
    cr_expect(strstr(r, "HTTP/1.1 200 ") == r && strstr(r, "Content-Length: 33\r\n"), "%s", r);
    cr_expect(strstr(r, "\r\n\r\n")[4] == '\0', "HEAD sent a body: %s", r);
    close_clean(&loop, s);
}

Test(httpd, no_route_is_404_and_garbage_400) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    jq_httpd_t *s = server(&loop);
    jq_httpd_route(s, "GET", "/healthz", on_hello, "h");
    const char *r = roundtrip(&loop, s, "GET /nope HTTP/1.1\r\n\r\n");
    cr_expect(strstr(r, "HTTP/1.1 404 ") == r, "%s", r);
    r = roundtrip(&loop, s, "NOT HTTP AT ALL\r\n\r\n");
    cr_expect(strstr(r, "HTTP/1.1 400 ") == r, "%s", r);
    close_clean(&loop, s);
}

/* ---- answering later ---- */

typedef struct later {
    uv_timer_t timer;
    jq_http_req_t *req;
} later_t;

static void on_later_closed(uv_handle_t *h) { free(h->data); }

static void on_later(uv_timer_t *t) {
    later_t *l = t->data;
    cr_expect_eq(jq_httpd_add_header(l->req, "X-Bad", "a\r\nSet-Cookie: x"), -1);
    cr_expect_eq(jq_httpd_add_header(l->req, "Location", "/there"), 0);
    jq_httpd_respond(l->req, 302, "text/html", "<a>", 3);
    uv_close((uv_handle_t *)t, on_later_closed);
}

static void on_deferred(jq_http_req_t *req, void *data) {
    later_t *l = calloc(1, sizeof(*l));
    l->req = req;
    uv_timer_init(data, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_later, 30, 0);
}

Test(httpd, a_handler_may_answer_later_with_headers) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    jq_httpd_t *s = server(&loop);
    jq_httpd_route(s, NULL, "/later", on_deferred, &loop);
    const char *r = roundtrip(&loop, s, "PUT /later HTTP/1.1\r\n\r\n");
    cr_expect(strstr(r, "HTTP/1.1 302 Found\r\n") == r, "%s", r);
    cr_expect(strstr(r, "\r\nLocation: /there\r\n"), "%s", r);
    cr_expect(strstr(r, "\r\nContent-Type: text/html\r\n"), "%s", r);
    cr_expect(!strstr(r, "Set-Cookie"), "%s", r);
    cr_expect(strcmp(strstr(r, "\r\n\r\n"), "\r\n\r\n<a>") == 0, "%s", r);
    close_clean(&loop, s);
}

/* A request still held when the server closes stays valid; answering it
 * then only frees it (the sanitizers check that nothing leaks). */
static jq_http_req_t *held;
static void on_hold(jq_http_req_t *req, void *data) { held = req; }

Test(httpd, closing_with_a_held_request) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    jq_httpd_t *s = server(&loop);
    jq_httpd_route(s, "GET", "/hold", on_hold, NULL);
    static client_t c;
    c.req = "GET /hold HTTP/1.1\r\n\r\n";
    uv_tcp_init(&loop, &c.tcp);
    c.tcp.data = &c;
    c.conn.data = &c;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", jq_httpd_port(s), &a);
    uv_tcp_connect(&c.conn, &c.tcp, (struct sockaddr *)&a, on_client_connect);
    while (!held) uv_run(&loop, UV_RUN_ONCE);
    jq_httpd_close(s, NULL, NULL);
    while (!c.done) uv_run(&loop, UV_RUN_ONCE); /* the server closed the connection */
    cr_expect_eq(c.len, 0, "an answer came: %s", c.buf);
    jq_httpd_respond_text(held, 200, "too late\n");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
}

/* Every ordinary slot held by a handler (no connection left that could
 * give way): /healthz still gets a reserved slot, another path does not. */
static jq_http_req_t *holding[JQ_HTTPD_MAX_CONNS];
static int nholding;
static void on_hold_many(jq_http_req_t *req, void *data) { holding[nholding++] = req; }

static void connect_from(uv_loop_t *loop, client_t *c, const char *from, int port,
                         const char *req) {
    c->req = req;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->conn.data = c;
    struct sockaddr_in src, dst;
    uv_ip4_addr(from, 0, &src);
    cr_assert_eq(uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0), 0);
    uv_ip4_addr("127.0.0.1", port, &dst);
    uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&dst, on_client_connect);
}

Test(httpd, a_reserved_slot_answers_healthz_when_every_slot_is_busy) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    jq_httpd_t *s = server(&loop);
    jq_httpd_route(s, "GET", "/hold", on_hold_many, NULL);
    jq_httpd_route(s, "GET", "/healthz", on_hello, "h");
    jq_httpd_route(s, "GET", "/other", on_hello, "o");
    cr_assert_eq(jq_httpd_reserve(s, "/healthz"), 0);
    static client_t busy[JQ_HTTPD_MAX_CONNS];
    for (int i = 0; i < JQ_HTTPD_MAX_CONNS; i++) {
        char from[32];
        snprintf(from, sizeof(from), "127.0.0.%d", 2 + i / JQ_HTTPD_PER_ADDR);
        connect_from(&loop, &busy[i], from, jq_httpd_port(s), "GET /hold HTTP/1.1\r\n\r\n");
    }
    for (int turns = 0; nholding < JQ_HTTPD_MAX_CONNS && turns < 100000; turns++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(nholding, JQ_HTTPD_MAX_CONNS);
    const char *r = roundtrip(&loop, s, "GET /healthz HTTP/1.1\r\n\r\n");
    cr_expect(strstr(r, "HTTP/1.1 200 ") == r && strstr(r, "h GET /healthz"), "%s", r);
    r = roundtrip(&loop, s, "GET /other HTTP/1.1\r\n\r\n");
    cr_expect(strstr(r, "HTTP/1.1 503 ") == r, "%s", r);
    for (int i = 0; i < nholding; i++) jq_httpd_respond_text(holding[i], 200, "held\n");
    for (int i = 0; i < JQ_HTTPD_MAX_CONNS; i++) {
        while (!busy[i].done) uv_run(&loop, UV_RUN_ONCE);
        cr_expect(strstr(busy[i].buf, "HTTP/1.1 200 ") == busy[i].buf, "%d: %s", i, busy[i].buf);
    }
    close_clean(&loop, s);
}

Test(httpd, bad_addresses) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    const char *bad[] = {"",          "9100",    "localhost:9100", "127.0.0.1:", "127.0.0.1:70000",
                         "[::1:9100", "1.2.3:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cr_expect_null(jq_httpd_new(&loop, bad[i], err, sizeof(err)), "%s accepted", bad[i]);
        cr_expect(strstr(err, "bad address"), "%s: %s", bad[i], err);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
}

/* ---- who gets a slot (httpd_admit.c) ---- */

static jq_httpd_slot_t slot_of[JQ_HTTPD_MAX_CONNS + JQ_HTTPD_RESERVED];
static const jq_httpd_slot_t *slot_ptr[JQ_HTTPD_MAX_CONNS + JQ_HTTPD_RESERVED];

/* n open connections from 10.0.0.<addr(i)>, each reading or not, idle
 * since last_ms = 1000 + i (so the first is the idlest). */
static int open_slots(int n, int (*addr)(int), int (*reading)(int)) {
    for (int i = 0; i < n; i++) {
        jq_httpd_slot_t *x = &slot_of[i];
        memset(x, 0, sizeof(*x));
        x->peer.len = 4;
        x->peer.addr[0] = 10;
        x->peer.addr[3] = (unsigned char)addr(i);
        x->reading = reading(i);
        x->last_ms = 1000 + (uint64_t)i;
        slot_ptr[i] = x;
    }
    return n;
}

static jq_httpd_peer_t peer(int last) {
    jq_httpd_peer_t p = {{10, 0, 0, (unsigned char)last}, 4};
    return p;
}

static int each_own(int i) { return i; }
static int by_fifteen(int i) { return i / 15; } /* 15 per address */
static int all(int i) {
    (void)i;
    return 1;
}
static int none(int i) {
    (void)i;
    return 0;
}
static int from_ten(int i) { return i >= 10; }

Test(httpd_admit, below_the_cap_everyone_is_in) {
    int evict, n = open_slots(JQ_HTTPD_MAX_CONNS - 1, each_own, all);
    jq_httpd_peer_t p = peer(200);
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &p, &evict), JQ_HTTPD_ADMIT);
    cr_expect_eq(evict, -1);
}

Test(httpd_admit, at_the_cap_the_idlest_reader_gives_way) {
    int evict, n = open_slots(JQ_HTTPD_MAX_CONNS, by_fifteen, from_ten);
    jq_httpd_peer_t p = peer(200);
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &p, &evict), JQ_HTTPD_ADMIT);
    cr_expect_eq(evict, 10, "the first still reading, not a busy one: %d", evict);
    /* One that read a byte just now is no longer the idlest. */
    slot_of[10].last_ms = 5000;
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &p, &evict), JQ_HTTPD_ADMIT);
    cr_expect_eq(evict, 11);
}

static int flood_last(int i) { return i >= JQ_HTTPD_MAX_CONNS - 10 ? 7 : i + 10; }

Test(httpd_admit, the_address_holding_the_most_gives_way) {
    /* 54 addresses with one idle connection each, 10 newer ones from 7: a
     * newcomer takes the idlest of 7's, never the lone probe of another. */
    int evict, n = open_slots(JQ_HTTPD_MAX_CONNS, flood_last, all);
    jq_httpd_peer_t p = peer(200);
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &p, &evict), JQ_HTTPD_ADMIT);
    cr_expect_eq(evict, JQ_HTTPD_MAX_CONNS - 10, "%d", evict);
    /* As idle as each other: the first accepted gives way. */
    for (int i = 0; i < n; i++) slot_of[i].last_ms = 1000, slot_of[i].seq = (uint64_t)(n - i);
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &p, &evict), JQ_HTTPD_ADMIT);
    cr_expect_eq(evict, n - 1, "%d", evict);
}

Test(httpd_admit, all_busy_takes_a_reserved_slot_then_refuses) {
    int evict, n = open_slots(JQ_HTTPD_MAX_CONNS, by_fifteen, none);
    jq_httpd_peer_t p = peer(200);
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &p, &evict), JQ_HTTPD_ADMIT_RESERVED);
    cr_expect_eq(evict, -1);
    /* The reserved slots taken, one of them still reading: it gives way. */
    n = open_slots(JQ_HTTPD_MAX_CONNS + JQ_HTTPD_RESERVED, by_fifteen, none);
    for (int i = JQ_HTTPD_MAX_CONNS; i < n; i++) slot_of[i].reserved = 1;
    slot_of[n - 1].reading = 1;
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &p, &evict), JQ_HTTPD_ADMIT_RESERVED);
    cr_expect_eq(evict, n - 1);
    slot_of[n - 1].reading = 0;
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &p, &evict), JQ_HTTPD_REFUSE);
    cr_expect_eq(evict, -1);
}

static int one_address(int i) {
    (void)i;
    return 7;
}

Test(httpd_admit, one_address_holds_a_fair_share) {
    /* Its share taken, some reading: its own idlest reader gives way, even
     * with ordinary slots free and older readers of other addresses. */
    int evict, n = open_slots(JQ_HTTPD_PER_ADDR, one_address, from_ten);
    jq_httpd_peer_t p = peer(7), other = peer(8);
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &p, &evict), JQ_HTTPD_ADMIT);
    cr_expect_eq(evict, 10);
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &other, &evict), JQ_HTTPD_ADMIT);
    cr_expect_eq(evict, -1);
    /* All of its share busy: refused, while another address gets in. */
    n = open_slots(JQ_HTTPD_PER_ADDR, one_address, none);
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &p, &evict), JQ_HTTPD_REFUSE);
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &other, &evict), JQ_HTTPD_ADMIT);
    /* IPv6 and IPv4 addresses never compare equal. */
    jq_httpd_peer_t v6 = {{10, 0, 0, 7}, 16};
    cr_expect_eq(jq_httpd_admit(slot_ptr, n, &v6, &evict), JQ_HTTPD_ADMIT);
}
