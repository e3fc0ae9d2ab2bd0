"""Issue 21: every step that moves a job (promotion, retry, dead letter,
dead-set retry) removes it from one place only after it has landed in the
next, and a job carries at most what the scripts can move (PROTOCOL §1,
"Limits"). Each script is driven with the largest job the contract allows
and one past it; enqueueing is plain python3-redis, as any producer's.

Until 2026-12 a retried or delayed job with about 4,000 fields was lost: the
promotion script removed the id from `scheduled` before an XADD that failed
("too many results to unpack"), and Redis does not roll a script back."""
import os
import time

import pytest

from conftest import key, stream, wait_for, xadd
from conftest import jobq as run_jobq

MAX_FIELDS = 1000          # fields of an entry besides id and attempt
MAX_NAME = 256             # bytes of a field's name
MAX_VALUE = 64 * 1024      # bytes of a field's value (the payload: --max-payload)


def now_ms():
    return int(time.time() * 1000)


def where(r, job_id, queue="default"):
    """Where the job is now: 'dead', 'scheduled', 'done', 'stream' (an
    entry carries its id), or None: lost. Read in one MULTI, so a job
    moving meanwhile is seen in one place or the other, never in neither."""
    p = r.pipeline(transaction=True)
    p.zscore(key("dead", queue), job_id)
    p.zscore(key("scheduled", queue), job_id)
    p.hget(key("result:" + job_id, queue), "state")
    p.xrange(stream(queue))
    dead, sched, state, entries = p.execute()
    if dead is not None:
        return "dead"
    if sched is not None:
        return "scheduled"
    if state == b"done":
        return "done"
    if any(f.get(b"id") == job_id.encode() for _, f in entries):
        return "stream"
    return None


def reaches(r, job_id, state, more=lambda: ""):
    """Waits until the job is in state (a place where() names), failing at
    once if it is ever seen nowhere (lost) on the way."""
    def there():
        w = where(r, job_id)
        assert w is not None, "job %s lost%s" % (job_id, more())
        return w == state
    wait_for(there, timeout=5, interval=0.05,
             what=lambda: "%s to be %s (is %s)" % (job_id, state, where(r, job_id)))


def extra(n, prefix="x"):
    return {"%s%d" % (prefix, i): "v" for i in range(n)}


def job_hash(r, job_id, queue="default"):
    return {k.decode(): v for k, v in r.hgetall(key("job:" + job_id, queue)).items()}


def schedule(r, job_id, fields, due=0, queue="default"):
    """PROTOCOL §2 with python3-redis: job hash and scheduled entry in one
    MULTI."""
    p = r.pipeline(transaction=True)
    p.hset(key("job:" + job_id, queue), mapping=fields)
    p.zadd(key("scheduled", queue), {job_id: due})
    p.execute()


def fail_job(r, job_id, nextra, max_attempts=2):
    """A job that fails every attempt, with nextra fields of its own besides
    the five it needs (type, enc, payload, id, max_attempts)."""
    f = {"type": "fail", "enc": "json", "payload": '{"message":"m"}', "id": job_id,
         "max_attempts": str(max_attempts)}
    f.update(extra(nextra))
    return xadd(r, **f)


# ---- retry, promotion, dead letter: the largest job, and one past it ----

def test_retry_of_the_largest_job_is_promoted_and_dies_whole(r, consumer):
    """MAX_FIELDS fields (type, enc, payload, max_attempts and 996 of its
    own; id not counted): retried through the job hash and the promotion
    script, then dead with every field kept."""
    c = consumer("--backoff-ms", "50")
    fail_job(r, "big-ok", MAX_FIELDS - 4)
    wait_for(lambda: where(r, "big-ok") == "dead", timeout=10, what="big-ok dead")
    h = job_hash(r, "big-ok")
    assert h["attempt"] == b"2" and h["error"] == b"m"
    assert all(h["x%d" % i] == b"v" for i in range(MAX_FIELDS - 4))
    assert int(r.hget(key("stats"), "retried")) == 1
    assert "promoting" not in c.log()


