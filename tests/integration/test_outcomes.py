"""Issue 8, the outcome writes: finished entries leave the stream by
trimming below the oldest pending entry (not one XDEL each), acked entries
above a long-running one still leave within a second, and result_ttl 0
writes no key per job (PROTOCOL 1.1 §3, §6). Checked with plain Redis reads
and INFO commandstats."""
import time

from conftest import key, stream, wait_for, wait_stream_empty, xadd


def calls(r, cmd):
    return r.info("commandstats").get("cmdstat_" + cmd, {}).get("calls", 0)


def test_finished_entries_are_trimmed_not_deleted_one_by_one(r, consumer):
    consumer("--workers", "1")
    r.config_resetstat()
    n = 500
    p = r.pipeline(transaction=False)
    for _ in range(n):
        p.xadd(stream(), {"type": "noop"})
    p.execute()
    wait_for(lambda: int(r.hget(key("stats"), "processed") or 0) == n, what="the jobs")
    wait_stream_empty(r)
    assert calls(r, "xtrim") >= 1
    # One worker finishing in order: the trim reaches every acked entry
    # but the newest of each batch (XTRIM MINID keeps its bound).
    assert calls(r, "xdel") < n / 4, r.info("commandstats")


def test_acked_entries_above_a_running_job_leave_within_a_second(r, consumer):
    consumer("--workers", "1")
    slow = xadd(r, type="sleep", payload={"ms": 4000})
    wait_for(lambda: r.xpending(stream(), "workers")["pending"] == 1, what="the slow job to start")
    fast = [xadd(r, type="noop") for _ in range(50)]
    wait_for(lambda: int(r.hget(key("stats"), "processed") or 0) == 50, what="the fast jobs")
    t0 = time.time()
    # Trimming cannot pass the running job's entry: the 50 acked entries
    # above it go by XDEL one or two ticks later, all but the group's last
    # delivered one, whose XDEL would make the group's lag NULL once jobs
    # wait behind it (PROTOCOL §6, test_k8s.py): it goes with a later trim.
    wait_for(lambda: r.xlen(stream()) == 2, timeout=1.5, what="the acked entries to leave")
    assert time.time() - t0 < 1.5
    assert [e[0].decode() for e in r.xrange(stream())] == [slow, fast[-1]]
    wait_for(lambda: r.hget(key("result:%s" % slow), "state") == b"done", timeout=10, what="slow job")
    wait_stream_empty(r)
    # Ready (the group's lag) saw none of it as waiting.
    assert r.xinfo_groups(stream())[0]["lag"] == 0


def test_result_ttl_zero_leaves_no_key_per_job(r, consumer):
    consumer("--workers", "2")
    n = 300
    p = r.pipeline(transaction=False)
    for _ in range(n):
        p.xadd(stream(), {"type": "noop", "result_ttl": "0"})
    p.execute()
    wait_for(lambda: int(r.hget(key("stats"), "processed") or 0) == n, what="the jobs")
    wait_stream_empty(r)
    left = sorted(k.decode() for k in r.keys("jobq:{default}:*"))
    # The stream, its counters and latency, the types its workers handle
    # (PROTOCOL §7): nothing per job.
    assert all(k.split(":")[2] in ("stream", "stats", "latency", "types") for k in left), left


def test_a_result_key_of_the_wrong_type_fails_alone(r, consumer):
    """The batch's script writes each outcome with its own pcall, as each
    command of a MULTI ran: a key of the wrong type under one job's result
    key fails that write only (logged), and the batch's acks, the other
    jobs' results and every counter still go through."""
    c = consumer("--workers", "1")
    r.set(key("result:5-1"), "not a hash")
    p = r.pipeline(transaction=False)
    p.xadd(stream(), {"type": "noop", "notify": "1"}, id="5-1")
    for _ in range(20):
        p.xadd(stream(), {"type": "noop", "notify": "1"})
    ids = p.execute()[1:]
    wait_for(lambda: int(r.hget(key("stats"), "processed") or 0) == 21, what="the jobs")
    c.wait_log(r"writing outcomes: WRONGTYPE")
    assert r.get(key("result:5-1")) == b"not a hash"
    # Acked with the others: never run again, its waiter still told.
    assert r.xpending(stream(), "workers")["pending"] == 0
    assert r.lrange(key("notify:5-1"), 0, -1) == [b"done"]
    for i in ids:
        i = i.decode()
        assert r.hget(key("result:%s" % i), "state") == b"done"
        assert 86000 < r.ttl(key("result:%s" % i)) <= 86400
        assert 86000 < r.ttl(key("notify:%s" % i)) <= 86400
    assert int(r.hget(key("latency"), "run:count")) == 21
    # No second run: nothing is pending (checked above), so nothing can be
    # reclaimed and counted again.
    assert int(r.hget(key("stats"), "processed")) == 21
