"""The master as PID 1, as in a container: it reaps orphans that the
kernel hands it, and still drains on SIGTERM. Runs the master in a PID
namespace of its own (unshare, as root); skipped where that is refused."""
import os
import shutil
import subprocess

import pytest

from conftest import CONSUMER, free_port, scale, wait_for


def _children(pid):
    """(pid, state) of every process whose parent is pid, from /proc."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append((int(name), fields[0]))
    return out


def _can_unshare():
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
        return False
    return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs root and PID namespaces (unshare)")
def test_master_as_pid1_reaps_orphans_and_drains(redis_server, r, tmpdir_path):
    log_path = os.path.join(tmpdir_path, "pid1-%d.log" % free_port())
    logf = open(log_path, "wb")
    # unshare --fork: its child, the master, is PID 1 of the new namespace;
    # exec keeps unshare itself as the parent we wait for.
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                             CONSUMER, "--redis", redis_server.url, "--workers", "2"],
                            stdout=logf, stderr=subprocess.STDOUT)

    def log():
        with open(log_path, "rb") as f:
            return f.read().decode(errors="replace")

    try:
        wait_for(lambda: log().count(" ready") >= 2, what=lambda: "2 workers ready:\n" + log())
        assert log().count(" ready") == 2, log()
        assert "master pid 1:" in log(), log()
        master = [p for p, _ in _children(proc.pid)][0]

        # Orphans: a shell entered into the namespace leaves three sleeps
        # behind; they are handed to PID 1 when it exits, and end later.
        for _ in range(3):
            subprocess.run(["nsenter", "-t", str(master), "-p", "-m", "sh", "-c",
                            "sleep 0.3 & exit 0"], check=True)
        def reaped():
            kids = _children(master)
            return len(kids) == 2 and all(state != "Z" for _, state in kids)
        wait_for(reaped, interval=0.1,
                 what=lambda: "the orphans reaped: %r\n%s" % (_children(master), log()))
        assert log().count("reaped orphan process") == 3, log()

        # Its workers are still its own: a job still runs on them.
        r.xadd("jobq:{default}:stream", {"type": "echo", "enc": "json", "payload": '"hi"', "id": "pid1-a"})
        wait_for(lambda: r.hget("jobq:{default}:result:pid1-a", "state") == b"done",
                 what="job pid1-a done")

        os.kill(master, 15)
        assert proc.wait(scale(20)) == 0, log()
        assert "all workers exited; master exiting" in log(), log()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        logf.close()
