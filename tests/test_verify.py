"""Verification at real sizes: linear in the bytes and constant in memory whatever the chunk
layout, off the event loop, cancellable; and ``FakeProvider(image=...)``."""

from __future__ import annotations

import asyncio
import struct
import threading
import time
import tracemalloc
import zlib
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import pytest

from fallback_chain import ImageRequest
from fallback_chain import verify as verify_mod
from fallback_chain.imaging import InvalidImageError, inspect_image, placeholder_image
from fallback_chain.photo_like import photo_like_png
from fallback_chain.png_inflate import VerificationCancelled
from fallback_chain.providers import FakeProvider
from fallback_chain.results import GeneratedImage
from fallback_chain.verify import verified_image, verified_images


@lru_cache(maxsize=4)
def photo(width: int = 1536, height: int = 1024, idat_size: int | None = 8192) -> bytes:
    return photo_like_png(width, height, idat_size=idat_size)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body))


def test_photo_like_images_compress_like_photographs_and_decode_with_pillow() -> None:
    import io

    from PIL import Image

    data = photo(idat_size=None)
    raw = 1024 * (1 + 1536 * 3)
    assert 1.6 < raw / len(data) < 2.0  # photographs: about 1.8x; flat images: 100x and more
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.size == (1536, 1024)
        assert img.getextrema()[0][1] - img.getextrema()[0][0] > 200  # not flat
    assert photo_like_png(64, 64, seed=1) == photo_like_png(64, 64, seed=1)
    assert photo_like_png(64, 64, seed=1) != photo_like_png(64, 64, seed=2)


class _Counting:
    """A zlib module whose inflaters record the size of every piece of input they are fed."""

    def __init__(self, fed: list[int]) -> None:
        self.error = zlib.error
        self.fed = fed

    def decompressobj(self) -> Any:
        inner = zlib.decompressobj()
        fed = self.fed

        def decompress(data: Any, max_length: int = 0) -> bytes:
            fed.append(len(data))
            return inner.decompress(data, max_length)

        class Proxy(SimpleNamespace):
            @property
            def unconsumed_tail(self) -> bytes:
                return inner.unconsumed_tail

            @property
            def eof(self) -> bool:
                return inner.eof

        return Proxy(decompress=decompress)


@pytest.mark.parametrize("idat_size", [None, 8192, 1 << 20])
def test_the_inflater_is_fed_linear_input_in_pieces_of_at_most_64_kib(
        idat_size: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """One huge IDAT chunk used to be handed whole to the inflater, which copied its unread
    rest on every call: quadratic (benchmarks/results.md: 4096x4096 took over 4x a Pillow decode,
    now 0.5x). Now the input handed
    over, copies included, stays within twice the compressed size, 64 KiB at a time."""
    from fallback_chain import png_inflate

    fed: list[int] = []
    monkeypatch.setattr(png_inflate, "_ZLIB", _Counting(fed))
    data = photo(idat_size=idat_size)
    assert inspect_image(data).width == 1536
    assert max(fed) <= 1 << 16
    assert sum(fed) <= 2 * len(data)


@pytest.mark.parametrize("idat_size", [None, 8192])
def test_peak_memory_does_not_grow_with_the_image(idat_size: int | None) -> None:
    data = photo(idat_size=idat_size)
    tracemalloc.start()
    try:
        inspect_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 400 * 1024, peak  # the image is 2.6 MB compressed, 4.7 MB inflated


def test_many_empty_image_data_chunks_cost_no_memory_per_chunk() -> None:
    """20,000 empty IDAT chunks (240 kB): one view per chunk was kept (about 3.7 MB)."""
    raw = (b"\x00" + b"\x10" * 30) * 10
    ihdr = struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0)
    empty = chunk(b"IDAT", b"")
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + empty * 20_000
            + chunk(b"IDAT", zlib.compress(raw)) + empty * 10 + chunk(b"IEND", b""))
    tracemalloc.start()
    try:
        assert inspect_image(data).width == 10
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 400 * 1024, peak


def test_a_check_told_to_stop_stops() -> None:
    data = photo()
    with pytest.raises(VerificationCancelled):
        inspect_image(data, cancelled=lambda: True)
    polls = []
    inspect_image(data, cancelled=lambda: bool(polls.append(1)))
    assert len(polls) >= len(data) // (1 << 16)  # polled once per 64 KiB of input at least


