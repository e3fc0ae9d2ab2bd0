"""Issue 2, the foundation, end to end: jobs enqueued by clients that are not
ours (redis-cli, python3-redis) and by bin/jobq run through the real
consumer; results, notify lists, dead letters, counters, heartbeats,
capacity and the command lines are checked against PROTOCOL.md with plain
Redis reads. sha256 results are checked against Python's hashlib."""
import json
import os
import re
import subprocess
import time

import msgpack
import pytest

import conftest
from conftest import CONSUMER, JOBQ, SANITIZER_MARKERS, jobq, key, scale, sha256_rounds, stream, wait_for, wait_result, wait_stream_empty

# ---------------------------------------------------------------- helpers




def entry_ms(entry_id):
    return int(entry_id.split("-")[0])


def finished(r, jid, queue="default", timeout=10):
    """Waits until the job's notify list exists (done or dead) without
    popping it; returns (result hash with str keys, notify list). The jobs
    of these tests are waited for, so they carry `notify 1` (PROTOCOL 1.2
    §3: else no notify list is pushed), even the malformed ones."""
    nkey = key("notify:%s" % jid, queue)
    wait_for(lambda: r.exists(nkey), timeout=timeout, what="notify list of %s" % jid)
    h = r.hgetall(key("result:%s" % jid, queue))
    return {k.decode(): v for k, v in h.items()}, r.lrange(nkey, 0, -1)


def xadd(r, queue="default", **fields):
    """conftest's xadd, for a job that a client waits for: `notify 1`."""
    return conftest.xadd(r, queue, **dict(fields, notify="1"))


def assert_alive(c):
    """The master and every worker it started are still running."""
    assert c.proc.poll() is None, "master exited; log:\n" + c.log()
    pids = c.worker_pids()
    assert pids, "no live worker in the log:\n" + c.log()
    for pid in pids:
        os.kill(pid, 0)  # raises if gone


def live_worker_ids(r):
    return [m.decode() for m in r.zrange("jobq:workers", 0, -1)]


# ------------------------------------------------- 1. jobs end to end

@pytest.mark.parametrize("rounds", [1, 1000])
def test_sha256_redis_cli_json(redis_server, r, consumer, rounds):
    consumer("--workers", "1")
    payload = json.dumps({"data": "hello w\u00f6rld", "rounds": rounds})
    jid = redis_server.cli("XADD", stream(), "*", "type", "sha256", "enc", "json",
                           "payload", payload).strip()
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(res["result"]) == sha256_rounds("hello w\u00f6rld".encode(), rounds)
    assert res["attempts"] == b"1"
    assert "error" not in res


@pytest.mark.parametrize("rounds", [1, 1000])
@pytest.mark.parametrize("data", ["plain text", b"\x00\xff\x10bin\x00"], ids=["str", "bin"])
def test_sha256_python_msgpack(r, consumer, data, rounds):
    consumer("--workers", "1")
    jid = xadd(r, type="sha256", payload={"data": data, "rounds": rounds})
    res = wait_result(r, jid)
    raw = data.encode() if isinstance(data, str) else data
    assert res["state"] == b"done", res
    assert msgpack.unpackb(res["result"]) == sha256_rounds(raw, rounds)


def test_sha256_empty_data(r, consumer):
    consumer()
    jid = xadd(r, type="sha256", payload={"data": b"", "rounds": 2})
    assert msgpack.unpackb(wait_result(r, jid)["result"]) == sha256_rounds(b"", 2)


def test_echo_round_trip_msgpack(r, consumer):
    consumer()
    payload = {"n": [1, -2, 2 ** 40, 1.5, None, True], "b": b"\x00\xff" * 50,
               "s": "h\u00e9llo", "m": {"deep": [[], {}]}}
    jid = xadd(r, type="echo", payload=payload)
    res = wait_result(r, jid)
    assert res["state"] == b"done"
    assert msgpack.unpackb(res["result"]) == payload
    # The bytes are the payload's own, unchanged.
    assert res["result"] == msgpack.packb(payload)


def test_echo_json_via_redis_cli(redis_server, r, consumer):
    consumer()
    jid = redis_server.cli("XADD", stream(), "*", "type", "echo", "enc", "json",
                           "payload", '{"a":[1,2.5,null,"x"],"b":{"c":true}}').strip()
    res = wait_result(r, jid)
    assert msgpack.unpackb(res["result"]) == {"a": [1, 2.5, None, "x"], "b": {"c": True}}


