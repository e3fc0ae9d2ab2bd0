"""Retries with backoff, delayed jobs, dead letters and pause (issue 4,
PROTOCOL §2, §4, §5), with the real consumer, python3-redis and redis-cli
as the other clients, and bin/jobq for the operator's commands."""
import datetime
import json
import os
import random
import re
import time

import msgpack
import pytest

from conftest import JOBQ, key, scale, stream, wait_for, wait_result, xadd, wait_stream_empty
from conftest import jobq as run_jobq


@pytest.fixture(autouse=True)
def no_sanitizer_reports(tmpdir_path):
    """After the test (consumers stopped by then: this fixture is set up
    first, so torn down last), no consumer log holds an ASan/UBSan/LSan
    report or a worker that died of a signal."""
    yield
    import glob
    for path in glob.glob(os.path.join(tmpdir_path, "consumer-*.log")):
        text = open(path, "rb").read().decode(errors="replace")
        for bad in ("Sanitizer", "runtime error:", "killed by signal"):
            assert bad not in text, "%s in %s:\n%s" % (bad, path, text[-4000:])


def now_ms():
    return int(time.time() * 1000)


def stats(r, queue="default"):
    return {k.decode(): int(v) for k, v in r.hgetall(key("stats", queue)).items()}


def need_jobq():
    if not os.path.exists(JOBQ):
        pytest.skip("bin/jobq not built yet")


def schedule(r, job_id, due, queue="default", **fields):
    """PROTOCOL §2 with python3-redis: the job hash and the scheduled entry
    in one MULTI/EXEC, no jobq code involved."""
    f = {"type": "echo"}
    f.update(fields)
    if isinstance(f.get("payload"), (dict, list, int)):
        f["payload"] = msgpack.packb(f["payload"])
    p = r.pipeline(transaction=True)
    p.hset(key("job:" + job_id, queue), mapping=f)
    p.zadd(key("scheduled", queue), {job_id: due})
    p.execute()


def result_of(r, job_id, queue="default"):
    return {k.decode(): v for k, v in r.hgetall(key("result:" + job_id, queue)).items()}


def watch_attempts(r, ids, until_state=b"dead", timeout=20):
    """Polls the result hashes and the scheduled scores of the jobs ids
    together (one MULTI, so all are of the same moment) and returns, for
    each job, one snapshot per attempt seen: (attempts, state, error,
    finished_at, due), due being the retry's scheduled time (None once
    promoted, or for the last attempt)."""
    seen = {j: {} for j in ids}
    left = set(ids)

    def sample():
        p = r.pipeline(transaction=True)
        for j in ids:
            p.hgetall(key("result:" + j))
            p.zscore(key("scheduled"), j)
        got = p.execute()
        for i, j in enumerate(ids):
            h, due = got[2 * i], got[2 * i + 1]
            if not h:
                continue
            n = int(h[b"attempts"])
            snap = seen[j].get(n)
            if snap is None or (snap[4] is None and due is not None):
                seen[j][n] = (n, h[b"state"], h.get(b"error"), int(h[b"finished_at"]),
                              int(due) if due is not None else None)
            if h[b"state"] == until_state:
                left.discard(j)
        return not left
    try:
        wait_for(sample, timeout=timeout, interval=0.005)
    except AssertionError:
        raise AssertionError("jobs %s never reached %s; seen %r"
                             % (sorted(left), until_state, seen)) from None
    return [[seen[j][k] for k in sorted(seen[j])] for j in ids]


# ---- 1. retries: growing delays, then dead; counters; §4 job hash ----

