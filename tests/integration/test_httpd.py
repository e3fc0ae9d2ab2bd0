"""The master's HTTP server (issue 10): --metrics-addr, /healthz, and a
server that hostile or broken clients cannot stall.

Each test starts its own redis-server and a real bin/jobq-consumer with
--metrics-addr on a free loopback port, and talks to it with raw sockets
(for malformed input) and http.client.
"""
import http.client
import os
import re
import select
import signal
import socket
import threading
import time

import pytest

from conftest import scale, wait_for


def get(port, path, method="GET", headers=None, body=None, timeout=10):
    """One request; returns (status, body text, headers dict)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=scale(timeout))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def raw(port, data, timeout=5):
    """Sends bytes, returns all the server wrote until it closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=scale(timeout))
    try:
        s.sendall(data)
        out = b""
        while True:
            d = s.recv(4096)
            if not d:
                return out
            out += d
    finally:
        s.close()


def bound_port(c):
    """The port the master says it listens on (it was given port 0, so no
    other process can take the port between a free_port() and the bind)."""
    m = wait_for(lambda: re.search(r"http: listening on \S+ \(port (\d+)\)", c.log()), what="http listening")
    return int(m.group(1))


@pytest.fixture
def served(consumer):
    """Factory: a consumer with --metrics-addr on a port of its own choice;
    returns (consumer, port)."""
    def start(*args, **kw):
        c = consumer("--metrics-addr", "127.0.0.1:0", *args, **kw)
        return c, bound_port(c)
    return start


def test_healthz_ok_and_routes(served):
    c, port = served("--workers", "2")
    wait_for(lambda: get(port, "/healthz")[0] == 200, what="healthz 200")
    status, body, hdr = get(port, "/healthz")
    assert status == 200 and body == "ok: redis up, 2 workers serving\n"
    assert hdr["connection"] == "close" and hdr["content-type"].startswith("text/plain")
    assert get(port, "/nothing-here")[0] == 404
    assert get(port, "/healthz/x")[0] == 404  # not a subtree route
    assert get(port, "/healthz", method="POST", body=b"x")[0] == 405
    status, body, hdr = get(port, "/healthz", method="HEAD")
    assert status == 200 and body == "" and hdr["content-length"] == "32"
    assert get(port, "/healthz?verbose=1")[0] == 200


def test_bad_address_exits_3(tmpdir_path, redis_server):
    from conftest import CONSUMER
    import subprocess
    for addr in ("nohost", "localhost:80", "127.0.0.1:99999", "[::1:80"):
        p = subprocess.run([CONSUMER, "--redis", redis_server.url, "--workers", "1",
                            "--metrics-addr", addr], capture_output=True, text=True, timeout=scale(20))
        assert p.returncode == 3, (addr, p.stderr)
        assert "--metrics-addr" in p.stderr and "bad address" in p.stderr
    # A port already taken is a clear error too.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    taken = s.getsockname()[1]
    p = subprocess.run([CONSUMER, "--redis", redis_server.url, "--workers", "1",
                        "--metrics-addr", "127.0.0.1:%d" % taken],
                       capture_output=True, text=True, timeout=scale(20))
    s.close()
    assert p.returncode == 3 and "cannot listen" in p.stderr, p.stderr


def test_env_variable_sets_address(consumer):
    c = consumer(env={"JOBQ_METRICS_ADDR": "127.0.0.1:0"})
    assert get(bound_port(c), "/healthz")[0] == 200


def test_healthz_503_while_redis_is_gone(served, redis_server):
    c, port = served()
    wait_for(lambda: get(port, "/healthz")[0] == 200, what="healthz 200")
    redis_server.kill()
    status, body = wait_for(lambda: (lambda s: s if s[0] == 503 else None)(get(port, "/healthz")[:2]),
                            what="healthz 503 after redis died")
    assert body.startswith("redis") and body.endswith("\n") and body.count("\n") == 1, body
    redis_server.start()  # same port
    wait_for(lambda: get(port, "/healthz")[0] == 200, timeout=30, what="healthz 200 after redis returned")


