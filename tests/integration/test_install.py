"""`make install` / `make uninstall` into a staging tree (DESTDIR), as a
packager runs them: what lands where, what the shared library exports, a C
program built against the installed tree through pkg-config and run
against a real consumer, and an uninstall that leaves no file behind."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import ROOT, sha256_rounds

PREFIX = "/usr"


def clean_env(**extra):
    """The environment of a fresh top-level make: neither the outer make's
    jobserver and variables (MAKEFLAGS, e.g. SAN=1 under `make check`) nor
    its level are passed on."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SAN")}
    env.update(extra)
    return env


def make(*args):
    """Runs make in the source tree. The release build is what gets
    installed, also under `make check`."""
    out = subprocess.run(["make", "-s", "-C", ROOT, "SAN=0"] + list(args), env=clean_env(),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, "make %s failed:\n%s%s" % (" ".join(args), out.stdout, out.stderr)
    return out


def files_under(root):
    """Every file and symlink under root, as paths relative to it."""
    found = set()
    for d, _, names in os.walk(root):
        for n in names:
            found.add(os.path.relpath(os.path.join(d, n), root))
    return found


@pytest.fixture(scope="module")
def tree():
    dest = tempfile.mkdtemp(prefix="jobq-install-")
    make("install", "DESTDIR=" + dest, "PREFIX=" + PREFIX)
    yield dest
    shutil.rmtree(dest, ignore_errors=True)


def public_functions():
    """The functions declared by the installed headers' source, comments
    stripped."""
    names = set()
    inc = os.path.join(ROOT, "include", "jobq")
    for h in os.listdir(inc):
        with open(os.path.join(inc, h)) as f:
            text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
        names |= set(re.findall(r"\b(jq_\w+)\s*\(", text))
        # handler.h's static inline helpers live in the header, not in
        # libjobq (that header is the consumer's plugin ABI).
        names -= set(re.findall(r"static\s+inline\s+[\w\s*]*?\b(jq_\w+)\s*\(", text))
    return names


def test_install_puts_every_file_under_prefix(tree):
    got = files_under(tree)
    expected = {
        "usr/bin/jobq", "usr/bin/jobq-consumer", "usr/bin/jobq-exec-guard",
        "usr/lib/libjobq.a", "usr/lib/libjobq.so", "usr/lib/libjobq.so.1",
        "usr/lib/pkgconfig/jobq.pc",
        "usr/lib/systemd/system/jobq-consumer.service", "usr/share/doc/jobq/jobq.default",
        "usr/share/man/man1/jobq.1", "usr/share/man/man1/jobq-consumer.1",
        "usr/share/man/man7/jobq-protocol.7",
    }
    expected |= {"usr/include/jobq/" + h for h in os.listdir(os.path.join(ROOT, "include", "jobq"))}
    assert expected <= got, "missing: %s" % sorted(expected - got)
    # Nothing outside the prefix (no /etc, no /var): DESTDIR/usr only.
    assert all(p.startswith("usr/") for p in got), sorted(got)
    lib = os.path.join(tree, "usr/lib")
    assert os.readlink(os.path.join(lib, "libjobq.so")) == "libjobq.so.1"
    real = os.readlink(os.path.join(lib, "libjobq.so.1"))
    assert re.fullmatch(r"libjobq\.so\.1\.\d+\.\d+", real) and ("usr/lib/" + real) in got
    pc = open(os.path.join(lib, "pkgconfig/jobq.pc")).read()
    assert "prefix=/usr\n" in pc and "libdir=/usr/lib\n" in pc
    assert re.search(r"^Requires\.private: .*hiredis", pc, re.M)


def test_each_installed_header_compiles_alone(tree):
    """A user includes any one of them first: each brings what it needs
    (handler.h, the plugin ABI, needs libuv's and msgpack's headers)."""
    env = clean_env(PKG_CONFIG_PATH=os.path.join(tree, "usr/lib/pkgconfig"), PKG_CONFIG_SYSROOT_DIR=tree)
    cflags = subprocess.run(["pkg-config", "--cflags", "jobq", "libuv", "msgpack"], env=env,
                            capture_output=True, text=True, check=True).stdout.split()
    assert "-I%s/usr/include" % tree in cflags
    headers = sorted(os.listdir(os.path.join(tree, "usr/include/jobq")))
    assert "jobq.h" in headers
    for h in headers:
        out = subprocess.run(["cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c",
                              "-"] + cflags, input="#include <jobq/%s>\n" % h, capture_output=True,
                             text=True)
        assert out.returncode == 0, h + ":\n" + out.stderr


def test_shared_library_has_soname_and_exports_only_the_public_api(tree):
    so = os.path.join(tree, "usr/lib/libjobq.so.1")
    dyn = subprocess.run(["readelf", "-d", so], capture_output=True, text=True, check=True).stdout
    assert "Library soname: [libjobq.so.1]" in dyn
    out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True,
                         check=True).stdout
    exported = set()
    for line in out.splitlines():
        parts = line.split()
        name = parts[-1].split("@")[0]
        if parts[-2] == "A" and re.fullmatch(r"JOBQ_\d+", name):
            continue  # the version node of the version script, not a symbol
        exported.add(name)
    assert all(n.startswith("jq_") for n in exported), sorted(n for n in exported if not n.startswith("jq_"))
    # Exactly the header's functions: none of the internals (jq_log_*,
    # jq_codec_*, ...) and none of the API missing.
    assert exported == public_functions(), (sorted(exported - public_functions()),
                                             sorted(public_functions() - exported))
    assert "jq_log_write" not in exported and "jq_client_enqueue" in exported