def test_noop_nil_result_and_result_hash_fields(r, consumer):
    c = consumer("--workers", "2")
    jid = xadd(r, type="noop", payload={"ignored": 1})
    res, notify = finished(r, jid)
    assert notify == [b"done"]
    assert res["state"] == b"done"
    assert res.get("result", msgpack.packb(None)) == msgpack.packb(None)
    assert res["attempts"] == b"1"
    fin = int(res["finished_at"])
    assert entry_ms(jid) <= fin <= int(time.time() * 1000) + 1000
    worker = res["worker"].decode()
    # The worker that ran it is one of the master's live workers, by id.
    assert int(worker.rsplit(":", 1)[1]) in c.worker_pids()
    wait_for(lambda: worker in live_worker_ids(r), what="worker %s in jobq:workers" % worker)
    ttl = r.ttl(key("result:%s" % jid))
    assert 86400 - 60 <= ttl <= 86400
    nttl = r.ttl(key("notify:%s" % jid))
    assert 86400 - 60 <= nttl <= 86400
    wait_stream_empty(r)  # acked and gone


def test_noop_without_payload(r, consumer):
    consumer()
    jid = r.xadd(stream(), {"notify": "1", "type": "noop"}).decode()
    res, notify = finished(r, jid)
    assert notify == [b"done"] and res["state"] == b"done"


def test_sleep(r, consumer):
    consumer()
    jid = xadd(r, type="sleep", payload={"ms": 300})
    res, notify = finished(r, jid)
    assert notify == [b"done"] and res["state"] == b"done"
    # Three clocks in whole ms (Redis's entry id, libuv's monotonic timer,
    # the worker's finished_at): a job started within the entry's own ms
    # may read 299 (seen once, now that a worker reads at once).
    assert int(res["finished_at"]) - entry_ms(jid) >= 299


def test_fail_goes_dead_after_one_attempt(r, consumer):
    consumer()
    jid = xadd(r, type="fail", payload={"message": "boom: disk on fire"}, max_attempts="1",
               custom="kept")
    res, notify = finished(r, jid)
    assert notify == [b"dead"]
    assert res["state"] == b"dead"
    assert b"boom: disk on fire" in res["error"]
    assert res["attempts"] == b"1"
    score = r.zscore(key("dead"), jid)
    assert score is not None and entry_ms(jid) <= score <= time.time() * 1000 + 1000
    job = {k.decode(): v for k, v in r.hgetall(key("job:%s" % jid)).items()}
    assert b"boom: disk on fire" in job["error"]
    assert job["attempt"] == b"1"
    assert int(job["failed_at"]) == int(score)
    assert job["type"] == b"fail"
    assert msgpack.unpackb(job["payload"]) == {"message": "boom: disk on fire"}
    assert job["custom"] == b"kept"  # producers' own fields stay
    wait_stream_empty(r)


def test_result_ttl_zero_keeps_no_result(r, consumer):
    """PROTOCOL 1.1 §3: with result_ttl 0 nothing is written per job,
    neither the result hash nor the notify list; a dead one is still in the
    dead set."""
    consumer()
    jids = [xadd(r, type="echo", payload=[1, 2], result_ttl="0") for _ in range(20)]
    dead = xadd(r, type="fail", payload={"message": "no"}, result_ttl="0", max_attempts="1")
    wait_for(lambda: int(r.hget(key("stats"), "processed") or 0) == 20 and r.zscore(key("dead"), dead),
             what="the jobs to run")
    for jid in jids + [dead]:
        assert not r.exists(key("result:%s" % jid))
        assert not r.exists(key("notify:%s" % jid))
    assert r.hget(key("job:%s" % dead), "error") == b"no"
    wait_stream_empty(r)


def test_result_ttl_is_applied(r, consumer):
    consumer()
    jid = xadd(r, type="noop", result_ttl="100")
    finished(r, jid)
    assert 0 < r.ttl(key("result:%s" % jid)) <= 100
    assert 0 < r.ttl(key("notify:%s" % jid)) <= 100


def test_producer_chosen_id(r, consumer):
    consumer()
    eid = r.xadd(stream(), {"notify": "1", "type": "echo", "payload": msgpack.packb("hi"), "id": "order-42:x.y_z"})
    res, notify = finished(r, "order-42:x.y_z")
    assert notify == [b"done"] and msgpack.unpackb(res["result"]) == "hi"
    assert not r.exists(key("result:%s" % eid.decode()))
    assert not r.exists(key("notify:%s" % eid.decode()))


