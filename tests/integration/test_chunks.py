"""Chunked payloads and results (PROTOCOL §1 `chunks`/`size`, §3 result
chunks, §4 dead jobs keep their payload list), issue 5.

Producers here are python3-redis + msgpack (not our code): the payload list
and the stream entry are written in one MULTI/EXEC, as §1 asks. Results are
reassembled from the result chunk list by hand."""
import json
import os
import random
import re
import signal
import subprocess
import time

import msgpack
import pytest

from conftest import JOBQ, jobq, key, scale, stream, wait_for, wait_result, xadd, wait_stream_empty

CHUNK = 256 * 1024


def split(data, size=CHUNK):
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def enqueue_chunked(r, jid, packed, pieces=None, chunks=None, size=None, queue="default",
                    **fields):
    """Writes the payload list and the entry in one MULTI/EXEC. pieces,
    chunks and size default to the honest values for packed."""
    pieces = split(packed) if pieces is None else pieces
    entry = {"type": "echo", "id": jid,
             "chunks": len(pieces) if chunks is None else chunks,
             "size": len(packed) if size is None else size}
    entry.update(fields)
    p = r.pipeline(transaction=True)
    if pieces:
        p.rpush(key("payload:%s" % jid, queue), *pieces)
    p.xadd(stream(queue), entry)
    p.execute()
    return jid


def result_bytes(r, jid, res, queue="default"):
    """The result's msgpack bytes: inline, or reassembled from its chunks."""
    if "chunks" not in res:
        return res.get("result")
    n = int(res["chunks"])
    parts = r.lrange(key("result:%s:chunks" % jid, queue), 0, -1)
    assert len(parts) == n, "result chunk list has %d elements, hash says %d" % (len(parts), n)
    return b"".join(parts)


def test_echo_result_is_the_payloads_own_bytes(r, consumer):
    """echo passes its payload through (jq_task_result_payload): an inline
    payload comes back byte for byte, a non-canonical encoding included
    (int 1 as int16, and a str 8 in a str 16 header), which packing the
    decoded value again would have changed; a chunked bin the same, and a
    chunked payload with no str or bin (whose bytes the worker does not
    keep) comes back as the same value."""
    consumer("--workers", "1")
    odd = b"\xd1\x00\x01"
    r.xadd(stream(), {"type": "echo", "id": "odd-int", "payload": odd})
    res = wait_result(r, "odd-int")
    assert res["state"] == b"done" and res["result"] == odd, res
    odd_str = b"\xda\x00\x03abc"
    r.xadd(stream(), {"type": "echo", "id": "odd-str", "payload": odd_str})
    res = wait_result(r, "odd-str")
    assert res["state"] == b"done" and res["result"] == odd_str, res

    packed = b"\xc6" + (3 * CHUNK + 5).to_bytes(4, "big") + os.urandom(3 * CHUNK + 5)
    jid = enqueue_chunked(r, "big-bin", packed)
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert result_bytes(r, jid, res) == packed

    ints = list(range(-300000, 300000, 2))
    packed = msgpack.packb(ints)
    assert len(packed) > 2 * CHUNK
    jid = enqueue_chunked(r, "big-ints", packed)
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(result_bytes(r, jid, res)) == ints


def assert_unharmed(r, c, pids_before):
    """A normal job still completes, on the same worker process."""
    jid = xadd(r, type="echo", payload={"after": "bad"}, id="after-%d" % random.randrange(1 << 30))
    res = wait_result(r, jid)
    assert res["state"] == b"done"
    assert msgpack.unpackb(res["result"]) == {"after": "bad"}
    assert c.proc.poll() is None
    assert c.worker_pids() == pids_before, c.log()


# --- 1. a 5 MiB payload round trip --------------------------------------

def test_5mib_random_bytes_echo_round_trip(r, consumer):
    consumer("--workers", "1")
    data = os.urandom(5 * 1024 * 1024)
    packed = msgpack.packb(data, use_bin_type=True)
    assert len(split(packed)) == 21
    jid = enqueue_chunked(r, "big-1", packed)
    res = wait_result(r, jid, timeout=30)
    assert res["state"] == b"done", res
    assert "result" not in res  # chunked results carry no result field
    assert int(res["chunks"]) == (len(packed) + CHUNK - 1) // CHUNK
    assert r.ttl(key("result:big-1:chunks")) > 0
    back = result_bytes(r, jid, res)
    assert back == packed
    assert msgpack.unpackb(back) == data


