"""`make bench`: jobq's throughput and large-message figures.

Starts its own redis-server on a free loopback port and its own consumers
(a private copy of bin/jobq-consumer, safe from rebuilds while it runs),
stops them all afterwards, and prints markdown tables:

  1. noop throughput: N (default 50,000) noop jobs written with pipelined XADDs (the RESP
     bytes are built before the clock starts, so Python's speed is not
     measured), time from the first byte sent until the stats hash says
     `processed` = N; jobs/s, median of 3 runs, for --workers 1 and 2; with
     redis-benchmark's pipelined XADD rate on the same server as the
     baseline, and the CPU time Redis and the workers used.
  2. echo round trip: enqueue (chunked: a 256 KiB chunk list + XADD in one
     MULTI/EXEC; unchunked: the payload inline in the XADD, consumer run
     with --chunk-size 1g so the result is one value too) until the result
     is read back; median of 3.
  3. peak RSS (VmHWM) of a fresh worker that ran one 64 MiB echo job.

Run: /usr/bin/python3 bench/bench.py [--out FILE] [--jobs N] [--quick]
"""
import argparse
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack
import redis as redislib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CONSUMER_SRC = os.path.join(ROOT, "bin", "jobq-consumer")
CHUNK = 256 * 1024
KIB, MIB = 1024, 1024 * 1024
STREAM = "jobq:{default}:stream"
CLK_TCK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from conftest import free_port  # noqa: E402  (one helper for tests and benches)


def cpu_seconds(pid):
    """CPU time of a process, in seconds (0 if it is gone): the sum of its
    threads' run time from /proc/<pid>/task/*/schedstat (nanoseconds), or
    utime + stime from /proc/<pid>/stat if that is more. utime and stime
    come in clock ticks (10 ms): over a short run of a few thousand jobs
    that alone moved a process's CPU per job by several microseconds;
    schedstat misses only threads that have exited (stat keeps those)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return 0.0
    ns = 0
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                    ns += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    return max(ticks, ns / 1e9)


def tree(pid):
    """pid and all its descendants that are alive."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def proc_status(pid, field):
    """A kB field of /proc/<pid>/status (VmHWM, VmRSS), in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    mem = proc_status_meminfo()
    redis_v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": nproc, "model": model, "mem": mem, "kernel": platform.release(),
            "redis": redis_v}


def proc_status_meminfo():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return "%.1f GiB" % (int(line.split()[1]) / (1024 * 1024))
    return "?"


def make_tls_pki(d):
    """A throw-away CA and a server certificate for 127.0.0.1 in d (EC P-256):
    returns (ca, cert, key) paths."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=bench CA")
    ossl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    return tuple(os.path.join(d, f) for f in ("ca.crt", "server.crt", "server.key"))