def test_fail_retries_with_growing_backoff_then_dead(r, consumer):
    consumer("--workers", "1", "--backoff-ms", "200")
    jid = xadd(r, type="fail", payload={"message": "boom: disk on fire"}, max_attempts="3",
               id="f-1", extra="kept", notify="1")
    snaps = watch_attempts(r, [jid])[0]
    assert [s[0] for s in snaps] == [1, 2, 3], snaps
    # In between, the result hash says retrying with the last error.
    assert [s[1] for s in snaps] == [b"retrying", b"retrying", b"dead"]
    assert all(s[2] == b"boom: disk on fire" for s in snaps)
    # The delay chosen for retry n is 200 * 2^(n-1) ms +-20% (so they
    # grow: 160..240, then 320..480), and no attempt runs before it is due.
    assert snaps[0][4] is not None and snaps[1][4] is not None, snaps
    d1 = snaps[0][4] - snaps[0][3]
    d2 = snaps[1][4] - snaps[1][3]
    assert 160 <= d1 <= 240, snaps
    assert 320 <= d2 <= 480, snaps
    assert snaps[1][3] >= snaps[0][4] and snaps[2][3] >= snaps[1][4], snaps

    # One wake-up, for dead: none for the retries.
    assert r.lrange(key("notify:" + jid), 0, -1) == [b"dead"]
    res = wait_result(r, jid)
    assert res["state"] == b"dead" and res["attempts"] == b"3"
    assert res["error"] == b"boom: disk on fire"
    st = stats(r)
    assert (st.get("failed"), st.get("retried"), st.get("dead"), st.get("processed", 0)) == (3, 2, 1, 0), st

    # §4: dead set scored by the death time, the job hash keeps its fields.
    died = r.zscore(key("dead"), jid)
    assert died is not None
    job = {k.decode(): v for k, v in r.hgetall(key("job:" + jid)).items()}
    assert job["type"] == b"fail"
    assert msgpack.unpackb(job["payload"]) == {"message": "boom: disk on fire"}
    assert job["max_attempts"] == b"3" and job["extra"] == b"kept"
    assert job["error"] == b"boom: disk on fire"
    assert job["attempt"] == b"3"
    assert int(job["failed_at"]) == int(died) == int(res["finished_at"])
    assert r.zcard(key("scheduled")) == 0
    wait_stream_empty(r)


# ---- 7. backoff cap ----

def test_backoff_max_caps_every_delay(r, consumer):
    consumer("--workers", "1", "--backoff-ms", "150", "--backoff-max-ms", "250")
    ids = [xadd(r, type="fail", payload={"message": "x"}, max_attempts="4", id="cap-%d" % i)
           for i in range(4)]
    delays = []
    for snaps in watch_attempts(r, ids):
        assert [s[0] for s in snaps] == [1, 2, 3, 4], snaps
        assert all(s[4] is not None for s in snaps[:3]), snaps
        delays.append([s[4] - s[3] for s in snaps[:3]])
    for d in delays:
        assert 120 <= d[0] <= 180, delays       # 150 +-20%, under the cap
        assert 0 < d[1] <= 250 and 0 < d[2] <= 250, delays  # 300 and 600: capped
    st = stats(r)
    assert (st["failed"], st["retried"], st["dead"]) == (16, 12, 4)


# ---- 2. delayed jobs: not before their time, within a second after ----

def test_scheduled_job_runs_on_time(redis_server, r, consumer):
    consumer("--workers", "1")
    t0 = now_ms()
    due = t0 + 1500
    schedule(r, "later-1", due, payload={"n": 1})
    ids = {"later-1": due}
    if os.path.exists(JOBQ):
        out = run_jobq("enqueue", "echo", '{"n":2}', "--delay", "1500", redis_url=redis_server.url)
        assert out.returncode == 0, out.stderr
        jid = out.stdout.strip()
        d = int(r.zscore(key("scheduled"), jid))
        assert 1500 <= d - t0 <= 1500 + 1000, d - t0
        ids[jid] = d
        at = t0 + 1700
        out = run_jobq("enqueue", "echo", '{"n":3}', "--at", at, "--id", "at-1",
                       redis_url=redis_server.url)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "at-1"
        assert int(r.zscore(key("scheduled"), "at-1")) == at
        ids["at-1"] = at
    assert r.zcard(key("scheduled")) == len(ids)
    # Nothing runs early: until shortly before the due time, no result
    # (nothing happening in that span is the point).
    while now_ms() < due - 100:
        assert not any(r.exists(key("result:" + j)) for j in ids)
        time.sleep(0.02)
    for jid, d in ids.items():
        res = wait_result(r, jid, timeout=5)
        assert res["state"] == b"done", res
        fin = int(res["finished_at"])
        assert fin >= d, (jid, fin - d)
        assert fin - d <= scale(1000), (jid, fin - d)
    assert r.zcard(key("scheduled")) == 0
    assert not any(r.exists(key("job:" + j)) for j in ids)  # the hash moved into the stream
    assert msgpack.unpackb(result_of(r, "later-1")["result"]) == {"n": 1}


