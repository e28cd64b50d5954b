"""What size of image a model can deliver, and refusing an answer that declares more.

The image check (:func:`fallback_chain.imaging.inspect_image`) refuses only sizes beyond any
image API (32,768 px a side, 200 MP). A model's records (its :class:`Capabilities`) know much
better: a model whose largest size is 1536x1024 never makes a 14142x14142 image, and verifying
one (inflating 200 MP of PNG data) costs about a second of CPU. :class:`ImageLimits` derives a
bound from the capabilities, with a margin (``SIZE_MARGIN`` times the largest side, its square
in pixels) for the vendors that deliver more than they list, and refuses from the header alone
(PNG ``IHDR``, JPEG frame header, WebP and GIF headers) before anything is inflated or walked.
An image refused here is the vendor's fault: the adapters report it as a malformed answer and
the chain moves on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .imaging import InvalidImageError

if TYPE_CHECKING:
    from .provider import Capabilities

#: An image may be this many times the model's largest side (and its square in pixels).
SIZE_MARGIN = 2
#: How far into a JPEG its frame header is looked for (metadata segments come first).
_JPEG_HEADER_BYTES = 1 << 20
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
_U16 = struct.Struct(">H").unpack_from
_U32_BE = struct.Struct(">II").unpack_from
_GIF = struct.Struct("<HH").unpack_from
_VP8 = struct.Struct("<HH").unpack_from


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """The largest image a model may deliver: ``max_side`` pixels a side, ``max_pixels`` in
    all (``model`` names it in the refusal)."""

    max_side: int
    max_pixels: int
    model: str = ""

    @classmethod
    def of(cls, capabilities: Capabilities, model: str = "",
           margin: float = SIZE_MARGIN) -> ImageLimits:
        """The limits of a model with ``capabilities``: its largest listed size (fixed sizes),
        else its ``max_side``/``max_pixels``, times ``margin`` a side."""
        if capabilities.sizes:
            side = max(max(w, h) for w, h in capabilities.sizes)
            pixels = max(w * h for w, h in capabilities.sizes)
        else:
            side = max(capabilities.max_side, *capabilities.default_size)
            pixels = max(capabilities.max_pixels, side * side)
        return cls(int(side * margin), int(pixels * margin * margin), model)

    def refusal(self, data: bytes) -> str | None:
        """Why ``data`` is refused (its header declares more than the model makes), or
        ``None`` (within the limits, or no size could be read: the full check decides)."""
        size = declared_size(data)
        if size is None:
            return None
        w, h = size
        if max(w, h) <= self.max_side and w * h <= self.max_pixels:
            return None
        who = f"model {self.model}" if self.model else "this model"
        return (f"the image declares {w}x{h} pixels, more than {who} makes (at most "
                f"{self.max_side} a side, {self.max_pixels:,} pixels in all)")

    def check(self, data: bytes) -> None:
        """``InvalidImageError`` when :meth:`refusal` gives a reason."""
        why = self.refusal(data)
        if why is not None:
            raise InvalidImageError(why)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """Width and height as the header of ``data`` declares them (nothing is decoded), or
    ``None`` when the header cannot be read."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = _U32_BE(data, 16)
        return int(w), int(h)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp_size(data)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = _GIF(data, 6)
        return int(w), int(h)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The frame header's size: marker segments are stepped over (not read) up to it."""
    end = min(len(data), _JPEG_HEADER_BYTES)
    pos = 2
    while pos + 9 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in _SOF:
            h, w = _U16(data, pos + 5)[0], _U16(data, pos + 7)[0]
            return int(w), int(h)
        if marker == 0xDA:
            return None
        pos += 2 + _U16(data, pos + 2)[0]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind, body = data[12:16], 20
    if kind == b"VP8X":
        return (int.from_bytes(data[body + 4:body + 7], "little") + 1,
                int.from_bytes(data[body + 7:body + 10], "little") + 1)
    if kind == b"VP8 " and data[body + 3:body + 6] == b"\x9d\x01\x2a":
        w, h = _VP8(data, body + 6)
        return w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L" and data[body] == 0x2F:
        bits = int.from_bytes(data[body + 1:body + 5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None
