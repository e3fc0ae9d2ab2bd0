"""The libraries an idle worker does not map (issue 8, idle worker RSS):
libcrypto is opened at the first sha256 job (consumer/dl/cryptosym.h),
libcurl only with --http-allow and then at the first http job (curlsym.h,
test_http.py checks that one), and libsystemd not at all
(consumer/master/notify.c speaks systemd's notify protocol itself). Each one,
linked, was mapped and partly touched in every worker at start. Read from
/proc/<pid>/maps: which files a process maps, no sizes or timings."""
import hashlib
import os
import re
import shutil
import subprocess

import pytest

from conftest import CONSUMER, Consumer, mapped_libs, maps_lib, wait_result, xadd

LAZY = ("libcrypto.so", "libcurl.so", "libsystemd.so")


def test_idle_worker_maps_no_lazy_library_until_a_job_needs_it(redis_server, consumer, tmpdir_path):
    # NOTIFY_SOCKET set: the master does notify, and still maps no libsystemd.
    c = consumer("--workers", "2", env={"NOTIFY_SOCKET": os.path.join(tmpdir_path, "none.sock")})
    pids = c.worker_pids()
    assert len(pids) == 2
    for pid in pids + [c.pid]:
        assert maps_lib(pid, "libuv.so"), mapped_libs(pid)  # the check reads the right thing
        for name in LAZY:
            assert not maps_lib(pid, name), "%s maps %s at start" % (pid, name)

    r = redis_server.client()
    data = b"lazy libcrypto"
    res = wait_result(r, xadd(r, type="sha256", payload={"data": data, "rounds": 2}))
    assert res["state"] == b"done", res
    digest = hashlib.sha256(hashlib.sha256(data).digest()).hexdigest()
    assert res["result"].endswith(digest.encode()), res
    # The worker that ran it has opened libcrypto; the other has not.
    ran = int(res["worker"].decode().rsplit(":", 1)[1])
    assert ran in pids, (ran, pids)
    assert maps_lib(ran, "libcrypto.so")
    for pid in pids:
        if pid != ran:
            assert not maps_lib(pid, "libcrypto.so")
    # Loaded once, it serves the next jobs too, and the worker runs on.
    res = wait_result(r, xadd(r, type="sha256", payload={"data": "x"}))
    assert res["state"] == b"done"
    assert res["result"].endswith(hashlib.sha256(b"x").hexdigest().encode())
    assert wait_result(r, xadd(r, type="noop"))["state"] == b"done"
    assert sorted(c.worker_pids()) == sorted(pids)


def libcrypto_path():
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    m = re.search(r"^\s*libcrypto\.so\.3 \(.*x86-64.*\) => (\S+)$", out, re.M) or \
        re.search(r"^\s*libcrypto\.so\.3 .*=> (\S+)$", out, re.M)
    return os.path.realpath(m.group(1)) if m else None


def test_missing_libcrypto_fails_sha256_with_the_reason(redis_server, tmpdir_path):
    # The consumer runs in a mount namespace of its own where libcrypto is
    # an empty file (needs root, as CI is): sha256 jobs fail with dlopen's
    # reason, everything else runs on.
    lib = libcrypto_path()
    if os.geteuid() != 0 or lib is None or shutil.which("unshare") is None:
        pytest.skip("needs root, unshare and libcrypto.so.3")
    # A container may refuse new mount namespaces even to root.
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            'mount --bind /dev/null "$0"', lib], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespace here: %s" % probe.stderr.decode().strip())
    wrapper = os.path.join(tmpdir_path, "no-libcrypto.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec unshare -m --propagation private sh -c '
                '\'mount --bind /dev/null "$0" && exec "$@"\' %s %s "$@"\n'
                % (lib, CONSUMER))
    os.chmod(wrapper, 0o755)
    c = Consumer(redis_server.url, ["--workers", "1"], tmpdir_path, binary=wrapper)
    try:
        c.wait_log(r"worker \S+ ready")
        r = redis_server.client()
        res = wait_result(r, xadd(r, type="sha256", payload={"data": "x"}, max_attempts=1))
        assert res["state"] == b"dead", res
        err = res["error"].decode()
        assert "sha256: libcrypto: cannot load libcrypto.so.3" in err, err
        assert wait_result(r, xadd(r, type="echo", payload=[1]))["state"] == b"done"
        assert c.proc.poll() is None and len(c.worker_pids()) == 1
    finally:
        c.stop()
