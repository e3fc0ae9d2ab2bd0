"""Sentinel (issue 23): a consumer and the jobq command given
redis+sentinel://S1,S2,S3/mymaster follow the master through a failover.

One master, one replica, three sentinels, all on loopback ports of the
test's own (sentinel_util.py). A steady load of mixed jobs goes in through
Sentinel with python3-redis (redis.sentinel.Sentinel.master_for) and with
bin/jobq; the master is SIGKILLed; every job the producers saw replicated
must end as its type says, on the new master, and the consumer's time
without a master (from the kill to the first job done on the new master)
is printed. Redis replicates asynchronously: a write the master took but
had not replicated when killed is Redis's loss, not ours, so a producer
counts a job as enqueued only once WAIT says a replica has it. A planned
switchover (SENTINEL FAILOVER) kills nothing: there the consumer must
leave the old master on +switch-master, before it is made a replica.
"""
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

import msgpack
import pytest
import redis as redislib
from redis.sentinel import Sentinel

from conftest import (CONSUMER, JOBQ, SANITIZER_MARKERS, Consumer, free_port, scale,
                      sha256_rounds, wait_for)
from sentinel_util import SentinelSetup

STREAM = "jobq:{default}:stream"


def result_key(jid):
    return "jobq:{default}:result:" + jid


def stop(c):
    """Stops consumer c; under `make check` a sanitizer report in its log
    fails the test, as conftest's consumer fixture does."""
    c.stop()
    log = c.log()
    for marker in SANITIZER_MARKERS:
        assert marker not in log, log[max(0, log.index(marker) - 200):][:3000]


@pytest.fixture
def setup(tmpdir_path):
    s = SentinelSetup(tmpdir_path)
    yield s
    s.stop()


class Load:
    """Enqueues jobs of each kind in turn, through Sentinel, until stopped.
    Each enqueued job is kept with what its result must be: certain once
    WAIT saw it on a replica, else (the master died under it) unsure."""

    KINDS = ("noop", "sha256", "echo", "sleep", "fail")

    def __init__(self, setup):
        self.sentinel = Sentinel([("127.0.0.1", s.port) for s in setup.sentinels],
                                 socket_timeout=1)
        self.jobs = {}       # id -> (kind, expected)
        self.unsure = set()  # enqueued, not seen replicated
        self.enqueued_ms = []  # (id's ms) of each job
        self.stop = threading.Event()
        self.n = 0
        self.killed_ms = None  # set once the old master is dead
        self.thread = threading.Thread(target=self.run, daemon=True)

    def master(self):
        return self.sentinel.master_for("mymaster", socket_timeout=1)

    def fields(self, kind, n):
        if kind == "sha256":
            data = "job-%d" % n
            return {"type": "sha256", "payload": msgpack.packb({"data": data, "rounds": 50})}, \
                sha256_rounds(data.encode(), 50)
        if kind == "echo":
            payload = {"n": n}
            return {"type": "echo", "payload": msgpack.packb(payload)}, payload
        if kind == "sleep":
            return {"type": "sleep", "payload": msgpack.packb({"ms": 30})}, None
        if kind == "fail":
            return {"type": "fail", "max_attempts": "1"}, None
        return {"type": "noop"}, None

    def run(self):
        m = self.master()
        while not self.stop.is_set():
            kind = self.KINDS[self.n % len(self.KINDS)]
            f, expected = self.fields(kind, self.n)
            try:
                jid = m.xadd(STREAM, f).decode()
            except redislib.exceptions.RedisError:
                time.sleep(0.05)  # no master yet: Sentinel is failing over
                m = self.master()
                continue
            self.n += 1
            self.jobs[jid] = (kind, expected)
            self.replicated(jid, m)
            time.sleep(0.01)

    def replicated(self, jid, m):
        """Whether jid, just enqueued on m, survives the master's death: on
        a replica (WAIT), or enqueued after the old master was gone (the
        new one has no replica, and is not killed)."""
        if self.killed_ms is not None and int(jid.split("-")[0]) > self.killed_ms:
            return
        try:
            if m.execute_command("WAIT", 1, 1000) < 1:
                self.unsure.add(jid)
        except redislib.exceptions.RedisError:
            self.unsure.add(jid)