# ---- 3. many consumers promoting the same due jobs: each runs once ----

def test_three_consumers_promote_2000_jobs_exactly_once(r, consumer):
    cs = [consumer("--workers", "1", "--heartbeat-ms", "200") for _ in range(3)]
    n = 2000
    due = now_ms() + 1500
    p = r.pipeline(transaction=True)
    for i in range(n):
        p.hset(key("job:s-%d" % i), mapping={"type": "echo", "payload": msgpack.packb(i)})
    p.zadd(key("scheduled"), {"s-%d" % i: due for i in range(n)})
    p.execute()

    wait_for(lambda: stats(r).get("processed", 0) >= n and r.xlen(stream()) == 0,
             timeout=30, what="2000 jobs processed")
    assert r.zcard(key("scheduled")) == 0
    # Every promotion is one XADD: the stream was added to exactly n times.
    info = r.xinfo_stream(stream())
    assert info["entries-added"] == n, info
    # Every run is counted three ways, by different code: the stats hash
    # (finish batches), the run latency count, and each worker's own count
    # in its heartbeat hash. Counters go in the MULTI of their XACK: with
    # nothing pending, no run is in flight and every count is written.
    wait_for(lambda: r.xpending(stream(), "workers")["pending"] == 0, what="nothing pending")
    assert stats(r)["processed"] == n
    assert int(r.hget(key("latency"), "run:count")) == n
    workers = [w.decode() for w in r.zrange("jobq:workers", 0, -1)]
    assert len(workers) == 3

    def hb_sum():
        return sum(int(r.hget("jobq:worker:" + w, "processed") or 0) for w in workers)
    wait_for(lambda: hb_sum() >= n, timeout=5, what="heartbeats")
    assert hb_sum() == n
    # And each job has its own result: done on its first attempt.
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.hmget(key("result:s-%d" % i), "state", "attempts", "result")
    rows = p.execute()
    assert all(row[0] == b"done" and row[1] == b"1" for row in rows)
    assert [msgpack.unpackb(row[2]) for row in rows] == list(range(n))
    for c in cs:
        assert "ERROR" not in c.log() and "no job hash" not in c.log()


# ---- 4. a dead job, its cause fixed, run again: jobq and the §4 MULTI ----

def make_timed_out_dead(r, jid):
    xadd(r, type="sleep", payload={"ms": 800}, timeout_ms="100", max_attempts="1", id=jid,
         notify="1")
    # Nobody waits for it: its `dead` wake-up stays in the notify list.
    wait_for(lambda: r.zscore(key("dead"), jid) is not None, what=jid + " dead")
    res = result_of(r, jid)
    assert res["state"] == b"dead", res
    assert b"timeout" in res["error"], res
    assert r.lrange(key("notify:" + jid), 0, -1) == [b"dead"]
    # The cause: a time limit too small. Fix it in the dead job's hash.
    r.hset(key("job:" + jid), "timeout_ms", "5000")


def test_dead_retry_after_fix_ends_done(redis_server, r, consumer):
    consumer("--workers", "1")
    make_timed_out_dead(r, "slow-cli")
    make_timed_out_dead(r, "slow-jobq")

    # Any client: the §4 MULTI through redis-cli.
    redis_server.cli(input=b"MULTI\nHSET jobq:{default}:job:slow-cli attempt 0\n"
                           b"ZREM jobq:{default}:dead slow-cli\n"
                           b"ZADD jobq:{default}:scheduled 0 slow-cli\nEXEC\n")
    assert r.zscore(key("dead"), "slow-cli") is None
    # Once the job is back in the stream, the last run's outcome is gone: a
    # waiter from then on wakes up with the new run's outcome, not `dead`.
    wait_for(lambda: not r.exists(key("job:slow-cli")), what="slow-cli promoted")
    assert result_of(r, "slow-cli").get("state") != b"dead"
    res = wait_result(r, "slow-cli")
    assert res["state"] == b"done", res
    assert res["attempts"] == b"1" and "error" not in res

    if not os.path.exists(JOBQ):
        pytest.skip("bin/jobq not built yet")
    out = run_jobq("dead", "retry", "slow-jobq", redis_url=redis_server.url)
    assert out.returncode == 0, out.stderr
    res = wait_result(r, "slow-jobq")
    assert res["state"] == b"done" and res["attempts"] == b"1", res
    assert r.zcard(key("dead")) == 0 and not r.exists(key("job:slow-jobq"))
    st = stats(r)
    assert (st["dead"], st["processed"], st.get("retried", 0)) == (2, 2, 0), st


