"""Every relative link and `docs/...` path the pages cite exists in the repository."""

from __future__ import annotations

import re

from doc_examples import ROOT, doc_files

LINK = re.compile(r"\]\((?!https?://|mailto:|#)(?P<target>[^)#\s]+)(?:#[^)]*)?\)")
CITED = re.compile(r"`(?P<path>(?:docs|tests|scripts|examples|benchmarks)/[\w./-]+\.\w+)`")


def test_every_link_and_cited_file_exists():
    broken = []
    for page in doc_files():
        text = page.read_text(encoding="utf-8")
        for m in LINK.finditer(text):
            if not (page.parent / m.group("target")).exists():
                broken.append(f"{page.relative_to(ROOT)}: link {m.group('target')}")
        for m in CITED.finditer(text):
            path = m.group("path")
            if "*" not in path and "<" not in path and not (ROOT / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: cites {path}")
    assert not broken, "\n".join(broken)
