"""Batches (issue 26, PROTOCOL §12): jobs over several queues and
consumers, and callbacks enqueued exactly once when a sealed batch's last
job ends, with the batch's counts; on-success only when none died; a seal
after every job ended still fires once; a job that ends twice (at least
once) counts once. Producers here are python3-redis with the script as
docs/PROTOCOL.md prints it, and the CLI."""
import hashlib
import json
import os
import re

from conftest import ROOT, jobq, scale, wait_for

QUEUES = ("qa", "qb")


def documented_script():
    text = open(os.path.join(ROOT, "docs", "PROTOCOL.md")).read()
    m = re.search(r"Every other step is one `EVAL` of the batch\s+script.*?:\n\n((?:    [^\n]*\n)+)",
                  text, re.S)
    assert m, "PROTOCOL.md has no batch script"
    return "".join(line[4:] + "\n" for line in m.group(1).rstrip("\n").split("\n"))


SCRIPT = documented_script()


def bkeys(bid):
    bq, name = bid.rsplit(":", 1)
    h = "jobq:{%s}:batch:%s" % (bq, name)
    return [h, h + ":ended", "jobq:{%s}:stream" % bq]


def create(r, bq, name, complete=True, success=True):
    """Creates a batch with a plain HSET, as any client may."""
    bid = "%s:%s" % (bq, name)
    f = {"id": bid, "queue": bq, "total": 0, "done": 0, "dead": 0, "cancelled": 0, "sealed": 0,
         "created_at": 1}
    if complete:
        f.update(on_complete_type="noop", on_complete_payload='{"n":%s}' % json.dumps(name))
    if success:
        f.update(on_success_type="noop", on_success_payload="null")
    r.hset(bkeys(bid)[0], mapping=f)
    return bid


def step(r, bid, *args):
    return r.eval(SCRIPT, 3, *bkeys(bid), *args)


def fill(r, bid, n, failing):
    """Adds n jobs over both queues, `failing` of them dead at once (a
    malformed sha256 payload is a permanent failure: test_permanent.py)."""
    step(r, bid, "add", n)
    p = r.pipeline(transaction=False)
    for i in range(n):
        q = QUEUES[i % 2]
        if i < failing:
            f = {"type": "sha256", "enc": "json", "payload": '{"data":"x","rounds":"many"}'}
        else:
            f = {"type": "noop"}
        f["batch"] = bid
        p.xadd("jobq:{%s}:stream" % q, f)
    p.execute()


def callbacks(r, bid):
    """The callback entries in the batch's queue (no consumer serves it,
    so each one enqueued stays there): {kind: payload dict}, and how many."""
    entries = r.xrange(bkeys(bid)[2])
    out = {}
    for _, f in entries:
        p = json.loads(f[b"payload"])
        assert f[b"id"].decode() == "%s:%s" % (bid, p["callback"])
        out[p["callback"]] = p
    return out, len(entries)


def two_consumers(consumer):
    for _ in range(2):
        consumer("--queues", ",".join(QUEUES), "--io-concurrency", "64")


def run_batch(r, bid, n, failing):
    """Fills a batch while its queues are paused, seals it, resumes them,
    so that its last jobs end together on both consumers; returns the
    callbacks once it fired."""
    for q in QUEUES:
        r.set("jobq:{%s}:paused" % q, 1)
    fill(r, bid, n, failing)
    # A pause bites within 100 ms (§5): under load the jobs may all have
    # ended already, and then the seal fires; either way, exactly once.
    step(r, bid, "seal")
    for q in QUEUES:
        r.delete("jobq:{%s}:paused" % q)
    wait_for(lambda: r.hget(bkeys(bid)[0], "fired"), timeout=30,
             what=lambda: "batch %s to fire: %r" % (bid, r.hgetall(bkeys(bid)[0])))
    # Every job's step has run (each ran before its own ack): wait for the
    # queues to drain, so that a second firing would have happened by now.
    wait_for(lambda: all(r.xpending("jobq:{%s}:stream" % q, "workers")["pending"] == 0
                         for q in QUEUES), what="the queues to drain")
    return callbacks(r, bid)


def check(r, bid, n, failing, got):
    cbs, count = got
    want = {"total": n, "done": n - failing, "dead": failing, "cancelled": 0}
    assert count == (1 if failing else 2), cbs
    assert {k: cbs["complete"][k] for k in want} == want, cbs
    assert cbs["complete"]["payload"] == {"n": bid.rsplit(":", 1)[1]}
    if not failing:
        assert {k: cbs["success"][k] for k in want} == want and cbs["success"]["payload"] is None
    h = r.hgetall(bkeys(bid)[0])
    assert [int(h[k]) for k in (b"total", b"done", b"dead", b"cancelled")] == \
        [n, n - failing, failing, 0], h
    assert r.scard(bkeys(bid)[1]) == n
    assert 0 < r.ttl(bkeys(bid)[0]) <= 86400


def test_callbacks_fire_exactly_once_over_two_consumers_and_two_queues(r, consumer):
    """20 batches of 60 jobs, then one of 1,000: each fires its callbacks
    exactly once with the right counts; on-success only when none died."""
    two_consumers(consumer)
    for rep in range(20):
        failing = (0, 1, 7)[rep % 3]
        bid = create(r, "cb%d" % rep, "r%d" % rep)
        check(r, bid, 60, failing, run_batch(r, bid, 60, failing))
    bid = create(r, "cbbig", "big")
    check(r, bid, 1000, 37, run_batch(r, bid, 1000, 37))