def test_small_chunks_many_reads(r, consumer):
    """More chunks than one read takes (CHUNKS_PER_READ), of odd sizes, and
    a payload that is a map, not just one bin."""
    consumer("--workers", "1", "--chunk-size", "1k")
    obj = {"name": "x" * 3000, "list": list(range(2000)), "bin": os.urandom(7000)}
    packed = msgpack.packb(obj, use_bin_type=True)
    pieces = split(packed, 777)
    assert len(pieces) > 20
    jid = enqueue_chunked(r, "many-1", packed, pieces=pieces)
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(result_bytes(r, jid, res), raw=False) == obj
    assert int(res["chunks"]) == (len(packed) + 1023) // 1024


def test_chunked_json_payload(r, consumer):
    consumer("--workers", "1")
    obj = {"k%d" % i: "v" * 50 for i in range(20000)}
    text = ("{" + ",".join('"%s":"%s"' % (k, v) for k, v in obj.items()) + "}").encode()
    assert len(text) > 4 * CHUNK
    jid = enqueue_chunked(r, "json-1", text, enc="json")
    res = wait_result(r, jid, timeout=30)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(result_bytes(r, jid, res)) == obj


def test_small_chunked_payload_gives_inline_result(r, consumer):
    """A chunked payload under the result chunk size comes back inline."""
    consumer("--workers", "1")
    packed = msgpack.packb(b"tiny")
    jid = enqueue_chunked(r, "tiny-1", packed, pieces=[packed[:2], packed[2:]])
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert "chunks" not in res
    assert msgpack.unpackb(res["result"]) == b"tiny"
    assert not r.exists(key("result:tiny-1:chunks"))


# --- 2. bad input: a clear dead-letter reason, the worker unharmed -------

def _bad(r, jid):
    big = msgpack.packb(os.urandom(3 * CHUNK), use_bin_type=True)  # 4 chunks
    pieces = split(big)
    assert len(pieces) == 4
    cases = {
        "missing": lambda: enqueue_chunked(r, jid, big, pieces=[], chunks=4),
        "shorter": lambda: enqueue_chunked(r, jid, big, pieces=pieces[:3], chunks=4),
        "longer": lambda: enqueue_chunked(r, jid, big, pieces=pieces + [b"\x00"], chunks=4,
                                          size=len(big) + 1),
        "size-under": lambda: enqueue_chunked(r, jid, big, size=len(big) - 1),
        "size-over": lambda: enqueue_chunked(r, jid, big, size=len(big) + 1),
        # The object ends in the first chunk; the other chunks are left over.
        "ends-early": lambda: enqueue_chunked(
            r, jid, msgpack.packb(b"a" * 1000) + b"\x00" * (2 * CHUNK)),
        "ends-early-last": lambda: enqueue_chunked(r, jid, big + b"\xc0"),
        "truncated": lambda: enqueue_chunked(r, jid, big[:-10]),
        "parse-error": lambda: enqueue_chunked(r, jid, b"\x92\x01" + b"\xc1" * (CHUNK + 5)),
        "bad-json": lambda: enqueue_chunked(r, jid, b'{"a": [1, 2' + b" " * CHUNK, enc="json"),
    }
    return cases


