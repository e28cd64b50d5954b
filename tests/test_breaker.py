"""Circuit breaker: opens after 5 failures, skips while open, one probe at half-open."""

from __future__ import annotations

import asyncio

import pytest

from fallback_chain import Chain, Outcome, Policy
from fallback_chain.events import BreakerStateChanged, Event
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.fake import Step
from fallback_chain.resilience import Admission, CircuitBreaker
from fallback_chain.vtime import VirtualClock, run_virtual

NO_RETRY = Policy(retries={"server_error": 0})


def _chain(script_a, *, latency_a=0.0, policy=NO_RETRY):
    clock = VirtualClock()
    a = FakeProvider("a", script_a, clock=clock, latency_s=latency_a)
    b = FakeProvider("b", clock=clock)
    events: list[Event] = []
    chain = Chain([a, b], clock=clock, policy=policy, on_event=events.append)
    return chain, a, b, clock, events


def test_opens_after_five_consecutive_failures_then_skips():
    chain, a, _b, _clock, events = _chain([500] * 5)

    async def go():
        return [await chain.agenerate(f"p{i}") for i in range(7)]

    results = run_virtual(go())
    for r in results[:5]:
        assert [x.outcome.value for x in r.attempts] == ["server_error", "success"]
    for r in results[5:]:
        assert [x.outcome for x in r.attempts] == [Outcome.BREAKER_OPEN, Outcome.SUCCESS]
        assert "circuit open" in r.attempts[0].message
    assert a.calls == 5
    assert chain.breaker("a").state == "open"
    changes = [(e.old, e.new) for e in events if isinstance(e, BreakerStateChanged)]
    assert changes == [("closed", "open")]


def test_success_resets_the_failure_count():
    chain, a, _b, _clock, _ = _chain([500] * 4 + ["ok"] + [500] * 4)

    async def go():
        for i in range(9):
            await chain.agenerate(f"p{i}")

    run_virtual(go())
    assert chain.breaker("a").state == "closed"
    assert a.calls == 9


@pytest.mark.parametrize(("probe", "final_state", "a_calls_after"), [
    ("ok", "closed", 1 + 1),  # the probe, then a normal call once closed
    (500, "open", 1),  # the probe failed: open again, nothing more reaches a
])
def test_half_open_lets_exactly_one_probe_through_under_concurrency(probe, final_state,
                                                                    a_calls_after):
    chain, a, _b, clock, events = _chain([500] * 5 + [Step(probe, latency_s=2.0)])

    async def go():
        for i in range(5):
            await chain.agenerate(f"open {i}")
        assert chain.breaker("a").state == "open"
        await clock.sleep(60.0)
        calls_before = a.calls
        results = await asyncio.gather(*(chain.agenerate(f"wave {i}") for i in range(50)))
        probes = a.calls - calls_before
        after = await chain.agenerate("after")
        return results, probes, after

    results, probes, after = run_virtual(go())
    assert probes == 1
    first_outcomes = [r.attempts[0].outcome for r in results]
    assert first_outcomes.count(Outcome.BREAKER_OPEN) == 49
    assert all(r.provider in ("a", "b") for r in results)
    assert chain.breaker("a").state == final_state
    assert a.calls == 5 + a_calls_after
    expected_first = Outcome.SUCCESS if final_state == "closed" else Outcome.BREAKER_OPEN
    assert after.attempts[0].outcome is expected_first
    changes = [(e.old, e.new) for e in events if isinstance(e, BreakerStateChanged)]
    assert changes[:2] == [("closed", "open"), ("open", "half-open")]
    assert changes[2] == ("half-open", final_state)


def test_rate_limits_and_refusals_do_not_open_the_breaker():
    chain, a, _b, _clock, _ = _chain([400, 400, 400, 400, 400, 400], policy=Policy())

    async def go():
        for i in range(6):
            await chain.agenerate(f"p{i}")

    run_virtual(go())
    assert chain.breaker("a").state == "closed"
    assert a.calls == 6


def test_inconclusive_probe_frees_the_slot():
    async def go():
        clock = VirtualClock()
        br = CircuitBreaker("x", fail_max=1, reset_timeout_s=10, clock=clock)
        await br.record(await br.admit(), healthy=False)
        assert br.state == "open"
        assert await br.admit() is Admission.REJECT
        await clock.sleep(10)
        probe = await br.admit()
        assert probe is Admission.PROBE
        assert await br.admit() is Admission.REJECT  # one probe at a time
        await br.record(probe, healthy=None)  # e.g. a 429: says nothing about health
        assert br.state == "half-open"
        second = await br.admit()
        assert second is Admission.PROBE
        await br.record(second, healthy=True)
        assert br.state == "closed"

    run_virtual(go())


def test_cancelled_probe_releases_the_slot():
    chain, _a, _b, clock, _ = _chain([500] * 5 + [Step("ok", latency_s=30.0)])

    async def go():
        for i in range(5):
            await chain.agenerate(f"p{i}")
        await clock.sleep(60)
        task = asyncio.ensure_future(chain.agenerate("probe"))
        await clock.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await chain.agenerate("next")

    result = run_virtual(go())
    assert result.attempts[0].outcome is Outcome.SUCCESS  # the next call could probe
    assert result.provider == "a"
