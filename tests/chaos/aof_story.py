#!/usr/bin/python3
"""What Redis really did to some jobs, read back from its append-only file
(for a chaos run kept with --keep-aof, whose AOF is never rewritten):

    tests/chaos/aof_story.py DIR [JOB_ID...]

Without job ids it lists the jobs whose outcome was written more than once
(a job run, or an outcome written, twice) or enqueued more than once, then
tells each one's story: every enqueue, delivery (XREADGROUP and XCLAIM are
both in the file as XCLAIM), outcome and ack, in the order Redis ran them,
each with the transaction it was part of."""
import os
import re
import sys
from collections import defaultdict


def commands(path):
    """Yields each command of an AOF file as a list of bytes."""
    with open(path, "rb") as f:
        data = f.read()
    i, n = 0, len(data)
    while i < n:
        if data[i:i + 1] != b"*":
            # An RDB preamble or a torn tail: nothing for us.
            j = data.find(b"\r\n*", i)
            if j < 0:
                return
            i = j + 2
            continue
        try:
            j = data.index(b"\r\n", i)
            argc = int(data[i + 1:j])
            i = j + 2
            argv = []
            for _ in range(argc):
                j = data.index(b"\r\n", i)
                ln = int(data[i + 1:j])
                argv.append(data[j + 2:j + 2 + ln])
                i = j + 2 + ln + 2
        except ValueError:
            return    # a tail torn by a kill (Redis drops it at load)
        yield argv


def aof_files(d):
    adir = os.path.join(d, "appendonlydir")
    man = open(os.path.join(adir, "appendonly.aof.manifest")).read()
    names = re.findall(r"file (\S+) seq \d+ type ([bi])", man)
    return [os.path.join(adir, f) for f, t in names if t == "i"]


def read(d):
    """Per job id: its events [(seq, tx, what)] and counts."""
    events = defaultdict(list)
    entry_job = {}
    outcomes = defaultdict(list)
    enqueues = defaultdict(int)
    seq = tx = 0
    in_multi = False
    for path in aof_files(d):
        for argv in commands(path):
            seq += 1
            cmd = argv[0].upper()
            if cmd == b"MULTI":
                in_multi = True
                tx += 1
                continue
            if cmd == b"EXEC":
                in_multi = False
                continue
            t = tx if in_multi else 0
            if cmd == b"XADD":
                eid = argv[2].decode()
                fields = dict(zip(argv[3::2], argv[4::2]))
                jid = fields.get(b"id", eid.encode()).decode()
                entry_job[eid] = jid
                att = fields.get(b"attempt", b"0").decode()
                if att in ("", "0"):
                    enqueues[jid] += 1
                events[jid].append((seq, t, "XADD %s attempt %s" % (eid, att)))
            elif cmd == b"XCLAIM":
                eid = argv[5].decode()
                rest = b" ".join(argv[6:]).decode(errors="replace")
                if eid in entry_job:
                    events[entry_job[eid]].append((seq, t, "XCLAIM %s to %s %s" % (eid, argv[3].decode(), rest)))
            elif cmd == b"XACK":
                for a in argv[3:]:
                    eid = a.decode()
                    if eid in entry_job:
                        events[entry_job[eid]].append((seq, t, "XACK %s" % eid))
            elif cmd == b"HSET" and b":result:" in argv[1] and not argv[1].endswith(b":chunks"):
                jid = argv[1].split(b":result:", 1)[1].decode()
                h = dict(zip(argv[2::2], argv[3::2]))
                st = h.get(b"state", b"?").decode()
                if st in ("done", "dead"):
                    outcomes[jid].append(st)
                events[jid].append((seq, t, "result %s attempts %s by %s" % (
                    st, h.get(b"attempts", b"?").decode(), h.get(b"worker", b"?").decode())))
            elif cmd == b"HINCRBY" and argv[1].endswith(b":stats"):
                events["stats tx %d" % t].append((seq, t, "%s +%s" % (argv[2].decode(), argv[3].decode())))
    return events, outcomes, enqueues


def main():
    d = sys.argv[1]
    events, outcomes, enqueues = read(d)
    jobs = sys.argv[2:]
    if not jobs:
        jobs = sorted(j for j in set(outcomes) | set(enqueues)
                      if len(outcomes.get(j, [])) > 1 or enqueues.get(j, 0) > 1)
        print("jobs with an outcome written more than once or enqueued more than once: %d" % len(jobs))
    for j in jobs:
        print("== %s: enqueued %d, outcomes %s" % (j, enqueues.get(j, 0), outcomes.get(j, [])))
        for seq, t, what in events.get(j, []):
            stats = events.get("stats tx %d" % t, []) if t else []
            print("  %8d tx %-6s %s%s" % (seq, t or "-", what,
                                          ("   [tx counts: %s]" % ", ".join(s[2] for s in stats))
                                          if stats and what.startswith("result") else ""))


if __name__ == "__main__":
    main()
