"""PNG image data is inflated and must hold exactly what the header promises, for every
colour type, bit depth and interlacing a PNG can have."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from fallback_chain.imaging import InvalidImageError, inspect_image
from fallback_chain.png_inflate import _ADAM7, expected_size


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body))


def png(width: int, height: int, raw: bytes, *, depth: int = 8, color: int = 2,
        interlace: int = 0, idat_split: int = 1) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    data = zlib.compress(raw)
    step = max(1, len(data) // idat_split)
    idats = b"".join(chunk(b"IDAT", data[i:i + step]) for i in range(0, len(data), step))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idats + chunk(b"IEND", b"")


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "I;16"])
def test_pillow_images_of_every_mode_pass(mode: str) -> None:
    buffer = io.BytesIO()
    Image.new(mode, (37, 23)).save(buffer, "PNG")
    info = inspect_image(buffer.getvalue())
    assert (info.width, info.height) == (37, 23)


def test_an_interlaced_png_passes_and_its_size_is_the_sum_of_the_seven_passes() -> None:
    width, height = 13, 9
    raw = b""
    for x, y, dx, dy in _ADAM7:
        w = len(range(x, width, dx))
        h = len(range(y, height, dy))
        if w and h:
            raw += (b"\x00" + b"\x7f" * (3 * w)) * h
    assert expected_size(width, height, 8, 2, 1) == len(raw)
    assert inspect_image(png(width, height, raw, interlace=1)).width == 13
    with pytest.raises(InvalidImageError, match="promises"):
        inspect_image(png(width, height, raw[:-1], interlace=1))


def test_image_data_split_over_many_chunks_is_read_whole() -> None:
    raw = (b"\x00" + b"\x10" * 30) * 10
    assert inspect_image(png(10, 10, raw, idat_split=7)).height == 10


@pytest.mark.parametrize(("raw", "message"), [
    ((b"\x00" + b"\x10" * 30) * 9, "promises"),  # a row short
    ((b"\x00" + b"\x10" * 30) * 11, "more than"),  # a row too many
])
def test_image_data_of_the_wrong_length_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        inspect_image(png(10, 10, raw))


def test_a_cut_zlib_stream_and_garbage_are_refused() -> None:
    raw = (b"\x00" + b"\x10" * 30) * 10
    whole = png(10, 10, raw)
    data = zlib.compress(raw)[:-6]  # no end of stream, no Adler-32
    ihdr = struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0)
    cut = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data)
           + chunk(b"IEND", b""))
    with pytest.raises(InvalidImageError, match="ends early"):
        inspect_image(cut)
    garbage = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x01" * 50)
               + chunk(b"IEND", b""))
    with pytest.raises(InvalidImageError, match="zlib"):
        inspect_image(garbage)
    assert inspect_image(whole).width == 10


@pytest.mark.parametrize(("width", "height", "depth", "color", "message"), [
    (100_000, 100_000, 8, 2, "beyond any image API"),
    (20_000, 20_000, 8, 2, "beyond any image API"),  # each side fits, the total does not
    (10, 10, 16, 3, "bit depth"),  # palette images are at most 8 bits
    (10, 10, 8, 5, "colour type"),
])
def test_impossible_headers_are_refused(width: int, height: int, depth: int, color: int,
                                        message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        inspect_image(png(width, height, b"\x00", depth=depth, color=color))


def test_a_decompression_bomb_stops_at_the_promised_size() -> None:
    """A header promising 10x10 pixels with image data inflating to 50 MB is refused as
    soon as it passes the promised size, without inflating the rest."""
    bomb = png(10, 10, b"\x00" * 50_000_000)
    with pytest.raises(InvalidImageError, match="more than"):
        inspect_image(bomb)


@pytest.mark.parametrize("module", ["zlib_ng", "zlib"])
def test_zlib_ng_and_the_standard_zlib_give_the_same_verdicts(
        module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """zlib-ng is a dependency; the standard library's zlib is the fallback without it."""
    import importlib

    from fallback_chain import png_inflate

    chosen = (importlib.import_module("zlib_ng.zlib_ng") if module == "zlib_ng"
              else importlib.import_module("zlib"))
    monkeypatch.setattr(png_inflate, "_ZLIB", chosen)
    raw = (b"\x00" + b"\x10" * 30) * 10
    assert inspect_image(png(10, 10, raw)).width == 10
    for bad, message in (((b"\x00" + b"\x10" * 30) * 9, "promises"),
                         ((b"\x00" + b"\x10" * 30) * 11, "more than")):
        with pytest.raises(InvalidImageError, match=message):
            inspect_image(png(10, 10, bad))
    ihdr = struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0)
    garbage = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x01" * 50)
               + chunk(b"IEND", b""))
    with pytest.raises(InvalidImageError, match="zlib"):
        inspect_image(garbage)
