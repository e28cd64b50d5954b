"""Per-provider capacity: images-per-minute limiter and calls in flight, in the router."""

from __future__ import annotations

import asyncio

import pytest

from fallback_chain import Chain, ChainResult, Outcome, Policy
from fallback_chain.errors import ChainError, ConfigurationError
from fallback_chain.provider import ProviderReply
from fallback_chain.providers import FakeProvider
from fallback_chain.request import ImageRequest
from fallback_chain.resilience.capacity import Limits, MemoryCapacity
from fallback_chain.vtime import VirtualClock, run_virtual


class Tracking(FakeProvider):
    """A fake that records when each call started and how many were in flight."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.starts: list[float] = []
        self.inflight = 0
        self.peak = 0

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        self.starts.append(self._clock.now())
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        try:
            return await super().generate(request, timeout=timeout)
        finally:
            self.inflight -= 1


def _max_in_window(starts: list[float], window: float = 60.0) -> int:
    return max((sum(1 for t in starts if s <= t < s + window) for s in starts), default=0)


def test_images_per_minute_spaces_calls_and_everything_is_delivered():
    clock = VirtualClock()
    a = Tracking("a", clock=clock, latency_s=0.5)
    chain = Chain([a], clock=clock, policy=Policy(images_per_minute=10))

    async def go():
        return await asyncio.gather(*(chain.agenerate(f"p{i}", size="64x64")
                                      for i in range(25)))

    results = run_virtual(go())
    assert all(isinstance(r, ChainResult) for r in results)
    assert a.calls == 25
    assert _max_in_window(a.starts) <= 10
    assert a.starts[-1] == pytest.approx(24 * 6.05)  # evenly spaced (60.5 s / 10), no time wasted
    skipped = [x for r in results for x in r.attempts if x.outcome is Outcome.SKIPPED]
    assert skipped
    assert all("images/min" in x.message for x in skipped)


def test_a_provider_at_capacity_is_skipped_for_the_next_one():
    clock = VirtualClock()
    a = Tracking("a", clock=clock, latency_s=1.0)
    b = Tracking("b", clock=clock, latency_s=1.0)
    policy = Policy(providers={"a": {"images_per_minute": 6}, "b": {"images_per_minute": 6}})
    chain = Chain([a, b], clock=clock, policy=policy)

    async def go():
        t0 = clock.now()
        results = []
        for i in range(24):  # a steady stream: one request every 5 s
            results.append(asyncio.ensure_future(chain.agenerate(f"p{i}", size="64x64")))
            await clock.sleep(5.0)
        done = await asyncio.gather(*results)
        return done, clock.now() - t0

    results, _elapsed = run_virtual(go())
    assert a.calls + b.calls == 24  # no call was wasted
    assert a.calls == pytest.approx(12, abs=1) and b.calls == pytest.approx(12, abs=1)
    assert _max_in_window(a.starts) <= 6 and _max_in_window(b.starts) <= 6
    assert all(r.attempts[-1].outcome is Outcome.SUCCESS for r in results)


def test_max_concurrency_overflows_then_waits_for_a_free_slot():
    clock = VirtualClock()
    a = Tracking("a", clock=clock, latency_s=5.0)
    b = Tracking("b", clock=clock, latency_s=5.0)
    policy = Policy(providers={"a": {"max_concurrency": 2}, "b": {"max_concurrency": 3}})
    chain = Chain([a, b], clock=clock, policy=policy)

    async def go():
        t0 = clock.now()
        out = await asyncio.gather(*(chain.agenerate(f"p{i}", size="64x64")
                                     for i in range(12)))
        return out, clock.now() - t0

    results, elapsed = run_virtual(go())
    assert all(isinstance(r, ChainResult) for r in results)
    assert (a.peak, b.peak) == (2, 3)
    assert a.calls + b.calls == 12
    assert elapsed == pytest.approx(15.0)  # 12 calls, 5 at a time, 5 s each: 3 waves


def test_cancelled_call_frees_its_slot_and_refunds_nothing_it_did_not_take():
    clock = VirtualClock()
    a = Tracking("a", clock=clock, latency_s=30.0)
    chain = Chain([a], clock=clock, policy=Policy(max_concurrency=1))

    async def go():
        first = asyncio.ensure_future(chain.agenerate("x", size="64x64"))
        await clock.sleep(1)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        t0 = clock.now()
        await chain.agenerate("y", size="64x64")
        return clock.now() - t0

    assert run_virtual(go()) == pytest.approx(30.0)  # the slot was free at once


def test_waiting_is_bounded_by_the_deadline():
    clock = VirtualClock()
    a = Tracking("a", clock=clock, latency_s=1.0)
    chain = Chain([a], clock=clock, deadline_s=20, policy=Policy(images_per_minute=6))

    async def go():
        return await asyncio.gather(*(chain.agenerate(f"p{i}", size="64x64")
                                      for i in range(5)), return_exceptions=True)

    results = run_virtual(go())
    delivered = [r for r in results if isinstance(r, ChainResult)]
    failed = [r for r in results if isinstance(r, ChainError)]
    assert len(delivered) == 2  # calls at 0 s and 10 s; the next slot (20 s) misses the deadline
    assert len(failed) == 3
    assert a.calls == 2


def test_gcra_store_allows_bursts_and_refunds():
    async def go() -> None:
        store = MemoryCapacity()
        limits = Limits(images_per_minute=60, burst_images=3)
        assert [await store.try_acquire("k", 1, 0.0, limits) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert await store.try_acquire("k", 1, 0.0, limits) == pytest.approx(1.0)
        await store.refund("k", 1, limits)
        assert await store.try_acquire("k", 1, 0.0, limits) == 0.0
        assert await store.try_acquire("k", 2, 0.0, limits) == pytest.approx(2.0)

    run_virtual(go())


def test_bad_capacity_settings_are_rejected():
    with pytest.raises(ConfigurationError, match="images_per_minute"):
        Policy(images_per_minute=0)
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        Policy(providers={"a": {"max_concurrency": 0}}).for_provider("a")
