"""Hedged requests: start the next provider when the current one is slow; first success wins."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fallback_chain import Chain, ChainResult, Outcome, Policy
from fallback_chain.errors import ChainError, ContentPolicyError
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.fake import Step
from fallback_chain.vtime import VirtualClock, run_virtual


def _run(providers, policy, clock, prompt="x"):
    chain = Chain(providers, clock=clock, policy=policy)

    async def go():
        t0 = clock.now()
        try:
            out = await chain.agenerate(prompt, size="64x64")
        except ChainError as exc:
            out = exc
        return out, clock.now() - t0

    return run_virtual(go())


def test_slow_primary_is_hedged_and_the_faster_answer_wins():
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=10.0, price_usd=0.04)
    b = FakeProvider("b", clock=clock, latency_s=1.0, price_usd=0.02)
    result, elapsed = _run([a, b], Policy(hedge_delay_s=2.0), clock)
    assert result.provider == "b"
    assert elapsed == pytest.approx(3.0)
    assert [(x.provider, x.outcome.value, x.cost_source) for x in result.attempts] == [
        ("a", "cancelled", "estimated"), ("b", "success", "reported")]
    assert "another provider answered first" in result.attempts[0].message
    assert result.cost_usd == pytest.approx(0.04 + 0.02)  # the abandoned call may bill


def test_no_hedge_when_the_primary_answers_in_time():
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=1.5)
    b = FakeProvider("b", clock=clock, latency_s=1.0)
    result, elapsed = _run([a, b], Policy(hedge_delay_s=2.0), clock)
    assert (result.provider, b.calls, elapsed) == ("a", 0, pytest.approx(1.5))


def test_a_fast_failure_advances_as_usual():
    clock = VirtualClock()
    a = FakeProvider("a", [Step(500, latency_s=0.5)], clock=clock)
    b = FakeProvider("b", clock=clock, latency_s=1.0)
    result, elapsed = _run([a, b], Policy(hedge_delay_s=2.0, retries={"server_error": 0}),
                           clock)
    assert [x.outcome.value for x in result.attempts] == ["server_error", "success"]
    assert elapsed == pytest.approx(1.5)


def test_the_cost_ceiling_stops_hedging():
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=10.0, price_usd=0.04)
    b = FakeProvider("b", clock=clock, latency_s=1.0, price_usd=0.05)
    result, elapsed = _run([a, b], Policy(hedge_delay_s=2.0, hedge_max_extra_usd=0.03), clock)
    assert (result.provider, b.calls, elapsed) == ("a", 0, pytest.approx(10.0))


def test_a_refusal_in_any_branch_stops_the_whole_race():
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=10.0)
    b = FakeProvider("b", [Step("content_policy", latency_s=1.0)], clock=clock)
    c = FakeProvider("c", clock=clock)
    err, elapsed = _run([a, b, c], Policy(hedge_delay_s=2.0), clock)
    assert isinstance(err, ContentPolicyError)
    assert err.provider == "b"
    assert elapsed == pytest.approx(3.0)
    assert [(x.provider, x.outcome.value) for x in err.attempts] == [
        ("a", "cancelled"), ("b", "content_policy")]
    assert c.calls == 0


def test_p95_delay_follows_observed_latency():
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=(1.0, 2.0), seed=3)
    b = FakeProvider("b", clock=clock, latency_s=0.1)
    chain = Chain([a, b], clock=clock, policy=Policy(hedge_delay_s=0.5, hedge_delay="p95"))

    async def go():
        early = [await chain.agenerate(f"warm {i}", size="64x64") for i in range(25)]
        return early

    results = run_virtual(go())
    # at first the fixed 0.5 s applies and b wins; once a's p95 (about 1.95 s) is known, a is
    # no longer hedged except when it is slower than its own p95
    early_winners = [r.provider for r in results[:5]]
    assert early_winners == ["b"] * 5
    assert a.calls == 25
    delay = chain._slots[0].hedge_delay()
    assert delay is None or 0.5 <= delay <= 2.0


def test_caller_cancel_cancels_every_branch_and_costs_nothing():
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=10.0)
    b = FakeProvider("b", clock=clock, latency_s=10.0)
    events = []
    chain = Chain([a, b], clock=clock, policy=Policy(hedge_delay_s=1.0),
                  on_event=events.append)

    async def go():
        task = asyncio.ensure_future(chain.agenerate("x", size="64x64"))
        await clock.sleep(3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert run_virtual(go()) == []
    attempts = [e.attempt for e in events if hasattr(e, "attempt")]
    assert sorted((x.provider, x.outcome.value, x.cost_usd) for x in attempts) == [
        ("a", "cancelled", 0.0), ("b", "cancelled", 0.0)]


FAULTS = ["ok", 429, 500, "timeout", "content_policy", 401]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts=st.lists(st.lists(st.builds(Step, outcome=st.sampled_from(FAULTS),
                                           latency_s=st.sampled_from([0.1, 1.0, 3.0, 8.0])),
                                 max_size=4), min_size=1, max_size=4),
       delay=st.sampled_from([0.5, 2.0]), hedges=st.integers(1, 2))
def test_hedged_router_invariants(scripts, delay, hedges):
    clock = VirtualClock()
    fakes = [FakeProvider(f"p{i}", s, clock=clock, price_usd=0.01) for i, s in
             enumerate(scripts)]
    out, elapsed = _run(fakes, Policy(hedge_delay_s=delay, max_hedges=hedges,
                                      attempt_timeout_s=5, deadline_s=30), clock)
    attempts = out.attempts
    for fake in fakes:
        assert fake.calls == sum(1 for a in attempts if a.provider == fake.name
                                 and a.outcome.was_called)
    assert abs(out.cost_usd - sum(a.cost_usd for a in attempts)) < 1e-12
    assert [a.started_at for a in attempts] == sorted(a.started_at for a in attempts)
    assert elapsed <= 30 + 1e-6
    if isinstance(out, ChainResult):
        assert len(out.images) == 1
        # two branches can succeed at the same instant: both were paid, one is delivered
        assert any(a.outcome is Outcome.SUCCESS and a.provider == out.provider
                   for a in attempts)


def test_hedge_delay_counts_from_when_the_running_provider_started():
    # a answers at 100 s; b (started as a hedge at 8 s) fails at 8.5 s. By then a has been
    # silent for more than 8 s, so c starts at once (8.5 s), not 8 s after b failed
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=100.0)
    b = FakeProvider("b", [Step(500, latency_s=0.5)], clock=clock)
    c = FakeProvider("c", clock=clock, latency_s=1.0)
    policy = Policy(hedge_delay_s=8.0, max_hedges=2, retries={"server_error": 0})
    result, elapsed = _run([a, b, c], policy, clock)
    assert result.provider == "c"
    assert elapsed == pytest.approx(9.5)


def test_a_hedge_skipped_before_calling_does_not_use_the_ceiling():
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=50.0, price_usd=0.05)
    b = FakeProvider("b", [401], clock=clock, latency_s=0.1, price_usd=0.05)
    c = FakeProvider("c", clock=clock, latency_s=1.0, price_usd=0.05)
    chain = Chain([a, b, c], clock=clock,
                  policy=Policy(hedge_delay_s=2.0, hedge_max_extra_usd=0.10))

    async def go():
        await chain.agenerate("first", size="64x64")  # b's 401 puts it in a 1 h cooldown
        t0 = clock.now()
        second = await chain.agenerate("second", size="64x64")
        return second, clock.now() - t0

    second, elapsed = run_virtual(go())
    # b is skipped (cooling down) when hedged; that costs nothing, so c can still be a hedge
    assert second.provider == "c"
    assert elapsed == pytest.approx(3.0)
    assert [(x.provider, x.outcome.value) for x in second.attempts] == [
        ("a", "cancelled"), ("b", "cooling_down"), ("c", "success")]
