"""A virtual-time asyncio event loop: ``asyncio.sleep``, ``asyncio.timeout`` and ``loop.time``
all run on a clock that jumps straight to the next scheduled timer instead of waiting.

Use it for tests and simulations of code that waits on timers but does no real I/O::

    from fallback_chain.vtime import run_virtual, VirtualClock

    result = run_virtual(chain.agenerate("a cat"))          # chain built with clock=VirtualClock()

Real sockets still work (ready file descriptors are polled first), but time jumps forward
whenever nothing is ready, so a real network peer would appear infinitely slow.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

from .clock import LoopClock

T = TypeVar("T")


class _VirtualSelector(selectors.BaseSelector):
    def __init__(self, loop: VirtualTimeLoop, inner: selectors.BaseSelector) -> None:
        self._loop = loop
        self._inner = inner

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # nothing scheduled: only another thread or real I/O can wake us
            return self._inner.select(None)
        self._loop.advance(timeout)
        return []

    def get_map(self) -> Any:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual and advances only when the loop would block."""

    #: Work handed to threads would look infinitely slow here: ``fallback_chain.verify``
    #: checks images on the loop instead (CPU work takes no virtual time).
    virtual_time = True

    def __init__(self, start: float = 0.0) -> None:
        self._vtime = start
        super().__init__(_VirtualSelector(self, selectors.DefaultSelector()))

    def time(self) -> float:
        return self._vtime

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._vtime += seconds


class VirtualClock(LoopClock):
    """A clock for chains that run on a :class:`VirtualTimeLoop`; ``wall()`` starts at ``epoch``."""

    def __init__(self, epoch: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        super().__init__(epoch)


def run_virtual(coro: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
    """Run ``coro`` to completion on a fresh virtual-time loop and close the loop."""
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
