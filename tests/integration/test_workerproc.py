"""Long-lived handler processes (--proc, issue 27): jobs streamed to a
Python or Node process over the frames of docs/HANDLERS.md, enqueued with
python3-redis. What a handler returns, raises or fails for good; a process
that crashes, hangs, breaks the protocol or is recycled; and nothing left
running once the consumer stops."""
import os
import shutil
import sys

import msgpack
import pytest

from conftest import jobq, key, wait_for, wait_result, xadd
from test_cancel import running, wait_state

HERE = os.path.dirname(os.path.abspath(__file__))
PY_HANDLER = os.path.join(HERE, "procs", "handler.py")
NODE_HANDLER = os.path.join(HERE, "procs", "handler.js")
TYPES = "t.echo+t.fail+t.perm+t.crash+t.hang+t.bad+t.big+t.grow+t.nap+t.later"


def py_proc(types=TYPES):
    return "%s=%s %s" % (types, sys.executable, PY_HANDLER)


def procs_running(path):
    """Pids of live processes whose command line names path."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if path.encode() in args and b"--exec-guard" not in args and state != "Z":
            pids.append(int(d))
    return pids


def result_of(res):
    return msgpack.unpackb(res["result"], raw=False)


def test_python_process_runs_jobs_fails_and_retries(r, consumer):
    c = consumer("--proc", py_proc(), "--backoff-ms", "20")
    jids = [xadd(r, type="t.echo", payload={"n": [i, 2, 3]}) for i in range(20)]
    pids = set()
    for i, jid in enumerate(jids):
        res = wait_result(r, jid)
        assert res["state"] == b"done", res
        out = result_of(res)
        assert out["got"] == {"n": [i, 2, 3]} and out["sum"] == i + 5, out
        pids.add(out["pid"])
    assert len(pids) == 1  # one process served them all
    c.wait_log(r"t\.echo got \{'n': \[19, 2, 3\]\}")  # print() went to the log
    # An exception fails the attempt: retried, then dead with its message.
    jid = xadd(r, type="t.fail", max_attempts=2)
    res = wait_result(r, jid)
    assert res["state"] == b"dead" and res["attempts"] == b"2", res
    assert res["error"] == b"t.fail: ValueError: no luck, attempt 2", res
    # PermanentError: dead at once, never retried.
    jid = xadd(r, type="t.perm", payload={"w": "wide"}, max_attempts=5)
    res = wait_result(r, jid)
    assert res["state"] == b"dead" and res["attempts"] == b"1", res
    assert res["error"] == b"t.perm: bad input: {'w': 'wide'}", res
    assert r.zscore(key("scheduled"), jid) is None
    # The same process is still serving; its progress is in the hash.
    res = wait_result(r, xadd(r, type="t.echo", payload={"n": []}))
    assert result_of(res)["pid"] in pids
    assert res["progress"] == b"0.25" and res["progress_msg"] == b"a quarter", res
    # RetryAfter: tried again later, no attempt used.
    res = wait_result(r, xadd(r, type="t.later", max_attempts=1))
    assert res["state"] == b"done" and res["attempts"] == b"1", res
    assert result_of(res) == "later ok"


def test_python_threads_take_several_jobs_at_once(r, consumer):
    c = consumer("--proc", py_proc(), env={"JQ_TEST_THREADS": "4"})
    outs = [result_of(wait_result(r, j))
            for j in [xadd(r, type="t.nap", payload={"ms": 300}) for _ in range(6)]]
    assert len({o["pid"] for o in outs}) == 1
    assert max(o["seen"] for o in outs) > 1, outs
    c.wait_log(r"ready, 4 jobs at once")


def test_a_crash_mid_job_restarts_the_process_and_retries_the_job(r, consumer):
    c = consumer("--proc", py_proc(), "--backoff-ms", "20")
    first = result_of(wait_result(r, xadd(r, type="t.echo", payload={})))["pid"]
    jid = xadd(r, type="t.crash", max_attempts=3)
    res = wait_result(r, jid)
    assert res["state"] == b"done" and res["attempts"] == b"2", res
    assert result_of(res) == "survived"
    c.wait_log(r"--proc \S+: handler process \(pid \d+\) exited with status 3: killed")
    later = result_of(wait_result(r, xadd(r, type="t.echo", payload={})))["pid"]
    assert later != first
    assert procs_running(PY_HANDLER) == [later]


def test_a_hung_job_times_out_and_its_process_is_replaced(r, consumer):
    c = consumer("--proc", py_proc(), "--backoff-ms", "20")
    # Up first: a job timed out while waiting for a process to start would
    # never reach one.
    assert wait_result(r, xadd(r, type="t.echo", payload={}))["state"] == b"done"
    jid = xadd(r, type="t.hang", timeout_ms=300, max_attempts=1)
    res = wait_result(r, jid)
    assert res["state"] == b"dead", res
    assert res["error"] == b"timeout: attempt ran longer than 300 ms", res
    c.wait_log(r"did not answer a cancelled job within 1 s: killed")
    res = wait_result(r, xadd(r, type="t.echo", payload={"n": [1]}))
    assert res["state"] == b"done", res


def test_a_malformed_or_oversized_frame_kills_the_process_not_the_job(r, consumer):
    c = consumer("--proc", py_proc(), "--backoff-ms", "20", "--max-payload", "1k")
    jid = xadd(r, type="t.bad", max_attempts=2)
    res = wait_result(r, jid)
    assert res["state"] == b"done" and res["attempts"] == b"2", res
    assert result_of(res) == "fine"
    c.wait_log(r"sent a malformed frame: a frame of 3 bytes that is not msgpack: killed")
    # A result over --max-payload + 64 KiB is refused the same way.
    jid = xadd(r, type="t.big", payload={"n": 200000}, max_attempts=1)
    res = wait_result(r, jid)
    assert res["state"] == b"dead", res
    assert res["error"] == b"t.big: handler process sent a frame of 200036 bytes, over the " \
        b"limit of 66560 (--max-payload + 64 KiB)", res
    assert result_of(wait_result(r, xadd(r, type="t.big", payload={"n": 10})))  == "x" * 10


def test_recycled_after_n_jobs_and_nothing_left_after_stop(r, consumer):
    c = consumer("--proc", py_proc(), "--proc-max-jobs", "3", "--proc-count", "2")
    wait_for(lambda: len(procs_running(PY_HANDLER)) == 2, what="two processes")
    served = {}
    for i in range(12):
        res = wait_result(r, xadd(r, type="t.echo", payload={"n": [i]}))
        pid = result_of(res)["pid"]
        served[pid] = served.get(pid, 0) + 1
    assert max(served.values()) <= 3 and len(served) >= 4, served
    c.wait_log(r"recycling: served 3 jobs \(--proc-max-jobs\)", count=3)
    c.wait_log(r"\): recycled", count=2)
    c.stop()
    assert c.proc.returncode == 0, c.log()
    assert procs_running(PY_HANDLER) == []
    assert "with handles left" not in c.log()


def test_recycled_over_its_rss_cap(r, consumer):
    c = consumer("--proc", py_proc(), "--proc-max-rss-mb", "60")
    big = result_of(wait_result(r, xadd(r, type="t.grow", payload={"mb": 100})))
    c.wait_log(r"\(pid \d+\): recycling: RSS \d+ MB over --proc-max-rss-mb")
    c.wait_log(r"\): recycled")
    assert result_of(wait_result(r, xadd(r, type="t.echo", payload={})))["pid"] != big


def test_a_process_that_never_says_hello_fails_its_jobs(r, consumer):
    c = consumer("--proc", "t.x=/bin/false", "--backoff-ms", "20")
    res = wait_result(r, xadd(r, type="t.x", max_attempts=2))
    assert res["state"] == b"dead" and res["attempts"] == b"2", res
    assert res["error"] == b"t.x: handler process exited with status 1, before its hello", res
    c.wait_log(r"--proc t\.x: handler process \(pid \d+\) exited with status 1: killed", count=2)


def test_a_handler_gets_no_descriptor_and_no_secret_of_the_consumer(redis_server, r, consumer):
    # Its stdin and stdout are its job frames, stderr the log: no socket to
    # Redis or to the master (fd 3 of the worker, which a handler could
    # write "recycle" to), and not the admin token or the Redis URL, which
    # carries the password.
    env = {"JOBQ_ADMIN_TOKEN": "0123456789abcdef-secret", "JOBQ_REDIS_URL": redis_server.url,
           "JQ_TEST_KEPT": "1"}
    consumer("--proc", py_proc("t.fds+t.env"), env=env)
    res = wait_result(r, xadd(r, type="t.fds", payload={}))
    assert res["state"] == b"done", res
    out = result_of(res)
    held, frames = out["fds"], {str(fd) for fd in out["frames"]}
    others = {fd: t for fd, t in held.items()
              if fd not in frames | {"1", "2"} and "/proc/" not in t}
    assert others == {}, held
    names = result_of(wait_result(r, xadd(r, type="t.env", payload={})))
    assert "JQ_TEST_KEPT" in names and "PATH" in names, names
    assert "JOBQ_ADMIN_TOKEN" not in names and "JOBQ_REDIS_URL" not in names, names


def test_a_bad_command_is_refused_at_start(consumer, tmpdir_path):
    c = consumer("--proc", "t.x+=" + sys.executable, ready=False)
    assert c.wait() == 2
    assert "--proc 't.x+=" in c.log() and "bad TYPES" in c.log(), c.log()
    c = consumer("--proc", "t.x=/nonexistent/handler", ready=False)
    assert c.wait() == 2
    assert "--proc t.x: /nonexistent/handler is not an executable file" in c.log(), c.log()


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed (scripts/deps.sh test installs it)")
def test_node_process_runs_many_jobs_at_once_and_answers_cancels(redis_server, r, consumer):
    redis_url = redis_server.url
    c = consumer("--proc", "n.echo+n.slow+n.fail+n.perm+n.hang=%s %s" % (NODE, NODE_HANDLER),
                 "--backoff-ms", "20")
    res = wait_result(r, xadd(r, type="n.echo", payload={"n": [1, 2, 3]}))
    assert res["state"] == b"done", res
    out = result_of(res)
    assert out["got"] == {"n": [1, 2, 3]} and out["sum"] == 6, out
    pid = out["pid"]
    c.wait_log(r'n\.echo got \{"n":\[1,2,3\]\}')
    # Its hello asked for 16 at once: 8 slow jobs overlap in one process.
    jids = [xadd(r, type="n.slow", payload={"ms": 300}) for _ in range(8)]
    outs = [result_of(wait_result(r, j)) for j in jids]
    assert {o["pid"] for o in outs} == {pid}
    assert max(o["seen"] for o in outs) > 1, outs
    res = wait_result(r, xadd(r, type="n.fail", max_attempts=2))
    assert res["state"] == b"dead" and res["attempts"] == b"2", res
    assert res["error"] == b"n.fail: Error: no luck, attempt 2", res
    res = wait_result(r, xadd(r, type="n.perm", max_attempts=5))
    assert res["state"] == b"dead" and res["attempts"] == b"1", res
    assert res["error"] == b"n.perm: bad input", res
    # A job past its timeout: the cancel frame aborts it, the process
    # answers and lives on.
    res = wait_result(r, xadd(r, type="n.hang", timeout_ms=200, max_attempts=1))
    assert res["error"] == b"timeout: attempt ran longer than 200 ms", res
    c.wait_log(r"Error: cancelled")  # the handler saw the abort...
    assert result_of(wait_result(r, xadd(r, type="n.echo", payload={})))["pid"] == pid
    assert "killed" not in c.log()  # ...and answered: nothing to kill
    # jobq cancel of a running job: the same cancel frame.
    jid = xadd(r, type="n.hang", max_attempts=3)
    wait_for(lambda: running(r, jid), what="the job running")
    assert jobq("cancel", jid, redis_url=redis_url).returncode == 0
    wait_state(r, jid, "cancelled")
    c.wait_log(r"Error: cancelled", count=2)
    assert result_of(wait_result(r, xadd(r, type="n.echo", payload={})))["pid"] == pid
    assert "killed" not in c.log()
    c.stop()
    assert procs_running(NODE_HANDLER) == []
