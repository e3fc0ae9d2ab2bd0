"""/metrics (issue 10): the Prometheus text format from the master, checked
with Debian's promtool, its counters and gauges against what Redis holds
(read with python3-redis), its per-worker series against the master's
own workers, and answered even while broken clients hold connections.
"""
import os
import re
import socket
import subprocess

from conftest import scale, stream, key, wait_for, xadd
from test_httpd import get, served  # noqa: F401  (fixture)

BOUNDS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def scrape(port):
    status, body, hdr = get(port, "/metrics")
    assert status == 200, body
    assert hdr["content-type"].startswith("text/plain; version=0.0.4")
    return body


def samples(text):
    """{(name, frozenset(labels)): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def val(s, name, **labels):
    return s[(name, frozenset(labels.items()))]


def promtool_check(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def run_known_jobs(r):
    ids = [xadd(r, type="sleep", payload={"ms": ms}) for ms in (1, 20, 60)]
    ids.append(xadd(r, type="fail", payload={"message": "no"}, max_attempts="2"))
    ids.append(xadd(r, type="nosuch"))
    xadd(r, queue="second", type="noop")
    r.sadd("jobq:queues", "second")
    r.zadd(key("scheduled"), {"later-1": 1 << 50})
    return ids


def test_metrics_pass_promtool_and_match_redis(r, served):
    c, port = served("--workers", "2", "--backoff-ms", "100", "--queues", "default,second")
    run_known_jobs(r)
    wait_for(lambda: r.hget(key("stats"), "dead") == b"2" and r.hget(key("stats", "second"), "processed"),
             timeout=20, what="jobs finished")
    # Heartbeats carry the workers' counts within a second.
    wait_for(lambda: sum(v for (n, _), v in samples(scrape(port)).items()
                         if n == "jobq_worker_rss_bytes") > 0, what="worker series")
    text = scrape(port)
    promtool_check(text)
    s = samples(text)
    for q in ("default", "second"):
        h = {k.decode(): int(v) for k, v in r.hgetall(key("stats", q)).items()}
        for field in ("processed", "failed", "retried", "dead"):
            assert val(s, "jobq_jobs_%s_total" % field, queue=q) == h.get(field, 0), (q, field)
        assert val(s, "jobq_queue_scheduled", queue=q) == r.zcard(key("scheduled", q))
        assert val(s, "jobq_queue_dead", queue=q) == r.zcard(key("dead", q))
        assert val(s, "jobq_queue_paused", queue=q) == r.exists(key("paused", q))
        lat = {k.decode(): int(v) for k, v in r.hgetall(key("latency", q)).items()}
        for kind in ("wait", "run"):
            cum = 0
            for b in BOUNDS:
                cum += lat.get("%s:le:%d" % (kind, b), 0)
                assert val(s, "jobq_job_%s_seconds_bucket" % kind, queue=q, le="%g" % (b / 1000)) == cum
            cum += lat.get(kind + ":le:inf", 0)
            assert val(s, "jobq_job_%s_seconds_bucket" % kind, queue=q, le="+Inf") == cum
            assert val(s, "jobq_job_%s_seconds_count" % kind, queue=q) == cum == lat.get(kind + ":count", 0)
            assert abs(val(s, "jobq_job_%s_seconds_sum" % kind, queue=q) - lat.get(kind + ":sum_us", 0) / 1e6) < 1e-6
    assert (val(s, "jobq_jobs_processed_total", queue="default"), val(s, "jobq_jobs_failed_total", queue="default"),
            val(s, "jobq_jobs_dead_total", queue="default")) == (3, 2, 2)
    assert val(s, "jobq_queue_scheduled", queue="default") == 1
    # Per worker: exactly this master's two workers.
    host = socket.gethostname()
    mine = {"%s:%d" % (host, p) for p in c.worker_pids()}
    workers = {dict(l)["worker"] for (n, l) in s if n == "jobq_worker_rss_bytes"}
    assert workers == mine
    for w in mine:
        assert val(s, "jobq_worker_rss_bytes", worker=w) > 1 << 20
        assert val(s, "jobq_worker_open_fds", worker=w) > 0
        assert val(s, "jobq_worker_threads", worker=w) >= 1
        assert 0 <= val(s, "jobq_worker_loop_lag_seconds", worker=w) < 5
        assert val(s, "jobq_worker_cpu_seconds_total", worker=w) >= 0
    assert val(s, "jobq_master_workers_configured") == 2 and val(s, "jobq_master_workers_serving") == 2
    assert val(s, "jobq_master_worker_starts_total") == 2
    assert val(s, "jobq_workers_live") == 2 and val(s, "jobq_redis_read_ok") == 1


def test_two_replicas_same_queue_series_own_workers(r, served):
    """Queue-level series come from Redis (the same on every replica);
    per-worker ones are each replica's own."""
    c1, p1 = served("--workers", "1")
    c2, p2 = served("--workers", "1")
    for _ in range(5):
        xadd(r, type="noop")
    wait_for(lambda: r.hget(key("stats"), "processed") == b"5", what="5 done")
    wait_for(lambda: val(samples(scrape(p1)), "jobq_workers_live") == 2, what="both heartbeats")
    s1, s2 = samples(scrape(p1)), samples(scrape(p2))
    q = lambda s: {k: v for k, v in s.items() if k[0].startswith(("jobq_queue_", "jobq_jobs_", "jobq_job_"))}
    assert q(s1) == q(s2) and q(s1)
    w1 = {dict(l)["worker"] for (n, l) in s1 if n == "jobq_worker_rss_bytes"}
    w2 = {dict(l)["worker"] for (n, l) in s2 if n == "jobq_worker_rss_bytes"}
    host = socket.gethostname()
    assert w1 == {"%s:%d" % (host, c1.worker_pids()[0])}
    assert w2 == {"%s:%d" % (host, c2.worker_pids()[0])}