def test_healthz_503_when_redis_hangs(served, redis_server):
    """A Redis that keeps its socket open but answers nothing (SIGSTOP) is
    unhealthy too: only a reply proves it is there."""
    c, port = served()
    wait_for(lambda: get(port, "/healthz")[0] == 200, what="healthz 200")
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        status, body = wait_for(lambda: (lambda s: s if s[0] == 503 else None)(get(port, "/healthz")[:2]),
                                what="healthz 503 while redis hangs")
        assert "not answered" in body, body
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: get(port, "/healthz")[0] == 200, timeout=30, what="healthz 200 after SIGCONT")


def test_healthz_503_when_a_worker_is_killed(served):
    """The replacement of a worker killed soon after its start is spawned
    after a backoff (100 ms, then 200 ms): a poller sees 503 in between."""
    c, port = served("--workers", "2")
    wait_for(lambda: get(port, "/healthz")[0] == 200, what="healthz 200")
    seen = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                seen.append(get(port, "/healthz", timeout=5)[:2])
            except OSError:
                pass
            time.sleep(0.005)
    t = threading.Thread(target=poll)
    t.start()
    try:
        for n in range(2):
            victim = c.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: victim not in c.worker_pids() and len(c.worker_pids()) == 2,
                     what="replacement started")
    finally:
        wait_for(lambda: get(port, "/healthz")[0] == 200, timeout=30, what="healthz 200 again")
        stop.set()
        t.join()
    bad = [b for s, b in seen if s == 503]
    assert bad, "never saw 503 while a worker was missing: %r" % seen[-5:]
    assert any("of 2 workers not serving" in b for b in bad), bad
    # Recovery is the wait_for above. The poller's own last answer is not
    # checked: under the sanitizers a slow PING can flip one poll to 503
    # after the 200 that wait_for saw.


def test_malformed_requests_get_400_and_close(served):
    c, port = served()
    assert raw(port, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"\x00\x01\x02\xff" * 100).startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"GET http://example/healthz HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    big = b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n"
    assert raw(port, big).startswith(b"HTTP/1.1 431 ")
    many = b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X%d: 1\r\n" % i for i in range(40)) + b"\r\n"
    assert raw(port, many).startswith(b"HTTP/1.1 431 ")
    long_url = b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n\r\n"
    assert raw(port, long_url).startswith(b"HTTP/1.1 414 ")
    huge = b"POST /healthz HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n"
    assert raw(port, huge).startswith(b"HTTP/1.1 413 ")
    # And the server still answers.
    assert get(port, "/healthz")[0] == 200
    assert c.proc.poll() is None


def test_silent_and_slow_clients_do_not_stall_others(served):
    """Clients that connect and send nothing, or half a request, hold a
    connection each until the head deadline (2 s); everyone else is
    answered at once meanwhile, and the slow ones are closed with 408."""
    c, port = served()
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
    half = socket.create_connection(("127.0.0.1", port))
    t_half = time.time()
    half.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        for _ in range(10):
            t0 = time.time()
            assert get(port, "/healthz", timeout=5)[0] == 200
            assert time.time() - t0 < scale(1)
        # Headers must be whole within 2 s of the accept (issue 21).
        half.settimeout(scale(30))
        assert half.recv(4096).startswith(b"HTTP/1.1 408 ")
        waited = time.time() - t_half
        assert 1.5 < waited < scale(4), waited
    finally:
        for s in silent + [half]:
            s.close()


def test_one_address_holds_a_fair_share(served):
    """One client address holds at most 16 connections (a quarter of the
    64): past that, its own connection idle the longest gives way (503,
    closed), and a probe from the same address still gets its answer."""
    c, port = served()
    held = []
    try:
        # Accepted in this order: of connections as idle as each other, the
        # first accepted gives way.
        for _ in range(16):
            held.append(socket.create_connection(("127.0.0.1", port)))
        assert get(port, "/healthz")[0] == 200
        held[0].settimeout(scale(1))
        assert held[0].recv(4096).startswith(b"HTTP/1.1 503 ")
        held[1].settimeout(0.3)
        with pytest.raises(socket.timeout):
            held[1].recv(4096)
    finally:
        for s in held:
            s.close()