class FollowingLoad(Load):
    """Load, asking a sentinel before each job where the master is: a
    producer that follows a switchover at once (python's pooled connection
    would stay on the old master, which takes writes until the sentinels
    make it a replica). port_of[id] is the master each job went to; jobs
    on new_port once it is set need no WAIT (the new master has no
    replica yet; it is not killed)."""

    def __init__(self, setup):
        super().__init__(setup)
        self.port_of = {}
        self.new_port = None

    def run(self):
        addr, m = None, None
        while not self.stop.is_set():
            try:
                now = self.sentinel.discover_master("mymaster")
                if now != addr:
                    addr, m = now, redislib.Redis(host=now[0], port=now[1], socket_timeout=1)
                kind = self.KINDS[self.n % len(self.KINDS)]
                f, expected = self.fields(kind, self.n)
                jid = m.xadd(STREAM, f).decode()
            except redislib.exceptions.RedisError:
                time.sleep(0.05)
                addr = None
                continue
            self.n += 1
            self.jobs[jid] = (kind, expected)
            self.port_of[jid] = addr[1]
            if addr[1] != self.new_port:
                self.replicated(jid, m)
            time.sleep(0.01)


class CliLoad(threading.Thread):
    """Enqueues echo jobs with bin/jobq given the sentinel URL; a run that
    fails (no master yet) is tried again. A job counts once a write on the
    same master after it was replicated (WAIT), as for Load."""

    def __init__(self, setup, load):
        super().__init__(daemon=True)
        self.setup, self.load = setup, load
        self.stop = threading.Event()
        self.failed_runs = 0

    def run(self):
        n = 0
        while not self.stop.is_set():
            payload = '{"cli":%d}' % n
            before = self.setup.master_port()
            out = subprocess.run([JOBQ, "--redis", self.setup.url(), "enqueue", "echo", payload],
                                 capture_output=True, text=True, timeout=scale(30))
            if out.returncode != 0:
                self.failed_runs += 1
                time.sleep(0.1)
                continue
            jid = out.stdout.strip()
            n += 1
            self.load.jobs[jid] = ("echo", {"cli": n - 1})
            if self.setup.master_port() != before:
                self.load.unsure.add(jid)
            else:
                try:
                    m = redislib.Redis(port=before, socket_timeout=1)
                    m.set("test:fence", jid)
                    self.load.replicated(jid, m)
                except redislib.exceptions.RedisError:
                    self.load.unsure.add(jid)
            time.sleep(0.1)


def check_result(jid, kind, expected, h):
    state = h.get(b"state")
    if kind == "fail":
        assert state == b"dead", (jid, h)
        return
    assert state == b"done", (jid, kind, h)
    if expected is not None:
        assert msgpack.unpackb(h[b"result"], raw=False) == expected, (jid, kind, h)


def done_count(m, jobs):
    p = m.pipeline(transaction=False)
    for jid in jobs:
        p.hget(result_key(jid), "state")
    return sum(1 for s in p.execute() if s in (b"done", b"dead"))


def test_master_killed_every_job_ends_on_the_new_master(setup, tmpdir_path):
    c = Consumer(setup.url(), ["--workers", "2"], tmpdir_path)
    try:
        c.wait_log(r"all 2 workers serving", timeout=20)
        load = Load(setup)
        cli = CliLoad(setup, load)
        load.thread.start()
        cli.start()
        # A steady state first: jobs of every kind done through Sentinel.
        wait_for(lambda: done_count(setup.master.client(), list(load.jobs)) >= 100, timeout=30,
                 what="100 jobs done before the kill")
        old = setup.master
        kill_ms = int(time.time() * 1000)
        old.kill(signal.SIGKILL)
        load.killed_ms = int(time.time() * 1000)
        # The sentinels promote the replica (down-after 1 s, then a vote).
        new_port = wait_for(lambda: setup.master_port() != old.port and setup.master_port(),
                            timeout=30, what="the sentinels to promote the replica")
        new = setup.server(new_port).client()
        after = lambda: [j for j in list(load.jobs) if int(j.split("-")[0]) > kill_ms]
        # Jobs enqueued on the new master, and done there by the consumer.
        wait_for(lambda: done_count(new, after()) >= 50, timeout=30,
                 what=lambda: "50 jobs done on the new master; log:\n" + c.log()[-3000:])
        load.stop.set()
        cli.stop.set()
        load.thread.join(scale(10))
        cli.join(scale(40))
        certain = {j: v for j, v in load.jobs.items() if j not in load.unsure}
        wait_for(lambda: done_count(new, certain) == len(certain), timeout=30,
                 what=lambda: "every job to end: %d of %d" % (done_count(new, certain),
                                                             len(certain)))
        p = new.pipeline(transaction=False)
        for jid in certain:
            p.hgetall(result_key(jid))
        results = p.execute()
        kinds = {}
        for (jid, (kind, expected)), h in zip(certain.items(), results):
            check_result(jid, kind, expected, h)
            kinds[kind] = kinds.get(kind, 0) + 1
        assert set(kinds) == set(Load.KINDS), kinds
        # The consumer's gap: from the kill to the first job it finished
        # that was enqueued on the new master.
        firsts = [int(new.hget(result_key(j), "finished_at")) for j in after() if j in certain]
        promoted_ms = min(int(j.split("-")[0]) for j in after()) - kill_ms
        gap_ms = min(firsts) - kill_ms
        print("\nsentinel failover: %d jobs (%d by jobq, %d unsure), kinds %s; new master "
              "took writes %d ms after the kill, the consumer's first job done there at %d ms"
              % (len(certain), sum(1 for v in certain.values() if isinstance(v[1], dict)
                                   and "cli" in v[1]), len(load.unsure), kinds, promoted_ms,
                 gap_ms))
        log = c.log()
        # Every connection (the master's, each worker's two) followed.
        assert len(re.findall(r"names 127\.0\.0\.1:%d master mymaster \(was" % new_port,
                              log)) == 5, log
    finally:
        stop(c)


