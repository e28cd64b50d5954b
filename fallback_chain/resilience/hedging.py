"""Hedged requests: when the current provider has not answered after a delay, start the next
one too, take the first success and cancel the rest.

This module is the race itself, independent of what a "turn" is: the router hands it the
providers in order and callbacks to run one provider's turn, to get the hedge delay after the
provider that started last, and to admit (and pay for) a hedge under the cost ceiling. A turn
ends in a result (the race is won), a "wait" code (the provider is cooling down or at capacity;
the caller may come back to it) or anything else (that provider is done).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

S = TypeVar("S")  # a provider slot
R = TypeVar("R")  # a winning result

#: The message hedge losers are cancelled with, so their attempt can say why.
LOST_THE_RACE = "lost the hedge race"


class Race(Generic[S, R]):
    def __init__(self, *, run_turn: Callable[[S], Awaitable[R | int]],
                 delay_after: Callable[[S], float | None], admit: Callable[[S], bool],
                 is_result: Callable[[object], bool], wait_code: int, max_hedges: int,
                 before_start: Callable[[], None] = lambda: None) -> None:
        self.run_turn = run_turn
        self.delay_after = delay_after
        self.admit = admit
        self.is_result = is_result
        self.wait_code = wait_code
        self.max_hedges = max_hedges
        self.before_start = before_start

    async def run(self, slots: Sequence[S]) -> tuple[R | None, list[S]]:
        """Walk ``slots`` in order, hedging; returns the winner (or ``None``) and the slots
        that asked to be waited for."""
        queue = list(slots)
        loop = asyncio.get_running_loop()
        running: dict[asyncio.Task[R | int], S] = {}
        started: dict[asyncio.Task[R | int], float] = {}
        waiting: list[S] = []
        hedging_allowed = True
        reason: str | None = LOST_THE_RACE
        try:
            while queue or running:
                if not running:
                    self.before_start()
                    self._start(queue.pop(0), running, started, loop.time())
                timeout = None
                if queue and hedging_allowed and len(running) <= self.max_hedges:
                    timeout = self._until_hedge(running, started, loop.time())
                done, _ = await asyncio.wait(running, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if not done:  # the delay passed with no answer: hedge with the next provider
                    if self.admit(queue[0]):
                        self.before_start()
                        self._start(queue.pop(0), running, started, loop.time())
                    else:
                        hedging_allowed = False
                    continue
                won, winner = self._collect(done, running, started, waiting)
                if won:
                    return winner, waiting
            return None, waiting
        except asyncio.CancelledError:  # the caller gave up: not a race lost by a provider
            reason = None
            raise
        finally:
            for task in running:
                task.cancel(reason)
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def _until_hedge(self, running: dict[asyncio.Task[R | int], S],
                     started: dict[asyncio.Task[R | int], float], now: float) -> float | None:
        """Seconds until the next hedge starts (``None``: the latest provider never hedges),
        counted from when the latest branch started."""
        latest = list(running)[-1]
        delay = self.delay_after(running[latest])
        return None if delay is None else max(0.0, started[latest] + delay - now)

    def _collect(self, done: set[asyncio.Task[R | int]], running: dict[asyncio.Task[R | int], S],
                 started: dict[asyncio.Task[R | int], float], waiting: list[S]
                 ) -> tuple[bool, R | None]:
        """Take the finished branches out; whether one won, and its result."""
        for task in done:
            started.pop(task, None)
            slot = running.pop(task)
            outcome = task.result()  # a stop (ChainError) propagates from here
            if self.is_result(outcome):
                return True, outcome  # type: ignore[return-value]
            if outcome == self.wait_code:
                waiting.append(slot)
        return False, None

    def _start(self, slot: S, running: dict[asyncio.Task[R | int], S],
               started: dict[asyncio.Task[R | int], float], now: float) -> None:
        task = asyncio.ensure_future(self.run_turn(slot))
        running[task] = slot
        started[task] = now
