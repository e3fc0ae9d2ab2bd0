"""The web dashboard's JSON API (issue 11), over HTTP with python3's
urllib against a real consumer started with --metrics-addr: counts after a
known set of jobs, paging, a job's detail, actions refused without the
admin token and done with it (checked in Redis with python3-redis), job
data that comes back escaped, and the headers and limits that keep a
browser safe. The browser itself is test_dashboard_browser.py."""
import json
import socket
import subprocess
import threading
import time

from conftest import CONSUMER, jobq, key, scale, wait_for, wait_result, xadd
from dashboard_util import TOKEN, api, dash, http, make_dead  # noqa: F401 (dash is a fixture)


def held_job(c, url):
    """1 job in the queue `held`, enqueued once the worker saw the pause (a
    read it blocked in before it saw the pause could still take the job)."""
    assert jobq("pause", "held", redis_url=url).returncode == 0
    c.wait_log(r"queue held paused")
    assert jobq("enqueue", "noop", "-q", "held", "--id", "h1", redis_url=url).returncode == 0


def known_jobs(r, url):
    """4 done, 1 failing (one attempt) and 1 unknown type (both dead), 3
    delayed ten minutes."""
    done = [xadd(r, type="noop") for _ in range(4)]
    failing = xadd(r, type="fail", payload={"message": "declined"}, max_attempts="1")
    unknown = xadd(r, type="nosuch", id="odd-1")
    for i in range(3):
        p = jobq("enqueue", "noop", "--delay", "600000", "--id", "later-%d" % i, redis_url=url)
        assert p.returncode == 0, p.stderr
    for j in done:
        assert wait_result(r, j)["state"] == b"done"
    assert wait_result(r, failing)["state"] == b"dead"
    assert wait_result(r, unknown)["state"] == b"dead"
    return failing, unknown


def test_counts_after_a_known_set_of_jobs(r, redis_server, dash):
    c, base = dash("--queues", "default,held")
    held_job(c, redis_server.url)
    failing, unknown = known_jobs(r, redis_server.url)
    wait_for(lambda: api(base, "overview")["stats"]["workers"], what="a worker in the overview")
    ov = api(base, "overview")
    assert ov["read_only"] is True and ov["heartbeat_ms"] == 1000
    qs = {q["queue"]: q for q in ov["stats"]["queues"]}
    assert set(qs) == {"default", "held"}
    d = qs["default"]
    assert (d["ready"], d["running"], d["scheduled"], d["dead"], d["paused"]) == (0, 0, 3, 2, False)
    assert (d["processed"], d["failed"], d["dead_total"]) == (4, 1, 2)
    assert d["run"]["count"] == 5 and d["run"]["p50_ms"] is not None
    h = qs["held"]
    assert (h["ready"], h["paused"], h["processed"]) == (1, True, 0)
    # The same snapshot `jobq stats --json` prints.
    p = jobq("stats", "--json", redis_url=redis_server.url)
    cli = {q["queue"]: q for q in json.loads(p.stdout)["queues"]}
    for name in ("default", "held"):
        for f in ("ready", "running", "scheduled", "dead", "paused", "processed", "failed"):
            assert cli[name][f] == qs[name][f], (name, f)
    [w] = ov["stats"]["workers"]
    assert w["pid"] in c.worker_pids() and w["queues"] == ["default", "held"]

    dead = api(base, "queues/default/dead")
    assert dead["total"] == 2 and dead["start"] == 0
    assert [j["id"] for j in dead["jobs"]] == [unknown, failing]  # newest first
    by_id = {j["id"]: j for j in dead["jobs"]}
    assert by_id[failing]["type"] == "fail" and by_id[failing]["error"] == "declined"
    assert by_id[failing]["attempts"] == 1
    assert by_id[unknown]["error"] == "unknown job type: nosuch"
    assert by_id[failing]["died_at"] == int(r.zscore(key("dead"), failing))

    sched = api(base, "queues/default/scheduled")
    assert sched["total"] == 3
    assert sorted(j["id"] for j in sched["jobs"]) == ["later-0", "later-1", "later-2"]
    now = time.time() * 1000
    for j in sched["jobs"]:
        assert j["due_at"] == int(r.zscore(key("scheduled"), j["id"]))
        assert now < j["due_at"] < now + 600000 + 1000
        assert j["type"] == "noop"

    hist = api(base, "history?minutes=5")
    assert sum(hist["queues"]["default"]["processed"]) == 4
    assert len(hist["queues"]["default"]["failed"]) == 5


