"""The selection file that ``fallback-chain review`` writes and ``finalize --select`` reads:
plain UTF-8 text, one item id per line, in the order shown, ending with a newline. Readers
ignore blank lines and surrounding whitespace. An id cannot contain a line break, so none is
ever quoted."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable


def format_selection(ids: Iterable[str]) -> str:
    lines = []
    for item_id in ids:
        if "\n" in item_id or "\r" in item_id:
            raise ValueError(f"an item id with a line break cannot be selected: {item_id!r}")
        lines.append(item_id)
    return "".join(f"{line}\n" for line in lines)


def write_selection(path: str, ids: Iterable[str]) -> None:
    """Write ``ids`` to ``path`` atomically (a temporary file renamed over it)."""
    text = format_selection(ids)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".selection.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_selection(path: str) -> list[str]:
    """The ids in a selection file (blank lines skipped)."""
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]
