"""The dashboard's pages of every job (issue 27) and its cancel button
(issue 26), over HTTP with python3's urllib against a real consumer:
ready, running, scheduled, done and dead jobs a page at a time (the cursor
gives the next page, never a row twice), a job wherever it is, bad
parameters refused with 400, and cancel refused without the admin token
(nothing cancelled) and done with it (a ready job ends `cancelled`). Jobs
are enqueued with python3-redis, a foreign client, as PROTOCOL §1 says."""
import json

from conftest import jobq, key, scale, wait_for, wait_result, xadd
from dashboard_util import TOKEN, api, dash, http, make_dead  # noqa: F401 (dash is a fixture)


def held(c, url, queue="held"):
    """Pauses queue, once the worker saw it: jobs enqueued now stay ready."""
    assert jobq("pause", queue, redis_url=url).returncode == 0
    c.wait_log(r"queue %s paused" % queue)


def walk(base, path, count):
    """Every page of path, following `next`; returns the rows, in order."""
    rows, cursor, pages = [], None, 0
    while True:
        page = api(base, path + "&count=%d" % count + ("&cursor=" + cursor if cursor else ""))
        rows += page["jobs"]
        pages += 1
        assert len(page["jobs"]) <= count
        cursor = page["next"]
        if cursor is None:
            return rows, pages
        assert pages < 50, "paging never ends"


