"""Shared fixtures of the integration suite.

Every test gets its own throwaway redis-server on a free loopback port
(stopped by its pid afterwards, as hiredis' `make check` does) and drives the
real binaries in JQ_BIN_DIR (bin/ by default, build/san/bin under `make
check`). Enqueueing is done with clients that are not ours -- Debian's
python3-redis and redis-cli -- as well as with bin/jobq.
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import msgpack
import pytest
import redis as redislib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("JQ_BIN_DIR", os.path.join(ROOT, "bin"))
CONSUMER = os.path.join(BIN, "jobq-consumer")
JOBQ = os.path.join(BIN, "jobq")
SAN = "/san/" in BIN
SANITIZER_MARKERS = ("Sanitizer", "runtime error:")  # any ASan/LSan/UBSan report


def scale(seconds):
    return seconds * (3 if SAN else 1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RedisServer:
    """A redis-server of the test's own. `aof=True` turns on the append-only
    file with fsync on every write, for crash-and-restart tests."""

    def __init__(self, tmpdir, aof=False):
        self.dir = tmpdir
        self.aof = aof
        self.port = free_port()
        self.proc = None
        self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log")]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if redislib.Redis(port=self.port).ping():
                    return
            except redislib.exceptions.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start on port %d" % self.port)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def client(self, **kw):
        return redislib.Redis(port=self.port, **kw)

    def cli(self, *args, input=None):
        """Runs redis-cli against this server; returns stdout as text."""
        out = subprocess.run(["redis-cli", "-p", str(self.port)] + [str(a) for a in args],
                             input=input, capture_output=True, check=True)
        return out.stdout.decode()


@pytest.fixture
def tmpdir_path():
    d = tempfile.mkdtemp(prefix="jobq-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def redis_server(tmpdir_path):
    srv = RedisServer(tmpdir_path)
    yield srv
    srv.kill()


@pytest.fixture
def r(redis_server):
    """A python3-redis client (bytes replies) on the test's server."""
    return redis_server.client()


class Consumer:
    """A running bin/jobq-consumer (the master) with its log in a file."""

    def __init__(self, redis_url, args, logdir, env=None, binary=None):
        self.log_path = os.path.join(logdir, "consumer-%d.log" % free_port())
        self.logf = open(self.log_path, "wb")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([binary or CONSUMER, "--redis", redis_url] + list(args),
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=e)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout=10, count=1):
        """Waits until the log matches pattern (a regex) count times."""
        deadline = time.time() + scale(timeout)
        while time.time() < deadline:
            if len(re.findall(pattern, self.log())) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError("log never matched %r; log:\n%s" % (pattern, self.log()))

    def worker_pids(self):
        """Pids of the live workers, from the master's log."""
        started = [int(p) for p in re.findall(r"worker (\d+) started", self.log())]
        ended = set(int(p) for p in re.findall(r"worker (\d+) \(slot \d+\) (?:exited|killed)", self.log()))
        return [p for p in started if p not in ended]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        return self.proc.wait(scale(timeout))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scale(20))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


@pytest.fixture
def consumer(redis_server, tmpdir_path):
    """Factory: consumer("--workers", "2", ...) starts a master and waits
    until its workers said ready. Stopped (SIGTERM) after the test."""
    started = []

    def start(*args, ready=True, url=None, env=None):
        args = list(args)
        # The product's default is --workers auto; a test that does not say
        # gets one worker, so that what it counts does not depend on the
        # machine's CPUs.
        if not any(a == "--workers" or a.startswith("--workers=") for a in args) and \
                "JOBQ_WORKERS" not in (env or {}):
            args = ["--workers", "1"] + args
        c = Consumer(url or redis_server.url, args, tmpdir_path, env=env)
        started.append(c)
        if ready:
            n = 1
            for i, a in enumerate(args):
                if a == "--workers" and args[i + 1] != "auto":
                    n = int(args[i + 1])
                elif a.startswith("--workers="):
                    n = int(a.split("=", 1)[1])
            c.wait_log(r"worker \S+ ready", count=n)
            # The master logs a worker's pid after uv_spawn returns, which
            # on a busy machine can be after the worker said ready: wait for
            # it too, so that worker_pids() is complete.
            c.wait_log(r"worker \d+ started", count=n)
        return c

    yield start
    for c in started:
        c.stop()
    # Under `make check` the sanitizers report into the consumer's log: a
    # report fails the test that caused it, even if its assertions passed.
    for c in started:
        log = c.log()
        for marker in SANITIZER_MARKERS:
            if marker in log:
                i = log.index(marker)
                pytest.fail("sanitizer report in consumer log:\n" + log[max(0, i - 200):i + 3000])


def stream(queue="default", prefix="jobq"):
    return "%s:{%s}:stream" % (prefix, queue)


