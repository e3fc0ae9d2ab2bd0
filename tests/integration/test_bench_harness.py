"""The benchmark harnesses stay runnable: they are never run by `make test`
(speed is shown by benchmarks, not tests), but their code is checked here,
and the Node.js peers' sha256 must compute what jobq's handler computes."""
import hashlib
import os
import py_compile
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPARE = os.path.join(ROOT, "bench", "compare")


def test_python_harnesses_compile(tmp_path):
    for rel in ("bench/bench.py", "bench/compare/compare.py", "bench/seed/seed.py", "bench/floor.py", "bench/ab.py",
                "bench/latpair.py", "bench/bigfloor.py"):
        py_compile.compile(os.path.join(ROOT, rel), cfile=str(tmp_path / "x.pyc"), doraise=True)


def test_node_scripts_parse():
    for d in (COMPARE, os.path.join(ROOT, "bench", "seed")):
        for name in sorted(os.listdir(d)):
            if name.endswith(".js"):
                subprocess.run(["node", "--check", os.path.join(d, name)], check=True)


def test_peer_sha256_matches_hashlib_and_jobq_definition():
    # PROTOCOL §8: round 1 hashes data, each later round the previous digest.
    d = hashlib.sha256(b"\x01" * 1024).digest()
    for _ in range(999):
        d = hashlib.sha256(d).digest()
    out = subprocess.run(
        ["node", "-e", "process.stdout.write(require('./sha').sha256Rounds('\\u0001'.repeat(1024), 1000))"],
        cwd=COMPARE, capture_output=True, text=True, check=True).stdout
    assert out == d.hex()
