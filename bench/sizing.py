"""How to split CPUs between worker processes and CPU threads.

Runs the same job mixes on several --workers/--threads splits against one
redis-server of its own and prints the median time of 3 runs for each, with
the ratio to the default split (--workers 1 --threads auto). Used to justify
the defaults in the README. Run: /usr/bin/python3 bench/sizing.py
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from conftest import CONSUMER, RedisServer, free_port  # noqa: E402

import redis as redislib  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

MIXES = {
    # 400 hashes of 20,000 rounds: pure CPU
    "cpu": [{"type": "sha256", "enc": "json", "payload": '{"data":"x","rounds":20000}'}] * 400,
    # 2,000 timers of 5 ms: pure I/O wait
    "io": [{"type": "sleep", "enc": "json", "payload": '{"ms":5}'}] * 2000,
    # both at once
    "mixed": ([{"type": "sha256", "enc": "json", "payload": '{"data":"x","rounds":20000}'}] * 200
              + [{"type": "sleep", "enc": "json", "payload": '{"ms":5}'}] * 1000),
}
SPLITS = [("1", "auto"), ("2", "1"), ("1", "1"), ("2", "2"), ("4", "4")]


BINARY = CONSUMER  # replaced by a private copy in main(), safe from rebuilds


def run_once(srv, r, workers, threads, jobs):
    r.flushall()
    log = open(os.devnull, "wb")
    p = subprocess.Popen([BINARY, "--redis", srv.url, "--workers", workers, "--threads", threads,
                          "--log-level", "warn"], stdout=log, stderr=log)
    try:
        deadline = time.time() + 10
        want = int(workers)
        while r.zcard("jobq:workers") < want and time.time() < deadline:
            time.sleep(0.01)
        pipe = r.pipeline(transaction=False)
        for j in jobs:
            pipe.xadd("jobq:{default}:stream", j)
        t0 = time.time()
        pipe.execute()
        while int(r.hget("jobq:{default}:stats", "processed") or 0) < len(jobs):
            time.sleep(0.005)
        return time.time() - t0
    finally:
        p.terminate()
        p.wait()


def main():
    global BINARY
    d = tempfile.mkdtemp(prefix="jobq-sizing-")
    BINARY = os.path.join(d, "jobq-consumer")
    shutil.copy2(CONSUMER, BINARY)
    srv = RedisServer(d)
    r = srv.client()
    ncpu = len(os.sched_getaffinity(0))
    print("machine: %d usable CPUs; median of 3 runs, seconds (ratio to --workers 1 --threads auto)" % ncpu)
    print("| mix | " + " | ".join("w%s t%s" % s for s in SPLITS) + " |")
    print("|---" * (len(SPLITS) + 1) + "|")
    try:
        for name, jobs in MIXES.items():
            meds = []
            for w, t in SPLITS:
                meds.append(statistics.median(run_once(srv, r, w, t, jobs) for _ in range(3)))
            base = meds[0]
            print("| %s | " % name + " | ".join("%.2f (%.2fx)" % (m, m / base) for m in meds) + " |")
    finally:
        srv.kill()


if __name__ == "__main__":
    main()
