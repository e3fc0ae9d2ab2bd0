"""Type=notify: the master tells systemd through sd_notify's protocol
(consumer/master/notify.c, no libsystemd) when every worker is serving, around a SIGHUP rolling restart, and when it
drains. The test plays systemd: it listens on a unix datagram socket and
hands its path to the master in NOTIFY_SOCKET."""
import os
import signal
import socket

import pytest

from conftest import scale, wait_result, xadd


class NotifySocket:
    """What systemd listens on: one datagram per sd_notify call."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # "@name" is an abstract socket, as NOTIFY_SOCKET may name one.
        self.sock.bind("\0" + path[1:] if path.startswith("@") else path)

    def recv(self, timeout):
        """The next message as a dict of its assignments, or None when
        none came within timeout seconds."""
        self.sock.settimeout(scale(timeout))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        return dict(line.split("=", 1) for line in data.decode().split("\n") if line)

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmpdir_path):
    n = NotifySocket(os.path.join(tmpdir_path, "notify.sock"))
    yield n
    n.close()


def test_ready_only_once_every_worker_serves(redis_server, consumer, notify):
    # Redis is down: no worker can serve, so the master must not say READY,
    # however long it runs.
    redis_server.kill()
    c = consumer("--workers", "2", ready=False, env={"NOTIFY_SOCKET": notify.path})
    c.wait_log(r"worker \d+ started", count=2)
    assert notify.recv(timeout=2) is None
    assert c.proc.poll() is None
    # One worker is held stopped; when Redis comes up (the same port) the
    # other serves, and that is still not every worker.
    held = c.worker_pids()[0]
    os.kill(held, signal.SIGSTOP)
    try:
        redis_server.start()
        c.wait_log(r"worker \S+ ready", count=1, timeout=30)
        assert notify.recv(timeout=2) is None
    finally:
        os.kill(held, signal.SIGCONT)
    msg = notify.recv(timeout=30)
    assert msg is not None, c.log()
    assert msg["READY"] == "1"
    assert msg["STATUS"] == "all 2 workers serving"
    c.wait_log(r"worker \S+ ready", count=2)
    assert notify.recv(timeout=0.5) is None  # once
    r = redis_server.client()
    assert wait_result(r, xadd(r, type="echo", payload={"a": 1}))["state"] == b"done"


def test_reloading_around_rolling_restart_and_stopping_on_drain(redis_server, consumer, notify):
    c = consumer("--workers", "2", env={"NOTIFY_SOCKET": notify.path})
    assert notify.recv(timeout=10)["READY"] == "1"
    c.signal(signal.SIGHUP)
    msg = notify.recv(timeout=10)
    assert msg["RELOADING"] == "1", msg
    msg = notify.recv(timeout=60)
    assert msg is not None and msg["READY"] == "1", c.log()
    # READY=1 is sent after the roll is over: both slots were replaced.
    assert "rolling restart done" in c.log()
    c.signal(signal.SIGTERM)
    msg = notify.recv(timeout=10)
    assert msg["STOPPING"] == "1", msg
    assert c.wait() == 0


def test_unreachable_notify_socket_is_logged_and_harmless(redis_server, consumer, tmpdir_path):
    c = consumer(env={"NOTIFY_SOCKET": os.path.join(tmpdir_path, "nobody-listens.sock")})
    c.wait_log(r"sd_notify\(READY=1\): ")
    r = redis_server.client()
    assert wait_result(r, xadd(r, type="echo", payload=[1, 2]))["state"] == b"done"


def test_abstract_notify_socket(redis_server, consumer, tmpdir_path):
    n = NotifySocket("@jobq-test-notify-%s" % os.path.basename(tmpdir_path))
    try:
        c = consumer("--workers", "2", env={"NOTIFY_SOCKET": n.path})
        msg = n.recv(timeout=10)
        assert msg is not None and msg["READY"] == "1", c.log()
        assert msg["STATUS"] == "all 2 workers serving"
    finally:
        n.close()


def test_notify_socket_of_another_family_is_logged_and_harmless(redis_server, consumer):
    c = consumer(env={"NOTIFY_SOCKET": "vsock:2:1234"})
    c.wait_log(r"sd_notify\(READY=1\): Address family not supported")
    r = redis_server.client()
    assert wait_result(r, xadd(r, type="echo", payload=[1]))["state"] == b"done"