def test_a_job_past_the_field_limit_is_dead_lettered_whole_not_lost(r, consumer):
    """One field past: dead on arrival, with the reason and every field."""
    consumer("--backoff-ms", "50")
    fail_job(r, "big-1", MAX_FIELDS - 3)
    wait_for(lambda: where(r, "big-1") == "dead", timeout=10, what="big-1 dead")
    h = job_hash(r, "big-1")
    assert h["error"] == b"too many fields: 1001 (at most 1000 besides id and attempt)"
    assert h["attempt"] == b"0"
    assert len([k for k in h if k.startswith("x")]) == MAX_FIELDS - 3


def test_the_issue_job_with_4000_fields_is_never_lost(r, consumer):
    """The issue's reproduction: 4,000 fields of its own, max_attempts 2.
    On main it was lost after its first attempt (in no set, no stream)."""
    consumer("--backoff-ms", "50")
    fail_job(r, "f4k", 4000)
    reaches(r, "f4k", "dead", lambda: "; hash %d fields" % r.hlen(key("job:f4k")))
    assert len(job_hash(r, "f4k")) >= 4000


@pytest.mark.parametrize("nfields,state", [(MAX_FIELDS, "done"), (5000, "dead")])
def test_delayed_job_at_and_past_the_limit(r, consumer, nfields, state):
    """A delayed job written per §2: at the limit it is promoted and runs;
    5,000 fields (the issue's case) are dead-lettered by the promotion
    script with the reason, never lost. ZADD dead comes before ZREM
    scheduled, in one script."""
    c = consumer()
    f = {"type": "noop"}
    f.update(extra(nfields - 1))
    schedule(r, "later-%d" % nfields, f)
    jid = "later-%d" % nfields
    reaches(r, jid, state)
    if state == "dead":
        h = job_hash(r, jid)
        assert h["error"] == b"too many fields: %d (at most 1000 besides id and attempt)" % nfields
        assert len(h) == nfields + 3  # its own, error, failed_at, attempt
        assert int(r.hget(key("stats"), "dead")) == 1
    assert "promoting" not in c.log()


# ---- the size of one field ----

@pytest.mark.parametrize("name_len,value_len,dead", [
    (MAX_NAME, MAX_VALUE, False), (MAX_NAME + 1, 1, True), (1, MAX_VALUE + 1, True)])
def test_field_sizes(r, consumer, name_len, value_len, dead):
    consumer("--backoff-ms", "50")
    jid = "sz-%d-%d" % (name_len, value_len)
    xadd(r, type="noop", id=jid, **{"n" * name_len: "v" * value_len})
    wait_for(lambda: where(r, jid) in ("dead", "done"), timeout=10, what=jid)
    assert where(r, jid) == ("dead" if dead else "done")
    if dead:
        err = job_hash(r, jid)["error"].decode()
        if name_len > MAX_NAME:
            assert err == "field name too long: 257 bytes 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...' (at most 256)"
        else:
            assert err == "field n too long: 65537 bytes (at most 65536; only payload may be larger)"


def test_a_payload_may_be_larger_than_other_fields(r, consumer):
    consumer()
    xadd(r, type="echo", id="pl", payload=b"\xda\xff\xff" + b"a" * 65535)  # msgpack str16
    wait_for(lambda: where(r, "pl") == "done", timeout=10, what="pl done")


# ---- dead-set retry: `jobq dead retry` cannot half-fail ----

