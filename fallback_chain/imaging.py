"""Image bytes: identify and verify them without decoding libraries; draw test images.

``inspect_image`` reads the format and size from the header and checks the structure of the
whole file (PNG chunk CRCs, IEND and image data inflated to exactly the size the header
promises; JPEG segments up to the scan, scan data enough for the declared size, end marker;
WebP chunks filling the RIFF container around a bitstream; GIF blocks up to the trailer with
at least one frame), and refuses sizes beyond any image API, so truncated, corrupt or
header-only bytes are rejected before they can be returned as a success. ``placeholder_image``
draws real, decodable images (used by the fake providers and the emulators).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from .png_inflate import (
    MAX_PIXELS,
    MAX_SIDE,
    PngDataError,
    VerificationCancelled,
    check_image_data,
    expected_size,
)

MIME_BY_FORMAT = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp",
                  "gif": "image/gif"}
FORMAT_BY_MIME = {v: k for k, v in MIME_BY_FORMAT.items()}
EXTENSION_BY_MIME = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp",
                     "image/gif": ".gif"}
UNKNOWN_EXTENSION = ".bin"
#: Every extension an image file of ours can have.
IMAGE_EXTENSIONS = (*EXTENSION_BY_MIME.values(), UNKNOWN_EXTENSION)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_HEAD = struct.Struct(">I4s")  # a PNG chunk's length and type
_CRC = struct.Struct(">I")
_IHDR = struct.Struct(">IIBBBBB")  # width, height, depth, colour, compression, filter, interlace
_crc32 = zlib.crc32
# Compiled once: the parsers below run on every image a provider returns.
_U16_BE = struct.Struct(">H").unpack_from
_U32_LE = struct.Struct("<I").unpack_from
_SOF_HEAD = struct.Struct(">HHB").unpack_from  # JPEG frame: height, width, components
_VP8_SIZE = struct.Struct("<HH").unpack_from
_GIF_SCREEN = struct.Struct("<HHB").unpack_from  # width, height, flags
_GIF_IMAGE = struct.Struct("<HHHHB").unpack_from  # left, top, width, height, flags


class InvalidImageError(ValueError):
    """The bytes are not a complete image in a supported format."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    mime_type: str
    width: int
    height: int
    has_alpha: bool


def inspect_image(data: bytes, *, cancelled: Callable[[], bool] | None = None) -> ImageInfo:
    """Identify ``data`` and check its structure; ``InvalidImageError`` if it is not whole.

    ``cancelled`` (polled now and then while a large PNG is checked) stops the check with
    ``VerificationCancelled`` when it returns true; see ``fallback_chain.verify``, which runs
    this in a worker thread."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImageError(f"expected image bytes, got {type(data).__name__}")
    data = bytes(data)
    if data.startswith(_PNG_SIGNATURE):
        return _inspect_png(data, cancelled)
    if data.startswith(b"\xff\xd8"):
        return _inspect_jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _inspect_webp(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _inspect_gif(data)
    head = data[:16]
    raise InvalidImageError(
        f"not a PNG, JPEG, WebP or GIF image ({len(data)} bytes starting {head!r})"
    )


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of bytes ``inspect_image`` already accepted, read from the header
    alone (a PNG is not checked and inflated again)."""
    if data.startswith(_PNG_SIGNATURE) and len(data) >= 24:
        width, height = struct.unpack_from(">II", data, 16)
        return width, height
    info = inspect_image(data)
    return info.width, info.height


def _inspect_png(data: bytes, cancelled: Callable[[], bool] | None = None) -> ImageInfo:
    # Every chunk's CRC is checked, image data included: a flipped bit anywhere is caught
    # (see _png_chunks). Then the image data is inflated, to prove it is whole (see
    # png_inflate). Only the span of the image data chunks is kept, not one view per chunk:
    # memory stays constant however many chunks there are.
    view = memoryview(data)
    layout = _png_layout(data, view, cancelled)
    width, height, depth, color_type, interlace = layout.header
    if not (width and height and layout.idat_first >= 0 and layout.seen_iend):
        raise InvalidImageError("PNG is incomplete (missing IHDR, IDAT or IEND)")
    try:
        check_image_data(_idat_bodies(view, layout.idat_first, layout.idat_end),
                         expected_size(width, height, depth, color_type, interlace), cancelled)
    except PngDataError as exc:
        raise InvalidImageError(str(exc)) from None
    return ImageInfo("image/png", width, height, color_type in (4, 6) or layout.has_trns)


@dataclass(frozen=True, slots=True)
class _PngLayout:
    """What the chunk walk of a PNG found."""

    header: tuple[int, int, int, int, int]  # width, height, depth, colour type, interlace
    idat_first: int  # where the first image data chunk starts, or -1
    idat_end: int  # where the last one ends
    has_trns: bool
    seen_iend: bool