def key(what, queue="default", prefix="jobq"):
    return "%s:{%s}:%s" % (prefix, queue, what)


def xadd(r, queue="default", **fields):
    """Enqueues with python3-redis, as any producer would (PROTOCOL §1).
    A dict or list payload is sent as msgpack. Returns the job id."""
    f = {}
    for k, v in fields.items():
        if k == "payload" and isinstance(v, (dict, list, int)):
            v = msgpack.packb(v)
        f[k] = v
    eid = r.xadd(stream(queue), f)
    return fields.get("id") or eid.decode()


def wait_result(r, job_id, queue="default", timeout=10):
    """Waits for the job to end and returns its result hash with str keys
    and bytes values. PROTOCOL 1.2 §3: only a job enqueued with `notify 1`
    gets a notify list, so this blocks on it in short slices (popping it,
    as a waiter would) and between them looks whether the result hash says
    done or dead (a job without `notify 1`)."""
    nkey, rkey = key("notify:%s" % job_id, queue), key("result:%s" % job_id, queue)
    deadline = time.time() + scale(timeout)
    while True:
        if r.blpop([nkey], timeout=0.05) is not None:
            break
        if r.hget(rkey, "state") in (b"done", b"dead"):
            break
        if time.time() > deadline:
            raise AssertionError("job %s did not finish in %ss; result hash: %r"
                                 % (job_id, timeout, r.hgetall(rkey)))
    h = r.hgetall(rkey)
    return {k.decode(): v for k, v in h.items()}


def mapped_libs(pid):
    """The basenames of the files (shared libraries) process pid maps, from
    /proc/<pid>/maps: what it has loaded, whatever their sizes."""
    with open("/proc/%d/maps" % pid) as f:
        return {os.path.basename(line.split()[5]) for line in f if len(line.split()) > 5}


def maps_lib(pid, name):
    """True when pid maps a library whose file name starts with name
    ("libcrypto.so")."""
    return any(lib.startswith(name) for lib in mapped_libs(pid))


def wait_for(cond, timeout=10, interval=0.02, what="condition"):
    """Polls cond() until it returns a true value, which is returned.
    what names the condition in the timeout's message; a callable is
    called then, so that the message can show the state at the end."""
    deadline = time.time() + scale(timeout)
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + (what() if callable(what) else what))


def wait_stopped(pid):
    """Waits until pid is stopped (SIGSTOP is delivered asynchronously):
    from then on it writes nothing more."""
    def state():
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    wait_for(lambda: state() in ("T", "t"), what="process %d stopped" % pid)


def errorstat(r, code):
    """How many error replies starting with code ("WRONGPASS") the server
    has sent since it started (INFO errorstats, Redis >= 6.2): a count of
    refused attempts, each of which leaves nothing else to read."""
    v = r.info("errorstats").get("errorstat_" + code, 0)
    if isinstance(v, dict):
        return int(v.get("count", 0))
    return int(str(v).split("=")[-1]) if v else 0


class KeyEvents:
    """Redis's keyspace notifications for one key, from now on, on a
    connection of their own: for a wait on a write that changes nothing a
    test could read (an HSET of the same values). count("hset") says how
    many have been seen so far. Turns notifications on for the whole
    server."""

    def __init__(self, r, key):
        r.config_set("notify-keyspace-events", "KA")
        self.p = r.pubsub()
        self.p.subscribe("__keyspace@0__:" + key)
        # Subscribed before this returns, so no later write is missed.
        wait_for(lambda: self.p.get_message(timeout=0.1) is not None, what="the subscription")
        self.seen = []

    def count(self, event):
        while True:
            m = self.p.get_message(timeout=0)
            if m is None:
                break
            if m["type"] == "message":
                self.seen.append(m["data"].decode())
        return self.seen.count(event)

    def close(self):
        self.p.close()


def wait_stream_empty(r, queue="default", prefix="jobq", timeout=2):
    """Acked entries leave the stream within a second (PROTOCOL 1.1 §6):
    at once when the trim reaches them, else one or two ticks later."""
    wait_for(lambda: r.xlen(stream(queue, prefix)) == 0, timeout=timeout,
             what=lambda: "the stream %s to empty (XLEN %d)" % (stream(queue, prefix),
                                                                r.xlen(stream(queue, prefix))))


def jobq(*args, redis_url=None, input=None, timeout=60):
    """Runs bin/jobq; returns the CompletedProcess (text)."""
    cmd = [JOBQ]
    if redis_url:
        cmd += ["--redis", redis_url]
    cmd += [str(a) for a in args]
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=scale(timeout))


def sha256_rounds(data, rounds):
    """What the sha256 handler returns (PROTOCOL §8): lowercase hex of
    sha256 applied `rounds` times, the first round hashing data."""
    d = data
    for _ in range(rounds):
        d = hashlib.sha256(d).digest()
    return d.hex()
