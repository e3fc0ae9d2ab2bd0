"""`jobq top` in a real terminal (issue 10): tmux runs it on its own
server socket, capture-pane reads the screen, send-keys types. Checked:
the rows, 80 columns, the pause key (in Redis), the sort key, a resize, a
Redis outage shown and recovered from, and the terminal restored (the
alternate screen left) after q and after Ctrl-C."""
import os
import shutil
import subprocess
import time

import msgpack
import pytest

from conftest import JOBQ, key, scale, stream, wait_for, xadd

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


class Tmux:
    def __init__(self, tmpdir, cmd, width=80, height=24):
        self.sock = os.path.join(tmpdir, "tmux.sock")
        self.t("-f", "/dev/null", "new-session", "-d", "-x", str(width), "-y", str(height),
               "env LANG=C.UTF-8 %s; echo EXITED rc=$?; sleep 600" % cmd)

    def t(self, *args):
        return subprocess.run(["tmux", "-S", self.sock] + list(args), capture_output=True, text=True,
                              check=True).stdout

    def screen(self):
        return self.t("capture-pane", "-p")

    def wait_screen(self, pred, what, timeout=10):
        last = []

        def check():
            last[:] = [self.screen()]
            return pred(last[0])
        try:
            wait_for(check, timeout=timeout, interval=0.1, what=what)
        except AssertionError:
            raise AssertionError("%s; screen:\n%s" % (what, last[0] if last else ""))
        return last[0]

    def keys(self, *k):
        self.t("send-keys", *k)

    def alternate_on(self):
        return self.t("display", "-p", "#{alternate_on}").strip() == "1"

    def kill(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(tmpdir_path):
    started = []

    def start(cmd, **kw):
        t = Tmux(tmpdir_path, cmd, **kw)
        started.append(t)
        return t
    yield start
    for t in started:
        t.kill()


def row(screen, name):
    for line in screen.splitlines():
        parts = line[3:].split()
        if parts and parts[0] == name:
            return line
    return None


def test_top_rows_keys_resize_outage_and_quit(r, redis_server, consumer, tmux):
    c = consumer("--workers", "2")
    for _ in range(20):
        xadd(r, type="noop")
    r.sadd("jobq:queues", "zeta")
    r.xadd(stream("zeta"), {"type": "noop"})  # not served: stays ready
    wait_for(lambda: r.hget(key("stats"), "processed") == b"20", what="20 done")
    t = tmux("%s --redis %s top" % (JOBQ, redis_server.url))
    pids = c.worker_pids()
    s = t.wait_screen(lambda s: row(s, "default") and all(str(p) in s for p in pids),
                      "rows for the queue and both workers")
    assert t.alternate_on()
    assert "READY" in s and "WORKER" in s and "JOBS/S" in s
    cols = lambda name: row(s, name)[3:].split()  # QUEUE READY RUN SCHED DEAD DONE FAIL ...
    assert cols("default")[1] == "0" and cols("default")[5] == "20"
    assert cols("zeta")[1] == "1" and cols("zeta")[5] == "0"
    assert max(len(l) for l in s.splitlines()) <= 80

    # Sparkline: a burst of jobs shows up as a rate and blocks.
    p = r.pipeline(transaction=False)
    for _ in range(300):
        p.xadd(stream(), {"type": "sleep", "payload": msgpack.packb({"ms": 1})})
    p.execute()
    t.wait_screen(lambda s: any(ch in (row(s, "default") or "") for ch in "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"),
                  "a sparkline for the burst")

    # Pause key: the selected queue (default, first by name) is paused in Redis.
    t.keys("p")
    wait_for(lambda: r.exists(key("paused")) == 1, what="paused in redis")
    t.wait_screen(lambda s: (row(s, "default") or "")[:2] == ">P", "the P marker")
    t.keys("p")
    wait_for(lambda: r.exists(key("paused")) == 0, what="resumed in redis")
    # Down selects zeta; pausing it touches zeta only.
    t.keys("Down")
    t.keys("p")
    wait_for(lambda: r.exists(key("paused", "zeta")) == 1, what="zeta paused")
    assert r.exists(key("paused")) == 0

    # Sort key.
    t.keys("s")
    t.wait_screen(lambda s: "sort: ready" in s, "sort by ready")

    # Resize: narrower and wider, the rows stay and never wrap.
    t.t("resize-window", "-x", "60", "-y", "16")
    s = t.wait_screen(lambda s: max(len(l) for l in s.splitlines()) <= 60 and row(s, "default"),
                      "redrawn at 60 columns")
    t.t("resize-window", "-x", "120", "-y", "30")
    s = t.wait_screen(lambda s: row(s, "zeta") and "TREND" in s and len(s.splitlines()) == 30,
                      "redrawn at 120x30")

    # Redis goes away: said on screen, and top carries on when it returns.
    redis_server.kill()
    t.wait_screen(lambda s: "redis unreachable" in s, "the outage on screen")
    assert row(t.screen(), "default")  # the last figures stay
    redis_server.start()
    for _ in range(3):
        xadd(r, type="noop")
    t.wait_screen(lambda s: "redis unreachable" not in s and row(s, "default"), "back after the outage",
                  timeout=30)

    t.keys("q")
    t.wait_screen(lambda s: "EXITED rc=0" in s, "exit after q")
    assert not t.alternate_on()


def test_top_ctrl_c_restores_terminal(redis_server, tmux):
    t = tmux("%s --redis %s top" % (JOBQ, redis_server.url))
    t.wait_screen(lambda s: "jobq top" in s and "(no queues)" in s, "top started on an empty redis")
    assert t.alternate_on()
    t.keys("C-c")
    t.wait_screen(lambda s: "EXITED rc=0" in s, "exit after Ctrl-C")
    assert not t.alternate_on()


def test_top_needs_redis_at_start(redis_server):
    p = subprocess.run([JOBQ, "--redis", "redis://127.0.0.1:1", "top"], capture_output=True, text=True,
                       timeout=scale(20))
    assert p.returncode == 3 and "jobq" in p.stderr
    p = subprocess.run([JOBQ, "top", "--bogus"], capture_output=True, text=True, timeout=scale(20))
    assert p.returncode == 2


def test_top_shows_schedules_and_a_late_one(r, redis_server, tmux):
    """No consumer: the schedule's tick passes unfired, so top says how
    late it is (PROTOCOL §13)."""
    now = int(time.time() * 1000)
    r.hset("jobq:{default}:schedule:nightly", "every", "86400000")
    r.hset("jobq:{default}:schedule:nightly:job", "type", "noop")
    r.zadd("jobq:{default}:schedules", {"nightly": now - 5000})
    r.sadd("jobq:queues", "default")
    t = tmux("%s --redis %s top" % (JOBQ, redis_server.url))
    s = t.wait_screen(lambda s: "schedules 1" in s, "the schedules line")
    assert "late: nightly (default) by" in s, s
    assert max(len(l) for l in s.splitlines()) <= 80


def test_top_shows_the_jobs_a_limit_holds_back(r, redis_server, tmux):
    """No consumer: a concurrency of 1 whose one lease is held (written as
    a worker writes it, PROTOCOL §9) holds the three ready jobs back."""
    now = int(time.time() * 1000)
    r.hset("jobq:{mail}:limit", "concurrency", "1")
    r.zadd("jobq:{mail}:leases", {"1-0": now + 600000})
    for _ in range(3):
        r.xadd("jobq:{mail}:stream", {"type": "noop"})
    r.sadd("jobq:queues", "mail")
    t = tmux("%s --redis %s top" % (JOBQ, redis_server.url))
    s = t.wait_screen(lambda s: "limits 1" in s, "the limits line")
    assert "limits 1, held back 3; most mail: 3 by concurrency, 1/1 leased" in s, s
    assert max(len(l) for l in s.splitlines()) <= 80
