"""One request's walk down the chain: skip, call, record, then retry, advance or stop.

``Chain`` (in ``chain.py``) owns the long-lived parts (providers, breakers, cooldowns, events);
a ``RequestRun`` is created per request and holds only that request's state, so concurrent
requests never share an attempts list.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .cost import settle_cost
from .errors import (
    BudgetExceededError,
    ChainError,
    ChainExhaustedError,
    ContentPolicyError,
    DeadlineExceededError,
    ProviderError,
)
from .events import AttemptFinished, CooldownStarted, EventBus, QuotaAlert, RequestFinished
from .outcome import Outcome
from .resilience.breaker import Admission, CircuitBreaker
from .resilience.capacity import CapacityStore, Limits, MemoryCapacity
from .resilience.hedging import LOST_THE_RACE, Race
from .results import Attempt, ChainResult, CostSource, trusted
from .secrets import redact

if TYPE_CHECKING:
    from .clock import Clock
    from .cost.budget import Budget, Reservation
    from .policy import Policy
    from .provider import Provider, ProviderReply
    from .request import ImageRequest
    from .resilience.cooldown import CooldownStore

log = logging.getLogger("fallback_chain")


@dataclass(slots=True, eq=False)  # compared by identity
class Slot:
    """One provider in a chain, with its own resolved policy and breaker."""

    provider: Provider
    key: str
    policy: Policy
    breaker: CircuitBreaker
    limits: Limits = field(default_factory=Limits)
    calls: int = 0  # observed calls and outcomes, for cost-aware ordering
    successes: int = 0
    failure_cost_usd: float = 0.0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=256))

    def hedge_delay(self) -> float | None:
        """How long to wait for this provider before hedging (``None``: never hedge)."""
        policy = self.policy
        if policy.hedge_delay_s is None:
            return None
        if policy.hedge_delay == "p95" and len(self.latencies) >= _P95_MIN_SAMPLES:
            ordered = sorted(self.latencies)
            return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return policy.hedge_delay_s


@dataclass(slots=True)
class Router:
    """The long-lived state a request needs (owned by ``Chain``)."""

    name: str
    slots: list[Slot]
    policy: Policy
    clock: Clock
    cooldowns: CooldownStore
    events: EventBus
    rng: random.Random
    budget: Budget | None = None
    order: str = "given"
    capacity: CapacityStore = field(default_factory=MemoryCapacity)
    hedging: bool = field(init=False, default=False)  # any provider hedges

    def __post_init__(self) -> None:
        self.hedging = any(s.policy.hedge_delay_s is not None for s in self.slots)

    def ordered(self, request: ImageRequest) -> list[Slot]:
        """The chain's order, or with ``order="cost"`` the order minimising the expected cost
        per delivered image given each provider's estimate and observed success rate."""
        if self.order != "cost":
            return list(self.slots)
        from .cost.ordering import Candidate, order_by_expected_cost

        by_key = {s.key: s for s in self.slots}
        candidates = [Candidate(
            s.key, s.provider.estimate_cost(request), s.successes, s.calls,
            s.failure_cost_usd / (s.calls - s.successes) if s.calls > s.successes else 0.0)
            for s in self.slots]
        return [by_key[c.name] for c in order_by_expected_cost(candidates)]


class ChainStoppedError(ChainError):
    """The policy said to stop after an outcome other than a content refusal."""


# What to do with a provider after its turn in one pass over the chain.
_DONE, _WAIT = 0, 1
_P95_MIN_SAMPLES = 20


@dataclass(slots=True)
class _Pass:
    """Everything a call was granted before it starts, to hand back if it does not happen."""

    admission: Admission
    estimate: float | None
    reservation: Reservation | None
    holds_capacity: bool