def test_jobs_enqueued_before_the_consumer_run(r, consumer):
    """The group is created from id 0: nothing enqueued earlier is skipped."""
    ids = [xadd(r, type="noop") for _ in range(5)]
    consumer()
    for jid in ids:
        assert finished(r, jid)[1] == [b"done"]


# ------------------------------------------------------ 2. bad input

def huge(n):
    return msgpack.packb(b"x" * n)


BAD = [
    # (test id, fields, expected error text, job id from the `id` field?)
    ("unknown-type", {"type": "frobnicate", "payload": msgpack.packb(1)},
     "unknown job type: frobnicate"),
    ("not-msgpack-c1", {"type": "echo", "payload": b"\xc1"},
     "payload is not valid msgpack: bad type byte 0xc1 at byte 0"),
    ("not-msgpack-truncated", {"type": "echo", "payload": b"\x93\x01\x02"},
     "payload is not valid msgpack: truncated"),
    ("not-msgpack-trailing", {"type": "echo", "payload": b"\x01\x02\x03"},
     "payload is not valid msgpack: 2 trailing bytes"),
    ("broken-json", {"type": "echo", "enc": "json", "payload": '{"data": "x", '},
     "payload is not valid JSON: unexpected end"),
    ("json-trailing", {"type": "echo", "enc": "json", "payload": '{"a":1} x'},
     "payload is not valid JSON: trailing data"),
    ("unknown-enc", {"type": "echo", "enc": "xml", "payload": "<a/>"}, "unknown enc: xml"),
    ("max-attempts-x", {"type": "noop", "max_attempts": "x"}, "bad field max_attempts: 'x'"),
    ("max-attempts-0", {"type": "noop", "max_attempts": "0"}, "bad field max_attempts: '0'"),
    ("max-attempts-neg", {"type": "noop", "max_attempts": "-3"}, "bad field max_attempts"),
    ("timeout-ms-bad", {"type": "noop", "timeout_ms": "soon"}, "bad field timeout_ms"),
    ("result-ttl-bad", {"type": "noop", "result_ttl": "1.5"}, "bad field result_ttl"),
    ("too-large", {"type": "echo", "payload": huge(2000)}, "payload too large: 2003 bytes > max-payload 1000"),
    ("missing-type", {"payload": msgpack.packb(1)}, "missing field: type"),
    ("empty-type", {"type": ""}, "bad field type"),
    ("chunks-without-id", {"type": "echo", "chunks": "2", "size": "10"}, "chunks needs an id"),
    ("nul-in-type", {"type": b"ec\x00ho"}, "unknown job type: ec?ho"),
    ("empty-payload", {"type": "echo", "payload": b""},
     "payload is not valid msgpack: truncated at byte 0 of 0"),
    ("deep-msgpack", {"type": "echo", "payload": b"\x91" * 500 + b"\xc0"},
     "payload is not valid msgpack: nested deeper than"),
    ("deep-json", {"type": "echo", "enc": "json", "payload": "[" * 400 + "]" * 400},
     "payload is not valid JSON: nesting too deep"),
    ("json-not-utf8", {"type": "echo", "enc": "json", "payload": b'"\xff"'},
     "payload is not valid JSON: invalid utf-8"),
]