def test_verified_image_gives_what_from_bytes_gives_on_and_off_the_loop() -> None:
    small = placeholder_image(64, 64)
    large = photo()
    assert verify_mod.is_cheap(small) and not verify_mod.is_cheap(large)

    async def main() -> list[GeneratedImage]:
        return await verified_images([small, large])

    got = asyncio.run(main())
    want = [GeneratedImage.from_bytes(small), GeneratedImage.from_bytes(large)]
    assert [g.model_dump() for g in got] == [w.model_dump() for w in want]
    broken = large[:100_000] + bytes([large[100_000] ^ 1]) + large[100_001:]
    with pytest.raises(InvalidImageError, match="CRC"):
        asyncio.run(verified_image(broken))


def test_cancelling_the_caller_stops_the_check_in_its_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A timed-out attempt must not leave a verification running: the worker thread is told
    to stop, and the caller's cancellation returns at once."""
    started = threading.Event()
    stopped = threading.Event()

    def stuck(data: bytes, *, cancelled: Any) -> Any:
        started.set()
        stop_event: threading.Event = cancelled.__self__  # the flag verify hands us
        assert stop_event.wait(10), "the check was never told to stop"
        stopped.set()
        raise VerificationCancelled("stopped")

    monkeypatch.setattr(verify_mod, "inspect_image", stuck)

    async def main() -> None:
        task = asyncio.create_task(verified_image(photo()))
        assert await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert stopped.wait(10)


def test_the_event_loop_stays_responsive_while_large_photographs_are_verified() -> None:
    """Four 2048x2048 photographs verified at once. The loop thread spends almost no CPU on
    them (on the loop it spent all of it), and the loop, ticking meanwhile, is never blocked
    for as long as one verification on the loop takes. (A shared machine's scheduler alone
    delays the loop by tens of milliseconds now and then, so the lag bound is loose; the CPU
    time of the loop's thread is the exact measure.)"""
    images = [photo(2048, 2048)] * 4
    cpu = time.thread_time()
    started = time.perf_counter()
    inspect_image(images[0])
    one_on_loop = time.perf_counter() - started
    one_on_loop_cpu = time.thread_time() - cpu

    async def main() -> tuple[float, float]:
        cpu = time.thread_time()
        got = await verified_images(images)
        loop_cpu = time.thread_time() - cpu
        assert len(got) == 4
        done = False
        worst = 0.0

        async def tick() -> None:
            nonlocal worst
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0)
                now = time.perf_counter()
                worst = max(worst, now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        await verified_images(images)
        done = True
        await ticker
        return loop_cpu, worst

    loop_cpu, worst = asyncio.run(main())
    assert loop_cpu < one_on_loop_cpu / 10, (loop_cpu, one_on_loop_cpu)
    assert worst < one_on_loop, (worst, one_on_loop)


def test_fake_provider_returns_the_image_it_was_given() -> None:
    data = photo_like_png(320, 200, seed=3)
    fake = FakeProvider("f", image=data)
    assert (fake.image.width, fake.image.height) == (320, 200)

    async def main() -> Any:
        return await fake.generate(ImageRequest(prompt="a cat", n=2), timeout=5)

    reply = asyncio.run(main())
    assert [img.data for img in reply.images] == [data, data]
    assert reply.images[0].mime_type == "image/png" and reply.cost_usd == pytest.approx(0.02)
    with pytest.raises(InvalidImageError):
        FakeProvider("f", image=data[:-30])


def test_on_a_virtual_time_loop_images_are_checked_on_the_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Virtual time jumps whenever the loop would wait: a thread's check would outlast any
    timeout there, so it runs on the loop (taking no virtual time)."""
    from fallback_chain.vtime import run_virtual

    def no_threads() -> Any:
        raise AssertionError("a thread was used on a virtual-time loop")

    monkeypatch.setattr(verify_mod, "_pool", no_threads)

    async def main() -> tuple[GeneratedImage, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(1):
            image = await verified_image(photo())
        return image, loop.time() - started

    image, elapsed = run_virtual(main())
    assert image.width == 1536 and elapsed == 0
