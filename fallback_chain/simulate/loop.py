"""The simulator's clock on the project's virtual-time loop.

The loop itself is :class:`fallback_chain.vtime.VirtualTimeLoop` (also what tests run on);
``SimLoop`` and ``run_simulation`` are its names in the simulator's vocabulary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..vtime import SimulationDeadlock, VirtualTimeLoop
from ..vtime import run_virtual as run_simulation

SimLoop = VirtualTimeLoop

__all__ = ["SimClock", "SimLoop", "SimulationDeadlock", "run_simulation"]


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
