"""`make bench-compare`: jobq beside BullMQ 6.7.0 and bee-queue 2.0.0.

One fresh redis-server on a free loopback port serves every side (FLUSHALL
between runs). Each repetition runs every test on every side, the sides in
a rotated order, and the tables give each side's median and the median of
the per-repetition ratios (so a burst of load from the shared machine hits
both figures of a ratio alike). The Node side lives in peer.js; the peers
come from package-lock.json in this folder (`npm ci`, Debian's node).

Tests:
  (a) noop throughput, jobs preloaded: with results (every side's default:
      jobq's result hash + notify list, BullMQ's and bee-queue's kept jobs)
      and without (jobq `result_ttl 0`, which by PROTOCOL 1.1 writes no key
      per job; BullMQ removeOnComplete, bee-queue removeOnSuccess);
  (b) enqueue -> done latency at low load, one job at a time, each side
      waited for its own way (jobq BLPOP notify, BullMQ waitUntilFinished,
      bee-queue job events), all from one Node process with one clock;
  (b0) the floor of (b): jobq's client against a responder that does the
      least a worker can (XREADGROUP BLOCK, LPUSH notify + XACK; C, floor.c);
  (b1) (b) and (b0) paired: jobq and that responder at once on queues of
      their own, one lean client (Python, raw socket) alternating a job to
      each, so both meet the same moments of the machine (bench/latpair.py);
  BullMQ runs as 2 processes x concurrency 64 in (a) and (b), and again as
      its users run it, 1 process x concurrency 50, beside;
  (c) a tiny noop job every 20 ms on queue `tiny` while sha256 jobs of ~70 ms
      (for jobq's C) saturate the CPU lanes on queue `cpu`: jobq --workers 1
      --threads 2; BullMQ one Worker per queue, the CPU one sandboxed with
      concurrency 2; bee-queue one queue each, CPU jobs on 2 worker_threads;
  (c0) the same tiny jobs with no CPU job: the control, the tail that the
      machine, Redis and the client set by themselves;
  (d) sha256 jobs (1 KiB of 0x01, 20,000 rounds) with 2 CPU lanes; every
      digest checked against Python's hashlib;
  (e) idle and peak RSS of the whole worker side (process tree);
  (f) jobq alone: a 60 MiB payload's enqueue, worker round trip and result
      read beside Redis's own floor on the same chunks, and the worker's
      peak RSS over the payload (bench/bigfloor.py; --quick: once);
  plus Redis CPU per job (INFO cpu: used_cpu_sys + used_cpu_user deltas of
  redis-server) and the workers' own CPU per job.

Run: /usr/bin/python3 bench/compare/compare.py [--quick] [--reps N] [--out FILE]
(BENCH_QUICK=1 = --quick: about two minutes.)
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench as jb  # noqa: E402  (Redis, Consumer, cpu_seconds, resp, machine)

PEER = os.path.join(HERE, "peer.js")
NODE = shutil.which("node") or "/usr/bin/node"
SIDES = ("jobq", "bullmq", "bee")
NAMES = {"jobq": "jobq", "bullmq": "BullMQ 6.7.0", "bee": "bee-queue 2.0.0"}
SHA_DATA = b"\x01" * 1024
SHA_ROUNDS = 20000
MIB = 1024 * 1024


def sha_hex(data, rounds):
    d = hashlib.sha256(data).digest()
    for _ in range(rounds - 1):
        d = hashlib.sha256(d).digest()
    return d.hex()


tree = jb.tree  # pid and its live descendants


def mem(pids, field):
    total = 0
    for p in pids:
        try:
            total += jb.proc_status(p, field)
        except OSError:
            pass
    return total


def redis_cpu(r):
    c = r.info("cpu")
    return float(c["used_cpu_sys"]) + float(c["used_cpu_user"])


class NodeWorker:
    """One `node peer.js worker` process (and the children it forks: BullMQ's
    sandboxes), in a session of its own so that stop() can end them all."""

    def __init__(self, side, port, scen, conf, logdir):
        self.log = open(os.path.join(logdir, "peer-%s.log" % side), "ab")
        self.proc = subprocess.Popen(
            [NODE, PEER, "worker", side, str(port), scen, json.dumps(conf)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            start_new_session=True, cwd=HERE)
        self.count = self.bad = 0
        self.ready = threading.Event()
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(60):
            self.stop()
            raise RuntimeError("peer %s did not get ready (see %s)" % (side, self.log.name))

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            if parts == [b"ready"]:
                self.ready.set()
            elif parts and parts[0] == b"n":
                with self.changed:
                    self.count, self.bad = int(parts[1]), int(parts[2])
                    self.changed.notify_all()

    def go(self):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def pids(self):
        return tree(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(6)
            except subprocess.TimeoutExpired:
                pass
        try:  # BullMQ's sandbox children, if any outlived their parent
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        self.log.close()


def wait_counts(workers, n, timeout):
    deadline = time.time() + timeout
    while True:
        total = sum(w.count for w in workers)
        if total >= n:
            return time.perf_counter()
        if time.time() > deadline:
            raise RuntimeError("only %d of %d jobs done after %d s" % (total, n, timeout))
        w = workers[0]
        with w.changed:
            w.changed.wait(0.005)


def node_client(args, timeout):
    out = subprocess.run([NODE, PEER] + [str(a) for a in args], capture_output=True,
                         text=True, timeout=timeout, cwd=HERE)
    if out.returncode != 0:
        raise RuntimeError("peer.js %s failed: %s" % (args[0], out.stderr.strip()[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


class Bench(jb.Rig):
    def __init__(self, a, d):
        super().__init__(d)
        self.a = a

    def consumer(self, args, workers):
        return jb.Consumer(self.binary, self.srv, self.r, args, workers, self.d)

    # --- (a), (d), (e): preloaded jobs, timed until the last is done

    def preload_jobq(self, queue, n, fields):
        stream = "jobq:{%s}:stream" % queue
        blob = b"".join(jb.resp("XADD", stream, "*", *fields) for _ in range(n))
        sock = socket.create_connection(("127.0.0.1", self.srv.port))
        sock.sendall(blob)
        errors = jb.read_replies(sock, n)
        sock.close()
        if errors:
            raise RuntimeError("XADD errors: %r" % errors[:3])

    def batch_jobq(self, queue, n, preload, verify=None):
        """Preloads n jobs (preload()), then times a fresh consumer from its
        start until the stats hash says all n were processed."""
        r = self.r
        r.flushall()
        c0 = redis_cpu(r)
        preload()
        enq = redis_cpu(r) - c0
        c0 = redis_cpu(r)
        t0 = time.perf_counter()
        c = self.consumer(["--queues", queue], self.a.jobq_workers)
        try:
            pids = [c.proc.pid] + c.pids
            stats = "jobq:{%s}:stats" % queue
            # CPU is counted from here, with the workers up, over the jobs
            # done from here on: as for the peers, whose start is not
            # counted either (a jobq consumer's start is ~6 ms of CPU, over
            # 5,000 jobs 1.3 us each).
            cpu0 = {p: jb.cpu_seconds(p) for p in pids}
            c1 = redis_cpu(r)
            done0 = int(r.hget(stats, "processed") or 0)
            idle = mem(pids, "VmRSS")
            idle_one = mem(c.pids, "VmRSS") / len(c.pids)
            deadline = time.time() + 600
            while int(r.hget(stats, "processed") or 0) < n:
                if time.time() > deadline:
                    raise RuntimeError("jobq: jobs not done in time")
                time.sleep(0.002)
            t1 = time.perf_counter()
            rcpu = redis_cpu(r) - c1
            wcpu = sum(jb.cpu_seconds(p) - cpu0[p] for p in pids)
            peak = mem(pids, "VmHWM")
        finally:
            c.stop()
        if verify:
            verify()
        m = max(1, n - done0)
        return {"jps": n / (t1 - t0), "redis_us": 1e6 * rcpu / m, "enq_us": 1e6 * enq / n,
                "worker_us": 1e6 * wcpu / m, "idle": idle, "idle_one": idle_one, "peak": peak}

    def batch_peer(self, side, scen, n, conf, procs):
        r = self.r
        r.flushall()
        c0 = redis_cpu(r)
        node_client(["preload", side, self.srv.port, scen, n, json.dumps(conf)], 600)
        enq = redis_cpu(r) - c0
        ws = []
        try:
            for _ in range(procs):
                ws.append(NodeWorker(side, self.srv.port, scen, conf, self.d))
            pids = [p for w in ws for p in w.pids()]
            idle = mem(pids, "VmRSS")
            idle_one = mem([w.proc.pid for w in ws], "VmRSS") / len(ws)
            cpu0 = {p: jb.cpu_seconds(p) for p in pids}
            c0 = redis_cpu(r)
            t0 = time.perf_counter()
            for w in ws:
                w.go()
            t1 = wait_counts(ws, n, 600)
            rcpu = redis_cpu(r) - c0
            pids = [p for w in ws for p in w.pids()]  # sandboxes started since
            wcpu = sum(jb.cpu_seconds(p) - cpu0.get(p, 0.0) for p in pids)
            peak = mem(pids, "VmHWM")
            bad = sum(w.bad for w in ws)
        finally:
            for w in ws:
                w.stop()
        if bad:
            raise RuntimeError("%s: %d sha256 digests differ from hashlib's" % (side, bad))
        return {"jps": n / (t1 - t0), "redis_us": 1e6 * rcpu / n, "enq_us": 1e6 * enq / n,
                "worker_us": 1e6 * wcpu / n, "idle": idle, "idle_one": idle_one, "peak": peak}

    def noop(self, side, keep, procs=2, concurrency=64):
        n = self.a.jobs
        if side == "jobq":
            fields = ["type", "noop"] + ([] if keep else ["result_ttl", "0"])
            return self.batch_jobq("noop", n, lambda: self.preload_jobq("noop", n, fields))
        return self.batch_peer(side, "noop", n, {"keep": keep, "concurrency": concurrency}, procs)

    def sha(self, side):
        n = self.a.sha_jobs
        expect = sha_hex(SHA_DATA, SHA_ROUNDS)
        if side != "jobq":
            return self.batch_peer(side, "sha", n, {"keep": True, "cpu": 2, "expect": expect,
                                                    "rounds": SHA_ROUNDS}, 1)
        r = self.r
        payload = msgpack.packb({"data": SHA_DATA, "rounds": SHA_ROUNDS}, use_bin_type=True)

        def preload():  # ids of our own, to read every result back
            p = r.pipeline(transaction=False)
            for i in range(n):
                p.xadd("jobq:{sha}:stream", {"type": "sha256", "payload": payload,
                                              "id": "sha-%d" % i})
            p.execute()

        def verify():
            p = r.pipeline(transaction=False)
            for i in range(n):
                p.hget("jobq:{sha}:result:sha-%d" % i, "result")
            bad = sum(1 for v in p.execute() if v is None or msgpack.unpackb(v) != expect)
            if bad:
                raise RuntimeError("jobq: %d sha256 digests differ from hashlib's" % bad)

        return self.batch_jobq("sha", n, preload, verify)

    # --- (b) and (c): latency, measured by peer.js for every side

    def latency(self, side, procs=2, concurrency=64):
        self.r.flushall()
        if side == "jobq":
            c = self.consumer(["--queues", "noop"], self.a.jobq_workers)
            try:
                out = node_client(["latency", "jobq", self.srv.port, self.a.lat_jobs], 300)
            finally:
                c.stop()
        elif side == "floor":
            # (b0): jobq's own client against a responder that does the
            # least a worker can, in C (floor.c): the harness's floor.
            import latpair
            w = latpair.start_floor(self.srv.port, "noop",
                                    open(os.path.join(self.d, "floor.log"), "ab"))
            try:
                out = node_client(["latency", "jobq", self.srv.port, self.a.lat_jobs], 300)
            finally:
                w.terminate()
                w.wait()
        else:
            ws = [NodeWorker(side, self.srv.port, "noop", {"keep": True, "concurrency": concurrency},
                             self.d) for _ in range(procs)]
            try:
                for w in ws:
                    w.go()
                out = node_client(["latency", side, self.srv.port, self.a.lat_jobs], 300)
            finally:
                for w in ws:
                    w.stop()
        return pct(out["ms"])

    def paired(self):
        """(b1): jobq and the floor at once, each on its own queue, one raw
        client sending a job to each in turn (bench/latpair.py)."""
        import latpair
        self.r.flushall()
        ms, over = latpair.measure(self.srv, self.r, self.d, [("noop", self.binary)],
                                   self.a.lat_jobs, 1, lambda line: print(line, flush=True))
        f, j = ms["floor"], ms["noop"]
        return {"p50": latpair.pct(j, 0.5), "p99": latpair.pct(j, 0.99),
                "floor_p50": latpair.pct(f, 0.5), "floor_p99": latpair.pct(f, 0.99),
                "over": statistics.median(over["noop"]), "n": len(j)}

    def mixed(self, side, cpu=True):
        self.r.flushall()
        secs = self.a.mixed_s
        # enough CPU jobs to keep both lanes busy past the end of the window
        # (none for the control, c0: what the path costs on this machine);
        # 3x what the calibration says: with 1.5x, two of a run's three
        # windows ran dry (2026-12-06 03:43: 0 and 1 left) after a
        # calibration on a box still busy
        ncpu = int(secs * 2 / (self.cpu_ms / 1000.0) * 3) + 10 if cpu else 0
        args = ["mixed", side, self.srv.port, ncpu, self.mixed_rounds, secs]
        if side == "jobq":
            c = self.consumer(["--queues", "tiny,cpu", "--threads", "2"], 1)
            try:
                out = node_client(args, 300)
            finally:
                c.stop()
        else:
            w = NodeWorker(side, self.srv.port, "mixed", {"keep": True, "concurrency": 64,
                                                          "cpu": 2}, self.d)
            try:
                w.go()
                out = node_client(args, 300)
            finally:
                w.stop()
        res = pct(out["ms"])
        res["cpu_left"] = out["cpuLeft"]
        res["ms"] = out["ms"]  # for the p99 pooled over repetitions
        return res

    def calibrate(self):
        """Rounds that make one jobq sha256 job take about 70 ms here, from
        the run-time histogram jobq keeps (PROTOCOL §7)."""
        self.r.flushall()
        c = self.consumer(["--queues", "cal", "--threads", "1"], 1)
        try:
            rounds = 200000
            payload = msgpack.packb({"data": SHA_DATA, "rounds": rounds}, use_bin_type=True)
            for i in range(5):
                self.r.xadd("jobq:{cal}:stream", {"type": "sha256", "payload": payload})
            while int(self.r.hget("jobq:{cal}:stats", "processed") or 0) < 5:
                time.sleep(0.01)
            us = int(self.r.hget("jobq:{cal}:latency", "run:sum_us")) / 5
        finally:
            c.stop()
        self.mixed_rounds = max(10000, int(rounds * 70000 / us / 10000) * 10000)
        self.cpu_ms = 70.0
        return us, self.mixed_rounds


def pct(ms):
    """p50 and p99 of latencies in ms; a job not done within peer.js's wait
    (None) counts as infinitely late, and the count of those is kept."""
    timeouts = sum(1 for x in ms if x is None)
    ms = sorted(float("inf") if x is None else x for x in ms)
    return {"p50": ms[len(ms) // 2], "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
            "n": len(ms), "timeouts": timeouts}


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-compare.md"))
    a = ap.parse_args()
    if a.quick:
        a.reps, a.jobs, a.sha_jobs, a.lat_jobs, a.mixed_s = a.reps or 2, 5000, 20, 40, 3
    else:
        # 500 latency jobs per side: the p99 of 100 was the second-worst
        # job, one stray wake-up from a different figure every run.
        a.reps, a.jobs, a.sha_jobs, a.lat_jobs, a.mixed_s = a.reps or 3, 10000, 100, 500, 8
    a.jobq_workers = 2  # the default on 2 CPUs (--workers auto), stated in the output
    if not os.path.exists(jb.CONSUMER_SRC):
        sys.exit("bin/jobq-consumer is missing: run make first")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "bullmq")):
        sys.exit("bench/compare/node_modules is missing: run `npm ci` in bench/compare")

    d = tempfile.mkdtemp(prefix="jobq-compare-")
    out = []

    def emit(line=""):
        print(line, flush=True)
        out.append(line)

    b = Bench(a, d)
    try:
        m = jb.machine()
        node_v = subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout.strip()
        emit("Machine: %s CPUs (nproc), %s, %s RAM, Linux %s, %s, node %s" %
             (m["nproc"], m["model"], m["mem"], m["kernel"], m["redis"].split(" sha=")[0], node_v))
        emit("Load average before the run: %s (the machine is shared with other engineers' "
             "builds and test suites: figures move between runs; the ratios are the steadier "
             "figures)" % " ".join(open("/proc/loadavg").read().split()[:3]))
        emit("Command: `make bench-compare%s`, %s; %d repetitions, sides interleaved "
             "(order rotated every repetition)" %
             (" BENCH_QUICK=1" if a.quick else "", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              a.reps))
        us, rounds = b.calibrate()
        node_ms = node_client_sha_ms(rounds)
        emit("sha256 for (c): %d rounds = %.0f ms in jobq (C, OpenSSL), %.0f ms in Node "
             "(crypto.createHash per round)" % (rounds, rounds * us / 200000 / 1000, node_ms))
        emit()

        res = {}

        def also(name, fn):
            """A row beside test `name`: BullMQ's column from fn (BullMQ as
            its users run it, one process, concurrency 50), jobq's the
            same repetition's figure of `name` (so the ratio is taken
            within one repetition), no bee-queue."""
            return lambda s: fn() if s == "bullmq" else res[name]["jobq"][-1] if s == "jobq" else None

        tests = [("noop, with results", lambda s: b.noop(s, True)),
                 ("noop, with results, 1x50", also("noop, with results",
                                                   lambda: b.noop("bullmq", True, 1, 50))),
                 ("noop, no results", lambda s: b.noop(s, False)),
                 ("noop, no results, 1x50", also("noop, no results",
                                                 lambda: b.noop("bullmq", False, 1, 50))),
                 ("sha256", b.sha),
                 ("latency", b.latency),
                 ("latency, 1x50", also("latency", lambda: b.latency("bullmq", 1, 50))),
                 # the floor once per repetition, in jobq's column
                 ("floor", lambda s: b.latency("floor") if s == "jobq" else None),
                 ("paired", lambda s: b.paired() if s == "jobq" else None),
                 ("mixed", b.mixed),
                 ("control", lambda s: b.mixed(s, cpu=False))]
        res.update({name: {s: [] for s in SIDES} for name, _ in tests})
        failures = []
        for rep in range(a.reps):
            order = SIDES[rep % 3:] + SIDES[:rep % 3]
            for name, fn in tests:
                for s in order:
                    t = time.time()
                    try:
                        v = fn(s)
                    except Exception as e:  # one failed run must not lose the others
                        print("  rep %d %-18s %-7s FAILED: %s" % (rep + 1, name, s, e), flush=True)
                        failures.append("rep %d, %s, %s: %s" % (rep + 1, name, NAMES[s], str(e)[:300]))
                        v = None
                    res[name][s].append(v)
                    if v is None:
                        continue
                    print("  rep %d %-18s %-7s %5.1fs %s" % (rep + 1, name, s, time.time() - t,
                                                             brief(v)), flush=True)
        tables(res, a, emit)
        big_payload_rows(a, emit)
        if failures:
            emit()
            emit("Runs that failed (left out of the medians): " + "; ".join(failures))
    finally:
        b.srv.stop()
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n(written to %s)" % os.path.relpath(a.out, ROOT))


def node_client_sha_ms(rounds):
    code = ("const {sha256Rounds}=require('./sha');const d='\\u0001'.repeat(1024);"
            "sha256Rounds(d,1000);const t=process.hrtime.bigint();sha256Rounds(d,%d);"
            "console.log(Number(process.hrtime.bigint()-t)/1e6)" % rounds)
    out = subprocess.run([NODE, "-e", code], capture_output=True, text=True, cwd=HERE, timeout=120)
    return float(out.stdout.strip())


def brief(v):
    return " ".join("%s=%.4g" % (k, x) for k, x in v.items() if isinstance(x, (int, float)))


def ok(vs):
    return [v for v in vs if v is not None]


def ratio_cell(res, name, key, peer, higher_better):
    """Median over repetitions of jobq's advantage: jobq/peer when higher is
    better, peer/jobq when lower is better; > 1 means jobq did better."""
    rs = []
    for j, p in zip(res[name]["jobq"], res[name][peer]):
        if j is None or p is None or not j[key] or not p[key]:
            continue
        rs.append(j[key] / p[key] if higher_better else p[key] / j[key])
    return "%.2fx" % med(rs) if rs else "n/a"


def diff_cell(res, name, base, key):
    """jobq's figure of `name` minus that of `base`, per repetition, median."""
    ds = [j[key] - f[key] for j, f in zip(res[name]["jobq"], res[base]["jobq"])
          if j is not None and f is not None]
    return "%+.2f ms" % med(ds) if ds else "n/a"


