#!/usr/bin/env python3
"""The consumer's include graph, read from its real #include lines.

    scripts/include-graph.py [--files] [--check]    # writes graphviz dot on stdout

Each quoted include of consumer/ is resolved the way the compiler's -iquote
path does (the including file's own folder first, then the one folder that
holds a header of that name: consumer/*/, common/, include/), and each
<jobq/...> include to include/jobq/. System headers are left out.

By default one node per folder (conf, redis, dl, handlers, worker, web,
master, the entry main.c, and common/ and include/jobq/ which every folder
sees), one arrow per pair of folders, labelled with its number of include
lines. With --files, one node per module (x.c and x.h together) inside a box
per folder, common/ and include/ left out; an arrow between modules of one
folder is grey.

Exits 1, naming it, when the folders include each other in a circle: the
Makefile's per-folder include paths should make that impossible to compile,
and docs/ARCHITECTURE.md promises there is none. --check prints nothing else.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')

# Drawn top to bottom: whoever includes sits above what it includes.
FOLDER_NOTES = {
    "main.c": "the entry: master or worker",
    "master": "supervises the workers",
    "worker": "a job's life: fetch, run, finish",
    "web": "HTTP server, metrics, dashboard",
    "handlers": "the registry and the job types",
    "conf": "the option table",
    "redis": "the connection, its replies",
    "dl": "libraries opened on first use",
    "common": "wire format, keys, codec, log",
    "include/jobq": "public headers",
}


SEEN_BY_ALL = ("common", "include/jobq")


def rel(path):
    return os.path.relpath(path, ROOT)


def source_files():
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "consumer")):
        dirnames.sort()
        for f in sorted(filenames):
            if f.endswith((".c", ".h")):
                out.append(os.path.join(dirpath, f))
    return out


def header_index():
    """Header name -> the paths that hold it, over everything -iquote reaches."""
    idx = {}
    places = [os.path.join(ROOT, "common"), os.path.join(ROOT, "include")]
    for dirpath, _, filenames in os.walk(os.path.join(ROOT, "consumer")):
        places.append(dirpath)
    for d in places:
        if not os.path.isdir(d):
            continue
        for f in os.listdir(d):
            if f.endswith(".h"):
                idx.setdefault(f, []).append(os.path.join(d, f))
    return idx


def folder_of(path):
    """consumer/worker/fetch.c -> worker; consumer/main.c -> main.c;
    consumer/web/assets/x -> web; common/x.h -> common."""
    parts = rel(path).split(os.sep)
    if parts[0] == "consumer":
        return parts[1]
    if parts[0] == "include":
        return "include/jobq"
    return parts[0]


def module_of(path):
    base = os.path.splitext(os.path.basename(path))[0]
    return folder_of(path), base


def resolve(src, kind, name, idx):
    if kind == "<":
        p = os.path.join(ROOT, "include", name)
        return p if os.path.isfile(p) else None
    own = os.path.join(os.path.dirname(src), name)
    if os.path.isfile(own):
        return own
    if "/" in name:
        p = os.path.join(ROOT, "include", name)
        return p if os.path.isfile(p) else None
    hits = idx.get(name, [])
    if len(hits) > 1:
        sys.exit("include-graph: %s: \"%s\" is ambiguous: %s"
                 % (rel(src), name, ", ".join(rel(h) for h in hits)))
    return hits[0] if hits else None


def edges():
    idx = header_index()
    out = []
    for src in source_files():
        with open(src, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                dst = resolve(src, m.group(1), m.group(2), idx)
                if dst is not None:
                    out.append((src, dst))
    return out


def find_circle(graph):
    """A circle in graph (node -> set of nodes), as a list, or None."""
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def q(s):
    return '"' + s.replace('"', '\\"') + '"'


def folder_dot(pairs):
    count = {}
    for a, b in pairs:
        fa, fb = folder_of(a), folder_of(b)
        if fa != fb:
            count[(fa, fb)] = count.get((fa, fb), 0) + 1
    nodes = sorted({f for e in count for f in e} | {"main.c"},
                   key=lambda f: list(FOLDER_NOTES).index(f) if f in FOLDER_NOTES else 99)
    lines = ["digraph consumer {",
             '  rankdir=TB; nodesep=0.35; ranksep=0.5;',
             '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
             'fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555", fontcolor="#555555"];']
    for n in nodes:
        label = n if n == "main.c" or n in SEEN_BY_ALL else "consumer/" + n
        note = FOLDER_NOTES.get(n, "")
        fill = ', fillcolor="#f2f2f2"' if n in SEEN_BY_ALL else ""
        lines.append("  %s [label=%s%s];" % (q(n), q(label + "\\n" + note), fill))
    lines.append('  { rank=same; "common"; "include/jobq"; }')
    for (a, b), c in sorted(count.items()):
        lines.append("  %s -> %s [label=%s];" % (q(a), q(b), q(" %d" % c)))
    lines.append("}")
    return "\n".join(lines) + "\n", count


def files_dot(pairs):
    mods = {}
    links = set()
    for a, b in pairs:
        ma, mb = module_of(a), module_of(b)
        if mb[0] in SEEN_BY_ALL:
            continue
        mods.setdefault(ma[0], set()).add(ma[1])
        mods.setdefault(mb[0], set()).add(mb[1])
        if ma != mb:
            links.add((ma, mb))
    lines = ["digraph consumer_files {",
             '  rankdir=TB; nodesep=0.15; ranksep=0.6; newrank=true;',
             '  label="(common/ and include/jobq/, seen by every folder, left out)"; '
             'fontname="Helvetica"; fontsize=10;',
             '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
             'fontname="Helvetica", fontsize=10, height=0.25];',
             '  edge [color="#666666", arrowsize=0.6];']
    for i, (folder, names) in enumerate(sorted(mods.items())):
        lines.append("  subgraph cluster_%d {" % i)
        lines.append("    label=%s; fontname=\"Helvetica\"; style=rounded; color=\"#9aa7bd\";"
                     % q(folder if folder == "main.c" else "consumer/" + folder))
        for n in sorted(names):
            lines.append("    %s [label=%s];" % (q(folder + "/" + n), q(n)))
        lines.append("  }")
    for (fa, a), (fb, b) in sorted(links):
        style = ' [color="#bbbbbb"]' if fa == fb else ""
        lines.append("  %s -> %s%s;" % (q(fa + "/" + a), q(fb + "/" + b), style))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv):
    pairs = edges()
    dot, count = folder_dot(pairs)
    graph = {}
    for a, b in count:
        graph.setdefault(a, set()).add(b)
    circle = find_circle(graph)
    if circle:
        sys.stderr.write("include-graph: the consumer's folders include each other in a circle: %s\n"
                         % " -> ".join(circle))
        for a, b in zip(circle, circle[1:]):
            for s, d in pairs:
                if folder_of(s) == a and folder_of(d) == b:
                    sys.stderr.write("  %s includes %s\n" % (rel(s), rel(d)))
        return 1
    if "--check" in argv:
        return 0
    sys.stdout.write(files_dot(pairs) if "--files" in argv else dot)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
