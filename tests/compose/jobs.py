#!/usr/bin/python3
"""The compose test's Redis side (tests/compose/run.sh), with python3-redis
from the host against the stack's published port: a client that is not
ours, as any producer would be (PROTOCOL §1).

  jobs.py PORT enqueue BATCH N KIND   N jobs with ids BATCH-0..N-1; KIND mix
                                      (echo, sleep 20 ms, sha256), slow
                                      (sleep 1 s) or slower (sleep 4 s)
  jobs.py PORT wait BATCH N SECONDS   until all N are done; exit 1 naming
                                      the missing and the dead ones
  jobs.py PORT hosts BATCH N          distinct hosts that ran the batch
  jobs.py PORT worker-hosts           distinct hosts in the worker hashes
  jobs.py PORT holding HOST           pending entries of HOST's workers
  jobs.py PORT holder SECS MIN HOST... polls until one of the HOSTs holds
                                      MIN entries or more; prints "HOST N"
  jobs.py PORT pending                pending entries of the whole group
"""
import json
import sys
import time

import redis

PREFIX = "jobq"
STREAM = PREFIX + ":{default}:stream"
GROUP = "workers"


def result_key(jid):
    return "%s:{default}:result:%s" % (PREFIX, jid)


def enqueue(r, batch, n, kind):
    p = r.pipeline(transaction=False)
    for i in range(n):
        if kind == "slow":
            typ, payload = "sleep", {"ms": 1000}
        elif kind == "slower":
            typ, payload = "sleep", {"ms": 4000}
        else:
            typ, payload = [("echo", {"i": i}), ("sleep", {"ms": 20}),
                            ("sha256", {"data": "job %d" % i, "rounds": 2000})][i % 3]
        p.xadd(STREAM, {"type": typ, "enc": "json", "payload": json.dumps(payload),
                        "id": "%s-%d" % (batch, i)})
        if i % 200 == 199:
            p.execute()
    p.execute()
    print("enqueued %d %s jobs as %s-0..%d" % (n, kind, batch, n - 1))


def states(r, batch, n):
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.hmget(result_key("%s-%d" % (batch, i)), "state", "worker", "attempts")
    return p.execute()


def wait(r, batch, n, seconds):
    deadline = time.time() + seconds
    while True:
        got = states(r, batch, n)
        done = sum(1 for s in got if s[0] == b"done")
        if done == n:
            attempts = sum(int(s[2] or 0) for s in got)
            print("all %d jobs of %s done (%d attempts in all)" % (n, batch, attempts))
            return 0
        if time.time() > deadline:
            bad = [("%s-%d" % (batch, i), s[0]) for i, s in enumerate(got) if s[0] != b"done"]
            print("only %d of %d jobs of %s done after %ss; not done: %r"
                  % (done, n, batch, seconds, bad[:20]), file=sys.stderr)
            return 1
        time.sleep(0.25)


def host_of(worker):
    return worker.decode().rsplit(":", 1)[0]


def hosts(r, batch, n):
    hs = {}
    for s in states(r, batch, n):
        if s[1]:
            hs[host_of(s[1])] = hs.get(host_of(s[1]), 0) + 1
    for h, c in sorted(hs.items()):
        print("%s %d" % (h, c))


def worker_hosts(r):
    hs = set()
    for k in r.scan_iter(PREFIX + ":worker:*"):
        h = r.hget(k, "host")
        if h:
            hs.add(h.decode())
    for h in sorted(hs):
        print(h)


def held_by(r, host):
    n = 0
    for c in r.xinfo_consumers(STREAM, GROUP):
        if c["name"].decode().rsplit(":", 1)[0] == host:
            n += c["pending"]
    return n


def holder(r, seconds, least, hosts):
    """Polls in one process: a shell loop of python3 starts could miss a
    batch that runs in a second or two."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        for h in hosts:
            n = held_by(r, h)
            if n >= least:
                print(h, n)
                return 0
        time.sleep(0.02)
    print("none of %s held %d entries within %ss; consumers: %r; group: %r"
          % (hosts, least, seconds, r.xinfo_consumers(STREAM, GROUP), r.xinfo_groups(STREAM)),
          file=sys.stderr)
    return 1


def main():
    r = redis.Redis(port=int(sys.argv[1]))
    cmd, args = sys.argv[2], sys.argv[3:]
    if cmd == "enqueue":
        enqueue(r, args[0], int(args[1]), args[2])
    elif cmd == "wait":
        return wait(r, args[0], int(args[1]), float(args[2]))
    elif cmd == "hosts":
        hosts(r, args[0], int(args[1]))
    elif cmd == "worker-hosts":
        worker_hosts(r)
    elif cmd == "holding":
        print(held_by(r, args[0]))
    elif cmd == "holder":
        return holder(r, float(args[0]), int(args[1]), args[2:])
    elif cmd == "pending":
        print(r.xpending(STREAM, GROUP)["pending"])
    else:
        print("unknown command %s" % cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
