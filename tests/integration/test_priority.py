"""Priority levels within a queue (issue 25, PROTOCOL.md "Priorities"):
high jobs start before normal ones, normal before low, enqueued with
python3-redis and redis-cli (one plain XADD to the level's stream) as well as
`jobq enqueue --priority`; delayed jobs and retries keep their level; a queue
that never used levels is read exactly as before."""
import json
import os
import subprocess
import time

import msgpack

from conftest import JOBQ, key, scale, stream, wait_for, wait_result
from conftest import jobq as run_jobq

HIGH = "jobq:{default}:stream:high"
LOW = "jobq:{default}:stream:low"


def sleep_job(job_id, ms):
    return {"type": "sleep", "payload": msgpack.packb({"ms": ms}), "id": job_id}


def finished_at(r, job_id):
    v = r.hget(key("result:" + job_id), "finished_at")
    return int(v) if v else 0


def entries_added(r, name):
    """XINFO STREAM's entries-added (Redis 7): entries ever XADDed, whatever
    was trimmed since."""
    if not r.exists(name):
        return 0
    return r.xinfo_stream(name)["entries-added"]


def test_high_overtakes_queued_low(r, redis_server, consumer):
    """2,000 low jobs queued, then 20 high: the 20 start before the next
    ~100 low, at io-concurrency 64 on one worker. Every job sleeps the same
    MS, so a job started at S finishes at S + MS: the low jobs that started
    after the high ones were all enqueued (at t0) and before the last high
    one started are those that finished in (t0 + MS, last high's end].
    Jobs that were running at t0 and end late on a busy box count too, so
    the bound is loose; with low read first it would be every low job left,
    and read evenly with high, about 64 per read of 64."""
    ms = 20
    consumer("--io-concurrency", "64")
    p = r.pipeline(transaction=False)
    for i in range(2000):
        p.xadd(LOW, sleep_job("low%d" % i, ms))
    p.execute()
    wait_for(lambda: finished_at(r, "low100"), timeout=30, what="100 low jobs run")
    # Half with redis-cli (one process, its commands on stdin), half with
    # python3-redis: one plain XADD each.
    cmds = "".join("XADD %s * type sleep enc json payload '{\"ms\":%d}' id high%d\n" % (HIGH, ms, i)
                   for i in range(10))
    out = subprocess.run(["redis-cli", "-p", str(redis_server.port)], input=cmds.encode(),
                         check=True, capture_output=True).stdout.split()
    p = r.pipeline(transaction=False)
    for i in range(10, 20):
        p.xadd(HIGH, sleep_job("high%d" % i, ms))
    out += p.execute()
    # When the last high job was enqueued: its entry id's time (Redis's
    # clock, the host's, as finished_at).
    t0 = max(int(e.split(b"-")[0]) for e in out)
    wait_for(lambda: all(finished_at(r, "high%d" % i) for i in range(20)), timeout=30,
             what="the 20 high jobs")
    last = max(finished_at(r, "high%d" % i) for i in range(20))
    lows = [finished_at(r, "low%d" % i) for i in range(2000)]
    overtaken = sum(1 for t in lows if t0 + ms < t <= last)
    pending = sum(1 for t in lows if t == 0 or t > last)
    assert pending > 1000, "the low jobs ran out before the test could tell: %d left" % pending
    # Under 64 + 64 when high goes first: up to 64 low jobs running at t0 that
    # end late on a slow box, and the low jobs read by the same script read as
    # the last high one (it fills the free slots, high first, then low: at
    # most 63), which end with it. FIFO would leave none pending. CI under
    # SAN on a loaded box saw 108 against a bound of 100.
    assert overtaken < 64 + 64, "%d low jobs started between the high ones' enqueue and start" % overtaken