class SlowLoris(threading.Thread):
    """n connections spread over several loopback addresses (127.0.0.2 and
    up), each sending a request's head one byte every `drip` seconds; at
    each drip the ones the server closed are opened again, as the classic
    slowloris tool does at each of its rounds (so up to n / drip new
    connections a second). Bounded: it stops when told, after `limit`
    seconds, or after max_opens connections."""

    def __init__(self, port, n=200, addrs=8, drip=0.5, limit=60, max_opens=30000):
        super().__init__(daemon=True)
        self.port, self.n, self.drip, self.limit, self.max_opens = port, n, drip, limit, max_opens
        self.addrs = ["127.0.0.%d" % (2 + i) for i in range(addrs)]
        self.stop = threading.Event()
        self.opens = self.closed_by_server = 0

    def open(self, i):
        if self.opens >= self.max_opens:
            return None
        self.opens += 1
        s = socket.socket()
        try:
            s.bind((self.addrs[i % len(self.addrs)], 0))
            s.settimeout(1)
            s.connect(("127.0.0.1", self.port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            s.setblocking(False)
            return s
        except OSError:
            s.close()
            return None

    def run(self):
        socks = {}
        for i in range(self.n):
            socks[i] = self.open(i)
        end, next_drip = time.time() + self.limit, time.time() + self.drip
        while not self.stop.is_set() and time.time() < end:
            live = {s: i for i, s in socks.items() if s}
            ready = select.select(list(live), [], [], 0.02)[0] if live else []
            for s in ready:  # the server answered (408, 503) or closed
                self.closed_by_server += 1
                s.close()
                socks[live[s]] = None
            if time.time() >= next_drip:
                next_drip += self.drip
                for i, s in socks.items():
                    try:
                        if s is None:
                            socks[i] = self.open(i)
                        else:
                            s.send(b"a")
                    except OSError:
                        s.close()
                        socks[i] = None
            time.sleep(0.01)
        for s in socks.values():
            if s:
                s.close()


def test_healthz_outlasts_slow_loris(served):
    """Issue 21: 200 slow-loris connections from 8 loopback addresses used
    to hold all 64 slots for 10 s each, and /healthz and /metrics answered
    503 (an orchestrator then restarts a healthy consumer). Now, probed
    every 100 ms for 5 s while they last (/metrics every 500 ms), every
    probe is answered 200 within 1 s."""
    c, port = served()
    wait_for(lambda: get(port, "/healthz", timeout=2)[0] == 200, what="healthy")
    loris = SlowLoris(port)
    loris.start()
    results = []
    try:
        # Every slot taken before the first probe, the first heads still
        # within their 2 s.
        wait_for(lambda: loris.opens >= 200, timeout=scale(10), what="200 slow-loris connections")
        for i in range(50):
            t0 = time.time()
            # /metrics too, every fifth time: it has no reserved slot, only
            # the connections that give way.
            for path in ("/healthz", "/metrics") if i % 5 == 0 else ("/healthz",):
                t0 = time.time()
                try:
                    status = get(port, path, timeout=scale(1))[:2]
                    status = status[0] if status[0] == 200 else status
                except OSError as e:
                    status = repr(e)
                results.append((status, round(time.time() - t0, 3), path))
            time.sleep(max(0, 0.1 - (time.time() - t0)))
    finally:
        loris.stop.set()
        loris.join(scale(10))
    print("slow-loris: %d opened, %d closed by the server; probes: %d, slowest %.3f s" % (
        loris.opens, loris.closed_by_server, len(results), max(r[1] for r in results)))
    bad = [r for r in results if r[0] != 200 or r[1] >= scale(1)]
    assert not bad, "%d of %d probes failed: %s (slow-loris opened %d, %d closed by the server)" % (
        len(bad), len(results), bad[:10], loris.opens, loris.closed_by_server)
    assert loris.opens >= 200 and loris.closed_by_server > 0
    assert c.proc.poll() is None
