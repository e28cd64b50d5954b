"""Allocations and garbage collection per request, with 1,000 and 10,000 requests in flight
(issue 28, item 6).

The provider is ``FakeProvider`` returning one prebuilt, verified 64x64 PNG (``image=``), so
what is counted is the router's. Its "latency" is a gate: every request waits in the provider
until all ``N`` are in flight, then all are let go. The figures are counts, not times, so the
load of a shared machine does not move them:

* ``live objects/request``, ``live KiB/request``: what one request in flight holds while it
  waits in its provider: objects tracked by the garbage collector (``gc.get_objects()``) and
  Python allocations (``tracemalloc``), above the level before the burst, divided by ``N``.
  The collector's full passes walk every live tracked object, so this is what a collection
  costs per request in flight.
* ``cyclic garbage/request``: objects that only the collector can free (they sit in
  reference cycles), found by ``gc.collect()`` after the burst ran with the collector off.
* ``gen0/gen1/gen2 per 1k requests``: collections the burst triggered (``gc.get_stats()``),
  with the collector on and its default thresholds. Generation 0 runs every 700 tracked
  objects allocated and not yet freed; generations 1 and 2 are the expensive ones.
* ``GC ms/1k requests`` and ``CPU µs/request``: times (the collector's own, through
  ``gc.callbacks``), for scale only: they move with the machine's load.

Two cases: one attempt (success) and two attempts (a 429 from the first provider, without
cooldown, then success on the second).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from fallback_chain import Chain, Policy
from fallback_chain.imaging import placeholder_image
from fallback_chain.providers import FakeProvider

PROMPT = "a lighthouse at dusk"
_IMAGE = placeholder_image(64, 64)


class GateClock:
    """Real time, except that ``sleep`` waits for the gate to open: every request parks in
    its provider until all of them are in flight."""

    def __init__(self) -> None:
        self.waiting = 0
        self._open: asyncio.Event | None = None
        self._all_in: asyncio.Event | None = None
        self.expected = 0

    def arm(self, expected: int) -> None:
        self.waiting, self.expected = 0, expected
        self._open, self._all_in = asyncio.Event(), asyncio.Event()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        assert self._open is not None and self._all_in is not None
        self.waiting += 1
        if self.waiting >= self.expected:
            self._all_in.set()
        await self._open.wait()

    async def all_in(self) -> None:
        assert self._all_in is not None
        await self._all_in.wait()

    def release(self) -> None:
        assert self._open is not None
        self._open.set()


def _chain(attempts: int, gate: GateClock) -> Chain:
    ok = FakeProvider("b", latency_s=1.0, clock=gate, image=_IMAGE, keep_requests=False)
    if attempts == 1:
        return Chain([ok], log=False)
    failing = FakeProvider("a", script=[], rates={"rate_limited": 1.0}, keep_requests=False)
    return Chain([failing, ok], policy=Policy(cooldowns_s={"rate_limited": 0}), log=False)


class _GcTimer:
    def __init__(self) -> None:
        self.total = 0.0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._t0


async def _burst(chain: Chain, gate: GateClock, n: int,
                 at_peak: Callable[[], None] | None = None) -> None:
    gate.arm(n)
    tasks = [asyncio.ensure_future(chain.agenerate(PROMPT)) for _ in range(n)]
    await gate.all_in()
    if at_peak is not None:
        at_peak()
    gate.release()
    for result in await asyncio.gather(*tasks):
        assert result.images
    del tasks, result
    # The loop's handle that resumed this task holds the gathered results until this step
    # ends: end it, so that they are not counted as live in what is measured next.
    await asyncio.sleep(0)


def _measure(attempts: int, n: int) -> dict[str, Any]:
    gate = GateClock()
    chain = _chain(attempts, gate)
    row: dict[str, Any] = {"case": f"{attempts} attempt(s)/request", "in flight": n}

    async def main() -> None:
        await _burst(chain, gate, min(n, 500))  # warm-up: caches, lazy imports, pools

        # 1. Collector on: collections, live tracked objects and blocks at the peak.
        gc.collect()
        objects0, blocks0 = len(gc.get_objects()), sys.getallocatedblocks()
        peak: dict[str, int] = {}

        def live() -> None:
            peak["objects"] = len(gc.get_objects()) - objects0
            peak["blocks"] = sys.getallocatedblocks() - blocks0

        timer = _GcTimer()
        stats0 = gc.get_stats()
        gc.callbacks.append(timer)
        cpu0 = time.process_time()
        try:
            await _burst(chain, gate, n, live)
        finally:
            cpu = time.process_time() - cpu0
            gc.callbacks.remove(timer)
        stats1 = gc.get_stats()
        row["live objects/request"] = peak["objects"] / n
        row["live blocks/request"] = peak["blocks"] / n
        for gen in range(3):
            done = stats1[gen]["collections"] - stats0[gen]["collections"]
            row[f"gen{gen} per 1k requests"] = done * 1000 / n

        # 2. Collector off: what only the collector can free.
        gc.collect()
        gc.disable()
        try:
            await _burst(chain, gate, n)
            row["cyclic garbage/request"] = gc.collect() / n
        finally:
            gc.enable()

        # 3. Python allocations held at the peak (tracemalloc slows everything: on its own).
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            held: dict[str, int] = {}

            def traced() -> None:
                held["bytes"] = tracemalloc.get_traced_memory()[0] - base

            await _burst(chain, gate, n, traced)
        finally:
            tracemalloc.stop()
        row["live KiB/request"] = held["bytes"] / 1024 / n
        row["GC ms/1k requests"] = timer.total * 1e6 / n
        row["CPU µs/request"] = cpu * 1e6 / n

    asyncio.run(main())
    gc.collect()
    return row


def run(quick: bool = False) -> dict[str, Any]:
    sizes = (100, 500) if quick else (1_000, 10_000)
    rows = [_measure(attempts, n) for attempts in (1, 2) for n in sizes]
    return {
        "title": "Allocations and garbage collection per request (FakeProvider, N in flight)",
        "rows": rows,
        "notes": ("Counts (objects, blocks, KiB, collections) do not depend on the machine's "
                  "load; the two time columns do and are for scale only. Live figures are "
                  "taken while all N requests wait in their provider. Cyclic garbage is what "
                  "the collector alone frees (0 means reference counting frees every "
                  "request). The 2-attempt case fails once with a 429 on the first provider "
                  "(no cooldown), then succeeds on the second."),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
