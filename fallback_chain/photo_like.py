"""Photo-like PNG images for tests and benchmarks: as costly to inflate and unfilter as a
photograph, drawn without numpy in a fraction of a second per megapixel.

A photograph's PNG holds small, noisy differences between neighbouring pixels (the filters'
residuals), so it compresses about 1.8x, where a flat test image compresses 100x or more and
inflates far faster. ``photo_like_png`` writes such residuals directly: each scanline takes a
filter (Sub, Up, Average or Paeth, in turn, as an adaptive encoder would choose) and a row of
deterministic noise drawn from a Laplace-like distribution of small signed steps. Decoded, the
pixels are smooth gradients plus noise; the zlib stream holds as much entropy as a photograph's.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _residual_table(spread: float) -> bytes:
    """256 byte values mapping a uniform random byte to a small signed step (mod 256),
    roughly Laplace-distributed with the given spread."""
    steps: list[int] = []
    weight = {d: 2.0 ** (-abs(d) / spread) for d in range(-40, 41)}
    total = sum(weight.values())
    for d, w in sorted(weight.items()):
        steps += [d % 256] * round(256 * w / total)
    while len(steps) < 256:
        steps.append(0)
    return bytes(steps[:256])


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def photo_like_png(width: int, height: int, *, seed: int = 0, idat_size: int | None = 8192,
                   spread: float = 1.7, alpha: bool = False) -> bytes:
    """An 8-bit RGB (or RGBA) PNG of ``width`` x ``height`` whose image data compresses like a
    photograph's. ``idat_size``: bytes of image data per IDAT chunk (8192 as libpng and Pillow
    write them; ``None`` for a single IDAT chunk as ``zlib.compress``-based writers do).
    Same arguments, same bytes."""
    if not (1 <= width <= 16384 and 1 <= height <= 16384):
        raise ValueError(f"image size {width}x{height} is out of range")
    channels = 4 if alpha else 3
    stride = width * channels
    noise = hashlib.shake_256(struct.pack("<QII", seed, width, height)).digest(stride * height)
    residuals = noise.translate(_residual_table(spread))
    rows = []
    for y in range(height):
        rows.append(bytes((1 + y % 4,)))  # filters 1-4: Sub, Up, Average, Paeth
        rows.append(residuals[y * stride:(y + 1) * stride])
    data = zlib.compress(b"".join(rows), 1)
    step = idat_size or len(data)
    idat = b"".join(_chunk(b"IDAT", data[i:i + step]) for i in range(0, len(data), step))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", ihdr) + idat + _chunk(b"IEND", b"")
