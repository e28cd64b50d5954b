"""A lean virtual-time event loop for simulations.

:class:`fallback_chain.vtime.VirtualTimeLoop` keeps a real selector so that real sockets still
work; it polls it (a system call) on every iteration and keeps asyncio's timer heap, whose
entries compare through a Python ``__lt__``. A simulation does no I/O at all, so this loop has
no selector: time jumps straight to the next timer whenever nothing is ready, and the timer heap
holds ``(when, sequence, handle)`` tuples that compare in C. Timers due at the same instant run
in the order they were scheduled, so a run is reproducible.

Everything asyncio offers on top of futures and timers works unchanged (``asyncio.sleep``,
``asyncio.timeout``, ``wait_for``, ``wait``, ``gather``, events, cancellation), so the real
router runs on it as it does in production. Sockets, subprocesses and threads that report back
with ``call_soon_threadsafe`` are not supported: when nothing is ready and no timer is
scheduled the loop raises :class:`SimulationDeadlock` instead of blocking forever.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import operator
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any, TypeVar

T = TypeVar("T")

#: Rebuild the heap once this many cancelled timers are in it and they are the majority.
_COMPACT_AT = 512
#: The last item of a heap entry that holds an asyncio ``TimerHandle`` (see ``wake_at``).
_HANDLE = object()


class SimulationDeadlock(RuntimeError):
    """Nothing is ready to run and no timer is scheduled: the simulation can never finish."""


class SimLoop(asyncio.BaseEventLoop):
    """An event loop whose ``time()`` is virtual and jumps to the next timer; no I/O."""

    virtual_time = True  # fallback_chain.verify checks images on the loop, not in threads

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._vtime = [float(start)]
        # ``time()`` is read several times per simulated call; a C-level callable over a
        # one-item list avoids a Python frame per read.
        self.__dict__["time"] = functools.partial(operator.getitem, self._vtime, 0)
        self._timers: list[tuple[float, int, Any, Any]] = []
        self._sequence = itertools.count()
        self._cancelled_timers = 0

    def time(self) -> float:
        return self._vtime[0]

    def call_at(self, when: float, callback: Callable[..., object],  # type: ignore[override]
                *args: Any, context: Context | None = None) -> asyncio.TimerHandle:
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._timers, (when, next(self._sequence), timer, _HANDLE))
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def wake_at(self, when: float, callback: Callable[[T], object], arg: T) -> None:
        """Call ``callback(arg)`` as soon as the clock reaches ``when``: a timer without a
        ``TimerHandle`` (it cannot be cancelled) that runs as the clock advances, before the
        callbacks that become ready at that instant. The simulated providers wait with it
        (resolving a future) and arrivals start with it; it saves a handle and a pass of the
        loop per wait."""
        heapq.heappush(self._timers, (when, next(self._sequence), callback, arg))

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        if handle._scheduled:  # type: ignore[attr-defined]
            self._cancelled_timers += 1

    def _write_to_self(self) -> None:
        """Nothing blocks, so there is nothing to wake."""

    def _process_events(self, event_list: Any) -> None:
        """No selector, no events."""

    def _compact(self) -> None:
        keep = []
        for entry in self._timers:
            if entry[3] is _HANDLE and entry[2]._cancelled:
                entry[2]._scheduled = False
            else:
                keep.append(entry)
        heapq.heapify(keep)
        self._timers = keep
        self._cancelled_timers = 0

    def _run_once(self) -> None:
        if (self._cancelled_timers > _COMPACT_AT
                and 2 * self._cancelled_timers > len(self._timers)):
            self._compact()
        timers = self._timers
        ready: Any = self._ready  # type: ignore[attr-defined]
        pop = heapq.heappop
        if not ready and not self._stopping:  # type: ignore[attr-defined]
            while timers and timers[0][3] is _HANDLE and timers[0][2]._cancelled:
                pop(timers)[2]._scheduled = False
                self._cancelled_timers -= 1
            if not timers:
                raise SimulationDeadlock(
                    "nothing is ready and no timer is scheduled (a simulation cannot wait for "
                    "sockets or threads)")
            when = timers[0][0]
            if when > self._vtime[0]:
                self._vtime[0] = when
        now = self._vtime[0]
        while timers and timers[0][0] <= now:
            _, _, handle, arg = pop(timers)
            if arg is _HANDLE:
                handle._scheduled = False
                if handle._cancelled:
                    self._cancelled_timers -= 1
                else:
                    ready.append(handle)
            else:
                handle(arg)
        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()


class SimClock:
    """The router's clock on a :class:`SimLoop`: ``now()`` is the loop's virtual time and
    ``wall()`` is ``epoch`` plus it. Bound to one loop, so reading it needs no lookup of the
    running loop (the router reads the clock several times per attempt)."""

    __slots__ = ("_epoch", "now")

    def __init__(self, loop: SimLoop, epoch: float = 0.0) -> None:
        self._epoch = epoch
        self.now: Callable[[], float] = loop.time

    def wall(self) -> float:
        return self._epoch + self.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def run_simulation(coro: Coroutine[Any, Any, T], *, start: float = 0.0,
                   loop: SimLoop | None = None) -> T:
    """Run ``coro`` to completion on ``loop`` (default: a fresh :class:`SimLoop` whose clock
    starts at ``start`` seconds), then close the loop."""
    loop = loop if loop is not None else SimLoop(start)
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