def old_master_work(r):
    """What the consumer did on server r so far: the group's deliveries
    and pending entries, and the calls of the commands only it sends."""
    g = {x["name"]: x for x in r.xinfo_groups(STREAM)}[b"workers"]
    stats = r.info("commandstats")
    calls = {k: stats.get("cmdstat_" + k, {}).get("calls", 0)
             for k in ("xack", "xreadgroup", "exec", "evalsha", "xautoclaim", "xclaim")}
    return g["last-delivered-id"], g["pending"], calls


def test_switchover_moves_every_connection_before_the_old_master_is_demoted(setup, tmpdir_path):
    """SENTINEL FAILOVER (a planned switchover) kills nothing: the old
    master stays up, says role:master and takes writes until the sentinels
    make it a replica, some seconds after +switch-master. The consumer
    follows the announcement: from the logged switch on, the old master
    sees no read, ack or write of ours, and every job ends as its type
    says on the new one."""
    mport = free_port()
    c = Consumer(setup.url(), ["--workers", "2", "--visibility-ms", "3000", "--metrics-addr",
                               "127.0.0.1:%d" % mport], tmpdir_path)
    scrape = lambda: urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport,
                                            timeout=scale(10)).read()
    client_ids = lambda: {l.split()[0] for l in
                          oldc.execute_command("CLIENT", "LIST").decode().splitlines()}
    try:
        c.wait_log(r"all 2 workers serving", timeout=20)
        old = setup.master
        oldc = old.client()
        # /metrics reads through libjobq on a connection of its own, made
        # at the first scrape: only reads, which a demoted master answers.
        ids = client_ids()
        scrape()
        metrics_ids = client_ids() - ids
        assert metrics_ids
        load = FollowingLoad(setup)
        load.thread.start()
        wait_for(lambda: done_count(oldc, list(load.jobs)) >= 100, timeout=30,
                 what="100 jobs done before the switchover")
        new_port = setup.replicas[0].port
        t0 = int(time.time() * 1000)
        setup.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", "mymaster")
        # The sentinels' word, not the consumer's log: without the
        # subscription the consumer stays on the old master (it fails here).
        wait_for(lambda: setup.master_port() == new_port, timeout=20,
                 what="the sentinels to switch the master")
        switch_ms = int(time.time() * 1000)
        load.new_port = new_port
        # The consumer follows within about a second; commands in flight
        # at the switch may still land; then nothing.
        time.sleep(1)
        c.wait_log(r"\+switch-master mymaster from 127\.0\.0\.1:%d to 127\.0\.0\.1:%d"
                   % (old.port, new_port), timeout=1)
        before = old_master_work(oldc)
        time.sleep(2)
        assert old.role() == "master", "the old master was demoted too soon for this check"
        assert old_master_work(oldc) == before, (before, old_master_work(oldc), c.log()[-3000:])
        # libjobq asks the sentinels again every 5 s: the next scrape after
        # that leaves the old master, still up and answering reads.
        time.sleep(max(0, switch_ms / 1000.0 + 5.3 - time.time()))
        scrape()
        assert old.role() == "master", "the old master was demoted too soon for this check"
        assert not metrics_ids & client_ids(), oldc.execute_command("CLIENT", "LIST")
        new = setup.server(new_port).client()
        on_new = lambda: [j for j, p in list(load.port_of.items()) if p == new_port]
        wait_for(lambda: done_count(new, on_new()) >= 50, timeout=30,
                 what=lambda: "50 jobs done on the new master; log:\n" + c.log()[-3000:])
        load.stop.set()
        load.thread.join(scale(10))
        certain = {j: v for j, v in load.jobs.items() if j not in load.unsure}
        wait_for(lambda: done_count(new, certain) == len(certain), timeout=20,
                 what=lambda: "every job to end: %d of %d; log:\n%s"
                 % (done_count(new, certain), len(certain), c.log()[-3000:]))
        p = new.pipeline(transaction=False)
        for jid in certain:
            p.hgetall(result_key(jid))
        kinds = {}
        for (jid, (kind, expected)), h in zip(certain.items(), p.execute()):
            check_result(jid, kind, expected, h)
            kinds[kind] = kinds.get(kind, 0) + 1
        assert set(kinds) == set(Load.KINDS), kinds
        firsts = [int(new.hget(result_key(j), "finished_at")) for j in on_new()]
        first_in = min(int(j.split("-")[0]) for j in on_new())
        print("\nsentinel switchover: %d jobs (%d unsure), kinds %s; sentinels switched %d ms "
              "after SENTINEL FAILOVER, first job enqueued on the new master at %d ms, the consumer's "
              "first job done there at %d ms (gap %d ms)"
              % (len(certain), len(load.unsure), kinds, switch_ms - t0, first_in - t0,
                 min(firsts) - t0, min(firsts) - first_in))
        log = c.log()
        # The consumer's own part: from the announcement, logged, to the
        # last of its connections up on the new master.
        stamps = [(m.group(1), m.group(2)) for m in re.finditer(
            r"^(\S+Z) .*?(\+switch-master|connection: back up)", log, re.M)]
        at = next(i for i, (_, w) in enumerate(stamps) if w == "+switch-master")
        ms = lambda ts: time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 \
            + int(ts[20:23])
        ups = [ts for ts, w in stamps[at + 1:] if w != "+switch-master"]
        assert len(ups) >= 5, log
        print("the consumer's connections all on the new master %d ms after +switch-master"
              % (ms(ups[4]) - ms(stamps[at][0])))
        # Every connection (the master's, each worker's two) moved once.
        assert len(re.findall(r"names 127\.0\.0\.1:%d master mymaster \(was" % new_port,
                              log)) == 5, log
    finally:
        stop(c)


