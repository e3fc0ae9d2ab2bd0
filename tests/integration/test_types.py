"""Consumers with different handler sets on one queue (issue 27): a worker
hands back an entry of a type it does not handle while another live worker
of the queue handles it (docs/PROTOCOL.md §7, `<p>:{q}:types`), so nothing
goes to the dead set; a type no live worker handles is dead after the
grace (three heartbeats) with a reason that says so."""
import os
import time

import msgpack

from conftest import BIN, SAN, key, scale, wait_for, wait_result, xadd

EXAMPLE = os.path.join(BIN, "plugins", "example.so")
# --heartbeat-ms: the grace is three of them (600 ms; 1.8 s under the
# sanitizers, where a consumer takes longer to start and a timer to fire).
HB_MS = 200 * (3 if SAN else 1)
HB = str(HB_MS)


def published(r, name, queue="default"):
    return r.zscore(key("types", queue), name) is not None


def test_two_handler_sets_share_a_queue_nothing_dead(r, consumer):
    consumer("--workers", "2", "--heartbeat-ms", HB)               # built-ins only
    consumer("--plugin", EXAMPLE, "--heartbeat-ms", HB)             # + hello, wordcount
    consumer("--exec", "shout=/bin/echo", "--heartbeat-ms", HB)       # + shout
    wait_for(lambda: published(r, "hello") and published(r, "shout") and published(r, "noop"),
             what="every consumer's types published")
    ids = []
    for i in range(30):
        ids.append(("hello", xadd(r, type="hello", payload={"name": "n%d" % i, "ms": 1})))
        ids.append(("wordcount", xadd(r, type="wordcount", payload=msgpack.packb(b"a b"))))
        ids.append(("shout", xadd(r, type="shout", max_attempts=1)))
        ids.append(("noop", xadd(r, type="noop")))
    for t, jid in ids:
        res = wait_result(r, jid, timeout=20)
        assert res["state"] == b"done", (t, jid, res)
    assert r.zcard(key("dead")) == 0
    # Each worker hash names what it handles (the additive `types` field).
    workers = [r.hgetall("jobq:worker:%s" % w.decode()) for w in r.zrange("jobq:workers", 0, -1)]
    assert any(b"hello" in h.get(b"types", b"").split(b",") for h in workers), workers


def test_a_type_no_worker_handles_is_dead_after_the_grace(r, consumer):
    consumer("--workers", "2", "--heartbeat-ms", HB)
    consumer("--plugin", EXAMPLE, "--heartbeat-ms", HB)
    wait_for(lambda: published(r, "hello") and published(r, "noop"), what="types published")
    t0 = time.monotonic()
    jid = xadd(r, type="nosuch", max_attempts=3)
    res = wait_result(r, jid, timeout=10)
    took = time.monotonic() - t0
    assert res["state"] == b"dead", res
    assert res["attempts"] == b"0", res
    assert res["error"] == b"unknown job type: nosuch"
    assert took >= 3 * HB_MS / 1000, took  # not before the grace
    assert r.zscore(key("dead"), jid) is not None


def test_jobs_wait_for_a_consumer_that_starts_within_the_grace_and_die_once_it_is_gone(r, consumer):
    consumer("--heartbeat-ms", HB)
    wait_for(lambda: published(r, "noop"), what="types published")
    # Enqueued before any consumer handles `hello` (a rolling update):
    # handed back, not dead, and run once one starts within the grace.
    early = [xadd(r, type="hello", payload={"name": "e%d" % i, "ms": 1}, max_attempts=1)
             for i in range(5)]
    plug = consumer("--plugin", EXAMPLE, "--heartbeat-ms", HB)
    for jid in early:
        res = wait_result(r, jid)
        assert res["state"] == b"done", res
    assert r.zcard(key("dead")) == 0
    # The only consumer that handles it gone: dead once three heartbeats
    # passed without one, with the reason.
    plug.stop()
    late = xadd(r, type="hello", payload={"name": "l", "ms": 1})
    res = wait_result(r, late, timeout=15)
    assert res["state"] == b"dead" and res["attempts"] == b"0", res
    assert res["error"] == b"unknown job type: hello", res
