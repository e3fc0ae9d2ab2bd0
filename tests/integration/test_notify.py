"""PROTOCOL 1.2 §3, seen with a foreign client (redis-cli and
python3-redis): the notify list is pushed only for a job whose entry
carries `notify 1`, the result hash for every job with results; delayed
and retried jobs carry the field through their job hash. And the waiting
side: `jobq wait` of a job enqueued without it polls the result hash (no
BLPOP), `jobq enqueue --wait` sets it, and `--raw` / `-o FILE` write the
result's exact bytes."""
import os
import subprocess
import time

import msgpack

from conftest import JOBQ, jobq, key, stream, wait_for, wait_result


def notify_keys(r):
    """Every notify list of queue default, by SCAN (not KEYS)."""
    return sorted(k.decode() for k in r.scan_iter(match=key("notify:*"), count=1000))


def blpop_calls(r):
    """BLPOPs the server has run since its stats were last reset."""
    return int(r.info("commandstats").get("cmdstat_blpop", {}).get("calls", 0))


def test_only_a_job_with_notify_1_gets_its_notify_list(redis_server, r, consumer):
    consumer()
    # One that asks, enqueued with redis-cli as any producer would.
    jid = redis_server.cli("XADD", stream(), "*", "type", "echo", "enc", "json", "payload", '"hi"',
                           "notify", "1").strip()
    out = redis_server.cli("BLPOP", key("notify:" + jid), "10").split("\n")
    assert out[1] == "done", out
    h = r.hgetall(key("result:" + jid))
    assert h[b"state"] == b"done" and msgpack.unpackb(h[b"result"]) == "hi"
    # 300 that do not ask (absent, or `notify 0`): each a result hash, and
    # not one notify list.
    p = r.pipeline(transaction=False)
    for i in range(300):
        f = {"type": "echo", "enc": "json", "payload": str(i)}
        if i % 2:
            f["notify"] = "0"
        p.xadd(stream(), f)
    ids = [x.decode() for x in p.execute()]
    wait_for(lambda: all(r.hget(key("result:" + i), "state") == b"done" for i in ids[-10:]),
             what="the 300 jobs done")
    wait_for(lambda: sum(r.exists(key("result:" + i)) for i in ids) == 300,
             what="300 result hashes")
    for n, i in enumerate(ids):
        assert msgpack.unpackb(r.hget(key("result:" + i), "result")) == n
    assert r.exists(*[key("notify:" + i) for i in ids]) == 0
    assert notify_keys(r) == []
    # The one that asked keeps its result hash with its TTL (§3).
    assert 0 < r.ttl(key("result:" + jid)) <= 86400


def test_a_bad_notify_value_is_a_bad_field(r, consumer):
    consumer()
    jid = r.xadd(stream(), {"type": "noop", "notify": "yes"}).decode()
    res = wait_result(r, jid)
    assert res["state"] == b"dead"
    assert res["error"] == b"bad field notify: 'yes' (want 0 or 1)"
    assert notify_keys(r) == []


def test_a_retried_job_with_notify_1_is_woken_at_its_end_only(r, consumer):
    consumer("--backoff-ms", "300")
    jid = r.xadd(stream(), {"type": "fail", "enc": "json", "payload": '{"message":"no"}',
                            "max_attempts": "2", "notify": "1"}).decode()
    # Retrying: the job hash carries `notify 1` to its next attempt, and
    # no wake-up has been pushed (nobody is woken by a retry).
    wait_for(lambda: r.hget(key("result:" + jid), "state") == b"retrying", what="the retry")
    assert r.hget(key("job:" + jid), "notify") == b"1"
    assert not r.exists(key("notify:" + jid))
    got = r.blpop([key("notify:" + jid)], timeout=10)
    assert got == (key("notify:" + jid).encode(), b"dead")
    h = r.hgetall(key("result:" + jid))
    assert h[b"state"] == b"dead" and h[b"attempts"] == b"2" and h[b"error"] == b"no"
    # The same without `notify 1`: dead after its retry, no list.
    jid2 = r.xadd(stream(), {"type": "fail", "enc": "json", "payload": '{"message":"no"}',
                             "max_attempts": "2"}).decode()
    wait_for(lambda: r.hget(key("result:" + jid2), "state") == b"dead", what="the second dead")
    assert not r.exists(key("notify:" + jid2))


def test_a_delayed_job_with_notify_1_is_woken(r, consumer):
    consumer()
    # PROTOCOL §2 as any client writes it, with `notify 1` in the hash.
    due = int(time.time() * 1000) + 300
    p = r.pipeline(transaction=True)
    p.hset(key("job:later"), mapping={"type": "echo", "enc": "json", "payload": '"late"',
                                       "notify": "1"})
    p.zadd(key("scheduled"), {"later": due})
    p.hset(key("job:later0"), mapping={"type": "noop"})
    p.zadd(key("scheduled"), {"later0": due})
    p.execute()
    got = r.blpop([key("notify:later")], timeout=10)
    assert got is not None and got[1] == b"done"
    assert int(time.time() * 1000) >= due
    assert msgpack.unpackb(r.hget(key("result:later"), "result")) == "late"
    wait_for(lambda: r.hget(key("result:later0"), "state") == b"done", what="the other one")
    assert not r.exists(key("notify:later0"))