def test_reused_id_does_not_inherit_the_old_dead_job(r, consumer):
    """A producer-chosen id may come back after its job died. The new job's
    retry hash holds the new job's fields only: here the old job's `enc
    json` would otherwise turn the new msgpack payload into bad JSON."""
    consumer("--workers", "1", "--backoff-ms", "100")
    xadd(r, type="nosuch", id="reuse", enc="json", payload='{"a":1}', mine="old")
    wait_for(lambda: r.zscore(key("dead"), "reuse") is not None, what="first job dead")
    xadd(r, type="fail", id="reuse", payload={"message": "second"}, max_attempts="2")
    wait_for(lambda: result_of(r, "reuse").get("attempts") == b"2", what="second job done")
    res = result_of(r, "reuse")
    assert (res["state"], res["error"]) == (b"dead", b"second"), res
    job = {k.decode(): v for k, v in r.hgetall(key("job:reuse")).items()}
    assert "enc" not in job and "mine" not in job, job
    assert job["type"] == b"fail" and job["attempt"] == b"2"


# ---- 5. the dead set is bounded: --dead-max, --dead-ttl ----

def test_dead_set_trimmed_to_dead_max(r, consumer):
    consumer("--workers", "1", "--dead-max", "5")
    # The oldest dead job has a chunked payload: its chunk list goes too.
    p = r.pipeline(transaction=True)
    p.rpush(key("payload:d-00"), b"\x92\x01", b"\x02")
    p.xadd(stream(), {"type": "nosuch", "id": "d-00", "chunks": "2", "size": "3"})
    p.execute()
    wait_result(r, "d-00")
    assert r.exists(key("payload:d-00"))
    for i in range(1, 12):
        xadd(r, type="nosuch", id="d-%02d" % i)
        res = wait_result(r, "d-%02d" % i)
        assert res["error"] == b"unknown job type: nosuch"
        # A distinct death time (ms) each: the next one dies later.
        wait_for(lambda: now_ms() > int(res["finished_at"]), interval=0.001, what="the next ms")
    kept = ["d-%02d" % i for i in range(7, 12)]
    gone = [key("job:d-%02d" % i) for i in range(7)] + [key("payload:d-00")]
    wait_for(lambda: r.zcard(key("dead")) == 5 and not r.exists(*gone), timeout=5,
             what="dead set trimmed to 5, with the hashes and chunks of the others")
    assert [m.decode() for m in r.zrange(key("dead"), 0, -1)] == kept
    for i in range(12):
        jid = "d-%02d" % i
        assert bool(r.exists(key("job:" + jid))) == (jid in kept), jid
    assert not r.exists(key("payload:d-00"))
    assert stats(r)["dead"] == 12


def test_dead_set_trimmed_by_age(r, consumer):
    now = now_ms()
    day = 86400 * 1000
    # Dead jobs written by any client: 8 days old (past the default 7) and
    # 6 days old. The consumer trims by the score, oldest first.
    p = r.pipeline(transaction=True)
    for jid, age in (("old-8d", 8 * day), ("old-6d", 6 * day)):
        p.hset(key("job:" + jid), mapping={"type": "echo", "error": "x", "attempt": "1",
                                            "failed_at": now - age})
        p.zadd(key("dead"), {jid: now - age})
    p.rpush(key("payload:old-8d"), b"\xc0")
    p.execute()
    consumer("--workers", "1")
    wait_for(lambda: r.zscore(key("dead"), "old-8d") is None, timeout=5, what="8-day-old trimmed")
    assert not r.exists(key("job:old-8d")) and not r.exists(key("payload:old-8d"))
    assert r.zscore(key("dead"), "old-6d") is not None and r.exists(key("job:old-6d"))


