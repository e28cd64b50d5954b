"""Small Markdown helpers for the generated pages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


def cell(text: object) -> str:
    """A table cell: one line, pipes escaped."""
    return re.sub(r"\s+", " ", str(text)).strip().replace("|", "\\|")


def code(text: object) -> str:
    value = str(text)
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def page(title: str, intro: str, *parts: list[str]) -> str:
    from . import HEADER

    lines = [HEADER, "", f"# {title}", "", intro, ""]
    for part in parts:
        lines += [*part, ""]
    return "\n".join(lines).rstrip() + "\n"


def mention(doc: str | None, name: str) -> str:
    """The first bullet or sentence of ``doc`` that names ````name````, as one line."""
    if not doc:
        return ""
    paragraphs = [p for p in re.split(r"\n\s*\n", doc)
                  if not all(line.startswith("    ") for line in p.splitlines())]
    pieces = []
    for paragraph in paragraphs:
        text = re.sub(r"\s+", " ", paragraph)
        pieces += re.split(r"(?:^|\s)\*\s|(?<=[.!?])\s+(?=[A-Z`*(])", text)
    pattern = re.compile(rf"``{re.escape(name)}``|``{re.escape(name)}=")
    for piece in pieces:
        if pattern.search(piece):
            return piece.strip().replace("``", "`")
    return ""
