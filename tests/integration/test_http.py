"""The http handler against a local HTTP server started by the test (python3's
http.server on loopback): requests, failures, the allow list and each way of
escaping it, redirects, bounded responses, and many requests and commands
running at once in one worker."""
import json
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import msgpack
import pytest

from conftest import CONSUMER, free_port, maps_lib, scale, wait_for, wait_result, xadd
import subprocess


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body, headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route(self):
        self.server.hits.append(self.path)
        u = urlparse(self.path)
        q = parse_qs(u.query)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if u.path == "/ok/hello":
            return self.reply(200, "hello", [("X-Reply", "yes")])
        if u.path == "/ok/echo":
            return self.reply(200, json.dumps({
                "method": self.command, "x-test": self.headers.get("X-Test"),
                "body": body.decode("latin-1")}))
        if u.path == "/ok/status/500":
            return self.reply(500, "boom")
        if u.path.startswith("/ok/status/"):
            return self.reply(int(u.path.rsplit("/", 1)[1]), "status")
        if u.path == "/ok/slow":
            time.sleep(int(q["ms"][0]) / 1000)   # a slow server: the span is the point
            return self.reply(200, "slow")
        if u.path == "/ok/big":
            return self.reply(200, b"x" * int(q["n"][0]))
        if u.path == "/ok/redirect-in":
            return self.reply(302, "", [("Location", "/ok/hello")])
        if u.path == "/ok/redirect-out":
            return self.reply(302, "", [("Location", q["to"][0])])
        if u.path == "/ok/see-other":
            return self.reply(303, "", [("Location", "/ok/echo")])
        if u.path == "/ok/headers":
            return self.reply(200, json.dumps({k.lower(): v for k, v in self.headers.items()}))
        if u.path == "/ok/slow-redirect":
            n = int(q["n"][0])
            time.sleep(int(q["ms"][0]) / 1000)   # each hop slow: the sum is the point
            if n == 0:
                return self.reply(200, "arrived")
            return self.reply(302, "", [("Location", "/ok/slow-redirect?ms=%s&n=%d"
                                         % (q["ms"][0], n - 1))])
        return self.reply(200, "not for jobs: " + self.path)

    do_GET = do_POST = do_PUT = do_DELETE = route


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # every concurrent job's connection at once

    def __init__(self):
        self.hits = []
        self.connections = 0
        super().__init__(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def verify_request(self, request, client_address):
        self.connections += 1
        return True

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.server_address[1]


@pytest.fixture
def servers():
    ok, evil = Server(), Server()
    yield ok, evil
    for s in (ok, evil):
        s.shutdown()
        s.server_close()


def http_job(r, payload, **kw):
    return wait_result(r, xadd(r, type="http", payload=payload, **kw))


def test_get_post_500_and_refused(r, consumer, servers):
    ok, _ = servers
    closed = free_port()
    consumer("--http-allow", ok.base + "/ok/", "--http-allow", "http://127.0.0.1:%d/" % closed)
    res = http_job(r, {"url": ok.base + "/ok/hello"})
    assert res["state"] == b"done", res
    out = msgpack.unpackb(res["result"])
    assert out["status"] == 200 and out["body"] == "hello"
    assert out["headers"]["x-reply"] == "yes" and out["headers"]["content-length"] == "5"

    res = http_job(r, {"url": ok.base + "/ok/echo", "method": "POST",
                       "headers": {"X-Test": "a b"}, "body": b"\x00\xffpayload"})
    out = msgpack.unpackb(res["result"])
    assert json.loads(out["body"]) == {"method": "POST", "x-test": "a b",
                                       "body": "\x00\xffpayload"}

    res = http_job(r, {"url": ok.base + "/ok/status/500"}, max_attempts=1)
    assert res["state"] == b"dead" and res["error"] == b"http: status 500", res
    res = http_job(r, {"url": ok.base + "/ok/status/500", "fail_on_status": False})
    out = msgpack.unpackb(res["result"])
    assert res["state"] == b"done" and out["status"] == 500 and out["body"] == "boom"

    res = http_job(r, {"url": "http://127.0.0.1:%d/x" % closed}, max_attempts=1)
    assert res["state"] == b"dead" and b"connect" in res["error"].lower(), res


def test_a_4xx_but_408_and_429_is_permanent(r, consumer, servers):
    # Issue 27: the request itself is wrong, sending it again cannot help;
    # dead at once with the attempts made. 408 and 429 and 5xx are retried.
    ok, _ = servers
    consumer("--http-allow", ok.base + "/ok/", "--backoff-ms", "20")
    for code in (400, 404, 422):
        res = http_job(r, {"url": ok.base + "/ok/status/%d" % code}, max_attempts=3)
        assert res["state"] == b"dead" and res["attempts"] == b"1", res
        assert res["error"] == b"http: status %d" % code, res
    for code in (408, 429, 503):
        res = http_job(r, {"url": ok.base + "/ok/status/%d" % code}, max_attempts=2)
        assert res["state"] == b"dead" and res["attempts"] == b"2", res
    # A malformed payload, or a URL outside the allow list, is the same on
    # every attempt.
    res = http_job(r, {"url": ok.base + "/ok/hello", "timeout_ms": "soon"}, max_attempts=3)
    assert res["state"] == b"dead" and res["attempts"] == b"1", res
    res = http_job(r, {"url": "http://127.0.0.1:1/elsewhere"}, max_attempts=3)
    assert res["state"] == b"dead" and res["attempts"] == b"1", res
    assert b"refused" in res["error"], res


def test_outside_the_allow_list_and_escapes_make_no_connection(r, consumer, servers):
    ok, evil = servers
    consumer("--http-allow", ok.base + "/ok/")
    before = ok.connections
    refused = [
        ok.base + "/secret",                                    # outside the prefix
        evil.base + "/ok/hello",                                # another port
        "http://%s@127.0.0.1:%d/ok/hello" % (ok.base[7:], evil.server_address[1]),  # userinfo
        "http://user@%s/ok/hello" % ok.base[7:],
        ok.base + "/ok/../secret",                              # dot segments
        ok.base + "/ok/..%2Fsecret",                            # encoded slash
        ok.base + "/ok/%2e%2e/secret",                          # encoded dots
        ok.base.replace("http:", "https:") + "/ok/hello",       # other scheme
        "file:///etc/passwd",
    ]
    for url in refused:
        res = http_job(r, {"url": url}, max_attempts=1)
        assert res["state"] == b"dead", (url, res)
        assert b"refused" in res["error"], (url, res)
    assert ok.connections == before and evil.connections == 0
    assert "/secret" not in ok.hits


def test_redirects_only_to_allowed_urls(r, consumer, servers):
    ok, evil = servers
    consumer("--http-allow", ok.base + "/ok/")
    res = http_job(r, {"url": ok.base + "/ok/redirect-in"})
    out = msgpack.unpackb(res["result"])
    assert out["status"] == 200 and out["body"] == "hello", res
    # 303 after a POST: a GET without the body.
    res = http_job(r, {"url": ok.base + "/ok/see-other", "method": "POST", "body": "x"})
    assert json.loads(msgpack.unpackb(res["result"])["body"])["method"] == "GET"
    for to in (evil.base + "/ok/hello", ok.base + "/secret",
               "http://x@127.0.0.1:%d/ok/hello" % evil.server_address[1]):
        res = http_job(r, {"url": ok.base + "/ok/redirect-out?to=" + to}, max_attempts=1)
        assert res["state"] == b"dead" and b"redirect to" in res["error"], res
    assert evil.connections == 0 and "/secret" not in ok.hits


def test_framing_headers_are_refused_before_any_connection(r, consumer, servers):
    # With Content-Length: 0 the body would reach the allowed server as a
    # second request of the job's choosing (any path, any Host).
    ok, _ = servers
    consumer("--http-allow", ok.base + "/ok/")
    smuggled = "GET /admin HTTP/1.1\r\nHost: internal\r\n\r\n"
    for name in ("Content-Length", "transfer-encoding", "Connection", "Upgrade", "TE",
                 "Expect", "Keep-Alive", "Trailer", "Proxy-Connection", "HOST"):
        res = http_job(r, {"url": ok.base + "/ok/echo", "method": "POST", "body": smuggled,
                           "headers": {name: "0"}}, max_attempts=1)
        assert res["state"] == b"dead", (name, res)
        assert res["error"].lower() == (
            "http: the %s header is not the job's to set" % name).lower().encode(), res
    assert ok.connections == 0 and ok.hits == []
    res = http_job(r, {"url": ok.base + "/ok/echo", "method": "POST", "body": "x",
                       "headers": {"X-Test": "fine"}})
    assert json.loads(msgpack.unpackb(res["result"])["body"])["x-test"] == "fine"


def test_a_redirect_to_another_origin_drops_the_jobs_credentials(r, consumer, servers):
    ok, other = servers
    consumer("--http-allow", ok.base + "/ok/", "--http-allow", other.base + "/ok/")
    creds = {"Authorization": "Bearer s3cret", "Cookie": "sid=1",
             "Proxy-Authorization": "Basic eA==", "X-Test": "kept"}
    # Same origin: the job's headers follow the redirect.
    res = http_job(r, {"url": ok.base + "/ok/redirect-out?to=/ok/headers", "headers": creds})
    seen = json.loads(msgpack.unpackb(res["result"])["body"])
    assert seen["authorization"] == "Bearer s3cret" and seen["cookie"] == "sid=1", seen
    # Another origin, allowed: the request goes, its credentials do not.
    res = http_job(r, {"url": ok.base + "/ok/redirect-out?to=" + other.base + "/ok/headers",
                       "headers": creds})
    seen = json.loads(msgpack.unpackb(res["result"])["body"])
    assert other.hits == ["/ok/headers"], other.hits
    assert "authorization" not in seen and "cookie" not in seen, seen
    assert "proxy-authorization" not in seen and seen["x-test"] == "kept", seen


def test_timeout_ms_bounds_the_whole_redirect_chain(r, consumer, servers):
    # Four hops of 250 ms each: every hop is within 600 ms, their sum is not.
    ok, _ = servers
    consumer("--http-allow", ok.base + "/ok/")
    res = http_job(r, {"url": ok.base + "/ok/slow-redirect?ms=250&n=3", "timeout_ms": 600},
                   max_attempts=1)
    assert res["state"] == b"dead" and b"timed out" in res["error"].lower(), res
    res = http_job(r, {"url": ok.base + "/ok/slow-redirect?ms=50&n=3", "timeout_ms": 5000})
    assert msgpack.unpackb(res["result"])["body"] == "arrived", res


def test_timeout_and_bounded_response(r, consumer, servers):
    ok, _ = servers
    c = consumer("--http-allow", ok.base + "/ok/", "--http-max-response", "64k")
    res = http_job(r, {"url": ok.base + "/ok/slow?ms=3000", "timeout_ms": 200}, max_attempts=1)
    assert res["state"] == b"dead" and b"timed out" in res["error"].lower(), res
    res = http_job(r, {"url": ok.base + "/ok/big?n=%d" % (200 * 1024)}, max_attempts=1)
    assert res["error"] == b"http: response body over --http-max-response (65536 bytes)", res
    res = http_job(r, {"url": ok.base + "/ok/big?n=65536"})
    assert len(msgpack.unpackb(res["result"])["body"]) == 65536
    # The job's own timeout cancels a request in flight.
    res = http_job(r, {"url": ok.base + "/ok/slow?ms=3000"}, timeout_ms=300, max_attempts=1)
    assert res["state"] == b"dead" and b"timeout" in res["error"], res
    res = http_job(r, {"url": ok.base + "/ok/hello"})
    assert res["state"] == b"done"
    assert c.proc.poll() is None


def test_bad_payloads_and_settings(r, consumer, servers):
    ok, _ = servers
    consumer("--http-allow", ok.base + "/ok/")
    for payload, why in [
            ({"method": "GET"}, b"http: payload must be a map with a url"),
            ({"url": ok.base + "/ok/hello", "headers": {"Host": "evil"}}, b"the Host header"),
            ({"url": ok.base + "/ok/hello", "headers": {"X-A": "1\r\nX-B: 2"}}, b"bad header X-A"),
            ({"url": ok.base + "/ok/hello", "method": "GET /x"}, b"method must be a token"),
            ({"url": ok.base + "/ok/hello", "timeout_ms": 0}, b"timeout_ms")]:
        res = http_job(r, payload, max_attempts=1)
        assert why in res["error"], (payload, res)
    p = subprocess.run([CONSUMER, "--redis", "redis://127.0.0.1:1", "--http-allow", "http://u@x/"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--http-allow 'http://u@x/': a URL with userinfo" in p.stderr


def test_http_is_off_without_an_allow_list(r, consumer, servers):
    ok, _ = servers
    consumer()
    res = http_job(r, {"url": ok.base + "/ok/hello"})
    assert res["state"] == b"dead" and res["error"] == b"unknown job type: http"
    assert ok.connections == 0


def test_a_worker_loads_libcurl_at_its_first_http_job(r, consumer, servers):
    # The master loads it at start, to refuse a bad allow list before any
    # worker exists; a worker only when it runs an http job (an idle
    # worker with libcurl mapped was 10.8 MiB RSS, 2.7 without).
    ok, _ = servers
    c = consumer("--workers", "2", "--http-allow", ok.base + "/ok/")
    pids = c.worker_pids()
    assert maps_lib(c.pid, "libcurl.so")
    for pid in pids:
        assert maps_lib(pid, "libuv.so") and not maps_lib(pid, "libcurl.so"), pid
    res = http_job(r, {"url": ok.base + "/ok/hello"})
    assert res["state"] == b"done", res
    assert msgpack.unpackb(res["result"])["body"] == "hello"
    ran = int(res["worker"].decode().rsplit(":", 1)[1])
    assert ran in pids and maps_lib(ran, "libcurl.so")
    assert [p for p in pids if p != ran and maps_lib(p, "libcurl.so")] == []
    # The allow list, parsed at that first job, still refuses.
    res = http_job(r, {"url": ok.base + "/other"}, max_attempts=1)
    assert res["state"] == b"dead" and b"refused" in res["error"], res


def test_many_http_and_exec_jobs_run_at_once_in_one_worker(r, consumer, servers, tmpdir_path):
    ok, _ = servers
    slow = os.path.join(tmpdir_path, "slow.sh")
    with open(slow, "w") as f:
        f.write("#!/bin/sh\nsleep 1\necho $JOBQ_JOB_ID\n")
    os.chmod(slow, os.stat(slow).st_mode | stat.S_IXUSR)
    consumer("--workers", "1", "--http-allow", ok.base + "/ok/", "--exec", "slow=" + slow)
    n = 20
    t0 = time.time()
    ids = [xadd(r, type="http", payload={"url": ok.base + "/ok/slow?ms=1000"}) for _ in range(n)]
    ids += [xadd(r, type="slow") for _ in range(n)]
    for i in ids:
        assert wait_result(r, i, timeout=60)["state"] == b"done"
    took = time.time() - t0
    # One after another: 40 s. On the loop, together: about 1 s.
    assert took < scale(10), took


def test_a_worker_stopping_mid_request_and_mid_command_closes_cleanly(r, consumer, servers,
                                                                     tmpdir_path):
    ok, _ = servers
    pids = os.path.join(tmpdir_path, "pids")
    hang = os.path.join(tmpdir_path, "hang.sh")
    with open(hang, "w") as f:
        f.write("#!/bin/sh\necho $$ > %s\nsleep 300\n" % pids)
    os.chmod(hang, os.stat(hang).st_mode | stat.S_IXUSR)
    c = consumer("--http-allow", ok.base + "/ok/", "--exec", "hang=" + hang,
                 "--shutdown-timeout-ms", "300")
    xadd(r, type="http", payload={"url": ok.base + "/ok/slow?ms=5000"})
    xadd(r, type="hang")
    wait_for(lambda: os.path.exists(pids) and "/ok/slow?ms=5000" in ok.hits, what="both jobs started")
    c.stop()
    log = c.log()
    assert "shutdown timeout" in log, log
    # Cancelled at the shutdown timeout: curl's sockets and timer, the
    # command's pipes and process were all closed, and the command killed.
    assert "handles left" not in log, log
    with open(pids) as f:
        pid = int(f.read())
    assert not os.path.exists("/proc/%d" % pid) or \
        open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z"
