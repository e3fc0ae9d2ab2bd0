"""Reliability (issue 9): configuration errors fail fast, outages do not;
no password in any log. The Redis side is set up with python3-redis."""
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import threading
import time

import msgpack
import pytest

from conftest import (CONSUMER, Consumer, KeyEvents, RedisServer, errorstat, free_port, jobq,
                      scale, wait_for, wait_result, xadd)

SECRET = "s3cret-Pa55"


def url_with(redis_server, userinfo="", db=None):
    u = "redis://%s127.0.0.1:%d" % (userinfo + "@" if userinfo else "", redis_server.port)
    return u + ("/%d" % db if db is not None else "")


def start_consumer(url, tmpdir_path, *args, env=None):
    return Consumer(url, ["--workers", "1"] + list(args), tmpdir_path, env=env)


def exits_with(c, code, timeout=10):
    try:
        rc = c.proc.wait(scale(timeout))
    except subprocess.TimeoutExpired:
        c.stop()
        raise AssertionError("consumer still running after %ss; log:\n%s" % (timeout, c.log()))
    c.stop()
    assert rc == code, "exit %s, want %s; log:\n%s" % (rc, code, c.log())
    return c.log()


@pytest.fixture
def locked(redis_server, r):
    """The test's Redis with a password (requirepass) and an ACL user."""
    r.config_set("requirepass", SECRET)
    authed = redis_server.client(password=SECRET)
    authed.execute_command("ACL", "SETUSER", "alice", "on", ">" + SECRET, "~*", "&*", "+@all")
    yield authed


@pytest.mark.parametrize("userinfo,what", [
    (":wrong-" + SECRET, "WRONGPASS"),        # wrong password
    ("alice:wrong-" + SECRET, "WRONGPASS"),   # ACL user, wrong password
    ("", "NOAUTH"),                           # no password at all
])
def test_refused_credentials_exit_2_at_once(redis_server, locked, tmpdir_path, userinfo, what):
    c = start_consumer(url_with(redis_server, userinfo), tmpdir_path)
    log = exits_with(c, 2)
    assert what in log, log
    # One clear message, from the master; the workers it started meanwhile
    # say nothing of it and are stopped.
    assert len(re.findall(r"refused", log)) == 1, log
    assert re.search(r"master ERROR redis at \S+ refused our (AUTH|PING)", log), log
    assert SECRET not in log
    assert locked.xlen("jobq:{default}:stream") == 0


def test_invalid_database_exits_2(redis_server, r, tmpdir_path):
    c = start_consumer(url_with(redis_server, db=99999), tmpdir_path)
    log = exits_with(c, 2)
    assert re.search(r"refused our SELECT: .*DB index", log), log


def test_right_credentials_serve_and_are_never_logged(redis_server, locked, tmpdir_path, consumer):
    c = consumer(url=url_with(redis_server, "alice:" + SECRET))
    jid = xadd(locked, type="echo", enc="json", payload='{"a":1}')
    assert wait_result(locked, jid)["state"] == b"done"
    log = c.log()
    assert "alice:***@" in log, log   # the config line and the start line mask it
    assert SECRET not in log


