"""Schedules (PROTOCOL §13, `jobq schedule`): exactly one job per tick with
several consumers, across a consumer killed and restarted, and after an
outage of all of them; a schedule written by a foreign client
(redis-cli); pause, resume, rm; bad input.

The queue is paused (redis-cli SET ... paused 1) while schedules fire, so
that every job they enqueue stays in the stream to be counted with its
fields: a pause stops the reads, not the schedules."""
import json
import re
import signal
import time

from conftest import jobq, key, stream, wait_for
from test_httpd import served  # noqa: F401  (fixture)


def entries(r, queue="default"):
    return [{k.decode(): v.decode(errors="replace") for k, v in f.items()}
            for _, f in r.xrange(stream(queue))]


def ticks(r, name, queue="default"):
    return [int(e["tick"]) for e in entries(r, queue) if e.get("schedule") == name]


def check_one_per_tick(ts, every_ms=1000):
    """Each tick once (the duplicates: 0), and consecutive."""
    dups = len(ts) - len(set(ts))
    assert dups == 0, "%d duplicate ticks: %s" % (dups, ts)
    gaps = [b - a for a, b in zip(ts, ts[1:]) if b - a != every_ms]
    assert not gaps, "ticks not consecutive: %s" % ts


def pause_queue(redis_server, queue="default"):
    assert redis_server.cli("SET", "jobq:{%s}:paused" % queue, "1").strip() == "OK"


def kill_consumer(c):
    """SIGKILL the master and its workers at once: nothing drains."""
    pids = c.worker_pids()
    c.signal(signal.SIGKILL)
    for p in pids:
        try:
            import os
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    c.wait()


