"""A large payload's three stages beside what Redis itself spends on its bytes.

    /usr/bin/python3 bench/bigfloor.py [--mib 60] [--reps 3] [--build NAME=BINDIR ...]

On one redis-server of its own, every repetition (builds and floor
interleaved, in a rotated order) measures, for one payload of --mib MiB of
random bytes (sent by `jobq enqueue echo @FILE`: a msgpack bin, 5 bytes
longer):

  floor write  one client (a raw socket, RESP built before the clock) DELs
               a list, sends every RPUSH of the same 256 KiB chunks, 16 per
               command as libjobq groups them, then reads their replies;
               "cold": after the DEL, a MEMORY PURGE (outside the clock)
               hands the freed memory back to the kernel, so Redis must
               fault in fresh pages as it does for a payload it has never
               held. On a VM whose host takes freed guest memory back,
               fresh pages cost several ms per MiB (0.19 s against 0.02 s
               for 60 MiB here, 2026-12-06): the stages below meet Redis
               in that state (a MEMORY PURGE before each enqueue), so their
               ratios are to the cold write; the warm one is printed beside
  floor read   the same client sends every LRANGE of 16 chunks of that
               list, then reads the replies' bytes (counted, not parsed)
               (each floor is the best of 3 tries, and the write is tried
               inside one MULTI/EXEC too, the shared contract's simple
               way, which libjobq left in issue 22: printed beside)
  enqueue      `jobq enqueue echo @FILE --id ID` (a process: start, read
               the file, send, exit) against a queue whose consumer is up
               and idle
  worker       from that process's exit until the result hash exists
               (polled every 0.5 ms): the worker reads the chunks, decodes
               them, runs echo, writes the result chunks
  read         `jobq wait ID -o /dev/null`: the result hash, then its
               chunk list, into memory, then written to /dev/null

Each stage is printed as seconds and as a ratio to its floor from the same
repetition: enqueue / write, worker / (read + write), read / read. Medians
over the repetitions. A fresh consumer per repetition gives the worker's
peak RSS (VmHWM) over the payload. The bytes that come back are compared
once per build (outside the clock). Asserts nothing about speed.
bench/compare/compare.py calls run() and table() for its large-payload
rows.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ROOT = bench.ROOT
CHUNK = 256 * 1024
PER_CMD = 16  # chunks per RPUSH / LRANGE: libjobq's 4 MiB per RPUSH
P = "jobq:{default}:"


def chunks_of(packed):
    return [memoryview(packed)[i:i + CHUNK] for i in range(0, len(packed), CHUNK)]


def rpush_bufs(key, pieces, multi=False):
    """The RPUSH commands as a list of buffers (headers + views of the
    chunks: no copy of the payload); multi: inside MULTI/EXEC, as libjobq
    sends them (the DEL stays outside)."""
    bufs = [bench.resp("DEL", key)] + ([bench.resp("MULTI")] if multi else [])
    for i in range(0, len(pieces), PER_CMD):
        group = pieces[i:i + PER_CMD]
        bufs.append(b"*%d\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n" % (2 + len(group), len(key), key))
        for c in group:
            bufs.append(b"$%d\r\n" % len(c))
            bufs.append(c)
            bufs.append(b"\r\n")
    if multi:
        bufs.append(bench.resp("EXEC"))
    return bufs


def send_all(sock, bufs):
    while bufs:
        n = sock.sendmsg(bufs[:512])
        while n:
            if n >= len(bufs[0]):
                n -= len(bufs[0])
                bufs.pop(0)
            else:
                bufs[0] = memoryview(bufs[0])[n:]
                n = 0


def read_exact(sock, buf, n):
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if not k:
            raise RuntimeError("redis closed the connection")
        got += k


def floor_write(sock, pid, key, pieces, multi):
    """Seconds and Redis CPU seconds of one write of the list."""
    bufs = rpush_bufs(key, pieces, multi)
    nrpush = (len(pieces) + PER_CMD - 1) // PER_CMD
    # read_replies counts lines: EXEC's array is its header + one per RPUSH.
    nreplies = 1 + (1 + nrpush + 1 + nrpush if multi else nrpush)
    c0 = bench.cpu_seconds(pid)
    t0 = time.perf_counter()
    send_all(sock, bufs)
    errors = bench.read_replies(sock, nreplies)
    took = time.perf_counter() - t0
    if errors:
        raise RuntimeError("floor RPUSH: %r" % errors)
    return took, bench.cpu_seconds(pid) - c0


def floor_read(sock, pid, key, pieces):
    """Seconds and Redis CPU seconds of one read of the list."""
    ranges, want = [], 0
    for i in range(0, len(pieces), PER_CMD):
        group = pieces[i:i + PER_CMD]
        ranges.append(bench.resp("LRANGE", key, str(i), str(i + len(group) - 1)))
        want += len(b"*%d\r\n" % len(group))
        want += sum(len(b"$%d\r\n" % len(c)) + len(c) + 2 for c in group)
    buf = bytearray(want)
    c0 = bench.cpu_seconds(pid)
    t0 = time.perf_counter()
    send_all(sock, ranges)
    read_exact(sock, buf, want)
    took = time.perf_counter() - t0
    tail = bytes(pieces[-1][-16:]) + b"\r\n"
    if buf[-len(tail):] != tail:
        raise RuntimeError("floor LRANGE: the last bytes differ")
    return took, bench.cpu_seconds(pid) - c0


def purge(sock):
    """MEMORY PURGE: jemalloc hands its freed pages back to the kernel."""
    sock.sendall(bench.resp("MEMORY", "PURGE"))
    bench.read_replies(sock, 1)


def floor(port, pid, pieces, tries=3):
    """(write, read, write inside MULTI, cold write) seconds of one client
    doing what jobq does with the same chunks, each the best of `tries`:
    Redis's own speed, as near as a busy machine shows it."""
    key = b"bigfloor:list"
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    w, rd, wm, wc = [], [], [], []
    for _ in range(tries):
        wm.append(floor_write(sock, pid, key, pieces, True))
        w.append(floor_write(sock, pid, key, pieces, False))
        rd.append(floor_read(sock, pid, key, pieces))
        sock.sendall(bench.resp("DEL", key))
        bench.read_replies(sock, 1)
        purge(sock)
        wc.append(floor_write(sock, pid, key, pieces, False))
    sock.sendall(bench.resp("DEL", key))
    bench.read_replies(sock, 1)
    sock.close()
    best = [min(x) for x in (w, rd, wm, wc)]
    print("floor: write %.3f s (Redis CPU %.3f), read %.3f (%.3f), write in MULTI %.3f (%.3f), "
          "cold write %.3f (%.3f)" % (best[0] + best[1] + best[2] + best[3]), file=sys.stderr)
    return best[0][0], best[1][0], best[2][0], best[3][0]


