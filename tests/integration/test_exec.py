"""The exec handler: `--exec NAME=COMMAND` runs a command per job, payload on
stdin, stdout as the result; a failure carries the tail of stderr; the job's
timeout kills the command and all it started; no child outlives its worker;
nothing in a payload is ever run by a shell."""
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import msgpack

from conftest import CONSUMER, Consumer, scale, wait_for, wait_result, xadd


def script(d, name, body):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def alive(pid):
    """True while pid runs (a zombie awaiting its reaper counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_pids(path):
    with open(path) as f:
        return [int(x) for x in f.read().split()]


def marked(marker):
    """Pids of the live processes whose command line holds marker."""
    found = []
    for d in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if d.isdigit() and marker.encode() in f.read() and alive(int(d)):
                    found.append(int(d))
        except OSError:
            pass
    return found


def escaping_script(d, name, marker, then="echo hi\n"):
    """A command that starts processes which leave its process group, all
    holding its stdout: a shell run by setsid, with a sleep of its own, and
    a python3 that calls os.setpgid. It waits until they have left before it
    goes on with `then`. The escapees carry marker in their command lines;
    the sleep's pid is in the file NAME.ready.1."""
    ready = os.path.join(d, name + ".ready")
    return script(d, name,
                  'setsid sh -c "sleep 30 & echo \\$! > %(r)s.tmp; mv %(r)s.tmp %(r)s.1; '
                  'wait; : %(m)s" &\n'
                  '%(py)s -c "import os, sys, time; os.setpgid(0, 0); '
                  'open(sys.argv[1], \'w\').close(); time.sleep(30)" %(r)s.2 %(m)s &\n'
                  'while [ ! -e %(r)s.1 ] || [ ! -e %(r)s.2 ]; do sleep 0.01; done\n'
                  '%(then)s' % {"r": ready, "m": marker, "py": sys.executable, "then": then})


def escapees(d, name, marker):
    """The live processes escaping_script started: those with marker, and
    the sleep."""
    return marked(marker) + [p for p in read_pids(os.path.join(d, name + ".ready.1")) if alive(p)]

def test_round_trip_environment_and_arguments(r, consumer, tmpdir_path):
    rt = script(tmpdir_path, "rt.sh",
                'printf "id=%s queue=%s attempt=%s extra=%s home=%s args=%s|%s|%s\\n" '
                '"$JOBQ_JOB_ID" "$JOBQ_QUEUE" "$JOBQ_ATTEMPT" "$JQ_TEST_EXTRA" "${HOME-unset}" '
                '"$1" "$2" "$#"\n'
                'cat\n')
    consumer("--exec", "rt=%s 'two words' $HOME;x" % rt, "--exec-env", "JQ_TEST_EXTRA",
             env={"JQ_TEST_EXTRA": "xyz"})
    jid = xadd(r, type="rt", payload=msgpack.packb("hello\n"), id="rt-1")
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(res["result"]) == (
        "id=rt-1 queue=default attempt=1 extra=xyz home=unset args=two words|$HOME;x|2\nhello\n")
    # A map goes to stdin as msgpack: the output is not UTF-8, so bin.
    jid = xadd(r, type="rt", payload={"a": 1})
    out = msgpack.unpackb(wait_result(r, jid)["result"])
    assert isinstance(out, bytes) and out.endswith(msgpack.packb({"a": 1}))


def test_stdin_json_mode(r, consumer, tmpdir_path):
    cat = script(tmpdir_path, "cat.sh", "cat\n")
    consumer("--exec", "j=" + cat, "--exec-stdin", "json")
    jid = xadd(r, type="j", payload={"k": [1, "x"]})
    assert msgpack.unpackb(wait_result(r, jid)["result"]) == '{"k":[1,"x"]}'