def ratio_of(res, name, base, key):
    """jobq's figure of `name` over that of `base`, per repetition, median."""
    rs = [j[key] / f[key] for j, f in zip(res[name]["jobq"], res[base]["jobq"])
          if j is not None and f is not None and f[key]]
    return "%.2fx" % med(rs) if rs else "n/a"


def tables(res, a, emit):
    def col(name, key, s, fmt, scale=1.0):
        vs = [v[key] for v in ok(res[name][s])]
        if not vs:
            return "failed"
        x = med(vs) * scale
        return "timeout" if x == float("inf") else fmt % x

    emit("### Throughput, jobs/s (median of %d; advantage = median of per-repetition "
         "jobq/peer)" % a.reps)
    emit()
    emit("| test | jobq | BullMQ | bee-queue | jobq vs BullMQ | jobq vs bee-queue |")
    emit("|---|---|---|---|---|---|")
    one = "BullMQ as 1 process x concurrency 50 (the rows above: 2 x 64), jobq's figure of the same repetition"
    for name, label in (("noop, with results", "(a) %d noop, preloaded, results kept (each side's default)" % a.jobs),
                        ("noop, with results, 1x50", "(a) the same, " + one),
                        ("noop, no results", "(a) %d noop, no results: jobq `result_ttl 0`; BullMQ removeOnComplete; bee-queue removeOnSuccess" % a.jobs),
                        ("noop, no results, 1x50", "(a) the same, " + one),
                        ("sha256", "(d) %d sha256 (1 KiB of 0x01, %d rounds), 2 CPU lanes, digests checked" % (a.sha_jobs, SHA_ROUNDS))):
        fmt = "%.1f" if name == "sha256" else "%.0f"
        bee = name.endswith("1x50")
        emit("| %s | %s | %s | %s | %s | %s |" % (
            label, col(name, "jps", "jobq", fmt), col(name, "jps", "bullmq", fmt),
            "-" if bee else col(name, "jps", "bee", fmt), ratio_cell(res, name, "jps", "bullmq", True),
            "-" if bee else ratio_cell(res, name, "jps", "bee", True)))
    emit()
    emit("### Latency, enqueue -> the client learns it is done, ms (median over repetitions "
         "of each run's p50 / p99; advantage = median of per-repetition peer/jobq)")
    emit()
    emit("| test | jobq p50 / p99 | BullMQ p50 / p99 | bee-queue p50 / p99 | jobq vs BullMQ (p50, p99) | jobq vs bee-queue (p50, p99) |")
    emit("|---|---|---|---|---|---|")
    for name, label in (("latency", "(b) low load: %d noop jobs one at a time" % a.lat_jobs),
                        ("latency, 1x50", "(b) the same, " + one),
                        ("floor", "(b0) the floor: jobq's client of (b) against a responder that does the least (XREADGROUP BLOCK, then LPUSH notify + XACK in one round trip; C and hiredis, floor.c)"),
                        ("mixed", "(c) tiny noop every 20 ms for %d s while sha256 jobs saturate 2 CPU lanes" % a.mixed_s),
                        ("control", "(c0) control: the same tiny jobs, no CPU job (this machine's own tail)")):
        cells = []
        for s in SIDES:
            if not res[name][s] or all(v is None for v in res[name][s]) and name in ("floor", "latency, 1x50"):
                cells.append("-")
                continue
            cells.append("%s / %s" % (col(name, "p50", s, "%.2f"), col(name, "p99", s, "%.2f")))
        for peer in ("bullmq", "bee"):
            if name == "floor" or (peer == "bee" and name.endswith("1x50")):
                cells.append("-")
                continue
            cells.append("%s, %s" % (ratio_cell(res, name, "p50", peer, False),
                                     ratio_cell(res, name, "p99", peer, False)))
        emit("| %s | %s |" % (label, " | ".join(cells)))
    emit()
    pv = ok(res["paired"]["jobq"])
    if pv:
        emit("(b1) the same, paired: jobq and the floor of (b0) at once, each waiting on its own "
             "queue of the one redis-server, one client (Python, a raw socket) sending %d jobs "
             "to each in turn, 5 ms apart (bench/latpair.py), so that both meet the same moments "
             "of the machine: jobq p50 / p99 %.2f / %.2f ms, the floor %.2f / %.2f; jobq over "
             "the floor's job beside it, median over jobs (then over repetitions): %+.3f ms "
             "(repetitions: %s)." % (
                 a.lat_jobs, med([v["p50"] for v in pv]), med([v["p99"] for v in pv]),
                 med([v["floor_p50"] for v in pv]), med([v["floor_p99"] for v in pv]),
                 med([v["over"] for v in pv]), ", ".join("%+.3f" % v["over"] for v in pv)))
        emit()
    emit("jobq (b) over its floor (b0), median of per-repetition figures: p50 %s, p99 %s. "
         "Tiny jobs (c) over their control (c0), jobq: p99 %s (p50 %s)." % (
             diff_cell(res, "latency", "floor", "p50"), diff_cell(res, "latency", "floor", "p99"),
             ratio_of(res, "mixed", "control", "p99"), ratio_of(res, "mixed", "control", "p50")))
    emit()
    pooled = {}
    for name in ("mixed", "control"):
        ms = [x for v in ok(res[name]["jobq"]) for x in v["ms"]]
        if ms:
            pooled[name] = pct(ms)
    if len(pooled) == 2:
        emit("Tiny jobs, jobq, every repetition's jobs pooled (the p99 of one window of about "
             "400 jobs is its 4th-worst job): (c) p50 / p99 %.2f / %.2f ms over %d jobs, (c0) "
             "%.2f / %.2f over %d: p99 %.2fx." % (
                 pooled["mixed"]["p50"], pooled["mixed"]["p99"], pooled["mixed"]["n"],
                 pooled["control"]["p50"], pooled["control"]["p99"], pooled["control"]["n"],
                 pooled["mixed"]["p99"] / pooled["control"]["p99"]))
        emit()
    emit("(c) CPU jobs not yet finished (waiting or running) in queue `cpu` at the end of "
         "each window (more than 2: the CPU lanes were busy throughout): %s. Tiny jobs not done "
         "within 120 s (counted as infinitely late): %s." % ("; ".join(
             "%s %s" % (NAMES[s], ", ".join(str(v["cpu_left"]) for v in ok(res["mixed"][s])))
             for s in SIDES), "; ".join("%s %d" % (NAMES[s], sum(v["timeouts"] for t in ("latency", "mixed", "control")
                                                                  for v in ok(res[t][s])))
                                          for s in SIDES)))
    emit()
    emit("### Memory: RSS of the whole worker side (process tree), MiB, median")
    emit()
    emit("| | jobq | BullMQ | bee-queue | jobq vs BullMQ | jobq vs bee-queue |")
    emit("|---|---|---|---|---|---|")
    for name, key, label in (("noop, with results", "idle", "(e) idle, ready to take jobs (jobq: master + 2 workers; peers: 2 processes)"),
                             ("noop, with results", "idle_one", "(e) idle, one worker process"),
                             ("noop, with results", "peak", "(e) peak (VmHWM) after the noop run"),
                             ("sha256", "peak", "(e) peak (VmHWM) after the sha256 run (BullMQ: with its sandbox processes)")):
        emit("| %s | %s | %s | %s | %s | %s |" % (
            label, col(name, key, "jobq", "%.1f", 1.0 / MIB), col(name, key, "bullmq", "%.1f", 1.0 / MIB),
            col(name, key, "bee", "%.1f", 1.0 / MIB), ratio_cell(res, name, key, "bullmq", False),
            ratio_cell(res, name, key, "bee", False)))
    emit()
    emit("### CPU per job, µs (median): Redis (INFO cpu, used_cpu_sys + used_cpu_user) "
         "while the workers run the preloaded jobs, Redis while they are enqueued, and the "
         "worker processes themselves")
    emit()
    emit("| test | side | Redis, running | Redis, enqueue | workers | Redis running: jobq vs peer |")
    emit("|---|---|---|---|---|---|")
    for name in ("noop, with results", "noop, no results", "sha256"):
        for s in SIDES:
            emit("| %s | %s | %s | %s | %s | %s |" % (
                name, NAMES[s], col(name, "redis_us", s, "%.1f"), col(name, "enq_us", s, "%.1f"),
                col(name, "worker_us", s, "%.1f"),
                "" if s == "jobq" else ratio_cell(res, name, "redis_us", s, False)))
            one = name + ", 1x50"
            if s == "bullmq" and one in res:
                emit("| %s | %s, 1 process x 50 | %s | %s | %s | %s |" % (
                    name, NAMES[s], col(one, "redis_us", s, "%.1f"), col(one, "enq_us", s, "%.1f"),
                    col(one, "worker_us", s, "%.1f"), ratio_cell(res, one, "redis_us", s, False)))


def big_payload_rows(a, emit):
    """(f): bigfloor.py's run on this bin/, on a redis-server of its own;
    no peer has a chunked payload to set beside it, so Redis's floor is
    the yardstick (issue 22: each stage within 1.5x of it)."""
    import bigfloor
    mib, reps = 60, (1 if a.quick else a.reps)
    try:
        res = bigfloor.run([("jobq", os.path.join(ROOT, "bin"))], mib, reps)
    except Exception as e:  # the tables above stand without it
        emit()
        emit("(f) large payload: FAILED: %s" % str(e)[:300])
        return
    emit()
    emit("### (f) Large payload: %d MiB of random bytes through `jobq enqueue echo @FILE`, the "
         "worker and `jobq wait -o`, s (median of %d; ratio = median of per-repetition stage / "
         "Redis's floor: one raw client's pipelined RPUSH / LRANGE of the same 256 KiB chunks, "
         "best of 3; the write into fresh memory, as Redis meets a payload it never held: "
         "bench/bigfloor.py says why); jobq alone" % (mib, reps))
    emit()
    for line in bigfloor.table(res):
        emit(line)


if __name__ == "__main__":
    main()