class RequestRun:
    __slots__ = ("attempts", "calls", "deadline", "hedge_spent", "hedged", "r", "ready_at",
                 "request", "request_id", "started", "tries", "waited")

    def __init__(self, router: Router, request: ImageRequest, request_id: str) -> None:
        self.r = router
        self.request = request
        self.request_id = request_id
        self.attempts: list[Attempt] = []
        self.tries: dict[str, int] = {}
        self.ready_at: dict[str, float | None] = {}  # capacity: when a skipped provider frees
        self.calls = 0
        self.waited = 0.0
        self.hedge_spent = 0.0
        self.hedged: set[str] = set()  # providers started as hedges
        self.started = router.clock.now()
        dl = router.policy.deadline_s
        self.deadline = None if dl is None else self.started + dl

    # ----------------------------------------------------------------------------- driver

    async def execute(self) -> ChainResult:
        try:
            result = await self._walk()
        except ChainError as exc:
            exc.request_id = self.request_id
            if not exc.attempts:
                exc.attempts = list(self.attempts)
            self._finish(None, exc)
            raise
        self._finish(result, None)
        return result

    async def _walk(self) -> ChainResult:
        """Pass over the chain; if providers are cooling down or at capacity, wait for the
        earliest and pass again over those. Passes in which some provider was called count
        towards ``max_rounds``; waiting is bounded by the deadline and ``max_wait_s``."""
        pending = self.r.ordered(self.request)
        ordered = list(pending)
        waiting: list[Slot] = []
        rounds = 0
        while True:
            calls_before = self.calls
            result, more = await self._pass(pending)
            if result is not None:
                return result
            waiting.extend(more)
            if self.calls > calls_before:
                rounds += 1
            if not waiting or rounds >= self.r.policy.max_rounds:
                break
            if not await self._wait(waiting):
                break
            now = self.r.clock.now()
            pending = [s for s in ordered if s in waiting and await self._ready_in(s, now) <= 0]
            waiting = [s for s in waiting if s not in pending]
        raise self._exhausted()

    async def _pass(self, slots: list[Slot]) -> tuple[ChainResult | None, list[Slot]]:
        """One pass over ``slots``: in order, or as a hedged race when the policy says so."""
        if not self.r.hedging:
            waiting: list[Slot] = []
            for slot in slots:
                self._check_deadline()
                result = await self._turn(slot)
                if isinstance(result, ChainResult):
                    return result, waiting
                if result == _WAIT:
                    waiting.append(slot)
            return None, waiting
        race: Race[Slot, ChainResult] = Race(
            run_turn=self._turn, delay_after=Slot.hedge_delay, admit=self._admit_hedge,
            is_result=lambda x: isinstance(x, ChainResult), wait_code=_WAIT,
            max_hedges=self.r.policy.max_hedges, before_start=self._check_deadline)
        # Losers are cancelled (and recorded) after the winner or the stop is known, and
        # concurrent branches append as they finish: settle the record once the race is over.
        try:
            winner, late = await race.run(slots)
        except ChainError as exc:
            self.attempts.sort(key=lambda a: a.started_at)
            exc.attempts = list(self.attempts)
            raise
        self.attempts.sort(key=lambda a: a.started_at)
        if winner is not None:
            winner = trusted(ChainResult, **{**winner.__dict__, "cost_usd": self._spent()})
        return winner, late

    def _admit_hedge(self, slot: Slot) -> bool:
        """Whether a hedge on ``slot`` fits ``hedge_max_extra_usd`` (what hedged calls have
        been estimated at so far); the calls it makes are booked when they start."""
        ceiling = self.r.policy.hedge_max_extra_usd
        if ceiling is not None:
            estimate = slot.provider.estimate_cost(self.request) or 0.0
            if self.hedge_spent + estimate > ceiling + 1e-12:
                return False
        self.hedged.add(slot.key)
        return True

    async def _ready_in(self, slot: Slot, now: float) -> float:
        """Seconds until a waiting provider may be tried (0 for "when a slot frees")."""
        cooling = await self.r.cooldowns.remaining(slot.key, now)
        ready = self.ready_at.get(slot.key)
        return max(cooling, ready - now if ready is not None else 0.0)

    async def _wait(self, waiting: list[Slot]) -> bool:
        """Sleep until the earliest waiting provider may be tried (or an in-flight slot frees),
        if the policy and the deadline allow it."""
        policy = self.r.policy
        if not policy.wait_for_cooldown:
            return False
        now = self.r.clock.now()
        ready_in = {s.key: await self._ready_in(s, now) for s in waiting}
        on_release = [s for s in waiting if self.ready_at.get(s.key, 0.0) is None
                      and ready_in[s.key] <= 0]
        timed = [ready_in[s.key] for s in waiting if s not in on_release]
        wait = min(timed) if timed else math.inf
        if on_release:  # wake when a slot frees, or at the latest after the longest wait
            wait = min(wait, policy.max_cooldown_wait_s)
        if wait > policy.max_cooldown_wait_s or self.waited + wait > policy.max_wait_s:
            return False
        if self.deadline is not None and now + wait >= self.deadline:
            if not on_release or self.deadline - now <= 0:
                return False
            wait = self.deadline - now
        if on_release:
            await self.r.capacity.wait_for_release(wait)
        else:
            await self.r.clock.sleep(wait)
        self.waited += self.r.clock.now() - now
        return True

    def _check_deadline(self) -> None:
        if self.deadline is not None and self.r.clock.now() >= self.deadline:
            raise DeadlineExceededError(
                f"deadline of {self.r.policy.deadline_s:g}s passed before any provider "
                "delivered", self.attempts)

    def _exhausted(self) -> ChainError:
        called = [a for a in self.attempts if a.outcome.was_called]
        if not called and any(a.outcome is Outcome.BUDGET_EXCEEDED for a in self.attempts):
            return BudgetExceededError("every provider would exceed the budget", self.attempts)
        if self.deadline is not None and self.r.clock.now() >= self.deadline:
            return DeadlineExceededError(
                f"deadline of {self.r.policy.deadline_s:g}s passed before any provider "
                "delivered", self.attempts)
        return ChainExhaustedError(
            f"no provider delivered ({len(called)} call(s), "
            f"{len(self.attempts) - len(called)} skip(s))", self.attempts)

    # --------------------------------------------------------------------- one provider

    async def _turn(self, slot: Slot) -> ChainResult | int:
        """Use one provider: skip it, or call it (with retries). Returns a result, or whether
        the provider may be worth waiting for (cooling down, at capacity) or is done."""
        reason = slot.provider.unsupported_reason(self.request)
        if reason is not None:
            self._skip(slot, Outcome.SKIPPED, reason)
            return _DONE
        policy, clock = slot.policy, self.r.clock
        retries = 0
        while True:
            granted = await self._gate(slot, retrying=retries > 0)
            if not isinstance(granted, _Pass):
                return granted
            timeout = policy.attempt_timeout_s
            if self.deadline is not None:
                timeout = min(timeout, self.deadline - clock.now())
                if timeout <= 0:
                    await self._give_back(slot, granted)
                    self._check_deadline()
            attempt, error, result = await self._call(slot, granted, timeout)
            if result is not None:
                return result
            rule = policy.rule(attempt.outcome,
                               request_fault=error is not None and error.request_fault)
            if rule.stop:
                raise self._stopped(slot, attempt, error)
            if attempt.outcome is Outcome.RATE_LIMITED and await self.r.cooldowns.remaining(
                    slot.key, clock.now()) > 0:
                return _WAIT
            if retries >= rule.retries:
                return _DONE
            delay = policy.backoff.delay(retries, self.r.rng)
            if attempt.retry_after_s and policy.honour_retry_after:
                delay = max(delay, attempt.retry_after_s)
            if self.deadline is not None and clock.now() + delay >= self.deadline:
                return _DONE
            retries += 1
            await clock.sleep(delay)

    async def _gate(self, slot: Slot, *, retrying: bool) -> _Pass | int:
        """Every check before a call, in order: cooldown, per-request budget, breaker,
        capacity, period budget. Returns what was granted, or a skip (recorded) as
        ``_WAIT``/``_DONE``. Each store checks and takes atomically; what one check granted is
        handed back when a later one refuses."""
        now = self.r.clock.now()
        cooling = await self.r.cooldowns.remaining(slot.key, now)
        if cooling > 0:
            self._skip(slot, Outcome.COOLING_DOWN, f"cooling down for {cooling:.1f}s more")
            return _WAIT
        estimate = slot.provider.estimate_cost(self.request)
        budget = self.r.budget
        if budget is not None:
            why = budget.refuse_request(self._spent(), estimate)
            if why is not None:
                self._skip(slot, Outcome.BUDGET_EXCEEDED, why, estimate)
                return _DONE
        admission = await slot.breaker.admit()
        if admission is Admission.REJECT:
            self._skip(slot, Outcome.BREAKER_OPEN,
                       f"circuit open; next probe in {slot.breaker.seconds_until_probe():.1f}s")
            return _DONE
        limits = slot.limits
        if limits.active:
            try:
                wait = await self.r.capacity.try_acquire(slot.key, self.request.n, now, limits)
            except BaseException:
                await slot.breaker.record(admission, None)
                raise
            if wait != 0.0:
                await slot.breaker.record(admission, None)
                self._skip(slot, Outcome.SKIPPED, _at_capacity(limits, wait))
                if retrying:
                    return _DONE
                self.ready_at[slot.key] = None if wait is None else now + wait
                return _WAIT
        reservation: Reservation | None = None
        if budget is not None:
            try:
                reserved = await budget.reserve(estimate)
            except BaseException:
                await self._give_back(slot, _Pass(admission, estimate, None, limits.active))
                raise
            if isinstance(reserved, str):
                await self._give_back(slot, _Pass(admission, estimate, None, limits.active))
                self._skip(slot, Outcome.BUDGET_EXCEEDED, reserved, estimate)
                return _DONE
            reservation = reserved
        return _Pass(admission, estimate, reservation, limits.active)

    async def _give_back(self, slot: Slot, granted: _Pass) -> None:
        """A granted call is not made: release the probe, the capacity and the reservation."""
        await slot.breaker.record(granted.admission, None)
        if granted.holds_capacity:
            await self.r.capacity.refund(slot.key, self.request.n, slot.limits)
        if granted.reservation is not None and self.r.budget is not None:
            await self.r.budget.release(granted.reservation)

    async def _call(self, slot: Slot, granted: _Pass, timeout: float
                    ) -> tuple[Attempt, ProviderError | None, ChainResult | None]:
        try:
            return await self._call_once(slot, granted, timeout)
        finally:
            if granted.holds_capacity:
                await self.r.capacity.release(slot.key, slot.limits)

    async def _call_once(self, slot: Slot, granted: _Pass, timeout: float
                         ) -> tuple[Attempt, ProviderError | None, ChainResult | None]:
        provider, clock = slot.provider, self.r.clock
        request = self.request
        admission, estimate, reservation = (granted.admission, granted.estimate,
                                            granted.reservation)
        self.calls += 1
        if slot.key in self.hedged:
            self.hedge_spent += estimate or 0.0
        number = self.tries.get(slot.key, 0) + 1
        self.tries[slot.key] = number
        started_wall = clock.wall()
        t0 = clock.now()
        reply: ProviderReply | None = None
        error: ProviderError | None = None
        outcome = Outcome.SUCCESS
        message: str | None = None
        healthy: bool | None = None
        try:
            async with asyncio.timeout(timeout):
                reply = await provider.generate(request, timeout=timeout)
        except ProviderError as exc:
            error, outcome, message = exc, exc.outcome, exc.message
            # never re-raised: drop the frames (and the vendor exception chained to it) so a
            # failed attempt leaves no reference cycle for the garbage collector
            exc.__traceback__ = exc.__context__ = exc.__cause__ = None
        except TimeoutError:
            outcome = Outcome.TIMEOUT
            message = f"no answer within {timeout:.3g}s"
        except asyncio.CancelledError as exc:
            await slot.breaker.record(admission, None)
            lost = LOST_THE_RACE in exc.args
            # a call we abandoned may still finish and bill, like a timeout; a caller that
            # gives up takes its reservation back
            cost, source = settle_cost(Outcome.TIMEOUT if lost else Outcome.CANCELLED,
                                       estimate, None, bill_timeouts=slot.policy.bill_timeouts)
            if reservation is not None and self.r.budget is not None:
                if lost:
                    await self.r.budget.settle(reservation, cost)
                else:
                    await self.r.budget.release(reservation)
            self._record(self._attempt(
                slot, number, Outcome.CANCELLED, started_wall, clock.now() - t0,
                "cancelled: another provider answered first" if lost
                else "cancelled by the caller", None, cost, source, estimate))
            raise
        except OSError as exc:
            outcome = Outcome.CONNECTION_ERROR
            message = redact(f"{type(exc).__name__}: {exc}")[:500]
        except Exception as exc:  # an adapter bug must not take the chain down
            log.warning("provider %s raised %s instead of ProviderError", provider.name,
                        type(exc).__name__, exc_info=True)
            outcome = Outcome.MALFORMED_RESPONSE
            message = redact(f"adapter raised {type(exc).__name__}: {exc}")[:500]
        latency = clock.now() - t0
        if reply is not None and len(reply.images) < request.n:
            outcome = Outcome.MALFORMED_RESPONSE
            message = f"asked for {request.n} image(s), got {len(reply.images)}"
        policy = slot.policy
        if outcome is Outcome.SUCCESS:
            healthy = True
        elif outcome in policy.breaker_outcomes:
            healthy = False
        await slot.breaker.record(admission, healthy)
        reported = reply.cost_usd if reply is not None else (error.cost_usd if error else None)
        cost, source = settle_cost(outcome, estimate, reported,
                                   bill_timeouts=policy.bill_timeouts)
        if reservation is not None and self.r.budget is not None:
            await self.r.budget.settle(reservation, cost)
        slot.calls += 1
        if outcome is Outcome.SUCCESS:
            slot.successes += 1
            slot.latencies.append(latency)
        else:
            slot.failure_cost_usd += cost
        attempt = self._attempt(slot, number, outcome, started_wall, latency, message, error,
                                cost, source, estimate)
        self._record(attempt)
        if outcome is Outcome.SUCCESS:
            assert reply is not None
            return attempt, None, self._build_result(slot, reply)
        await self._after_failure(slot, attempt)
        return attempt, error, None

    async def _after_failure(self, slot: Slot, attempt: Attempt) -> None:
        rule = slot.policy.rule(attempt.outcome)
        seconds = rule.cooldown_s
        if (attempt.outcome is Outcome.RATE_LIMITED and attempt.retry_after_s is not None
                and slot.policy.honour_retry_after):
            seconds = min(attempt.retry_after_s, slot.policy.max_retry_after_s)
        bus = self.r.events
        if seconds > 0:
            until = await self.r.cooldowns.start(slot.key, seconds, self.r.clock.now())
            if bus:
                bus.emit(CooldownStarted(self.r.name, slot.key, attempt.outcome.value,
                                         seconds, until))
        if rule.alert and bus:
            bus.emit(QuotaAlert(self.r.name, slot.key, attempt.message or ""))

    # ----------------------------------------------------------------------- bookkeeping

    def _attempt(self, slot: Slot, number: int, outcome: Outcome, started_wall: float,
                 latency: float, message: str | None, error: ProviderError | None = None,
                 cost: float = 0.0, source: CostSource = "none",
                 estimate: float | None = None) -> Attempt:
        return trusted(
            Attempt, provider=slot.provider.name, model=slot.provider.model, attempt=number,
            outcome=outcome, status_code=error.status_code if error else None,
            provider_code=error.provider_code if error else None, message=message,
            started_at=datetime.fromtimestamp(started_wall, UTC), latency_s=latency,
            cost_usd=cost, cost_source=source,
            retry_after_s=error.retry_after_s if error else None, estimated_cost_usd=estimate)

    def _skip(self, slot: Slot, outcome: Outcome, reason: str,
              estimate: float | None = None) -> None:
        self._record(self._attempt(slot, self.tries.get(slot.key, 0) + 1, outcome,
                                   self.r.clock.wall(), 0.0, reason, estimate=estimate))

    def _spent(self) -> float:
        return sum(a.cost_usd for a in self.attempts)

    def _record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        if self.r.events:
            self.r.events.emit(AttemptFinished(self.r.name, self.request_id, attempt,
                                               self.request.metadata))

    def _stopped(self, slot: Slot, attempt: Attempt, error: ProviderError | None) -> ChainError:
        if attempt.outcome is Outcome.CONTENT_POLICY:
            reason = attempt.message or "refused on content grounds"
            categories = error.details.get("categories", ()) if error is not None else ()
            return ContentPolicyError(
                f"{slot.provider.name} refused the request: {reason}", self.attempts,
                provider=slot.provider.name, reason=reason, categories=list(categories))
        if error is not None and error.request_fault:
            return ChainStoppedError(
                f"stopped: {slot.provider.name} says the request itself is invalid, so no "
                f"other provider is asked (policy on_request_fault): {error.message}",
                self.attempts)
        return ChainStoppedError(
            f"stopped after {attempt.outcome.value} from {slot.provider.name} (policy)",
            self.attempts)

    def _build_result(self, slot: Slot, reply: ProviderReply) -> ChainResult:
        return trusted(
            ChainResult, images=reply.images, provider=slot.provider.name,
            model=slot.provider.model, revised_prompt=reply.revised_prompt, attempts=self.attempts,
            cost_usd=self._spent(),
            latency_s=self.r.clock.now() - self.started, request_id=self.request_id,
            usage=reply.usage)

    def _finish(self, result: ChainResult | None, error: ChainError | None) -> None:
        if self.r.events:
            self.r.events.emit(RequestFinished(self.r.name, self.request_id, self.request,
                                               result, error))


def _at_capacity(limits: Limits, wait: float | None) -> str:
    if wait is None:
        return f"at capacity: {limits.max_concurrency} call(s) already in flight"
    return (f"at capacity: {limits.images_per_minute:g} images/min; next slot in "
            f"{wait:.2f}s")
