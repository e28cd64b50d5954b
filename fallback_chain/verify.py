"""Verify delivered images off the event loop: in a small pool of threads, cancellable.

Checking a large PNG means inflating all its image data (see ``png_inflate``; timings per
size in ``benchmarks/results.md``, which ``python -m benchmarks verify`` writes). Done on the
event loop, that time stalls every other request, timeout and heartbeat. The inflater (zlib-ng or
the standard library's zlib) and the CRC release the GIL, so threads run it in parallel with
the loop and with each other.

* ``verified_image(data)`` checks ``data`` and wraps it in a ``GeneratedImage``; it raises
  ``InvalidImageError`` exactly as ``GeneratedImage.from_bytes`` does. Small images (and the
  formats checked from their header) are verified on the loop: handing them to a thread would
  cost more than the check. So are all images on a virtual-time loop (one with a true
  ``virtual_time`` attribute, as ``fallback_chain.vtime`` and the simulator make): there the
  loop waits for a thread's work in real time anyway, so a thread only adds the trip.
* ``limits`` (an :class:`~fallback_chain.image_limits.ImageLimits`, from the capabilities of
  the model that answered) refuses an image whose header declares more than that model makes,
  on the loop and before anything is inflated: a vendor's 14142x14142 PNG costs no CPU.
* At most ``MAX_WORKERS`` checks run at a time, in one process-wide pool; the others wait
  their turn in order.
* Cancelling the awaiting task (an attempt timing out, a sibling failing) returns at once; a
  check already running in a thread is told to stop and does so within one 64 KiB piece of
  image data. Since adapters await this inside their ``generate``, verification counts
  within the attempt's timeout.
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .imaging import inspect_image
from .results import GeneratedImage, trusted

if TYPE_CHECKING:
    from .image_limits import ImageLimits

#: Checks running at once (threads); the machine's cores, at most 4.
MAX_WORKERS = max(1, min(4, os.cpu_count() or 1))
#: PNGs of at most this many pixels are verified on the loop (well under a millisecond).
INLINE_PIXELS = 256 * 256
_INLINE_BYTES = 256 * 1024  # other formats: files of at most this size

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        with _POOL_LOCK:
            if _POOL is None:
                _POOL = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="fallback-chain-verify")
    return _POOL


def is_cheap(data: bytes) -> bool:
    """Whether checking ``data`` costs too little to be worth a thread: a JPEG, WebP or GIF of
    at most 256 KiB (those are checked from their structure, not decoded), or a PNG whose
    header declares at most ``INLINE_PIXELS`` pixels (a larger claim is checked in a thread,
    whatever the file's size: a small file can inflate to a large image)."""
    if not data.startswith(_PNG_SIGNATURE):
        return len(data) <= _INLINE_BYTES  # a walk over the file's blocks, in Python
    if len(data) < 24:
        return True  # refused at once
    width, height = struct.unpack_from(">II", data, 16)
    return bool(width * height <= INLINE_PIXELS)


def _build(data: bytes, stop: threading.Event | None = None) -> GeneratedImage:
    info = inspect_image(data, cancelled=None if stop is None else stop.is_set)
    return trusted(GeneratedImage, data=data, mime_type=info.mime_type, width=info.width,
                   height=info.height)


async def verified_image(data: bytes, limits: ImageLimits | None = None) -> GeneratedImage:
    """``GeneratedImage.from_bytes(data)``, with the check in a worker thread when it is not
    cheap; ``InvalidImageError`` if ``data`` is not a whole image, or declares a size beyond
    ``limits``."""
    data = bytes(data)
    if limits is not None:
        limits.check(data)
    loop = asyncio.get_running_loop()
    if is_cheap(data) or getattr(loop, "virtual_time", False):
        return _build(data)
    stop = threading.Event()
    future = loop.run_in_executor(_pool(), _build, data, stop)
    try:
        return await future
    finally:
        stop.set()  # a no-op once the check is done; stops it when we were cancelled


async def verified_images(items: Iterable[bytes],
                          limits: ImageLimits | None = None) -> list[GeneratedImage]:
    """Verify several images at once (in order); the first failure cancels the others and is
    raised. Every header is checked against ``limits`` before any image is verified."""
    items = list(items)
    if limits is not None:
        for data in items:
            limits.check(bytes(data))
    tasks = [asyncio.ensure_future(verified_image(data)) for data in items]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
