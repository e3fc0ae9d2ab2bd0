"""Users' handlers on the loop: how many exec and http jobs one worker runs
at once, and what an exec job costs.

Starts its own redis-server and HTTP server on loopback and a private copy
of bin/jobq-consumer (--workers 1), and prints, as medians of --runs runs:

  1. N http jobs (the server answers after D ms) and N exec jobs (`sleep`
     D ms) enqueued together, until all are done: with the default
     --io-concurrency 64, and the baseline --io-concurrency 1 (one at a
     time) measured in the same run; the ratio is the concurrency gained.
  2. exec throughput: M jobs of `/bin/true` (each a guard process plus the
     command), jobs/s, with the small jobq-exec-guard and, as the baseline,
     with jobq-consumer as its own guard (no jobq-exec-guard beside it).

Run: /usr/bin/python3 bench/handlers.py [--n 10] [--ms 500] [--runs 3]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from conftest import CONSUMER, Consumer, RedisServer, free_port, wait_result, xadd  # noqa: E402


class Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        time.sleep(int(self.path.rsplit("=", 1)[1]) / 1000)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def run_batch(r, n, ms, base, seq):
    t0 = time.time()
    ids = [xadd(r, type="http", payload={"url": "%s/x?ms=%d" % (base, ms)}, id="h%d-%d" % (seq, i))
           for i in range(n)]
    ids += [xadd(r, type="nap", id="e%d-%d" % (seq, i)) for i in range(n)]
    for i in ids:
        assert wait_result(r, i, timeout=600)["state"] == b"done"
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--ms", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--exec-jobs", type=int, default=300)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="jobq-bench-handlers-")
    exe = os.path.join(tmp, "jobq-consumer")
    shutil.copy(CONSUMER, exe)
    shutil.copy(os.path.join(os.path.dirname(CONSUMER), "jobq-exec-guard"), tmp)
    alone = os.path.join(tmp, "alone")
    os.mkdir(alone)
    shutil.copy(CONSUMER, alone)
    nap = os.path.join(tmp, "nap.sh")
    with open(nap, "w") as f:
        f.write("#!/bin/sh\nexec sleep %s\n" % (a.ms / 1000))
    os.chmod(nap, 0o755)
    # A listen backlog for all the connections at once (the default of 5
    # would drop SYNs, and each retry costs a second).
    ThreadingHTTPServer.request_queue_size = 128
    http = ThreadingHTTPServer(("127.0.0.1", free_port()), Slow)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % http.server_address[1]
    srv = RedisServer(tmp)
    r = srv.client()
    try:
        rows = []
        seq = 0
        for conc in (64, 1):
            c = Consumer(srv.url, ["--workers", "1", "--io-concurrency", str(conc),
                                   "--http-allow", base + "/", "--exec", "nap=" + nap], tmp,
                         binary=exe)
            c.wait_log(r"worker \S+ ready")
            times = []
            for _ in range(a.runs):
                seq += 1
                times.append(run_batch(r, a.n, a.ms, base, seq))
            rows.append((conc, statistics.median(times), times))
            c.stop()
        rates = {}
        for label, binary in (("jobq-exec-guard", exe),
                              ("jobq-consumer --exec-guard", os.path.join(alone, "jobq-consumer"))):
            c = Consumer(srv.url, ["--workers", "1", "--exec", "true=/bin/true"], tmp, binary=binary)
            c.wait_log(r"worker \S+ ready")
            rates[label] = []
            for run in range(a.runs):
                seq += 1
                t0 = time.time()
                ids = [xadd(r, type="true", id="t%d-%d" % (seq, i)) for i in range(a.exec_jobs)]
                for i in ids:
                    wait_result(r, i, timeout=600)
                rates[label].append(a.exec_jobs / (time.time() - t0))
            c.stop()
        print("%d http jobs (server waits %d ms) + %d exec jobs (sleep %d ms), one worker, "
              "median of %d runs (shared, busy machine):\n" % (a.n, a.ms, a.n, a.ms, a.runs))
        print("| --io-concurrency | seconds (median) | runs | vs one at a time |")
        print("| --- | --- | --- | --- |")
        one = rows[1][1]
        for conc, med, times in rows:
            print("| %d | %.2f | %s | %.1fx faster |" % (conc, med, " ".join("%.2f" % t for t in times),
                                                       one / med))
        print("\nexec `/bin/true`, %d jobs, one worker, median of %d runs:\n" % (a.exec_jobs, a.runs))
        print("| guard | jobs/s (median) | runs |")
        print("| --- | --- | --- |")
        for label, xs in rates.items():
            print("| %s | %.0f | %s |" % (label, statistics.median(xs), " ".join("%.0f" % x for x in xs)))
    finally:
        srv.kill()
        http.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