def test_demoted_master_answering_readonly_is_left_for_the_new_one(tmpdir_path):
    """A master demoted while it keeps our connections (REPLICAOF by hand:
    Sentinel's own failover kills its clients) answers READONLY: the
    consumer drops the connection, asks the sentinel again and writes the
    outcomes it held to the new master."""
    s = SentinelSetup(tmpdir_path, name="solo", sentinels=1, down_after_ms=60000)
    try:
        old, rep = s.master, s.replicas[0]
        c = Consumer(s.url(), ["--workers", "1"], tmpdir_path)
        try:
            c.wait_log(r"all 1 workers serving", timeout=20)
            m = old.client()
            ids = [m.xadd(STREAM, {"type": "sleep", "payload": msgpack.packb({"ms": 1000})})
                   .decode() for _ in range(3)]
            wait_for(lambda: m.xpending(STREAM, "workers")["pending"] == 3, what="jobs running")
            wait_for(lambda: m.execute_command("WAIT", 1, 1000) >= 1, what="replica in sync")
            # The sentinel forgets the old master before the switch, so that
            # it does not turn the new one back into a replica.
            sen = s.sentinels[0].client()
            sen.execute_command("SENTINEL", "REMOVE", "solo")
            rep.client().replicaof("NO", "ONE")
            m.replicaof("127.0.0.1", rep.port)
            sen.execute_command("SENTINEL", "MONITOR", "solo", "127.0.0.1", rep.port, 1)
            new = rep.client()
            for jid in ids:
                wait_for(lambda: new.hget(result_key(jid), "state") == b"done", timeout=20,
                         what=lambda: "%s written on the new master; log:\n%s" % (jid, c.log()))
            jid = new.xadd(STREAM, {"type": "noop"}).decode()
            wait_for(lambda: new.hget(result_key(jid), "state") == b"done", timeout=10,
                     what="a job enqueued on the new master")
            log = c.log()
            assert re.search(r"127\.0\.0\.1:%d answered READONLY \(no longer the master\)"
                             % old.port, log), log
            # The blocked read too: Redis 7 ends it with UNBLOCKED (or the
            # next read is refused so).
            assert re.search(r"redis fetch connection: 127\.0\.0\.1:%d answered "
                             r"(UNBLOCKED|READONLY) \(no longer the master\)" % old.port, log), log
            assert "names 127.0.0.1:%d master solo (was" % rep.port in log, log
        finally:
            stop(c)
    finally:
        s.stop()


