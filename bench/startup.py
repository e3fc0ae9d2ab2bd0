"""A jobq consumer started on N preloaded noop jobs with results, timed as
compare.py times it (from the consumer's start): when its workers are
registered, when the first job is done, when the last is. Shows what the
start costs in bench-compare's throughput rows. Asserts nothing.

    /usr/bin/python3 bench/startup.py [N]
"""
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "compare"))
import compare as C  # noqa: E402  (Bench: its rig, preload and consumer)


class Args:
    jobq_workers = 2  # as compare.py: the default on 2 CPUs


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    b = C.Bench(Args(), tempfile.mkdtemp(prefix="jobq-startup-"))
    r = b.r
    stats = "jobq:{noop}:stats"
    for _ in range(3):
        r.flushall()
        b.preload_jobq("noop", n, ["type", "noop"])
        t0 = time.perf_counter()
        c = b.consumer(["--queues", "noop"], Args.jobq_workers)
        t_reg = time.perf_counter()
        first, done_at_first = None, 0
        deadline = time.time() + 120
        while time.time() < deadline:
            p = int(r.hget(stats, "processed") or 0)
            if p and first is None:
                first, done_at_first = time.perf_counter(), p
            if p >= n:
                break
            time.sleep(0.001)
        t1 = time.perf_counter()
        c.stop()
        print("n=%d start->registered %.3f s, ->first done %.3f s, ->last done %.3f s; "
              "jobs/s from start %.0f, from the first done %.0f"
              % (n, t_reg - t0, first - t_reg, t1 - first, n / (t1 - t0),
                 (n - done_at_first) / (t1 - first)))


if __name__ == "__main__":
    main()