def jobq_stages(jobq, url, r, src, jid, mark):
    """(enqueue, worker, read) seconds of one echo job through jobq;
    mark() is called at each stage's start and at the end."""
    rkey = P + "result:" + jid
    r.execute_command("MEMORY", "PURGE")  # as cold as the floor's cold write
    mark()
    t0 = time.perf_counter()
    subprocess.run([jobq, "--redis", url, "enqueue", "echo", "@" + src, "--id", jid],
                   check=True, stdout=subprocess.DEVNULL)
    t1 = time.perf_counter()
    mark()
    while not r.exists(rkey):
        time.sleep(0.0005)
        if time.perf_counter() - t1 > 120:
            raise RuntimeError("echo %s did not finish" % jid)
    t2 = time.perf_counter()
    mark()
    subprocess.run([jobq, "--redis", url, "wait", jid, "-o", "/dev/null"], check=True)
    t3 = time.perf_counter()
    mark()
    return t1 - t0, t2 - t1, t3 - t2


def check_bytes(jobq, url, src, packed, d, jid):
    out = os.path.join(d, "back.bin")
    subprocess.run([jobq, "--redis", url, "wait", jid, "-o", out], check=True)
    with open(out, "rb") as f:
        back = f.read()
    os.unlink(out)
    if back != packed:
        raise RuntimeError("%s: the result differs from the payload" % jobq)


