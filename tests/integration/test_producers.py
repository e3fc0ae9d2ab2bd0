"""The example producers of examples/producers/ -- Python (redis-py with
msgpack, and with `enc json`), Node.js (ioredis + msgpackr, installed by
`npm ci` from its lockfile) and POSIX sh (redis-cli) -- each run against a
real consumer. They are written from PROTOCOL.md alone, so a protocol
change that breaks a client breaks these tests. (The C example, built
against an installed libjobq, is run by test_install.py.)"""
import json
import os
import shutil
import subprocess
import tempfile

import msgpack
import pytest

from conftest import ROOT, key, scale, sha256_rounds, stream, wait_for

EXAMPLES = os.path.join(ROOT, "examples", "producers")


class Producer:
    def __init__(self, name, argv, prints_json, enc, strings=False):
        self.name = name
        self.argv = argv
        self.prints_json = prints_json  # any result as JSON
        self.strings = strings          # only a string (or nil) result as JSON
        self.enc = enc                  # how it sends the payload

    def start(self, redis_url, *args):
        env = dict(os.environ, JOBQ_REDIS_URL=redis_url)
        return subprocess.Popen(self.argv + list(args), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def run(self, redis_url, *args):
        p = self.start(redis_url, *args)
        out, err = p.communicate(timeout=scale(60))
        return p.returncode, out, err

    def value(self, out):
        """The printed result: parsed JSON, or the text line."""
        return json.loads(out)


@pytest.fixture(scope="module")
def node_dir():
    """The Node.js example with its dependencies, installed by `npm ci` from
    package-lock.json (from the npm registry) into a copy."""
    d = tempfile.mkdtemp(prefix="jobq-node-")
    src = os.path.join(EXAMPLES, "node")
    for f in ("package.json", "package-lock.json", "enqueue.js"):
        shutil.copy(os.path.join(src, f), d)
    # --ignore-scripts: msgpackr's optional native speed-up is not needed.
    out = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=d,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, "npm ci failed:\n" + out.stdout + out.stderr
    yield d
    shutil.rmtree(d, ignore_errors=True)


PRODUCERS = ["python-msgpack", "python-json", "node", "sh"]


@pytest.fixture(params=PRODUCERS)
def producer(request):
    py = os.path.join(EXAMPLES, "python", "enqueue.py")
    if request.param == "python-msgpack":
        return Producer("python-msgpack", ["/usr/bin/python3", py], True, "msgpack")
    if request.param == "python-json":
        return Producer("python-json", ["/usr/bin/python3", py, "--enc", "json"], True, "json")
    if request.param == "node":
        d = request.getfixturevalue("node_dir")
        return Producer("node", ["node", os.path.join(d, "enqueue.js")], True, "msgpack")
    # sh is dash on Debian: the script must be POSIX.
    return Producer("sh", ["sh", os.path.join(EXAMPLES, "sh", "enqueue.sh")], False, "json",
                    strings=True)


def test_sha256_result(producer, redis_server, consumer):
    consumer()
    rc, out, err = producer.run(redis_server.url, "sha256", '{"data":"hello","rounds":3}')
    assert rc == 0, err
    assert producer.value(out) == sha256_rounds(b"hello", 3)


def test_dead_job_exits_1_with_the_error(producer, redis_server, consumer):
    consumer("--backoff-ms", "20")
    rc, out, err = producer.run(redis_server.url, "fail", '{"message":"card declined"}')
    assert (rc, out) == (1, ""), err
    assert "dead: card declined" in err


def test_nil_result_and_no_payload(producer, redis_server, consumer):
    consumer()
    rc, out, err = producer.run(redis_server.url, "noop")
    assert rc == 0, err
    assert out == "null\n"


def test_echo_round_trip(producer, redis_server, consumer):
    consumer()
    if producer.prints_json:
        payload = {"a": [1, -7, 2.5, "x"], "b": None, "ok": True, "s": "h\u00e9llo"}
    else:
        payload = 'h\u00e9llo, "world"\\\t'  # sh prints string results only
    rc, out, err = producer.run(redis_server.url, "echo", json.dumps(payload))
    assert rc == 0, err
    assert producer.value(out) == payload


def test_large_result_read_from_its_chunk_list(producer, redis_server, consumer):
    consumer("--chunk-size", "4k")
    big = "x" * 20000
    rc, out, err = producer.run(redis_server.url, "echo", json.dumps({"big": big}))
    assert rc == 0, err
    if producer.prints_json:
        assert producer.value(out) == {"big": big}
    else:
        assert "chunked result" in err  # said, not silently wrong


def test_entry_on_the_wire_is_protocol_1(producer, redis_server, consumer, r):
    """With the queue paused the entry stays in the stream: its fields are
    what PROTOCOL §1 says, in the producer's encoding. Resumed, it runs."""
    c = consumer()
    r.set(key("paused"), 1)
    c.wait_log(r"queue default paused")
    payload = {"data": "wire", "rounds": 2}
    p = producer.start(redis_server.url, "sha256", json.dumps(payload))
    try:
        wait_for(lambda: r.xlen(stream()) == 1, what="the entry in the stream")
        [(eid, fields)] = r.xrange(stream())
        assert fields[b"type"] == b"sha256"
        assert b"id" not in fields  # the entry id is the job id
        assert fields[b"notify"] == b"1"  # it waits: PROTOCOL 1.2 §3
        if producer.enc == "json":
            assert fields[b"enc"] == b"json"
            assert json.loads(fields[b"payload"]) == payload
        else:
            assert b"enc" not in fields
            assert msgpack.unpackb(fields[b"payload"], raw=False) == payload
        assert r.sismember("jobq:queues", "default")
        r.delete(key("paused"))
        out, err = p.communicate(timeout=scale(60))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert producer.value(out) == sha256_rounds(b"wire", 2)
    assert r.hget(key("result:" + eid.decode()), "state") == b"done"


def test_bad_payload_exits_2_in_every_example(producer, redis_server, consumer):
    """Every example says a payload that is not JSON the same way (issue
    27: sh said 1, C 3): exit 2, nothing on stdout. sh cannot parse JSON,
    so the consumer finds it and dead-letters it at once (PROTOCOL §1)."""
    consumer()
    rc, out, err = producer.run(redis_server.url, "echo", '{"a":')
    assert (rc, out) == (2, ""), (rc, out, err)
    assert "not JSON" in err or "not valid JSON" in err, err