def test_three_consumers_one_job_per_tick(redis_server, r, consumer):
    pause_queue(redis_server)
    for _ in range(3):
        consumer("--workers", "2")
    p = jobq("schedule", "add", "tick", "--every", "1s", "noop", '{"n":1}',
             redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("tick: first tick ")
    wait_for(lambda: len(ticks(r, "tick")) >= 11, timeout=20, what="11 ticks")
    ts = ticks(r, "tick")
    check_one_per_tick(ts)
    # 10 s of ticks from the first: 10 jobs (11 ticks span 10 s).
    assert ts[10] - ts[0] == 10000
    e = entries(r)[0]
    assert e["type"] == "noop" and e["schedule"] == "tick"
    assert e["id"] == "tick:%s" % e["tick"]
    listed = json.loads(jobq("schedule", "list", "--json", redis_url=redis_server.url).stdout)
    assert [s["name"] for s in listed] == ["tick"]
    assert listed[0]["every_ms"] == 1000 and listed[0]["paused"] is False
    assert listed[0]["last_tick_ms"] >= ts[-1] and listed[0]["next_ms"] > listed[0]["last_tick_ms"]


def test_kills_and_restarts_give_no_duplicate(redis_server, r, consumer):
    pause_queue(redis_server)
    cs = [consumer("--workers", "2") for _ in range(3)]
    assert jobq("schedule", "add", "tick", "--every", "1s", "noop",
                redis_url=redis_server.url).returncode == 0
    wait_for(lambda: len(ticks(r, "tick")) >= 3, timeout=15, what="3 ticks")
    # One consumer SIGKILLed mid-way, and started again.
    kill_consumer(cs[0])
    wait_for(lambda: len(ticks(r, "tick")) >= 5, timeout=15, what="5 ticks")
    cs[0] = consumer("--workers", "2")
    wait_for(lambda: len(ticks(r, "tick")) >= 8, timeout=15, what="8 ticks")
    check_one_per_tick(ticks(r, "tick"))
    # Then all of them: the ticks missed meanwhile run once, not once each.
    for c in cs:
        kill_consumer(c)
    before = ticks(r, "tick")
    down = time.time()
    wait_for(lambda: time.time() - down > 3.5, timeout=10, what="3.5 s without consumers")
    consumer("--workers", "2")
    wait_for(lambda: len(ticks(r, "tick")) >= len(before) + 3, timeout=15, what="3 more ticks")
    after = ticks(r, "tick")[len(before):]
    dups = len(after + before) - len(set(after + before))
    print("duplicates under restarts: %d (%d jobs)" % (dups, len(after + before)))
    assert dups == 0
    # The first job after the outage is the tick that was due when the
    # consumers went; the next is a tick after the restart, > 2 s later.
    assert after[0] == before[-1] + 1000
    assert after[1] - after[0] >= 3000
    check_one_per_tick(after[1:])


def test_foreign_client_schedule_fires(redis_server, r, consumer):
    pause_queue(redis_server, "mail")
    consumer("--queues", "mail")
    out = redis_server.cli(
        "EVAL",
        "redis.call('HSET', KEYS[1], 'every', '500');"
        "redis.call('HSET', KEYS[2], 'type', 'echo', 'enc', 'json', 'payload', '{\"hi\":1}');"
        "return redis.call('ZADD', KEYS[3], 0, 'ping')", "3",
        "jobq:{mail}:schedule:ping", "jobq:{mail}:schedule:ping:job", "jobq:{mail}:schedules")
    assert out.strip() == "1"
    wait_for(lambda: len(ticks(r, "ping", "mail")) >= 2, timeout=10, what="2 ticks")
    ts = ticks(r, "ping", "mail")
    check_one_per_tick(ts, 500)
    e = entries(r, "mail")[0]
    assert (e["type"], e["enc"], e["payload"]) == ("echo", "json", '{"hi":1}')
    # A bad definition written by a client: recorded, the consumer goes on.
    redis_server.cli("HSET", "jobq:{mail}:schedule:ping", "every", "soon")
    wait_for(lambda: r.hget("jobq:{mail}:schedule:ping", "error"), timeout=10,
             what="the error recorded")
    listed = json.loads(jobq("schedule", "list", "-q", "mail", "--json",
                             redis_url=redis_server.url).stdout)
    assert "bad every 'soon'" in listed[0]["error"]
    # Mended, with its tick set to 0 (the next poll sets a new one) rather
    # than waiting out the minute a broken schedule is left alone.
    redis_server.cli("HSET", "jobq:{mail}:schedule:ping", "every", "500")
    redis_server.cli("ZADD", "jobq:{mail}:schedules", "0", "ping")
    n = len(ticks(r, "ping", "mail"))
    wait_for(lambda: len(ticks(r, "ping", "mail")) > n, timeout=10, what="firing again")


def test_pause_resume_rm(redis_server, r, consumer):
    pause_queue(redis_server)
    consumer()
    url = redis_server.url
    assert jobq("schedule", "add", "hb", "--every", "500ms", "noop", redis_url=url).returncode == 0
    wait_for(lambda: len(ticks(r, "hb")) >= 2, timeout=10, what="2 ticks")
    assert jobq("schedule", "pause", "hb", redis_url=url).returncode == 0
    n = len(ticks(r, "hb"))
    zkey = key("schedules")
    due = r.zscore(zkey, "hb")
    # Ticks go by while paused (the stored next tick moves on), jobless.
    wait_for(lambda: r.zscore(zkey, "hb") >= due + 1500, timeout=10, what="3 paused ticks")
    assert len(ticks(r, "hb")) == n
    listed = json.loads(jobq("schedule", "list", "--json", redis_url=url).stdout)
    assert listed[0]["paused"] is True
    assert "yes" in jobq("schedule", "list", redis_url=url).stdout
    assert jobq("schedule", "resume", "hb", redis_url=url).returncode == 0
    wait_for(lambda: len(ticks(r, "hb")) >= n + 2, timeout=10, what="ticks after resume")
    # Added again under the same name: replaced, not doubled.
    assert jobq("schedule", "add", "hb", "--cron", "0 3 * * *", "--tz", "Europe/Berlin", "noop",
                redis_url=url).returncode == 0
    listed = json.loads(jobq("schedule", "list", "--json", redis_url=url).stdout)
    assert len(listed) == 1 and listed[0]["cron"] == "0 3 * * *"
    assert listed[0]["tz"] == "Europe/Berlin" and listed[0]["every_ms"] is None
    assert jobq("schedule", "rm", "hb", redis_url=url).returncode == 0
    assert json.loads(jobq("schedule", "list", "--json", redis_url=url).stdout) == []
    assert r.exists("jobq:{default}:schedule:hb", "jobq:{default}:schedule:hb:job", zkey) == 0
    p = jobq("schedule", "rm", "hb", redis_url=url)
    assert p.returncode == 1 and "no schedule 'hb'" in p.stderr
    assert jobq("schedule", "pause", "nope", redis_url=url).returncode == 1


def test_bad_input_is_a_usage_error(redis_server, r):
    url = redis_server.url
    cases = [
        (["--cron", "61 * * * *"], "cron minute field: 61 is out of range 0-59"),
        (["--cron", "* * * *"], "needs 5 fields"),
        (["--every", "10"], "bad duration '10'"),
        (["--every", "1.5s"], "bad duration '1.5s'"),
        (["--every", "50ms"], "shorter than 100ms"),
        (["--cron", "0 3 * * *", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--cron", "0 0 30 2 *"], "never fires"),
        (["--every", "1s", "--cron", "* * * * *"], "give one of --every"),
        ([], "give one of --every"),
        (["--every", "1s", "--tz", "UTC"], "--tz goes with --cron only"),
    ]
    for args, msg in cases:
        p = jobq("schedule", "add", "x", *args, "noop", redis_url=url)
        assert p.returncode == 2, (args, p.stderr)
        assert msg in p.stderr, (args, p.stderr)
    p = jobq("schedule", "add", "a:b", "--every", "1s", "noop", redis_url=url)
    assert p.returncode == 2 and "bad schedule name 'a:b'" in p.stderr
    p = jobq("schedule", "add", "x", "--every", "1s", "noop", "{bad json", redis_url=url)
    assert p.returncode == 2
    assert r.keys("*") == []  # nothing was written


def test_lag_in_stats_and_metrics(redis_server, r, served):
    """A schedule of a queue no consumer serves: its tick passes unfired,
    and stats, stats --json and /metrics say how late it is."""
    from test_metrics import samples, scrape, val
    url = redis_server.url
    c, port = served("--queues", "other")
    assert jobq("schedule", "add", "late", "--every", "1s", "noop", redis_url=url).returncode == 0
    due = r.zscore(key("schedules"), "late")
    wait_for(lambda: time.time() * 1000 > due + 1200, what="the tick 1.2 s past")
    q = {x["queue"]: x for x in json.loads(jobq("stats", "--json", redis_url=url).stdout)["queues"]}
    assert q["default"]["schedules"] == 1 and q["default"]["schedule_lag_ms"] >= 1200
    assert q["default"]["next_schedules"][0]["name"] == "late"
    assert q["default"]["next_schedules"][0]["next_ms"] == due
    assert q["other"]["schedules"] == 0 and q["other"]["schedule_lag_ms"] == 0
    plain = jobq("stats", redis_url=url).stdout
    assert re.search(r"^late +default +\S+ +[0-9.]+s$", plain, re.M), plain
    s = samples(scrape(port))
    assert val(s, "jobq_schedules", queue="default") == 1
    assert val(s, "jobq_schedule_lag_seconds", queue="default") >= 1.2
    assert val(s, "jobq_schedule_lag_seconds", queue="other") == 0
