"""Latency, one job at a time, with every side alternating job by job.

    /usr/bin/python3 bench/latpair.py [--base OLD/jobq-consumer] [--jobs N] [--reps R]

bench-compare's (b) and (b0) run one side after the other, seconds apart,
and on this VM the floor's own p50 moved from 0.5 to 1.0 ms between runs
minutes apart: a difference of 0.1 ms between two such runs is noise. Here
every side waits on its own queue of one redis-server at the same time,
and one client sends a job to each in turn (XADD `type noop notify 1`,
then BLPOP of its notify list, a raw socket; 5 ms between jobs, as
bench-compare's client), so every side meets the same moments of the
machine:
  floor  bench-compare's (b0) responder (build/rel/bench/floor): a
         blocking XREADGROUP, then LPUSH notify + XACK in one round trip
  new    bin/jobq-consumer (or --new), --workers 2 (the default on 2 CPUs)
  base   --base, the same, when given
Prints each side's p50 / p99 per repetition and over all, and the median
over jobs of each job's difference to the floor job sent just before it.
The machine is shared: asserts nothing.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (Redis, Consumer, resp, machine)

FLOOR = os.path.join(bench.ROOT, "build", "rel", "bench", "floor")


def reply(sock, buf):
    """One RESP reply (a bulk string, an array of bulk strings, nil or an
    error) off sock; returns (value, rest of buf)."""
    while True:
        end = buf.find(b"\r\n")
        if end >= 0:
            head = buf[:end]
            if head[:1] in (b"+", b"-", b":"):
                if head[:1] == b"-":
                    raise RuntimeError(head.decode())
                return head[1:], buf[end + 2:]
            n = int(head[1:])
            if head[:1] == b"$":
                if n < 0:
                    return None, buf[end + 2:]
                if len(buf) >= end + 2 + n + 2:
                    return buf[end + 2:end + 2 + n], buf[end + 4 + n:]
            elif head[:1] == b"*":
                if n < 0:
                    return None, buf[end + 2:]
                rest, out = buf[end + 2:], []
                try:
                    for _ in range(n):
                        v, rest = reply_nowait(rest)
                        out.append(v)
                    return out, rest
                except BlockingIOError:
                    pass
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("redis closed the connection")
        buf += data


def reply_nowait(buf):
    end = buf.find(b"\r\n")
    if end < 0:
        raise BlockingIOError
    n = int(buf[1:end])
    if len(buf) < end + 2 + n + 2:
        raise BlockingIOError
    return buf[end + 2:end + 2 + n], buf[end + 4 + n:]


def one_job(sock, buf, queue):
    t0 = time.perf_counter()
    sock.sendall(bench.resp("XADD", "jobq:{%s}:stream" % queue, "*", "type", "noop", "notify", "1"))
    jid, buf = reply(sock, buf)
    sock.sendall(bench.resp("BLPOP", b"jobq:{%s}:notify:%s" % (queue.encode(), jid), "10"))
    got, buf = reply(sock, buf)
    if got is None:
        raise RuntimeError("no answer on %s within 10 s" % queue)
    return (time.perf_counter() - t0) * 1e3, buf


def start_floor(port, queue, stderr=subprocess.DEVNULL):
    """bench-compare's floor responder (floor.c) on queue, once it said it
    is ready (its group made); the caller terminates it."""
    fl = subprocess.Popen([FLOOR, str(port), queue], stdout=subprocess.PIPE, stderr=stderr)
    if fl.stdout.readline().strip() != b"ready":
        fl.terminate()
        fl.wait()
        raise RuntimeError("floor responder did not start (make build/rel/bench/floor)")
    return fl


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def measure(srv, r, d, sides, jobs, reps, log=print):
    """Runs the floor and each (name, consumer binary) of sides on its own
    queue of srv at once; returns ({side: [ms]}, {side: [ms over the floor
    job beside it]}), "floor" among the first."""
    procs, cons = [], []
    try:
        procs.append(start_floor(srv.port, "floor"))
        for name, binary in sides:
            # Consumer() waits for its workers by `jobq:workers`, shared by
            # every consumer on this Redis: each starts alone.
            logd = os.path.join(d, "latpair-" + name)
            os.makedirs(logd, exist_ok=True)
            cons.append(bench.Consumer(binary, srv, r, ["--queues", name], 2, logd))
        sock = socket.create_connection(("127.0.0.1", srv.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        qs = ["floor"] + [n for n, _ in sides]
        for q in qs:  # warm up: connections, groups
            for _ in range(20):
                _, buf = one_job(sock, buf, q)
        allms = {q: [] for q in qs}
        over = {n: [] for n, _ in sides}
        for rep in range(reps):
            ms = {q: [] for q in qs}
            for i in range(jobs):
                got = {}
                for q in qs if i % 2 == 0 else reversed(qs):
                    got[q], buf = one_job(sock, buf, q)
                    time.sleep(0.005)
                for q in qs:
                    ms[q].append(got[q])
                for n in over:
                    over[n].append(got[n] - got["floor"])
            log("  paired rep %d: %s" % (rep + 1, "; ".join(
                "%s %.3f / %.3f" % (q, pct(ms[q], 0.5), pct(ms[q], 0.99)) for q in qs)))
            for q in qs:
                allms[q] += ms[q]
        sock.close()
        return allms, over
    finally:
        for c in cons:
            c.stop()
        for p in procs:
            p.terminate()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base")
    ap.add_argument("--new", default=os.path.join(bench.ROOT, "bin", "jobq-consumer"))
    ap.add_argument("--jobs", type=int, default=500, help="per side and repetition")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="jobq-latpair-")
    srv = bench.Redis(d)
    sides = [("new", a.new)] + ([("base", a.base)] if a.base else [])
    try:
        m = bench.machine()
        print("Machine: %s CPUs, %s, Linux %s, %s; load %s" %
              (m["nproc"], m["model"], m["kernel"], m["redis"].split(" sha=")[0],
               " ".join(open("/proc/loadavg").read().split()[:3])), flush=True)
        allms, over = measure(srv, srv.client(), d, sides, a.jobs, a.reps,
                              lambda line: print(line, flush=True))
        print()
        print("| side | p50 ms | p99 ms | median over the floor's job beside it, ms |")
        print("|---|---|---|---|")
        for q in allms:
            print("| %s | %.3f | %.3f | %s |" % (
                q, pct(allms[q], 0.5), pct(allms[q], 0.99),
                "%+.3f" % statistics.median(over[q]) if q in over else "-"))
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
