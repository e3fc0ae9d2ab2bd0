"""Before/after of two consumer binaries, interleaved in every repetition.

    /usr/bin/python3 bench/ab.py --base /tmp/old/jobq-consumer [--new bin/jobq-consumer]

For each repetition and each side (the order alternates between
repetitions), on one redis-server of its own:
  noop     N noop jobs preloaded with pipelined XADDs, default results:
           jobs/s, Redis CPU per job, worker CPU per job, commands per job
  noop0    the same with result_ttl 0 on every job
  tiny     tiny noop jobs on queue `tiny`, one every 20 ms, beside sha256
           jobs on queue `cpu` (about 70 ms each) that keep --workers 1
           --threads 2 saturated: enqueue -> done p50/p99 in ms
  big      (only when asked: --only ...,big) an 8 MiB echo job, enqueue ->
           notify round trip in ms, the median of 3
  rss      idle worker RSS (VmRSS from /proc, after the worker said ready)
  lat      (only when asked) enqueue -> done, one job at a time, 500 jobs,
           bench-compare's (b) client (peer.js, Node) against --workers 2
           (the default here), right after the same client against
           bench-compare's floor (b0, build/rel/bench/floor): p50/p99 and
           each over the floor of the same repetition, in ms
With --tls one binary may be both sides, one of them over TLS (rediss://):
  ab.py --tls --base bin/jobq-consumer --new-args '--redis {tls_url} --redis-tls-ca {tls_ca}' 
Prints the medians per side and the median of the per-repetition ratios.
The machine is shared: only the ratios mean much. Asserts nothing.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (Redis, Consumer, resp, read_replies, cpu_seconds)

ROOT = bench.ROOT


def consumer(binary, srv, r, d, args, workers=1):
    return bench.Consumer(binary, srv, r, args, workers, d)


def noop(binary, srv, r, d, n, ttl0, extra=()):
    r.flushall()
    c = consumer(binary, srv, r, d, list(extra), workers=2)
    try:
        payload = msgpack.packb(None)
        fields = ["type", "noop", "payload", payload]
        if ttl0:
            fields += ["result_ttl", "0"]
        blob = b"".join(bench.resp("XADD", bench.STREAM, "*", *fields) for _ in range(n))
        r.config_resetstat()
        cpu0 = {p: bench.cpu_seconds(p) for p in c.pids}
        rcpu0 = bench.cpu_seconds(srv.proc.pid)
        sock = socket.create_connection(("127.0.0.1", srv.port))
        t0 = time.perf_counter()
        sock.sendall(blob)
        errors = bench.read_replies(sock, n)
        if errors:
            raise RuntimeError("XADD errors: %r" % errors[:3])
        while int(r.hget("jobq:{default}:stats", "processed") or 0) < n:
            time.sleep(0.002)
        s = time.perf_counter() - t0
        wcpu = sum(bench.cpu_seconds(p) - cpu0[p] for p in c.pids)
        rcpu = bench.cpu_seconds(srv.proc.pid) - rcpu0
        sock.close()
        cmds = bench.commands_per_job(r, n)
        keys = r.dbsize()
        return {"jps": n / s, "redis_us": 1e6 * rcpu / n, "worker_us": 1e6 * wcpu / n,
                "cmds": cmds, "keys": keys}
    finally:
        c.stop()


def tiny(binary, srv, r, d, seconds, extra=()):
    """p50/p99 of tiny noop jobs, enqueue -> done, beside saturating
    sha256 jobs."""
    r.flushall()
    c = consumer(binary, srv, r, d, ["--queues", "tiny,cpu", "--threads", "2"] + list(extra))
    try:
        # ~70 ms each here; enough of them to keep both threads busy
        # through the whole test and then some.
        sha = msgpack.packb({"data": b"\x01" * 1024, "rounds": 700000}, use_bin_type=True)
        ncpu = int(seconds * 2 / 0.07) + 20
        p = r.pipeline(transaction=False)
        for _ in range(ncpu):
            p.xadd("jobq:{cpu}:stream", {"type": "sha256", "payload": sha})
        p.execute()
        ids = []
        t_end = time.time() + seconds
        while time.time() < t_end:
            ids.append(r.xadd("jobq:{tiny}:stream", {"type": "noop"}).decode())
            time.sleep(0.02)
        lat = []
        deadline = time.time() + 120
        for jid in ids:
            key = "jobq:{tiny}:result:" + jid
            while True:
                fin = r.hget(key, "finished_at")
                if fin:
                    lat.append(int(fin) - int(jid.split("-")[0]))
                    break
                if time.time() > deadline:
                    raise RuntimeError("tiny job %s never finished" % jid)
                time.sleep(0.01)
        lat.sort()
        return {"p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))]}
    finally:
        c.stop()


def big(binary, srv, r, d, extra=(), mib=8, n=3):
    """An echo job of mib MiB (inline payload, a chunked result), enqueued
    with notify 1: enqueue -> notify round trip in ms, the median of n."""
    r.flushall()
    c = consumer(binary, srv, r, d, list(extra))
    try:
        payload = msgpack.packb(os.urandom(mib << 20), use_bin_type=True)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            jid = r.xadd(bench.STREAM, {"type": "echo", "payload": payload, "notify": "1"})
            if r.blpop(["jobq:{default}:notify:" + jid.decode()], timeout=120) is None:
                raise RuntimeError("big job %s never finished" % jid)
            times.append(1e3 * (time.perf_counter() - t0))
        return {"ms": statistics.median(times)}
    finally:
        c.stop()


def lat(binary, srv, r, d, extra=(), n=500):
    """bench-compare's (b) and (b0) for one binary: the floor first, then
    the consumer, the same client, one redis-server."""
    sys.path.insert(0, os.path.join(ROOT, "bench", "compare"))
    import compare  # noqa: E402  (node_client, pct)
    import latpair  # noqa: E402  (start_floor)

    r.flushall()
    w = latpair.start_floor(srv.port, "noop")
    try:
        floor = compare.pct(compare.node_client(["latency", "jobq", srv.port, n], 300)["ms"])
    finally:
        w.terminate()
        w.wait()
    r.flushall()
    c = consumer(binary, srv, r, d, ["--queues", "noop"] + list(extra), workers=2)
    try:
        got = compare.pct(compare.node_client(["latency", "jobq", srv.port, n], 300)["ms"])
    finally:
        c.stop()
    return {"p50": got["p50"], "p99": got["p99"], "floor_p50": floor["p50"],
            "floor_p99": floor["p99"], "over_p50": got["p50"] - floor["p50"],
            "over_p99": got["p99"] - floor["p99"]}


def idle_rss(binary, srv, r, d):
    r.flushall()
    c = consumer(binary, srv, r, d, [])
    try:
        time.sleep(1.5)
        return {"rss_kib": bench.proc_status(c.pids[0], "VmRSS") / 1024}
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the old consumer binary")
    ap.add_argument("--new", default=os.path.join(ROOT, "bin", "jobq-consumer"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=50000)
    ap.add_argument("--tiny-seconds", type=float, default=3.0)
    ap.add_argument("--only", default="noop,noop0,tiny,rss")
    ap.add_argument("--new-args", default="", help="extra consumer args for the new side")
    ap.add_argument("--base-args", default="", help="extra consumer args for the base side")
    ap.add_argument("--tls", action="store_true",
                    help="Redis also listens with TLS (a throw-away CA): {tls_url} and {tls_ca} "
                         "in --new-args/--base-args name them, e.g. --new-args '--redis "
                         "{tls_url} --redis-tls-ca {tls_ca}' (jobs are enqueued over TCP)")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="jobq-ab-")
    sides = {"base": os.path.join(d, "base-consumer"), "new": os.path.join(d, "new-consumer")}
    shutil.copy2(a.base, sides["base"])
    shutil.copy2(a.new, sides["new"])
    srv = bench.Redis(d, tls=a.tls)
    names = {"tls_url": srv.tls_url, "tls_ca": srv.tls_ca} if a.tls else {}
    extra = {"base": a.base_args.format(**names).split(), "new": a.new_args.format(**names).split()}
    r = srv.client()
    tests = a.only.split(",")
    res = {t: {s: [] for s in sides} for t in tests}
    try:
        m = bench.machine()
        print("Machine: %s CPUs, %s, Linux %s, %s; load %s" %
              (m["nproc"], m["model"], m["kernel"], m["redis"].split(" sha=")[0],
               open("/proc/loadavg").read().split(" ", 3)[:3]), flush=True)
        for rep in range(a.reps):
            order = ["base", "new"] if rep % 2 == 0 else ["new", "base"]
            for t in tests:
                for s in order:
                    if t == "noop":
                        x = noop(sides[s], srv, r, d, a.jobs, False, extra[s])
                    elif t == "noop0":
                        x = noop(sides[s], srv, r, d, a.jobs, True, extra[s])
                    elif t == "tiny":
                        x = tiny(sides[s], srv, r, d, a.tiny_seconds, extra[s])
                    elif t == "big":
                        x = big(sides[s], srv, r, d, extra[s])
                    elif t == "lat":
                        x = lat(sides[s], srv, r, d, extra[s])
                    else:
                        x = idle_rss(sides[s], srv, r, d)
                    res[t][s].append(x)
                    print("rep %d %s %s: %s" % (rep, t, s, {k: round(v, 2) for k, v in x.items()}),
                          flush=True)
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
    print()
    print("| test | metric | base (median) | new (median) | new/base (median of per-rep ratios) |")
    print("|---|---|---|---|---|")
    for t in tests:
        for k in res[t]["base"][0]:
            b = [x[k] for x in res[t]["base"]]
            n = [x[k] for x in res[t]["new"]]
            ratios = [nn / bb for nn, bb in zip(n, b) if bb]
            print("| %s | %s | %.2f | %.2f | %s |" % (
                t, k, statistics.median(b), statistics.median(n),
                "%.2fx" % statistics.median(ratios) if ratios else "-"))


if __name__ == "__main__":
    main()
