"""Decode a delivered image for the comparison's figures and its contact sheet, bounded.

The images were paid for, so nothing in them may stop ``compare`` from writing what it has: an
image Pillow cannot decode (a decompression bomb, a truncated or exotic file, one that raises
an exception nobody expected), or one too large to decode within reason, is reported as
``None``; the sheet then marks its tile "image could not be decoded" and the spread leaves it
out. ``MAX_PIXELS`` bounds the memory one decode may take (about 200 MB in RGBA), well above
the largest image any catalogued model produces (4096x4096 is 16.8 MP).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

#: Images with more pixels than this are not decoded for the sheet or the figures.
MAX_PIXELS = 50_000_000


def decoded(data: bytes, *, draft: tuple[str, int], mode: Callable[[Image.Image], str]
            ) -> Image.Image | None:
    """``data`` decoded and converted to ``mode(image)`` (a JPEG is decoded at a reduced
    scale near ``draft``'s size first), or ``None`` when that is impossible or unreasonable."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    return None
                img.draft(draft[0], (draft[1], draft[1]))
                return img.convert(mode(img))
    except Exception:  # whatever a hostile file makes Pillow raise: undecodable
        return None