def test_bad_urls_and_unknown_master_exit_2_with_the_reason(setup, tmpdir_path):
    hosts = ",".join("127.0.0.1:%d" % x.port for x in setup.sentinels)
    for url, why in [
        ("redis+sentinel://%s" % hosts, "master name missing"),
        ("redis+sentinel://%s,/mymaster" % hosts, "host is missing"),
        ("redis+sentinel://:pw@h:0/mymaster?sentinel_password=spw", "port '0'"),
    ]:
        for cmd in ([CONSUMER, "--redis", url], [JOBQ, "--redis", url, "stats"]):
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=scale(10))
            assert out.returncode == 2 and why in out.stderr, (cmd, out.stderr)
            assert "pw" not in out.stderr.replace("sentinel_password", ""), out.stderr
    # Every sentinel answers that it knows no such master: a configuration
    # error, said once by the master process, which exits 2 at start.
    wrong = "redis+sentinel://%s/nosuch" % hosts
    out = subprocess.run([CONSUMER, "--redis", wrong, "--workers", "1"], capture_output=True,
                         text=True, timeout=scale(30))
    assert out.returncode == 2, out.stdout + out.stderr
    assert re.search(r"refused our SENTINEL: .*knows no master named 'nosuch'.*check the master "
                     r"name", out.stdout + out.stderr), out.stdout + out.stderr
    out = subprocess.run([JOBQ, "--redis", wrong, "stats"], capture_output=True, text=True)
    assert out.returncode == 3 and "knows no master named 'nosuch'" in out.stderr, out.stderr


def test_no_sentinel_answering_is_an_outage_waited_for(setup, tmpdir_path):
    """Sentinels that do not answer are an outage, as an unreachable Redis
    is: one line per connection naming each sentinel, retried until one
    answers."""
    dead = "redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster"
    c = Consumer(dead, ["--workers", "1"], tmpdir_path)
    try:
        c.wait_log(r"redis master connection: 127\.0\.0\.1:1: Connection refused; "
                   r"127\.0\.0\.1:2: Connection refused; reconnecting", timeout=10)
        assert c.proc.poll() is None
    finally:
        stop(c)
    out = subprocess.run([JOBQ, "--redis", dead, "stats"], capture_output=True, text=True)
    assert out.returncode == 3 and "no sentinel named the master" in out.stderr, out.stderr


def test_tls_to_the_sentinels_and_the_master(tmpdir_path):
    """rediss+sentinel://: the sentinels and the servers speak TLS only
    (throw-away CA, test_tls.py's helpers); the consumer and jobq ask the
    sentinel and reach the master over TLS, and follow a failover."""
    from test_tls import make_ca, make_cert
    pki = os.path.join(tmpdir_path, "pki")
    os.makedirs(pki)
    make_ca(pki, "ca")
    make_cert(pki, "server", "ca")
    tls = {k: os.path.join(pki, f) for k, f in
           (("ca", "ca.crt"), ("cert", "server.crt"), ("key", "server.key"))}
    s = SentinelSetup(os.path.join(tmpdir_path, "redis"), sentinels=1, quorum=1, tls=tls)
    try:
        url = s.url()
        assert url.startswith("rediss+sentinel://")
        c = Consumer(url, ["--workers", "1", "--redis-tls-ca", tls["ca"]], tmpdir_path)
        try:
            c.wait_log(r"all 1 workers serving", timeout=20)
            out = subprocess.run([JOBQ, "--redis", url, "--redis-tls-ca", tls["ca"], "enqueue",
                                  "echo", '{"over":"tls"}', "--wait"],
                                 capture_output=True, text=True, timeout=scale(30))
            assert out.returncode == 0 and '"state":"done"' in out.stdout, out.stdout + out.stderr
            old = s.master
            old.kill(signal.SIGKILL)
            new_port = wait_for(lambda: s.master_port() != old.port and s.master_port(),
                                timeout=30, what="the sentinel to promote the replica")
            new = s.server(new_port).client()
            jid = new.xadd(STREAM, {"type": "noop"}).decode()
            wait_for(lambda: new.hget(result_key(jid), "state") == b"done", timeout=20,
                     what=lambda: "a job done on the new master; log:\n" + c.log())
            assert "names 127.0.0.1:%d master mymaster (was" % new_port in c.log()
        finally:
            stop(c)
    finally:
        s.stop()