def test_jobq_wait_polls_a_job_enqueued_without_notify(redis_server, r, consumer):
    consumer()
    r.config_resetstat()
    jid = r.xadd(stream(), {"type": "sleep", "payload": msgpack.packb({"ms": 400})}).decode()
    t0 = time.time()
    p = jobq("wait", jid, "--timeout", "20", redis_url=redis_server.url)
    took = time.time() - t0
    assert p.returncode == 0, p.stderr
    assert '"state":"done"' in p.stdout
    # Polled, with a backoff of at most half a second: no BLPOP of a list
    # that is never pushed, and back soon after the job ended.
    assert blpop_calls(r) == 0
    assert took < 2.5, took
    assert notify_keys(r) == []


def test_jobq_wait_times_out_polling(redis_server, r):
    # No consumer: the job never ends; the wait keeps to its timeout.
    jid = r.xadd(stream(), {"type": "noop"}).decode()
    t0 = time.time()
    p = jobq("wait", jid, "--timeout", "0.7", redis_url=redis_server.url)
    took = time.time() - t0
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert 0.6 < took < 3, took


def test_jobq_enqueue_wait_sets_notify_and_blocks_on_it(redis_server, r, consumer):
    c = consumer()
    r.set(key("paused"), 1)
    c.wait_log(r"queue default paused")
    r.config_resetstat()
    p = subprocess.Popen([JOBQ, "--redis", redis_server.url, "enqueue", "echo", '"x"', "--wait", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: r.xlen(stream()) == 1, what="the entry")
        [(eid, fields)] = r.xrange(stream())
        assert fields[b"notify"] == b"1"
        r.delete(key("paused"))
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert '"result":"x"' in out
    assert blpop_calls(r) >= 1
    # Popped by its waiter: nothing left behind.
    assert notify_keys(r) == []
    # Without --wait: no field.
    jid = jobq("enqueue", "noop", redis_url=redis_server.url).stdout.strip()
    assert wait_result(r, jid)["state"] == b"done"
    assert not r.exists(key("notify:" + jid))


def test_raw_and_output_file_write_the_exact_bytes(redis_server, r, consumer, tmpdir_path):
    consumer()
    data = os.urandom(3 * 1024 * 1024 + 17)  # chunked both ways (256 KiB chunks)
    src = os.path.join(tmpdir_path, "in.bin")
    with open(src, "wb") as f:
        f.write(data)
    want = msgpack.packb(data, use_bin_type=True)  # the result: echo's msgpack bin
    raw = subprocess.run([JOBQ, "--redis", redis_server.url, "enqueue", "echo", "@" + src, "--wait",
                          "60", "--raw"], capture_output=True, timeout=120)
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == want
    dst = os.path.join(tmpdir_path, "out.bin")
    p = jobq("enqueue", "echo", "@" + src, "--id", "big", "--wait=60", "-o", dst,
             redis_url=redis_server.url, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    with open(dst, "rb") as f:
        assert f.read() == want
    # jobq wait -o of the same job: the same bytes, read back polling.
    dst2 = os.path.join(tmpdir_path, "again.bin")
    p = jobq("wait", "big", "-o", dst2, redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    with open(dst2, "rb") as f:
        assert f.read() == want
    # A dead job writes nothing into the file, and says why on stderr.
    dst3 = os.path.join(tmpdir_path, "dead.bin")
    p = jobq("enqueue", "fail", '{"message":"nope"}', "--max-attempts", "1", "--wait", "30",
             "--output", dst3, redis_url=redis_server.url)
    assert p.returncode == 1 and "nope" in p.stderr, (p.stdout, p.stderr)
    assert os.path.getsize(dst3) == 0
    # A path that cannot be written fails before anything is sent.
    # The stream's last id, not its length: the consumer trims acked
    # entries on its own clock (PROTOCOL §6), so the length may drop
    # meanwhile; an XADD would move the last id.
    last = r.xinfo_stream(stream())["last-generated-id"]
    p = jobq("enqueue", "noop", "--wait", "5", "-o", os.path.join(tmpdir_path, "no", "such"),
             redis_url=redis_server.url)
    assert p.returncode == 2 and "cannot write" in p.stderr, p.stderr
    assert r.xinfo_stream(stream())["last-generated-id"] == last
    # --raw without --wait is refused.
    p = jobq("enqueue", "noop", "--raw", redis_url=redis_server.url)
    assert p.returncode == 2 and "need --wait" in p.stderr, p.stderr
