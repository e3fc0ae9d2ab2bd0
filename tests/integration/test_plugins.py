"""C plugins (include/jobq/handler.h): the example plugin's io and cpu
handlers run through the real consumer; a plugin built for another ABI, or
two plugins registering one name, stop the consumer at start (exit 2, from
the master, before any worker exists)."""
import os
import subprocess

import msgpack

from conftest import BIN, CONSUMER, key, wait_result, xadd

EXAMPLE = os.path.join(BIN, "plugins", "example.so")
BADABI = os.path.join(BIN, "plugins", "test-badabi.so")
DUP = os.path.join(BIN, "plugins", "test-dup.so")
ABI1 = os.path.join(BIN, "plugins", "test-abi1.so")


def test_example_io_handler(r, consumer):
    consumer("--plugin", EXAMPLE)
    jid = xadd(r, type="hello", payload={"name": "Ada", "ms": 50}, id="hello-1",
               queue="default")
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(res["result"]) == {
        "greeting": "hello, Ada", "job": "hello-1", "queue": "default", "attempt": 1}


def test_example_cpu_handler_by_redis_cli(redis_server, r, consumer):
    consumer("--plugin", EXAMPLE)
    jid = redis_server.cli("XADD", "jobq:{default}:stream", "*", "type", "wordcount",
                           "enc", "json", "payload", '"the quick\\nbrown  fox"').strip()
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(res["result"]) == {"words": 4, "lines": 1, "bytes": 20}


def test_plugin_errors_and_timeout_and_the_env_list(r, consumer, tmpdir_path):
    # Loaded from JOBQ_PLUGINS (one path a line) instead of a flag.
    c = consumer(env={"JOBQ_PLUGINS": EXAMPLE})
    bad = xadd(r, type="hello", payload={"ms": 1}, max_attempts=1)
    slow = xadd(r, type="hello", payload={"name": "x", "ms": 60000}, timeout_ms=300,
                max_attempts=1)
    res = wait_result(r, bad)
    assert res["state"] == b"dead"
    assert res["error"] == b"hello: payload must be {name: str, ms: N}"
    res = wait_result(r, slow)
    assert res["state"] == b"dead"
    assert b"timeout" in res["error"]
    # The cancelled io task freed its timer; the worker carries on.
    ok = xadd(r, type="wordcount", payload=msgpack.packb(b"a b c"))
    assert msgpack.unpackb(wait_result(r, ok)["result"])["words"] == 3
    assert "loop closed with handles left" not in c.log()


def run_master(*args):
    p = subprocess.run([CONSUMER, "--redis", "redis://127.0.0.1:1", "--workers", "2"] + list(args),
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def test_wrong_abi_stops_the_consumer_at_start():
    rc, out = run_master("--plugin", EXAMPLE, "--plugin", BADABI)
    assert rc == 2, out
    assert "--plugin %s: built for handler ABI version 47, this jobq-consumer speaks versions " \
        "1 to 6" % BADABI in out
    assert "worker" not in out  # refused by the master: no worker ever started


def test_a_plugin_built_for_abi_1_still_loads_and_runs(r, consumer):
    # Version 2 only appended jq_task's yield_cb: an older plugin keeps working.
    consumer("--plugin", ABI1, "--plugin", EXAMPLE)
    jid = xadd(r, type="abi1")
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(res["result"]) == "abi1"
    # and a long cpu job of a version-2 plugin, which yields in its loop
    big = xadd(r, type="wordcount", payload=msgpack.packb(b"ab cd\n" * 200000))
    assert msgpack.unpackb(wait_result(r, big)["result"]) == {
        "words": 400000, "lines": 200000, "bytes": 1200000}


def test_two_plugins_registering_one_name_stop_the_consumer():
    rc, out = run_master("--plugin", EXAMPLE, "--plugin", DUP)
    assert rc == 2, out
    assert "--plugin %s: handler hello: name already registered (by %s)" % (DUP, EXAMPLE) in out
    assert "worker" not in out


def test_a_path_that_is_not_a_plugin(tmpdir_path):
    rc, out = run_master("--plugin", DUP, "--plugin", os.path.join(tmpdir_path, "none.so"))
    assert rc == 2 and "none.so: cannot load" in out, out
    rc, out = run_master("--plugin", os.path.join(BIN, "jobq-consumer"))
    assert rc == 2 and "cannot load" in out, out
