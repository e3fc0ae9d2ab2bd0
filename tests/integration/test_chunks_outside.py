"""Chunk lists written outside the job's MULTI (docs/PROTOCOL.md §1 and §3,
issue 22): the chunks go first with a short TTL, then one MULTI PERSISTs
the list and adds the entry (or, for a result, writes its hash and sets the
result's TTL). Producers here are python3-redis and our own CLI."""
import os
import re
import subprocess
import threading

import msgpack

from conftest import JOBQ, jobq, key, scale, stream, wait_for, wait_result

CHUNK = 256 * 1024


def split(data, size=CHUNK):
    return [data[i:i + size] for i in range(0, len(data), size)]


def write_list(r, jid, pieces, ttl_ms):
    """The recommended first half: the list, never without a TTL."""
    lkey = key("payload:%s" % jid)
    p = r.pipeline(transaction=True)
    p.delete(lkey)
    p.rpush(lkey, pieces[0])
    p.pexpire(lkey, ttl_ms)
    p.execute()
    p = r.pipeline(transaction=False)
    for i in range(1, len(pieces), 16):
        p.rpush(lkey, *pieces[i:i + 16])
        p.pexpire(lkey, ttl_ms)
    p.execute()
    return lkey


def test_producer_dying_before_the_multi_leaves_an_expiring_list_and_no_job(r, consumer):
    consumer("--workers", "1")
    packed = msgpack.packb(os.urandom(3 * CHUNK), use_bin_type=True)
    lkey = write_list(r, "half-1", split(packed), ttl_ms=int(scale(1) * 1000))
    # ... and the producer dies here, before MULTI { PERSIST; XADD } EXEC.
    assert r.llen(lkey) == 4 and r.pttl(lkey) > 0
    wait_for(lambda: not r.exists(lkey), timeout=scale(10), what="the half-written list expired")
    assert r.xlen(stream()) == 0
    assert not r.exists(key("result:half-1"))
    assert r.zcard(key("dead")) == 0

    # The same steps carried through: the job runs, and its list goes.
    lkey = write_list(r, "whole-1", split(packed), ttl_ms=60000)
    p = r.pipeline(transaction=True)
    p.persist(lkey)
    p.xadd(stream(), {"type": "echo", "id": "whole-1", "chunks": 4, "size": len(packed)})
    assert p.execute()[0] == 1  # PERSIST: the list was there, with its TTL
    res = wait_result(r, "whole-1", timeout=scale(30))
    assert res["state"] == b"done", res
    assert b"".join(r.lrange(key("result:whole-1:chunks"), 0, -1)) == packed
    wait_for(lambda: not r.exists(lkey), timeout=scale(5), what="payload list deleted")


MONITOR_LINE = re.compile(rb'^[0-9.]+ \[[^\]]*\] "([A-Za-z]+)"(?: "((?:[^"\\]|\\.)*)")?')


def monitor(redis_server, into, ready, stop):
    """Command names (and first argument) seen by MONITOR, in Redis's
    order: read as raw lines (Redis escapes every binary argument)."""
    import redis
    m = redis.Redis(host="127.0.0.1", port=redis_server.port).monitor()
    with m:
        ready.set()
        while True:
            line = m.connection.read_response()
            g = MONITOR_LINE.match(line)
            if not g:
                continue
            name, arg = g.group(1).decode().upper(), (g.group(2) or b"").decode("latin-1")
            into.append((name, arg))
            if stop.is_set() and name == "HGETALL" and arg.endswith("result:mon-1"):
                return


