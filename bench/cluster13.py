"""Redis Cluster, 1 master against 3 (issue 24): the same noop load, jobs
with results, on 8 queues, served by one jobq-consumer over
redis+cluster://.

    /usr/bin/python3 bench/cluster13.py [--jobs N] [--workers W]

For each layout, a cluster of the script's own on loopback (1 master
holding every slot, or 3 masters from `redis-cli --cluster create`), N
noop jobs preloaded over the 8 queues with pipelined XADDs, then the
consumer started and timed until every queue's group has read and acked
all: jobs/s, and each master's CPU (INFO cpu, user+sys) per job. On a
2-CPU box three masters and the consumer share two cores: this shows the
cost of routing, not a gain in scale. Asserts nothing."""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from redis_cluster_util import Cluster, Node  # noqa: E402
from conftest import CONSUMER, stream, wait_for  # noqa: E402

QUEUES = ["b%d" % i for i in range(8)]


class OneMaster(Cluster):
    """One cluster-enabled node that serves all 16384 slots."""

    def __init__(self, tmpdir):
        d = os.path.join(tmpdir, "node0")
        os.makedirs(d)
        self.nodes = [Node(d)]
        self.nodes[0].client().execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        wait_for(self._ok, timeout=15, what="the one-master cluster ok")


def cpu(node):
    info = node.client().info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def done(rc, per):
    for q in QUEUES:
        g = rc.xinfo_groups(stream(q))
        if not g or g[0]["pending"] or (g[0].get("entries-read") or 0) < per:
            return False
    return True


def run(cluster, n, workers, logdir):
    rc = cluster.client()
    per = n // len(QUEUES)
    p = rc.pipeline()
    for q in QUEUES:
        for i in range(per):
            p.xadd(stream(q), {"type": "noop", "enc": "json", "payload": "{}"})
    p.execute()
    masters = cluster.masters()
    before = {m.port: cpu(m) for m in masters}
    url = "redis+cluster://" + ",".join("127.0.0.1:%d" % m.port for m in masters)
    log = open(os.path.join(logdir, "consumer-%d.log" % len(masters)), "wb")
    t0 = time.time()
    c = subprocess.Popen([CONSUMER, "--redis", url, "--queues", ",".join(QUEUES),
                          "--workers", str(workers)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: done(rc, per), timeout=600, interval=0.05, what="all jobs done")
        secs = time.time() - t0
    finally:
        c.terminate()
        c.wait(30)
    used = {m.port: cpu(m) - before[m.port] for m in masters}
    return per * len(QUEUES), secs, used


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=40000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    print("| masters | jobs | jobs/s | Redis CPU µs/job, per master | Redis CPU µs/job, all |")
    print("|---|---|---|---|---|")
    for masters in (1, 3):
        d = tempfile.mkdtemp(prefix="jq-cluster13-")
        cl = OneMaster(d) if masters == 1 else Cluster(d)
        try:
            n, secs, used = run(cl, a.jobs, a.workers, d)
        finally:
            cl.stop()
        per = ", ".join("%.1f" % (u * 1e6 / n) for u in used.values())
        print("| %d | %d | %.0f | %s | %.1f |" % (masters, n, n / secs, per,
                                                  sum(used.values()) * 1e6 / n))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
