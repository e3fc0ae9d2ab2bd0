"""Issue 8, admission by kind and per-queue limits: io jobs never wait behind
a busy cpu pool, a cpu queue is not read while the pool is full, and
`--queues name=N` caps what one worker holds of a queue. Enqueued with
python3-redis; checked with plain Redis reads (result hashes, XPENDING).
Bounds are generous: only an io queue stuck behind the cpu backlog, or a
worker hoarding, can break them."""
import subprocess
import threading
import time

import msgpack

from conftest import CONSUMER, key, scale, stream, wait_for, xadd

# About 50 ms of one core each (OpenSSL, not slowed by the sanitizers):
# 100 of them keep two threads busy for 2.5 s or longer, and are more than
# the worker's io and cpu slots together (64 + 4). Before admission by
# kind, every read then split the one slot a finished sha256 job freed
# between the two queues: the tiny jobs, arriving faster than that, queued
# up behind the cpu backlog.
SHA = {"data": b"\x01" * 1024, "rounds": 500000}
NSHA = 100


def finished_ms(r, jid, queue):
    v = r.hget(key("result:%s" % jid, queue), "finished_at")
    return int(v) if v else None


class PendingSampler(threading.Thread):
    """Samples the group's pending count of one stream (what the workers
    hold) until stopped; keeps the largest."""

    def __init__(self, r, queue):
        super().__init__(daemon=True)
        self.r, self.queue, self.max, self.stop = r, queue, 0, False

    def run(self):
        while not self.stop:
            try:
                n = self.r.xpending(stream(self.queue), "workers")["pending"]
            except Exception:  # the group may not exist yet
                n = 0
            self.max = max(self.max, n)
            time.sleep(0.005)   # a sampling interval, not a wait


def test_io_jobs_do_not_wait_behind_a_full_cpu_pool(r, consumer):
    c = consumer("--workers", "1", "--threads", "2", "--queues", "tiny,cpu")
    sampler = PendingSampler(r, "cpu")
    sampler.start()
    sha_ids = [xadd(r, "cpu", type="sha256", payload=msgpack.packb(SHA, use_bin_type=True))
               for _ in range(NSHA)]
    # The pool is full (both threads hold a job) and the cpu backlog is queued.
    wait_for(lambda: r.xpending(stream("cpu"), "workers")["pending"] >= 2, what="the pool full")
    tiny = []
    for _ in range(60):
        tiny.append((xadd(r, "tiny", type="noop"), time.time()))
        time.sleep(0.01)   # a rate (about 100 jobs/s), not a wait
    lat = []
    for jid, _ in tiny:
        wait_for(lambda: finished_ms(r, jid, "tiny"), timeout=60, what="tiny job %s" % jid)
        lat.append(finished_ms(r, jid, "tiny") - int(jid.split("-")[0]))
    wait_for(lambda: all(finished_ms(r, j, "cpu") for j in sha_ids), timeout=120,
             what="the sha256 jobs")
    sampler.stop = True
    sampler.join()
    sha_end = max(finished_ms(r, j, "cpu") for j in sha_ids)
    sha_start = int(sha_ids[0].split("-")[0])
    last_tiny = max(finished_ms(r, j, "tiny") for j, _ in tiny)
    backlog_ms = sha_end - sha_start
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1]
    # Before admission by kind the tiny jobs waited for the cpu backlog to
    # drain: their p99 was most of it, and the last one ended with it.
    assert last_tiny < sha_end - backlog_ms / 4, \
        "tiny jobs ended with the cpu backlog (last %d ms before it)" % (sha_end - last_tiny)
    assert p99 < backlog_ms / 4, \
        "tiny p99 %d ms against a %d ms cpu backlog: %r" % (p99, backlog_ms, lat)
    # The cpu queue is not read while the pool is full: at most threads +
    # prefetch (2 + 2) held, plus one read while the queue was unknown.
    assert 2 <= sampler.max <= 5, "worker held %d cpu entries" % sampler.max
    assert "error" not in c.log().lower()


def test_queue_limit_caps_what_a_worker_holds(r, consumer):
    consumer("--workers", "1", "--io-concurrency", "64", "--queues", "slow=2,fast")
    sampler = PendingSampler(r, "slow")
    sampler.start()
    slow = [xadd(r, "slow", type="sleep", payload={"ms": 200}) for _ in range(8)]
    wait_for(lambda: r.xpending(stream("slow"), "workers")["pending"] == 2, what="2 slow jobs taken")
    # The other queue is not held back by the limited one.
    fast = [xadd(r, "fast", type="sleep", payload={"ms": 200}) for _ in range(8)]
    wait_for(lambda: all(finished_ms(r, j, "fast") for j in fast), timeout=10, what="fast jobs")
    t_fast = max(finished_ms(r, j, "fast") for j in fast)
    wait_for(lambda: all(finished_ms(r, j, "slow") for j in slow), timeout=20, what="slow jobs")
    sampler.stop = True
    sampler.join()
    assert sampler.max == 2, "held %d entries of a queue limited to 2" % sampler.max
    t_slow = sorted(finished_ms(r, j, "slow") for j in slow)
    # 8 jobs of 200 ms, 2 at a time: four waves, so at least 3 x 200 ms
    # between the first and the last to end.
    assert t_slow[-1] - t_slow[0] >= 550
    # All eight fast jobs ran at once, within the first slow waves.
    assert t_fast < t_slow[-1]


def test_bad_queue_limit_is_a_usage_error(redis_server):
    for bad in ("a=0", "a=x", "a=", "=3"):
        p = subprocess.run([CONSUMER, "--redis", redis_server.url, "--queues", bad],
                           capture_output=True, text=True, timeout=scale(10))
        assert p.returncode != 0
        assert "--queues" in p.stderr, p.stderr