def test_order_high_normal_low_in_one_read(r, consumer):
    """Jobs at every level waiting before the worker starts run high, then
    normal, then low (one read with room for all: the script's order)."""
    for lvl, name in (("low", LOW), ("normal", stream()), ("high", HIGH)):
        for i in range(5):
            r.xadd(name, sleep_job("%s%d" % (lvl, i), 1))
    # One slot: one job at a time, so the done order is the start order.
    consumer("--io-concurrency", "1")
    ids = ["%s%d" % (lvl, i) for lvl in ("high", "normal", "low") for i in range(5)]
    wait_for(lambda: all(finished_at(r, j) for j in ids), timeout=20, what="15 jobs")
    order = sorted(ids, key=lambda j: (finished_at(r, j), ids.index(j)))
    levels = [j.rstrip("0123456789") for j in order]
    assert levels == ["high"] * 5 + ["normal"] * 5 + ["low"] * 5, order
    # FIFO within a level.
    assert order[:5] == ["high%d" % i for i in range(5)]


def test_delayed_and_retried_high_stay_high(r, consumer):
    """A delayed high job (jobq enqueue --priority high --delay, and a job
    hash with `priority high` written by python3-redis, §2) is promoted into
    the high stream; a failed high job's retries go back there, and its dead
    job hash says so, so a rerun (§4) does too."""
    consumer("--backoff-ms", "50", "--backoff-max-ms", "100")
    res = run_jobq("--redis", "redis://127.0.0.1:%d" % r.connection_pool.connection_kwargs["port"],
                   "enqueue", "--priority", "high", "--delay", "200", "--id", "delayed",
                   "sleep", '{"ms":1}')
    assert res.returncode == 0, res.stderr
    p = r.pipeline(transaction=True)
    p.hset(key("job:foreign"), mapping={"type": "sleep", "payload": msgpack.packb({"ms": 1}),
                                        "priority": "high"})
    p.zadd(key("scheduled"), {"foreign": 0})
    p.execute()
    r.xadd(HIGH, {"type": "fail", "enc": "json", "payload": '{"message":"no"}', "id": "failing",
                  "max_attempts": "3"})
    assert wait_result(r, "delayed")["state"] == b"done"
    assert wait_result(r, "foreign")["state"] == b"done"
    assert wait_result(r, "failing")["state"] == b"dead"
    assert r.hget(key("job:failing"), "priority") == b"high"
    # delayed + foreign + failing's three attempts; nothing went to normal.
    assert entries_added(r, HIGH) == 5
    assert entries_added(r, stream()) == 0


def test_queue_without_levels_unchanged(r, redis_server, consumer, tmpdir_path):
    """A queue whose producers never used a level is read as before: no
    level stream is made, and the only commands that name one are the
    periodic EXISTS that would notice it (MONITOR); its jobs are read by
    XREADGROUP of its own stream alone, never by the levels' script."""
    consumer("--io-concurrency", "16")
    log = os.path.join(tmpdir_path, "monitor.log")
    with open(log, "wb") as out:
        mon = subprocess.Popen(["redis-cli", "-p", str(redis_server.port), "MONITOR"],
                               stdout=out, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.getsize(log) > 0, what="MONITOR's first line")
            p = r.pipeline(transaction=False)
            for i in range(200):
                p.xadd(stream(), {"type": "noop", "id": "n%d" % i})
            p.execute()
            wait_for(lambda: r.hget(key("result:n199"), "state") == b"done", timeout=20,
                     what="200 noop jobs")
            time.sleep(0.3)  # several pause/level checks
        finally:
            mon.terminate()
            mon.wait()
    lines = open(log, "rb").read().decode(errors="replace").splitlines()
    naming = [ln for ln in lines if "stream:high" in ln or "stream:low" in ln]
    assert naming, "no level check seen"
    periodic = ('"EXISTS"', '"EVALSHA"')  # the level check; promotion (§2)
    assert all(any(c in ln for c in periodic) for ln in naming), naming[:3]
    assert not any("XREADGROUP" in ln and '"EVAL"' in ln for ln in lines)
    assert not r.exists(HIGH) and not r.exists(LOW)
    # The same queue, once a producer uses a level, is read by levels.
    r.xadd(HIGH, {"type": "noop", "id": "h"})
    assert wait_result(r, "h")["state"] == b"done"


