"""Rate and concurrency limits across consumers (issue 25, docs/PROTOCOL.md
"Limits"): a rate over two consumers measured from the jobs' own times, a
queue without a limit at full speed beside it, a concurrency limit checked
from the start and end times an HTTP server saw, a killed worker's slot
coming back with its lease's expiry, and the CLI's bad input.
(tests/integration/test_limits.py is about the size limits of entries.)"""
import email.utils
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import free_port, jobq, key, scale, stream, wait_for, wait_result, xadd


def finished_times(r, queue, ids):
    return sorted(int(r.hget(key("result:%s" % i, queue), "finished_at")) for i in ids)


def enqueue_noops(r, queue, n):
    p = r.pipeline(transaction=False)
    for _ in range(n):
        p.xadd(stream(queue), {"type": "noop", "enc": "json", "payload": "null"})
    return [eid.decode() for eid in p.execute()]


def all_done(r, queue, ids):
    p = r.pipeline(transaction=False)
    for i in ids:
        p.hget(key("result:%s" % i, queue), "state")
    return all(s == b"done" for s in p.execute())


def test_a_rate_holds_across_two_consumers_and_other_queues_run_at_full_speed(r, consumer,
                                                                              redis_server):
    # Set with a plain HSET, as any client may (PROTOCOL "Limits").
    assert redis_server.cli("HSET", key("limit", "slow"), "rate", "20", "period_ms", "1000")
    for _ in range(2):
        consumer("--queues", "slow,fast", "--workers", "1")
    slow = enqueue_noops(r, "slow", 200)
    fast = enqueue_noops(r, "fast", 1000)
    wait_for(lambda: all_done(r, "fast", fast), timeout=scale(20), what="fast queue done")
    wait_for(lambda: all_done(r, "slow", slow), timeout=scale(30), interval=0.2,
             what="slow queue done")
    t = finished_times(r, "slow", slow)
    f = finished_times(r, "fast", fast)
    span = (t[-1] - t[0]) / 1000
    # 200 jobs at 20/s: 10 s +- 10% (199 intervals of 50 ms, less the
    # bucket's first burst of 200 ms' worth).
    assert 9.0 <= span <= 11.0, span
    # Within 10% over any 10 s: no window of 10 s holds more than 220.
    j = 0
    for i in range(len(t)):
        while t[i] - t[j] >= 10000:
            j += 1
        assert i - j + 1 <= 220
    # The other queue ran at full speed meanwhile: done while the limited
    # one had most of its jobs still to start, far faster than 20/s.
    assert f[-1] < t[0] + 5000, (f[-1] - t[0])
    print("rate 20/s over two consumers: 200 jobs in %.3f s, %.2f/s (%.1f%% off); "
          "1000 unlimited jobs in %.3f s" % (span, 199 / span, (199 / span - 20) / 20 * 100,
                                             (f[-1] - f[0]) / 1000))


class Recorder(ThreadingHTTPServer):
    """Records when each request started and ended; /hold/N the first time
    holds the connection N ms (a job a killed worker was running)."""
    daemon_threads = True
    request_queue_size = 128

    def __init__(self):
        self.spans = []
        self.held = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), RecorderHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base(self):
        return "http://127.0.0.1:%d/" % self.server_address[1]


class RecorderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        start = time.time()
        parts = self.path.strip("/").split("/")
        ms = int(parts[1])
        if parts[0] == "hold":
            with self.server.lock:
                first = self.path not in self.server.held
                self.server.held.add(self.path)
            ms = ms if first else 0
        time.sleep(ms / 1000)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.server.lock:
            self.server.spans.append((start, time.time(), self.path))


@pytest.fixture
def recorder():
    s = Recorder()
    yield s
    s.shutdown()
    s.server_close()


def most_at_once(spans):
    events = sorted([(s, 1) for s, _, _ in spans] + [(e, -1) for _, e, _ in spans],
                    key=lambda x: (x[0], x[1]))
    n = top = 0
    for _, d in events:
        n += d
        top = max(top, n)
    return top


