#!/usr/bin/python3
"""Chaos test (issue 9): a mixed load of io, cpu, chunked, delayed and
failing jobs runs for a set time while a driver injects faults at random:
SIGKILL of a worker, SIGKILL and restart of Redis (append-only file,
fsync always), a period of maxmemory, CLIENT KILL of the workers'
connections, SIGSTOP/SIGCONT of Redis (a stall), SIGHUP (rolling restart),
SIGTERM and a restart of the consumer. Then every job must end as its type
says (done; dead for `fail`), none missing, and the counters add up: each
outcome counted exactly once. The seed is printed first; a run with the
same seed starts from the same random sequence (the load and the faults
share it, so what comes when still depends on timing).

    make chaos CHAOS_SECONDS=600

Enqueueing is done with python3-redis, as a foreign producer would: each
job in one MULTI with a marker key, under a WATCH of the marker, so that
after a lost reply the job goes in once (none twice, none dropped).
Exit status 0 when every check holds; the figures go to stdout."""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import msgpack
import redis as redislib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from conftest import Consumer, RedisServer  # noqa: E402

Q = "default"
P = "jobq"


def k(what):
    return "%s:{%s}:%s" % (P, Q, what)


class Load:
    """Enqueues a steady mix of jobs and remembers what each must end as."""

    KINDS = ("io", "cpu", "chunked", "delayed", "fail")

    def __init__(self, port, rate):
        self.r = redislib.Redis(port=port, socket_timeout=5, socket_connect_timeout=2)
        self.rate = rate
        self.jobs = {}          # id -> (kind, expected state)
        self.retries = 0
        self.stop = threading.Event()
        self.n = 0

    def fill(self, p, jid, kind):
        common = {"id": jid, "max_attempts": "50"}
        if kind == "io":
            p.xadd(k("stream"), dict(common, type="sleep",
                                     payload=msgpack.packb({"ms": random.randint(1, 40)})))
        elif kind == "cpu":
            p.xadd(k("stream"), dict(common, type="sha256", enc="json",
                                     payload='{"data":"%s","rounds":%d}' % (jid, random.randint(100, 3000))))
        elif kind == "chunked":
            body = msgpack.packb({"id": jid, "blob": os.urandom(random.randint(2000, 9000))})
            pieces = [body[i:i + 1024] for i in range(0, len(body), 1024)]
            p.rpush(k("payload:" + jid), *pieces)
            p.xadd(k("stream"), dict(common, type="echo", chunks=len(pieces), size=len(body)))
        elif kind == "delayed":
            p.hset(k("job:" + jid), mapping={"type": "sleep", "max_attempts": "50",
                                              "payload": msgpack.packb({"ms": 5})})
            p.zadd(k("scheduled"), {jid: int(time.time() * 1000) + random.randint(100, 2000)})
        else:
            p.xadd(k("stream"), {"id": jid, "type": "fail", "max_attempts": "2", "enc": "json",
                                 "payload": '{"message":"chaos says no"}'})

    def enqueue(self, jid, kind):
        """Enqueues exactly once, however Redis fails meanwhile: the job
        and its marker go in one MULTI, under a WATCH of the marker. After
        an error the next round first asks for the marker (a MULTI whose
        reply was lost may have run); a copy of that MULTI that Redis runs
        late, after the connection was given up (it was still in Redis's
        socket buffer), either runs before the WATCH, and the marker says
        so, or between WATCH and EXEC, and the EXEC is refused. Redis
        refusing writes or restarting holds the producer up, as it would
        any producer."""
        marker = "chaos:enq:" + jid
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with self.r.pipeline(transaction=True) as p:
                    p.watch(marker)
                    if p.exists(marker):
                        return
                    p.multi()
                    self.fill(p, jid, kind)
                    p.set(marker, 1)
                    p.execute()
                return
            except redislib.exceptions.WatchError:
                self.retries += 1    # the marker changed: look again
            except redislib.exceptions.RedisError:
                self.retries += 1
                time.sleep(0.2)   # a retry's backoff while Redis is away
        raise SystemExit("chaos: could not enqueue %s for 120 s" % jid)

    def run(self):
        while not self.stop.is_set():
            t0 = time.time()
            kind = random.choice(self.KINDS)
            self.n += 1
            jid = "chaos-%d" % self.n
            self.enqueue(jid, kind)
            self.jobs[jid] = (kind, b"dead" if kind == "fail" else b"done")
            time.sleep(max(0.0, 1.0 / self.rate - (time.time() - t0)))   # the load's rate


