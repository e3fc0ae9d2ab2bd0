"""Idle worker memory of one or more consumer builds, interleaved.

    /usr/bin/python3 bench/idle_rss.py [--reps 5] [--smaps] LABEL=BIN_DIR_OR_CONSUMER ...

For each repetition and each build (the order rotates between repetitions),
on one redis-server of its own: starts `jobq-consumer --workers 2` (the
shape of bench-compare's idle_one), waits until both workers are registered
and 1.5 s more, and reads each worker's VmRSS (/proc/PID/status) and its
Pss, Anonymous and Private_Dirty (/proc/PID/smaps_rollup), and the master's
VmRSS. Prints the medians per build as a Markdown table; with --smaps, also
each build's Rss per mapped file for one worker of the last repetition (the
table that says where the rest goes). Asserts nothing; the machine may be
shared, so quote medians.
"""
import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (Redis, Consumer, machine)


def kib(path, field):
    with open(path) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def by_mapping(pid):
    """Rss in KiB per mapped file ([heap], [stack], [anon] for the rest)."""
    out, cur = {}, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                cur = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
            elif line.startswith("Rss:"):
                out[cur] = out.get(cur, 0) + int(line.split()[1])
    return out


def measure(binary, srv, d):
    r = srv.client()
    r.flushall()
    c = bench.Consumer(binary, srv, r, [], 2, d)
    try:
        time.sleep(1.5)
        rows = []
        for pid in c.pids:
            rollup = "/proc/%d/smaps_rollup" % pid
            rows.append({"rss": kib("/proc/%d/status" % pid, "VmRSS"), "pss": kib(rollup, "Pss"),
                         "anon": kib(rollup, "Anonymous"), "dirty": kib(rollup, "Private_Dirty")})
        master = kib("/proc/%d/status" % c.proc.pid, "VmRSS")
        return rows, master, by_mapping(c.pids[0])
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--smaps", action="store_true")
    ap.add_argument("builds", nargs="+", metavar="LABEL=PATH")
    a = ap.parse_args()
    builds = []
    for b in a.builds:
        label, _, path = b.partition("=")
        if os.path.isdir(path):
            path = os.path.join(path, "jobq-consumer")
        if not os.access(path, os.X_OK):
            sys.exit("idle_rss: %s is not an executable consumer" % path)
        builds.append((label, path))

    m = bench.machine()
    print("Machine: %s CPUs (nproc), %s, %s RAM, Linux %s, %s" %
          (m["nproc"], m["model"], m["mem"], m["kernel"], m["redis"]))
    print("Load average before the run: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    d = tempfile.mkdtemp(prefix="jobq-idle-rss-")
    srv = bench.Redis(d)
    got = {label: {"workers": [], "master": [], "maps": None} for label, _ in builds}
    try:
        for rep in range(a.reps):
            k = rep % len(builds)
            for label, path in builds[k:] + builds[:k]:
                rows, master, maps = measure(path, srv, d)
                got[label]["workers"] += rows
                got[label]["master"].append(master)
                got[label]["maps"] = maps
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)

    def med(xs):
        return statistics.median(xs) / 1024

    print("\n%d repetitions, 2 workers each: medians over %d workers per build, MiB\n" %
          (a.reps, 2 * a.reps))
    print("| build | worker VmRSS | worker Pss | worker Anonymous | worker Private_Dirty | master VmRSS |")
    print("|---|---|---|---|---|---|")
    for label, _ in builds:
        w = got[label]["workers"]
        print("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
            label, med([x["rss"] for x in w]), med([x["pss"] for x in w]),
            med([x["anon"] for x in w]), med([x["dirty"] for x in w]), med(got[label]["master"])))
    if a.smaps:
        for label, _ in builds:
            print("\n%s, one worker, Rss per mapping (KiB):" % label)
            for name, v in sorted(got[label]["maps"].items(), key=lambda x: -x[1]):
                if v:
                    print("    %6d  %s" % (v, name))


if __name__ == "__main__":
    main()