def _png_layout(data: bytes, view: memoryview,
                cancelled: Callable[[], bool] | None) -> _PngLayout:
    """Walk the chunks up to IEND (each one checked by ``_png_chunk_at``) and note the
    header, the span of the image data chunks, transparency and the end chunk."""
    header = (0, 0, 0, -1, 0)
    idat_first = idat_end = -1
    has_trns = seen_iend = False
    size = len(data)
    pos = len(_PNG_SIGNATURE)
    chunks = 0
    while pos + 12 <= size:
        ctype, start, end = _png_chunk_at(data, view, pos)
        if ctype == b"IHDR":
            header = _png_header(data, start, end)
        elif ctype == b"IDAT":
            if idat_first < 0:
                idat_first = pos
            idat_end = end + 4
        elif ctype == b"tRNS":
            has_trns = True
        elif ctype == b"IEND":
            seen_iend = True
            break
        pos = end + 4
        chunks += 1
        if cancelled is not None and not chunks % 4096 and cancelled():
            raise VerificationCancelled("image verification was cancelled")
    return _PngLayout(header, idat_first, idat_end, has_trns, seen_iend)


def _png_chunk_at(data: bytes, view: memoryview, pos: int) -> tuple[bytes, int, int]:
    """The type, body start and body end of the chunk at ``pos``, which must fit in ``data``
    with its CRC right. The CRC runs over a memoryview of the body (no copies), continuing
    from the CRC of the chunk type (crc32(type + body) == crc32(body, crc32(type)))."""
    length, ctype = _CHUNK_HEAD.unpack_from(data, pos)
    start = pos + 8
    end = start + length
    if end + 4 > len(data):
        raise InvalidImageError(f"PNG truncated inside a {ctype!r} chunk")
    (crc,) = _CRC.unpack_from(data, end)
    if _crc32(view[start:end], _crc32(ctype)) != crc:
        raise InvalidImageError(f"PNG chunk {ctype!r} has a bad CRC")
    return ctype, start, end


def _png_header(data: bytes, start: int, end: int) -> tuple[int, int, int, int, int]:
    """Width, height, bit depth, colour type and interlace method of the IHDR body."""
    if end - start != 13:
        raise InvalidImageError(f"PNG header chunk has {end - start} bytes, not 13")
    width, height, depth, color_type, _, _, interlace = _IHDR.unpack_from(data, start)
    return width, height, depth, color_type, interlace


def _idat_bodies(view: memoryview, pos: int, stop: int) -> Iterator[memoryview]:
    """The bodies of the IDAT chunks between ``pos`` and ``stop`` (chunks already checked)."""
    while pos < stop:
        length, ctype = _CHUNK_HEAD.unpack_from(view, pos)
        if ctype == b"IDAT":
            yield view[pos + 8:pos + 8 + length]
        pos += 12 + length


def _check_dimensions(kind: str, width: int, height: int) -> None:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE
            and width * height <= MAX_PIXELS):
        raise InvalidImageError(f"{kind} claims {width}x{height} pixels, beyond any image API "
                                f"(at most {MAX_SIDE} a side, {MAX_PIXELS:,} in all)")


_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF))


def _inspect_jpeg(data: bytes) -> ImageInfo:
    # Walk the marker segments up to the first scan: a frame header (SOF) must come before it,
    # with a size any image API can make, and the scan data up to the end-of-image marker must
    # be at least what that many pixels need (see _jpeg_scan): a header alone is not an image.
    body = data.rstrip(b"\x00")
    if not body.endswith(b"\xff\xd9"):
        raise InvalidImageError("JPEG is truncated (no end-of-image marker)")
    return _jpeg_walk(data, len(body) - 2)