def wait_redis(srv, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if redislib.Redis(port=srv.port, socket_timeout=2).ping():
                return
        except redislib.exceptions.RedisError:
            time.sleep(0.2)
    raise SystemExit("chaos: redis-server did not come back on port %d" % srv.port)


def small_aof(srv, keep):
    # Rewrite the append-only file early, so that a restart's load stays
    # short however long the run; or never (--keep-aof), so that it holds
    # every command of the run for aof_story.py.
    c = redislib.Redis(port=srv.port)
    if keep:
        c.config_set("auto-aof-rewrite-percentage", "0")
    else:
        c.config_set("auto-aof-rewrite-min-size", "4mb")


class Chaos:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.redis = RedisServer(tmp, aof=True)
        small_aof(self.redis, args.keep_aof)
        self.consumer = self.start_consumer()
        self.faults = {}
        self.admin = None

    def client(self):
        return redislib.Redis(port=self.redis.port, socket_timeout=5, socket_connect_timeout=2)

    def start_consumer(self):
        c = Consumer(self.redis.url, ["--workers", "2", "--threads", "1", "--backoff-ms", "100",
                                      "--backoff-max-ms", "1000", "--visibility-ms", "10000",
                                      "--shutdown-timeout-ms", "8000", "--heartbeat-ms", "500"],
                     self.tmp)
        c.wait_log(r"worker \S+ ready", timeout=20)
        return c

    def note(self, what):
        self.faults[what] = self.faults.get(what, 0) + 1
        print("  %6.1fs  %s" % (time.time() - self.t0, what), flush=True)

    # ---- the faults ----

    def kill_worker(self):
        pids = self.consumer.worker_pids()
        if pids:
            try:
                os.kill(random.choice(pids), signal.SIGKILL)
                self.note("SIGKILL worker")
            except ProcessLookupError:
                pass

    def restart_redis(self):
        self.redis.kill(signal.SIGKILL)
        time.sleep(random.uniform(0.2, 1.5))   # the outage: its span is the fault
        try:
            self.redis.start()
        except RuntimeError:
            # Still loading its append-only file (slow on a busy disk):
            # give it longer than the harness's 10 s.
            wait_redis(self.redis, 120)
        small_aof(self.redis, self.args.keep_aof)
        self.note("SIGKILL + restart redis")

    def maxmemory(self):
        try:
            c = self.client()
            used = int(c.info("memory")["used_memory"])
            c.config_set("maxmemory-policy", "noeviction")
            c.config_set("maxmemory", str(used))
            self.note("maxmemory")
            time.sleep(random.uniform(2, self.args.maxmemory_seconds))   # the span is the fault
            c.config_set("maxmemory", "0")
        except redislib.exceptions.RedisError:
            pass  # Redis restarted meanwhile: the limit is gone with it

    def client_kill(self):
        try:
            n = self.client().client_kill_filter(_type="normal", skipme=True)
            self.note("CLIENT KILL (%s connections)" % n)
        except redislib.exceptions.RedisError:
            pass

    def stall(self):
        self.redis.proc.send_signal(signal.SIGSTOP)
        time.sleep(random.uniform(0.3, 2.0))   # the stall: its span is the fault
        self.redis.proc.send_signal(signal.SIGCONT)
        self.note("SIGSTOP/SIGCONT redis")

    def sighup(self):
        self.consumer.signal(signal.SIGHUP)
        self.note("SIGHUP (rolling restart)")

    def restart_consumer(self):
        self.consumer.signal(signal.SIGTERM)
        try:
            self.consumer.wait(30)
        except Exception:
            self.consumer.proc.kill()
        self.consumer.stop()
        self.check_log(self.consumer)
        self.consumer = self.start_consumer()
        self.note("SIGTERM + restart consumer")

    FAULTS = ("kill_worker", "restart_redis", "maxmemory", "client_kill", "stall", "sighup",
              "restart_consumer")

    def check_log(self, c):
        log = c.log()
        for marker in ("Sanitizer", "runtime error:"):
            if marker in log:
                raise SystemExit("chaos: sanitizer report in the consumer log:\n" +
                                 log[log.index(marker) - 200:][:3000])

    # ---- the run ----

    def run(self):
        self.t0 = time.time()
        load = Load(self.redis.port, self.args.rate)
        th = threading.Thread(target=load.run, daemon=True)
        th.start()
        end = self.t0 + self.args.seconds
        print("chaos: %ds of load and faults" % self.args.seconds, flush=True)
        while time.time() < end:
            time.sleep(random.uniform(1.0, self.args.gap))   # a random gap between faults
            if time.time() >= end:
                break
            getattr(self, random.choice(self.FAULTS))()
            if self.consumer.proc.poll() is not None:
                raise SystemExit("chaos: the consumer exited (%s):\n%s"
                                 % (self.consumer.proc.returncode, self.consumer.log()[-3000:]))
        load.stop.set()
        th.join(30)
        return self.settle(load)

    def settle(self, load):
        r = self.client()
        r.config_set("maxmemory", "0")
        ids = list(load.jobs)
        deadline = time.time() + self.args.settle
        left = set(ids)
        while left and time.time() < deadline:
            p = r.pipeline(transaction=False)
            batch = list(left)
            for jid in batch:
                p.hget(k("result:" + jid), "state")
            for jid, st in zip(batch, p.execute()):
                if st in (b"done", b"dead"):
                    left.discard(jid)
            time.sleep(0.5)
        wrong, missing = [], sorted(left)
        p = r.pipeline(transaction=False)
        for jid in ids:
            p.hgetall(k("result:" + jid))
        counts = {"done": 0, "dead": 0}
        fail_attempts = fail_by_attempt = 0
        for jid, h in zip(ids, p.execute()):
            kind, want = load.jobs[jid]
            st = h.get(b"state")
            if st in (b"done", b"dead"):
                counts[st.decode()] += 1
            if jid not in left and st != want:
                wrong.append("%s (%s): %s %s" % (jid, kind, st, h.get(b"error")))
            if kind == "fail" and st == b"dead":
                # Its failed attempts, and whether the last one killed it
                # (else a worker killed under it used its last delivery).
                fail_attempts += int(h.get(b"attempts", b"0"))
                fail_by_attempt += h.get(b"error") == b"chaos says no"
        stats = {a.decode(): int(b) for a, b in r.hgetall(k("stats")).items()}
        by_kind = {}
        for kind, _ in load.jobs.values():
            by_kind[kind] = by_kind.get(kind, 0) + 1
        nfail = by_kind.get("fail", 0)
        ndone = len(ids) - nfail
        # Each outcome counted exactly once: every done job once in
        # processed; every failed attempt once in failed, all but the last
        # of each job in retried; every fail job once in dead. Fewer is a
        # lost outcome; more is an outcome written twice (a job run twice,
        # or a write repeated after a lost reply). Both fail.
        stat_problems = []
        for name, want in (("processed", ndone), ("dead", nfail), ("failed", fail_attempts),
                           ("retried", fail_attempts - fail_by_attempt)):
            got = stats.get(name, 0)
            if got != want:
                stat_problems.append("%s %d, want %d" % (name, got, want))
        self.check_log(self.consumer)
        print("chaos: faults injected: %d (%s)" % (sum(self.faults.values()),
              ", ".join("%s %d" % kv for kv in sorted(self.faults.items()))))
        print("chaos: jobs checked: %d (%s); done %d, dead %d; enqueue retries %d"
              % (len(ids), ", ".join("%s %d" % kv for kv in sorted(by_kind.items())),
                 counts["done"], counts["dead"], load.retries))
        print("chaos: lost (no final state): %d; wrong final state: %d" % (len(missing), len(wrong)))
        print("chaos: stats %s" % stats)
        for w in wrong[:20]:
            print("  wrong: " + w)
        for m in missing[:20]:
            print("  missing: " + m)
        for s in stat_problems:
            print("  stats: " + s)
        ok = not missing and not wrong and not stat_problems
        if self.args.keep_aof and not ok:
            # What Redis ran for the jobs that went wrong, from its AOF.
            sys.stdout.flush()
            story = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "aof_story.py"), self.tmp]
            subprocess.run(story)
            if missing or wrong:
                subprocess.run(story + [m.split()[0] for m in missing[:5] + wrong[:5]])
        print("chaos: %s" % ("PASS" if ok else "FAIL"))
        if not ok:
            print("chaos: replay with: make chaos CHAOS_SECONDS=%d CHAOS_ARGS='--seed %d%s'"
                  % (self.args.seconds, self.args.seed, " --keep-aof" if self.args.keep_aof else ""))
        return 0 if ok else 1

    def close(self):
        try:
            self.redis.proc.send_signal(signal.SIGCONT)
        except Exception:
            pass
        self.consumer.stop()
        self.redis.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("CHAOS_SECONDS", "60")))
    ap.add_argument("--rate", type=float, default=25.0, help="jobs enqueued per second")
    ap.add_argument("--gap", type=float, default=4.0, help="most seconds between faults")
    ap.add_argument("--maxmemory-seconds", type=float, default=8.0)
    ap.add_argument("--settle", type=float, default=180.0, help="seconds allowed to finish")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep-aof", action="store_true",
                    help="never rewrite Redis's append-only file, and on a failure tell from it "
                         "what Redis ran for the jobs concerned (tests/chaos/aof_story.py)")
    args = ap.parse_args()
    random.seed(args.seed)
    print("chaos: seed %d" % args.seed)
    tmp = tempfile.mkdtemp(prefix="jobq-chaos-")
    ch, rc = None, 1
    try:
        ch = Chaos(args, tmp)
        rc = ch.run()
    finally:
        if ch:
            ch.close()
        if rc == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("chaos: logs kept in %s" % tmp)
    sys.exit(rc)


if __name__ == "__main__":
    main()