def run(builds, mib=60, reps=3):
    """Measures builds ([(name, bindir)], each with jobq and jobq-consumer)
    and Redis's floor, interleaved; returns what table() prints: the
    floors per repetition and each build's rows (enqueue, worker, read,
    VmHWM, floor cold write, floor read, Redis CPU of the three stages)."""
    d = tempfile.mkdtemp(prefix="bigfloor-")
    for name, bindir in builds:  # private copies, safe from rebuilds
        os.makedirs(os.path.join(d, name))
        for exe in ("jobq", "jobq-consumer"):
            shutil.copy2(os.path.join(bindir, exe), os.path.join(d, name, exe))
    data = os.urandom(mib * bench.MIB)
    src = os.path.join(d, "payload.bin")
    with open(src, "wb") as f:
        f.write(data)
    packed = msgpack.packb(data, use_bin_type=True)
    pieces = chunks_of(packed)
    srv = bench.Redis(d)
    r = srv.client()
    rows = {name: [] for name, _ in builds}
    floors = []
    try:
        for rep in range(reps):
            order = builds[rep % len(builds):] + builds[:rep % len(builds)]
            w, rd, wm, wc = floor(srv.port, srv.proc.pid, pieces)
            floors.append((w, rd, wm, wc))
            for name, _ in order:
                jobq = os.path.join(d, name, "jobq")
                c = bench.Consumer(os.path.join(d, name, "jobq-consumer"), srv, r,
                                   ["--max-payload", "128m"], 1, d)
                try:
                    jid = "big-%s-%d" % (name, rep)
                    cpu = []
                    st = jobq_stages(jobq, srv.url, r, src, jid,
                                     lambda: cpu.append(bench.cpu_seconds(srv.proc.pid)))
                    rcpu = tuple(b - a for a, b in zip(cpu, cpu[1:]))
                    wcpu = bench.cpu_seconds(c.pids[0])
                    hwm = bench.proc_status(c.pids[0], "VmHWM")
                    if rep == 0:
                        check_bytes(jobq, srv.url, src, packed, d, jid)
                finally:
                    c.stop()
                r.delete(P + "result:" + jid, P + "result:" + jid + ":chunks")
                rows[name].append(st + (hwm, wc, rd, rcpu))
                print("rep %d %-8s enqueue %.3f worker %.3f read %.3f | floor cold write %.3f "
                      "read %.3f | VmHWM %.1f MiB | Redis CPU %s | worker CPU %.3f" % (
                          (rep, name) + st + (wc, rd, hwm / bench.MIB,
                                              "/".join("%.3f" % x for x in rcpu), wcpu)),
                      file=sys.stderr)
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
    return {"mib": mib, "reps": reps, "size": len(packed), "floors": floors, "rows": rows,
            "builds": [name for name, _ in builds]}


def table(res):
    """The markdown table of run()'s result: medians, each stage also as
    the median of its per-repetition ratio to that repetition's floor."""
    med = statistics.median
    floors = res["floors"]
    lines = ["| build | enqueue s (/ floor cold write) | worker s (/ floor cold write + read) "
             "| read s (/ floor read) | peak worker RSS / payload "
             "| Redis CPU s: enqueue / worker / read |",
             "|---|---|---|---|---|---|"]
    fw, fr, fc = (med(f[k] for f in floors) for k in (0, 1, 3))
    lines.append("| Redis floor (cold write: into fresh memory, after MEMORY PURGE) "
                 "| %.3f | %.3f | %.3f | | |" % (fc, fc + fr, fr))
    lines.append("| (floor write warm: into the memory its last DEL freed) "
                 "| %.3f | %.3f | | | |" % (fw, fw + fr))
    lines.append("| (floor write inside one MULTI/EXEC, the shared contract's simple way) "
                 "| %.3f | | | | |" % med(f[2] for f in floors))
    for name in res["builds"]:
        x = res["rows"][name]
        cpu = " / ".join("%.3f" % med(v[6][k] for v in x) for k in range(3))
        lines.append("| %s | %.3f (%.2fx) | %.3f (%.2fx) | %.3f (%.2fx) | %.2fx | %s |" % (
            name, med(v[0] for v in x), med(v[0] / v[4] for v in x), med(v[1] for v in x),
            med(v[1] / (v[4] + v[5]) for v in x), med(v[2] for v in x),
            med(v[2] / v[5] for v in x), med(v[3] for v in x) / res["size"], cpu))
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=60)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--build", action="append", default=[],
                    help="NAME=DIR with DIR/jobq and DIR/jobq-consumer (default: this bin/)")
    a = ap.parse_args()
    builds = [b.split("=", 1) for b in a.build] or [["this", os.path.join(ROOT, "bin")]]
    res = run(builds, a.mib, a.reps)
    load = open("/proc/loadavg").read().split()[:3]
    print("%d MiB random bytes, %d reps, load average %s, %s" % (
        a.mib, a.reps, " ".join(load), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print()
    print("\n".join(table(res)))


if __name__ == "__main__":
    main()
