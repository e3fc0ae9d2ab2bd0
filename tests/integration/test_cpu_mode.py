"""--cpu-mode, the benchmark-only ways to run cpu jobs (bench/seed/ measures
them against the default): every mode must still run jobs correctly, and
the fsstat test handler must do its libuv threadpool work."""
import subprocess

import msgpack
import pytest

from conftest import CONSUMER, sha256_rounds, wait_result, xadd


@pytest.mark.parametrize("mode", ["pool", "inline", "uv"])
def test_every_cpu_mode_runs_sha256_and_io_jobs(r, consumer, mode):
    consumer("--workers", "1", "--threads", "2", "--cpu-mode", mode, "--test-handlers")
    ids = [xadd(r, type="sha256", payload={"data": b"m%d" % i, "rounds": 2000}, id="h%d" % i)
           for i in range(6)]
    fs = xadd(r, type="fsstat", payload={"path": "/", "n": 20}, id="fs")
    for i, jid in enumerate(ids):
        res = wait_result(r, jid)
        assert res["state"] == b"done", res
        assert msgpack.unpackb(res["result"]) == sha256_rounds(b"m%d" % i, 2000)
    assert wait_result(r, fs)["state"] == b"done"


def test_fsstat_is_a_test_handler_only(r, consumer):
    consumer("--workers", "1")
    jid = xadd(r, type="fsstat", payload={"path": "/", "n": 1}, id="fs-1")
    res = wait_result(r, jid)
    assert res["state"] == b"dead"
    assert res["error"] == b"unknown job type: fsstat"


def test_fsstat_names_the_missing_path(r, consumer):
    consumer("--workers", "1", "--test-handlers")
    jid = xadd(r, type="fsstat", payload={"path": "/nonexistent/x", "n": 2}, id="fs-2",
               max_attempts="1")
    res = wait_result(r, jid)
    assert res["state"] == b"dead"
    assert res["error"].startswith(b"fsstat: /nonexistent/x: "), res["error"]


def test_unknown_cpu_mode_is_a_usage_error():
    p = subprocess.run([CONSUMER, "--cpu-mode", "fast"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "--cpu-mode: 'fast' is not one of pool, inline, uv" in p.stderr
