"""The first slice end to end: redis-cli and python3-redis enqueue, the real
consumer runs the job, the result hash and notify list come back."""

import msgpack

from conftest import key, sha256_rounds, wait_result, xadd, wait_stream_empty




def test_redis_cli_json_sha256(redis_server, r, consumer):
    consumer("--workers", "1")
    jid = redis_server.cli("XADD", "jobq:{default}:stream", "*", "type", "sha256", "enc", "json",
                           "payload", '{"data":"hello","rounds":1000}').strip()
    res = wait_result(r, jid)
    assert res["state"] == b"done"
    assert msgpack.unpackb(res["result"]) == sha256_rounds(b"hello", 1000)
    assert res["attempts"] == b"1"


def test_python_msgpack_echo(r, consumer):
    consumer("--workers", "2")
    payload = {"a": [1, 2, {"b": b"\x00\xff"}], "s": "h\u00e9llo"}
    jid = xadd(r, type="echo", payload=payload, id="echo-1")
    res = wait_result(r, jid)
    assert res["state"] == b"done"
    assert msgpack.unpackb(res["result"]) == payload
    wait_stream_empty(r)  # acked and gone
