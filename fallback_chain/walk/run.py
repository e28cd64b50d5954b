"""One request's walk down the chain: admit, call, account, then retry, advance or stop.

``Chain`` (in ``chain.py``) owns the long-lived parts (the ``Router``: providers, breakers,
cooldowns, events); a ``RequestRun`` is created per request and holds only that request's
state, so concurrent requests never share an attempts list. The steps of one attempt live in
their own modules: ``admission`` (may the provider be called?), ``call`` (call it, map what
happens to an ``Outcome``), ``accounting`` (cost, permits, statistics, record, events) and
``delivery`` (images kept from partial deliveries).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from ..errors import (
    BudgetExceededError,
    ChainError,
    ChainExhaustedError,
    ChainStoppedError,
    ContentPolicyError,
    DeadlineExceededError,
    ProviderError,
    QuotaExceededError,
)
from ..events import RequestFinished
from ..outcome import Outcome
from ..resilience.hedging import LOST_THE_RACE, Race
from ..results import Attempt, ChainResult, trusted
from .accounting import account, account_cancelled, skip
from .admission import Grant, Refusal, admit
from .call import call_provider, validated
from .delivery import Delivered
from .reference import fit_reference, with_note
from .screening import prescreen
from .slot import Router, Slot

if TYPE_CHECKING:
    from ..cost.quotas import QuotaRefused
    from ..provider import ProviderReply
    from ..request import ImageRequest
    from ..validators import Validator

# What to do with a provider after its turn in one pass over the chain.
_DONE, _WAIT = 0, 1
_UNKNOWN = object()
_NONE_HEDGED: frozenset[str] = frozenset()


class RequestRun:
    __slots__ = ("_estimates", "attempts", "calls", "cost", "deadline", "delivered",
                 "hedge_spent", "hedged", "quota_refused", "r", "ready_at", "request",
                 "request_id", "started", "tries", "validators", "waited")

    def __init__(self, router: Router, request: ImageRequest, request_id: str,
                 validators: tuple[Validator, ...] = ()) -> None:
        self.r = router
        self.validators = router.validators + validators
        self.request = request
        self.request_id = request_id
        self.attempts: list[Attempt] = []
        self.cost = 0.0  # the attempts' costs, added as they are recorded
        self.tries: dict[str, int] = {}
        self.ready_at: dict[str, float | None] = {}  # capacity: when a skipped provider frees
        self.calls = 0
        self.waited = 0.0
        self.hedge_spent = 0.0
        self.hedged: AbstractSet[str] = _NONE_HEDGED  # providers started as hedges (a set
        # of its own once a hedge starts: most requests never hedge)
        self.delivered: Delivered | None = None  # images kept from partial deliveries
        self._estimates: dict[str, float | None] = {}
        self.quota_refused: QuotaRefused | None = None  # the last refusal by a tenant quota
        self.started = router.clock.now()
        dl = router.policy.deadline_s
        self.deadline = None if dl is None else self.started + dl

    def estimate(self, slot: Slot) -> float | None:
        """The provider's cost estimate for this request: computed once, then reused by
        ordering, admission, hedging and accounting."""
        value = self._estimates.get(slot.key, _UNKNOWN)
        if value is _UNKNOWN:
            sent = fit_reference(self.request, slot.provider)[0]
            value = self._estimates[slot.key] = slot.provider.estimate_cost(sent)
        return value  # type: ignore[return-value]

    def spent(self) -> float:
        """What this request's attempts cost so far."""
        return self.cost

    # ----------------------------------------------------------------------------- driver

    async def execute(self) -> ChainResult:
        try:
            if self.r.screens:
                await prescreen(self)
            result = await self._walk()
        except ChainError as exc:
            exc.request_id = self.request_id
            if not exc.attempts:
                exc.attempts = list(self.attempts)
            if self.delivered is not None:
                exc.images = list(self.delivered.images)
            self._finish(None, exc)
            raise
        self._finish(result, None)
        return result

    async def _walk(self) -> ChainResult:
        """Pass over the chain; if providers are cooling down or at capacity, wait for the
        earliest and pass again over those. Passes in which some provider was called count
        towards ``max_rounds``; waiting is bounded by the deadline and ``max_wait_s``."""
        # No comprehensions here, nor in the other coroutines a request suspends in: on
        # Python 3.11 a comprehension makes every local it reads a cell, allocated on each
        # call and held while the request is in flight (benchmarks/bench_gc.py).
        router = self.r
        pending = ordered = router.ordered(self.estimate) if router.order == "cost" \
            else router.slots
        waiting: Sequence[Slot] = ()
        rounds = 0
        while True:
            calls_before = self.calls
            passed = await self._pass(pending)
            if isinstance(passed, ChainResult):
                return passed
            if passed:
                waiting = [*waiting, *passed]
            if self.calls > calls_before:
                rounds += 1
            if not waiting or rounds >= self.r.policy.max_rounds:
                break
            if not await self._wait(waiting):
                break
            pending, waiting = await self._due(ordered, waiting)
        raise self._exhausted()

    async def _due(self, ordered: list[Slot], waiting: Sequence[Slot]
                   ) -> tuple[list[Slot], list[Slot]]:
        """After a wait: the waiting providers that may be tried now (in the chain's order),
        and those still waiting."""
        now = self.r.clock.now()
        due: list[Slot] = []
        for slot in ordered:
            if slot in waiting and await self._ready_in(slot, now) <= 0:
                due.append(slot)
        return due, [s for s in waiting if s not in due]

    async def _pass(self, slots: list[Slot]) -> ChainResult | Sequence[Slot]:
        """One pass over ``slots``, in order or as a hedged race when the policy says so: the
        result, or the providers worth waiting for (cooling down, at capacity)."""
        if self.r.hedging:
            winner, late = await self._race(slots)
            return late if winner is None else winner
        waiting: list[Slot] | None = None  # made when needed: most requests never wait
        for slot in slots:
            if self.deadline is not None:
                self._check_deadline()
            result = await self._turn(slot)
            if isinstance(result, ChainResult):
                return result
            if result == _WAIT:
                if waiting is None:
                    waiting = []
                waiting.append(slot)
        return () if waiting is None else waiting

    async def _race(self, slots: list[Slot]) -> tuple[ChainResult | None, list[Slot]]:
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
            winner = trusted(ChainResult, **{**winner.__dict__,
                                              "cost_usd": sum(a.cost_usd for a in self.attempts)})
        return winner, late

    def _admit_hedge(self, slot: Slot) -> bool:
        """Whether a hedge on ``slot`` fits ``hedge_max_extra_usd`` (what hedged calls have
        been estimated at so far); the calls it makes are booked when they start."""
        ceiling = self.r.policy.hedge_max_extra_usd
        if ceiling is not None:
            estimate = self.estimate(slot) or 0.0
            if self.hedge_spent + estimate > ceiling + 1e-12:
                return False
        self.hedged = {*self.hedged, slot.key}
        return True

    async def _ready_in(self, slot: Slot, now: float) -> float:
        """Seconds until a waiting provider may be tried (0 for "when a slot frees")."""
        cooling = await self.r.cooldowns.remaining(slot.key, now)
        ready = self.ready_at.get(slot.key)
        return max(cooling, ready - now if ready is not None else 0.0)

    async def _wait(self, waiting: Sequence[Slot]) -> bool:
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
            q = self.quota_refused
            if q is not None:
                return QuotaExceededError(q.message, self.attempts, kind=q.kind,
                                          tenant=q.tenant, limit=q.limit)
            return BudgetExceededError("every provider would exceed the budget", self.attempts)
        if self.deadline is not None and self.r.clock.now() >= self.deadline:
            return DeadlineExceededError(
                f"deadline of {self.r.policy.deadline_s:g}s passed before any provider "
                "delivered", self.attempts)
        rejected = [f"{a.provider}: {a.message}" for a in called if a.outcome is Outcome.REJECTED]
        why = f"; images rejected: {'; '.join(rejected)}" if rejected else ""
        return ChainExhaustedError(
            f"no provider delivered ({len(called)} call(s), "
            f"{len(self.attempts) - len(called)} skip(s)){why}", self.attempts)

    # --------------------------------------------------------------------- one provider

    async def _turn(self, slot: Slot) -> ChainResult | int:
        """Use one provider: skip it, or call it (with retries). Returns a result, or whether
        the provider may be worth waiting for (cooling down, at capacity) or is done."""
        retries = 0
        while True:
            granted = await admit(self, slot, retrying=retries > 0)
            if isinstance(granted, Refusal):
                skip(self, slot, granted.outcome, granted.reason, granted.estimate)
                return _WAIT if granted.wait else _DONE
            attempt, error, result = await self._call(slot, granted)
            if result is not None:
                return result
            rule = slot.policy.rule(attempt.outcome,
                                    request_fault=error is not None and error.request_fault)
            if rule.stop:
                raise self._stopped(slot, attempt, error)
            if attempt.outcome is Outcome.RATE_LIMITED and await self.r.cooldowns.remaining(
                    slot.key, self.r.clock.now()) > 0:
                return _WAIT
            delay = None if retries >= rule.retries else self._retry_delay(slot, attempt, retries)
            if delay is None:
                return _DONE
            retries += 1
            await self.r.clock.sleep(delay)

    def _retry_delay(self, slot: Slot, attempt: Attempt, retries: int) -> float | None:
        """After a failed call that the policy retries: how long to wait before the retry, or
        ``None`` to move on (the deadline would pass first)."""
        policy = slot.policy
        delay = policy.backoff.delay(retries, self.r.rng)
        if attempt.retry_after_s and policy.honour_retry_after:
            delay = max(delay, attempt.retry_after_s)
        if self.deadline is not None and self.r.clock.now() + delay >= self.deadline:
            return None
        return delay

    async def _call(self, slot: Slot, granted: Grant
                    ) -> tuple[Attempt, ProviderError | None, ChainResult | None]:
        clock = self.r.clock
        timeout = slot.policy.attempt_timeout_s
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - clock.now())
            if timeout <= 0:
                await granted.release()
                self._check_deadline()
        self.calls += 1
        if slot.key in self.hedged:
            self.hedge_spent += granted.estimate or 0.0
        number = self.tries[slot.key] = self.tries.get(slot.key, 0) + 1
        started_wall = clock.wall()
        t0 = clock.now()
        sent, note = fit_reference(self.request, slot.provider)
        try:
            called = await call_provider(slot.provider, sent, timeout)
            if note is not None:
                called.message = with_note(note, called.message)
            if self.validators:
                called = await validated(called, self.validators, self.request)
        except asyncio.CancelledError as exc:
            await account_cancelled(self, slot, granted, number, started_wall,
                                    clock.now() - t0, lost=LOST_THE_RACE in exc.args)
            raise
        except BaseException:
            await granted.settle(None, None)
            raise
        attempt = await account(self, slot, granted, number, started_wall, clock.now() - t0,
                                called)
        if called.partial is not None:
            self._keep(slot, called.partial)
        if called.reply is not None and attempt.outcome is Outcome.SUCCESS:
            return attempt, None, self._result(slot, called.reply)
        return attempt, called.error, None

    def _keep(self, slot: Slot, partial: ProviderReply) -> None:
        """A failed call delivered some images: keep them and ask only for the rest."""
        if self.delivered is None:
            self.delivered = Delivered(self.request)
        assert slot.origin is not None
        missing = self.delivered.keep(slot.origin, partial.images)
        if 0 < missing < self.request.n:
            self.request = self.request.model_copy(update={"n": missing})
            self._estimates.clear()

    # ----------------------------------------------------------------------- outcomes

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

    def _result(self, slot: Slot, reply: ProviderReply) -> ChainResult:
        assert slot.origin is not None
        if self.delivered is None:
            images, origins = reply.images, [slot.origin] * len(reply.images)
        else:
            images, origins = self.delivered.complete(slot.origin, reply.images)
        return trusted(
            ChainResult, images=images, provider=slot.provider.name,
            model=slot.provider.model, revised_prompt=reply.revised_prompt, attempts=self.attempts,
            cost_usd=self.spent(), latency_s=self.r.clock.now() - self.started,
            request_id=self.request_id, usage=reply.usage, origins=origins)

    def _finish(self, result: ChainResult | None, error: ChainError | None) -> None:
        if self.r.events:
            asked = self.request if self.delivered is None else self.delivered.request
            self.r.events.emit(RequestFinished(self.r.name, self.request_id, asked, result,
                                               error))