def test_paging_and_detail(r, dash):
    _, base = dash()
    now = int(time.time() * 1000)
    for i in range(30):
        make_dead(r, "p-%02d" % i, died_at=now - 100000 + i)
    page = api(base, "queues/default/dead?start=10&count=7")
    assert page["total"] == 30 and page["start"] == 10
    assert [j["id"] for j in page["jobs"]] == ["p-%02d" % i for i in range(19, 12, -1)]
    assert api(base, "queues/default/dead?start=30")["jobs"] == []
    for bad in ("count=0", "count=501", "start=-1", "start=x", "count=1e3"):
        assert "error" in api(base, "queues/default/dead?" + bad, want=400)
    assert api(base, "queues/bad name!/dead".replace(" ", "%20"), want=400)["error"].startswith("bad queue")
    assert api(base, "queues/default/dead/nope", want=404)["error"] == "no such dead job"
    assert api(base, "nothing", want=404)

    make_dead(r, "js-1", payload={"user": 7, "tags": ["a", "b"]})
    d = api(base, "queues/default/dead/js-1")
    assert (d["id"], d["queue"], d["type"], d["error"], d["attempt"]) == ("js-1", "default", "echo", "boom", 3)
    assert d["payload"]["kind"] == "json" and not d["payload"]["truncated"]
    assert json.loads(d["payload"]["text"]) == {"user": 7, "tags": ["a", "b"]}

    make_dead(r, "bin-1", payload=bytes(range(256)) * 4)
    d = api(base, "queues/default/dead/bin-1")["payload"]
    assert (d["kind"], d["size"], d["truncated"]) == ("binary", 1024, True)
    assert d["text"].startswith("00000000  00 01 02 03")

    make_dead(r, "big-1", payload={"text": "x" * 200000})
    d = api(base, "queues/default/dead/big-1")["payload"]
    assert d["kind"] == "json" and d["truncated"] and len(d["text"]) == 65536


def test_read_only_without_a_token(r, redis_server, dash):
    c, base = dash()
    make_dead(r, "d1")
    for path in ("queues/default/pause", "queues/default/dead/d1/retry",
                 "queues/default/dead/d1/delete", "queues/default/dead/retry-all"):
        err = api(base, path, method="POST", token=TOKEN, want=403)["error"]
        assert "--admin-token" in err and "JOBQ_ADMIN_TOKEN" in err
    assert not r.exists(key("paused"))
    assert r.zscore(key("dead"), "d1") is not None and r.exists(key("job:d1"))
    assert http(base, "/")[0] == 200
    assert "read-only: no --admin-token" in c.log()


def test_actions_need_the_token_and_follow_the_protocol(r, redis_server, dash):
    c, base = dash(token=TOKEN)
    assert api(base, "overview")["read_only"] is False
    for tok, hdr in ((None, None), ("wrong-token-wrong-token", None), (TOKEN + "x", None),
                     (None, {"Authorization": TOKEN}), (None, {"Cookie": "token=" + TOKEN}),
                     (None, {"X-Admin-Token": TOKEN})):
        status, raw, _ = http(base, "/api/queues/default/pause", method="POST", token=tok, headers=hdr)
        assert status == 401, (tok, hdr, raw)
    assert not r.exists(key("paused"))

    assert api(base, "queues/default/pause", method="POST", token=TOKEN) == \
        {"ok": True, "action": "pause", "queue": "default"}
    assert r.get(key("paused")) == b"1"
    # Paused: once the worker saw it, a job enqueued waits.
    c.wait_log(r"queue default paused")
    jid = xadd(r, type="noop")
    time.sleep(0.5)   # nothing happening is the point: the job waits
    assert not r.exists(key("result:" + jid))
    api(base, "queues/default/resume", method="POST", token=TOKEN)
    assert not r.exists(key("paused"))
    assert wait_result(r, jid)["state"] == b"done"

    # A dead job whose cause is gone (an echo): retried, it runs.
    make_dead(r, "again-1", payload={"n": 1})
    r.rpush(key("notify:again-1"), "dead")  # the old run's wake-up
    api(base, "queues/default/dead/again-1/retry", method="POST", token=TOKEN)
    res = wait_result(r, "again-1")
    assert res["state"] == b"done" and res["attempts"] == b"1"
    assert r.zscore(key("dead"), "again-1") is None
    assert api(base, "queues/default/dead/again-1/retry", method="POST", token=TOKEN, want=404)

    for i in range(3):
        make_dead(r, "all-%d" % i, payload=i)
    make_dead(r, "gone-1")
    api(base, "queues/default/dead/gone-1/delete", method="POST", token=TOKEN)
    assert not r.exists(key("job:gone-1")) and r.zscore(key("dead"), "gone-1") is None
    out = api(base, "queues/default/dead/retry-all", method="POST", token=TOKEN)
    assert out["count"] == 3
    for i in range(3):
        assert wait_result(r, "all-%d" % i)["state"] == b"done"
    assert r.zcard(key("dead")) == 0
    log = c.log()
    assert "dashboard: pause queue default" in log and "dashboard: retry dead job again-1" in log
    assert TOKEN not in log, "the token is never logged"
    assert "refused" in log and "without a valid admin token" in log