def _jpeg_walk(data: bytes, end: int) -> ImageInfo:
    """Walk the marker segments before ``end`` (each within it) up to the first scan; fill
    bytes and the markers that have no segment are stepped over."""
    frame: tuple[int, int, int] | None = None  # width, height, MCUs
    pos = 2
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise InvalidImageError("JPEG marker stream is corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (seg_len,) = _U16_BE(data, pos + 2)
        if seg_len < 2 or pos + 2 + seg_len > end:
            raise InvalidImageError("JPEG segment runs past the end of the file")
        if marker in _SOF_MARKERS and frame is None:
            frame = _jpeg_frame(data, pos, seg_len)
        elif marker == 0xDA:  # start of scan
            return _jpeg_scan(frame, end - (pos + 2 + seg_len))
        pos += 2 + seg_len
    if frame is None:
        raise InvalidImageError("JPEG has no frame header")
    raise InvalidImageError("JPEG has no image data (no start-of-scan marker)")


def _jpeg_frame(data: bytes, pos: int, seg_len: int) -> tuple[int, int, int]:
    """Width, height and number of MCUs of the frame header (SOF) segment at ``pos``."""
    if seg_len < 8:
        raise InvalidImageError("JPEG frame header is too short")
    height, width, ncomp = _SOF_HEAD(data, pos + 5)
    if not (width and height):
        raise InvalidImageError("JPEG frame header declares no size")
    _check_dimensions("JPEG", width, height)
    if ncomp < 1 or seg_len < 8 + 3 * ncomp:
        raise InvalidImageError("JPEG frame header has no components")
    factors = data[pos + 11:pos + 11 + 3 * ncomp:3]
    hmax = max(f >> 4 for f in factors) or 1
    vmax = max(f & 0x0F for f in factors) or 1
    return width, height, -(-width // (8 * hmax)) * -(-height // (8 * vmax))


def _jpeg_scan(frame: tuple[int, int, int] | None, scan: int) -> ImageInfo:
    """The image, given its frame and ``scan`` bytes of scan data: every block codes at least
    one bit for its DC coefficient, so a frame of N MCUs needs N/8 bytes."""
    if frame is None:
        raise InvalidImageError("JPEG scan comes before any frame header")
    width, height, mcus = frame
    if scan < mcus / 8:
        raise InvalidImageError(
            f"JPEG holds {scan:,} bytes of scan data; {width}x{height} pixels need at "
            f"least {-(-mcus // 8):,}")
    return ImageInfo("image/jpeg", width, height, False)


def _inspect_webp(data: bytes) -> ImageInfo:
    # The RIFF container is walked chunk by chunk: the chunks must fill it exactly, and an
    # image bitstream (VP8, VP8L, or the frames of an animation) must be there and start as
    # its format requires: a header alone is not an image.
    (riff_size,) = _U32_LE(data, 4)
    if riff_size + 8 > len(data):
        raise InvalidImageError("WebP is truncated")
    end = riff_size + 8
    info: tuple[int, int, bool] | None = None  # width, height, alpha
    bitstream = False
    pos = 12
    while pos + 8 <= end:  # the chunks, each within the container
        kind = data[pos:pos + 4]
        (size,) = _U32_LE(data, pos + 4)
        body = pos + 8
        if body + size > end:
            raise InvalidImageError(f"WebP chunk {kind!r} runs past the end of the file")
        header, has_data = _webp_chunk(data, kind, body, size)
        if info is None:
            info = header
        bitstream = bitstream or has_data
        pos = body + size + (size & 1)
    if info is None:
        raise InvalidImageError("WebP has no image header")
    if not bitstream:
        raise InvalidImageError("WebP has no image data")
    width, height, alpha = info
    _check_dimensions("WebP", width, height)
    return ImageInfo("image/webp", width, height, alpha)


_WEBP_FIRST_BODY = 20  # the first chunk's body: after "RIFF", size, "WEBP", its kind and size


def _webp_chunk(data: bytes, kind: bytes, body: int,
                size: int) -> tuple[tuple[int, int, bool] | None, bool]:
    """The image header (width, height, alpha) a WebP chunk declares, if any, and whether it
    carries image data."""
    if kind == b"ANMF":  # first: an animation has many
        return None, size > 24
    first = body == _WEBP_FIRST_BODY
    if kind == b"VP8X" and first and size >= 10:
        w = int.from_bytes(data[body + 4:body + 7], "little") + 1
        h = int.from_bytes(data[body + 7:body + 10], "little") + 1
        return (w, h, bool(data[body] & 0x10)), False
    if kind == b"VP8 ":
        if size < 10 or data[body + 3:body + 6] != b"\x9d\x01\x2a":
            raise InvalidImageError("WebP lossy bitstream has no frame header")
        w, h = _VP8_SIZE(data, body + 6)
        return (w & 0x3FFF, h & 0x3FFF, False), size > 10
    if kind == b"VP8L":
        if size < 5 or data[body] != 0x2F:
            raise InvalidImageError("WebP lossless bitstream has no header")
        bits = int.from_bytes(data[body + 1:body + 5], "little")
        return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1,
                bool((bits >> 28) & 1)), size > 5
    if first:
        raise InvalidImageError("WebP has an unknown first chunk")
    return None, False


def _inspect_gif(data: bytes) -> ImageInfo:
    # Header, screen descriptor and colour table, then blocks up to the trailer: at least one
    # image (descriptor, LZW code size, data sub-blocks), every size within any image API's.
    w, h, pos = _gif_screen(data)
    size = len(data)
    images = 0
    while pos < size:
        kind = data[pos]
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then sub-blocks
            pos, _ = _gif_sub_blocks(data, pos + 2)
        elif kind == 0x2C:  # image descriptor
            pos = _gif_image(data, pos)
            images += 1
        else:
            raise InvalidImageError(f"GIF has an unknown block 0x{kind:02x}")
    if not images:
        raise InvalidImageError("GIF has no image")
    return ImageInfo("image/gif", w, h, False)


def _gif_colour_table(flags: int) -> int:
    """Bytes of the colour table a screen or image descriptor's ``flags`` announce."""
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _gif_screen(data: bytes) -> tuple[int, int, int]:
    """Width and height of the logical screen, and where the first block starts."""
    if not data.endswith(b";"):
        raise InvalidImageError("GIF is truncated (no trailer)")
    if len(data) < 14:
        raise InvalidImageError("GIF is too short for its header")
    w, h, flags = _GIF_SCREEN(data, 6)
    _check_dimensions("GIF", w, h)
    return w, h, 13 + _gif_colour_table(flags)


def _gif_image(data: bytes, pos: int) -> int:
    """Check the image (descriptor, colour table, LZW code size, data) at ``pos``; where the
    next block starts."""
    if pos + 10 > len(data):
        raise InvalidImageError("GIF is truncated inside an image descriptor")
    x, y, iw, ih, iflags = _GIF_IMAGE(data, pos + 1)
    if not (iw and ih):
        raise InvalidImageError(f"GIF frame at {x},{y} has no pixels ({iw}x{ih})")
    _check_dimensions("GIF frame", iw, ih)
    pos += 10 + _gif_colour_table(iflags)
    pos, total = _gif_sub_blocks(data, pos + 1)  # after the LZW minimum code size
    if not total:
        raise InvalidImageError("GIF frame has no image data")
    return pos


def _gif_sub_blocks(data: bytes, pos: int) -> tuple[int, int]:
    """Where the sub-blocks starting at ``pos`` end (after their terminator), and the bytes
    they hold."""
    size = len(data)
    total = 0
    while True:
        if pos >= size:
            raise InvalidImageError("GIF is truncated inside a block")
        n = data[pos]
        pos += 1 + n
        if n == 0:
            return pos, total
        total += n


# ----------------------------------------------------------------------------------- drawing


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@lru_cache(maxsize=128)
def _placeholder_png(width: int, height: int, seed: int, alpha: bool) -> bytes:
    rnd = hashlib.blake2b(seed.to_bytes(8, "little", signed=False), digest_size=16).digest()
    c1, c2, c3 = rnd[0:3], rnd[3:6], rnd[6:9]
    stripe = 8 + rnd[9] % 56
    channels = 4 if alpha else 3
    # Two distinct rows alternate in bands; each row is a horizontal blend of c1 -> c2 with
    # vertical stripes of c3, so the image is cheap to draw and compress yet varies by seed.
    row_a = bytearray()
    row_b = bytearray()
    for x in range(width):
        t = x / max(1, width - 1)
        base = bytes(int(c1[i] * (1 - t) + c2[i] * t) for i in range(3))
        on_stripe = (x // stripe) % 2 == 0
        pixel_a = c3 if on_stripe else base
        pixel_b = base
        if alpha:
            row_a += pixel_a + b"\xff"
            row_b += pixel_b + (b"\x80" if on_stripe else b"\xff")
        else:
            row_a += pixel_a
            row_b += pixel_b
    line_a = b"\x00" + bytes(row_a)
    line_b = b"\x00" + bytes(row_b)
    band = max(1, stripe // 2)
    raw = b"".join(line_a if (y // band) % 2 else line_b for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if channels == 4 else 2, 0, 0, 0)
    return (_PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(raw, 1)) + _png_chunk(b"IEND", b""))


def seed_for(text: str) -> int:
    """A stable 64-bit seed derived from text (e.g. a prompt)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def placeholder_image(width: int, height: int, *, seed: int = 0, fmt: str = "png",
                      alpha: bool = False) -> bytes:
    """A real image of ``width`` x ``height`` whose pixels depend on ``seed``.

    PNG is drawn here with zlib alone; JPEG and WebP are converted with Pillow (imported lazily).
    """
    if not (1 <= width <= 16384 and 1 <= height <= 16384):
        raise ValueError(f"placeholder size {width}x{height} is out of range")
    png = _placeholder_png(width, height, seed, alpha and fmt != "jpeg")
    if fmt == "png":
        return png
    return _convert(png, fmt)


@lru_cache(maxsize=64)
def _convert(png: bytes, fmt: str) -> bytes:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        out = io.BytesIO()
        if fmt == "jpeg":
            img.convert("RGB").save(out, format="JPEG", quality=85)
        elif fmt == "webp":
            img.save(out, format="WEBP", quality=80)
        elif fmt == "gif":
            img.convert("P").save(out, format="GIF")
        else:
            raise ValueError(f"unsupported image format {fmt!r}")
        return out.getvalue()
