"""A worker's memory is bounded by --max-payload whatever arrives (issue 21).

Payloads of 200 and 500 MB are written with a plain XADD (python3-redis, as
any producer could), alone and two in one MULTI. The worker refuses each
while reading it (consumer/redis/bulkcap.h: counted and discarded, never
stored), so:
  - its VmHWM stays under HWM_FACTOR x --max-payload (stated below);
  - the job is dead with a reason naming its size, its other fields kept,
    its payload not copied into the dead job's hash (payload_dropped says
    how large it was);
  - a noop enqueued right behind is done, not stuck behind the refused
    read (about 0.2 s on a quiet box; the bound is 5 s because Redis itself
    must still send the 0.5-1 GB, which a loaded 2-CPU CI box made take 10 s).
Redis holds at most two such payloads at a time (about 1 GB, plus as much
for the reply it sends); every case deletes its keys.
"""
import re
import time

import pytest

from conftest import key, scale, stream, wait_for, wait_result, xadd

MB = 1000 * 1000
MAX_PAYLOAD = 64 * 1024 * 1024  # the default --max-payload
# The bound this test holds the worker to: its peak RSS under 1 x
# --max-payload (64 MiB), while 200 to 1,000 MB of payloads go by. Before
# the cap, one 200 MB payload took it to 835 MB.
HWM_FACTOR = 1


def vm_hwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM for %d" % pid)


def clean(r):
    for k in r.scan_iter(match="jobq:*"):
        r.delete(k)
    r.execute_command("MEMORY", "PURGE")


@pytest.fixture
def worker(consumer, r):
    # The default limit: one read takes at most 32 entries (worker.h), so
    # a read of the other entries can go aside while Redis sends what the
    # worker discards.
    c = consumer()
    pid = c.worker_pids()[0]
    # Warmed up by a few jobs, so that the bound is not met by luck.
    for i in range(5):
        wait_result(r, xadd(r, type="noop", payload={"i": i}, notify="1"))
    yield c, pid
    clean(r)


def check_dead(r, job_id, size):
    wait_for(lambda: r.zscore(key("dead"), job_id) is not None, timeout=30,
             what="job %s in the dead set" % job_id)
    h = {k.decode(): v for k, v in r.hgetall(key("job:%s" % job_id)).items()}
    assert "payload" not in h, "the refused payload was copied into the dead job's hash"
    assert h.get("payload_dropped") == str(size).encode(), h
    assert h.get("owner") == b"me", "the dead job keeps its other fields: %r" % h
    err = h.get("error", b"").decode()
    assert re.search(r"payload too large: %d bytes > max-payload %d" % (size, MAX_PAYLOAD), err), err


def noop_behind(r):
    t0 = time.time()
    jid = xadd(r, type="noop", payload={"behind": 1}, notify="1")
    res = wait_result(r, jid, timeout=30)
    took = time.time() - t0
    assert res["state"] == b"done", res
    return took


@pytest.mark.parametrize("size_mb", [200, 500])
def test_one_oversized_payload_costs_the_worker_nothing(worker, r, size_mb):
    c, pid = worker
    size = size_mb * MB
    payload = b"\0" * size
    xadd(r, type="noop", payload=payload, id="big", owner="me")
    del payload
    took = noop_behind(r)
    check_dead(r, "big", size)
    hwm = vm_hwm(pid)
    print("payload %d MB: worker VmHWM %.1f MB, noop behind done in %.2f s" % (
        size_mb, hwm / MB, took))
    assert hwm < HWM_FACTOR * MAX_PAYLOAD, "VmHWM %d bytes" % hwm
    assert took < scale(5.0), "the noop behind waited %.2f s" % took
    assert c.proc.poll() is None


@pytest.mark.parametrize("size_mb", [200, 500])
def test_two_oversized_payloads_in_one_multi(worker, r, size_mb):
    c, pid = worker
    size = size_mb * MB
    payload = b"\0" * size
    p = r.pipeline(transaction=True)
    for i in range(2):
        p.xadd(stream(), {"type": "noop", "payload": payload, "id": "big%d" % i, "owner": "me"})
    p.execute()
    del p, payload
    took = noop_behind(r)
    for i in range(2):
        check_dead(r, "big%d" % i, size)
    hwm = vm_hwm(pid)
    print("2 x %d MB in one MULTI: worker VmHWM %.1f MB, noop behind done in %.2f s" % (
        size_mb, hwm / MB, took))
    assert hwm < HWM_FACTOR * MAX_PAYLOAD, "VmHWM %d bytes" % hwm
    assert took < scale(5.0), "the noop behind waited %.2f s" % took


def test_a_payload_at_the_limit_still_runs(worker, r):
    """The cap refuses only what is over it: a payload of exactly
    --max-payload bytes is read whole and run."""
    c, pid = worker
    import msgpack
    body = msgpack.packb(b"\1" * (MAX_PAYLOAD - 16))
    body = msgpack.packb(b"\1" * (MAX_PAYLOAD - 16 - (len(body) - MAX_PAYLOAD)))
    assert len(body) == MAX_PAYLOAD
    jid = xadd(r, type="noop", payload=body, notify="1")
    assert wait_result(r, jid, timeout=10)["state"] == b"done"


def test_a_retried_dead_job_whose_payload_was_dropped_dies_again(worker, r):
    """PROTOCOL §4's retry of such a dead job must not run it without its
    payload."""
    c, pid = worker
    xadd(r, type="noop", payload=b"\0" * (MAX_PAYLOAD + 1), id="over", owner="me")
    noop_behind(r)
    check_dead(r, "over", MAX_PAYLOAD + 1)
    p = r.pipeline(transaction=True)
    p.hset(key("job:over"), "attempt", 0)
    p.hset(key("job:over"), "notify", 1)
    p.zrem(key("dead"), "over")
    p.zadd(key("scheduled"), {"over": 0})
    p.execute()
    err = wait_for(lambda: "payload dropped" in (r.hget(key("job:over"), "error") or b"").decode()
                   and r.hget(key("job:over"), "error").decode(), timeout=10,
                   what="the retried job dead again")
    assert str(MAX_PAYLOAD + 1) in err, err
    assert r.zscore(key("dead"), "over") is not None
    assert r.hget(key("result:over"), "state") == b"dead"
