"""A circuit breaker per provider, for asyncio, with its state behind a ``BreakerStore``.

pybreaker's own ``call_async`` needs Tornado and its state objects read the real wall clock, so
the state machine is ours. The state itself (``state``, failure ``counter``, ``opened_at``) sits
in a store: :class:`MemoryBreakers` keeps it in pybreaker's ``CircuitMemoryStorage`` (one per
provider; the default), and the Redis store (``fallback_chain.state.redis``) keeps the same
fields in a Redis hash and runs each transition as one Lua script, so several workers share one
breaker.

Each call asks :meth:`CircuitBreaker.admit` first and reports back with :meth:`record`:

* closed: every call passes; ``fail_max`` consecutive failures open the breaker.
* open: calls are rejected until ``reset_timeout_s`` has passed, then the breaker turns
  half-open.
* half-open: exactly one call (the probe) passes; every other call is rejected while it is out.
  A healthy probe closes the breaker, a failed one opens it again, an inconclusive one (say a
  429) frees the slot for the next probe. A shared store grants the probe as a lease that
  expires, so a worker that dies mid-probe does not keep the breaker half-open for ever.

A store runs each check-and-transition atomically: the memory store without awaiting in
between (atomic on one event loop), the Redis store in one script.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Protocol

from ..clock import SYSTEM_CLOCK, Clock

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class Admission(IntEnum):
    REJECT = 0
    PASS = 1
    PROBE = 2


@dataclass(frozen=True, slots=True)
class BreakerRules:
    """What one breaker needs from the policy."""

    fail_max: int = 5
    reset_timeout_s: float = 60.0
    probe_lease_s: float = 300.0  # a shared probe is given back after this long at most


@dataclass(frozen=True, slots=True)
class Verdict:
    """A store's answer to ``admit``: the admission, the state it saw or set, the seconds
    until an open breaker lets a probe through, and the transition it made (if any)."""

    admission: Admission
    state: str
    probe_in_s: float = 0.0
    changed_from: str | None = None


_PASS_CLOSED = Verdict(Admission.PASS, CLOSED)  # the common answer, made once


class BreakerStore(Protocol):
    async def admit(self, key: str, rules: BreakerRules) -> Verdict:
        """May a call go to ``key``? Turns an open breaker past its timeout half-open and
        grants the single probe."""
        ...

    async def record(self, key: str, admission: Admission, healthy: bool | None,
                     rules: BreakerRules) -> tuple[str, str] | None:
        """Report a finished (or abandoned: ``healthy=None``) call; returns ``(old, new)`` when
        the state changed."""
        ...

    async def reset(self, key: str) -> tuple[str, str] | None:
        """Close the breaker by hand."""
        ...

    def peek(self, key: str) -> str:
        """The state as this process last saw it (no I/O)."""
        ...


class MemoryBreakers:
    """Breakers of one process: pybreaker's ``CircuitMemoryStorage`` per key, on ``clock``."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._storages: dict[str, Any] = {}
        self._probe_out: set[str] = set()

    def storage(self, key: str) -> Any:
        """The pybreaker storage holding ``key``'s state (created closed on first use)."""
        storage = self._storages.get(key)
        if storage is None:
            import pybreaker  # lazily: pybreaker probes for redis and tornado on import

            storage = self._storages[key] = pybreaker.CircuitMemoryStorage(
                pybreaker.STATE_CLOSED)
        return storage

    def _set(self, storage: Any, new: str) -> tuple[str, str] | None:
        old = str(storage.state)
        if new == OPEN:
            storage.opened_at = datetime.fromtimestamp(self._clock.wall(), UTC)
        if new != HALF_OPEN:
            storage.reset_counter()
        storage.state = new
        return (old, new) if old != new else None

    async def admit(self, key: str, rules: BreakerRules) -> Verdict:
        storage = self.storage(key)
        state = storage.state
        if state == CLOSED:
            return _PASS_CLOSED
        changed: str | None = None
        if state == OPEN:
            opened = storage.opened_at
            if opened is not None:
                wait = opened.timestamp() + rules.reset_timeout_s - self._clock.wall()
                if wait > 0:
                    return Verdict(Admission.REJECT, OPEN, wait)
            self._set(storage, HALF_OPEN)
            changed = OPEN
        if key in self._probe_out:
            return Verdict(Admission.REJECT, HALF_OPEN, 0.0, changed)
        self._probe_out.add(key)
        return Verdict(Admission.PROBE, HALF_OPEN, 0.0, changed)

    async def record(self, key: str, admission: Admission, healthy: bool | None,
                     rules: BreakerRules) -> tuple[str, str] | None:
        if admission is Admission.PROBE:
            self._probe_out.discard(key)
        if admission is Admission.REJECT or healthy is None:
            return None
        storage = self.storage(key)
        state = storage.state
        if healthy:
            if state == CLOSED:
                if storage.counter:
                    storage.reset_counter()
                return None
            if admission is Admission.PROBE or state == HALF_OPEN:
                return self._set(storage, CLOSED)
            return None
        if state == CLOSED:
            storage.increment_counter()
            if storage.counter >= rules.fail_max:
                return self._set(storage, OPEN)
        elif state == HALF_OPEN and admission is Admission.PROBE:
            return self._set(storage, OPEN)
        return None

    async def reset(self, key: str) -> tuple[str, str] | None:
        self._probe_out.discard(key)
        return self._set(self.storage(key), CLOSED)

    def peek(self, key: str) -> str:
        storage = self._storages.get(key)
        return CLOSED if storage is None else str(storage.state)


