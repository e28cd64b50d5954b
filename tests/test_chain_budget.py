"""Budgets wired into the router: per-request ceilings and period caps that reserve first."""

from __future__ import annotations

import asyncio

import pytest

from fallback_chain import Chain, ChainResult, Outcome, Policy
from fallback_chain.cost.budget import Budget
from fallback_chain.errors import BudgetExceededError, ChainError
from fallback_chain.events import BudgetAlert, Event
from fallback_chain.providers import FakeProvider
from fallback_chain.vtime import VirtualClock, run_virtual


def test_two_hundred_concurrent_requests_never_overshoot_a_daily_cap():
    clock = VirtualClock()
    events: list[Event] = []
    budget = Budget(daily_usd=1.00)
    chain = Chain([FakeProvider("a", clock=clock, price_usd=0.013, latency_s=(0.5, 2.0),
                                seed=3)],
                  clock=clock, budget=budget, on_event=events.append)

    async def go():
        out = await asyncio.gather(*(chain.agenerate(f"p{i}", size="64x64")
                                     for i in range(200)), return_exceptions=True)
        bound = chain.budget  # the copy the chain books into, on the chain's clock
        assert bound is not None and bound is not budget
        return out, await bound.spent("day"), await bound.reserved("day")

    results, spent, reserved = run_virtual(go())
    delivered = [r for r in results if isinstance(r, ChainResult)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(delivered) + len(refused) == 200
    assert len(delivered) == int(1.00 // 0.013)  # 76: every reservation that fit was used
    settled = sum(r.cost_usd for r in delivered)
    assert settled <= 1.00
    assert spent == pytest.approx(settled)
    assert reserved == 0
    alerts = [e for e in events if isinstance(e, BudgetAlert)]
    assert [a.threshold for a in alerts] == [0.8]
    for r in refused:
        assert [a.outcome for a in r.attempts] == [Outcome.BUDGET_EXCEEDED]
        assert "budget" in r.attempts[0].message


def test_per_request_ceiling_skips_expensive_providers():
    clock = VirtualClock()
    pricey = FakeProvider("pricey", clock=clock, price_usd=0.20)
    cheap = FakeProvider("cheap", clock=clock, price_usd=0.02)
    chain = Chain([pricey, cheap], clock=clock, budget=Budget(per_request_usd=0.10))
    result = run_virtual(chain.agenerate("x"))
    assert [(a.provider, a.outcome.value) for a in result.attempts] == [
        ("pricey", "budget_exceeded"), ("cheap", "success")]
    assert result.attempts[0].estimated_cost_usd == pytest.approx(0.20)
    assert pricey.calls == 0


def test_per_request_ceiling_counts_money_already_spent_on_failures():
    clock = VirtualClock()
    # a timeout is billed at its estimate; after it, the second provider no longer fits
    slow = FakeProvider("slow", ["timeout"], clock=clock, price_usd=0.06)
    other = FakeProvider("other", clock=clock, price_usd=0.06)
    chain = Chain([slow, other], clock=clock, attempt_timeout_s=5,
                  budget=Budget(per_request_usd=0.10))

    async def go():
        with pytest.raises(ChainError) as info:
            await chain.agenerate("x")
        return info.value

    err = run_virtual(go())
    assert [a.outcome.value for a in err.attempts] == ["timeout", "budget_exceeded"]
    assert err.cost_usd == pytest.approx(0.06)
    assert other.calls == 0


def test_cancelled_attempt_releases_its_reservation():
    clock = VirtualClock()
    budget = Budget(daily_usd=1.0)
    chain = Chain([FakeProvider("a", clock=clock, latency_s=10, price_usd=0.5)], clock=clock,
                  budget=budget)

    async def go():
        task = asyncio.ensure_future(chain.agenerate("x"))
        await clock.sleep(1)
        bound = chain.budget
        assert bound is not None
        assert await bound.reserved("day") == pytest.approx(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await bound.reserved("day"), await bound.spent("day")

    assert run_virtual(go()) == (0, 0)


def test_cost_aware_order_moves_an_expensive_provider_behind_a_cheap_one():
    clock = VirtualClock()
    pricey = FakeProvider("pricey", clock=clock, price_usd=0.20)
    cheap = FakeProvider("cheap", clock=clock, price_usd=0.02, rates={500: 0.5}, seed=1)
    chain = Chain([pricey, cheap], clock=clock, order="cost", seed=1,
                  policy=Policy(breaker_failures=1000))

    async def go():
        return [await chain.agenerate(f"p{i}") for i in range(40)]

    results = run_virtual(go())
    # the cheap one fails half the time, but its failures cost nothing: it goes first, and
    # the expensive one is called only when both tries of the cheap one failed (~1 in 4)
    assert all(r.attempts[0].provider == "cheap" for r in results)
    assert pricey.calls == sum(1 for r in results if r.provider == "pricey")
    assert 3 <= pricey.calls <= 18
    given = Chain([FakeProvider("pricey", clock=clock, price_usd=0.2),
                   FakeProvider("cheap", clock=clock, price_usd=0.02)], clock=clock)
    assert run_virtual(given.agenerate("x")).provider == "pricey"
