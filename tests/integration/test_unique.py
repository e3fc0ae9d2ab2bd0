"""Unique jobs (issue 26, PROTOCOL §10): while a job holding a key is
queued, delayed, retrying or running, an enqueue with the key adds nothing
and answers with the holder's id, atomically from any number of clients
(one script, whose text docs/PROTOCOL.md prints and python3-redis runs
here); the worker gives the key back when the job ends, or lets it expire
at --unique-for's end; a job whose worker was killed gives it back when it
is reclaimed and ends."""
import hashlib
import json
import multiprocessing
import os
import re
import signal
import time

import redis as redislib

from conftest import JOBQ, ROOT, jobq, key, scale, wait_for, wait_result

UKEY = "jobq:{default}:unique:%s"


def documented_script():
    """The enqueue script as docs/PROTOCOL.md §10 prints it: the indented
    block after the line that names it."""
    text = open(os.path.join(ROOT, "docs", "PROTOCOL.md")).read()
    m = re.search(r"The enqueue\s+script.*?:\n\n((?:    [^\n]*\n)+)", text, re.S)
    assert m, "PROTOCOL.md has no enqueue script"
    return "".join(line[4:] + "\n" for line in m.group(1).rstrip("\n").split("\n"))


def py_enqueue(port, script, ukey, n, out):
    """n enqueues with python3-redis through the documented script."""
    r = redislib.Redis(port=port)
    for _ in range(n):
        added, jid = r.eval(script, 2, UKEY % ukey, "jobq:{default}:stream", ukey, 0, 0,
                            "type", "sleep", "enc", "json", "payload", '{"ms":300}')
        out.put((added, jid.decode()))


def cli_enqueue(url, ukey, n, out):
    for _ in range(n):
        p = jobq("enqueue", "sleep", '{"ms":300}', "--unique", ukey, "--json", redis_url=url)
        assert p.returncode == 0, p.stderr
        o = json.loads(p.stdout)
        out.put((0 if o["duplicate"] else 1, o["id"]))


def race(redis_server, ukey):
    """50 enqueues of one key from 5 processes at once: 3 with python3-redis,
    2 with the CLI. Returns [(added, id)]."""
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=py_enqueue, args=(redis_server.port, documented_script(),
                                                              ukey, 10, q)) for _ in range(3)]
    procs += [multiprocessing.Process(target=cli_enqueue, args=(redis_server.url, ukey, 10, q))
              for _ in range(2)]
    for p in procs:
        p.start()
    got = [q.get(timeout=scale(60)) for _ in range(50)]
    for p in procs:
        p.join(scale(10))
        assert p.exitcode == 0
    return got


def test_fifty_concurrent_enqueues_make_one_job(redis_server, r, consumer):
    got = race(redis_server, "report-7")
    ids = {jid for _, jid in got}
    assert len(ids) == 1, got
    assert sum(added for added, _ in got) == 1, got
    (jid,) = ids
    assert r.xlen(key("stream")) == 1
    assert r.get(UKEY % "report-7") == jid.encode()
    # The CLI sent the very text PROTOCOL.md prints (Redis caches EVAL's).
    sha = hashlib.sha1(documented_script().encode()).hexdigest()
    assert r.script_exists(sha) == [True]
    # While it runs, still one.
    consumer()
    wait_for(lambda: r.xpending(key("stream"), "workers")["pending"] == 1, what="the job running")
    p = jobq("enqueue", "sleep", '{"ms":300}', "--unique", "report-7", redis_url=redis_server.url)
    assert p.returncode == 0 and p.stdout.strip() == jid, p
    assert wait_result(r, jid)["state"] == b"done"
    wait_for(lambda: r.get(UKEY % "report-7") is None, what="the key given back")
    # Once it ended, the key makes a new job.
    p = jobq("enqueue", "noop", "--unique", "report-7", "--json", redis_url=redis_server.url)
    o = json.loads(p.stdout)
    assert o["duplicate"] is False and o["id"] != jid, o
    assert wait_result(r, o["id"])["state"] == b"done"


def test_unique_for_holds_after_the_end(redis_server, r, consumer):
    consumer()
    url = redis_server.url
    first = jobq("enqueue", "noop", "--unique", "daily", "--unique-for", "%gs" % scale(2),
                 redis_url=url).stdout.strip()
    assert wait_result(r, first)["state"] == b"done"
    assert 0 < r.pttl(UKEY % "daily") <= scale(2000)
    p = jobq("enqueue", "noop", "--unique", "daily", "--json", redis_url=url)
    assert json.loads(p.stdout) == {"id": first, "queue": "default", "duplicate": True}
    wait_for(lambda: r.get(UKEY % "daily") is None, timeout=5, what="the hold to pass")
    second = jobq("enqueue", "noop", "--unique", "daily", redis_url=url).stdout.strip()
    assert second != first
    # A job running past its hold keeps the key until it ends.
    third = jobq("enqueue", "sleep", '{"ms":%d}' % scale(1500), "--unique", "slow", "--unique-for",
                 "100ms", redis_url=url).stdout.strip()
    wait_for(lambda: r.hget(key("result:%s" % second), "state") == b"done", what="second done")
    time.sleep(0.3)  # past the 100 ms hold: the point of the check below
    assert r.get(UKEY % "slow") == third.encode() and r.pttl(UKEY % "slow") == -1
    assert wait_result(r, third)["state"] == b"done"
    wait_for(lambda: r.get(UKEY % "slow") is None, what="the key given back at the end")