def test_failing_script_stderr_becomes_the_error(r, consumer, tmpdir_path):
    bad = script(tmpdir_path, "bad.sh",
                 'echo "lots of noise" >&2\necho "bad input: $(cat)" >&2\nexit 3\n')
    consumer("--exec", "bad=" + bad)
    jid = xadd(r, type="bad", payload=msgpack.packb("xyz"), max_attempts=1)
    res = wait_result(r, jid)
    assert res["state"] == b"dead"
    assert res["error"] == b"bad: exit status 3: lots of noise bad input: xyz"
    kill = script(tmpdir_path, "kill.sh", 'echo dying >&2\nkill -SEGV $$\n')
    consumer("--exec", "k=" + kill, "--queues", "other")
    jid = xadd(r, type="k", max_attempts=1, queue="other")
    res = wait_result(r, jid, queue="other")
    assert res["error"] == b"k: killed by signal 11 (Segmentation fault): dying", res


def test_hang_is_killed_at_timeout_with_its_children(r, consumer, tmpdir_path):
    pids = os.path.join(tmpdir_path, "pids")
    hang = script(tmpdir_path, "hang.sh",
                  # A child in the background and a grandchild of that, then
                  # the script itself hangs.
                  '(sleep 300 & echo $! >> %s; wait) &\n'
                  'sleep 300 &\necho $! $$ >> %s\nwait\n' % (pids, pids))
    quick = script(tmpdir_path, "quick.sh", "echo ok\n")
    c = consumer("--exec", "hang=" + hang, "--exec", "quick=" + quick)
    jid = xadd(r, type="hang", timeout_ms=500, max_attempts=1)
    wait_for(lambda: os.path.exists(pids) and len(read_pids(pids)) == 3, what="pids written")
    started = read_pids(pids)
    assert all(alive(p) for p in started)
    res = wait_result(r, jid)
    assert res["state"] == b"dead" and b"timeout" in res["error"], res
    wait_for(lambda: not any(alive(p) for p in started), timeout=5, what="no process left")
    # The worker carries on.
    jid = xadd(r, type="quick")
    assert msgpack.unpackb(wait_result(r, jid)["result"]) == "ok\n"
    assert c.proc.poll() is None


def test_children_left_behind_by_a_finished_command_are_killed(r, consumer, tmpdir_path):
    pids = os.path.join(tmpdir_path, "pids")
    bg = script(tmpdir_path, "bg.sh",
                "sleep 300 >/dev/null 2>&1 &\necho $! > %s\necho done\n" % pids)
    consumer("--exec", "bg=" + bg)
    jid = xadd(r, type="bg")
    res = wait_result(r, jid)
    assert msgpack.unpackb(res["result"]) == "done\n"
    child = read_pids(pids)[0]
    wait_for(lambda: not alive(child), timeout=5, what="background child killed")


def test_shell_metacharacters_in_the_payload_run_nothing(r, consumer, tmpdir_path):
    got = os.path.join(tmpdir_path, "got")
    sink = script(tmpdir_path, "sink.sh", 'cat > "%s"\necho "$@"\n' % got)
    consumer("--exec", "sink=" + sink + " fixed")
    marker = os.path.join(tmpdir_path, "pwned")
    evil = ("'; touch %s; echo \" $(touch %s) `touch %s` | touch %s && touch %s > %s\n"
            "$HOME ${IFS} * ~ \\ \x00 end" % ((marker,) * 6))
    jid = xadd(r, type="sink", payload=msgpack.packb(evil.encode()))
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    assert msgpack.unpackb(res["result"]) == "fixed\n"  # the job never adds arguments
    with open(got, "rb") as f:
        assert f.read() == evil.encode()
    assert not os.path.exists(marker)


def test_stdout_over_the_limit_fails_and_stops_the_command(r, consumer, tmpdir_path):
    loud = script(tmpdir_path, "loud.sh", "while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done\n")
    consumer("--exec", "loud=" + loud, "--exec-max-output", "64k")
    jid = xadd(r, type="loud", max_attempts=1, timeout_ms=60000)
    res = wait_result(r, jid)
    assert res["error"] == b"loud: stdout over --exec-max-output (65536 bytes)", res


