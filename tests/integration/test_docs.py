"""The documentation's promises about the tree itself: every relative link
of the README and docs/ leads to a file (and to a heading, for a link with
an #anchor into a Markdown page), and the consumer's folders include each
other in no circle (docs/ARCHITECTURE.md; scripts/include-graph.py, the
reader behind `make graph`, needs no graphviz for this)."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def pages():
    docs = os.path.join(ROOT, "docs")
    return ["README.md"] + sorted(
        os.path.join("docs", f) for f in os.listdir(docs) if f.endswith(".md"))


def slug(heading):
    """A heading's anchor, as GitHub makes it."""
    h = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return h.replace(" ", "-")


def anchors(path):
    out, fenced = set(), False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                fenced = not fenced
            m = re.match(r"^#+\s+(.*)", line)
            if m and not fenced:
                out.add(slug(m.group(1)))
    return out


def links(path):
    """The relative link targets of a Markdown page, code blocks left out."""
    out, fenced = [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                fenced = not fenced
            if fenced or line.startswith("    "):
                continue
            for t in LINK.findall(line):
                if not re.match(r"^(https?:|mailto:)", t):
                    out.append(t)
    return out


def broken_links(page):
    src = os.path.join(ROOT, page)
    bad = []
    for t in links(src):
        path, _, frag = t.partition("#")
        target = os.path.normpath(os.path.join(os.path.dirname(src), path)) if path else src
        if not os.path.exists(target):
            bad.append("%s: no such file" % t)
        elif frag and target.endswith(".md") and frag not in anchors(target):
            bad.append("%s: no such heading in %s" % (t, os.path.relpath(target, ROOT)))
    return bad


@pytest.mark.parametrize("page", pages())
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_link_check_finds_a_broken_link(tmp_path):
    """The check above can fail: a missing file and a missing heading."""
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[a](nope.md) [b](#title) [c](#none)\n    [code](skipped.md)\n")
    bad = broken_links(str(page))
    assert bad == ["nope.md: no such file", "#none: no such heading in %s"
                   % os.path.relpath(str(page), ROOT)]


def test_no_circle_between_consumer_folders():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "include-graph.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