def test_delayed_and_dead_jobs_hold_and_give_back(redis_server, r, consumer):
    # A retry waits about a second (0.8 to 1.2 s): the enqueue below comes
    # while it is retrying, not after it died, even under the sanitizers.
    consumer("--backoff-ms", "%d" % scale(1000))
    url = redis_server.url
    jid = jobq("enqueue", "noop", "--unique", "later", "--delay", "%d" % scale(800),
               redis_url=url).stdout.strip()
    assert r.zscore(key("scheduled"), jid) is not None
    assert jobq("enqueue", "noop", "--unique", "later", redis_url=url).stdout.strip() == jid
    assert wait_result(r, jid)["state"] == b"done"
    wait_for(lambda: r.get(UKEY % "later") is None, what="the delayed job's key given back")
    # Retrying holds it; dead gives it back.
    jid = jobq("enqueue", "fail", '{"message":"no"}', "--max-attempts", "2", "--unique", "flaky",
               redis_url=url).stdout.strip()
    wait_for(lambda: r.hget(key("result:%s" % jid), "state") == b"retrying", what="a retry")
    assert jobq("enqueue", "noop", "--unique", "flaky", redis_url=url).stdout.strip() == jid
    assert wait_result(r, jid)["state"] == b"dead"
    wait_for(lambda: r.get(UKEY % "flaky") is None, what="the dead job's key given back")
    # A key taken over since is not freed by the old job (compare-and-delete).
    r.set(UKEY % "other", "someone-else")
    jid = redis_server.cli("XADD", "jobq:{default}:stream", "*", "type", "noop", "unique",
                           "other").strip()
    assert wait_result(r, jid)["state"] == b"done"
    assert r.get(UKEY % "other") == b"someone-else"
    # Bad input: a clear error, nothing added.
    p = jobq("enqueue", "noop", "--unique", "bad key!", redis_url=url)
    assert p.returncode == 2 and "unique key" in p.stderr, p
    p = jobq("enqueue", "noop", "--unique-for", "1h", redis_url=url)
    assert p.returncode == 2 and "--unique-for needs --unique" in p.stderr, p
    try:
        r.eval(documented_script(), 2, UKEY % "x y", key("stream"), "x y", 0, 0, "type", "noop")
        assert False, "a bad key was taken"
    except redislib.ResponseError as e:
        assert "bad unique key" in str(e)


def test_a_killed_workers_key_is_given_back_when_its_job_ends(redis_server, r, consumer):
    c = consumer("--visibility-ms", "%d" % scale(1000))
    jid = jobq("enqueue", "sleep", '{"ms":%d}' % scale(1000), "--unique", "crashy",
               redis_url=redis_server.url).stdout.strip()
    wait_for(lambda: r.xpending(key("stream"), "workers")["pending"] == 1, what="the job running")
    (pid,) = c.worker_pids()
    os.kill(pid, signal.SIGKILL)
    assert r.get(UKEY % "crashy") == jid.encode()  # held while it waits to run again
    res = wait_result(r, jid, timeout=20)
    assert res["state"] == b"done", res
    wait_for(lambda: r.get(UKEY % "crashy") is None, what="the key given back")
    assert jobq("enqueue", "noop", "--unique", "crashy",
                redis_url=redis_server.url).stdout.strip() != jid


def test_a_cancelled_job_gives_its_key_back(redis_server, r, consumer):
    """Cancelled is an end (PROTOCOL §11): a delayed job removed by `jobq
    cancel` and a running one stopped by its worker both give back their
    keys."""
    consumer()
    url = redis_server.url
    jid = jobq("enqueue", "noop", "--unique", "c1", "--delay", "60000", redis_url=url).stdout.strip()
    assert r.get(UKEY % "c1") == jid.encode()
    p = jobq("cancel", jid, redis_url=url)
    assert p.returncode == 0, p
    assert r.get(UKEY % "c1") is None
    jid = jobq("enqueue", "sleep", '{"ms":30000}', "--unique", "c2", redis_url=url).stdout.strip()
    wait_for(lambda: r.xpending(key("stream"), "workers")["pending"] == 1, what="the job running")
    assert jobq("cancel", jid, redis_url=url).returncode == 0
    wait_for(lambda: r.hget(key("result:%s" % jid), "state") == b"cancelled", what="cancelled")
    wait_for(lambda: r.get(UKEY % "c2") is None, what="the key given back")
