"""Watching limits and running jobs (issues 25 and 26, docs/PROTOCOL.md §7
"Limits" and "Running jobs"): a queue's limit, its leases and the ready
jobs it holds back show in `jobq stats` (plain and --json), /metrics and
the dashboard's overview; a running job's progress shows in `jobq stats
--json` and the dashboard's overview. Jobs are enqueued with python3-redis,
as any producer's."""
import json
import os
import re

from conftest import BIN, jobq, wait_for, xadd
from dashboard_util import api, dash, http  # noqa: F401  (fixture)

PROGRESS = os.path.join(BIN, "plugins", "test-progress.so")


def stats(url, *args):
    p = jobq("stats", "--json", *args, redis_url=url)
    assert p.returncode == 0, p.stderr
    return {q["queue"]: q for q in json.loads(p.stdout)["queues"]}


def metric(base, name, queue):
    status, body, _ = http(base, "/metrics")
    assert status == 200
    m = re.search(r'^%s\{queue="%s"\} (\S+)$' % (name, queue), body.decode(), re.M)
    return float(m.group(1)) if m else None


def cancel(url, ids, queue="default"):
    for i in ids:
        assert jobq("cancel", "-q", queue, i, redis_url=url).returncode in (0, 1)


def test_limits_and_held_back_jobs_show_everywhere(r, dash, redis_server):
    url = redis_server.url
    assert jobq("limit", "set", "one", "--concurrency", "1", redis_url=url).returncode == 0
    assert jobq("limit", "set", "slow", "--rate", "1/1m", redis_url=url).returncode == 0
    _, base = dash("--queues", "one,slow,free")
    # Long sleeps, cancelled at the end (a consumer stops after its jobs).
    long = [xadd(r, "one", type="sleep", payload={"ms": 20000}) for _ in range(3)]
    for _ in range(3):
        xadd(r, "slow", type="sleep", payload={"ms": 1})
    long.append(xadd(r, "free", type="sleep", payload={"ms": 20000}))

    def held(n_one, n_slow):
        s = stats(url)
        return s["one"]["held_back"] == n_one and s["slow"]["held_back"] == n_slow

    wait_for(lambda: held(2, 2), what="2 jobs held back by each limit")
    s = stats(url)
    one, slow, free = s["one"], s["slow"], s["free"]
    assert one["limit"] == {"rate": None, "period_ms": None, "concurrency": 1, "leases": 1,
                            "backoff_ms": 0, "blocked_by": ["concurrency"]}, one
    assert one["running"] == 1 and one["ready"] == 2
    assert slow["limit"]["rate"] == 1 and slow["limit"]["period_ms"] == 60000
    assert slow["limit"]["concurrency"] is None and slow["limit"]["blocked_by"] == ["rate"]
    assert free["limit"] is None and free["held_back"] == 0 and free["running"] == 1

    # More jobs queued behind the limit: the count rises.
    for _ in range(2):
        xadd(r, "one", type="sleep", payload={"ms": 1})
    wait_for(lambda: held(4, 2), what="4 jobs held back by the concurrency")

    assert metric(base, "jobq_queue_held_back", "one") == 4
    assert metric(base, "jobq_queue_held_back", "free") == 0
    assert metric(base, "jobq_queue_limit_concurrency", "one") == 1
    assert metric(base, "jobq_queue_limit_concurrency", "free") is None
    assert metric(base, "jobq_queue_limit_leases", "one") == 1
    assert abs(metric(base, "jobq_queue_limit_rate_per_second", "slow") - 1 / 60) < 1e-6

    ov = {q["queue"]: q for q in api(base, "overview")["stats"]["queues"]}
    assert ov["one"]["held_back"] == 4 and ov["one"]["limit"]["concurrency"] == 1

    plain = jobq("stats", redis_url=url).stdout
    rows = {l.split()[0]: l.split() for l in plain.split("LIMIT", 1)[1].splitlines()[1:3]}
    assert rows["one"][1:] == ["-", "1", "1", "4", "concurrency"], plain
    assert rows["slow"][1:] == ["1/60s", "-", "0", "2", "rate"], plain

    # The limit gone, the jobs start and nothing is held back.
    assert jobq("limit", "rm", "one", redis_url=url).returncode == 0
    wait_for(lambda: stats(url)["one"]["limit"] is None and stats(url)["one"]["held_back"] == 0,
             what="no limit on one")
    cancel(url, long[:3], "one")
    cancel(url, long[3:], "free")


def test_running_jobs_show_with_their_progress(r, dash, redis_server):
    url = redis_server.url
    _, base = dash("--plugin", PROGRESS)
    jid = xadd(r, type="steps", payload={"steps": 40, "ms": 100})
    quiet = xadd(r, type="sleep", payload={"ms": 20000})

    def running():
        return {j["id"]: j for j in stats(url)["default"]["running_jobs"]}

    def reported():
        j = running().get(jid)
        return j if j and j["progress"] is not None and j["progress"] > 0 else None

    first = wait_for(reported, what="the job's progress in stats --json")
    jobs = running()
    assert set(jobs) == {jid, quiet}, jobs
    assert first["type"] == "steps" and first["entry_id"] == jid and first["priority"] == "normal"
    assert 0 < first["progress"] < 1 and first["progress_msg"].startswith("step ")
    assert first["worker"] and first["deliveries"] == 1
    assert first["started_at"] >= first["queued_at"] and first["elapsed_ms"] >= 0
    # A job that reports nothing shows with no progress and no start.
    assert jobs[quiet]["type"] == "sleep" and jobs[quiet]["progress"] is None
    assert jobs[quiet]["started_at"] is None and jobs[quiet]["elapsed_ms"] is None

    def later():
        ov = {q["queue"]: q for q in api(base, "overview")["stats"]["queues"]}
        j = {j["id"]: j for j in ov["default"]["running_jobs"]}.get(jid)
        return j if j and j["progress"] > first["progress"] else None

    j = wait_for(later, what="a later fraction on the dashboard's overview")
    assert j["progress_msg"].startswith("step ") and j["type"] == "steps"
    # Done, it is no longer listed.
    wait_for(lambda: jid not in running(), timeout=15, what="the job gone from running_jobs")
    cancel(url, [quiet])
    wait_for(lambda: not running(), what="nothing running")
