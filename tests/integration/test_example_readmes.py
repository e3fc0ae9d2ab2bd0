"""Every README under examples/ is run as written (issue 27: the examples
disagreed with their docs). A fenced ```sh block right after a line
`<!-- test -->` (or `<!-- test cwd=. -->`) is a session: each `$ ` line is
a command, the lines up to the next `$ ` are what it prints (stdout and
stderr together, in order); in an expected line `...` stands for any text,
and a line that is only `...` for any number of lines.

Commands run with `sh -c` from the repository's root (`cwd=.`: from a copy
of the README's folder, so that builds and node_modules land in a scratch
directory), with JOBQ_REDIS_URL naming a redis-server of the test's own
and `bin/` meaning JQ_BIN_DIR. A `bin/jobq-consumer ... &` line starts the
consumer (and waits until it serves); other lines ending in `&` start a
helper (a web server) that is stopped at the end. A README with no
consumer line gets a plain one, as `make run` gives its reader. The
C producer's README builds against a `make install DESTDIR=...` tree, as a
packager's would be, through PKG_CONFIG_PATH and LD_LIBRARY_PATH."""
import glob
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import socket

import pytest

from conftest import BIN, ROOT, SAN, free_port, scale, wait_for

READMES = sorted(os.path.relpath(p, ROOT)
                 for p in glob.glob(os.path.join(ROOT, "examples", "**", "README.md"), recursive=True))
MARK = re.compile(r"^<!-- test( cwd=\.)? -->\n```sh\n(.*?)^```$", re.M | re.S)
# The http example's port, replaced by a free one.
HTTP_PORT = "8765"


def sessions(text):
    """[(in_readme_dir, [(command, expected_lines)])] of the marked blocks."""
    out = []
    for m in MARK.finditer(text):
        steps = []
        for line in m.group(2).splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
            else:
                raise AssertionError("a test block must start with a `$ ` line: %r" % line)
        out.append((m.group(1) is not None, steps))
    return out


def pattern(expected):
    """The regular expression of an expected output (see the docstring)."""
    parts = []
    for line in expected:
        if line == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(re.escape(p) for p in line.split("...")) + r"\n")
    return re.compile("".join(parts) + r"\Z")


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def with_bin(cmd):
    """`bin/` at the start of a word is the binaries under test."""
    return re.sub(r"(?<![\w/.-])bin/", BIN + "/", cmd)


def test_every_example_folder_has_a_tested_readme():
    folders = {"examples/producers/c", "examples/producers/node", "examples/producers/python",
               "examples/producers/sh", "examples/handlers", "examples/plugins", "examples/exec",
               "examples/http"}
    have = {os.path.dirname(p) for p in READMES}
    assert folders <= have, "no README.md in %s" % sorted(folders - have)
    for p in READMES:
        with open(os.path.join(ROOT, p)) as f:
            assert sessions(f.read()), "%s has no <!-- test --> block" % p


def test_pattern_can_fail():
    assert pattern(['{"id":"...","state":"done"}', "exit 0"]).match('{"id":"1-0","state":"done"}\nexit 0\n')
    assert not pattern(["exit 0"]).match("exit 2\n")
    assert not pattern(["a"]).match("a\nb\n")
    assert pattern(["...", "exit 0"]).match("added 16 packages\nwarn x\nexit 0\n")


@pytest.fixture(scope="module")
def install_tree():
    """`make install DESTDIR=...` for the C producer's README (built lazily)."""
    trees = []

    def get():
        if not trees:
            dest = tempfile.mkdtemp(prefix="jobq-readme-install-")
            env = {k: v for k, v in os.environ.items()
                   if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SAN")}
            out = subprocess.run(["make", "-s", "-C", ROOT, "SAN=0", "install", "DESTDIR=" + dest,
                                  "PREFIX=/usr"], env=env, capture_output=True, text=True, timeout=600)
            assert out.returncode == 0, out.stdout + out.stderr
            trees.append(dest)
        return trees[0]

    yield get
    for t in trees:
        shutil.rmtree(t, ignore_errors=True)


@pytest.mark.parametrize("readme", READMES)
def test_readme_commands_print_what_it_says(readme, redis_server, consumer, tmpdir_path,
                                            install_tree):
    if SAN and readme.startswith(("examples/producers/node/", "examples/producers/python/")):
        # npm ci and Python starts, none of it under the sanitizers: `make
        # test` runs them.
        pytest.skip("a client-side README: run by make test, not under the sanitizers")
    with open(os.path.join(ROOT, readme)) as f:
        text = f.read()
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["JOBQ_REDIS_URL"] = redis_server.url
    # npm ci from its cache without asking the registry again when it can.
    env["npm_config_prefer_offline"] = "true"
    if readme.startswith("examples/producers/c/"):
        tree = install_tree()
        env.update(PKG_CONFIG_PATH=os.path.join(tree, "usr/lib/pkgconfig"),
                   PKG_CONFIG_SYSROOT_DIR=tree, LD_LIBRARY_PATH=os.path.join(tree, "usr/lib"))
    folder = os.path.join(tmpdir_path, "example")
    shutil.copytree(os.path.dirname(os.path.join(ROOT, readme)), folder,
                    ignore=shutil.ignore_patterns("node_modules", "README.md"))
    all_sessions = sessions(text)
    if not any(cmd.startswith("bin/jobq-consumer ") for _, steps in all_sessions for cmd, _ in steps):
        consumer("--backoff-ms", "100")
    helpers = []
    try:
        for here, steps in all_sessions:
            cwd = folder if here else ROOT
            for cmd, expected in steps:
                cmd = with_bin(cmd.replace(HTTP_PORT, port))
                expected = [line.replace(HTTP_PORT, port) for line in expected]
                if cmd.endswith("&"):
                    argv = shlex.split(cmd[:-1])
                    if os.path.basename(argv[0]) == "jobq-consumer":
                        assert not expected, "a consumer line prints nothing here: %s" % cmd
                        # Its paths are the repository's, wherever pytest runs.
                        consumer(*[re.sub(r"(?<![\w/.-])examples/", ROOT + "/examples/", a)
                                   for a in argv[1:]])
                    else:
                        helpers.append(subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                                        stderr=subprocess.DEVNULL))
                        if port in argv:
                            wait_for(lambda: listening(int(port)), timeout=scale(20),
                                     what="%s listening" % argv[0])
                    continue
                p = subprocess.run(["sh", "-c", cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=scale(120))
                assert pattern(expected).match(p.stdout), \
                    "%s: `%s` printed (exit %d):\n%s\nthe README says:\n%s" % (
                        readme, cmd, p.returncode, p.stdout, "\n".join(expected))
    finally:
        for h in helpers:
            h.terminate()
            h.wait(timeout=10)