def test_trim_keeps_the_hash_of_a_scheduled_job_with_the_same_id(r, consumer):
    """An old dead entry whose id is scheduled again (a reused id, its new
    job waiting for a retry or its due time): trimming the entry must not
    take the scheduled job's hash, which would lose the job."""
    now = now_ms()
    p = r.pipeline(transaction=True)
    p.zadd(key("dead"), {"again": now - 8 * 86400 * 1000})
    p.execute()
    schedule(r, "again", now + 1500, payload=msgpack.packb("new"))
    consumer("--workers", "1")
    wait_for(lambda: r.zscore(key("dead"), "again") is None, timeout=5, what="old entry trimmed")
    res = wait_result(r, "again")
    assert res["state"] == b"done" and msgpack.unpackb(res["result"]) == "new", res


def test_dead_ttl_option(r, consumer):
    consumer("--workers", "1", "--dead-ttl", "2")
    xadd(r, type="nosuch", id="ttl-1")
    died = int(wait_result(r, "ttl-1")["finished_at"])
    wait_for(lambda: r.zcard(key("dead")) == 0, timeout=8, what="dead-ttl trim")
    assert now_ms() - died >= 2000  # not before its time
    assert not r.exists(key("job:ttl-1"))


# ---- 6. pause ----

def check_pause(r, pause, resume, running=None):
    """Pauses; checks that jobs enqueued one second later (PROTOCOL §5:
    honoured within one second) wait for as long as the pause lasts, and
    that the job `running` (taken before the pause) finishes meanwhile;
    resumes; checks that the held jobs run."""
    pause()
    time.sleep(1.0)   # the span is the point: PROTOCOL §5's bound
    ids = [xadd(r, type="echo", payload=i) for i in range(6)]
    t_end = time.time() + 2.0   # nothing happening in it is the point
    while time.time() < t_end:
        assert not any(r.exists(key("result:" + j)) for j in ids)
        time.sleep(0.05)
    if running:
        assert result_of(r, running)["state"] == b"done"
    assert r.xlen(stream()) == 6
    assert r.xinfo_groups(stream())[0]["pending"] == 0  # none taken
    resume()
    t0 = time.time()
    for j in ids:
        assert wait_result(r, j)["state"] == b"done"
    assert time.time() - t0 <= scale(2.0)


def test_pause_with_redis_cli_holds_jobs_and_running_one_finishes(redis_server, r, consumer):
    c = consumer("--workers", "2")
    # A job running when the pause is set still finishes (during the hold).
    xadd(r, type="sleep", payload={"ms": 1500}, id="running-1")
    wait_for(lambda: r.xinfo_groups(stream())[0]["pending"] == 1, what="job taken")
    check_pause(r, lambda: redis_server.cli("SET", "jobq:{default}:paused", "1"),
                lambda: redis_server.cli("DEL", "jobq:{default}:paused"), running="running-1")
    c.wait_log(r"queue default paused", count=2)  # both workers
    c.wait_log(r"queue default resumed", count=2)


def test_pause_with_jobq(redis_server, r, consumer):
    need_jobq()
    c = consumer("--workers", "1")

    def cmd(*a):
        out = run_jobq(*a, redis_url=redis_server.url)
        assert out.returncode == 0, out.stderr
    check_pause(r, lambda: cmd("pause", "default"), lambda: cmd("resume", "-q", "default"))
    assert not r.exists(key("paused"))


def log_times(c, what):
    """Times (epoch s) at which the consumer's workers logged `queue default
    <what>`, per worker pid."""
    out = {}
    for m in re.finditer(r"^(\S+)Z pid=(\d+) worker INFO queue default %s$" % what, c.log(), re.M):
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
        out.setdefault(int(m.group(2)), []).append(t.replace(tzinfo=datetime.timezone.utc).timestamp())
    return out


def test_pause_and_resume_noticed_within_a_second_by_every_worker(redis_server, r, consumer):
    c = consumer("--workers", "2")
    rnd = random.Random(4)
    lags = []
    for i in range(3):
        for what, cmd in (("paused", ("SET", "jobq:{default}:paused", "1")),
                          ("resumed", ("DEL", "jobq:{default}:paused"))):
            time.sleep(rnd.uniform(0.0, 1.0))  # a new phase against the workers' checks
            t = time.time()
            redis_server.cli(*cmd)
            c.wait_log(r"queue default %s" % what, count=2 * (i + 1))
            got = log_times(c, what)
            assert len(got) == 2, got
            lags += [v[i] - t for v in got.values()]
    assert max(lags) <= 1.0, sorted(lags)


