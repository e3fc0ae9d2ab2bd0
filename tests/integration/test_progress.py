"""Progress (docs/PROTOCOL.md §14): a handler's reports reach the job's
result hash while it runs (state running, progress, progress_msg), a few
times a second at most, and the last one stays with the final state;
`jobq wait` draws a bar on a terminal and plain lines otherwise; a job
that reports nothing writes nothing more."""
import os
import subprocess
import time

from conftest import BIN, JOBQ, jobq, key, scale, wait_for, xadd

PROGRESS = os.path.join(BIN, "plugins", "test-progress.so")


def fields(r, jid):
    return {k.decode(): v.decode(errors="replace") for k, v in
            r.hgetall(key("result:%s" % jid)).items()}


def test_a_plugin_reports_increasing_fractions_while_it_runs(r, consumer):
    consumer("--plugin", PROGRESS)
    jid = xadd(r, type="steps", payload={"steps": 10, "ms": 100})
    seen = []
    deadline = time.time() + scale(10)
    while time.time() < deadline:
        f = fields(r, jid)
        if f.get("state") == "running":
            assert f["worker"]
            if not seen or seen[-1][0] != f["progress"]:
                seen.append((f["progress"], f["progress_msg"]))
        elif f.get("state") == "done":
            break
        time.sleep(0.01)
    fracs = [float(p) for p, _ in seen]
    assert len(fracs) >= 2 and fracs == sorted(fracs) and fracs[-1] < 1, seen
    assert all(m.startswith("step ") for _, m in seen)
    # About 1 s of reports, 4 writes a second at most (throttled).
    assert len(fracs) <= 6, seen
    end = fields(r, jid)
    assert end["state"] == "done" and end["attempts"] == "1"
    assert end["progress"] == "1" and end["progress_msg"] == "step 10 of 10", "the last report"


def test_a_job_that_reports_nothing_writes_nothing_more(r, consumer):
    consumer("--plugin", PROGRESS)
    jid = xadd(r, type="sleep", payload={"ms": 300})
    wait_for(lambda: fields(r, jid).get("state") == "done")
    assert "progress" not in fields(r, jid)


def test_jobq_wait_draws_a_bar_on_a_terminal_and_lines_when_piped(redis_server, r, consumer):
    consumer("--plugin", PROGRESS)
    url = redis_server.url
    jid = jobq("enqueue", "steps", '{"steps":8,"ms":150}', redis_url=url).stdout.strip()
    # A terminal: script(1) gives jobq a pty for its stdout and stderr.
    out = subprocess.run(["script", "-qc", "%s --redis %s wait %s" % (JOBQ, url, jid), "/dev/null"],
                         capture_output=True, timeout=scale(30))
    tty = out.stdout.decode(errors="replace")
    assert "\r\x1b[K[#" in tty and "%" in tty and "step " in tty, tty
    assert '"state":"done"' in tty
    jid = jobq("enqueue", "steps", '{"steps":8,"ms":150}', redis_url=url).stdout.strip()
    piped = jobq("wait", jid, redis_url=url)
    assert piped.returncode == 0 and '"state":"done"' in piped.stdout
    lines = piped.stderr.splitlines()
    assert lines and all(l.startswith("progress ") for l in lines), piped.stderr
    assert "\x1b" not in piped.stderr and "progress" not in piped.stdout


def test_an_exec_command_reports_on_its_progress_fd(r, consumer, tmpdir_path):
    cmd = os.path.join(tmpdir_path, "chunks.sh")
    with open(cmd, "w") as f:
        f.write("""#!/bin/sh
for i in 1 2 3 4 5 6 7 8; do
  sleep 0.15
  echo "progress $(awk "BEGIN { print $i / 8 }") chunk $i of 8" >&$JOBQ_PROGRESS_FD
done
echo 'not a progress line' >&3
echo ok
""")
    os.chmod(cmd, 0o755)
    consumer("--exec", "chunks=" + cmd)
    jid = xadd(r, type="chunks", payload="x")
    seen = []
    deadline = time.time() + scale(10)
    while time.time() < deadline:
        f = fields(r, jid)
        if f.get("state") == "running" and (not seen or seen[-1] != f["progress"]):
            seen.append(f["progress"])
        if f.get("state") == "done":
            break
        time.sleep(0.01)
    fracs = [float(p) for p in seen]
    assert len(fracs) >= 2 and fracs == sorted(fracs), seen
    end = fields(r, jid)
    assert end["state"] == "done" and end["progress_msg"] == "chunk 8 of 8", end
    assert end["progress"] == "1"
