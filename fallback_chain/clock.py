"""Injected time. The router reads time only through a ``Clock`` and waits only through it.

``SystemClock`` is real time. For tests and simulations, :mod:`fallback_chain.vtime` runs the
same code on an event loop whose time is virtual: nothing really sleeps, timeouts still fire in
order, and a simulated day takes seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (for latencies, deadlines, cooldowns)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (for timestamps)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time; ``now`` agrees with the event loop's own clock."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class LoopClock:
    """Time as the running event loop sees it (virtual on a virtual-time loop)."""

    __slots__ = ("_epoch",)

    def __init__(self, epoch: float = 0.0) -> None:
        self._epoch = epoch

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def wall(self) -> float:
        return self._epoch + asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()


class FastForwardClock:
    """Real time for I/O, but the chain's own waits (backoff, cooldowns, capacity) take no
    time: each ``sleep`` moves this clock forward instead. For tests against real servers
    (an emulator on loopback) that must not wait out a Retry-After. ``epoch`` (seconds since
    the epoch) starts the wall clock at that date instead of today's, for tests of models
    that the catalogue retires after it."""

    __slots__ = ("_shift", "skipped")

    def __init__(self, epoch: float | None = None) -> None:
        self.skipped = 0.0
        self._shift = 0.0 if epoch is None else epoch - time.time()

    def now(self) -> float:
        return time.monotonic() + self.skipped

    def wall(self) -> float:
        return time.time() + self._shift + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)
        await asyncio.sleep(0)