def test_job_data_comes_back_escaped(r, dash):
    _, base = dash()
    evil = "<script>alert('x')</script><img src=x onerror=alert(1)>&amp;"
    make_dead(r, "evil-1", payload={"html": evil}, error=evil)
    for path in ("/api/queues/default/dead", "/api/queues/default/dead/evil-1"):
        status, raw, hdr = http(base, path)
        assert status == 200
        for ch in (b"<", b">", b"&"):
            assert ch not in raw, (path, raw[:300])
        assert b"\\u003cscript\\u003e" in raw
        assert hdr["x-content-type-options"] == "nosniff"
    d = json.loads(http(base, "/api/queues/default/dead/evil-1")[1])
    assert d["error"] == evil
    assert json.loads(d["payload"]["text"]) == {"html": evil}
    assert json.loads(http(base, "/api/queues/default/dead")[1])["jobs"][0]["error"] == evil


def test_page_headers_and_no_inline_script(dash):
    _, base = dash()
    status, raw, hdr = http(base, "/")
    assert status == 200 and hdr["content-type"] == "text/html; charset=utf-8"
    csp = hdr["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert hdr["x-frame-options"] == "DENY"
    page = raw.decode()
    assert page.count("<script") == 2 and '<script src="/app.js" defer></script>' in page
    assert '<script src="/jobs.js" defer></script>' in page
    assert "http://" not in page and "https://" not in page, "the page loads nothing from elsewhere"
    for name in ("/app.js", "/jobs.js"):
        status, js, hdr = http(base, name)
        assert status == 200 and hdr["content-type"].startswith("text/javascript")
        assert b"innerHTML" not in js and b"eval(" not in js
    assert http(base, "/app.css")[0] == 200
    assert http(base, "/nothing.js")[0] == 404
    status, raw, hdr = http(base, "/api/overview", method="PUT")
    assert status == 405
    # docs/API.md: a wrong method is 405 with Allow, an action read with GET too.
    status, raw, hdr = http(base, "/api/queues/default/pause")
    assert status == 405 and hdr["allow"] == "POST", (status, raw, hdr)
    status, raw, hdr = http(base, "/api/overview", method="POST")
    assert status == 405 and hdr["allow"] == "GET", (status, raw, hdr)
    status, _, hdr = http(base, "/", method="HEAD")
    assert status == 200


def test_bounded_requests_and_a_busy_dashboard(r, dash):
    c, base = dash(token=TOKEN)
    # A body on an action: refused before anything is done.
    status, raw, _ = http(base, "/api/queues/default/pause", method="POST", token=TOKEN, body=b"x" * 5000)
    assert status == 413 and not r.exists(key("paused"))
    status, _, _ = http(base, "/api/queues/default/dead?" + "a" * 3000)
    assert status in (400, 414, 431)
    # Many clients at once: every one gets an answer (200, or 503 when the
    # queue of waiting API requests is full), and the server still answers.
    results = []

    def one():
        try:
            results.append(http(base, "/api/overview")[0])
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))
    threads = [threading.Thread(target=one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scale(30))
    assert len(results) == 40 and set(results) <= {200, 503}, results
    assert results.count(200) >= 16
    assert api(base, "overview")["stats"] is not None
    assert http(base, "/healthz")[0] == 200


def test_dashboard_off_and_bad_token(redis_server, dash, tmpdir_path):
    _, base = dash("--dashboard=0")
    assert http(base, "/")[0] == 404
    assert http(base, "/api/overview")[0] == 404
    p = subprocess.run([CONSUMER, "--redis", redis_server.url, "--metrics-addr", "127.0.0.1:0",
                        "--admin-token", "short"], capture_output=True, text=True, timeout=scale(20))
    assert p.returncode == 2 and "--admin-token: at least 16 characters" in p.stderr
    assert "short" not in p.stderr.replace("--admin-token: at least", "")


def test_a_hung_redis_gets_an_answer_and_the_dashboard_recovers(r, redis_server, dash):
    import signal as sig
    _, base = dash()
    assert api(base, "overview")["stats"] is not None
    redis_server.proc.send_signal(sig.SIGSTOP)
    try:
        # Each Redis command of the dashboard is bounded (4 s), well inside
        # httpd's 10 s: the page hears of it instead of waiting.
        status, raw, _ = http(base, "/api/overview")
        assert status in (503, 504), (status, raw)
        assert http(base, "/")[0] == 200, "the page itself needs no Redis"
    finally:
        redis_server.proc.send_signal(sig.SIGCONT)
    wait_for(lambda: http(base, "/api/overview")[0] == 200, timeout=30, what="the API back")
