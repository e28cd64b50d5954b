"""Deadlines, cancellation, concurrency, the sync facade and the event stream."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from fallback_chain import Chain, ChainResult, ImageRequest, Outcome, Policy
from fallback_chain.errors import (
    ChainError,
    ConfigurationError,
    DeadlineExceededError,
    RequestValidationError,
)
from fallback_chain.events import AttemptFinished, Event, RequestFinished
from fallback_chain.imaging import placeholder_image, seed_for
from fallback_chain.provider import Capabilities
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.fake import Step
from fallback_chain.vtime import VirtualClock, run_virtual


def test_deadline_holds_across_providers_and_retries():
    clock = VirtualClock()
    a = FakeProvider("a", ["timeout"], clock=clock)
    b = FakeProvider("b", [Step(500, latency_s=3), Step(500, latency_s=3)], clock=clock)
    c = FakeProvider("c", clock=clock, latency_s=20)
    chain = Chain([a, b, c], clock=clock, attempt_timeout_s=10, deadline_s=15)

    async def go():
        t0 = clock.now()
        with pytest.raises(DeadlineExceededError) as info:
            await chain.agenerate("x")
        return info.value, clock.now() - t0

    err, elapsed = run_virtual(go())
    assert elapsed == pytest.approx(15.0, abs=1e-6)
    outcomes = [(x.provider, x.outcome.value) for x in err.attempts]
    assert outcomes[0] == ("a", "timeout")
    assert outcomes[-1][1] == "timeout"  # the last call was cut by the deadline
    assert isinstance(err, TimeoutError)


def test_timeout_outcome_when_provider_is_slower_than_the_attempt_timeout():
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=50)
    b = FakeProvider("b", clock=clock, latency_s=1)
    result = run_virtual(Chain([a, b], clock=clock, attempt_timeout_s=5).agenerate("x"))
    assert [(x.outcome.value, round(x.latency_s, 3)) for x in result.attempts] == [
        ("timeout", 5.0), ("success", 1.0)]
    assert result.latency_s == pytest.approx(6.0)


def test_cancelling_the_caller_cancels_the_attempt_and_leaks_no_task():
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=100)
    events: list[Event] = []
    chain = Chain([a], clock=clock, on_event=events.append)

    async def go():
        task = asyncio.ensure_future(chain.agenerate("x"))
        await clock.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    leftover = run_virtual(go())
    assert leftover == []
    finished = [e.attempt for e in events if isinstance(e, AttemptFinished)]
    assert [a.outcome for a in finished] == [Outcome.CANCELLED]
    assert finished[0].latency_s == pytest.approx(1.0)


def test_thousand_concurrent_requests_get_independent_attempt_lists():
    clock = VirtualClock()
    fakes = [
        FakeProvider("gemini", clock=clock, seed=1, latency_s=(0.5, 3.0),
                     rates={429: 0.2, 500: 0.1, "timeout": 0.02}),
        FakeProvider("leonardo", clock=clock, seed=2, latency_s=(1.0, 6.0),
                     rates={500: 0.3, "malformed_response": 0.05}),
        FakeProvider("openai", clock=clock, seed=3, latency_s=(2.0, 8.0), rates={429: 0.1}),
        FakeProvider("dalle", clock=clock, seed=4, latency_s=(1.0, 2.0)),
    ]
    # no breaker or cooldown interplay here: those are shared state by design
    chain = Chain(fakes, clock=clock, attempt_timeout_s=10,
                  policy=Policy(breaker_failures=10**6, cooldowns_s={"rate_limited": 0}))
    prompts = [f"brief {i}" for i in range(1000)]

    async def go():
        return await asyncio.gather(*(chain.agenerate(p, size="64x64") for p in prompts),
                                    return_exceptions=True)

    results = run_virtual(go())
    served = [r for r in results if isinstance(r, ChainResult)]
    assert len(served) == 1000  # the last provider never fails
    for prompt, r in zip(prompts, results, strict=True):
        assert isinstance(r, ChainResult)
        # the image is the one drawn for this request's prompt, not a neighbour's
        expected = hashlib.sha256(placeholder_image(64, 64, seed=seed_for(prompt))).hexdigest()
        assert r.image.sha256 == expected
        assert r.attempts[-1].outcome is Outcome.SUCCESS
        assert r.attempts[-1].provider == r.provider
        assert all(a.outcome is not Outcome.SUCCESS for a in r.attempts[:-1])
        per_provider: dict[str, int] = {}
        for a in r.attempts:
            per_provider[a.provider] = per_provider.get(a.provider, 0) + 1
            assert a.attempt == per_provider[a.provider]
    total_calls = sum(len(r.attempts) for r in served)
    assert total_calls == sum(f.calls for f in fakes)
    assert len({r.request_id for r in served}) == 1000


def test_sync_facade_runs_and_reuses_its_loop():
    chain = Chain([FakeProvider("a")])
    first = chain.generate("a cat", size="128x128")
    second = chain.generate(ImageRequest(prompt="a dog"), n=2)
    assert first.image.width == 128
    assert len(second.images) == 2
    chain.close()


def test_sync_facade_inside_a_running_loop_raises_clearly():
    chain = Chain([FakeProvider("a")])

    async def go():
        with pytest.raises(RuntimeError, match=r"await chain\.agenerate"):
            chain.generate("x")

    asyncio.run(go())


def test_invalid_request_reaches_no_provider():
    a = FakeProvider("a")
    chain = Chain([a])
    with pytest.raises(RequestValidationError, match="n: must be between 1 and 10"):
        chain.generate("x", n=11)
    with pytest.raises(RequestValidationError, match="prompt: must not be empty"):
        chain.generate("   ")
    assert a.calls == 0


def test_capability_skips_are_recorded_with_their_reason():
    clock = VirtualClock()
    small = FakeProvider("small", clock=clock, capabilities=Capabilities(max_n=1))
    rewriter = FakeProvider("rewriter", clock=clock,
                            capabilities=Capabilities(max_n=4, rewrites_prompt=True))
    fixed = FakeProvider("fixed", clock=clock,
                         capabilities=Capabilities(max_n=4, sizes=((1024, 1024),)))
    free = FakeProvider("free", clock=clock)
    chain = Chain([small, rewriter, fixed, free], clock=clock)
    result = run_virtual(chain.agenerate("x", n=2, exact_prompt=True, size="1536x1024",
                                         size_match="exact"))
    reasons = {a.provider: a.message for a in result.attempts if a.outcome is Outcome.SKIPPED}
    assert "n=2" in reasons["small"]
    assert "rewrites prompts" in reasons["rewriter"]
    assert "cannot produce 1536x1024" in reasons["fixed"]
    assert result.provider == "free"
    assert (result.image.width, result.image.height) == (1536, 1024)
    assert small.calls == rewriter.calls == fixed.calls == 0


def test_nearest_size_is_delivered_by_fixed_size_providers():
    fixed = FakeProvider("fixed", capabilities=Capabilities(
        sizes=((1024, 1024), (1536, 1024), (1024, 1536))))
    result = Chain([fixed]).generate("x", size="1920x1080")
    assert (result.image.width, result.image.height) == (1536, 1024)


def test_event_stream_and_error_summary():
    clock = VirtualClock()
    events: list[Event] = []
    chain = Chain([FakeProvider("a", [500, 500], clock=clock),
                   FakeProvider("b", [401], clock=clock)],
                  clock=clock, on_event=events.append)

    async def go():
        with pytest.raises(ChainError) as info:
            await chain.agenerate("x", metadata={"user": "u1"})
        return info.value

    err = run_virtual(go())
    assert "a#1 server_error 500; a#2 server_error 500; b#1 auth_error 401" in str(err)
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("AttemptFinished") == 3
    assert kinds[-1] == "RequestFinished"
    done = events[-1]
    assert isinstance(done, RequestFinished) and done.error is err and done.result is None
    assert all(e.metadata == {"user": "u1"} for e in events if isinstance(e, AttemptFinished))


def test_chain_construction_errors():
    with pytest.raises(ConfigurationError, match="at least one provider"):
        Chain([])
    with pytest.raises(ConfigurationError, match="more than once"):
        Chain([FakeProvider("a"), FakeProvider("a")])
    with pytest.raises(ConfigurationError, match="not a Provider"):
        Chain(["gemini"])  # type: ignore[list-item]


def test_a_failed_attempt_leaves_no_reference_cycle():
    import gc

    async def garbage_after(script):
        a = FakeProvider("a", script)
        chain = Chain([a, FakeProvider("b")], log=False, policy=Policy(backoff_initial_s=0))
        await chain.agenerate("warm up", size="64x64")
        a.script(script)
        gc.collect()
        gc.disable()
        try:
            await chain.agenerate("x", size="64x64")
            return gc.collect()
        finally:
            gc.enable()

    clean = asyncio.run(garbage_after([]))
    failing = asyncio.run(garbage_after([500, 500]))
    # the ProviderErrors' tracebacks used to keep ~40 objects per failed attempt alive in cycles
    assert failing - clean < 10
