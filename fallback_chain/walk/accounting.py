"""Accounting: what one attempt leaves behind once its outcome is known.

The call's cost is settled (``cost.settle``), the admission permits are settled with the
provider's health and that cost (breaker, capacity, budget), the provider's observed
statistics move, the attempt is recorded and announced, and a failure starts its cooldown
and raises its alert. Skips are recorded here too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..cost.settle import settle_cost
from ..events import AttemptFinished, CooldownStarted, QuotaAlert
from ..outcome import Outcome
from ..results import Attempt, CostSource, trusted
from .admission import Grant

if TYPE_CHECKING:
    from ..errors import ProviderError
    from .call import Called
    from .run import RequestRun
    from .slot import Slot


async def account(run: RequestRun, slot: Slot, grant: Grant, number: int, started_wall: float,
                  latency: float, called: Called) -> Attempt:
    """Settle and record a call that ended (in any outcome but cancellation)."""
    policy, outcome, error = slot.policy, called.outcome, called.error
    if outcome is Outcome.SUCCESS:
        healthy: bool | None = True
    else:  # a rejected image says nothing about the provider's health: breaker untouched
        unhealthy = outcome in policy.breaker_outcomes and outcome is not Outcome.REJECTED
        healthy = False if unhealthy else None
    reply = called.reply
    reported = reply.cost_usd if reply is not None else (error.cost_usd if error else None)
    if reported is None and called.partial is not None:
        reported = called.partial.cost_usd
    delivered = len(called.partial.images) / run.request.n if called.partial is not None else 0.0
    cost, source = settle_cost(outcome, grant.estimate, reported,
                               bill_timeouts=policy.bill_timeouts, delivered=delivered)
    permits = grant.permits
    if len(permits) == 1:  # the common case (a breaker admission only): settle it directly
        await permits[0].settle(healthy, cost)
    else:
        await grant.settle(healthy, cost)
    slot.calls += 1
    if outcome is Outcome.SUCCESS:
        slot.successes += 1
        slot.latencies.append(latency)
    else:
        slot.failure_cost_usd += cost
    attempt = new_attempt(slot, number, outcome, started_wall, latency, called.message, error,
                          cost, source, grant.estimate)
    record(run, attempt)
    if outcome is not Outcome.SUCCESS:
        await _after_failure(run, slot, attempt)
    return attempt


async def account_cancelled(run: RequestRun, slot: Slot, grant: Grant, number: int,
                            started_wall: float, latency: float, *, lost: bool) -> None:
    """Settle and record a call that was cancelled: it lost a hedge race (it may still finish
    and bill, like a timeout) or the caller gave up (its reservation goes back)."""
    cost, source = settle_cost(Outcome.TIMEOUT if lost else Outcome.CANCELLED, grant.estimate,
                               None, bill_timeouts=slot.policy.bill_timeouts)
    await grant.settle(None, cost if lost else None)
    record(run, new_attempt(
        slot, number, Outcome.CANCELLED, started_wall, latency,
        "cancelled: another provider answered first" if lost else "cancelled by the caller",
        None, cost, source, grant.estimate))


def skip(run: RequestRun, slot: Slot, outcome: Outcome, reason: str,
         estimate: float | None = None) -> None:
    record(run, new_attempt(slot, run.tries.get(slot.key, 0) + 1, outcome, run.r.clock.wall(),
                            0.0, reason, estimate=estimate))


def record(run: RequestRun, attempt: Attempt) -> None:
    run.attempts.append(attempt)
    run.cost += attempt.cost_usd
    events = run.r.events
    if events:
        request = run.request
        events.emit(AttemptFinished(run.r.name, run.request_id, attempt, request.metadata,
                                    request.user, request.project))


def new_attempt(slot: Slot, number: int, outcome: Outcome, started_wall: float, latency: float,
                message: str | None, error: ProviderError | None = None, cost: float = 0.0,
                source: CostSource = "none", estimate: float | None = None) -> Attempt:
    return trusted(
        Attempt, provider=slot.provider.name, model=slot.provider.model, attempt=number,
        outcome=outcome, status_code=error.status_code if error else None,
        provider_code=error.provider_code if error else None, message=message,
        started_at=datetime.fromtimestamp(started_wall, UTC), latency_s=latency,
        cost_usd=cost, cost_source=source,
        retry_after_s=error.retry_after_s if error else None, estimated_cost_usd=estimate)


async def _after_failure(run: RequestRun, slot: Slot, attempt: Attempt) -> None:
    policy = slot.policy
    rule = policy.rule(attempt.outcome)
    seconds = rule.cooldown_s
    if (attempt.outcome is Outcome.RATE_LIMITED and attempt.retry_after_s is not None
            and policy.honour_retry_after):
        seconds = min(attempt.retry_after_s, policy.max_retry_after_s)
    bus = run.r.events
    if seconds > 0:
        until = await run.r.cooldowns.start(slot.key, seconds, run.r.clock.now())
        if bus:
            bus.emit(CooldownStarted(run.r.name, slot.key, attempt.outcome.value, seconds,
                                     until))
    if rule.alert and bus:
        bus.emit(QuotaAlert(run.r.name, slot.key, attempt.message or ""))
