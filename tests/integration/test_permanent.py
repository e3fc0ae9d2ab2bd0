"""Permanent failures (issue 27): a handler can fail a job without retry,
and the job is dead at once with its reason and the attempts made: a
malformed payload of a built-in type, a C plugin's jq_task_fail_permanent,
an exec command's exit status 65. (http's 4xx: test_http.py.) A failure
that is not permanent is still retried."""
import os

from conftest import BIN, key, wait_result, xadd
from test_exec import script

EXAMPLE = os.path.join(BIN, "plugins", "example.so")


def assert_dead_at_once(r, jid, error, attempts=b"1"):
    res = wait_result(r, jid)
    assert res["state"] == b"dead", res
    assert res["attempts"] == attempts, res
    assert res["error"] == error, res
    job = r.hgetall(key("job:%s" % jid))
    assert job[b"attempt"] == attempts and job[b"error"] == error, job
    assert r.zscore(key("dead"), jid) is not None
    assert r.zscore(key("scheduled"), jid) is None


def test_a_malformed_builtin_payload_is_dead_at_once(redis_server, r, consumer):
    consumer("--backoff-ms", "20")
    jid = redis_server.cli("XADD", "jobq:{default}:stream", "*", "type", "sha256", "enc", "json",
                           "payload", '{"data":"x","rounds":"many"}', "max_attempts", "5").strip()
    assert_dead_at_once(r, jid, b"sha256: rounds must be an integer >= 1")
    jid = xadd(r, type="sleep", payload={"ms": "soon"}, max_attempts=5)
    assert_dead_at_once(r, jid, b"sleep: payload must be a map {ms: N}")
    st = r.hgetall(key("stats"))
    assert st[b"dead"] == b"2" and st[b"failed"] == b"2" and b"retried" not in st, st
    # A failure that may pass next time is retried as before.
    jid = xadd(r, type="fail", payload={"message": "later"}, max_attempts=2)
    res = wait_result(r, jid)
    assert res["state"] == b"dead" and res["attempts"] == b"2", res


def test_a_plugin_fails_a_job_for_good(r, consumer):
    consumer("--plugin", EXAMPLE, "--backoff-ms", "20")
    jid = xadd(r, type="hello", payload={"ms": 1}, max_attempts=4)
    assert_dead_at_once(r, jid, b"hello: payload must be {name: str, ms: N}")


def test_exec_exit_status_65_is_permanent(r, consumer, tmpdir_path):
    perm = script(tmpdir_path, "perm.sh", "echo 'bad input' >&2; exit 65\n")
    again = script(tmpdir_path, "again.sh", "echo 'try later' >&2; exit 75\n")
    consumer("--exec", "perm=" + perm, "--exec", "again=" + again, "--backoff-ms", "20")
    jid = xadd(r, type="perm", max_attempts=4)
    assert_dead_at_once(r, jid, b"perm: exit status 65: bad input")
    jid = xadd(r, type="again", max_attempts=2)
    res = wait_result(r, jid)
    assert res["state"] == b"dead" and res["attempts"] == b"2", res
