"""Prove a PNG's image data is whole: inflate it (discarding the pixels) and check that it
holds exactly the bytes its header promises.

Chunk CRCs catch bytes damaged in transit; they do not catch a file that was written wrong
(image data that is not a zlib stream, or ends early, or a header that claims a size the data
does not have). Nothing is kept but a byte count. Inflating runs on zlib-ng when it is
installed (a dependency), else on the standard library's zlib.

Cost: linear in the file's bytes, in constant memory, whatever the chunk layout. On the
photo-like images of ``benchmarks/bench_verify.py`` (compressing about 1.8x, as photographs
do) the check takes about half the time of a Pillow full decode of the same bytes, from
1024x1024 to 4096x4096 pixels, in either chunk layout; see ``benchmarks/results.md`` for the
figures of the last run. Large images are checked in a worker thread (``fallback_chain.verify``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

MAX_SIDE = 32_768  # pixels; no image API makes anything near this
MAX_PIXELS = 200_000_000
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))
_STEP = 1 << 16  # inflate in 64 KiB pieces: large pieces cost page faults (3x slower)
_FEED = 1 << 16  # and feed the inflater at most 64 KiB of input at a time


class PngDataError(ValueError):
    """The PNG's header or image data is not what a whole image needs."""


class VerificationCancelled(Exception):
    """The check was asked to stop (its caller gave up) before it reached a verdict."""


def expected_size(width: int, height: int, depth: int, color_type: int,
                  interlace: int) -> int:
    """Bytes of filtered scanlines the image data must inflate to."""
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE
            and width * height <= MAX_PIXELS):
        raise PngDataError(f"PNG claims {width}x{height} pixels, beyond any image API "
                           f"(at most {MAX_SIDE} a side, {MAX_PIXELS:,} in all)")
    if depth not in _DEPTHS.get(color_type, ()):
        raise PngDataError(f"PNG header has colour type {color_type} with bit depth {depth}")
    if interlace not in (0, 1):
        raise PngDataError(f"PNG header has an unknown interlace method {interlace}")
    bits = _CHANNELS[color_type] * depth

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if interlace == 0:
        return rows(width, height)
    return sum(rows((width - x + dx - 1) // dx if width > x else 0,
                    (height - y + dy - 1) // dy if height > y else 0)
               for x, y, dx, dy in _ADAM7)


_ZLIB: ModuleType | None = None


def _zlib() -> ModuleType:
    """zlib-ng's drop-in module if installed, else the standard library's (imported once)."""
    global _ZLIB
    if _ZLIB is None:
        try:
            from zlib_ng import zlib_ng

            _ZLIB = zlib_ng
        except ImportError:
            import zlib

            _ZLIB = zlib
    return _ZLIB


def check_image_data(parts: Iterable[memoryview], expected: int,
                     cancelled: Callable[[], bool] | None = None) -> None:
    """Inflate the concatenated IDAT ``parts``: a complete zlib stream (its Adler-32 checked)
    of exactly ``expected`` bytes, or ``PngDataError``.

    The inflater is fed at most ``_FEED`` bytes of input at a time and asked for at most
    ``_STEP`` bytes of output, whatever the chunk layout: one huge IDAT chunk costs what many
    small ones do (time linear in the bytes, memory bounded by a few of these pieces; feeding a
    whole chunk made the inflater copy its unread rest on every call, quadratic in its size).
    ``cancelled`` is polled between pieces: when it returns true the check stops with
    ``VerificationCancelled`` (a verification running in a thread cannot be interrupted
    otherwise)."""
    zlib = _zlib()
    inflater: Any = zlib.decompressobj()
    try:
        produced = _feed(inflater, parts, expected, cancelled)
        produced = _drain(inflater, produced, expected)
    except zlib.error as exc:
        raise PngDataError(f"PNG image data is not a valid zlib stream ({exc})") from None
    if not inflater.eof:
        raise PngDataError(f"PNG image data ends early ({produced:,} of {expected:,} bytes)")
    if produced != expected:
        raise PngDataError(f"PNG image data holds {produced:,} bytes; its header promises "
                           f"{expected:,}")


def _feed(inflater: Any, parts: Iterable[memoryview], expected: int,
          cancelled: Callable[[], bool] | None) -> int:
    """Feed ``parts`` to ``inflater`` in pieces until its stream ends; the bytes it produced
    (``PngDataError`` as soon as they are more than ``expected``)."""
    decompress = inflater.decompress
    produced = 0
    for part in parts:
        for offset in range(0, len(part), _FEED):
            if inflater.eof:
                break
            data: bytes | memoryview = part[offset:offset + _FEED]
            while data:
                produced += len(decompress(data, _STEP))
                if produced > expected:
                    raise PngDataError(f"PNG image data holds more than the {expected:,} "
                                       "bytes its header promises")
                data = inflater.unconsumed_tail
            if cancelled is not None and cancelled():
                raise VerificationCancelled("image verification was cancelled")
    return produced


def _drain(inflater: Any, produced: int, expected: int) -> int:
    """Take the output ``inflater`` still holds (all input fed), up to just past ``expected``
    bytes in all; the bytes produced in all."""
    while not inflater.eof and produced <= expected:
        chunk = inflater.decompress(b"", _STEP)
        if not chunk:
            break
        produced += len(chunk)
    return produced
