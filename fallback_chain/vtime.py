"""The virtual-time event loop of this project, used by tests (:func:`run_virtual`,
:class:`VirtualClock`) and by the simulator (``fallback_chain.simulate``): ``asyncio.sleep``,
``asyncio.timeout``, ``wait_for`` and ``loop.time`` all run on a clock that jumps straight to
the next scheduled timer instead of waiting::

    from fallback_chain.vtime import run_virtual, VirtualClock

    result = run_virtual(chain.agenerate("a cat"))          # chain built with clock=VirtualClock()

The loop has no selector. Time jumps to the next timer whenever nothing is ready, and the timer
heap holds ``(when, sequence, handle)`` tuples that compare in C; timers due at the same instant
run in the order they were scheduled, so a run is reproducible. Everything asyncio offers on top
of futures and timers works unchanged (``sleep``, ``timeout``, ``wait_for``, ``wait``,
``gather``, events, cancellation), so the real router runs on it as it does in production.
Work handed to threads with ``loop.run_in_executor`` or ``asyncio.to_thread`` (the batch
engine's file I/O, for one) takes no virtual time: when nothing else is ready the loop waits for
it in real time before it moves the clock, so it completes at the virtual instant it started and
a run stays reproducible. Sockets, subprocesses and other threads that report back with
``call_soon_threadsafe`` are not supported (in-process transports, such as the emulator's, are):
when nothing is ready, no executor job is running and no timer is scheduled the loop raises
:class:`SimulationDeadlock` instead of blocking forever.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import operator
import threading
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any, TypeVar

from .clock import LoopClock

T = TypeVar("T")

#: Rebuild the heap once this many cancelled timers are in it and they are the majority.
_COMPACT_AT = 512
#: The last item of a heap entry that holds an asyncio ``TimerHandle`` (see ``wake_at``).
_HANDLE = object()


class SimulationDeadlock(RuntimeError):
    """Nothing is ready to run and no timer is scheduled: the simulation can never finish."""


class VirtualTimeLoop(asyncio.BaseEventLoop):
    """An event loop whose ``time()`` is virtual and jumps to the next timer; no I/O."""

    #: Marks a loop on which CPU work takes no virtual time: ``fallback_chain.verify`` checks
    #: images on the loop here, where a trip to a thread buys no parallelism and only costs.
    virtual_time = True

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._vtime = [float(start)]
        # ``time()`` is read several times per simulated call; a C-level callable over a
        # one-item list avoids a Python frame per read.
        self.__dict__["time"] = functools.partial(operator.getitem, self._vtime, 0)
        self._timers: list[tuple[float, int, Any, Any]] = []
        self._sequence = itertools.count()
        self._cancelled_timers = 0
        #: Executor jobs started and not yet reported back; the loop waits for them in real
        #: time, before moving the clock (see ``_wait_for_threads``).
        self._threads_running = 0
        self._thread_reported = threading.Event()

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

    def run_in_executor(self, executor: Any, func: Callable[..., T],  # type: ignore[override]
                        *args: Any) -> asyncio.Future[T]:
        """As asyncio's, and the loop will not move its clock while the job runs: work in a
        thread takes no virtual time, as work on the loop does not."""
        future = super().run_in_executor(executor, func, *args)
        self._threads_running += 1
        future.add_done_callback(self._thread_job_done)
        return future

    def _thread_job_done(self, _future: asyncio.Future[Any]) -> None:
        self._threads_running -= 1

    def _write_to_self(self) -> None:
        """``call_soon_threadsafe`` was called: wake ``_wait_for_threads`` (the callback is
        already in the ready queue)."""
        self._thread_reported.set()

    def _wait_for_threads(self) -> None:
        """Block, in real time, until an executor job reports back or none is left running."""
        ready: Any = self._ready  # type: ignore[attr-defined]
        while not ready and self._threads_running:
            self._thread_reported.wait()
            self._thread_reported.clear()

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

    def _jump_to_next_timer(self) -> None:
        """Nothing is ready: drop cancelled timers at the head and move the clock to the
        next one (a loop with nothing ready and no timer can never progress). Executor jobs
        still running finish first, at the current instant."""
        if self._threads_running:
            self._wait_for_threads()
            if self._ready:  # type: ignore[attr-defined]
                return
        timers = self._timers
        while timers and timers[0][3] is _HANDLE and timers[0][2]._cancelled:
            heapq.heappop(timers)[2]._scheduled = False
            self._cancelled_timers -= 1
        if not timers:
            raise SimulationDeadlock(
                "nothing is ready and no timer is scheduled (a virtual-time loop cannot "
                "wait for sockets or threads)")
        when = timers[0][0]
        if when > self._vtime[0]:
            self._vtime[0] = when

    # The one override of a private asyncio method in this project. asyncio offers no public
    # hook for "when nothing is ready, jump the clock to the next timer"; the alternative that
    # keeps to public API (a SelectorEventLoop with a selector whose select() advances time,
    # timers left in asyncio's own heap) was measured with benchmarks/bench_simulate.py
    # (--quick, CPU figures, same machine and run, 2026-12-06): 17,700 vs 21,500 simulated
    # requests per CPU-second with realistic faults (-18%), 5,800 vs 7,800 hedged (-26%),
    # 5,400 vs 8,100 when every request walks all four providers (-33%), below the
    # simulator's target of 20,000/s. asyncio's heap also breaks ties between timers due at
    # the same instant by heap position, not by scheduling order, which this loop guarantees.
    def _run_once(self) -> None:
        if (self._cancelled_timers > _COMPACT_AT
                and 2 * self._cancelled_timers > len(self._timers)):
            self._compact()
        timers = self._timers
        ready: Any = self._ready  # type: ignore[attr-defined]
        pop = heapq.heappop
        if not ready and not self._stopping:  # type: ignore[attr-defined]
            self._jump_to_next_timer()
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


class VirtualClock(LoopClock):
    """A clock for chains that run on a :class:`VirtualTimeLoop`; ``wall()`` starts at ``epoch``."""

    def __init__(self, epoch: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        super().__init__(epoch)


def run_virtual(coro: Coroutine[Any, Any, T], *, start: float = 0.0,
                loop: VirtualTimeLoop | None = None) -> T:
    """Run ``coro`` to completion on ``loop`` (default: a fresh :class:`VirtualTimeLoop` whose
    clock starts at ``start`` seconds), then close the loop."""
    loop = loop if loop is not None else VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
