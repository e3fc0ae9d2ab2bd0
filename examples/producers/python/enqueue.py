#!/usr/bin/env python3
"""A jobq producer in Python with the usual Redis client (redis-py) and
msgpack, written from docs/PROTOCOL.md alone: enqueue one job, wait for it,
print its result as JSON.

    pip install redis msgpack        # Debian: apt install python3-redis python3-msgpack
    JOBQ_REDIS_URL=redis://127.0.0.1:6379 ./enqueue.py sha256 '{"data":"hello","rounds":3}'
    ./enqueue.py --enc json echo '{"any":"json"}'

--enc msgpack (the default) sends the payload as msgpack bytes; --enc json
sends the JSON text as it is, with the field `enc json`, and the consumer
converts it. Exit status: 0 done, 1 dead (the error on stderr), 2 bad
payload or no result within --timeout seconds, 3 Redis trouble. Environment: JOBQ_REDIS_URL, JOBQ_PREFIX,
JOBQ_QUEUE.
"""
import argparse
import json
import os
import sys

import msgpack
import redis


def key(prefix, queue, what):
    # Every key of a queue carries the hash tag {queue} (PROTOCOL, notation).
    return "%s:{%s}:%s" % (prefix, queue, what)


def enqueue(r, prefix, queue, job_type, payload_json, enc):
    """XADD the job (PROTOCOL §1); the entry id is the job id. `notify 1`:
    this producer waits, so the consumer pushes the notify list (§3; since
    1.2 only for jobs that ask)."""
    fields = {"type": job_type, "notify": "1"}
    if payload_json is not None:
        if enc == "json":
            json.loads(payload_json)  # refuse bad JSON here, not in the dead set
            fields["payload"] = payload_json
            fields["enc"] = "json"
        else:
            fields["payload"] = msgpack.packb(json.loads(payload_json), use_bin_type=True)
    r.sadd(prefix + ":queues", queue)  # so `jobq stats` lists the queue (§7)
    return r.xadd(key(prefix, queue, "stream"), fields).decode()


def wait(r, prefix, queue, job_id, timeout):
    """BLPOP the notify list (§3): it gets `done` or `dead` once, then the
    result hash has the outcome. Returns the hash, or None on timeout."""
    got = r.blpop([key(prefix, queue, "notify:" + job_id)], timeout=timeout)
    if got is None:
        return None
    return r.hgetall(key(prefix, queue, "result:" + job_id))


def result_bytes(r, prefix, queue, job_id, h):
    """The result's msgpack bytes: inline, or in a chunk list when large;
    None for nil."""
    if b"chunks" in h:
        parts = r.lrange(key(prefix, queue, "result:%s:chunks" % job_id), 0, -1)
        if len(parts) != int(h[b"chunks"]):
            raise RuntimeError("result chunks missing")
        return b"".join(parts)
    return h.get(b"result")


def main():
    ap = argparse.ArgumentParser(description="enqueue one jobq job and print its result")
    ap.add_argument("type")
    ap.add_argument("payload", nargs="?", help="JSON; absent means nil")
    ap.add_argument("--enc", choices=("msgpack", "json"), default="msgpack")
    ap.add_argument("--timeout", type=int, default=30, help="seconds to wait")
    a = ap.parse_args()
    prefix = os.environ.get("JOBQ_PREFIX") or "jobq"
    queue = os.environ.get("JOBQ_QUEUE") or "default"
    r = redis.Redis.from_url(os.environ.get("JOBQ_REDIS_URL") or "redis://127.0.0.1:6379")

    try:
        job_id = enqueue(r, prefix, queue, a.type, a.payload, a.enc)
        h = wait(r, prefix, queue, job_id, a.timeout)
    except ValueError as e:
        print("enqueue.py: payload is not JSON: %s" % e, file=sys.stderr)
        return 2
    except redis.exceptions.RedisError as e:
        print("enqueue.py: redis: %s" % e, file=sys.stderr)
        return 3
    if h is None:
        print("enqueue.py: job %s did not finish in %d s" % (job_id, a.timeout), file=sys.stderr)
        return 2
    if h.get(b"state") != b"done":
        print("enqueue.py: job %s is %s: %s" % (job_id, h.get(b"state", b"?").decode(),
                                               h.get(b"error", b"").decode()), file=sys.stderr)
        return 1
    raw = result_bytes(r, prefix, queue, job_id, h)
    value = None if raw is None else msgpack.unpackb(raw, raw=False)
    # bin results (bytes) are shown as text, bytes that are not UTF-8 escaped.
    print(json.dumps(value, default=lambda b: b.decode("utf-8", "backslashreplace")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
