"""Text helpers for the contact sheet: Pillow's bundled default font, truncation and wrapping
measured in pixels. No font is downloaded or looked up on the system."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import ImageDraw

ELLIPSIS = "…"
Font = Any  # ImageFont.FreeTypeFont, or ImageFont.ImageFont when Pillow lacks FreeType


@lru_cache(maxsize=16)
def font(size: int) -> Font:
    """Pillow's default font at ``size`` px (a bundled TrueType face when FreeType is
    available; otherwise the fixed bitmap font, whatever the size)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # old Pillow or no FreeType
        return ImageFont.load_default()


#: Punctuation the bundled font lacks, written with characters it has.
_PLAIN = str.maketrans({"×": "x", "—": "-", "–": "-", "‘": "'", "’": "'", "€": "EUR",
                        "\u00a0": " "})


def plain(text: str) -> str:
    """``text`` in characters the bundled font draws: accents dropped (é → e), a few
    punctuation marks replaced, whitespace collapsed. Other scripts still draw as boxes."""
    text = unicodedata.normalize("NFKD", text.translate(_PLAIN))
    return " ".join("".join(c for c in text if not unicodedata.combining(c)).split())


def width(draw: ImageDraw.ImageDraw, text: str, face: Font) -> float:
    return float(draw.textlength(text, font=face))


def fit(draw: ImageDraw.ImageDraw, text: str, face: Font, max_px: float) -> str:
    """``text`` cut to fit ``max_px`` pixels, ending in an ellipsis when cut."""
    text = plain(text)
    if width(draw, text, face) <= max_px:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if width(draw, text[:mid].rstrip() + ELLIPSIS, face) <= max_px:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + ELLIPSIS


def wrap(draw: ImageDraw.ImageDraw, text: str, face: Font, max_px: float,
         max_lines: int) -> list[str]:
    """Greedy word wrap into at most ``max_lines`` lines of ``max_px``; the last line ends in
    an ellipsis when text is left over. Words longer than a line are cut."""
    words = plain(text).split()
    lines: list[str] = []
    current = ""
    i = 0
    while i < len(words) and len(lines) < max_lines:
        candidate = f"{current} {words[i]}".strip()
        if width(draw, candidate, face) <= max_px:
            current = candidate
            i += 1
        elif current:
            lines.append(current)
            current = ""
        else:  # a single word wider than the line
            lines.append(fit(draw, words[i], face, max_px))
            i += 1
    if current and len(lines) < max_lines:
        lines.append(current)
        current = ""
    rest = " ".join([current, *words[i:]]).strip()
    if rest and lines:  # out of lines: the last one shows as much of the rest as fits
        lines[-1] = fit(draw, f"{lines[-1]} {rest}", face, max_px)
    return lines