def test_seal_after_every_job_ended_fires_once(redis_server, r, consumer):
    """With the CLI: the jobs end before the seal; the seal fires, a
    second seal does not; a sealed batch takes no job."""
    consumer("--queues", ",".join(QUEUES))
    url = redis_server.url
    p = jobq("batch", "create", "-q", "late", "--on-complete", "noop", '{"k":"v"}',
             "--on-success", "noop", "[1]", redis_url=url)
    assert p.returncode == 0, p.stderr
    bid = p.stdout.strip()
    assert re.fullmatch(r"late:[0-9a-f]{16}", bid), bid
    for q in QUEUES:
        assert jobq("enqueue", "-q", q, "noop", "--batch", bid, redis_url=url).returncode == 0
    wait_for(lambda: json.loads(jobq("batch", "show", bid, "--json", redis_url=url).stdout)["done"]
             == 2, what="both jobs done")
    assert r.xlen("jobq:{late}:stream") == 0  # not sealed: nothing fired
    p = jobq("batch", "seal", bid, "--json", redis_url=url)
    b = json.loads(p.stdout)
    assert (b["sealed"], b["total"], b["pending"], b["done"]) == (True, 2, 0, 2), b
    assert b["fired_at"]
    cbs, count = callbacks(r, bid)
    assert count == 2 and cbs["success"]["payload"] == [1] and cbs["complete"]["done"] == 2
    assert jobq("batch", "seal", bid, redis_url=url).returncode == 0
    assert callbacks(r, bid)[1] == 2
    # The CLI sent the very text PROTOCOL.md prints (Redis caches EVAL's).
    assert r.script_exists(hashlib.sha1(SCRIPT.encode()).hexdigest()) == [True]
    p = jobq("enqueue", "-q", "qa", "noop", "--batch", bid, redis_url=url)
    assert p.returncode != 0 and "sealed" in p.stderr, p
    assert json.loads(jobq("batch", "show", bid, "--json", redis_url=url).stdout)["total"] == 2
    # Bad input: clear errors, exit 2 (or 1: no such batch).
    assert jobq("batch", "show", "nobatch", redis_url=url).returncode == 2
    assert jobq("batch", "show", "late:0000", redis_url=url).returncode == 1
    p = jobq("batch", "create", "--on-complete", "noop", "{bad", redis_url=url)
    assert p.returncode == 2 and "payload" in p.stderr, p
    p = jobq("enqueue", "noop", "--batch", "nocolon", redis_url=url)
    assert p.returncode == 2 and "batch" in p.stderr, p


def test_a_job_that_ends_twice_counts_once(r):
    """At least once: a worker killed after its `end` but before its ack
    runs the job again elsewhere, whose `end` repeats. Counted once; and
    a unique duplicate added to a batch is taken back out."""
    bid = create(r, "twice", "t1", success=False)
    step(r, bid, "add", 2)
    step(r, bid, "seal")
    assert step(r, bid, "end", "qa/job-1", "done") == [0, 2, 1, 0, 0]
    assert step(r, bid, "end", "qa/job-1", "dead") == [0, 2, 1, 0, 0]
    assert step(r, bid, "end", "qb/job-1", "dead") == [1, 2, 1, 1, 0]  # another queue's job-1
    assert step(r, bid, "end", "qb/job-1", "dead") == [0, 2, 1, 1, 0]
    assert callbacks(r, bid)[1] == 1
    for bad in (("end", "qa/x", "finished"), ("frob",), ("add", "x")):
        try:
            step(r, bid, *bad)
            assert False, bad
        except Exception as e:
            assert "ERR" in str(e) or "want" in str(e), e


def test_cancelled_jobs_count_as_ended(redis_server, r, consumer):
    """A batch's delayed job cancelled before it ran, and a running one
    cancelled: each counts as cancelled; the batch fires on-complete, not
    on-success."""
    consumer("--queues", ",".join(QUEUES))
    url = redis_server.url
    bid = jobq("batch", "create", "-q", "cbc", "--on-complete", "noop", "1", "--on-success", "noop",
               "2", redis_url=url).stdout.strip()
    later = jobq("enqueue", "-q", "qa", "noop", "--delay", "60000", "--batch", bid,
                 redis_url=url).stdout.strip()
    running = jobq("enqueue", "-q", "qb", "sleep", '{"ms":30000}', "--batch", bid,
                   redis_url=url).stdout.strip()
    done = jobq("enqueue", "-q", "qa", "noop", "--batch", bid, redis_url=url).stdout.strip()
    assert jobq("batch", "seal", bid, redis_url=url).returncode == 0
    wait_for(lambda: r.hget("jobq:{qb}:result:%s" % running, "state") == b"running" or
             r.xpending("jobq:{qb}:stream", "workers")["pending"] == 1, what="the sleep running")
    assert jobq("cancel", "-q", "qa", later, redis_url=url).returncode == 0
    assert jobq("cancel", "-q", "qb", running, redis_url=url).returncode == 0
    wait_for(lambda: r.hget(bkeys(bid)[0], "fired"), timeout=10,
             what=lambda: "the batch to fire: %r" % r.hgetall(bkeys(bid)[0]))
    b = json.loads(jobq("batch", "show", bid, "--json", redis_url=url).stdout)
    assert (b["total"], b["done"], b["dead"], b["cancelled"], b["pending"]) == (3, 1, 0, 2, 0), b
    cbs, count = callbacks(r, bid)
    assert count == 1 and cbs["complete"]["cancelled"] == 2 and cbs["complete"]["payload"] == 1
    assert r.hget("jobq:{qa}:result:%s" % later, "state") == b"cancelled"
    assert r.hget("jobq:{qa}:result:%s" % done, "state") == b"done"
