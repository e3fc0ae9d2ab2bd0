"""Cancellation (docs/PROTOCOL.md §11): `jobq cancel` and a plain ZADD into
<p>:{q}:cancel. A ready job never runs, a delayed or retrying one is removed,
a running one stops (io within 100 ms, exec with its whole process tree, a
cpu job at its next yield); each ends `cancelled`, counted, never retried,
never dead-lettered; a request made while no consumer runs takes effect when
one starts."""
import json
import os
import stat
import time

from conftest import jobq, key, scale, stream, wait_for, xadd


def state(r, jid, queue="default"):
    s = r.hget(key("result:%s" % jid, queue), "state")
    return s.decode() if s else None


def wait_state(r, jid, want, timeout=5, queue="default"):
    wait_for(lambda: state(r, jid, queue) == want, timeout=timeout,
             what=lambda: "job %s %s (state %s)" % (jid, want, state(r, jid, queue)))


def stats(r, queue="default"):
    return {k.decode(): int(v) for k, v in r.hgetall(key("stats", queue)).items()}


def ended_cancelled(r, jid, attempts):
    res = {k.decode(): v.decode() for k, v in r.hgetall(key("result:%s" % jid)).items()}
    assert res["state"] == "cancelled", res
    assert res["error"] == "cancelled"
    assert res["attempts"] == str(attempts)
    assert r.zscore(key("dead"), jid) is None, "never dead-lettered"
    assert r.zscore(key("scheduled"), jid) is None, "never retried"
    assert r.zscore(key("cancel"), jid) is None, "the request leaves with the job"


def stop_ms(r, jid, t0):
    """ms from t0 (a time.time() before the request) to the job's end, by
    the worker's finished_at (same machine clock): the waiter's polling is
    not counted."""
    return int(r.hget(key("result:%s" % jid), "finished_at")) - t0 * 1000


def running(r, jid):
    """Whether a worker holds the job's entry (pending in the group)."""
    return r.xpending(stream(), "workers")["pending"] > 0


def test_exit_codes_and_a_delayed_job_removed_at_once(redis_server, r):
    url = redis_server.url
    jid = jobq("enqueue", "noop", "--delay", "600000", redis_url=url).stdout.strip()
    out = jobq("cancel", jid, redis_url=url)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "cancelled %s\n" % jid
    # Removed whole, with no consumer running: its set, its hash.
    assert r.zscore(key("scheduled"), jid) is None
    assert not r.exists(key("job:%s" % jid))
    ended_cancelled(r, jid, 0)
    again = jobq("cancel", jid, redis_url=url)
    assert again.returncode == 1
    assert again.stdout == "job %s had already ended: cancelled\n" % jid
    none = jobq("cancel", "no-such-job", redis_url=url)
    assert none.returncode == 2
    assert "no job no-such-job in queue default" in none.stderr
    assert stats(r)["cancelled"] == 1
    done = jobq("cancel", "-q", "other", jid, redis_url=url)
    assert done.returncode == 2, "a job is looked for in its own queue only"
    # The global -q (before the command) names the queue too: it was
    # ignored until 2026-12-05 (the job was looked for in default).
    done = jobq("-q", "other", "cancel", jid, redis_url=url)
    assert done.returncode == 2 and "in queue other" in done.stderr, done.stderr


def test_a_ready_job_never_runs_and_a_stopped_consumer_obeys_on_start(
        redis_server, r, consumer, tmpdir_path):
    """Requests made while no consumer runs, with jobq and with a plain
    redis-cli ZADD (a foreign client): when a consumer starts, neither job
    runs (their command would leave a file), and both end cancelled."""
    url = redis_server.url
    mark = os.path.join(tmpdir_path, "ran")
    cmd = os.path.join(tmpdir_path, "touch.sh")
    with open(cmd, "w") as f:
        f.write("#!/bin/sh\necho $JOBQ_JOB_ID >> %s\n" % mark)
    os.chmod(cmd, 0o755)
    a = xadd(r, type="touch", payload="x", notify="1")
    b = xadd(r, type="touch", payload="x", id="mine-1")
    c = xadd(r, type="touch", payload="x")
    assert jobq("cancel", a, redis_url=url).returncode == 0
    # Any client: the request is the id in the queue's cancel set.
    redis_server.cli("ZADD", key("cancel"), int(time.time() * 1000), "mine-1")
    consumer("--exec", "touch=" + cmd)
    wait_state(r, a, "cancelled")
    wait_state(r, b, "cancelled")
    wait_state(r, c, "done")
    assert open(mark).read().split() == [c], "only the job not cancelled ran"
    ended_cancelled(r, a, 0)
    ended_cancelled(r, b, 0)
    assert r.lrange(key("notify:%s" % a), 0, -1) == [b"cancelled"]
    wait_for(lambda: r.xlen(stream()) == 0, what="the acked entries trimmed")
    assert r.xpending(stream(), "workers")["pending"] == 0, "acked like a done job"
    s = stats(r)
    assert s["cancelled"] == 2 and s["processed"] == 1 and "dead" not in s
    assert r.zcard(key("cancel")) == 0
    js = json.loads(jobq("stats", "--json", redis_url=url).stdout)
    assert [q["cancelled"] for q in js["queues"] if q["queue"] == "default"] == [2]


