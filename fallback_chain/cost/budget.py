"""``Budget``: spending caps per request, per UTC day and per UTC month, checked before every
attempt and booked after it. The router calls it; it knows nothing about providers.

How the router uses it, per attempt (the store checks and books each reservation atomically:
the memory store under a lock, the Redis store in one Lua script)::

    estimate = provider.estimate_cost(request)                  # USD or None
    if (why := budget.refuse_request(spent_in_request, estimate)) is not None:
        skip the provider with Outcome.BUDGET_EXCEEDED and message ``why``
    reservation = await budget.reserve(estimate)
    if isinstance(reservation, str):
        skip the provider with Outcome.BUDGET_EXCEEDED and message ``reservation``
    try:
        reply = await provider.generate(...)
    except asyncio.CancelledError:
        await budget.release(reservation)                       # nothing was billed
        raise
    cost, source = settle_cost(outcome, estimate, reported)
    await budget.settle(reservation, cost)                      # books the cost, fires alerts

and once, when the chain is built: ``bound = budget.bind(clock=..., store=..., emit=events.emit,
chain=name)``. The chain uses that bound copy; the caller's ``Budget`` is left as it was, so one
``Budget`` may be given to several chains, each with its own clock and event bus.

Semantics:

* Periods are the calendar day and month in UTC of ``clock.wall()``. A reservation books into
  the periods current when it was made, even if it settles after midnight, so a cap is never
  exceeded through a period change.
* ``reserve`` succeeds when, for every cap, spent + reserved + estimate <= cap and the period is
  not already used up. An unknown estimate (``None``) reserves 0: it is allowed while there is
  room, and the actual cost is booked at ``settle``.
* Caps hold exactly (amounts are kept in integer nano-USD) as long as the actual cost of an
  attempt is no more than its estimate; a larger actual cost is still booked (the money is
  spent) and blocks further reservations until the period ends.
* Alerts (``BudgetAlert``, at 80 % and 100 % by default) fire once per cap and per period,
  when booked spend reaches the threshold: once per process, and once across all workers
  when they share a store (the first to cross claims the alert in the store). The alert's
  ``budget`` is ``"<name>/day"`` or ``"<name>/month"``.
* Spend is tracked per day and month even without a cap, so ``spent()`` always answers.
* ``reserve``, ``settle``, ``release`` and the queries are coroutines (the store may be remote).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ..clock import SYSTEM_CLOCK, Clock
from ..events import BudgetAlert
from .binding import ChainBound, Shared
from .budget_store import BudgetStore, MemoryBudgetStore, from_nano, to_nano

log = logging.getLogger("fallback_chain")

Period = Literal["day", "month"]
_UNCAPPED = 2**62  # a "cap" for periods that are tracked but not limited
_LABEL = {"day": "daily", "month": "monthly"}


@dataclass(slots=True)
class Reservation:
    """Money set aside for one attempt; settle or release it exactly once."""

    budget: str
    amount: int  # nano-USD
    known: bool  # False when the estimate was None
    keys: tuple[str, ...]
    caps: tuple[tuple[Period, int | None], ...]  # per key: period and cap (nano-USD) or None
    done: bool = field(default=False)

    @property
    def amount_usd(self) -> float:
        return from_nano(self.amount)




class Budget(ChainBound):
    """Caps on spend. See the module docstring for how the router calls it.

    ``per_request_usd`` limits the sum of one request's attempts; ``daily_usd`` and
    ``monthly_usd`` limit all requests sharing this budget (and its ``store``). ``None`` means
    no cap. ``alert_thresholds`` are fractions of each period cap.

    A chain never changes the budget it is given: it binds a copy (``chain.budget``, see
    :meth:`bind`). Without a ``store``, the budget keeps its totals in the process, and every
    chain given it books there (the caps hold across them; this budget's queries see them);
    a chain whose state is shared (Redis) books into its shared store instead, where the caps
    hold across workers: read that spend with ``await chain.budget.spent()``. The bound copy
    also reads the chain's clock (unless this budget has a clock of its own), so on a chain
    with an injected clock, query ``chain.budget``.
    """

    def __init__(self, *, per_request_usd: float | None = None, daily_usd: float | None = None,
                 monthly_usd: float | None = None, name: str = "default",
                 clock: Clock = SYSTEM_CLOCK, store: BudgetStore | None = None,
                 alert_thresholds: tuple[float, ...] = (0.8, 1.0)) -> None:
        for what, cap in (("per_request_usd", per_request_usd), ("daily_usd", daily_usd),
                          ("monthly_usd", monthly_usd)):
            if cap is not None and not (cap >= 0 and math.isfinite(cap)):
                raise ValueError(f"{what} must be a non-negative number (got {cap!r})")
        if any(not (t > 0 and math.isfinite(t)) for t in alert_thresholds):
            raise ValueError(f"alert thresholds must be positive (got {alert_thresholds!r})")
        if not name or ":" in name:
            raise ValueError(f"name must be non-empty and without ':' (got {name!r})")
        self.name = name
        self.per_request_usd = per_request_usd
        self.daily_usd = daily_usd
        self.monthly_usd = monthly_usd
        self._clock = clock
        self._own_store: BudgetStore = store if store is not None else MemoryBudgetStore()
        self.store_given = store is not None  # else in the process, or a chain's shared store
        self.alert_thresholds = tuple(sorted(set(alert_thresholds)))
        self._caps: dict[Period, int | None] = {
            "day": None if daily_usd is None else to_nano(daily_usd),
            "month": None if monthly_usd is None else to_nano(monthly_usd)}
        self._emit: Callable[[BudgetAlert], None] | None = None
        self._chain = ""
        self._shared = Shared()

    # ---------------------------------------------------------------------------- wiring

    def set_emitter(self, emit: Callable[[BudgetAlert], None], *, chain: str = "") -> None:
        """Where alerts go (a chain passes its event bus's ``emit`` and its name to the copy it
        binds, see :meth:`bind`)."""
        self._emit = emit
        self._chain = chain

    def bind(self, *, clock: Clock, store: BudgetStore, emit: Callable[[BudgetAlert], None],
             chain: str = "") -> Budget:
        """A copy of this budget for one chain: its alerts go to ``emit`` (named ``chain``), it
        reads ``clock`` unless this budget was given a clock of its own, and without a store
        of its own it books into ``store`` when that is shared (Redis), else into this
        budget's own in-process totals. This budget is not changed (settings, emitter, clock
        and store)."""
        bound = self._bound_copy(clock, store)
        bound.set_emitter(emit, chain=chain)
        return bound

    # ---------------------------------------------------------------------------- checks

    def refuse_request(self, spent_in_request: float, estimate: float | None) -> str | None:
        """Reason string if this attempt would take the request over ``per_request_usd``, else
        ``None``. With an unknown estimate, refuses only once the request has used the cap."""
        cap = self.per_request_usd
        if cap is None:
            return None
        spent, cap_n = to_nano(spent_in_request), to_nano(cap)
        if estimate is None:
            if spent < cap_n:
                return None
            return (f"per-request budget {self.name!r} is used up: ${spent_in_request:.4f} "
                    f"spent of ${cap:.4f}")
        if spent + to_nano(estimate) <= cap_n:
            return None
        return (f"per-request budget {self.name!r} would be exceeded: ${spent_in_request:.4f} "
                f"spent + ${estimate:.4f} estimated > ${cap:.4f}")

    async def reserve(self, estimate: float | None) -> Reservation | str:
        """Reserve ``estimate`` against every period cap; a reason string if any cap would be
        overshot (then nothing is reserved)."""
        if estimate is not None and not (estimate >= 0 and math.isfinite(estimate)):
            raise ValueError(f"estimate must be a non-negative number or None (got {estimate!r})")
        amount = 0 if estimate is None else to_nano(estimate)
        periods = self._period_keys()
        caps = [(key, _UNCAPPED if cap is None else cap) for _, key, cap in periods]
        refused = await self.store.reserve_if_fits(caps, amount)
        if refused is not None:
            return await self._refusal(refused, periods, amount, estimate)
        return Reservation(self.name, amount, estimate is not None,
                           tuple(key for _, key, _ in periods),
                           tuple((period, cap) for period, _, cap in periods))

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Release the reservation and book the actual cost; fire alerts (80 %, 100 % by
        default) once per cap per period."""
        if reservation.done:
            raise RuntimeError("this reservation was already settled or released")
        if not (actual_usd >= 0 and math.isfinite(actual_usd)):
            raise ValueError(f"actual_usd must be a non-negative number (got {actual_usd!r})")
        reservation.done = True
        spent = await self.store.settle(reservation.keys, reservation.amount,
                                        to_nano(actual_usd))
        await self._check_alerts(reservation, spent)

    async def release(self, reservation: Reservation) -> None:
        """Give the reservation back (cancelled before any cost). A no-op if already done."""
        if reservation.done:
            return
        reservation.done = True
        await self.store.release(reservation.keys, reservation.amount)

    # --------------------------------------------------------------------------- queries

    async def spent(self, period: Period = "day") -> float:
        """USD booked in the current ``period`` (``"day"`` or ``"month"``, UTC)."""
        return from_nano((await self.store.totals(self._key(period)))[0])

    async def reserved(self, period: Period = "day") -> float:
        """USD reserved by attempts in flight in the current ``period``."""
        return from_nano((await self.store.totals(self._key(period)))[1])

    async def remaining(self, period: Period = "day") -> float | None:
        """USD still available in the current ``period`` (``None``: no cap)."""
        cap = self._caps[period]
        if cap is None:
            return None
        spent, reserved = await self.store.totals(self._key(period))
        return from_nano(max(0, cap - spent - reserved))

    def __repr__(self) -> str:
        caps = ", ".join(f"{k}={v}" for k, v in (
            ("per_request_usd", self.per_request_usd), ("daily_usd", self.daily_usd),
            ("monthly_usd", self.monthly_usd)) if v is not None)
        return f"Budget({self.name!r}{', ' if caps else ''}{caps})"

    # --------------------------------------------------------------------------- helpers

    def _period_keys(self) -> list[tuple[Period, str, int | None]]:
        t = datetime.fromtimestamp(self.clock.wall(), UTC)
        return [("day", f"{self.name}:day:{t:%Y-%m-%d}", self._caps["day"]),
                ("month", f"{self.name}:month:{t:%Y-%m}", self._caps["month"])]

    def _key(self, period: Period) -> str:
        if period not in self._caps:
            raise ValueError(f"period must be 'day' or 'month' (got {period!r})")
        return next(key for p, key, _ in self._period_keys() if p == period)

    async def _refusal(self, key: str, periods: list[tuple[Period, str, int | None]], amount: int,
                 estimate: float | None) -> str:
        period, cap = next((p, c) for p, k, c in periods if k == key)
        spent, reserved = await self.store.totals(key)
        need = "an unknown amount" if estimate is None else f"${from_nano(amount):.4f}"
        return (f"{_LABEL[period]} budget {self.name!r} would be exceeded: "
                f"${from_nano(spent):.4f} spent and ${from_nano(reserved):.4f} reserved of "
                f"${from_nano(cap or 0):.2f}; this attempt needs {need}")

    async def _check_alerts(self, reservation: Reservation, spent: list[int]) -> None:
        alerts: list[tuple[str, BudgetAlert]] = []
        shared = self._shared
        with shared.lock:
            for key, (period, cap), total in zip(reservation.keys, reservation.caps, spent,
                                                 strict=True):
                if cap is None or total <= 0:
                    continue
                fired = shared.fired.get(key)
                for t in self.alert_thresholds:
                    if total >= t * cap and (fired is None or t not in fired):
                        if fired is None:
                            fired = shared.fired[key] = set()
                            self._forget_old_periods()
                        fired.add(t)
                        alerts.append((f"{key}:alert:{t:g}", BudgetAlert(
                            self._chain, f"{self.name}/{period}", t, from_nano(total),
                            from_nano(cap))))
        emit = self._emit
        for marker, alert in alerts:
            if not await self.store.claim(marker) or emit is None:
                continue  # another worker sharing the store fired it
            try:
                emit(alert)
            except Exception:
                log.exception("budget %s: emitting %s failed", self.name, alert)

    def _forget_old_periods(self) -> None:
        fired = self._shared.fired
        while len(fired) > 8:  # a few periods back is plenty for late settlements
            del fired[next(iter(fired))]