def test_password_never_printed_by_help_or_a_bad_url(tmpdir_path):
    env = dict(os.environ, JOBQ_REDIS_URL="redis://:%s@127.0.0.1:1" % SECRET)
    out = subprocess.run([CONSUMER, "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and SECRET not in out.stdout + out.stderr
    out = subprocess.run([CONSUMER, "--redis", "redis://bob:%s@h:99999" % SECRET],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "bob:***@" in out.stderr and SECRET not in out.stdout + out.stderr, out.stderr


def test_redis_not_answering_at_start_is_waited_for(tmpdir_path):
    port = free_port()
    c = start_consumer("redis://127.0.0.1:%d" % port, tmpdir_path)
    try:
        # Each connection (master, fetch, write) met the outage...
        c.wait_log(r"connection: Connection refused; reconnecting", count=3)
        # ...and is still retrying some rounds later: a span with nothing
        # to see (refused connects leave no trace) is the point here.
        time.sleep(scale(1.5))
        assert c.proc.poll() is None, c.log()   # an outage: keep retrying
        srv = RedisServer.__new__(RedisServer)
        srv.dir, srv.aof, srv.port, srv.proc = tmpdir_path, False, port, None
        srv.start()
        try:
            c.wait_log(r"worker \S+ ready", timeout=15)
            jid = xadd(srv.client(), type="noop")
            assert wait_result(srv.client(), jid)["state"] == b"done"
        finally:
            c.stop()
            srv.kill()
    finally:
        c.stop()


def test_auth_refused_after_start_is_an_outage(redis_server, locked, tmpdir_path, consumer):
    c = consumer(url=url_with(redis_server, ":" + SECRET))
    # The password changes under the running consumer and its connections
    # are cut: it must keep retrying (not exit), logging it once.
    locked.config_set("requirepass", "other-" + SECRET)
    other = redis_server.client(password="other-" + SECRET)
    other.client_kill_filter(_type="normal", skipme=True)
    c.wait_log(r"refused: WRONGPASS", timeout=10)
    # Several backoff rounds: four refused AUTHs per connection (3) on average.
    wait_for(lambda: errorstat(other, "WRONGPASS") >= 12, what="12 refused AUTHs")
    assert c.proc.poll() is None, c.log()
    per_conn = re.findall(r"redis (\w+) connection: AUTH refused", c.log())
    assert len(per_conn) == len(set(per_conn)), c.log()   # once per connection and outage
    # Put right, the same consumer serves again without a restart.
    other.config_set("requirepass", SECRET)
    c.wait_log(r"connection: back up", timeout=10)
    jid = xadd(locked, type="noop")
    assert wait_result(locked, jid, timeout=15)["state"] == b"done"
    assert SECRET not in c.log()


# ---- a broken queue is isolated ----

def stats_json(redis_server):
    """`jobq stats --json`, its queues by name."""
    out = jobq("stats", "--json", redis_url=redis_server.url)
    assert out.returncode == 0, out.stderr
    return {q["queue"]: q for q in json.loads(out.stdout)["queues"]}


def test_broken_queue_is_isolated_and_served_again_when_fixed(r, redis_server, consumer):
    # Queue x's stream key holds a string (a foreign client's mistake).
    r.set("jobq:{x}:stream", "foo")
    published = KeyEvents(r, "jobq:{x}:broken")
    c = consumer("--queues", "x,default")
    ids = [xadd(r, type="noop") for _ in range(20)]
    for jid in ids:    # default is served as if nothing were wrong
        assert wait_result(r, jid, timeout=10)["state"] == b"done"
    # Broken, said once (not ten lines a second), and shown to any client.
    # Past one retry: each failed probe publishes the broken hash again,
    # after deciding whether to log.
    wait_for(lambda: published.count("hset") >= 2, timeout=10, what="a retry's probe")
    published.close()
    log = c.log()
    assert len(re.findall(r"queue x is broken: WRONGTYPE", log)) == 1, log
    assert len(re.findall(r"XREADGROUP", log)) == 0, log
    h = r.hgetall("jobq:{x}:broken")
    assert h[b"error"].startswith(b"WRONGTYPE"), h
    out = jobq("stats", redis_url=redis_server.url)
    assert out.returncode == 0, out.stderr
    assert re.search(r"queue x is BROKEN since .*: WRONGTYPE", out.stdout), out.stdout
    js = stats_json(redis_server)
    assert js["x"]["broken"]["error"].startswith("WRONGTYPE"), js["x"]
    assert js["x"]["broken"]["worker"] == h[b"worker"].decode()
    assert js["x"]["broken"]["since"] == int(h[b"since"])
    assert js["default"]["broken"] is None
    # Fixed by hand, with jobs enqueued before the worker sees it (no
    # group yet): the group is made from id 0 and they all run.
    r.delete("jobq:{x}:stream")
    xids = [xadd(r, queue="x", type="noop") for _ in range(5)]
    for jid in xids:
        assert wait_result(r, jid, queue="x", timeout=15)["state"] == b"done"
    c.wait_log(r"queue x: served again", timeout=10)
    assert not r.exists("jobq:{x}:broken")
    assert "BROKEN" not in jobq("stats", redis_url=redis_server.url).stdout
    assert stats_json(redis_server)["x"]["broken"] is None


def test_deleted_group_is_made_again_from_zero(r, consumer):
    c = consumer("--queues", "x,default")
    first = xadd(r, queue="x", type="noop")
    assert wait_result(r, first, queue="x")["state"] == b"done"
    # The group deleted under the worker, and jobs added before it notices.
    r.xgroup_destroy("jobq:{x}:stream", "workers")
    xids = [xadd(r, queue="x", type="noop") for _ in range(5)]
    ids = [xadd(r, type="noop") for _ in range(5)]
    for jid in xids:
        assert wait_result(r, jid, queue="x", timeout=15)["state"] == b"done"
    for jid in ids:
        assert wait_result(r, jid, timeout=15)["state"] == b"done"
    c.wait_log(r"queue x: its stream or group was gone; made again from id 0")


# ---- refused writes are held, not dropped ----

def test_refused_writes_are_held_not_dropped(r, consumer):
    c = consumer("--visibility-ms", "3000")
    n = 60
    ids = [xadd(r, type="sleep", payload={"ms": 1500}, max_attempts="1") for _ in range(n)]
    wait_for(lambda: r.xpending("jobq:{default}:stream", "workers")["pending"] == n,
             what="every job taken")
    # Redis full while they run: every outcome write is refused (OOM ->
    # EXECABORT) for five seconds, longer than the visibility timeout.
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", "1")
    try:
        c.wait_log(r"redis refuses our writes \(EXECABORT", timeout=10)
        time.sleep(scale(5))   # the span is the point: longer than visibility-ms
    finally:
        r.config_set("maxmemory", "0")
    # Every job done once: attempts 1, counted once, none "worker lost".
    for jid in ids:
        res = wait_result(r, jid, timeout=30)
        assert res["state"] == b"done" and res["attempts"] == b"1", res
    stats = r.hgetall("jobq:{default}:stats")
    assert int(stats[b"processed"]) == n and b"dead" not in stats, stats
    assert r.zcard("jobq:{default}:dead") == 0
    c.wait_log(r"redis takes our writes again")
    log = c.log()
    assert len(re.findall(r"redis refuses our writes", log)) == 1, log
    assert len(re.findall(r"takes our writes again", log)) == 1, log
    assert "worker lost" not in log and "reclaimed entry" not in log, log


# ---- found by fuzzing ----

def test_payload_announcing_a_huge_array_is_refused_without_allocating(r, consumer):
    # Five bytes announcing 2^31 elements: msgpack-c would reserve ~48 GiB
    # for them before reading any (under ASan, `make check`, that aborts
    # the worker). Checked first, it is dead-lettered as truncated.
    c = consumer()
    pids = c.worker_pids()
    for i, p in enumerate([b"\xdd\x7f\xff\xff\xff", b"\xdf\x7f\xff\xff\xff", b"\x91\xdd\x10\x00\x00\x00"]):
        jid = xadd(r, type="echo", payload=p, id="huge-%d" % i)
        res = wait_result(r, jid)
        assert res["state"] == b"dead", res
        assert res["error"].startswith(b"payload is not valid msgpack: truncated"), res
    assert c.worker_pids() == pids, c.log()


# ---- a queue paused before the worker started ----

def test_queue_paused_before_start_gives_no_job(r, consumer):
    # Paused and filled by a foreign client before any worker runs: the
    # first read must wait for the pause state, not take a job meanwhile.
    r.set("jobq:{default}:paused", 1)
    ids = [xadd(r, type="noop") for _ in range(5)]
    c = consumer("--workers", "2")
    c.wait_log(r"queue default paused", count=2)
    # Nothing happening is the point: ten pause checks later, nothing taken.
    time.sleep(scale(1))
    assert r.xpending("jobq:{default}:stream", "workers")["pending"] == 0
    assert not any(r.exists("jobq:{default}:result:" + j) for j in ids)
    r.delete("jobq:{default}:paused")
    for jid in ids:
        assert wait_result(r, jid)["state"] == b"done"


def test_chunked_payload_announcing_a_huge_count_is_refused_without_allocating(r, consumer):
    # The same headers, written by a foreign client as a chunk list
    # (PROTOCOL §1), split inside the header and padded over several
    # chunks: checked whole before msgpack-c's streaming unpacker sees a
    # byte, as an inline payload is.
    c = consumer()
    pids = c.worker_pids()
    bodies = [b"\xdd\x7f\xff\xff\xff" + b"\x00" * 3000, b"\xdf\x7f\xff\xff\xff" + b"\x01" * 10,
              b"\x91\xdd\x10\x00\x00\x00" + b"\xc0" * 2000]
    for i, body in enumerate(bodies):
        jid = "huge-chunked-%d" % i
        pieces = [body[:2]] + [body[o:o + 1024] for o in range(2, len(body), 1024)]
        p = r.pipeline(transaction=True)
        p.rpush("jobq:{default}:payload:" + jid, *pieces)
        p.xadd("jobq:{default}:stream", {"type": "echo", "id": jid, "chunks": len(pieces),
                                         "size": len(body)})
        p.execute()
        res = wait_result(r, jid)
        assert res["state"] == b"dead" and res["attempts"] == b"0", res
        assert res["error"] == b"payload is not valid msgpack: truncated at byte %d of %d" % (
            0 if i < 2 else 1, len(body)), res
    assert c.worker_pids() == pids, c.log()


# ---- an EXEC whose reply is lost ----

class ExecCutter(threading.Thread):
    """A TCP proxy between a consumer and Redis. The first transaction
    that acks an entry (a MULTI whose outcome script, or a command in it,
    says XACK) goes through up to its EXEC; the proxy then waits until Redis has run it (the entries
    it acks are no longer pending), drops Redis's answer and closes both
    sides. So the EXEC ran and the worker never learns it. Everything
    else, before and after, is passed through."""

    EXEC = b"*1\r\n$4\r\nEXEC\r\n"

    def __init__(self, redis_port, r):
        super().__init__(daemon=True)
        self.redis_port = redis_port
        self.r = r
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.peer = {}
        self.seen = {}          # client socket -> its bytes since the last EXEC
        self.cut = False
        self.stopping = False

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def close_pair(self, s):
        p = self.peer.pop(s, None)
        for x in (s, p):
            if x is None:
                continue
            self.peer.pop(x, None)
            self.seen.pop(x, None)
            try:
                self.sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def from_client(self, c, data):
        buf = self.seen.get(c, b"") + data
        i = buf.find(b"XACK")    # the outcome script's, or a command's
        j = buf.find(self.EXEC, i) if i >= 0 else -1
        if self.cut or j < 0:
            self.peer[c].sendall(data)
            self.seen[c] = b"" if self.cut else buf[-65536:]
            return
        # Up to the end of that EXEC, not a byte more. Said first: the test
        # may see the outcome in Redis before this thread runs again.
        self.cut = True
        end = j + len(self.EXEC)
        self.peer[c].sendall(data[:len(data) - (len(buf) - end)])
        try:
            wait_for(lambda: not self.r.xpending("jobq:{default}:stream", "workers")["pending"],
                     interval=0.01, what="the outcome's XACK")
        except AssertionError:
            pass    # cut all the same: the test then fails on what it finds
        self.close_pair(c)

    def run(self):
        while not self.stopping:
            for key, _ in self.sel.select(0.1):
                s = key.fileobj
                if s is self.lsock:
                    c, _ = self.lsock.accept()
                    u = socket.create_connection(("127.0.0.1", self.redis_port))
                    self.peer[c], self.peer[u] = u, c
                    self.sel.register(c, selectors.EVENT_READ, "client")
                    self.sel.register(u, selectors.EVENT_READ, "redis")
                    continue
                if s not in self.peer:
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.close_pair(s)
                elif key.data == "client":
                    self.from_client(s, data)
                else:
                    self.peer[s].sendall(data)

    def stop(self):
        self.stopping = True
        self.join(5)
        for s in list(self.peer):
            self.close_pair(s)
        self.lsock.close()


def test_lost_exec_reply_is_written_once(r, redis_server, consumer):
    # The outcome's EXEC runs in Redis, and the connection dies before the
    # worker reads the reply. Once reconnected, the worker must see that
    # the outcome was written (its entry is acked) and not write it again:
    # done once, attempts 1, counted once.
    cutter = ExecCutter(redis_server.port, r)
    cutter.start()
    c = None
    try:
        c = consumer(url=cutter.url)
        jid = xadd(r, type="sleep", payload={"ms": 50}, id="cut-1", notify="1")
        # Popped here and only here: wait_result may return on the result
        # hash before its next BLPOP, which would leave the one push behind.
        assert r.blpop(["jobq:{default}:notify:cut-1"], timeout=scale(10)), "cut-1 not done"
        res = {k.decode(): v for k, v in r.hgetall("jobq:{default}:result:cut-1").items()}
        assert cutter.cut, "no outcome EXEC went through the proxy"
        assert res["state"] == b"done" and res["attempts"] == b"1", res
        c.wait_log(r"redis write connection: back up")
        # A later job goes through the new connection: by then the checked
        # outcome of cut-1 would have been written again, if at all.
        after = xadd(r, type="noop", id="after-1")
        assert wait_result(r, after)["state"] == b"done"
        assert r.llen("jobq:{default}:notify:cut-1") == 0    # popped once, pushed once
        stats = r.hgetall("jobq:{default}:stats")
        assert int(stats[b"processed"]) == 2, stats
        assert r.hget("jobq:{default}:result:cut-1", "attempts") == b"1"
        assert r.xpending("jobq:{default}:stream", "workers")["pending"] == 0
    finally:
        if c:
            c.stop()    # while the proxy still runs: a drain may need Redis
        cutter.stop()


def test_drain_cut_short_while_writes_are_refused_leaves_the_job_pending(r, consumer):
    # A worker told to stop while Redis refuses its outcome waits out its
    # shutdown timeout, then exits: the outcome unwritten, its memory
    # freed (under `make check` LeakSanitizer would say otherwise), the
    # entry still pending, to run once more on the next consumer.
    c = consumer("--shutdown-timeout-ms", "1000")
    jid = xadd(r, type="sleep", payload={"ms": 300}, max_attempts="3", id="held-1")
    wait_for(lambda: r.xpending("jobq:{default}:stream", "workers")["pending"] == 1,
             what="the job taken")
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", "1")
    try:
        c.wait_log(r"redis refuses our writes")
        c.signal(signal.SIGTERM)
        c.wait(30)
        assert "exiting with 1 finished jobs whose outcomes redis did not take" in c.log(), c.log()
        assert r.xpending("jobq:{default}:stream", "workers")["pending"] == 1
    finally:
        r.config_set("maxmemory", "0")
    consumer()
    res = wait_result(r, jid)
    assert res["state"] == b"done" and res["attempts"] == b"1", res
    assert r.hget("jobq:{default}:stats", "processed") == b"1"


def test_lost_read_reply_on_the_fetch_connection_alone_runs_at_once(r, consumer):
    # Redis delivers the entry to the blocking read, then closes that one
    # connection (its reply is over the output-buffer limit) while the
    # write connection stays up. The entry is pending to the worker and in
    # none of its lists: it must run soon after the fetch connection is
    # back, its delivery not counted, not after the visibility timeout as
    # "worker lost" (max_attempts 1: dead without running).
    # The limit counts a reply's allocated blocks: a small deferred-length
    # reply (XPENDING) takes about 20 KB, so 40 KB spares the write
    # connection and this client; the 128 KiB entry is over it.
    c = consumer("--visibility-ms", "60000")
    r.config_set("client-output-buffer-limit", "normal 40000 0 0")
    try:
        jid = xadd(r, type="echo", payload=msgpack.packb("x" * 131072), max_attempts="1",
                   id="lost-read-1")
        wait_for(lambda: r.xpending("jobq:{default}:stream", "workers")["pending"] == 1,
                 timeout=10, interval=0.002, what="the entry delivered")
    finally:
        r.config_set("client-output-buffer-limit", "normal 0 0 0")
    res = wait_result(r, jid, timeout=15)
    assert res["state"] == b"done" and res["attempts"] == b"1", res
    c.wait_log(r"recovered entry \S+ of queue default, delivered to us by a read whose reply "
               r"was lost")
    assert "redis fetch connection: Server closed" in c.log()
    assert "redis write connection: Server closed" not in c.log()    # the fetch one alone
    assert r.xpending("jobq:{default}:stream", "workers")["pending"] == 0