def test_running_sleep_stops_within_100ms(redis_server, r, consumer):
    consumer()
    jid = xadd(r, type="sleep", payload={"ms": 30000}, max_attempts="3")
    wait_for(lambda: running(r, jid), what="the job running")
    time.sleep(0.2)  # well into its sleep
    t0 = time.time()
    out = jobq("cancel", jid, redis_url=redis_server.url)
    assert out.returncode == 0 and out.stdout.startswith("cancelling %s" % jid)
    wait_state(r, jid, "cancelled")
    ended_cancelled(r, jid, 1)
    # The bound: within 100 ms of the request (scale() for sanitizers),
    # with room for jobq's own start on a loaded box.
    assert stop_ms(r, jid, t0) < scale(100) + 100
    time.sleep(0.3)
    assert state(r, jid) == "cancelled", "not retried"
    # Acked, so trimmed on the consumer's own clock (PROTOCOL §6).
    wait_for(lambda: r.xlen(stream()) == 0, what="the acked entry trimmed")


def test_a_delayed_job_a_plain_zadd_asks_for_is_swept(redis_server, r, consumer):
    consumer()
    jid = jobq("enqueue", "noop", "--delay", "600000", redis_url=redis_server.url).stdout.strip()
    redis_server.cli("ZADD", key("cancel"), "0", jid)
    wait_state(r, jid, "cancelled", timeout=3)
    assert r.zscore(key("scheduled"), jid) is None
    ended_cancelled(r, jid, 0)


def live_pids(marker, only=b""):
    """Pids of live (not zombie) processes whose command line holds marker
    (and starts with only)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/stat" % d) as f:
                st = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmd and cmd.startswith(only) and st != "Z":
            found.append(int(d))
    return found


def test_running_exec_stops_with_every_process_it_forked(redis_server, r, consumer, tmpdir_path):
    # The sleeps' own arguments mark them: 30.0<pid>1 seconds and so on.
    marker = "0%d" % os.getpid()
    cmd = os.path.join(tmpdir_path, "forks.sh")
    with open(cmd, "w") as f:
        # A child and a grandchild in its process group, then a long sleep.
        f.write("#!/bin/sh\n"
                "sleep 30.%s1 &\n"
                "sh -c 'sleep 30.%s2 & wait' &\n"
                "exec sleep 31.%s3\n" % (marker, marker, marker))
    os.chmod(cmd, os.stat(cmd).st_mode | stat.S_IXUSR)
    consumer("--exec", "forks=" + cmd)
    jid = xadd(r, type="forks", payload="x")
    wait_for(lambda: len(live_pids(marker, b"sleep")) == 3, what="the command and its children")
    pgids = {os.getpgid(p) for p in live_pids(marker)}
    t0 = time.time()
    assert jobq("cancel", jid, redis_url=redis_server.url).returncode == 0
    wait_state(r, jid, "cancelled")
    assert stop_ms(r, jid, t0) < scale(100) + 100
    ended_cancelled(r, jid, 1)
    wait_for(lambda: not live_pids(marker), timeout=2, what="no process of the job left")
    for g in pgids:
        try:
            os.killpg(g, 0)
            assert False, "process group %d still has members" % g
        except ProcessLookupError:
            pass


def test_running_sha256_stops_at_its_next_yield(redis_server, r, consumer):
    """A cpu job of several seconds (sha256 yields every round): cancelled
    while it runs, it ends long before it would have finished."""
    consumer("--threads", "1")
    jid = xadd(r, type="sha256", payload={"data": "x", "rounds": 80_000_000}, max_attempts="3")
    wait_for(lambda: running(r, jid), what="the job running")
    time.sleep(0.2)
    t0 = time.time()
    assert jobq("cancel", jid, redis_url=redis_server.url).returncode == 0
    wait_state(r, jid, "cancelled")
    # A round of sha256 is a microsecond: it yields at once.
    assert stop_ms(r, jid, t0) < scale(100) + 100
    ended_cancelled(r, jid, 1)
    assert r.hget(key("result:%s" % jid), "result") is None, "its result is dropped"
    time.sleep(0.3)
    assert stats(r).get("retried", 0) == 0 and state(r, jid) == "cancelled"