def test_pages_of_every_state_follow_the_cursor(r, redis_server, dash):
    url = redis_server.url
    c, base = dash("--queues", "held,work", "--shutdown-timeout-ms", "300")
    held(c, url)
    ready = [xadd(r, queue="held", type="echo", payload={"i": i}) for i in range(7)]
    ready.append(xadd(r, queue="held", type="echo", id="mine-1"))
    rows, pages = walk(base, "queues/held/jobs?state=ready", 3)
    assert [j["id"] for j in rows] == ready and pages == 3, "each job once, in order"
    assert rows[0]["type"] == "echo" and rows[0]["entry_id"] == ready[0]
    assert rows[-1]["id"] == "mine-1" and rows[-1]["entry_id"] != "mine-1"
    # The default state is ready; a page of exactly the rest ends the walk.
    page = api(base, "queues/held/jobs?count=8")
    assert page["state"] == "ready" and len(page["jobs"]) == 8 and page["total"] is None
    assert api(base, "queues/held/jobs?count=8&cursor=" + page["next"]) == \
        {"queue": "held", "state": "ready", "next": None, "total": None, "jobs": []}

    # Levels (PROTOCOL §15): high first, then normal, then low; a page
    # that ends in high or low goes on in that level's stream.
    hi = [r.xadd(key("stream:high", "held"), {"type": "echo", "enc": "json", "payload": "1"}).decode()
          for _ in range(2)]
    lo = r.xadd(key("stream:low", "held"), {"type": "echo", "enc": "json", "payload": "1"}).decode()
    page = api(base, "queues/held/jobs?count=1")
    assert page["jobs"][0]["priority"] == "high" and page["next"] == "high:" + hi[0]
    rows, _ = walk(base, "queues/held/jobs?state=ready", 3)
    assert [j["id"] for j in rows] == hi + ready + [lo]
    assert [j["priority"] for j in rows] == ["high"] * 2 + ["normal"] * 8 + ["low"]

    # Running, scheduled, dead and done on a queue that keeps done jobs.
    assert jobq("jobs", "keep-done", "-q", "work", "10", redis_url=url).returncode == 0
    slow = xadd(r, queue="work", type="sleep", payload={"ms": 30000})
    for i in range(5):
        p = jobq("enqueue", "-q", "work", "--delay", "600000", "--id", "later-%d" % i, "echo",
                 "{}", redis_url=url)
        assert p.returncode == 0, p.stderr
    wait_for(lambda: api(base, "queues/work/jobs?state=running")["jobs"], what="job running")
    [run] = api(base, "queues/work/jobs?state=running")["jobs"]
    assert run["id"] == slow and run["deliveries"] == 1 and ":" in run["consumer"]
    assert isinstance(run["idle_ms"], int)
    rows, pages = walk(base, "queues/work/jobs?state=scheduled", 2)
    assert [j["id"] for j in rows] == ["later-%d" % i for i in range(5)] and pages == 3
    sched = api(base, "queues/work/jobs?state=scheduled&count=2&cursor=2")
    assert sched["total"] == 5 and sched["next"] == "4"
    for i in range(4):
        make_dead(r, "d-%d" % i, queue="work", died_at=1796000000000 + i)
    rows, _ = walk(base, "queues/work/jobs?state=dead", 3)
    assert [j["id"] for j in rows] == ["d-3", "d-2", "d-1", "d-0"], "newest death first"
    assert rows[0]["error"] == "boom" and rows[0]["at"] == 1796000000003
    # The workers read keep-done within a second: jobs enqueued after it
    # is seen land in the index.
    wait_for(lambda: (wait_result(r, xadd(r, queue="work", type="echo"), queue="work") and
                      r.zcard(key("done", "work")) > 0), timeout=scale(10), what="done index")
    done = [xadd(r, queue="work", type="echo", payload={"n": i}) for i in range(3)]
    for jid in done:
        wait_result(r, jid, queue="work")
    wait_for(lambda: r.zscore(key("done", "work"), done[-1]) is not None, what="indexed")
    page = api(base, "queues/work/jobs?state=done&count=3")
    assert {j["id"] for j in page["jobs"]} == set(done) and page["jobs"][0]["state"] == "done"

    # A job's page: what `jobq jobs show` prints, payload and result as
    # bounded previews.
    for jid, state in ((ready[0], "ready"), (slow, "running"), ("later-1", "scheduled"),
                       ("d-0", "dead"), (done[0], "done"), ("mine-1", "ready")):
        job = api(base, "queues/%s/jobs/%s" % ("held" if state == "ready" else "work", jid))
        cli = json.loads(jobq("jobs", "show", "-q", "held" if state == "ready" else "work", jid,
                              redis_url=url).stdout)
        assert job["state"] == cli["state"] == state and job["id"] == jid
    job = api(base, "queues/held/jobs/" + ready[2])
    assert job["payload"]["kind"] == "json" and json.loads(job["payload"]["text"]) == {"i": 2}
    job = api(base, "queues/work/jobs/" + done[1])
    assert json.loads(job["result"]["text"]) == {"n": 1}
    # The result hash's counters and times are numbers, as in `jobq
    # enqueue --wait`'s line, not the strings Redis keeps.
    assert job["attempts"] == 1
    assert job["finished_at"] == int(r.hget(key("result:" + done[1], "work"), "finished_at"))
    assert api(base, "queues/work/jobs/nowhere", want=404)["error"] == "no such job"


def test_a_job_that_died_in_a_worker_shows_its_payload(r, dash):
    """It has a result hash (state dead) and its job hash in the dead set:
    the page (and `jobq jobs show`) reads the latter, with type and
    payload, as the old dead panel did, while the job is in the set."""
    _, base = dash()
    jid = xadd(r, type="fail", payload={"message": "card declined"}, max_attempts=1)
    assert wait_result(r, jid)["state"] == b"dead"
    wait_for(lambda: r.zscore(key("dead"), jid) is not None, what="job in the dead set")
    job = api(base, "queues/default/jobs/" + jid)
    assert job["state"] == "dead" and job["type"] == "fail" and job["attempt"] == 1
    assert json.loads(job["payload"]["text"]) == {"message": "card declined"}
    assert job["at"] == int(r.zscore(key("dead"), jid))
    # Trimmed from the set, the result hash is what is left to show.
    r.zrem(key("dead"), jid)
    r.delete(key("job:" + jid))
    job = api(base, "queues/default/jobs/" + jid)
    assert job["state"] == "dead" and job["attempts"] == 1 and job["payload"]["kind"] == "none"


