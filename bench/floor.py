"""The Redis CPU per job that PROTOCOL.md itself imposes, beside jobq's.

    /usr/bin/python3 bench/floor.py [--binary bin/jobq-consumer] [--base OLD] [--jobs 30000] [--reps 3]

On one redis-server of its own, for every repetition (sides interleaved),
N noop entries are preloaded (XADD, not counted), then consumed by:
  floor     a plain client (redis-py) doing per batch of 64 only what
            PROTOCOL §3/§6/§7 require: XREADGROUP, then one MULTI with per
            job HSET of the result hash (state, attempts, finished_at,
            worker) + PEXPIREAT, LPUSH of the notify list + PEXPIREAT, and
            per batch XACK, XTRIM MINID and the counters (stats, minute,
            latency); the cheapest native form of each (absolute TTLs)
  floor0    the same with result_ttl 0: no per-job key, only XREADGROUP,
            XACK, XTRIM and the counters
  jobq      jobq-consumer --workers 2 on the same entries (results kept);
            --base adds another binary as jobq-base
Redis CPU per job = its schedstat run time over the consume, / N.
Prints the medians; the machine is shared, so compare within a run.
Asserts nothing about speed (it checks that every job was written)."""
import argparse
import os
import statistics
import sys
import tempfile
import time

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

STREAM = "jobq:{default}:stream"
P = "jobq:{default}:"


def preload(r, n):
    payload = msgpack.packb(None)
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.xadd(STREAM, {"type": "noop", "payload": payload})
        if i % 5000 == 4999:
            p.execute()
    p.execute()


def floor(r, n, results):
    r.xgroup_create(STREAM, "workers", id="0", mkstream=True)
    done = 0
    ttl_ms = 86400 * 1000
    while done < n:
        got = r.xreadgroup("workers", "floor", {STREAM: ">"}, count=64)
        if not got:
            continue
        entries = got[0][1]
        ids = [e[0] for e in entries]
        now = int(time.time() * 1000)
        p = r.pipeline(transaction=True)
        if results:
            for i in ids:
                i = i.decode()
                rk, nk = P + "result:" + i, P + "notify:" + i
                p.hset(rk, mapping={"state": "done", "attempts": "1", "finished_at": now,
                                    "worker": "floor:1"})
                p.pexpireat(rk, now + ttl_ms)
                p.lpush(nk, "done")
                p.pexpireat(nk, now + ttl_ms)
        p.xack(STREAM, "workers", *ids)
        p.xtrim(STREAM, minid=ids[-1].decode())
        mkey = P + "stats:%d" % (now // 60000)
        p.hincrby(P + "stats", "processed", len(ids))
        p.hincrby(mkey, "processed", len(ids))
        p.expire(mkey, 86400)
        for f in ("wait:le:1", "wait:count", "wait:sum_us", "run:le:1", "run:count", "run:sum_us"):
            p.hincrby(P + "latency", f, len(ids))
        p.execute()
        done += len(ids)


def jobq(binary, srv, r, n, d):
    c = bench.Consumer(binary, srv, r, [], 2, d)
    try:
        while int(r.hget(P + "stats", "processed") or 0) < n:
            time.sleep(0.002)
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=bench.CONSUMER_SRC)
    ap.add_argument("--base", help="a second consumer binary, side 'jobq-base'")
    ap.add_argument("--jobs", type=int, default=30000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="jobq-floor-")
    srv = bench.Redis(d)
    r = srv.client()
    sides = ["floor", "floor0", "jobq"] + (["jobq-base"] if a.base else [])
    res = {s: [] for s in sides}
    try:
        for rep in range(a.reps):
            for s in (sides if rep % 2 == 0 else sides[::-1]):
                r.flushall()
                preload(r, a.jobs)
                c0 = bench.cpu_seconds(srv.proc.pid)
                if s.startswith("jobq"):
                    jobq(a.binary if s == "jobq" else a.base, srv, r, a.jobs, d)
                else:
                    floor(r, a.jobs, s == "floor")
                us = 1e6 * (bench.cpu_seconds(srv.proc.pid) - c0) / a.jobs
                if s != "floor0":
                    assert r.hget(P + "result:" + r.xinfo_groups(STREAM)[0]["last-delivered-id"].decode(),
                                  "state") == b"done", s
                res[s].append(us)
                print("rep %d %-6s Redis CPU per job %.2f us" % (rep, s, us), flush=True)
        print()
        print("| consumer | Redis CPU per job, us (median of %d) | runs |" % a.reps)
        print("|---|---|---|")
        for s in sides:
            print("| %s | %.2f | %s |" % (s, statistics.median(res[s]), ", ".join("%.2f" % x for x in res[s])))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