@pytest.mark.parametrize("fields,error", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_dead_lettered(r, consumer, fields, error):
    c = consumer("--max-payload", "1000", "--workers", "2")
    jid = r.xadd(stream(), dict(fields, notify="1")).decode()
    res, notify = finished(r, jid)
    assert notify == [b"dead"]
    assert res["state"] == b"dead"
    assert error.encode() in res["error"], res["error"]
    assert res["attempts"] == b"0"  # no attempt was made
    assert r.zscore(key("dead"), jid) is not None
    job = {k.decode(): v for k, v in r.hgetall(key("job:%s" % jid)).items()}
    assert error.encode() in job["error"], job
    assert job["attempt"] == b"0"
    assert "failed_at" in job
    wait_stream_empty(r)
    stats = r.hgetall(key("stats"))
    assert stats.get(b"dead") == b"1" and b"processed" not in stats
    # The service keeps running and still completes a normal job.
    ok = xadd(r, type="sha256", payload={"data": "after", "rounds": 3})
    assert msgpack.unpackb(wait_result(r, ok)["result"]) == sha256_rounds(b"after", 3)
    assert_alive(c)


def test_used_up_attempt_field_is_a_bad_field(r, consumer):
    """An entry whose `attempt` already reaches max_attempts is a producer's
    mistake (jobq never enqueues one): dead at once with an error that says
    so, not "worker lost"."""
    consumer()
    jid = r.xadd(stream(), {"notify": "1", "type": "noop", "attempt": "3", "max_attempts": "3"}).decode()
    res, notify = finished(r, jid)
    assert notify == [b"dead"]
    assert b"bad field attempt" in res["error"], res["error"]
    ok = xadd(r, type="noop", attempt="2", max_attempts="3")  # one attempt left: runs
    assert finished(r, ok)[1] == [b"done"]


HANDLER_ERRORS = [
    ("sha256", {"data": "x", "rounds": 0}, "sha256: rounds must be an integer >= 1"),
    ("sha256", {"data": "x", "rounds": -1}, "sha256: rounds must be an integer >= 1"),
    ("sha256", {"data": 5, "rounds": 1}, "sha256: payload must be a map"),
    ("sha256", {"rounds": 1}, "sha256: payload must be a map"),
    ("sha256", None, "sha256: payload must be a map"),
    ("sleep", {"ms": "5"}, "sleep: payload must be a map {ms: N}"),
    ("sleep", [], "sleep: payload must be a map {ms: N}"),
    ("fail", None, "fail: no message"),
]


@pytest.mark.parametrize("jtype,payload,error", HANDLER_ERRORS,
                         ids=["%s-%d" % (h[0], i) for i, h in enumerate(HANDLER_ERRORS)])
def test_handler_rejects_payload(r, consumer, jtype, payload, error):
    """A well-formed entry whose payload the handler refuses is a failed
    attempt (counted in `failed`), dead after max_attempts 1."""
    consumer()
    jid = r.xadd(stream(), {"notify": "1", "type": jtype, "payload": msgpack.packb(payload),
                            "max_attempts": "1"}).decode()
    res, notify = finished(r, jid)
    assert notify == [b"dead"] and res["attempts"] == b"1"
    assert error.encode() in res["error"], res["error"]
    stats = r.hgetall(key("stats"))
    assert stats[b"failed"] == b"1" and stats[b"dead"] == b"1"


def test_dead_job_keeps_many_fields(r, consumer):
    """Entries with more fields than the intake's stack array still parse,
    and a dead job's hash keeps every producer field."""
    consumer()
    extra = {"f%03d" % i: "v%d" % i for i in range(100)}
    jid = xadd(r, type="fail", payload={"message": "m"}, max_attempts="1", **extra)
    assert finished(r, jid)[1] == [b"dead"]
    job = {k.decode(): v.decode() for k, v in r.hgetall(key("job:%s" % jid)).items()
           if k.startswith(b"f0")}
    assert job == extra


def test_echo_large_result_is_chunked(r, consumer):
    """PROTOCOL §3: a result over --chunk-size goes to the chunk list."""
    consumer("--chunk-size", "64k")
    payload = msgpack.packb(bytes(range(256)) * 1000)  # ~256 KB
    jid = r.xadd(stream(), {"notify": "1", "type": "echo", "payload": payload}).decode()
    res = wait_result(r, jid)
    assert res["state"] == b"done" and "result" not in res
    n = int(res["chunks"])
    parts = r.lrange(key("result:%s:chunks" % jid), 0, -1)
    assert len(parts) == n == (len(payload) + 65535) // 65536
    assert b"".join(parts) == payload
    assert 0 < r.ttl(key("result:%s:chunks" % jid)) <= 86400


def test_bad_input_with_producer_id_is_dead_under_that_id(r, consumer):
    consumer()
    r.xadd(stream(), {"notify": "1", "type": "echo", "payload": b"\xc1", "id": "bad-one"})
    res, notify = finished(r, "bad-one")
    assert notify == [b"dead"] and b"not valid msgpack" in res["error"]
    assert r.zscore(key("dead"), "bad-one") is not None


def test_bad_id_field_is_dead_under_entry_id(r, consumer):
    consumer()
    jid = r.xadd(stream(), {"notify": "1", "type": "noop", "id": "no spaces!"}).decode()
    res, notify = finished(r, jid)
    assert notify == [b"dead"] and b"bad field id" in res["error"]


def test_payload_at_max_payload_is_accepted(r, consumer):
    consumer("--max-payload", "1000")
    payload = msgpack.packb(b"y" * 997)
    assert len(payload) <= 1000
    jid = r.xadd(stream(), {"notify": "1", "type": "echo", "payload": payload}).decode()
    res = wait_result(r, jid)
    assert res["state"] == b"done" and res["result"] == payload


def test_many_bad_jobs_mixed_with_good_ones(r, consumer):
    c = consumer("--max-payload", "1000", "--workers", "2")
    good, bad = [], []
    for i in range(30):
        fields = BAD[i % len(BAD)][1]
        bad.append(r.xadd(stream(), dict(fields, notify="1")).decode())
        good.append(xadd(r, type="echo", payload=i))
    for i, jid in enumerate(good):
        assert msgpack.unpackb(wait_result(r, jid)["result"]) == i
    for jid in bad:
        assert finished(r, jid)[1] == [b"dead"]
    assert r.zcard(key("dead")) == 30
    assert_alive(c)


# ---------------------------------------------------------- 3. stats

def test_stats_latency_and_heartbeat(r, consumer):
    c = consumer("--workers", "1", "--threads", "2", "--heartbeat-ms", "200",
                 "--queues", "default,other")
    ids = [xadd(r, type="noop") for _ in range(3)]
    ids.append(xadd(r, type="fail", payload={"message": "no"}, max_attempts="1"))
    ids.append(r.xadd(stream(), {"notify": "1", "type": "nope"}).decode())
    for jid in ids:
        finished(r, jid)

    stats = r.hgetall(key("stats"))
    assert stats[b"processed"] == b"3"
    assert stats[b"failed"] == b"1"
    assert stats[b"dead"] == b"2"
    assert stats.get(b"retried", b"0") == b"0"

    minute_keys = [k for k in r.scan_iter(match="jobq:{default}:stats:*")]
    assert minute_keys
    total = {"processed": 0, "failed": 0, "dead": 0}
    now_min = int(time.time() * 1000) // 60000
    for mk in minute_keys:
        assert now_min - 1 <= int(mk.decode().rsplit(":", 1)[1]) <= now_min
        assert 86400 - 60 <= r.ttl(mk) <= 86400
        for f in total:
            total[f] += int(r.hget(mk, f) or 0)
    assert total == {"processed": 3, "failed": 1, "dead": 2}

    lat = {k.decode(): int(v) for k, v in r.hgetall(key("latency")).items()}
    bounds = ["1", "2", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
              "10000", "30000", "60000", "inf"]
    for kind in ("wait", "run"):
        # The four jobs that started (not the one dead on arrival).
        assert lat["%s:count" % kind] == 4
        assert "%s:sum_us" % kind in lat
        buckets = {f: v for f, v in lat.items() if f.startswith(kind + ":le:")}
        assert set(b.split(":")[2] for b in buckets) <= set(bounds)
        assert sum(buckets.values()) == lat["%s:count" % kind]

    # The heartbeat hash (§7).
    wid = wait_for(lambda: live_worker_ids(r), what="a worker in jobq:workers")[0]
    assert int(wid.rsplit(":", 1)[1]) in c.worker_pids()
    wkey = "jobq:worker:%s" % wid
    wait_for(lambda: r.hget(wkey, "processed") == b"3", what="heartbeat processed 3")
    hb = {k.decode(): v.decode() for k, v in r.hgetall(wkey).items()}
    for f in ("host", "pid", "queues", "started_at", "processed", "failed", "busy_io",
              "busy_cpu", "threads", "cpu_backlog", "rss_bytes", "cpu_ms", "open_fds",
              "loop_lag_us"):
        assert f in hb, "heartbeat lacks %s: %r" % (f, hb)
    assert wid == "%s:%s" % (hb["host"], hb["pid"])
    assert int(hb["pid"]) in c.worker_pids()
    assert set(hb["queues"].split(",")) == {"default", "other"}
    assert hb["failed"] == "1"
    assert hb["threads"] == "2"
    assert hb["busy_io"] == "0" and hb["busy_cpu"] == "0" and hb["cpu_backlog"] == "0"
    assert int(hb["rss_bytes"]) > 100000
    assert int(hb["open_fds"]) >= 3
    assert int(hb["cpu_ms"]) >= 0 and int(hb["loop_lag_us"]) >= 0
    now = time.time() * 1000
    assert now - 60000 < int(hb["started_at"]) <= now
    assert 0 < r.pttl(wkey) <= 3 * 200
    score = r.zscore("jobq:workers", wid)
    assert now - 5000 < score <= now + 1000
    assert {m.decode() for m in r.smembers("jobq:queues")} >= {"default", "other"}


def test_heartbeat_expires_after_the_worker_stops(r, consumer):
    c = consumer("--heartbeat-ms", "100")
    wid = wait_for(lambda: live_worker_ids(r), what="a worker in jobq:workers")[0]
    c.stop()
    wait_for(lambda: not r.exists("jobq:worker:%s" % wid), timeout=5, what="heartbeat hash gone")


# ------------------------------------------------ 4. several queues

def test_multiple_queues(r, consumer):
    c = consumer("--queues", "a,b", "--workers", "2")
    xa = [xadd(r, queue="a", type="echo", payload=msgpack.packb("a%d" % i)) for i in range(5)]
    stray = xadd(r, queue="c", type="noop")
    xb = [xadd(r, queue="b", type="echo", payload=msgpack.packb("b%d" % i)) for i in range(5)]
    for i, jid in enumerate(xa):
        assert msgpack.unpackb(wait_result(r, jid, queue="a")["result"]) == "a%d" % i
    for i, jid in enumerate(xb):
        assert msgpack.unpackb(wait_result(r, jid, queue="b")["result"]) == "b%d" % i
    # One more round on a, enqueued after the stray one: the stray job is
    # still untouched in its stream.
    last = xadd(r, queue="a", type="noop")
    finished(r, last, queue="a")
    assert r.xlen(stream("c")) == 1
    assert r.xrange(stream("c"))[0][0].decode() == stray
    assert not r.exists(key("notify:%s" % stray, "c"))
    assert not r.exists(key("result:%s" % stray, "c"))
    assert {m.decode() for m in r.smembers("jobq:queues")} >= {"a", "b"}
    assert "c" not in {m.decode() for m in r.smembers("jobq:queues")}
    wait_stream_empty(r, "a")
    wait_stream_empty(r, "b")
    assert_alive(c)


def test_prefix(r, consumer):
    consumer("--prefix", "myapp")
    jid = r.xadd(stream(prefix="myapp"), {"notify": "1", "type": "echo", "payload": msgpack.packb(7)}).decode()
    got = r.blpop([key("notify:%s" % jid, prefix="myapp")], timeout=scale(10))
    assert got and got[1] == b"done"
    assert msgpack.unpackb(r.hget(key("result:%s" % jid, prefix="myapp"), "result")) == 7
    assert r.zcard("myapp:workers") >= 1 and r.zcard("jobq:workers") == 0


# --------------------------------------------------------- 5. capacity

def test_never_holds_more_than_capacity(r, consumer):
    c = consumer("--workers", "1", "--io-concurrency", "2", "--threads", "1")
    capacity = 2 + 2 * 1
    pipe = r.pipeline(transaction=False)
    for _ in range(50):
        pipe.xadd(stream(), {"notify": "1", "type": "sleep", "payload": msgpack.packb({"ms": 300})})
    ids = [i.decode() for i in pipe.execute()]
    last = ids[-1]
    peak, samples = 0, 0
    deadline = time.time() + scale(60)
    while not r.exists(key("notify:%s" % last)) and time.time() < deadline:
        info = r.xpending(stream(), "workers")
        for cons in info["consumers"]:
            peak = max(peak, int(cons["pending"]))
        samples += 1
    for jid in ids:
        assert finished(r, jid)[1] == [b"done"]
    assert samples > 20
    assert 0 < peak <= capacity, "a worker held %d entries, capacity %d" % (peak, capacity)
    assert_alive(c)


def test_never_holds_more_than_capacity_with_instant_jobs(r, consumer):
    """noop finishes inside start(): the next read must not be sent while
    the entries of the current reply are still being taken in."""
    c = consumer("--workers", "1", "--io-concurrency", "2", "--threads", "1")
    capacity = 2 + 2 * 1
    pipe = r.pipeline(transaction=False)
    for _ in range(3000):
        pipe.xadd(stream(), {"notify": "1", "type": "noop"})
    ids = pipe.execute()
    last = ids[-1].decode()
    peak = 0
    deadline = time.time() + scale(60)
    while not r.exists(key("notify:%s" % last)) and time.time() < deadline:
        for cons in r.xpending(stream(), "workers")["consumers"]:
            peak = max(peak, int(cons["pending"]))
    assert finished(r, last)[1] == [b"done"]
    assert r.hget(key("stats"), "processed") == b"3000"
    assert 0 < peak <= capacity, "a worker held %d entries, capacity %d" % (peak, capacity)
    assert_alive(c)


def test_capacity_holds_across_queues(r, consumer):
    """COUNT applies per stream: with fewer free slots than queues, one read
    over every queue could return more than the worker can run."""
    c = consumer("--workers", "1", "--queues", "a,b,c", "--io-concurrency", "1",
                 "--threads", "1")
    capacity = 1 + 2 * 1
    pipe = r.pipeline(transaction=False)
    for i in range(12):
        for q in "abc":
            pipe.xadd(stream(q), {"notify": "1", "type": "sleep", "payload": msgpack.packb({"ms": 50})})
    ids = [i.decode() for i in pipe.execute()]
    peak = 0
    deadline = time.time() + scale(60)
    while time.time() < deadline:
        snap = r.pipeline(transaction=True)  # one atomic look at the three
        for q in "abc":
            snap.xpending(stream(q), "workers")
        held = sum(int(cons["pending"]) for info in snap.execute() for cons in info["consumers"])
        peak = max(peak, held)
        if sum(r.xlen(stream(q)) for q in "abc") == 0:
            break
    for n, jid in enumerate(ids):
        assert finished(r, jid, queue="abc"[n % 3])[1] == [b"done"]
    assert 0 < peak <= capacity, "a worker held %d entries, capacity %d" % (peak, capacity)
    assert_alive(c)


# ------------------------------------------ 6. cpu jobs do not block the loop

def test_cpu_job_does_not_block_io_jobs(r, consumer):
    consumer("--workers", "1", "--threads", "1")
    rounds = 6000000  # about 0.6 s here: long enough to overlap every io job
    big = xadd(r, type="sha256", payload={"data": "long", "rounds": rounds})
    # Let the worker take it first, so the io jobs really come after it.
    wait_for(lambda: r.xpending(stream(), "workers")["pending"] >= 1, what="sha256 taken")
    small = []
    for i in range(20):
        if i % 2:
            small.append(xadd(r, type="noop"))
        else:
            small.append(xadd(r, type="sleep", payload={"ms": 10}))
    expect = sha256_rounds(b"long", rounds)  # computed while the job runs
    res_big = wait_result(r, big, timeout=120)
    fin_big = int(res_big["finished_at"])
    assert msgpack.unpackb(res_big["result"]) == expect
    assert fin_big - entry_ms(big) > 300, "sha256 too quick to show anything"
    for jid in small:
        res = wait_result(r, jid)
        assert res["state"] == b"done"
        assert int(res["finished_at"]) < fin_big, "io job %s finished after the cpu job" % jid


# ------------------------------------------------------------ 7. bin/jobq

needs_jobq = pytest.mark.skipif(not os.path.exists(JOBQ), reason="bin/jobq not built")


@needs_jobq
def test_jobq_enqueue_wait_done(redis_server, r, consumer):
    consumer()
    p = jobq("enqueue", "sha256", '{"data":"abc","rounds":5}', "--wait", "20",
             redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["state"] == "done"
    assert out["result"] == sha256_rounds(b"abc", 5)
    assert out["attempts"] == 1
    assert out["queue"] == "default"
    assert r.hget(key("result:%s" % out["id"]), "state") == b"done"


@needs_jobq
def test_jobq_enqueue_prints_id_and_wait(redis_server, r, consumer):
    p = jobq("enqueue", "-q", "jq", "echo", '{"x":[1,2]}', redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    jid = p.stdout.strip()
    assert re.fullmatch(r"\d+-\d+", jid), p.stdout
    entry = r.xrange(stream("jq"))[0]
    assert entry[0].decode() == jid
    assert msgpack.unpackb(entry[1][b"payload"]) == {"x": [1, 2]}
    assert entry[1][b"type"] == b"echo"
    consumer("--queues", "jq")
    p = jobq("wait", "-q", "jq", jid, "--timeout", "20", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["id"] == jid and out["state"] == "done" and out["result"] == {"x": [1, 2]}


@needs_jobq
def test_jobq_wait_for_job_from_redis_cli(redis_server, r, consumer):
    consumer()
    jid = redis_server.cli("XADD", stream(), "*", "type", "echo", "enc", "json",
                           "payload", '"hi"').strip()
    p = jobq("wait", jid, "--timeout", "20", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["result"] == "hi"


@needs_jobq
def test_jobq_dead_job_exits_1(redis_server, consumer):
    consumer()
    p = jobq("enqueue", "fail", '{"message":"kaput"}', "--max-attempts", "1", "--wait", "20",
             redis_url=redis_server.url)
    assert p.returncode == 1, (p.stdout, p.stderr)
    out = json.loads(p.stdout)
    assert out["state"] == "dead" and "kaput" in out["error"]


@needs_jobq
def test_jobq_unknown_type_exits_1(redis_server, consumer):
    consumer()
    p = jobq("enqueue", "nosuchtype", "--wait=20", redis_url=redis_server.url)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "unknown job type: nosuchtype" in json.loads(p.stdout)["error"]


@needs_jobq
def test_jobq_timeout_exits_2(redis_server):
    t0 = time.time()
    p = jobq("enqueue", "noop", "null", "--wait", "1", redis_url=redis_server.url)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert time.time() - t0 < scale(15)
    p = jobq("wait", "1-1", "--timeout", "1", redis_url=redis_server.url)
    assert p.returncode == 2, (p.stdout, p.stderr)


@pytest.mark.parametrize("args", [
    [],
    ["enqueue"],
    ["enqueue", "sha256", "{not json"],
    ["enqueue", "-q", "bad queue!", "noop"],
    ["enqueue", "noop", "--max-attempts", "x"],
    ["enqueue", "noop", "--bogus"],
    ["wait"],
    ["frobnicate"],
], ids=lambda a: " ".join(a) or "none")
@needs_jobq
def test_jobq_bad_arguments_exit_2(redis_server, r, args):
    p = jobq(*args, redis_url=redis_server.url)
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert p.stderr.strip(), "no message for %r" % args
    assert r.xlen(stream()) == 0  # nothing enqueued


@needs_jobq
def test_jobq_help_exits_0():
    for args in (["--help"], ["enqueue", "--help"], ["wait", "--help"]):
        p = jobq(*args)
        assert p.returncode == 0, (args, p.stderr)
        assert "usage" in p.stdout.lower()


# --------------------------------------------------- 8. consumer flags

@pytest.mark.parametrize("args,text", [
    (["--bogus"], "--bogus"),
    (["--workers", "x"], "--workers"),
    (["--workers", "-1"], "--workers"),
    (["--threads", "many"], "--threads"),
    (["--io-concurrency", "0"], "--io-concurrency"),
    (["--max-payload", "12q"], "--max-payload"),
    (["--queues", "bad name!"], "bad name!"),
    (["--queues", "a,,b"], "--queues"),
    (["--queues", "a,a"], "twice"),
    (["--prefix", "no spaces"], "--prefix"),
    (["--log-level", "loud"], "--log-level"),
    (["--redis", "http://x"], "redis"),
    (["--workers"], "--workers"),
    (["stray"], "stray"),
], ids=lambda a: a if isinstance(a, str) else " ".join(a))
def test_consumer_bad_flags_exit_2(args, text):
    p = subprocess.run([CONSUMER] + args, capture_output=True, text=True, timeout=scale(10))
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert text in p.stderr, p.stderr
    for marker in SANITIZER_MARKERS:
        assert marker not in p.stderr


def test_consumer_help_exits_0():
    p = subprocess.run([CONSUMER, "--help"], capture_output=True, text=True, timeout=scale(10))
    assert p.returncode == 0
    assert "usage" in p.stdout
    for flag in ("--redis", "--queues", "--workers", "--threads", "--io-concurrency",
                 "--prefix", "--test-handlers", "--max-payload", "--log-level"):
        assert flag in p.stdout


def test_consumer_stops_on_sigterm(r, consumer):
    c = consumer("--workers", "2")
    pids = c.worker_pids()
    assert len(pids) == 2
    c.signal(15)
    assert c.wait(20) == 0
    for pid in pids:
        wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                 open("/proc/%d/stat" % pid).read().split()[2] == "Z", what="worker %d gone" % pid)