MAN_PAGES = {
    # page: (what lexgrog must read as its NAME line, text the page must show)
    "man1/jobq.1": ("jobq - enqueue", ["enqueue", "dead", "--wait", "Exit status"]),
    "man1/jobq-consumer.1": ("jobq-consumer - run jobq jobs", ["SIGNALS", "Type=notify"]),
    "man7/jobq-protocol.7": ("jobq-protocol - the jobq wire protocol", ["XADD", "BLPOP", "XREADGROUP"]),
}


@pytest.mark.parametrize("page", sorted(MAN_PAGES))
def test_man_page_renders_and_lexgrog_reads_it(tree, page):
    path = os.path.join(tree, "usr/share/man", page)
    whatis, texts = MAN_PAGES[page]
    out = subprocess.run(["lexgrog", path], capture_output=True, text=True)
    assert out.returncode == 0 and ': "%s' % whatis in out.stdout, out.stdout + out.stderr
    env = dict(os.environ, MANWIDTH="80")
    env.pop("MAN_KEEP_FORMATTING", None)
    out = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    # groff's only complaint may be go-md2man's tables of sentences, which
    # do not wrap and run past 80 columns.
    complaints = [l for l in out.stderr.splitlines()
                  if l.strip() and "table wider than line width" not in l and not l.startswith("warning: file")]
    assert complaints == [], out.stderr
    # The text, from lines too long for troff to break or hyphenate a word.
    env["MANWIDTH"] = "1000"
    out = subprocess.run(["man", "-l", path], capture_output=True, text=True, env=env, check=True)
    shown = re.sub(r".\x08", "", out.stdout)  # any overstrike bold left
    for t in ["NAME", "DESCRIPTION"] + texts:
        assert t in shown, t
    if page == "man1/jobq-consumer.1":
        # Every option of the option table is documented, with its variable.
        help_text = subprocess.run([os.path.join(tree, "usr/bin/jobq-consumer"), "--help"],
                                   capture_output=True, text=True, check=True).stdout
        flags = re.findall(r"^  (--[a-z-]+)", help_text, re.M)
        assert len(flags) > 10
        for f in flags:
            if f != "--worker-role":
                assert f in shown, f
        for var in re.findall(r"env (JOBQ_\w+)", help_text):
            assert var in shown, var


def unit_settings(path):
    """The [Service] assignments of a unit file: name -> list of values."""
    section, found = None, {}
    for line in open(path):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            found.setdefault(k, []).append(v)
    return found


def systemd_analyze(*args):
    return subprocess.run(["systemd-analyze"] + list(args), capture_output=True, text=True,
                          timeout=120)


def test_systemd_unit_is_valid_and_hardened(tree, tmpdir_path):
    unit = os.path.join(tree, "usr/lib/systemd/system/jobq-consumer.service")
    s = unit_settings(unit)
    assert s["ExecStart"] == ["/usr/bin/jobq-consumer"]  # the install's BINDIR
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"]
    assert s["KillMode"] == ["mixed"]
    assert s["EnvironmentFile"] == ["-/etc/default/jobq"]
    # The shell's kill (procps's /bin/kill may be missing); reloads are
    # run for real under systemd by tests/systemd/run.sh.
    assert s["ExecReload"] == ["/bin/sh -c 'kill -HUP \"$$MAINPID\"'"]
    assert s["DynamicUser"] == ["yes"] and s["User"] == ["jobq"]
    for k in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert s[k] == ["yes"], k
    assert s["ProtectSystem"] == ["strict"]
    # systemd's SIGKILL must come after the master's own: the drain
    # timeout (from the option table, via --help) plus its 5 s margin.
    help_text = subprocess.run([os.path.join(tree, "usr/bin/jobq-consumer"), "--help"],
                               capture_output=True, text=True, check=True).stdout
    drain_ms = int(re.search(r"--shutdown-timeout-ms .*default (\d+)\)", help_text).group(1))
    assert int(s["TimeoutStopSec"][0]) * 1000 > drain_ms + 5000
    # The example settings name only real variables.
    for var in re.findall(r"^#?(JOBQ_\w+)=", open(os.path.join(tree, "usr/share/doc/jobq/jobq.default")).read(),
                          re.M):
        assert re.search(r"env %s[,)]" % var, help_text), var  # "(env V)": no default

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit was not verified")
    probe = os.path.join(tmpdir_path, "probe.service")
    with open(probe, "w") as f:
        f.write("[Service]\nExecStart=/bin/true\n")
    p = systemd_analyze("verify", "--man=no", probe)
    if p.returncode != 0 or p.stderr:
        pytest.skip("systemd-analyze verify cannot run here (%s): the unit was not verified"
                    % (p.stderr.strip() or p.returncode))
    # Verify a copy whose ExecStart is the binary in the staging tree (the
    # checker wants an executable there). Unknown keys and bad values only
    # warn, so any output fails the test too.
    copy = os.path.join(tmpdir_path, "jobq-consumer.service")
    with open(unit) as f, open(copy, "w") as g:
        g.write(f.read().replace("ExecStart=/usr/bin/", "ExecStart=%s/usr/bin/" % tree))
    p = systemd_analyze("verify", "--man=no", copy)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    # Exposure 2.0 or less on systemd's 0-10 scale ("OK"; 1.5 when written).
    p = systemd_analyze("security", "--offline=yes", "--threshold=20", copy)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr


def build_c_example(tree, workdir, static):
    src = os.path.join(ROOT, "examples", "producers", "c")
    build = os.path.join(workdir, "c-static" if static else "c")
    shutil.copytree(src, build)
    env = clean_env(PKG_CONFIG_PATH=os.path.join(tree, "usr/lib/pkgconfig"),
                    PKG_CONFIG_SYSROOT_DIR=tree)
    out = subprocess.run(["make", "-C", build] + (["STATIC=1"] if static else []), env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "warning" not in out.stderr, out.stderr
    return os.path.join(build, "enqueue")


@pytest.mark.parametrize("static", [False, True], ids=["shared", "static"])
def test_c_example_built_against_installed_tree_runs_jobs(tree, static, tmpdir_path, redis_server,
                                                          consumer):
    exe = build_c_example(tree, tmpdir_path, static)
    needed = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True, check=True).stdout
    # Linked to the installed library: dynamically by its soname, or not at all.
    assert ("[libjobq.so.1]" in needed) == (not static)
    consumer("--backoff-ms", "20")
    env = dict(os.environ, JOBQ_REDIS_URL=redis_server.url,
               LD_LIBRARY_PATH=os.path.join(tree, "usr/lib"))
    out = subprocess.run([exe, "sha256", '{"data":"hello","rounds":3}'], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # One line of JSON, as every example prints (issue 27: C printed raw).
    assert out.stdout == '"%s"\n' % sha256_rounds(b"hello", 3)
    out = subprocess.run([exe, "echo", '{"a":[1,-2,2.5,"x\\"y"],"b":null,"ok":true}'], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"a": [1, -2, 2.5, 'x"y'], "b": None, "ok": True}
    out = subprocess.run([exe, "fail", '{"message":"card declined"}'], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stdout == ""
    assert "dead: card declined" in out.stderr
    out = subprocess.run([exe, "sha256", "{not json"], env=env, capture_output=True, text=True,
                         timeout=60)
    # A bad payload is 2 in every example (issue 27: C said 3).
    assert out.returncode == 2 and "json" in out.stderr.lower()


def test_default_prefix_is_usr_local():
    dry = make("-n", "install", "DESTDIR=/nonexistent").stdout
    for path in ("/nonexistent/usr/local/bin/", "/nonexistent/usr/local/lib/libjobq.so.1",
                 "/nonexistent/usr/local/lib/pkgconfig/jobq.pc", "/nonexistent/usr/local/include/jobq/",
                 "/nonexistent/usr/local/share/man/man1/", "/nonexistent/usr/local/lib/systemd/system/"):
        assert path in dry, path
    assert "ExecStart" not in dry and "|@BINDIR@|/usr/local/bin|" in dry


def test_uninstall_leaves_no_file_behind():
    dest = tempfile.mkdtemp(prefix="jobq-uninstall-")
    try:
        make("install", "DESTDIR=" + dest, "PREFIX=" + PREFIX)
        assert len(files_under(dest)) >= 8
        make("uninstall", "DESTDIR=" + dest, "PREFIX=" + PREFIX)
        assert files_under(dest) == set()
        # What is left are empty directories only. jobq's own are gone; the
        # standard ones (bin, lib, share/man/man1, ...) stay, as `make
        # uninstall` into / must not remove /usr/local/bin.
        dirs = {os.path.relpath(d, dest) for d, _, _ in os.walk(dest)} - {"."}
        assert not [d for d in dirs if os.path.basename(d) == "jobq"], sorted(dirs)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