def test_bad_parameters_get_400_with_a_reason(r, dash):
    _, base = dash()
    xadd(r, type="noop")
    for q, why in (("state=lost", "state"), ("state=", "state"), ("state=READY", "state"),
                   ("count=0", "count"), ("count=501", "count"), ("count=x", "count"),
                   ("cursor=abc", "cursor"), ("cursor=1-", "cursor"), ("cursor=mid:1-0", "cursor"),
                   ("cursor=high:", "cursor"), ("cursor=-1", "cursor"),
                   ("cursor=1-2%20", "cursor"), ("cursor=" + "1" * 60 + "-0", "cursor"),
                   ("state=dead&cursor=1-0", "cursor"), ("state=done&cursor=-3", "cursor"),
                   ("state=running&cursor=7", "cursor")):
        err = api(base, "queues/default/jobs?" + q, want=400)["error"]
        assert err.startswith(why), (q, err)
    assert api(base, "queues/bad%20name/jobs", want=400)["error"].startswith("bad queue")
    assert api(base, "queues/default/jobs/bad%21id", want=400)["error"].startswith("bad job id")
    assert api(base, "queues/default/jobs/x/y", want=404)
    assert api(base, "queues/default/jobs/x/cancel", want=405)  # a GET on an action
    status, _, hdr = http(base, "/api/queues/default/jobs", method="POST", token=TOKEN)
    assert status == 405 and hdr["allow"] == "GET"


def test_cancel_needs_the_token_then_a_ready_job_ends_cancelled(r, redis_server, dash):
    url = redis_server.url
    c, base = dash("--queues", "held", token=TOKEN)
    held(c, url)
    jid = xadd(r, queue="held", type="noop", notify="1")
    path = "/api/queues/held/jobs/%s/cancel" % jid
    for tok, hdr in ((None, None), ("wrong-token-wrong-token", None),
                     (None, {"Cookie": "token=" + TOKEN})):
        status, raw, _ = http(base, path, method="POST", token=tok, headers=hdr)
        assert status == 401, (tok, hdr, raw)
    assert r.zcard(key("cancel", "held")) == 0, "nothing asked"
    assert api(base, "queues/held/jobs/" + jid)["state"] == "ready"

    out = api(base, path[5:], method="POST", token=TOKEN)
    assert out == {"ok": True, "action": "cancel", "queue": "held", "id": jid,
                   "outcome": "requested", "state": None}
    assert api(base, path[5:], method="POST", token=TOKEN)["outcome"] == "pending"
    assert jobq("resume", "held", redis_url=url).returncode == 0
    # Its waiter is told `cancelled` (wait_result pops the notify list).
    assert wait_result(r, jid, queue="held")["state"] == b"cancelled"
    again = api(base, path[5:], method="POST", token=TOKEN)
    assert (again["outcome"], again["state"]) == ("ended", "cancelled")
    assert api(base, "queues/held/jobs/" + jid)["state"] == "cancelled"

    # A delayed job is removed at once; a job that is nowhere is 404.
    p = jobq("enqueue", "-q", "held", "--delay", "600000", "--id", "later", "noop", "{}",
             redis_url=url)
    assert p.returncode == 0, p.stderr
    out = api(base, "queues/held/jobs/later/cancel", method="POST", token=TOKEN)
    assert (out["outcome"], out["state"]) == ("cancelled", "cancelled")
    assert r.zscore(key("scheduled", "held"), "later") is None
    assert api(base, "queues/held/jobs/nosuch/cancel", method="POST", token=TOKEN,
               want=404)["error"] == "no such job"
    log = c.log()
    assert "dashboard: cancel job %s of queue held" % jid in log and TOKEN not in log


def test_cancel_on_a_read_only_dashboard_is_403(r, redis_server, dash):
    _, base = dash()
    jid = xadd(r, queue="nobody", type="noop")
    err = api(base, "queues/nobody/jobs/%s/cancel" % jid, method="POST", token=TOKEN, want=403)
    assert "--admin-token" in err["error"]
    assert r.zcard(key("cancel", "nobody")) == 0
