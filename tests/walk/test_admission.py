"""The walk's admission (ordered checks with permits), its one estimate per request and
provider, and how a chain binds a budget."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from fallback_chain import Chain, ImageRequest, Outcome, Policy
from fallback_chain.clock import SYSTEM_CLOCK
from fallback_chain.cost.budget import Budget
from fallback_chain.errors import BudgetExceededError, ChainStoppedError
from fallback_chain.events import BudgetAlert, Event
from fallback_chain.providers import FakeProvider
from fallback_chain.resilience.capacity import MemoryCapacity
from fallback_chain.vtime import VirtualClock
from fallback_chain.walk import RequestRun, Router, Slot
from fallback_chain.walk.admission import (
    ADMISSION,
    BreakerCheck,
    BudgetPermit,
    CapabilityCheck,
    CapacityCheck,
    CooldownCheck,
    PeriodBudgetCheck,
    Refusal,
    RequestBudgetCheck,
    StoreCheck,
)

FAST = Policy(backoff_initial_s=0.0, backoff_jitter=0.0, wait_for_cooldown=False)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_the_admission_order() -> None:
    names = [build.__qualname__.split(".")[0] for build in ADMISSION]
    assert names == ["CapabilityCheck", "LifecycleCheck", "CooldownCheck", "RequestBudgetCheck",
                     "BreakerCheck", "CapacityCheck", "PeriodBudgetCheck", "QuotaCheck"]


def test_a_slot_gets_only_the_checks_that_apply() -> None:
    plain = Chain([FakeProvider("a")], log=False)
    assert [type(c) for c in plain._slots[0].checks] == [CapabilityCheck, CooldownCheck,
                                                          BreakerCheck]
    full = Chain([FakeProvider("a")], log=False, budget=Budget(per_request_usd=1.0),
                 policy=Policy(max_concurrency=2))
    assert [type(c) for c in full._slots[0].checks] == [
        CapabilityCheck, CooldownCheck, RequestBudgetCheck, BreakerCheck, CapacityCheck,
        PeriodBudgetCheck]


class Quota(StoreCheck):
    """A later check (a tenant quota, say): one more entry, refusing every call."""

    again: ClassVar[bool] = True

    def __init__(self) -> None:
        self.asked = 0

    async def __call__(self, run: RequestRun, slot: Slot, now: float,
                       retrying: bool) -> Refusal:
        self.asked += 1
        return Refusal(Outcome.BUDGET_EXCEEDED, "tenant quota used up")


def test_a_refusal_after_permits_hands_every_permit_back() -> None:
    budget = Budget(daily_usd=1.0)
    capacity = MemoryCapacity()
    provider = FakeProvider("a", price_usd=0.2)
    chain = Chain([provider], log=False, budget=budget, capacity=capacity,
                  policy=Policy(max_concurrency=1, breaker_failures=1))
    quota = Quota()
    slot = chain._slots[0]
    slot.use_checks((*slot.checks, quota))

    async def go() -> tuple[float, float]:
        with pytest.raises(BudgetExceededError) as info:  # nothing called, refused on money
            await chain.agenerate("x")
        assert [a.message for a in info.value.attempts] == ["tenant quota used up"]
        return await budget.reserved(), await budget.spent()

    assert run(go()) == (0.0, 0.0)  # the reservation went back
    assert capacity.in_flight("a") == 0  # so did the concurrency slot
    assert chain.breaker("a").state == "closed"  # the admission was recorded as neutral
    assert provider.calls == 0 and quota.asked == 1


def test_a_check_that_raises_releases_what_was_granted() -> None:
    budget = Budget(daily_usd=1.0)
    chain = Chain([FakeProvider("a")], log=False, budget=budget,
                  policy=Policy(max_concurrency=1))
    capacity: MemoryCapacity = chain._router.capacity  # type: ignore[assignment]

    class Broken(StoreCheck):
        again: ClassVar[bool] = True

        async def __call__(self, run: RequestRun, slot: Slot, now: float,
                           retrying: bool) -> Refusal:
            raise OSError("the quota service is down")

    slot = chain._slots[0]
    slot.use_checks((*slot.checks, Broken()))

    async def go() -> float:
        with pytest.raises(OSError, match="quota service"):
            await chain.agenerate("x")
        return await budget.reserved()

    assert run(go()) == 0.0
    assert capacity.in_flight("a") == 0


class Counting(FakeProvider):
    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.estimates = 0

    def estimate_cost(self, request: ImageRequest) -> float | None:
        self.estimates += 1
        return super().estimate_cost(request)


def test_one_estimate_per_request_and_provider() -> None:
    # ordering by cost, a per-request and a daily budget, a retry: still one estimate each
    a = Counting("a", script=[500, 500], price_usd=0.02)
    b = Counting("b", price_usd=0.03)
    chain = Chain([a, b], log=False, order="cost", policy=FAST,
                  budget=Budget(per_request_usd=1.0, daily_usd=10.0))
    result = run(chain.agenerate("x"))
    assert [x.outcome for x in result.attempts] == [Outcome.SERVER_ERROR,
                                                    Outcome.SERVER_ERROR, Outcome.SUCCESS]
    assert (a.estimates, b.estimates) == (1, 1)
    assert all(x.estimated_cost_usd is not None for x in result.attempts)


def test_chain_stopped_error_lives_with_the_other_errors() -> None:
    from fallback_chain import errors, routing

    assert routing.ChainStoppedError is errors.ChainStoppedError
    assert (routing.Router, routing.RequestRun, routing.Slot) == (Router, RequestRun, Slot)
    chain = Chain([FakeProvider("a", script=[500]), FakeProvider("b")], log=False,
                  policy=Policy(stop_on=("server_error",)))
    with pytest.raises(ChainStoppedError):
        run(chain.agenerate("x"))


def test_one_budget_given_to_two_chains() -> None:
    budget = Budget(daily_usd=1.0, alert_thresholds=(0.5,))
    before = budget.store
    clocks = VirtualClock(), VirtualClock()
    seen: dict[str, list[Event]] = {"one": [], "two": []}
    chains = [Chain([FakeProvider("p", price_usd=0.3)], name=name, clock=clock, budget=budget,
                    log=False, on_event=seen[name].append)
              for name, clock in zip(("one", "two"), clocks, strict=True)]
    assert all(c.budget is not budget for c in chains)
    assert chains[0].budget is not None and chains[0].budget.clock is clocks[0]
    assert chains[1].budget is not None and chains[1].budget.clock is clocks[1]
    # in the process: both copies book into the budget's own totals
    assert chains[0].budget.store is budget.store is chains[1].budget.store

    async def go() -> float:
        await chains[0].agenerate("x")
        await chains[1].agenerate("x")  # 0.6 of 1.0: the alert fires here, on chain two
        await chains[0].agenerate("x")
        with pytest.raises(Exception, match="budget"):
            await chains[1].agenerate("x")  # 1.2 > 1.0: the cap holds across both chains
        assert chains[1].budget is not None
        return await chains[1].budget.spent()  # the day of the chains' clocks

    assert run(go()) == pytest.approx(0.9)
    # the caller's object is as it was made: no emitter, clock or store of a chain
    assert budget.store_given is False and budget._emit is None and budget._chain == ""
    assert budget.clock is SYSTEM_CLOCK and budget.store is before
    alerts = {name: [e for e in events if isinstance(e, BudgetAlert)]
              for name, events in seen.items()}
    assert alerts["one"] == []
    assert [(a.chain, a.threshold) for a in alerts["two"]] == [("two", 0.5)]


def test_a_budget_with_its_own_clock_keeps_it() -> None:
    mine = VirtualClock()
    budget = Budget(daily_usd=1.0, clock=mine)
    chain = Chain([FakeProvider("p")], clock=VirtualClock(), budget=budget, log=False)
    assert chain.budget is not None and chain.budget.clock is mine
    assert Budget().clock is SYSTEM_CLOCK


def test_budget_permit_settles_or_gives_back() -> None:
    async def go() -> tuple[float, float]:
        budget = Budget(daily_usd=1.0)
        first = await budget.reserve(0.4)
        second = await budget.reserve(0.4)
        assert not isinstance(first, str) and not isinstance(second, str)
        await BudgetPermit(budget, first).settle(True, 0.25)
        await BudgetPermit(budget, second).settle(None, None)  # nothing billed
        return await budget.spent(), await budget.reserved()

    assert run(go()) == (pytest.approx(0.25), 0.0)