def test_cli_and_worker_write_chunks_before_their_multi(redis_server, r, consumer, tmpdir_path):
    """`jobq enqueue` and the worker: every RPUSH of a chunk list comes
    before the MULTI that makes it visible, the list has a TTL from its
    first chunk on, and the result's list ends with the result's TTL."""
    consumer("--workers", "1", "--chunk-size", "1k")
    data = os.urandom(40 * 1024)
    path = os.path.join(tmpdir_path, "blob.bin")
    with open(path, "wb") as f:
        f.write(data)
    seen, ready, stop = [], threading.Event(), threading.Event()
    t = threading.Thread(target=monitor, args=(redis_server, seen, ready, stop), daemon=True)
    t.start()
    ready.wait(5)
    out = jobq("enqueue", "echo", "@" + path, "--id", "mon-1", "--chunk-size", "1k",
               redis_url=redis_server.url)
    assert out.returncode == 0, out.stderr
    res = wait_result(r, "mon-1", timeout=scale(30))
    assert res["state"] == b"done", res
    stop.set()
    r.hgetall(key("result:mon-1"))
    t.join(scale(10))
    # The command that makes each list visible: the payload's XADD, and
    # for the result the XACK of the worker's outcome MULTI.
    for list_key, last in ((key("payload:mon-1"), "XADD"), (key("result:mon-1:chunks"), "XACK")):
        mine = [i for i, (c, k) in enumerate(seen) if k == list_key]
        pushes = [i for i in mine if seen[i][0] == "RPUSH"]
        assert len(pushes) >= 2, repr([s for s in seen if s[0] != "HGETALL"])[:3000]
        # The list gets its TTL in the MULTI of its first chunk.
        assert seen[pushes[0] + 1][0] == "PEXPIRE", seen[pushes[0]:pushes[0] + 3]
        end = next(i for i in range(pushes[-1], len(seen)) if seen[i][0] == last)
        multi = max(i for i in range(end) if seen[i][0] == "MULTI")
        assert multi > pushes[-1], "an RPUSH of %s inside the MULTI" % list_key
    ttl = r.ttl(key("result:mon-1:chunks"))
    assert ttl > 3600, ttl  # the result's TTL (86400), not the 60 s of the writes
    assert b"".join(r.lrange(key("result:mon-1:chunks"), 0, -1)) == msgpack.packb(data)


def test_big_echo_result_reads_back_byte_exact_with_wait_o(redis_server, consumer, tmpdir_path):
    consumer("--workers", "1")
    data = os.urandom(6 * 1024 * 1024 + 11)
    src = os.path.join(tmpdir_path, "in.bin")
    dst = os.path.join(tmpdir_path, "out.bin")
    with open(src, "wb") as f:
        f.write(data)
    out = jobq("enqueue", "echo", "@" + src, "--id", "big-o", redis_url=redis_server.url)
    assert out.returncode == 0, out.stderr
    w = subprocess.run([JOBQ, "--redis", redis_server.url, "wait", "big-o", "-o", dst,
                        "--timeout", str(int(scale(30)))], capture_output=True,
                       timeout=scale(60))
    assert w.returncode == 0, w.stderr
    with open(dst, "rb") as f:
        got = f.read()
    assert got == msgpack.packb(data, use_bin_type=True)


def test_big_results_and_small_jobs_in_one_batch_come_back_exact(r, consumer):
    """Result chunks are written from the results themselves (rconn's
    referenced arguments, issue 22), between the small commands of the
    same batch: three 2 MiB results and small jobs preloaded together so
    that they end in the same loop turns; every byte back in order."""
    big = {}
    for i in range(3):
        data = os.urandom(2 * 1024 * 1024 + i)
        packed = msgpack.packb(data, use_bin_type=True)
        jid = "many-%d" % i
        lkey = write_list(r, jid, split(packed), ttl_ms=60000)
        p = r.pipeline(transaction=True)
        p.persist(lkey)
        p.xadd(stream(), {"type": "echo", "id": jid, "chunks": len(split(packed)),
                          "size": len(packed)})
        p.execute()
        big[jid] = packed
    small = ["small-%d" % i for i in range(30)]
    for jid in small:
        r.xadd(stream(), {"type": "echo", "id": jid, "enc": "json", "payload": '"%s"' % jid})
    consumer("--workers", "1")
    for jid, packed in big.items():
        res = wait_result(r, jid, timeout=scale(30))
        assert res["state"] == b"done", res
        assert b"".join(r.lrange(key("result:%s:chunks" % jid), 0, -1)) == packed
    for jid in small:
        res = wait_result(r, jid, timeout=scale(30))
        assert msgpack.unpackb(res["result"]) == jid
