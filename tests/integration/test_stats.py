"""`jobq stats` (issue 10): after a known set of jobs, the table and the
--json snapshot report exactly those counts, percentiles that follow from
the latency buckets in Redis, and a row per live worker.

Jobs are enqueued with python3-redis; the figures are checked against
Redis itself, read with python3-redis.
"""
import json
import socket

from conftest import jobq, key, scale, stream, wait_for, wait_result, xadd

BOUNDS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]


def quantile(buckets, q):
    """Prometheus' histogram_quantile on non-cumulative buckets [(le, n)],
    written independently of producer/watch.c."""
    total = sum(n for _, n in buckets)
    if total == 0:
        return None
    rank = q * total
    cum = 0
    lo = 0
    for le, n in buckets:
        if le == "inf":
            if cum + n >= rank and n > 0:
                return float(BOUNDS[-1])
            break
        if cum + n >= rank and n > 0:
            return lo + (le - lo) * (rank - cum) / n
        cum += n
        lo = le
    return float(BOUNDS[-1])


def redis_buckets(r, kind, queue="default"):
    h = {k.decode(): int(v) for k, v in r.hgetall(key("latency", queue)).items()}
    return [(b, h.get("%s:le:%d" % (kind, b), 0)) for b in BOUNDS] + [("inf", h.get(kind + ":le:inf", 0))]


def stats_json(r_url, *args):
    p = jobq("stats", "--json", *args, redis_url=r_url)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def known_jobs(r, c):
    """3 done, 1 failing twice then dead, 1 unknown type (dead at once),
    2 scheduled far ahead. Returns when all that can finish has."""
    done = [xadd(r, type="sleep", payload={"ms": ms}) for ms in (5, 30, 120)]
    failing = xadd(r, type="fail", payload={"message": "no"}, max_attempts="2")
    unknown = xadd(r, type="nosuch")
    for i in range(2):
        p = jobq("enqueue", "noop", "--delay", "600000", "--id", "later-%d" % i, redis_url=c)
        assert p.returncode == 0, p.stderr
    for j in done:
        assert wait_result(r, j)["state"] == b"done"
    assert wait_result(r, unknown)["state"] == b"dead"
    assert wait_result(r, failing, timeout=20)["state"] == b"dead"


def test_stats_json_reports_exactly_the_known_jobs(r, redis_server, consumer):
    consumer("--workers", "2", "--backoff-ms", "100")
    known_jobs(r, redis_server.url)
    # Heartbeats and the last counters land within a second.
    wait_for(lambda: (lambda ws: len(ws) == 2 and sum(w["processed"] for w in ws) == 3)(
        stats_json(redis_server.url)["workers"]), what="two workers' heartbeats with 3 jobs done")
    snap = stats_json(redis_server.url)
    assert set(snap) >= {"at", "queues", "workers"}
    [q] = snap["queues"]
    assert q["queue"] == "default"
    assert (q["ready"], q["running"], q["scheduled"], q["dead"], q["paused"]) == (0, 0, 2, 2, False)
    # processed: 3 done; failed: 2 attempts of `fail` (the unknown type is
    # dead without an attempt); retried once; two dead in total.
    assert (q["processed"], q["failed"], q["retried"], q["dead_total"]) == (3, 2, 1, 2)
    assert q["jobs_per_s"] > 0 and q["jobs_per_s"] <= 3 / 60 * 2 + 1e-9
    for kind in ("wait", "run"):
        got = q[kind]
        want = redis_buckets(r, kind)
        assert [tuple(b) for b in got["buckets"]] == want
        assert got["count"] == sum(n for _, n in want) > 0
        for p, name in ((0.5, "p50_ms"), (0.9, "p90_ms"), (0.99, "p99_ms")):
            assert abs(got[name] - quantile(want, p)) < 0.001, (kind, name, got, want)
    # The run of a 120 ms sleep is in the (100, 250] bucket, so run p99 is
    # there too: the percentiles are not made up.
    assert 100 <= q["run"]["p99_ms"] <= 250
    host = socket.gethostname()
    pids = {w["pid"] for w in snap["workers"]}
    for w in snap["workers"]:
        assert w["id"] == "%s:%d" % (host, w["pid"]) and w["host"] == host
        assert w["queues"] == ["default"] and w["threads"] >= 1
        assert w["rss_bytes"] > 1 << 20 and w["open_fds"] > 0 and w["cpu_ms"] >= 0
        assert 0 <= snap["at"] - w["last_seen"] < scale(5000)
    assert len(pids) == 2
    assert sum(w["processed"] for w in snap["workers"]) == 3


def test_stats_table_one_queue_and_workers(r, redis_server, consumer):
    c = consumer("--workers", "1")
    xadd(r, queue="default", type="noop")
    wait_for(lambda: r.hget(key("stats"), "processed") == b"1", what="processed")
    r.set(key("paused", "other"), 1)
    r.sadd("jobq:queues", "other")
    r.xadd(stream("other"), {"type": "noop"})
    wait_for(lambda: "no live" not in jobq("stats", redis_url=redis_server.url).stdout, what="worker row")
    p = jobq("stats", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:6] == ["QUEUE", "READY", "RUNNING", "SCHED", "DEAD", "PSD"]
    rows = {l.split()[0]: l.split() for l in lines[1:3]}
    assert rows["default"][6] == "1" and rows["default"][5] == "no"
    assert rows["other"][1] == "1" and rows["other"][5] == "yes"
    wi = lines.index("") + 1
    assert lines[wi].split()[:3] == ["HOST", "PID", "QUEUES"]
    assert lines[wi + 1].split()[1] == str(c.worker_pids()[0])
    assert max(len(l) for l in lines) <= 110
    # -q: one queue only.
    one = stats_json(redis_server.url, "-q", "other")
    assert [q["queue"] for q in one["queues"]] == ["other"] and one["queues"][0]["ready"] == 1


def test_stats_bad_arguments_and_no_redis(redis_server):
    p = jobq("stats", "-q", "bad name", redis_url=redis_server.url)
    assert p.returncode == 2 and "queue name" in p.stderr
    p = jobq("stats", "--bogus", redis_url=redis_server.url)
    assert p.returncode == 2
    p = jobq("stats", redis_url="redis://127.0.0.1:1")
    assert p.returncode == 3 and "jobq" in p.stderr
    # Empty Redis: no queues, no workers, still well-formed.
    snap = stats_json(redis_server.url)
    assert snap["queues"] == [] and snap["workers"] == []
