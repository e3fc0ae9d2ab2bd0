"""What a new user trips over (issue 27): settings that are checked, a wait
that knows an unknown id and a queue nobody serves, and one --timeout and
one -q for every command."""
import subprocess
import time

from conftest import CONSUMER, jobq, key, scale, wait_for, xadd


def test_workers_zero_is_refused_by_name(redis_server):
    for opt in ("--workers", "--threads"):
        p = subprocess.run([CONSUMER, "--redis", redis_server.url, opt, "0"],
                           capture_output=True, text=True, timeout=scale(10))
        assert p.returncode == 2, (opt, p.stderr)
        assert "%s: 0 is not allowed (at least 1, or auto)" % opt in p.stderr


def test_queue_name_that_looks_like_a_limit_warns(r, redis_server, consumer):
    c = consumer("--queues", "mail:4,other")
    c.wait_log(r"--queues: serving a queue named 'mail:4'; for at most 4 jobs of queue 'mail' "
               r"at once, write mail=4")
    # Warned once, by the master, not again by each worker.
    time.sleep(0.2)
    assert c.log().count("serving a queue named") == 1, c.log()
    # ...and the name is served as given.
    jid = xadd(r, queue="mail:4", type="echo", payload={"a": 1})
    p = jobq("wait", "-q", "mail:4", jid, "--timeout", "20", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr


def test_wait_for_an_unknown_id_says_so_at_once(r, redis_server):
    for jid in ("1-0", "no-such-job"):
        t0 = time.time()
        p = jobq("wait", jid, "--timeout", "30", redis_url=redis_server.url)
        assert p.returncode == 2, p.stderr
        assert "no job %s in queue default" % jid in p.stderr
        assert time.time() - t0 < scale(10)


def test_wait_with_no_consumer_warns_and_says_where_the_job_is(r, redis_server):
    jid = xadd(r, type="echo", payload={"a": 1})
    p = jobq("wait", jid, "--timeout", "0.5", redis_url=redis_server.url)
    assert p.returncode == 2
    assert "no live consumer serves queue default" in p.stderr
    assert "(state: ready)" in p.stderr
    # A job chosen-id'd by a foreign client is found in the stream too.
    r.xadd("jobq:{default}:stream", {"type": "echo", "id": "mine-1"})
    p = jobq("wait", "mine-1", "--timeout", "0.3", redis_url=redis_server.url)
    assert p.returncode == 2 and "(state: ready)" in p.stderr, p.stderr
    # A delayed one is scheduled.
    p = jobq("enqueue", "--delay", "60000", "--id", "later", "echo", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    p = jobq("wait", "later", "--timeout", "0.3", redis_url=redis_server.url)
    assert p.returncode == 2 and "(state: scheduled)" in p.stderr, p.stderr


def test_wait_finds_finished_jobs_and_live_consumers(r, redis_server, consumer):
    consumer()
    jid = xadd(r, type="echo", payload={"x": 2})
    wait_for(lambda: r.hget(key("result:" + jid), "state") == b"done", what="job done")
    p = jobq("wait", jid, "--timeout", "5", redis_url=redis_server.url)
    assert p.returncode == 0 and '"x":2' in p.stdout, p.stderr
    assert "warning" not in p.stderr
    # enqueue --wait takes --timeout like wait does.
    p = jobq("enqueue", "--wait", "--timeout", "20", "echo", '{"y":3}', redis_url=redis_server.url)
    assert p.returncode == 0 and '"y":3' in p.stdout, p.stderr
    assert "warning" not in p.stderr


def test_enqueue_timeout_without_wait_is_explained(r, redis_server):
    p = jobq("enqueue", "--timeout", "3", "echo", redis_url=redis_server.url)
    assert p.returncode == 2
    assert "--timeout is how long --wait waits" in p.stderr and "--timeout-ms" in p.stderr
    assert r.xlen("jobq:{default}:stream") == 0


def test_global_queue_option_before_the_command(r, redis_server):
    p = jobq("-q", "q1", "enqueue", "echo", '{"a":1}', redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    assert r.xlen("jobq:{q1}:stream") == 1
    p = jobq("-q", "q1", "stats", "--json", redis_url=redis_server.url)
    assert p.returncode == 0, p.stderr
    assert '"queue":"q1"' in p.stdout.replace(" ", "")
    p = jobq("--queue=q1", "pause", redis_url=redis_server.url)
    assert p.returncode == 0 and r.exists("jobq:{q1}:paused"), p.stderr
    # After the command, -q is the command's own.
    p = jobq("-q", "q1", "enqueue", "-q", "q2", "echo", redis_url=redis_server.url)
    assert p.returncode == 0 and r.xlen("jobq:{q2}:stream") == 1, p.stderr
    p = jobq("-q", "bad name", "stats", redis_url=redis_server.url)
    assert p.returncode == 2 and "queue name" in p.stderr


def test_pause_holds_a_job_enqueued_300ms_later(r, redis_server, consumer):
    """Pause bites within about 100 ms (docs/PROTOCOL.md §5), also when the
    pause lands as a blocking read is being renewed: the unblock then has
    to wait for the read to reach Redis (fetch.c, on_unblocked)."""
    consumer("--workers", "2")
    for i in range(8):
        assert jobq("pause", "default", redis_url=redis_server.url).returncode == 0
        time.sleep(0.3 + 0.05 * (i % 4))
        jid = xadd(r, type="echo", payload={"i": i})
        time.sleep(0.3)
        assert r.hget(key("result:" + jid), "state") is None, "job %d ran while paused" % i
        assert jobq("resume", "default", redis_url=redis_server.url).returncode == 0
        p = jobq("wait", jid, "--timeout", "20", redis_url=redis_server.url)
        assert p.returncode == 0, p.stderr
