/* consumer/web/httpd.c in one process: the server and a libuv client share
 * one loop; each test ends by closing the server and checking that the
 * loop closes clean (every handle closed, uv_loop_close() == 0). The
 * limits against hostile clients are exercised over real sockets by
 * tests/integration/test_httpd.py. */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"

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
    snprintf(body, sizeof(body), "%s %s %s q=%s h=%s b=%zu:%s", (const char *)data, jq_httpd_method(req),
             jq_httpd_path(req), jq_httpd_query(req), ua ? ua : "-", len, b);
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
    r = roundtrip(&loop, s, "POST /api/pause HTTP/1.1\r\nContent-Length: 5\r\nx-TEST: tok\r\n\r\nhello");
    cr_expect(strstr(r, "pause POST /api/pause q= h=tok b=5:hello"), "%s", r);
    r = roundtrip(&loop, s, "DELETE /api/pause HTTP/1.1\r\n\r\n");
    cr_expect(strstr(r, "HTTP/1.1 405 ") == r, "%s", r);
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

Test(httpd, bad_addresses) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    const char *bad[] = {"", "9100", "localhost:9100", "127.0.0.1:", "127.0.0.1:70000", "[::1:9100", "1.2.3:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cr_expect_null(jq_httpd_new(&loop, bad[i], err, sizeof(err)), "%s accepted", bad[i]);
        cr_expect(strstr(err, "bad address"), "%s: %s", bad[i], err);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
}