# ---- 8. the operator's commands ----

def test_dead_cli_list_show_delete(redis_server, r, consumer):
    need_jobq()
    consumer("--workers", "1")
    url = redis_server.url
    xadd(r, type="fail", payload={"message": "bad\nthing"}, max_attempts="1", id="cli-1")
    xadd(r, type="nosuch", id="cli-2", payload={"a": 1})
    xadd(r, type="nosuch", id="cli-3")
    for j in ("cli-1", "cli-2", "cli-3"):
        wait_result(r, j)

    out = run_jobq("dead", "list", redis_url=url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "ID" in lines[0] and "ERROR" in lines[0]
    row = [l for l in lines if l.startswith("cli-1 ")]
    assert len(row) == 1 and "fail" in row[0] and "bad thing" in row[0], out.stdout
    assert any(l.startswith("cli-2 ") and "unknown job type: nosuch" in l for l in lines)

    out = run_jobq("dead", "list", "-q", "default", "--json", redis_url=url)
    assert out.returncode == 0, out.stderr
    rows = {d["id"]: d for d in json.loads(out.stdout)}
    assert set(rows) == {"cli-1", "cli-2", "cli-3"}
    d = rows["cli-1"]
    assert d["type"] == "fail" and d["error"] == "bad\nthing" and d["attempts"] == 1
    assert d["died_at"] == int(r.zscore(key("dead"), "cli-1"))
    assert rows["cli-2"]["attempts"] == 0  # dead on arrival, no attempt made

    out = run_jobq("dead", "show", "cli-1", redis_url=url)
    assert out.returncode == 0, out.stderr
    j = json.loads(out.stdout)
    assert j["id"] == "cli-1" and j["type"] == "fail" and j["payload"] == {"message": "bad\nthing"}
    assert j["error"] == "bad\nthing" and j["attempt"] == 1 and j["max_attempts"] == 1
    out = run_jobq("dead", "show", "nope", redis_url=url)
    assert out.returncode == 1 and "nope" in out.stderr

    out = run_jobq("dead", "delete", "cli-1", redis_url=url)
    assert out.returncode == 0, out.stderr
    assert r.zscore(key("dead"), "cli-1") is None and not r.exists(key("job:cli-1"))
    out = run_jobq("dead", "delete", "cli-1", redis_url=url)
    assert out.returncode == 1
    out = run_jobq("dead", "delete", "--all", redis_url=url)
    assert out.returncode == 0, out.stderr
    assert r.zcard(key("dead")) == 0
    assert not r.exists(key("job:cli-2")) and not r.exists(key("job:cli-3"))
    out = run_jobq("dead", "list", "--json", redis_url=url)
    assert out.returncode == 0 and json.loads(out.stdout) == []


@pytest.mark.parametrize("args", [
    ["dead"], ["dead", "frob"], ["dead", "list", "--bogus"], ["dead", "show"],
    ["dead", "show", "a", "b"], ["dead", "show", "bad id!"], ["dead", "retry"],
    ["dead", "retry", "x", "--all"], ["dead", "delete"], ["dead", "list", "-q", "bad queue"],
    ["pause"], ["pause", "a", "b"], ["pause", "bad/queue"], ["resume"], ["resume", "--bogus", "q"],
    ["enqueue", "echo", "--delay", "-5"], ["enqueue", "echo", "--delay", "abc"],
    ["enqueue", "echo", "--at", "soon"], ["enqueue", "echo", "--delay", "5", "--at", "5"],
    ["enqueue", "echo", "--max-attempts", "0"], ["enqueue", "echo", "--timeout-ms", "x"],
    ["enqueue", "echo", "--result-ttl", "-1"], ["enqueue", "echo", "--max-attempts"],
    ["enqueue", "echo", "--wait", "--result-ttl", "0"], ["enqueue", "echo", "--result-ttl", "0", "--wait=5"],
])
def test_cli_bad_arguments_exit_2(redis_server, args):
    need_jobq()
    out = run_jobq(*args, redis_url=redis_server.url)
    assert out.returncode == 2, (args, out.returncode, out.stdout, out.stderr)
    assert out.stderr.strip(), args
    assert "jobq" in out.stderr and len(out.stderr) < 2000, out.stderr