def test_bad_priority_is_a_usage_error(r):
    res = run_jobq("--redis", "redis://127.0.0.1:%d" % r.connection_pool.connection_kwargs["port"],
                   "enqueue", "--priority", "urgent", "noop")
    assert res.returncode == 2
    assert "--priority: 'urgent' is not high, normal or low" in res.stderr
    assert r.dbsize() == 0  # nothing sent


def test_limited_queue_reads_its_levels_high_first(r, consumer):
    """A queue with a limit (read by the limit's script, with permits)
    reads its levels too, high first: none waits for the limit to go."""
    url = "redis://127.0.0.1:%d" % r.connection_pool.connection_kwargs["port"]
    res = run_jobq("--redis", url, "limit", "set", "default", "--concurrency", "1")
    assert res.returncode == 0, res.stderr
    for lvl, name in (("low", LOW), ("normal", stream()), ("high", HIGH)):
        for i in range(3):
            r.xadd(name, sleep_job("%s%d" % (lvl, i), 1))
    consumer()
    ids = ["%s%d" % (lvl, i) for lvl in ("high", "normal", "low") for i in range(3)]
    wait_for(lambda: all(finished_at(r, j) for j in ids), timeout=20, what="9 jobs")
    order = sorted(ids, key=lambda j: (finished_at(r, j), ids.index(j)))
    assert [j.rstrip("0123456789") for j in order][:3] == ["high"] * 3, order


def test_stats_count_every_level(r):
    """jobq stats (and so top, /metrics, the dashboard: the same snapshot)
    counts the jobs waiting at every level of a queue."""
    url = "redis://127.0.0.1:%d" % r.connection_pool.connection_kwargs["port"]
    for i in range(3):
        run_jobq("--redis", url, "enqueue", "--priority", "high", "noop")
    run_jobq("--redis", url, "enqueue", "--priority", "low", "noop")
    run_jobq("--redis", url, "enqueue", "noop")
    res = run_jobq("--redis", url, "stats", "--json")
    assert res.returncode == 0, res.stderr
    q = [q for q in json.loads(res.stdout)["queues"] if q["queue"] == "default"][0]
    assert q["ready"] == 5, q


def test_weighted_queues_share_by_weight(r, consumer):
    """--queues wa/3,wb/1: with both queues full, a worker's reads give wa
    three times wb's share of the free slots (admit.h)."""
    for q in ("wa", "wb"):
        p = r.pipeline(transaction=False)
        for i in range(400):
            p.xadd(stream(q), sleep_job("%s%d" % (q, i), 10))
        p.execute()
    consumer("--queues", "wa/3,wb/1", "--io-concurrency", "8")

    def done(q):
        return sum(1 for i in range(400) if r.exists(key("result:%s%d" % (q, i), q)))
    wait_for(lambda: done("wa") + done("wb") >= 200, timeout=30, what="200 jobs")
    a, b = done("wa"), done("wb")
    assert 2 * b <= a <= 4 * b + 8, (a, b)


def test_bad_weight_is_a_usage_error(consumer):
    c = consumer("--queues", "wa/0", ready=False)
    assert c.wait() == 2
    assert "--queues: bad weight '0' (want name/N, N from 1 to 1000)" in c.log()


def test_a_killed_workers_high_job_is_handed_back(r, consumer):
    """The master hands a dead worker's entries back at every level, not
    only normal: a SIGKILLed worker's high job runs again at once (well
    inside the 30 s visibility timeout after which any worker would
    reclaim it)."""
    import signal
    c = consumer()
    r.xadd(HIGH, sleep_job("long", 2000))
    def running():
        try:
            return r.xpending(HIGH, "workers")["pending"] == 1
        except Exception:  # the group is not made yet
            return False
    wait_for(running, what="the job running")
    os.kill(c.worker_pids()[0], signal.SIGKILL)
    wait_for(lambda: r.hget(key("result:long"), "state") == b"done", timeout=15,
             what="the high job run again")
    assert int(r.hget(key("result:long"), "attempts")) >= 1
