"""Sizes as the price tables see them: ``"WxH"`` keys, the ``"*"`` wildcard, and resolution
classes (Gemini's ``512``/``1K``/``2K``/``4K``).

Pure functions on plain tuples and strings; no catalogue, no pydantic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

Size = tuple[int, int]
SizeLike = Size | str | None

ANY = "*"
#: The size priced when a request leaves it to the provider (``"auto"``) and the table has it.
DEFAULT_SIZE: Size = (1024, 1024)
_PIXELS = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")
_RATIO = re.compile(r"^\s*(\d{1,3})\s*:\s*(\d{1,3})\s*$")


def parse_size(size: SizeLike) -> Size | None:
    """``(w, h)`` from a tuple, ``"1024x1536"`` or an aspect ratio ``"16:9"`` (taken at about one
    megapixel); ``None`` for ``None``/``"auto"``. Raises ``ValueError`` for anything else."""
    if size is None:
        return None
    if isinstance(size, tuple):
        w, h = size
        if w <= 0 or h <= 0:
            raise ValueError(f"size {size!r} must be positive")
        return int(w), int(h)
    text = size.strip().lower()
    if text in ("", "auto"):
        return None
    if m := _PIXELS.match(text):
        w, h = int(m[1]), int(m[2])
        if w and h:
            return w, h
    elif m := _RATIO.match(text):
        rw, rh = int(m[1]), int(m[2])
        if rw and rh:
            area = DEFAULT_SIZE[0] * DEFAULT_SIZE[1]
            return round(math.sqrt(area * rw / rh)), round(math.sqrt(area * rh / rw))
    raise ValueError(f"{size!r} is not a size: use 'WxH', 'W:H' or 'auto'")


def parse_key(key: str) -> Size | None:
    """The size a ``"WxH"`` table key names (``None`` for ``"*"`` or a class name)."""
    m = _PIXELS.match(key)
    return (int(m[1]), int(m[2])) if m else None


def nearest_key(keys: Iterable[str], size: Size | None) -> str | None:
    """The table key to price ``size`` with.

    An exact ``"WxH"`` match wins; otherwise the listed size closest in aspect ratio, then in
    area (log scale); ``"*"`` when the table has no pixel keys. With no size: ``1024x1024`` if
    listed, else ``"*"``, else the first key.
    """
    keys = list(keys)
    sized = [(k, s) for k in keys if (s := parse_key(k)) is not None]
    if size is not None and sized:
        exact = [k for k, s in sized if s == size]
        if exact:
            return exact[0]
        ratio = size[0] / size[1]
        area = size[0] * size[1]
        return min(sized, key=lambda ks: (
            round(abs(math.log(ks[1][0] / ks[1][1] / ratio)), 6),
            abs(math.log(ks[1][0] * ks[1][1] / area))))[0]
    if ANY in keys:
        return ANY
    if size is None:
        wanted = f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}"
        if wanted in keys:
            return wanted
    return keys[0] if keys else None


def class_for(size: Size, classes: Mapping[str, int]) -> str:
    """The resolution class (``{"1K": 1024, ...}``, nominal side in pixels) whose square area is
    nearest (log scale) to the area of ``size``: ``1376x768`` is ``1K``, ``2048x2048`` is ``2K``."""
    area = size[0] * size[1]
    return min(classes, key=lambda c: abs(math.log(classes[c] ** 2 / area)))


def clamp_class(wanted: str, available: Iterable[str], classes: Mapping[str, int]) -> str:
    """``wanted`` if ``available``, else the smallest available class above it, else the largest
    available class below it (a model without 4K prices a 4K request at its largest size)."""
    avail = sorted((c for c in available if c in classes), key=lambda c: classes[c])
    if not avail or wanted in avail:
        return wanted
    side = classes.get(wanted, 0)
    above = [c for c in avail if classes[c] >= side]
    return above[0] if above else avail[-1]