def test_a_concurrency_limit_holds_across_two_consumers(r, consumer, recorder, redis_server):
    p = jobq("limit", "set", "conc", "--concurrency", "3", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    for _ in range(2):
        consumer("--queues", "conc", "--workers", "2", "--http-allow", recorder.base)
    ids = [xadd(r, "conc", type="http", payload={"url": recorder.base + "sleep/300/%d" % i})
           for i in range(15)]
    for i in ids:
        assert wait_result(r, i, "conc", timeout=30)["state"] == b"done"
    spans = recorder.spans
    assert len(spans) == 15
    # Never more than 3 at once, and the limit used: 3 at once at times.
    assert most_at_once(spans) == 3, sorted(spans)
    assert r.zcard(key("leases", "conc")) == 0  # released with the outcomes


def test_a_killed_workers_slot_comes_back_within_the_visibility_timeout(r, consumer, recorder,
                                                                       redis_server):
    url = redis_server.url
    assert jobq("limit", "set", "one", "--concurrency", "1", redis_url=url).returncode == 0
    vis = 2000
    a = consumer("--queues", "one", "--http-allow", recorder.base, "--visibility-ms", str(vis))
    first = xadd(r, "one", type="http", payload={"url": recorder.base + "hold/60000"})
    wait_for(lambda: r.zcard(key("leases", "one")) == 1, what="the first job's lease")
    wait_for(lambda: any(p.startswith("/hold") for p in recorder.held), what="first job running")
    consumer("--queues", "one", "--http-allow", recorder.base, "--visibility-ms", str(vis))
    second = xadd(r, "one", type="http", payload={"url": recorder.base + "sleep/0"})
    time.sleep(0.5)  # the slot is taken: the second job does not start
    assert r.hget(key("result:%s" % second, "one"), "state") is None
    killed = time.time()
    for pid in a.worker_pids():  # a's only worker runs the first job
        os.kill(pid, signal.SIGKILL)
    res = wait_result(r, second, "one", timeout=15)
    took = int(res["finished_at"]) / 1000 - killed
    assert res["state"] == b"done"
    # The lease expires at most the visibility timeout after its last
    # renewal, which was before the kill (plus a poll of 100 ms).
    assert took <= vis / 1000 + scale(1.0), took
    assert wait_result(r, first, "one", timeout=15)["state"] == b"done"  # run again


def test_limit_cli_and_bad_input(r, redis_server):
    url = redis_server.url
    p = jobq("limit", "set", "q1", "--rate", "abc", redis_url=url)
    assert p.returncode == 2 and "--rate: 'abc' is not N/PERIOD" in p.stderr
    for bad in (["set", "q1"], ["set", "q1", "--concurrency", "0"], ["list", "q1"],
                ["rm"], ["set", "q1", "--rate", "5/0s"], ["set", "bad name", "--rate", "1/s"]):
        assert jobq("limit", *bad, redis_url=url).returncode == 2, bad
    assert r.exists(key("limit", "q1")) == 0
    p = jobq("limit", "set", "q1", "--rate", "20/1m", "--concurrency", "4", redis_url=url)
    assert p.returncode == 0, p.stderr
    assert r.hgetall(key("limit", "q1")) == {b"rate": b"20", b"period_ms": b"60000",
                                            b"concurrency": b"4"}
    p = jobq("limit", "list", "--json", redis_url=url)
    assert '"queue":"q1","rate":20,"period_ms":60000,"concurrency":4,"leases":0' in p.stdout
    assert jobq("limit", "set", "q1", "--rate", "5/10s", redis_url=url).returncode == 0
    assert r.hgetall(key("limit", "q1")) == {b"rate": b"5", b"period_ms": b"10000"}
    assert "q1" in jobq("limit", "list", redis_url=url).stdout
    assert jobq("limit", "rm", "q1", redis_url=url).returncode == 0
    assert r.exists(key("limit", "q1")) == 0


class LimitedHandler(BaseHTTPRequestHandler):
    """/limited/<name>/<code>/<retry-after>: the first call answers code with
    that Retry-After ("date:N" is an HTTP date N s ahead), later ones 200."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        now = time.time()
        _, name, code, after = self.path.strip("/").split("/")
        with self.server.lock:
            first = name not in self.server.calls
            self.server.calls.setdefault(name, []).append(now)
        if after.startswith("date:"):
            after = email.utils.formatdate(now + int(after[5:]), usegmt=True)
        code = int(code) if first else 200
        body = b"slow down" if first else b"ok"
        self.send_response(code)
        if first:
            self.send_header("Retry-After", after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_429_with_retry_after_retries_later_without_an_attempt_and_slows_the_queue(
        r, consumer, redis_server):
    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), LimitedHandler)
    srv.daemon_threads = True
    srv.calls, srv.lock = {}, threading.Lock()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d/" % srv.server_address[1]
    try:
        # max_attempts 1: a retry that used an attempt would be dead.
        a = xadd(r, "api", type="http", max_attempts="1",
                 payload={"url": base + "limited/a/429/1"})
        c = consumer("--queues", "api", "--http-allow", base, "--workers", "2")
        # Both workers leave the queue alone: the one that ran the job at
        # once, the other after its next look at the backoff key (100 ms).
        c.wait_log(r"queue api: slowed down", count=2)
        assert r.pttl(key("backoff", "api")) > 0
        # The queue slows down: a job enqueued now waits out the second too.
        b = xadd(r, "api", type="http", payload={"url": base + "limited/b/200/0"})
        res = wait_result(r, a, "api", timeout=10)
        assert res["state"] == b"done", res
        assert res["attempts"] == b"1", res  # the 429 used no attempt
        first, again = srv.calls["a"]
        assert again - first >= 1.0, again - first
        wait_result(r, b, "api", timeout=10)
        assert srv.calls["b"][0] - first >= 0.95, srv.calls["b"][0] - first
        # A 503 with an HTTP date (2 s ahead: at least 1 s, the date has
        # whole seconds).
        c = xadd(r, "api", type="http", max_attempts="1",
                 payload={"url": base + "limited/c/503/date:2"})
        assert wait_result(r, c, "api", timeout=10)["state"] == b"done"
        assert srv.calls["c"][1] - srv.calls["c"][0] >= 1.0
    finally:
        srv.shutdown()
        srv.server_close()
