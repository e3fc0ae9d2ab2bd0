"""Handlers in Python and Node: a job through a long-lived handler process
(--proc) against a process per job (--exec), and against BullMQ running
the same function in Node, in one run.

One redis-server of its own, one jobq consumer (--workers 1, a private
copy of bin/ so a rebuild cannot change it mid-run) with every handler:

  exec.noop       --exec /bin/true                    (a guard + a process per job)
  exec.transform  --exec python3 transform_exec.py    (JSON on stdin, --exec-stdin json)
  py.*            --proc python3 workerproc/handler.py   (jobq_handler.py; 1 job at a time)
  node.*          --proc node workerproc/handler.js      (jobq_handler.js; 64 at once)
  BullMQ 6.7.0    workerproc/bullmq.js: a Worker (concurrency 64) running
                  workerproc/transform.js, the same function as node.*

noop returns nothing; transform turns {"name", "scores": [10 ints]} into
{"greeting", "total", "count", "top"} (every side's last result is checked).
Each side is timed the same way: its worker already up, N jobs enqueued in
bulk (jobq: one pipelined XADD each; BullMQ: addBulk), until the N-th is
done. Figures are medians over --reps repetitions, the sides in a rotated
order; CPU is the worker side's (the consumer's tree, with the processes
it reaped; BullMQ's node process) and Redis's, per job.

Run: /usr/bin/python3 bench/workerproc.py [--reps 3] [--n 4000] [--exec-n 200]
BullMQ comes from bench/compare/node_modules (`make bench-compare`
installs it); without it that side is skipped.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
WP = os.path.join(HERE, "workerproc")
sys.path.insert(0, HERE)
import bench as jb  # noqa: E402

NODE = shutil.which("node")
PY = "/usr/bin/python3"
BULLMQ = os.path.join(HERE, "compare", "node_modules", "bullmq")
PAYLOAD = {"name": "Ada", "scores": [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}
EXPECT = {"greeting": "hello Ada", "total": 75, "count": 10, "top": 12}
STATS = "jobq:{default}:stats"


def ticks(pid):
    """utime + stime + cutime + cstime of pid, in seconds (0 if gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / jb.CLK_TCK


def tree_cpu(pid):
    """CPU of pid's live tree, with what its members reaped."""
    return sum(ticks(p) for p in jb.tree(pid))


def redis_cpu(r):
    c = r.info("cpu")
    return float(c["used_cpu_sys"]) + float(c["used_cpu_user"])


def jobq_run(rig, master, jtype, n):
    r = rig.r
    before = int(r.hget(STATS, "processed") or 0)
    failed0 = int(r.hget(STATS, "failed") or 0)
    payload = msgpack.packb(None if jtype.endswith("noop") else PAYLOAD)
    cpu0, rcpu0 = tree_cpu(master), redis_cpu(r)
    t0 = time.perf_counter()
    p = r.pipeline(transaction=False)
    for _ in range(n):
        p.xadd(jb.STREAM, {"type": jtype, "payload": payload})
    ids = p.execute()
    while int(r.hget(STATS, "processed") or 0) - before < n:
        if int(r.hget(STATS, "failed") or 0) != failed0:
            raise RuntimeError("%s: jobs failed (see the consumer's log)" % jtype)
        time.sleep(0.002)
    s = time.perf_counter() - t0
    cpu, rcpu = tree_cpu(master) - cpu0, redis_cpu(r) - rcpu0
    res = r.hget("jobq:{default}:result:%s" % ids[-1].decode(), "result")
    if not jtype.endswith("noop"):
        got = msgpack.unpackb(res, raw=False)
        if isinstance(got, str):  # exec's stdout: JSON text
            got = json.loads(got)
        assert got == EXPECT, (jtype, got)
    return {"s": s, "cpu": cpu, "rcpu": rcpu}


def bullmq_run(rig, scen, n):
    r = rig.r
    rcpu0 = redis_cpu(r)
    p = subprocess.Popen([NODE, os.path.join(WP, "bullmq.js"), str(rig.srv.port), scen, str(n),
                          "64"], stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=600)
    if p.returncode != 0:
        raise RuntimeError("bullmq.js failed")
    rcpu = redis_cpu(r) - rcpu0
    r.flushall()  # BullMQ's kept jobs would slow the next run down
    got = json.loads(out)
    return {"s": got["s"], "cpu": got["cpu"], "rcpu": rcpu, "n": n}


def start_consumer(rig, d, workers):
    """The consumer with every handler; its master's pid once each
    handler process said hello."""
    shutil.copy2(os.path.join(ROOT, "bin", "jobq-exec-guard"), d)
    args = ["--exec", "exec.noop=/bin/true",
            "--exec", "exec.transform=%s %s" % (PY, os.path.join(WP, "transform_exec.py")),
            "--exec-stdin", "json",
            "--proc", "py.noop+py.transform=%s %s" % (PY, os.path.join(WP, "handler.py"))]
    if NODE:
        args += ["--proc", "node.noop+node.transform=%s %s" % (NODE, os.path.join(WP, "handler.js"))]
    c = jb.Consumer(rig.binary, rig.srv, rig.r, args + ["--log-level", "info"], workers, d)
    deadline = time.time() + 30
    want = 2 if NODE else 1
    while time.time() < deadline:
        with open(c.log.name, "rb") as f:
            if f.read().count(b"): ready, ") >= want * workers:
                return c
        time.sleep(0.05)
    raise RuntimeError("handler processes did not say hello (see %s)" % c.log.name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=4000, help="jobs per run, handler processes and BullMQ")
    ap.add_argument("--exec-n", type=int, default=200, help="jobs per run, exec")
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    load0 = open("/proc/loadavg").read().split()[:3]
    d = tempfile.mkdtemp(prefix="jq-wp-")
    rig = jb.Rig(d)
    c = start_consumer(rig, d, a.workers)
    sides = [("exec", "exec.%s", a.exec_n), ("python --proc", "py.%s", a.n)]
    if NODE:
        sides.append(("node --proc", "node.%s", a.n))
    if NODE and os.path.isdir(BULLMQ):
        sides.append(("BullMQ 6.7.0", None, a.n))
    results = {}
    try:
        for scen in ("noop", "transform"):
            for rep in range(a.reps):
                k = rep % len(sides)
                for label, jtype, n in sides[k:] + sides[:k]:
                    if jtype is None:
                        c.stop()  # BullMQ runs alone, as each jobq side does
                        res = bullmq_run(rig, scen, n)
                        c = start_consumer(rig, d, a.workers)
                    else:
                        res = jobq_run(rig, c.proc.pid, jtype % scen, n)
                    res["n"] = n
                    results.setdefault((scen, label), []).append(res)
                    print("%-9s %-14s rep %d: %7.0f jobs/s" % (scen, label, rep, n / res["s"]),
                          file=sys.stderr)
    finally:
        c.stop()
        rig.srv.stop()
    print("| test | side | jobs/s | µs per job | vs exec | worker-side CPU µs/job | Redis CPU µs/job |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for scen in ("noop", "transform"):
        base = None
        for label, _, _ in sides:
            runs = results[(scen, label)]
            rate = statistics.median(x["n"] / x["s"] for x in runs)
            cpu = statistics.median(x["cpu"] / x["n"] for x in runs) * 1e6
            rcpu = statistics.median(x["rcpu"] / x["n"] for x in runs) * 1e6
            base = base or rate
            print("| %s | %s | %.0f | %.0f | %.1fx | %.0f | %.0f |"
                  % (scen, label, rate, 1e6 / rate, rate / base, cpu, rcpu))
    print("\n%s; load average at start %s, at end %s"
          % (jb.machine(), load0, open("/proc/loadavg").read().split()[:3]))
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
