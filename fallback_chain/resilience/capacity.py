"""Client-side capacity per provider: an images-per-minute limiter and a cap on calls in
flight, so a chain uses each provider's capacity without burning attempts on 429s.

The limiter is GCRA (the generic cell rate algorithm, a token bucket without a refill task):
each image costs ``(60 + margin) / images_per_minute`` seconds of "theoretical arrival time";
a call may go when that time, advanced by its images, is no more than ``burst`` images ahead
of now. With the default burst of one call, calls are spaced evenly and no rolling minute ever
holds more than the limit, even when the trips to the vendor differ by up to ``margin``
seconds. State sits behind ``CapacityStore`` so several workers can share it (Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Limits:
    images_per_minute: float | None = None
    max_concurrency: int | None = None
    burst_images: int = 1
    margin_s: float = 0.0  # added to the minute: calls are spaced (60 + margin) / rate apart

    @property
    def active(self) -> bool:
        return self.images_per_minute is not None or self.max_concurrency is not None

    @property
    def interval_s(self) -> float | None:
        """Seconds of rate one image costs (``None``: no rate limit)."""
        if self.images_per_minute is None:
            return None
        return (60.0 + self.margin_s) / self.images_per_minute


class CapacityStore(Protocol):
    async def try_acquire(self, key: str, images: int, now: float, limits: Limits) -> float | None:
        """Take capacity for one call of ``images`` images: ``0.0`` when granted (the caller
        then holds an in-flight slot), else the seconds until the rate allows it, or ``None``
        when the call waits for an in-flight slot to free (nothing is held)."""
        ...

    async def release(self, key: str, limits: Limits) -> None:
        """The call ended: free its in-flight slot."""
        ...

    async def refund(self, key: str, images: int, limits: Limits) -> None:
        """A granted call was not made after all: give its rate back and free its slot."""
        ...

    async def wait_for_release(self, timeout: float) -> None:
        """Return when some in-flight slot frees, or after ``timeout`` seconds."""
        ...


class MemoryCapacity:
    """Capacity state of one process (one event loop). The methods do not await, so each is
    atomic on its loop."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._inflight: dict[str, int] = {}
        self._released: asyncio.Event | None = None

    async def try_acquire(self, key: str, images: int, now: float,
                          limits: Limits) -> float | None:
        if limits.max_concurrency is not None and (
                self._inflight.get(key, 0) >= limits.max_concurrency):
            return None
        interval = limits.interval_s
        if interval is not None:
            tat = max(self._tat.get(key, now), now) + images * interval
            allow_at = tat - max(limits.burst_images, images) * interval
            if allow_at > now + 1e-9:
                return allow_at - now
            self._tat[key] = tat
        self._inflight[key] = self._inflight.get(key, 0) + 1
        return 0.0

    async def release(self, key: str, limits: Limits) -> None:
        self._release(key)

    def _release(self, key: str) -> None:
        count = self._inflight.get(key, 0)
        if count > 1:
            self._inflight[key] = count - 1
        else:
            self._inflight.pop(key, None)
        if self._released is not None:
            self._released.set()
            self._released = None

    async def refund(self, key: str, images: int, limits: Limits) -> None:
        interval = limits.interval_s
        if interval is not None and key in self._tat:
            self._tat[key] -= images * interval
        self._release(key)

    async def wait_for_release(self, timeout: float) -> None:
        if self._released is None:
            self._released = asyncio.Event()
        event = self._released
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def in_flight(self, key: str) -> int:
        return self._inflight.get(key, 0)