def test_processes_that_leave_the_group_die_with_the_command(r, consumer, tmpdir_path):
    # issue 21: a grandchild that left the process group (setsid, setpgid)
    # survived the guard and held stdout open: the job waited for it.
    marker = "jq-escape-%d-done" % os.getpid()
    esc = escaping_script(tmpdir_path, "esc.sh", marker)
    consumer("--exec", "esc=" + esc)
    t0 = time.time()
    jid = xadd(r, type="esc", max_attempts=1)
    res = wait_result(r, jid, timeout=scale(10))
    assert res["state"] == b"done" and msgpack.unpackb(res["result"]) == "hi\n", res
    assert time.time() - t0 < scale(5)
    wait_for(lambda: not escapees(tmpdir_path, "esc.sh", marker), timeout=5,
             what="no escaped process left")


def test_processes_that_leave_the_group_die_at_timeout_and_with_the_worker(r, consumer,
                                                                          tmpdir_path):
    marker = "jq-escape-%d-hang" % os.getpid()
    hang = escaping_script(tmpdir_path, "hang.sh", marker, then="sleep 300\n")
    c = consumer("--exec", "hang=" + hang, "--shutdown-timeout-ms", "500")
    jid = xadd(r, type="hang", timeout_ms=1500, max_attempts=1)
    res = wait_result(r, jid)
    assert res["state"] == b"dead" and b"timeout" in res["error"], res
    wait_for(lambda: not escapees(tmpdir_path, "hang.sh", marker), timeout=5,
             what="no escaped process left")
    # The worker killed by SIGKILL: the guard hears it (PR_SET_PDEATHSIG).
    os.unlink(os.path.join(tmpdir_path, "hang.sh.ready.1"))
    xadd(r, type="hang", max_attempts=1, timeout_ms=60000)
    wait_for(lambda: os.path.exists(os.path.join(tmpdir_path, "hang.sh.ready.1"))
             and len(escapees(tmpdir_path, "hang.sh", marker)) == 3,
             what="the escapees running")
    for w in c.worker_pids():
        os.kill(w, signal.SIGKILL)
    wait_for(lambda: not escapees(tmpdir_path, "hang.sh", marker), timeout=5,
             what="no escaped process left")

def test_children_do_not_outlive_a_killed_worker(r, consumer, tmpdir_path):
    pids = os.path.join(tmpdir_path, "pids")
    hang = script(tmpdir_path, "hang.sh", "sleep 300 &\necho $! $$ > %s\nwait\n" % pids)
    c = consumer("--exec", "hang=" + hang, "--shutdown-timeout-ms", "500")
    # One attempt: the replacement worker dead-letters it (worker lost)
    # instead of hanging again.
    xadd(r, type="hang", max_attempts=1)
    wait_for(lambda: os.path.exists(pids) and len(read_pids(pids)) == 2, what="pids written")
    started = read_pids(pids)
    for w in c.worker_pids():
        os.kill(w, signal.SIGKILL)
    wait_for(lambda: not any(alive(p) for p in started), timeout=5,
             what="the dead worker's commands gone")


