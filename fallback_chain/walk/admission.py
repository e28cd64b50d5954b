"""Admission: the ordered checks a provider passes before each call.

Each check looks at one thing (what the provider can do, its lifecycle, its cooldown, the
per-request budget, its breaker, its capacity, the period budget) and answers in one of three
ways: ``None`` (go on, nothing held), a :class:`Permit` (go on, holding something: a breaker
probe, a capacity slot, a budget reservation) or a :class:`Refusal` (skip the provider). A check
that asks a store does it in two steps, ``ask`` (the store's own awaitable) and ``answer``
(what that means), so the walk awaits the store directly: no coroutine of the check's own per
call (a :class:`StoreCheck` that only writes ``async __call__`` gets both from its base). The
walk runs the checks in order and, when one refuses or raises, releases what the earlier ones
granted, in reverse. A call that is made settles every permit with the provider's health and
what the call cost.

``ADMISSION`` is the order. Each entry builds a slot's check once, when the chain is built, or
returns ``None`` when the check cannot apply to that slot (no budget, no limits), so a request
pays only for the checks that matter. Adding a check (say a tenant quota) is one more entry:
a :class:`StoreCheck` (it asks a store: ``async __call__``, maybe returning a permit) or an
:class:`AtOnceCheck` (it answers from the request and the provider: ``decide``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..outcome import Outcome
from ..provider import Provider
from ..resilience.breaker import Admission

if TYPE_CHECKING:
    from ..cost.budget import Budget, Reservation
    from ..cost.quotas import QuotaHold, Quotas
    from ..resilience.breaker import CircuitBreaker, Verdict
    from ..resilience.capacity import CapacityStore, Limits
    from .run import RequestRun
    from .slot import Router, Slot


class Permit(Protocol):
    """Something a check holds for the call; handed back exactly once, one way or the other.

    Both methods return an awaitable (usually the store's own coroutine, so a permit adds no
    frame of its own on the hot path)."""

    def release(self) -> Awaitable[None]:
        """The call is not made: give back what was taken."""

    def settle(self, healthy: bool | None, cost: float | None) -> Awaitable[None]:
        """The call was made: ``healthy`` says whether the provider was (``None``: the call
        says nothing about its health) and ``cost`` what it cost (``None``: nothing billed,
        reservations go back untouched)."""


@dataclass(slots=True)
class Refusal:
    """A check said no: recorded as a skip with ``outcome`` and ``reason``. ``wait`` says the
    provider may be worth coming back to in this request (cooling down, at capacity)."""

    outcome: Outcome
    reason: str
    wait: bool = False
    estimate: float | None = None


class Check(Protocol):
    #: Run again before a retry of the same provider (what the provider can do does not change
    #: between two tries; its breaker and budget do).
    again: ClassVar[bool]
    #: Answers from the request and the provider alone (``decide``), without asking a store:
    #: the walk calls it without awaiting.
    decides_at_once: ClassVar[bool]

    async def __call__(self, run: RequestRun, slot: Slot, now: float,
                       retrying: bool) -> Permit | Refusal | None: ...

    def decide(self, run: RequestRun, slot: Slot) -> Refusal | None: ...

    def ask(self, run: RequestRun, slot: Slot, now: float, retrying: bool) -> Awaitable[Any]:
        """What to await (a store's coroutine); the walk hands its value to ``answer``."""

    def answer(self, asked: Any, run: RequestRun, slot: Slot, now: float,
               retrying: bool) -> Permit | Refusal | None: ...


class StoreCheck:
    """Base of the checks that ask a store: write ``async __call__``, or, on a hot path,
    ``ask`` (return the store's awaitable) and ``answer`` (turn its value into the answer)."""

    __slots__ = ()
    decides_at_once: ClassVar[bool] = False

    async def __call__(self, run: RequestRun, slot: Slot, now: float,
                       retrying: bool) -> Permit | Refusal | None:
        return self.answer(await self.ask(run, slot, now, retrying), run, slot, now, retrying)

    def decide(self, run: RequestRun, slot: Slot) -> Refusal | None:
        raise NotImplementedError

    def ask(self, run: RequestRun, slot: Slot, now: float, retrying: bool) -> Awaitable[Any]:
        return self(run, slot, now, retrying)  # a check written as ``async __call__``

    def answer(self, asked: Any, run: RequestRun, slot: Slot, now: float,
               retrying: bool) -> Permit | Refusal | None:
        return asked  # type: ignore[no-any-return]


class AtOnceCheck:
    """Base of the checks that answer at once (``decide``); ``__call__`` is the same answer,
    awaitable, for callers that treat every check alike."""

    __slots__ = ()
    decides_at_once: ClassVar[bool] = True

    async def __call__(self, run: RequestRun, slot: Slot, now: float,
                       retrying: bool) -> Refusal | None:
        return self.decide(run, slot)

    def decide(self, run: RequestRun, slot: Slot) -> Refusal | None:
        raise NotImplementedError

    async def ask(self, run: RequestRun, slot: Slot, now: float, retrying: bool) -> None:
        return None

    def answer(self, asked: Any, run: RequestRun, slot: Slot, now: float,
               retrying: bool) -> Refusal | None:
        return self.decide(run, slot)


@dataclass(slots=True)
class Grant:
    """Everything a call was granted: the request's estimate for it and the checks' permits."""

    estimate: float | None
    permits: list[Permit]

    async def release(self) -> None:
        """The call is not made: release every permit, the last granted first (each one even
        if another fails; then the first failure is raised)."""
        failure: BaseException | None = None
        for permit in reversed(self.permits):
            try:
                await permit.release()
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    async def settle(self, healthy: bool | None, cost: float | None) -> None:
        """The call was made: settle every permit, in the order granted (each one even if
        another fails; then the first failure is raised)."""
        failure: BaseException | None = None
        for permit in self.permits:
            try:
                await permit.settle(healthy, cost)
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


async def admit(run: RequestRun, slot: Slot, *, retrying: bool) -> Grant | Refusal:
    """Run ``slot``'s checks in order; a grant, or the first refusal (then nothing is held)."""
    now = run.r.clock.now()
    held: list[Permit] = []
    for check in slot.checks_again if retrying else slot.checks:
        try:
            answer: Permit | Refusal | None
            if check.decides_at_once:  # no store to ask: no coroutine to await
                answer = check.decide(run, slot)
            else:  # the store's own coroutine, awaited here
                answer = check.answer(await check.ask(run, slot, now, retrying), run, slot, now,
                                      retrying)
        except BaseException:
            await Grant(None, held).release()
            raise
        if answer is None:
            continue
        if isinstance(answer, Refusal):
            await Grant(None, held).release()
            return answer
        held.append(answer)
    return Grant(run.estimate(slot), held)


# ----------------------------------------------------------------------------------- checks

class CapabilityCheck(AtOnceCheck):
    """The provider cannot serve this request (size, n, edits, ...): skip it for good."""

    again: ClassVar[bool] = False

    def decide(self, run: RequestRun, slot: Slot) -> Refusal | None:
        reason = slot.provider.unsupported_reason(run.request)
        return None if reason is None else Refusal(Outcome.SKIPPED, reason)

    @classmethod
    def for_slot(cls, slot: Slot, router: Router) -> Check | None:
        return cls()


class LifecycleCheck(AtOnceCheck):
    """The provider's model is retired (``Provider.retired_reason`` says why, from the chain's
    clock): skip it. Only for adapters that answer the question."""

    again: ClassVar[bool] = False

    def decide(self, run: RequestRun, slot: Slot) -> Refusal | None:
        reason = slot.provider.retired_reason(run.r.clock.wall())
        return None if reason is None else Refusal(Outcome.SKIPPED, reason)

    @classmethod
    def for_slot(cls, slot: Slot, router: Router) -> Check | None:
        overridden = type(slot.provider).retired_reason is not Provider.retired_reason
        return cls() if overridden else None


class CooldownCheck(StoreCheck):
    """The provider is cooling down after a failure: skip it, maybe come back to it."""

    again: ClassVar[bool] = True

    def ask(self, run: RequestRun, slot: Slot, now: float, retrying: bool) -> Awaitable[float]:
        return run.r.cooldowns.remaining(slot.key, now)

    def answer(self, cooling: float, run: RequestRun, slot: Slot, now: float,
               retrying: bool) -> Refusal | None:
        if cooling > 0:
            return Refusal(Outcome.COOLING_DOWN, f"cooling down for {cooling:.1f}s more",
                           wait=True)
        return None

    @classmethod
    def for_slot(cls, slot: Slot, router: Router) -> Check | None:
        return cls()


@dataclass(slots=True)
class RequestBudgetCheck(StoreCheck):
    """This call's estimate would take the request over ``Budget.per_request_usd``."""

    budget: Budget
    again: ClassVar[bool] = True

    async def __call__(self, run: RequestRun, slot: Slot, now: float,
                       retrying: bool) -> Refusal | None:
        estimate = run.estimate(slot)
        why = self.budget.refuse_request(run.spent(), estimate)
        return None if why is None else Refusal(Outcome.BUDGET_EXCEEDED, why, estimate=estimate)

    @classmethod
    def for_slot(cls, slot: Slot, router: Router) -> Check | None:
        budget = router.budget
        return None if budget is None or budget.per_request_usd is None else cls(budget)


@dataclass(frozen=True, slots=True)
class BreakerPermit:
    breaker: CircuitBreaker
    admission: Admission

    def release(self) -> Awaitable[None]:
        return self.breaker.record(self.admission, None)

    def settle(self, healthy: bool | None, cost: float | None) -> Awaitable[None]:
        return self.breaker.record(self.admission, healthy)


class BreakerCheck(StoreCheck):
    """The provider's circuit is open: skip it. Otherwise hold the admission (maybe the one
    half-open probe) until the call's health is known."""

    __slots__ = ("_permits",)
    again: ClassVar[bool] = True

    def __init__(self, breaker: CircuitBreaker) -> None:
        # A permit is its breaker and admission only: one per admission, made once, instead
        # of one per call held while the call runs (benchmarks/bench_gc.py).
        self._permits = {a: BreakerPermit(breaker, a) for a in Admission
                         if a is not Admission.REJECT}

    def ask(self, run: RequestRun, slot: Slot, now: float, retrying: bool) -> Awaitable[Verdict]:
        return slot.breaker.ask()

    def answer(self, verdict: Verdict, run: RequestRun, slot: Slot, now: float,
               retrying: bool) -> BreakerPermit | Refusal:
        admission = slot.breaker.took(verdict)
        if admission is Admission.REJECT:
            return Refusal(Outcome.BREAKER_OPEN, f"circuit open; next probe in "
                           f"{slot.breaker.seconds_until_probe():.1f}s")
        return self._permits[admission]

    @classmethod
    def for_slot(cls, slot: Slot, router: Router) -> Check | None:
        return cls(slot.breaker)


@dataclass(slots=True)
class CapacityPermit:
    store: CapacityStore
    key: str
    images: int
    limits: Limits

    def release(self) -> Awaitable[None]:  # not called: the images were not drawn
        return self.store.refund(self.key, self.images, self.limits)

    def settle(self, healthy: bool | None, cost: float | None) -> Awaitable[None]:
        return self.store.release(self.key, self.limits)  # called: the slot is free again


@dataclass(slots=True)
class CapacityCheck(StoreCheck):
    """The provider is at its concurrency or images-per-minute limit: skip it, and on the
    first try of this turn come back when a slot frees."""

    limits: Limits
    again: ClassVar[bool] = True

    async def __call__(self, run: RequestRun, slot: Slot, now: float,
                       retrying: bool) -> CapacityPermit | Refusal:
        images, store = run.request.n, run.r.capacity
        wait = await store.try_acquire(slot.key, images, now, self.limits)
        if wait == 0.0:
            return CapacityPermit(store, slot.key, images, self.limits)
        if not retrying:
            run.ready_at[slot.key] = None if wait is None else now + wait
        return Refusal(Outcome.SKIPPED, _at_capacity(self.limits, wait), wait=not retrying)

    @classmethod
    def for_slot(cls, slot: Slot, router: Router) -> Check | None:
        return cls(slot.limits) if slot.limits.active else None


@dataclass(slots=True)
class BudgetPermit:
    budget: Budget
    reservation: Reservation

    def release(self) -> Awaitable[None]:
        return self.budget.release(self.reservation)

    def settle(self, healthy: bool | None, cost: float | None) -> Awaitable[None]:
        if cost is None:
            return self.budget.release(self.reservation)
        return self.budget.settle(self.reservation, cost)


@dataclass(slots=True)
class PeriodBudgetCheck(StoreCheck):
    """Reserve the call's estimate against the daily and monthly caps, or skip the provider."""

    budget: Budget
    again: ClassVar[bool] = True

    async def __call__(self, run: RequestRun, slot: Slot, now: float,
                       retrying: bool) -> BudgetPermit | Refusal:
        estimate = run.estimate(slot)
        reserved = await self.budget.reserve(estimate)
        if isinstance(reserved, str):
            return Refusal(Outcome.BUDGET_EXCEEDED, reserved, estimate=estimate)
        return BudgetPermit(self.budget, reserved)

    @classmethod
    def for_slot(cls, slot: Slot, router: Router) -> Check | None:
        return None if router.budget is None else cls(router.budget)


@dataclass(slots=True)
class QuotaPermit:
    quotas: Quotas
    hold: QuotaHold

    def release(self) -> Awaitable[None]:
        return self.quotas.release(self.hold)

    def settle(self, healthy: bool | None, cost: float | None) -> Awaitable[None]:
        if cost is None:
            return self.quotas.release(self.hold)
        return self.quotas.settle(self.hold, cost, self.hold.images if healthy else 0)


@dataclass(slots=True)
class QuotaCheck(StoreCheck):
    """Reserve the call's images and estimate against the quotas of the request's user and
    project, or skip the provider (the run remembers why, for ``QuotaExceededError``)."""

    quotas: Quotas
    again: ClassVar[bool] = True

    async def __call__(self, run: RequestRun, slot: Slot, now: float,
                       retrying: bool) -> QuotaPermit | Refusal | None:
        from ..cost.quotas import QuotaRefused

        request, estimate = run.request, run.estimate(slot)
        held = await self.quotas.reserve(request.user, request.project, request.n, estimate)
        if held is None:
            return None
        if isinstance(held, QuotaRefused):
            run.quota_refused = held
            return Refusal(Outcome.BUDGET_EXCEEDED, held.message, estimate=estimate)
        return QuotaPermit(self.quotas, held)

    @classmethod
    def for_slot(cls, slot: Slot, router: Router) -> Check | None:
        quotas = router.quotas
        return None if quotas is None or not quotas.active else cls(quotas)


#: The checks, in the order they run. Each builds a slot's check (or ``None``: not needed).
ADMISSION: tuple[Callable[[Slot, Router], Check | None], ...] = (
    CapabilityCheck.for_slot,
    LifecycleCheck.for_slot,
    CooldownCheck.for_slot,
    RequestBudgetCheck.for_slot,
    BreakerCheck.for_slot,
    CapacityCheck.for_slot,
    PeriodBudgetCheck.for_slot,
    QuotaCheck.for_slot,
)


def checks_for(slot: Slot, router: Router) -> tuple[Check, ...]:
    return tuple(c for c in (build(slot, router) for build in ADMISSION) if c is not None)


def _at_capacity(limits: Limits, wait: float | None) -> str:
    if wait is None:
        return f"at capacity: {limits.max_concurrency} call(s) already in flight"
    return (f"at capacity: {limits.images_per_minute:g} images/min; next slot in "
            f"{wait:.2f}s")
