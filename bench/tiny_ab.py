"""Tiny jobs beside a saturated pool, jobq alone, for consumer variants
interleaved in every repetition (the test (c) of bench/compare: a noop on
queue `tiny` every 20 ms while ~70 ms sha256 jobs keep --workers 1
--threads 2 busy; enqueue -> BLPOP of the notify list, on the Node
client's clock).

    /usr/bin/python3 bench/tiny_ab.py [--reps 5] [--seconds 8] VARIANT...

A VARIANT is NAME[|CONSUMER ARGS[|ENV=V ...]]; a NAME starting with
"nocpu" runs the same with (almost) no CPU job: 10 jobs, the control. E.g.

    bench/tiny_ab.py 'y0|--cpu-yield-us 0' 'y250' 'nocpu'

Prints each run, then per variant the medians of p50 and p99 and of the
CPU jobs left at the end of the window (fewer left: more CPU work done),
and for the last run the server-side part of the tail (the result hash's
finished_at minus the entry id's time, ms). Asserts nothing."""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "compare"))
sys.path.insert(0, HERE)
import compare as C  # noqa: E402  (Bench: calibrate, mixed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("variants", nargs="+")
    a = ap.parse_args()
    variants = []
    for v in a.variants:
        name, args, env = (v.split("|") + ["", ""])[:3]
        variants.append((name, args.split(), dict(e.split("=", 1) for e in env.split())))
    d = tempfile.mkdtemp(prefix="jobq-tiny-")
    b = C.Bench(types.SimpleNamespace(mixed_s=a.seconds, reps=a.reps), d)
    try:
        us, rounds = b.calibrate()
        print("Load average %s; sha256 rounds %d (~%.0f ms)" % (
            " ".join(open("/proc/loadavg").read().split()[:3]), rounds, rounds * us / 200000 / 1000),
            flush=True)
        plain, cpu_ms = b.consumer, b.cpu_ms
        res = {n: [] for n, _, _ in variants}
        for rep in range(a.reps):
            k = rep % len(variants)
            for name, args, env in variants[k:] + variants[:k]:
                saved = dict(os.environ)
                os.environ.update(env)
                b.consumer = lambda extra, w, args=args: plain(extra + args, w)
                b.cpu_ms = 1e12 if name.startswith("nocpu") else cpu_ms
                try:
                    x = b.mixed("jobq")
                finally:
                    os.environ.clear()
                    os.environ.update(saved)
                res[name].append(x)
                print("rep %d %-8s p50 %.2f p99 %.2f cpu_left %d" % (
                    rep + 1, name, x["p50"], x["p99"], x["cpu_left"]), flush=True)
        print()
        print("| variant | p50 ms | p99 ms | each run's p99 | CPU jobs left |")
        print("|---|---|---|---|---|")
        for n in res:
            print("| %s | %.2f | %.2f | %s | %d |" % (
                n, statistics.median(x["p50"] for x in res[n]),
                statistics.median(x["p99"] for x in res[n]),
                ", ".join("%.1f" % x["p99"] for x in res[n]),
                statistics.median(x["cpu_left"] for x in res[n])))
        xs = []
        for key in b.r.scan_iter("jobq:{tiny}:result:*"):
            fa = b.r.hget(key, "finished_at")
            if fa is not None:
                xs.append(int(fa) - int(key.decode().rsplit(":", 1)[1].split("-")[0]))
        if xs:
            xs.sort()
            print("\nlast run, finished_at - enqueue (ms): p50 %d p90 %d p99 %d max %d" % (
                xs[len(xs) // 2], xs[int(len(xs) * .9)], xs[int(len(xs) * .99)], xs[-1]))
    finally:
        b.srv.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
