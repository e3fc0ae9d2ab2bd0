"""Browsing every job (issue 27): `jobq jobs list --state
ready|running|scheduled|done|dead` a page at a time, `jobq jobs show ID`
wherever the job is, and the index of done jobs kept only for a queue that
asks (`jobq jobs keep-done`)."""
import json
import time

import msgpack

from conftest import jobq, key, scale, stream, wait_for, wait_result, xadd


def ids_of(out):
    return [line.split()[0] for line in out.splitlines()[1:]]


def test_ready_jobs_page_by_entry_id(r, redis_server):
    # Enqueued by a foreign client (python3-redis), one with its own id.
    ids = [xadd(r, type="echo", payload={"i": i}) for i in range(5)]
    ids.append(xadd(r, type="echo", id="mine-7"))
    p = jobq("jobs", "list", "--count", "4", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    assert ids_of(p.stdout) == ids[:4]
    assert "(more: --after %s)" % ids[3] in p.stderr
    p = jobq("jobs", "list", "--after", ids[3], "--json", redis_url=redis_server.url)
    rows = json.loads(p.stdout)
    assert [j["id"] for j in rows] == [ids[4], "mine-7"]
    assert rows[0]["state"] == "ready" and rows[0]["type"] == "echo"
    assert "payload" not in rows[0]  # pages are brief
    p = jobq("jobs", "show", "mine-7", redis_url=redis_server.url)
    job = json.loads(p.stdout)
    assert job["state"] == "ready" and job["id"] == "mine-7", p.stdout


def test_running_scheduled_dead_and_show(r, redis_server, consumer):
    consumer("--shutdown-timeout-ms", "300")  # the sleep below is not waited for
    slow = xadd(r, type="sleep", payload={"ms": 30000})
    later = jobq("enqueue", "--delay", "600000", "--id", "later", "echo", '{"x":1}',
                 redis_url=redis_server.url)
    assert later.returncode == 0, later.stderr
    dead = xadd(r, type="fail", payload={"message": "no"}, max_attempts=1)
    wait_for(lambda: r.zscore(key("dead"), dead) is not None, what="job dead")
    wait_for(lambda: "sleep" in jobq("jobs", "list", "--state", "running",
                                     redis_url=redis_server.url).stdout, what="job running")
    rows = json.loads(jobq("jobs", "list", "--state", "running", "--json",
                           redis_url=redis_server.url).stdout)
    assert [j["id"] for j in rows] == [slow]
    assert ":" in rows[0]["consumer"] and int(rows[0]["deliveries"]) == 1
    p = jobq("jobs", "list", "--state", "scheduled", redis_url=redis_server.url)
    assert ids_of(p.stdout) == ["later"], p.stdout
    p = jobq("jobs", "list", "--state", "dead", redis_url=redis_server.url)
    assert ids_of(p.stdout) == [dead] and "no" in p.stdout, p.stdout
    for jid, state in ((slow, "running"), ("later", "scheduled"), (dead, "dead")):
        p = jobq("jobs", "show", jid, redis_url=redis_server.url)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["state"] == state, p.stdout
    assert json.loads(jobq("jobs", "show", "later", redis_url=redis_server.url).stdout)[
        "payload"] == {"x": 1}
    p = jobq("jobs", "show", "nowhere", redis_url=redis_server.url)
    assert p.returncode == 1 and "no job nowhere" in p.stderr


def test_done_index_only_for_a_queue_that_asks(r, redis_server, consumer):
    consumer("--queues", "plain,kept")
    first = [xadd(r, queue="plain", type="echo") for _ in range(3)]
    for jid in first:
        wait_result(r, jid, queue="plain")
    # Pay for what you use: no index key for a queue that did not ask.
    assert not r.exists(key("done", "plain"))
    p = jobq("jobs", "list", "-q", "plain", "--state", "done", redis_url=redis_server.url)
    assert ids_of(p.stdout) == [] and "keep-done" in p.stderr
    p = jobq("jobs", "keep-done", "-q", "kept", "3", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    # Workers read the setting within a second; wait until one job shows.
    probe = xadd(r, queue="kept", type="echo")
    deadline = time.time() + scale(10)
    while r.zscore(key("done", "kept"), probe) is None and time.time() < deadline:
        wait_result(r, probe, queue="kept")
        time.sleep(0.2)
        probe = xadd(r, queue="kept", type="echo")
    wait_result(r, probe, queue="kept")
    ids = [xadd(r, queue="kept", type="echo", payload={"i": i}) for i in range(5)]
    for jid in ids:
        wait_result(r, jid, queue="kept")
    wait_for(lambda: r.zcard(key("done", "kept")) == 3 and
             r.zrange(key("done", "kept"), 0, -1) and
             all(m.decode() in ids for m in r.zrange(key("done", "kept"), 0, -1)),
             what="index of the last 3")
    rows = json.loads(jobq("jobs", "list", "-q", "kept", "--state", "done", "--json",
                           redis_url=redis_server.url).stdout)
    # The newest three by finished_at, newest first. Not simply ids[-3:]:
    # two workers may finish the five in any order, and in one ms.
    ended = {j: int(r.hget(key("result:" + j, "kept"), "finished_at")) for j in ids}
    got = [row["id"] for row in rows]
    assert len(rows) == 3 and set(got) <= set(ids) and rows[0]["state"] == "done", rows
    assert [ended[j] for j in got] == sorted((ended[j] for j in got), reverse=True), (got, ended)
    assert min(ended[j] for j in got) >= max(ended[j] for j in ids if j not in got), (got, ended)
    p = jobq("jobs", "show", "-q", "kept", ids[-1], redis_url=redis_server.url)
    assert json.loads(p.stdout)["state"] == "done"
    p = jobq("jobs", "keep-done", "-q", "kept", "0", redis_url=redis_server.url)
    assert p.returncode == 0 and not r.exists(key("done", "kept"))


def test_bad_arguments(redis_server):
    for args, msg in ((["jobs", "list", "--state", "lost"], "--state"),
                      (["jobs", "list", "--state", "dead", "--after", "1-0"], "--after"),
                      (["jobs", "keep-done", "lots"], "want N"),
                      (["jobs", "show"], "missing ID"),
                      (["jobs", "frob"], "unknown subcommand")):
        p = jobq(*args, redis_url=redis_server.url)
        assert p.returncode == 2 and msg in p.stderr, (args, p.stderr)


def test_ready_and_running_go_through_the_priority_levels(r, redis_server, consumer):
    """A queue with levels (PROTOCOL §15) lists high, then normal, then
    low, each job saying its level; a page's cursor names its level, and
    an entry's own `priority` field (which workers ignore) does not."""
    u = redis_server.url
    low = r.xadd(stream() + ":low", {"type": "echo", "priority": "high"}).decode()
    normal = xadd(r, type="echo")
    high = [r.xadd(stream() + ":high", {"type": "echo"}).decode() for _ in range(2)]
    p = jobq("jobs", "list", redis_url=u)
    assert p.returncode == 0, p.stderr
    assert ids_of(p.stdout) == high + [normal, low], p.stdout
    assert [line.split()[4] for line in p.stdout.splitlines()[1:]] == [
        "high", "high", "normal", "low"], p.stdout
    p = jobq("jobs", "list", "--count", "2", redis_url=u)
    assert ids_of(p.stdout) == high and "(more: --after high:%s)" % high[1] in p.stderr
    rows = json.loads(jobq("jobs", "list", "--json", "--after", "high:" + high[1],
                           redis_url=u).stdout)
    assert [(j["id"], j["priority"]) for j in rows] == [(normal, "normal"), (low, "low")]
    # A bare entry id is normal's cursor, as before levels.
    rows = json.loads(jobq("jobs", "list", "--json", "--after", normal, redis_url=u).stdout)
    assert [(j["id"], j["priority"]) for j in rows] == [(low, "low")]
    p = jobq("jobs", "list", "--after", "urgent:" + normal, redis_url=u)
    assert p.returncode == 2 and "LEVEL:ENTRY" in p.stderr
    # Running: a worker holds a high and a low sleep.
    r.delete(stream(), stream() + ":high", stream() + ":low")
    consumer("--shutdown-timeout-ms", "300")
    slow_low = r.xadd(stream() + ":low", {"type": "sleep", "payload": msgpack.packb(
        {"ms": 30000})}).decode()
    slow_high = r.xadd(stream() + ":high", {"type": "sleep", "payload": msgpack.packb(
        {"ms": 30000})}).decode()

    def running():
        out = jobq("jobs", "list", "--state", "running", "--json", redis_url=u).stdout
        return [(j["id"], j["priority"]) for j in json.loads(out)]
    wait_for(lambda: len(running()) == 2, what="both running")
    assert running() == [(slow_high, "high"), (slow_low, "low")]
    p = jobq("jobs", "list", "--state", "running", redis_url=u)
    assert [line.split()[4] for line in p.stdout.splitlines()[1:]] == ["high", "low"], p.stdout
