"""Hardening round 2, item 2: images a vendor (or a hostile server) sends that are only a
header, or declare absurd sizes, are refused; JPEG, WebP and GIF are checked beyond their
header. Every real image Pillow writes still passes."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from fallback_chain.imaging import InvalidImageError, inspect_image
from fallback_chain.photo_like import photo_like_png


def pillow(fmt: str, mode: str = "RGB", size: tuple[int, int] = (96, 64), **opts: object
           ) -> bytes:
    png = photo_like_png(*size, seed=7)
    with Image.open(io.BytesIO(png)) as img:
        out = io.BytesIO()
        img.convert(mode).save(out, format=fmt, **opts)
        return out.getvalue()


@pytest.mark.parametrize(("fmt", "mode", "opts"), [
    ("JPEG", "RGB", {}), ("JPEG", "L", {}), ("JPEG", "CMYK", {}),
    ("JPEG", "RGB", {"progressive": True}), ("JPEG", "RGB", {"optimize": True, "quality": 5}),
    ("JPEG", "RGB", {"subsampling": 0}), ("WEBP", "RGB", {}), ("WEBP", "RGBA", {}),
    ("WEBP", "RGB", {"lossless": True}), ("WEBP", "RGBA", {"lossless": True}),
    ("GIF", "P", {}), ("GIF", "L", {}),
])
def test_real_images_pass(fmt: str, mode: str, opts: dict[str, object]) -> None:
    info = inspect_image(pillow(fmt, mode, **opts))
    assert (info.width, info.height) == (96, 64)


def test_flat_images_pass_even_when_they_compress_to_almost_nothing() -> None:
    for fmt in ("JPEG", "WEBP", "GIF"):
        out = io.BytesIO()
        Image.new("RGB" if fmt != "GIF" else "P", (2048, 2048)).save(
            out, format=fmt, **({"optimize": True} if fmt == "JPEG" else {}))
        assert inspect_image(out.getvalue()).width == 2048


def test_animations_pass() -> None:
    frames = [Image.new("RGB", (64, 48), (i * 40, 0, 0)) for i in range(3)]
    for fmt in ("GIF", "WEBP"):
        out = io.BytesIO()
        frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:], duration=50)
        assert inspect_image(out.getvalue()).height == 48


def sof(width: int, height: int) -> bytes:
    body = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xc0" + struct.pack(">H", 2 + len(body)) + body


def test_a_jpeg_that_is_only_a_header_is_refused() -> None:
    """SOI + SOF(65535x65535) + EOI, no scan data: accepted before."""
    with pytest.raises(InvalidImageError, match="beyond any image API"):
        inspect_image(b"\xff\xd8" + sof(65535, 65535) + b"\xff\xd9")
    with pytest.raises(InvalidImageError, match="no start-of-scan"):
        inspect_image(b"\xff\xd8" + sof(1024, 1024) + b"\xff\xd9")


def test_a_jpeg_with_too_little_scan_data_for_its_size_is_refused() -> None:
    real = pillow("JPEG", size=(96, 64))
    at = real.index(b"\xff\xc0")
    (length,) = struct.unpack_from(">H", real, at + 2)
    big = real[:at + 5] + struct.pack(">HH", 8000, 8000) + real[at + 9:]  # 8000x8000, 3 kB
    with pytest.raises(InvalidImageError, match="scan data"):
        inspect_image(big)
    assert length > 8


def test_webp_and_gif_that_are_only_a_header_are_refused() -> None:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4 + (99).to_bytes(3, "little") * 2
    header_only = b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    with pytest.raises(InvalidImageError, match="no image data"):
        inspect_image(header_only)
    lossy = pillow("WEBP")
    cut = lossy[:30]  # RIFF size fixed to the cut: the chunk inside runs past the end
    cut = cut[:4] + struct.pack("<I", len(cut) - 8) + cut[8:]
    with pytest.raises(InvalidImageError, match=r"runs past|no frame header"):
        inspect_image(cut)
    gif_header = b"GIF89a" + struct.pack("<HHBBB", 100, 100, 0, 0, 0) + b";"
    with pytest.raises(InvalidImageError, match="no image"):
        inspect_image(gif_header)
    huge_gif = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0) + b";"
    with pytest.raises(InvalidImageError, match="beyond any image API"):
        inspect_image(huge_gif)
    gif = pillow("GIF", "P")
    with pytest.raises(InvalidImageError):
        inspect_image(gif[:len(gif) // 2] + b";")