def test_bad_exec_settings_stop_the_consumer_at_start(tmpdir_path):
    def run(*args):
        p = subprocess.run([CONSUMER, "--redis", "redis://127.0.0.1:1"] + list(args),
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stderr
    rc, err = run("--exec", "x=/nonexistent/prog")
    assert rc == 2 and "--exec x: /nonexistent/prog is not an executable file" in err, err
    rc, err = run("--exec", "x=no-such-program-anywhere")
    assert rc == 2 and "program 'no-such-program-anywhere' not found in PATH" in err, err
    rc, err = run("--exec", "just-a-command")
    assert rc == 2 and "want NAME=COMMAND" in err, err
    rc, err = run("--exec", "x=sh -c 'echo")
    assert rc == 2 and "unbalanced ' quote" in err, err
    rc, err = run("--exec", "echo=cat")
    assert rc == 2 and "handler echo: name already registered (by built-in)" in err, err
    rc, err = run("--exec", "a b=cat")
    assert rc == 2 and "bad name" in err, err
    rc, err = run("--exec-env", "1X", "--exec", "x=cat")
    assert rc == 2 and "not a variable name" in err, err


def test_a_directory_or_a_file_without_x_is_refused_at_start_by_master_and_worker(tmpdir_path):
    # access(X_OK) says yes to a directory: it used to be accepted at start
    # (issue 21), and every job then failed at exec. The worker checks its
    # own setup too (a file may change under a running master) and exits 2
    # like the master, a configuration error.
    noexec = os.path.join(tmpdir_path, "noexec.sh")
    with open(noexec, "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(noexec, 0o644)
    for role in ([], ["--worker-role=worker"]):
        for prog, why in ((tmpdir_path, "it is a directory"),
                          (noexec, "no permission to execute it (mode 0644")):
            p = subprocess.run([CONSUMER, "--redis", "redis://127.0.0.1:1", "--exec",
                                "x=" + prog] + role, capture_output=True, text=True, timeout=30)
            want = "--exec x: %s is not an executable file: %s" % (prog, why)
            assert want in p.stderr and p.stderr.count("--exec x:") == 1, (role, p.stderr)
            assert p.returncode == 2, (role, p.returncode)


def test_many_commands_run_at_once_in_one_worker(r, consumer, tmpdir_path):
    slow = script(tmpdir_path, "slow.sh", "sleep 1\necho $JOBQ_JOB_ID\n")
    consumer("--workers", "1", "--exec", "slow=" + slow)
    t0 = time.time()
    ids = [xadd(r, type="slow", id="s%d" % i) for i in range(20)]
    for i in ids:
        assert msgpack.unpackb(wait_result(r, i, timeout=30)["result"]) == i + "\n"
    # 20 s one after another; concurrently about 1 s. Generous bound.
    assert time.time() - t0 < scale(10)


def test_without_the_small_guard_binary_the_consumer_is_its_own_guard(redis_server, r,
                                                                         tmpdir_path):
    # A jobq-consumer with no jobq-exec-guard next to it (an install that
    # left it out) runs its commands under `jobq-consumer --exec-guard`.
    alone = os.path.join(tmpdir_path, "alone")
    os.mkdir(alone)
    exe = os.path.join(alone, "jobq-consumer")
    shutil.copy(CONSUMER, exe)
    pids = os.path.join(tmpdir_path, "pids")
    hang = script(tmpdir_path, "hang.sh", "sleep 300 &\necho $! $$ > %s\nwait\n" % pids)
    quick = script(tmpdir_path, "quick.sh", 'echo "$@"\n')
    marker = "jq-escape-%d-alone" % os.getpid()
    esc = escaping_script(tmpdir_path, "esc.sh", marker)
    c = Consumer(redis_server.url, ["--workers", "1", "--exec", "hang=" + hang,
                                    "--exec", "quick=%s a 'b c'" % quick, "--exec", "esc=" + esc],
                 tmpdir_path, binary=exe)
    try:
        c.wait_log(r"worker \S+ ready")
        jid = xadd(r, type="quick")
        assert msgpack.unpackb(wait_result(r, jid)["result"]) == "a b c\n"
        jid = xadd(r, type="hang", timeout_ms=300, max_attempts=1)
        assert b"timeout" in wait_result(r, jid)["error"]
        started = read_pids(pids)
        wait_for(lambda: not any(alive(p) for p in started), timeout=5, what="no process left")
        jid = xadd(r, type="esc", max_attempts=1)
        assert msgpack.unpackb(wait_result(r, jid)["result"]) == "hi\n"
        wait_for(lambda: not escapees(tmpdir_path, "esc.sh", marker), timeout=5,
                 what="no escaped process left")
    finally:
        c.stop()
        assert "handles left" not in c.log()