class CircuitBreaker:
    """One provider's breaker: the rules, and the store that holds its state."""

    def __init__(self, name: str, *, fail_max: int = 5, reset_timeout_s: float = 60.0,
                 clock: Clock = SYSTEM_CLOCK, store: BreakerStore | None = None,
                 probe_lease_s: float = 300.0,
                 on_change: Callable[[str, str, str], None] | None = None) -> None:
        self.name = name
        self.rules = BreakerRules(fail_max, reset_timeout_s, probe_lease_s)
        self._store: BreakerStore = store if store is not None else MemoryBreakers(clock)
        self._on_change = on_change
        self._state = store.peek(name) if store is not None else CLOSED
        self._probe_in = 0.0

    @property
    def fail_max(self) -> int:
        return self.rules.fail_max

    @property
    def reset_timeout_s(self) -> float:
        return self.rules.reset_timeout_s

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` as this process last saw it (an open breaker
        past its timeout reads open until the next call turns it half-open)."""
        return self._state

    def seconds_until_probe(self) -> float:
        """How long until an open breaker lets a probe through, as of the last check."""
        return self._probe_in if self._state == OPEN else 0.0

    def _changed(self, change: tuple[str, str] | None) -> None:
        if change is not None and self._on_change is not None:
            self._on_change(self.name, *change)

    async def admit(self) -> Admission:
        """May a call go through? (``took(await ask())`` in one step.)"""
        return self.took(await self._store.admit(self.name, self.rules))

    def ask(self) -> Awaitable[Verdict]:
        """The store's answer to "may a call go through?", to await and hand to :meth:`took`
        (the router's admission awaits the store's coroutine directly)."""
        return self._store.admit(self.name, self.rules)

    def took(self, verdict: Verdict) -> Admission:
        """Note the store's ``verdict`` (state, transition) and return its admission."""
        self._state, self._probe_in = verdict.state, verdict.probe_in_s
        if verdict.changed_from is not None:
            self._changed((verdict.changed_from, verdict.state))
        return verdict.admission

    async def record(self, admission: Admission, healthy: bool | None) -> None:
        """Report a finished call: ``True`` healthy, ``False`` a failure, ``None`` neither."""
        if admission is Admission.REJECT or (admission is Admission.PASS and healthy is None):
            return  # nothing to tell the store
        change = await self._store.record(self.name, admission, healthy, self.rules)
        if change is not None:
            self._state = change[1]
            self._changed(change)

    async def reset(self) -> None:
        """Close the breaker by hand."""
        change = await self._store.reset(self.name)
        self._state = CLOSED
        self._changed(change)
