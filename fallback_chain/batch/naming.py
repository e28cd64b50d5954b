"""Output names derived from item ids: safe on every filesystem and object store, and never
outside the output folder.

An id that is already a plain name (letters, digits, ``_``, ``-`` and ``.``, not starting with
``.`` or ``-``, no ``..``, at most 100 characters, not a Windows device name) is used as it
is. Anything else (``../../etc/x``, ``/abs``, ``C:\\x``, NUL bytes, spaces, non-ASCII, very long
ids) becomes a readable stem plus ``~`` and 16 hex digits of the id's SHA-256. A plain name
never contains ``~``, so two different ids never get the same name (up to a hash collision).

Files of one item: ``NAME.png`` (``NAME~1.png``, ``NAME~2.png``... when it has several
images) and the sidecar ``NAME.json``.
"""

from __future__ import annotations

import hashlib
import re

MAX_PLAIN = 100
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_-]+")
_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                      *(f"lpt{i}" for i in range(10))})


def is_plain(item_id: str) -> bool:
    """True when ``item_id`` can be used as a file name as it is."""
    return (0 < len(item_id) <= MAX_PLAIN and _PLAIN.fullmatch(item_id) is not None
            and ".." not in item_id and not item_id.endswith(".")
            and item_id.split(".", 1)[0].lower() not in _DEVICES)


def safe_name(item_id: str) -> str:
    """The base name (no extension, no separator) under which ``item_id``'s files are written."""
    if is_plain(item_id):
        return item_id
    digest = hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    stem = _UNSAFE_RUN.sub("_", item_id).strip("_-")[:48] or "id"
    return f"{stem}~{digest}"


def image_name(name: str, index: int, count: int, extension: str) -> str:
    """File name of image ``index`` (0-based) of ``count``; ``extension`` starts with a dot."""
    return f"{name}{extension}" if count == 1 else f"{name}~{index + 1}{extension}"


def sidecar_name(name: str) -> str:
    return f"{name}.json"


def check_part(part: str) -> str:
    """Refuse a path component that could leave its folder (defence in depth: names made by
    :func:`safe_name` always pass)."""
    if (not part or part in (".", "..") or "/" in part or "\\" in part or "\0" in part
            or ":" in part or len(part) > 255):
        raise ValueError(f"unsafe path component {part[:80]!r}")
    return part
