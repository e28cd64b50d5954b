"""A circuit breaker per provider, for asyncio, on pybreaker's state storage.

pybreaker's own ``call_async`` needs Tornado and its state objects read the real wall clock, so
the state machine here is ours while the state itself (``state``, failure ``counter``,
``opened_at``) lives in a ``pybreaker.CircuitBreakerStorage``. The default is
``CircuitMemoryStorage``; a shared storage lets several workers see one breaker.

Each call asks :meth:`CircuitBreaker.admit` first and reports back with :meth:`record`:

* closed: every call passes; ``fail_max`` consecutive failures open the breaker.
* open: calls are rejected until ``reset_timeout_s`` has passed, then the breaker turns
  half-open.
* half-open: exactly one call (the probe) passes; every other call is rejected while it is out.
  A healthy probe closes the breaker, a failed one opens it again, an inconclusive one (say a
  429) frees the slot for the next probe.

Checks and transitions run without awaiting in between, so they are atomic on one event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class Admission(IntEnum):
    REJECT = 0
    PASS = 1
    PROBE = 2


class CircuitBreaker:
    def __init__(self, name: str, *, fail_max: int = 5, reset_timeout_s: float = 60.0,
                 clock: Clock = SYSTEM_CLOCK, storage: Any = None,
                 on_change: Callable[[str, str, str], None] | None = None) -> None:
        import pybreaker  # lazily: pybreaker probes for redis and tornado on import

        self.name = name
        self.fail_max = fail_max
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._storage = storage or pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._on_change = on_change
        self._probe_out = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (an open breaker past its timeout reads open
        until the next call turns it half-open)."""
        return str(self._storage.state)

    @property
    def fail_counter(self) -> int:
        return int(self._storage.counter)

    def _set(self, new: str) -> None:
        old = self._storage.state
        if new == OPEN:
            self._storage.opened_at = datetime.fromtimestamp(self._clock.wall(), UTC)
        if new != HALF_OPEN:
            self._storage.reset_counter()
        self._storage.state = new
        if old != new and self._on_change is not None:
            self._on_change(self.name, old, new)

    def admit(self) -> Admission:
        state = self._storage.state
        if state == CLOSED:
            return Admission.PASS
        if state == OPEN:
            opened = self._storage.opened_at
            if opened is not None and (
                    self._clock.wall() < opened.timestamp() + self.reset_timeout_s):
                return Admission.REJECT
            self._set(HALF_OPEN)
        if self._probe_out:
            return Admission.REJECT
        self._probe_out = True
        return Admission.PROBE

    def seconds_until_probe(self) -> float:
        """How long until an open breaker lets a probe through (0 if not open)."""
        if self._storage.state != OPEN or self._storage.opened_at is None:
            return 0.0
        return max(0.0, self._storage.opened_at.timestamp() + self.reset_timeout_s
                   - self._clock.wall())

    def record(self, admission: Admission, healthy: bool | None) -> None:
        """Report a finished call: ``True`` healthy, ``False`` a failure, ``None`` neither."""
        if admission is Admission.PROBE:
            self._probe_out = False
        if admission is Admission.REJECT or healthy is None:
            return
        state = self._storage.state
        if healthy:
            if state == CLOSED:
                if self._storage.counter:
                    self._storage.reset_counter()
            elif admission is Admission.PROBE or state == HALF_OPEN:
                self._set(CLOSED)
            return
        if state == CLOSED:
            self._storage.increment_counter()
            if self._storage.counter >= self.fail_max:
                self._set(OPEN)
        elif state == HALF_OPEN and admission is Admission.PROBE:
            self._set(OPEN)

    def reset(self) -> None:
        """Close the breaker by hand."""
        self._probe_out = False
        self._set(CLOSED)