class Redis:
    """tls=True: it listens with TLS on a second port too (tls_url, its CA
    in tls_ca), beside the plain one every harness uses."""

    def __init__(self, d, tls=False):
        self.port = free_port()
        extra = []
        if tls:
            self.tls_ca, cert, key = make_tls_pki(d)
            self.tls_port = free_port()
            self.tls_url = "rediss://127.0.0.1:%d" % self.tls_port
            extra = ["--tls-port", str(self.tls_port), "--tls-cert-file", cert,
                     "--tls-key-file", key, "--tls-ca-cert-file", self.tls_ca,
                     "--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", d,
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--logfile", os.path.join(d, "redis.log")] + extra,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = "redis://127.0.0.1:%d" % self.port
        deadline = time.time() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redislib.exceptions.RedisError:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)

    def client(self):
        return redislib.Redis(port=self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


class Rig:
    """What every harness under bench/ starts from: a private copy of
    bin/jobq-consumer in d (safe from rebuilds while it runs) and a fresh
    redis-server of its own."""

    def __init__(self, d):
        self.d = d
        self.binary = os.path.join(d, "jobq-consumer")
        shutil.copy2(CONSUMER_SRC, self.binary)
        self.srv = Redis(d)
        self.r = self.srv.client()


class Consumer:
    """A master with its workers, stopped by its pid."""

    def __init__(self, binary, srv, r, args, workers, logdir):
        r.delete("jobq:workers")
        self.log = open(os.path.join(logdir, "consumer.log"), "ab")
        self.proc = subprocess.Popen([binary, "--redis", srv.url, "--workers", str(workers),
                                      "--log-level", "warn"] + list(args),
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        self.pids = []
        while time.time() < deadline:
            ids = r.zrange("jobq:workers", 0, -1)
            if len(ids) >= workers:
                self.pids = [int(r.hget(b"jobq:worker:" + i, "pid")) for i in ids]
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise RuntimeError("consumer did not start its workers (see %s)" % self.log.name)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_replies(sock, n):
    """Reads n simple replies (bulk strings or errors); returns the errors."""
    buf = b""
    got, errors = 0, []
    while got < n:
        data = sock.recv(1 << 20)
        if not data:
            raise RuntimeError("redis closed the connection")
        buf += data
        pos = 0
        while got < n:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            kind = buf[pos:pos + 1]
            if kind == b"$":
                ln = int(buf[pos + 1:end])
                if ln >= 0:
                    if len(buf) < end + 2 + ln + 2:
                        break
                    end = end + 2 + ln
            elif kind == b"-":
                errors.append(buf[pos:end])
            pos = end + 2
            got += 1
        buf = buf[pos:]
    return errors


NOT_PER_JOB = ("cmdstat_hget", "cmdstat_config|resetstat", "cmdstat_info")


def commands_per_job(r, n):
    """Redis commands run per job (INFO commandstats since CONFIG
    RESETSTAT), leaving out the bench's own polling."""
    st = r.info("commandstats")
    return sum(v["calls"] for k, v in st.items() if k not in NOT_PER_JOB) / n


def noop_run(srv, r, binary, workers, n, logdir, args=(), perf=None):
    r.flushall()
    c = Consumer(binary, srv, r, list(args), workers, logdir)
    recorders = []
    try:
        if perf:
            for name, pids in (("worker", c.pids), ("redis", [srv.proc.pid])):
                out = os.path.join(logdir, "perf.%s.data" % name)
                recorders.append((name, out, subprocess.Popen(
                    ["perf", "record", "-F", "4000", "-g", "-o", out, "-p", ",".join(map(str, pids))],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
            time.sleep(1)
        r.config_resetstat()
        payload = msgpack.packb(None)
        blob = b"".join(resp("XADD", STREAM, "*", "type", "noop", "payload", payload)
                        for _ in range(n))
        cpu0 = {p: cpu_seconds(p) for p in c.pids}
        rcpu0 = cpu_seconds(srv.proc.pid)
        sock = socket.create_connection(("127.0.0.1", srv.port))
        t0 = time.perf_counter()
        sock.sendall(blob)
        errors = read_replies(sock, n)
        t_enq = time.perf_counter() - t0
        if errors:
            raise RuntimeError("XADD errors: %r" % errors[:3])
        while int(r.hget("jobq:{default}:stats", "processed") or 0) < n:
            time.sleep(0.002)
        elapsed = time.perf_counter() - t0
        wcpu = sum(cpu_seconds(p) - cpu0[p] for p in c.pids)
        rcpu = cpu_seconds(srv.proc.pid) - rcpu0
        sock.close()
        cmds = commands_per_job(r, n)
        for name, out, p in recorders:
            p.send_signal(signal.SIGINT)
            p.wait(60)
        recorders = []
        return {"s": elapsed, "enq_s": t_enq, "worker_cpu": wcpu, "redis_cpu": rcpu, "cmds": cmds}
    finally:
        for name, out, p in recorders:
            p.kill()
            p.wait()
        c.stop()


def perf_top(logdir, name, lines=14):
    out = subprocess.run(["perf", "report", "-i", os.path.join(logdir, "perf.%s.data" % name),
                          "--no-children", "--sort", "dso,sym", "-g", "none", "--stdio"],
                         capture_output=True, text=True).stdout
    rows = [l.rstrip() for l in out.splitlines() if l.strip() and not l.startswith("#")]
    total = [l for l in out.splitlines() if l.startswith("# Event count")]
    return total[:1] + rows[:lines]


def redis_benchmark_xadd(srv, r):
    out = subprocess.run(["redis-benchmark", "-p", str(srv.port), "-n", "200000", "-P", "16", "-q",
                          "XADD", "bench", "*", "f", "v"], capture_output=True, text=True).stdout
    r.delete("bench")
    m = re.findall(r"([\d.]+) requests per second", out)
    return float(m[-1]) if m else 0.0


def echo_once(r, size, chunked, seq):
    """One echo round trip; returns seconds. Checks the bytes that came
    back."""
    data = os.urandom(size)
    packed = msgpack.packb(data, use_bin_type=True)
    jid = "echo-%d-%d-%d" % (size, chunked, seq)
    pieces = [packed[i:i + CHUNK] for i in range(0, len(packed), CHUNK)]
    t0 = time.perf_counter()
    p = r.pipeline(transaction=chunked)
    if chunked:
        p.rpush("jobq:{default}:payload:" + jid, *pieces)
        p.xadd(STREAM, {"type": "echo", "id": jid, "chunks": len(pieces), "size": len(packed),
                        "notify": "1"})
    else:
        p.xadd(STREAM, {"type": "echo", "id": jid, "payload": packed, "notify": "1"})
    p.execute()
    if r.blpop(["jobq:{default}:notify:" + jid], timeout=120) is None:
        raise RuntimeError("echo %s did not finish" % jid)
    rkey = "jobq:{default}:result:" + jid
    h = r.hgetall(rkey)
    if b"chunks" in h:
        back = b"".join(r.lrange(rkey + ":chunks", 0, -1))
    else:
        back = h.get(b"result")
    elapsed = time.perf_counter() - t0
    if back != packed:
        raise RuntimeError("echo %s came back different (%s)" % (jid, h.get(b"error")))
    r.delete(rkey, rkey + ":chunks", "jobq:{default}:notify:" + jid)
    return elapsed


def consumer_args(chunked):
    # 64 MiB of bytes is 64 MiB + 5 as msgpack: above the default bound.
    args = ["--max-payload", "128m"]
    if not chunked:
        args += ["--chunk-size", "1g"]  # the result comes back as one value too
    return args


def echo_table(srv, r, binary, sizes, runs, logdir):
    rows = []
    for chunked in (True, False):
        r.flushall()
        c = Consumer(binary, srv, r, consumer_args(chunked), 1, logdir)
        try:
            echo_once(r, 1024, chunked, -1)  # warm up
            for size in sizes:
                rows.append((size, chunked, statistics.median(
                    echo_once(r, size, chunked, i) for i in range(runs))))
        finally:
            c.stop()
    return rows


def peak_rss(srv, r, binary, size, chunked, logdir):
    r.flushall()
    c = Consumer(binary, srv, r, consumer_args(chunked), 1, logdir)
    try:
        pid = c.pids[0]
        before = proc_status(pid, "VmHWM")
        echo_once(r, size, chunked, 0)
        after = proc_status(pid, "VmHWM")
        rss_now = proc_status(pid, "VmRSS")
        return {"before": before, "peak": after, "rss_after": rss_now}
    finally:
        c.stop()


def human(n):
    if n >= MIB:
        return "%d MiB" % (n // MIB)
    return "%d KiB" % (n // KIB)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=50000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench.md"))
    ap.add_argument("--quick", action="store_true", help="small sizes only, 1 run")
    ap.add_argument("--perf", action="store_true",
                    help="also profile one noop run (--workers 1) with perf record -g")
    a = ap.parse_args()
    if not os.path.exists(CONSUMER_SRC):
        sys.exit("bin/jobq-consumer is missing: run make first")
    sizes = [KIB, 64 * KIB, MIB, 16 * MIB, 64 * MIB]
    if a.quick:
        sizes, a.runs, a.jobs = [KIB, 64 * KIB, MIB], 1, 5000

    d = tempfile.mkdtemp(prefix="jobq-bench-")
    binary = os.path.join(d, "jobq-consumer")
    shutil.copy2(CONSUMER_SRC, binary)
    srv = Redis(d)
    r = srv.client()
    out = []

    def emit(line=""):
        print(line, flush=True)
        out.append(line)

    try:
        m = machine()
        emit("Machine: %s CPUs (nproc), %s, %s RAM, Linux %s, %s" %
             (m["nproc"], m["model"], m["mem"], m["kernel"], m["redis"].split(" sha=")[0]))
        emit("Load average before the run: %s" % open("/proc/loadavg").read().split(" ", 3)[:3])
        emit("Command: `make bench` (/usr/bin/python3 bench/bench.py), %s" %
             time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        emit()

        xadd = redis_benchmark_xadd(srv, r)
        emit("### noop throughput (%d jobs, pipelined XADD, median of %d)" % (a.jobs, a.runs))
        emit()
        emit("| consumer | jobs/s | seconds | of redis-benchmark XADD | enqueue alone, s "
             "| Redis CPU, s (busy) | Redis CPU per job | worker CPU, s | Redis commands per job |")
        emit("|---|---|---|---|---|---|---|---|---|")
        # The last two rows lift the batch cap (one read takes at most the
        # free io slots): they show where Redis itself tops out.
        configs = [(1, []), (2, []), (1, ["--io-concurrency", "1024"]),
                   (2, ["--io-concurrency", "1024"])]
        for workers, args in configs:
            runs = [noop_run(srv, r, binary, workers, a.jobs, d, args) for _ in range(a.runs)]
            med = sorted(runs, key=lambda x: x["s"])[len(runs) // 2]
            jps = a.jobs / med["s"]
            emit("| --workers %d%s | %.0f | %.3f | %.1f%% | %.3f | %.2f (%.0f%%) | %.1f us | %.2f | %.2f |" %
                 (workers, "".join(" " + x for x in args), jps, med["s"],
                  100.0 * jps / xadd if xadd else 0, med["enq_s"], med["redis_cpu"],
                  100.0 * med["redis_cpu"] / med["s"], 1e6 * med["redis_cpu"] / a.jobs,
                  med["worker_cpu"], med["cmds"]))
        emit()
        emit("Baseline on the same server: `redis-benchmark -p PORT -n 200000 -P 16 -q "
             "XADD bench '*' f v` = %.0f XADD/s." % xadd)
        emit()

        emit("### echo round trip (median of %d, seconds)" % a.runs)
        emit()
        rows = echo_table(srv, r, binary, sizes, a.runs, d)
        by = {(s, c): t for s, c, t in rows}
        emit("| payload | chunked (256 KiB chunks) | unchunked (one value) | chunked / unchunked |")
        emit("|---|---|---|---|")
        for s in sizes:
            emit("| %s | %.4f | %.4f | %.2f |" % (human(s), by[(s, True)], by[(s, False)],
                                                  by[(s, True)] / by[(s, False)]))
        emit()

        big = sizes[-1]
        emit("### peak RSS of a fresh worker running one %s echo job" % human(big))
        emit()
        emit("| payload path | VmHWM before | VmHWM after | peak / payload | target |")
        emit("|---|---|---|---|---|")
        for chunked in (True, False):
            p = peak_rss(srv, r, binary, big, chunked, d)
            emit("| %s | %.1f MiB | %.1f MiB | %.2fx | < 2.5x |" %
                 ("chunked" if chunked else "unchunked", p["before"] / MIB, p["peak"] / MIB,
                  p["peak"] / big))
        if a.perf and not shutil.which("perf"):
            emit("(--perf: perf is not installed; no profile)")
        elif a.perf:
            res = noop_run(srv, r, binary, 1, a.jobs, d, perf=True)
            emit()
            emit("### perf profile of one noop run (--workers 1, %d jobs, %.0f jobs/s under perf)"
                 % (a.jobs, a.jobs / res["s"]))
            for name in ("worker", "redis"):
                emit()
                emit("%s (perf record -F 4000 -g -p PID; perf report --no-children --sort dso,sym):" % name)
                emit()
                emit("```")
                for line in perf_top(d, name):
                    emit(line)
                emit("```")
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n(written to %s)" % os.path.relpath(a.out, ROOT))


if __name__ == "__main__":
    main()
