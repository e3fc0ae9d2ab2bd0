"""--queue-order strict (issue 25): a queue is read only while those before
it in --queues have nothing ready. Jobs enqueued with python3-redis and
redis-cli (one plain XADD, PROTOCOL §1)."""
import subprocess

import msgpack

from conftest import CONSUMER, stream, wait_for, wait_result


def delivered(r, queue):
    """Entries of the queue's stream the group has handed out so far
    (entries-read, Redis 7: acked entries are trimmed from the stream)."""
    for g in r.xinfo_groups(stream(queue)):
        if g["name"] == b"workers":
            return g["entries-read"] or 0
    return 0


def running(r, queue):
    return r.xpending(stream(queue), "workers")["pending"]


def test_higher_queue_first_and_lower_not_read_meanwhile(r, redis_server, consumer):
    consumer("--workers", "1", "--io-concurrency", "2", "--queues", "a,b",
             "--queue-order", "strict")
    sleep = {"type": "sleep", "payload": msgpack.packb({"ms": 600})}
    b_ids = [r.xadd(stream("b"), sleep).decode() for _ in range(6)]
    wait_for(lambda: running(r, "b") == 2, what="two b jobs running")
    # Four jobs on a, enqueued by redis-cli while b fills both slots.
    a_ids = []
    for _ in range(4):
        out = subprocess.run(
            ["redis-cli", "-p", str(redis_server.port), "XADD", stream("a"), "*", "type",
             "sleep", "enc", "json", "payload", '{"ms":300}'],
            capture_output=True, text=True, check=True).stdout.strip()
        a_ids.append(out)
    # Every a job is handed out before any b job past the two running:
    # b is not read while a has a ready job.
    seen = []

    def a_all_out():
        seen.append((delivered(r, "a"), delivered(r, "b")))
        return seen[-1][0] == 4
    wait_for(a_all_out, timeout=15, what=lambda: "a all started: %r" % seen[-5:])
    assert all(b == 2 for a, b in seen), seen  # weighted: [(0, 2), (1, 3), ...]
    for jid in a_ids:
        wait_result(r, jid, queue="a")
    for jid in b_ids:
        wait_result(r, jid, queue="b", timeout=15)
    # a's jobs ended before the third b job did: they were started first.
    def fin(q, jid):
        return int(r.hget("jobq:{%s}:result:%s" % (q, jid), "finished_at"))
    assert max(fin("a", j) for j in a_ids) < fin("b", b_ids[2])


def test_weights_and_unknown_orders_refused():
    for args, msg in ((["--queues", "a/2,b", "--queue-order", "strict"], "has a weight"),
                      (["--queue-order", "sideways"], "not strict or weighted")):
        p = subprocess.run([CONSUMER] + args, capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and msg in p.stderr, p.stderr
