"""Issue 21's smaller items: Redis refusing every write (here a read-only
replica: REPLICAOF to a port where nothing listens) is said as what it is,
not as a broken queue, and once Redis takes writes again the held outcomes
and the reads go on at once, not after the rest of a backoff of up to 5 s."""
import time

from conftest import free_port, key, scale, wait_for, xadd


def state(r, job_id):
    return r.hget(key("result:" + job_id), "state")


def test_read_only_redis_is_said_so_and_left_at_once(r, consumer):
    c = consumer()
    xadd(r, type="sleep", id="ro-1", payload={"ms": 300})
    wait_for(lambda: r.xpending("jobq:{default}:stream", "workers")["pending"] == 1,
             what="ro-1 running")
    r.replicaof("127.0.0.1", free_port())
    try:
        c.wait_log(r"redis refuses our writes \(EXECABORT", timeout=5)
        c.wait_log(r"redis refuses writes \(READONLY[^)]*\): queue default is fine", timeout=5)
        # The outcome backoff doubles from 200 ms to its 5 s cap: 6.5 s in,
        # the next try of the whole batch is seconds away.
        time.sleep(6.5)
        assert state(r, "ro-1") is None
    finally:
        r.replicaof("NO", "ONE")
    t0 = time.time()
    wait_for(lambda: state(r, "ro-1") == b"done", timeout=3, interval=0.01, what="ro-1 written")
    held = time.time() - t0
    xadd(r, type="noop", id="ro-2")
    wait_for(lambda: state(r, "ro-2") == b"done", timeout=3, interval=0.01, what="ro-2 done")
    read = time.time() - t0
    log = c.log()
    assert "is broken" not in log, log
    assert held < scale(0.6), "outcome held %.2f s after redis took writes again" % held
    assert read < scale(1.0), "reads resumed %.2f s after redis took writes again" % read
    assert "redis takes writes again; served again" in log