def test_garbage_and_silent_clients_do_not_stop_metrics(served):
    c, port = served()
    silent = socket.create_connection(("127.0.0.1", port))  # never sends
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    garbage = socket.create_connection(("127.0.0.1", port))
    garbage.sendall(os.urandom(4096))
    try:
        for _ in range(10):
            promtool_check(scrape(port))
        garbage.settimeout(scale(5))
        try:
            assert garbage.recv(100).startswith(b"HTTP/1.1 400 ")
        except ConnectionResetError:
            pass  # closed with our 400 unread: the point is it is closed
        assert get(port, "/healthz")[0] == 200
    finally:
        for s in (silent, half, garbage):
            s.close()
    assert c.proc.poll() is None


def test_metrics_answer_while_redis_is_gone(served, redis_server):
    c, port = served()
    assert val(samples(scrape(port)), "jobq_redis_read_ok") == 1
    redis_server.kill()
    def down():
        s = samples(scrape(port))
        return s if val(s, "jobq_master_redis_up") == 0 else None
    s = wait_for(down, what="redis down in /metrics")
    assert val(s, "jobq_redis_read_ok") == 0
    assert not any(n.startswith("jobq_queue_") for n, _ in s)
    promtool_check(scrape(port))
    redis_server.start()
    wait_for(lambda: val(samples(scrape(port)), "jobq_redis_read_ok") == 1, timeout=30,
             what="queues read again")


def test_worker_crash_counted(served):
    import signal as sig
    c, port = served("--workers", "1")
    victim = c.worker_pids()[0]
    os.kill(victim, sig.SIGKILL)
    wait_for(lambda: val(samples(scrape(port)), "jobq_master_worker_crashes_total") == 1, what="crash counted")
    wait_for(lambda: val(samples(scrape(port)), "jobq_master_worker_starts_total") == 2, what="restart counted")


def test_metrics_answer_while_redis_hangs(served, redis_server):
    """A Redis that keeps its socket open and answers nothing (SIGSTOP):
    the scrape still gets an answer, with the master's own series, well
    inside the server's 10 s handler timeout."""
    import signal as sig
    import time
    c, port = served()
    assert val(samples(scrape(port)), "jobq_redis_read_ok") == 1
    redis_server.proc.send_signal(sig.SIGSTOP)
    try:
        t0 = time.time()
        s = samples(scrape(port))
        took = time.time() - t0
        assert val(s, "jobq_redis_read_ok") == 0 and took < scale(9), took
        assert val(s, "jobq_master_workers_configured") == 1
        # A second scrape reconnects and is bounded the same way.
        t0 = time.time()
        assert val(samples(scrape(port)), "jobq_redis_read_ok") == 0 and time.time() - t0 < scale(9)
    finally:
        redis_server.proc.send_signal(sig.SIGCONT)
    wait_for(lambda: val(samples(scrape(port)), "jobq_redis_read_ok") == 1, timeout=30, what="read again")