def test_dead_retry_keeps_the_job_dead_when_scheduled_is_broken(r, redis_server):
    """If `scheduled` is not a sorted set the ZADD fails: the job must stay
    in the dead set (the ZREM comes after, in one script)."""
    r.hset(key("job:d1"), mapping={"type": "noop", "attempt": "3", "error": "x"})
    r.zadd(key("dead"), {"d1": now_ms()})
    r.set(key("scheduled"), "not a zset")
    p = run_jobq("dead", "retry", "d1", redis_url=redis_server.url)
    assert p.returncode != 0
    assert r.zscore(key("dead"), "d1") is not None
    r.delete(key("scheduled"))
    p = run_jobq("dead", "retry", "d1", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    assert r.zscore(key("dead"), "d1") is None and r.zscore(key("scheduled"), "d1") == 0
    assert r.hget(key("job:d1"), "attempt") == b"0"


def test_dead_retry_of_a_job_past_the_limit_comes_back_dead(r, redis_server, consumer):
    """A dead job with 5,000 fields retried: the promotion script sends it
    back to the dead set with the reason, whole."""
    consumer()
    f = {"type": "noop", "attempt": "1", "error": "old"}
    f.update(extra(5000))
    r.hset(key("job:d5k"), mapping=f)
    r.zadd(key("dead"), {"d5k": now_ms()})  # not past --dead-ttl: not trimmed
    p = run_jobq("dead", "retry", "d5k", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: r.hget(key("job:d5k"), "error", ) != b"old" and where(r, "d5k") == "dead",
             timeout=5, what="d5k dead again")
    assert r.hlen(key("job:d5k")) == 5004
    assert r.hget(key("job:d5k"), "error").startswith(b"too many fields: 5001")


# ---- retry and dead letter when their sorted set is broken ----

@pytest.mark.parametrize("setname,max_attempts", [("scheduled", 2), ("dead", 1)])
def test_outcome_is_not_acked_when_its_set_refuses_it(r, consumer, setname, max_attempts):
    """A retry (or dead letter) whose ZADD fails must not be acked: the
    entry stays pending, to run again once the set is fixed."""
    c = consumer("--backoff-ms", "50", "--visibility-ms", "1000")
    r.set(key(setname), "not a zset")
    fail_job(r, "z1", 0, max_attempts=max_attempts)
    c.wait_log("WRONGTYPE")
    time.sleep(0.3)   # nothing acked in this span is the point
    pend = r.xpending(stream(), "workers")
    assert pend["pending"] == 1, "the entry was acked: job lost"
    r.delete(key(setname))
    wait_for(lambda: where(r, "z1") == "dead", timeout=15, what="z1 dead")


# ---- hand-back: a dead worker holding more ids than one unpack takes ----

def test_handback_of_9000_pending_entries(r, consumer):
    """The master's hand-back script XCLAIMed all of a dead worker's
    pending ids (up to 10,000) in one unpack: past about 8,000 it failed
    and the jobs waited out the visibility timeout. Now 1,000 a command."""
    # Paused before the consumer starts: a worker reads as soon as it is
    # ready, and a bare SET (unlike `jobq pause`) does not unblock a read
    # already waiting.
    r.set(key("paused"), 1)
    c = consumer("--visibility-ms", "600000")
    p = r.pipeline(transaction=False)
    for i in range(9000):
        p.xadd(stream(), {"type": "noop"})
    p.execute()
    pid = c.worker_pids()[0]
    name = next(m for m in r.zrange("jobq:workers", 0, -1) if m.endswith(b":%d" % pid))
    got = r.xreadgroup("workers", name, {stream(): ">"}, count=9000)
    assert len(got[0][1]) == 9000
    os.kill(pid, 9)
    c.wait_log(r"handed back 9000 pending jobs of dead worker", timeout=10)
    assert "handing back jobs" not in c.log()
    r.delete(key("paused"))
    wait_for(lambda: r.hget(key("stats"), "processed") is not None, timeout=5,
             what="the handed-back jobs to run before the visibility timeout")


# ---- reclaim: XCLAIM carries the whole entry to another worker ----

def test_reclaim_of_the_largest_job_and_one_past(r, consumer):
    """Entries read by a consumer that died (never acked) are reclaimed
    after the visibility timeout: the largest job runs, one field past is
    dead-lettered whole."""
    c = consumer("--visibility-ms", "500")
    r.set(key("paused"), 1)  # the worker reads nothing: the ghost takes both
    c.wait_log(r"queue default paused")
    xadd(r, type="noop", id="rc-ok", **extra(MAX_FIELDS - 1))
    xadd(r, type="noop", id="rc-past", **extra(MAX_FIELDS))
    got = r.xreadgroup("workers", "ghost:1", {stream(): ">"}, count=10)
    assert len(got[0][1]) == 2
    r.delete(key("paused"))
    wait_for(lambda: where(r, "rc-ok") == "done" and where(r, "rc-past") == "dead", timeout=10,
             what="rc-ok done, rc-past dead")
    h = job_hash(r, "rc-past")
    assert h["error"].startswith(b"too many fields: 1001")
    assert len([k for k in h if k.startswith("x")]) == MAX_FIELDS


def test_dead_retry_of_the_largest_job_runs(r, redis_server, consumer):
    """The largest dead job retried with `jobq dead retry` is promoted and
    runs (its own fields, error and failed_at dropped on the way)."""
    consumer()
    f = {"type": "noop", "attempt": "3", "error": "old", "failed_at": "1"}
    f.update(extra(MAX_FIELDS - 1))
    r.hset(key("job:dmax"), mapping=f)
    r.zadd(key("dead"), {"dmax": now_ms()})
    p = run_jobq("dead", "retry", "dmax", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: where(r, "dmax") == "done", timeout=5, what="dmax done")


def test_dead_trim_of_jobs_past_the_limit(r, consumer):
    """The dead-set trim deletes the oldest dead jobs whatever they carry."""
    consumer("--dead-max", "1")
    for i in range(3):
        f = {"type": "noop", "error": "e"}
        f.update(extra(5000))
        r.hset(key("job:t%d" % i), mapping=f)
        r.zadd(key("dead"), {"t%d" % i: now_ms() + i})
    wait_for(lambda: r.zcard(key("dead")) == 1, timeout=5, what="the dead set trimmed to 1")
    assert r.zrange(key("dead"), 0, -1) == [b"t2"] and r.exists(key("job:t2"))
    assert not r.exists(key("job:t0")) and not r.exists(key("job:t1"))


# ---- a randomized property: whatever the mix, every job ends done or dead ----

def test_no_job_lost_in_a_random_mix(r, consumer):
    """200 jobs, each with a random field count around the limit (from
    none to past it), failing or not, with 1 to 3 attempts, enqueued
    directly or delayed per §2: each ends done or dead, none lost, and the
    ones past the limit dead with the reason."""
    import random
    seed = int(os.environ.get("JQ_SEED", random.randrange(1 << 30)))
    rnd = random.Random(seed)
    consumer("--backoff-ms", "20", "--backoff-max-ms", "100")
    want = {}
    for i in range(200):
        jid = "p%d" % i
        n = rnd.choice([0, 10, MAX_FIELDS - 4, MAX_FIELDS - 3, MAX_FIELDS + 50, 4000])
        fail = rnd.random() < 0.5
        f = {"type": "fail" if fail else "noop", "enc": "json",
             "payload": '{"message":"m"}', "max_attempts": str(rnd.randint(1, 3))}
        f.update(extra(n))
        over = len(f) > MAX_FIELDS
        want[jid] = "dead" if (fail or over) else "done"
        if rnd.random() < 0.3:
            schedule(r, jid, f, due=now_ms() + rnd.randint(0, 300))
        else:
            f["id"] = jid
            xadd(r, **f)

    def ended():
        return all(where(r, j) == s for j, s in want.items())
    try:
        wait_for(ended, timeout=30, interval=0.2, what="every job ended")
    except AssertionError:
        bad = {j: (s, where(r, j)) for j, s in want.items() if where(r, j) != s}
        raise AssertionError("seed %d: %s" % (seed, bad))


def test_an_entry_left_pending_by_a_failed_move_stays_in_the_stream(r, consumer):
    """A dead letter whose ZADD failed is not acked (its entry stays
    pending); above an older pending entry (a long job) the trim's later
    pass must not XDEL it as if it were acked: its fields would be gone
    when it is reclaimed."""
    c = consumer("--visibility-ms", "1500")
    slow = xadd(r, type="sleep", payload={"ms": 4000})
    wait_for(lambda: r.xpending(stream(), "workers")["pending"] == 1, what="the slow job")
    r.set(key("dead"), "not a zset")
    eid = r.xadd(stream(), {"type": "fail", "enc": "json", "payload": '{"message":"m"}',
                            "id": "z2", "max_attempts": "1", "mine": "kept"})
    c.wait_log("WRONGTYPE")
    time.sleep(0.6)  # the trim's later passes: 100 to 200 ms
    assert r.xrange(stream(), eid, eid), "a pending entry was deleted from the stream"
    r.delete(key("dead"))
    wait_for(lambda: where(r, "z2") == "dead", timeout=10, what="z2 dead")
    assert job_hash(r, "z2")["mine"] == b"kept"
    assert slow