BAD = {
    "missing": r"chunk list jobq:\{default\}:payload:bad-missing is missing",
    "shorter": r"chunk list has 3 elements, chunks says 4",
    "longer": r"chunk list has 5 elements, chunks says 4",
    "size-under": r"size mismatch: chunks hold more than size \d+ bytes",
    "size-over": r"size mismatch: chunks hold (\d+) bytes, size says \d+",
    "ends-early": r"payload is not valid msgpack: %d trailing bytes after byte 1003" % (2 * CHUNK),
    "ends-early-last": r"payload is not valid msgpack: 1 trailing bytes after byte \d+",
    "truncated": r"payload is not valid msgpack: truncated",
    "parse-error": r"payload is not valid msgpack: bad type byte 0xc1 at byte 2",
    "bad-json": r"(?i)json",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_chunked_input_is_dead_lettered(r, consumer, case):
    c = consumer("--workers", "1")
    pids = c.worker_pids()
    jid = "bad-" + case
    _bad(r, jid)[case]()
    res = wait_result(r, jid)
    assert res["state"] == b"dead", res
    err = res["error"].decode()
    assert re.search(BAD[case], err), err
    assert res["attempts"] == b"0"  # dead on arrival, no attempt made
    assert r.zscore(key("dead"), jid) is not None
    assert r.hget(key("job:%s" % jid), "error").decode() == err
    assert r.hget(key("stats"), "dead") == b"1"
    wait_stream_empty(r)
    # §4: a dead chunked job keeps its payload list (when there was one).
    if case != "missing":
        assert r.exists(key("payload:%s" % jid))
    assert_unharmed(r, c, pids)


def test_size_over_max_payload_rejected_before_reading_chunks(redis_server, r, consumer):
    c = consumer("--workers", "1", "--max-payload", "1m")
    pids = c.worker_pids()
    mon_log = os.path.join(redis_server.dir, "monitor.log")
    with open(mon_log, "wb") as f:
        mon = subprocess.Popen(["redis-cli", "-p", str(redis_server.port), "monitor"],
                               stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: open(mon_log, "rb").read().startswith(b"OK"), what="monitor")
        packed = msgpack.packb(os.urandom(2 * 1024 * 1024), use_bin_type=True)
        jid = enqueue_chunked(r, "huge-1", packed)
        res = wait_result(r, jid)
        assert res["state"] == b"dead", res
        err = res["error"].decode()
        assert re.search(r"payload too large: %d bytes > max-payload 1048576" % len(packed), err), err
        assert_unharmed(r, c, pids)
        # The after-job was seen by the monitor after anything the worker
        # sent for huge-1, so the log is complete for it now.
        wait_for(lambda: b"after-" in open(mon_log, "rb").read(), what="monitor output")
    finally:
        mon.send_signal(signal.SIGTERM)
        mon.wait(10)
    seen = open(mon_log, "rb").read().decode(errors="replace")
    reads = [l for l in seen.splitlines()
             if "payload:huge-1" in l and re.search(r'"(LLEN|LRANGE|LINDEX|LPOP|GET)"', l, re.I)]
    assert reads == []
    assert r.llen(key("payload:huge-1")) == len(split(packed))  # kept with the dead job


def test_max_payload_bound_is_inclusive(r, consumer):
    consumer("--workers", "1", "--max-payload", "1m")
    packed = msgpack.packb(b"z" * (1024 * 1024 - 5))
    assert len(packed) == 1024 * 1024
    jid = enqueue_chunked(r, "edge-1", packed)
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(result_bytes(r, jid, res)) == b"z" * (1024 * 1024 - 5)


def test_chunk_list_of_wrong_type(r, consumer):
    """A payload key that is not a list is a clear dead letter, not a
    connection error that leaves the entry pending for ever."""
    c = consumer("--workers", "1")
    pids = c.worker_pids()
    r.set(key("payload:wt-1"), b"not a list")
    r.xadd(stream(), {"type": "echo", "id": "wt-1", "chunks": 1, "size": 10})
    res = wait_result(r, "wt-1")
    assert res["state"] == b"dead", res
    assert "WRONGTYPE" in res["error"].decode()
    assert_unharmed(r, c, pids)


def test_many_bad_and_good_chunked_jobs_interleaved(r, consumer):
    """Loads in flight at once, good and bad, on two workers: each ends
    right, and the worker processes survive."""
    c = consumer("--workers", "2", "--chunk-size", "4k")
    pids = c.worker_pids()
    good = {}
    for i in range(40):
        jid = "mix-%d" % i
        if i % 3 == 0:
            enqueue_chunked(r, jid, msgpack.packb(os.urandom(5000)), chunks=99)
        else:
            data = os.urandom(random.randrange(1, 60000))
            good[jid] = data
            enqueue_chunked(r, jid, msgpack.packb(data), pieces=split(msgpack.packb(data), 4096))
    for i in range(40):
        jid = "mix-%d" % i
        res = wait_result(r, jid, timeout=30)
        if jid in good:
            assert res["state"] == b"done", res
            assert msgpack.unpackb(result_bytes(r, jid, res)) == good[jid]
            assert not r.exists(key("payload:" + jid))
        else:
            assert res["state"] == b"dead", res
            assert b"chunks says 99" in res["error"]
            assert r.exists(key("payload:" + jid))
    assert c.worker_pids() == pids


# --- 3. clean-up ---------------------------------------------------------

def test_done_job_leaves_no_chunk_list_or_job_hash(r, consumer):
    consumer("--workers", "1")
    packed = msgpack.packb(os.urandom(600 * 1024))
    jid = enqueue_chunked(r, "clean-1", packed)
    res = wait_result(r, jid)
    assert res["state"] == b"done"
    wait_for(lambda: not r.exists(key("payload:clean-1")), timeout=2, what="payload list deleted")
    assert not r.exists(key("job:clean-1"))
    wait_stream_empty(r)
    left = [k.decode() for k in r.keys("jobq:{default}:*")]
    assert not [k for k in left if re.search(r":(payload|job):", k)], left


def test_retried_then_dead_chunked_job_keeps_payload_until_deleted(redis_server, r, consumer):
    """A chunked job that fails keeps its payload list through the retry
    (the retry needs it) and after it is dead (§4), until it is deleted."""
    consumer("--workers", "1", "--backoff-ms", "50")
    packed = msgpack.packb({"message": "m" * (300 * 1024)})
    jid = enqueue_chunked(r, "fail-1", packed, type="fail", max_attempts=2)
    res = wait_result(r, jid, timeout=20)
    assert res["state"] == b"dead", res
    assert res["attempts"] == b"2"
    assert res["error"] == b"m" * (300 * 1024) or res["error"].startswith(b"m")
    assert r.llen(key("payload:fail-1")) == 2
    h = r.hgetall(key("job:fail-1"))
    assert h[b"chunks"] == b"2" and h[b"size"] == str(len(packed)).encode()
    assert b"payload" not in h
    # Deleting the dead job, as any client or `jobq dead delete` does it,
    # drops the payload list with it.
    if os.path.exists(JOBQ):
        out = jobq("dead", "delete", jid, redis_url=redis_server.url)
        assert out.returncode == 0, out.stderr
        assert not r.exists(key("payload:fail-1"))
        assert not r.exists(key("job:fail-1"))
        assert r.zscore(key("dead"), jid) is None


def test_dead_chunked_job_retried_by_hand_runs_from_its_kept_payload(r, consumer):
    """PROTOCOL §4's hand retry of a dead chunked job: the kept payload
    list makes it runnable again, and done deletes it."""
    consumer("--workers", "1")
    data = os.urandom(400 * 1024)
    packed = msgpack.packb(data)
    enqueue_chunked(r, "hand-1", packed, chunks=5)  # wrong count: dead
    res = wait_result(r, "hand-1")
    assert res["state"] == b"dead"
    r.hset(key("job:hand-1"), "chunks", len(split(packed)))  # repair it
    p = r.pipeline(transaction=True)
    p.hset(key("job:hand-1"), "attempt", 0)
    p.zrem(key("dead"), "hand-1")
    p.zadd(key("scheduled"), {"hand-1": 0})
    p.execute()
    # The old run's dead result goes at promotion (§2); only then is the
    # result hash the new run's (wait_result reads it: PROTOCOL 1.2, no
    # notify list for this job).
    wait_for(lambda: r.hget(key("result:hand-1"), "state") != b"dead", what="the old result gone")
    res = wait_result(r, "hand-1", timeout=10)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(result_bytes(r, "hand-1", res)) == data
    wait_for(lambda: not r.exists(key("payload:hand-1")), timeout=2, what="payload list deleted")
    assert not r.exists(key("job:hand-1"))


def test_dead_chunked_payload_trimmed_with_dead_job(r, consumer):
    consumer("--workers", "1", "--dead-max", "1")
    for i in range(3):
        enqueue_chunked(r, "trim-%d" % i, msgpack.packb(os.urandom(1000)), chunks=2)
        assert wait_result(r, "trim-%d" % i)["state"] == b"dead"
    # The trim runs every few seconds and keeps the newest dead job only.
    wait_for(lambda: r.zcard(key("dead")) == 1, timeout=15, interval=0.2, what="dead set trim")
    assert r.zrange(key("dead"), 0, -1) == [b"trim-2"]
    for i in range(2):
        assert not r.exists(key("payload:trim-%d" % i))
        assert not r.exists(key("job:trim-%d" % i))
    assert r.exists(key("payload:trim-2"))


# --- 4. our own CLI, a large file ----------------------------------------

def _need_jobq():
    if not os.path.exists(JOBQ):
        pytest.skip("bin/jobq is not built yet")


def test_jobq_enqueue_file_wait_raw_round_trip(redis_server, r, consumer, tmpdir_path):
    _need_jobq()
    consumer("--workers", "1")
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = os.path.join(tmpdir_path, "blob.bin")
    with open(path, "wb") as f:
        f.write(data)
    out = jobq("enqueue", "echo", "@" + path, "--id", "file-1", redis_url=redis_server.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "file-1"
    # The producer chunked it (§1): the entry had chunks + size, not payload.
    raw = subprocess.run([JOBQ, "--redis", redis_server.url, "wait", "file-1", "--raw",
                          "--timeout", str(int(scale(30)))], capture_output=True, timeout=scale(60))
    assert raw.returncode == 0, raw.stderr
    assert msgpack.unpackb(raw.stdout) == data
    res = {k.decode(): v for k, v in r.hgetall(key("result:file-1")).items()}
    assert "chunks" in res and "result" not in res
    assert not r.exists(key("payload:file-1"))


@pytest.mark.parametrize("size,how", [
    (1024 * 1024 - 1, "file"),          # read into memory: under the mapping's threshold
    (1024 * 1024, "file"),              # mapped: the bin header in the page before it
    (5 * 1024 * 1024 + 4097, "file"),   # mapped, a last page only partly the file's
    (2 * 1024 * 1024 + 3, "stdin"),     # @-: read, never mapped
])
def test_jobq_enqueue_payload_bytes_arrive_exact(redis_server, r, consumer, tmpdir_path, size, how):
    """`jobq enqueue @FILE` maps a large regular file rather than reading
    it (cli.c map_file): whichever way the bytes come in, the job's payload
    is exactly their msgpack bin."""
    _need_jobq()
    consumer("--workers", "1")
    data = os.urandom(size)
    jid = "exact-%s-%d" % (how, size)
    if how == "file":
        path = os.path.join(tmpdir_path, "blob.bin")
        with open(path, "wb") as f:
            f.write(data)
        out = jobq("enqueue", "echo", "@" + path, "--id", jid, redis_url=redis_server.url)
    else:
        out = subprocess.run([JOBQ, "--redis", redis_server.url, "enqueue", "echo", "@-",
                              "--id", jid], input=data, capture_output=True, timeout=scale(60))
    assert out.returncode == 0, out.stderr
    raw = subprocess.run([JOBQ, "--redis", redis_server.url, "wait", jid, "--raw",
                          "--timeout", str(int(scale(30)))], capture_output=True, timeout=scale(60))
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == msgpack.packb(data, use_bin_type=True)


def test_jobq_enqueue_file_with_wait_prints_result(redis_server, r, consumer, tmpdir_path):
    _need_jobq()
    consumer("--workers", "1")
    text = ("[" + ",".join(str(i) for i in range(200000)) + "]").encode()
    path = os.path.join(tmpdir_path, "list.json")
    with open(path, "wb") as f:
        f.write(text)
    assert len(text) > 4 * CHUNK
    out = jobq("enqueue", "echo", "@" + path, "--json", "--wait=30", redis_url=redis_server.url)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["state"] == "done"
    assert got["result"] == list(range(200000))


@pytest.mark.parametrize("packed_len", [1024, 1025, 8 * 1024, 8 * 1024 + 1, 16 * 1024, 17 * 1024 - 1])
def test_result_chunk_boundaries(r, consumer, packed_len):
    """Results of exactly one chunk stay inline; longer ones are split in
    chunk-size pieces (several RPUSHes past 8 chunks), in order."""
    consumer("--workers", "1", "--chunk-size", "1k")
    data = os.urandom(packed_len - 3)  # bin 16: 3 header bytes
    packed = msgpack.packb(data)
    assert len(packed) == packed_len
    jid = enqueue_chunked(r, "edge-%d" % packed_len, packed, pieces=split(packed, 1000))
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    if packed_len <= 1024:
        assert "chunks" not in res and res["result"] == packed
    else:
        assert "result" not in res
        assert int(res["chunks"]) == (packed_len + 1023) // 1024
        parts = r.lrange(key("result:%s:chunks" % jid), 0, -1)
        assert [len(p) for p in parts[:-1]] == [1024] * (len(parts) - 1)
        assert b"".join(parts) == packed


def test_connection_lost_while_loading_chunks(r, consumer):
    """The worker's connections are killed while it reads a chunk list: the
    half-read load is dropped (the entry stays pending), the connection
    comes back, the entry is reclaimed and the job completes intact.
    Where the kills land varies from run to run; the outcome must not."""
    c = consumer("--workers", "1", "--visibility-ms", "500")
    pids = c.worker_pids()
    data = os.urandom(8 * 1024 * 1024)
    packed = msgpack.packb(data)
    enqueue_chunked(r, "lost-1", packed, pieces=split(packed, 32 * 1024), max_attempts=20)
    for _ in range(3):
        time.sleep(0.005)   # kills spread over the read: the spacing is the point
        r.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    res = wait_result(r, "lost-1", timeout=30)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(result_bytes(r, "lost-1", res)) == data
    wait_for(lambda: not r.exists(key("payload:lost-1")), timeout=5, what="payload list deleted")
    assert c.worker_pids() == pids
