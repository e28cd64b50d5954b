"""Redis going away in the middle of a run: by default requests go on, on local state, with
one warning; with ``on_unavailable="fail"`` calls are refused (nothing is sent); when Redis is
back, shared state resumes."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis_helpers import RedisServer

from fallback_chain import Chain, Policy
from fallback_chain.cost.budget import Budget
from fallback_chain.errors import SharedStateUnavailableError
from fallback_chain.providers import FakeProvider
from fallback_chain.state import RedisState

pytestmark = pytest.mark.redis


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "fallback_chain.state" and r.levelno >= logging.WARNING]


def test_killing_redis_mid_run_carries_on_locally_with_one_warning(
        own_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    state = RedisState(own_redis.url, retry_s=0.05)
    provider = FakeProvider("a", price_usd=0.01)
    budget = Budget(daily_usd=100.0, name="acct")
    chain = Chain([provider, FakeProvider("b")], state=state, budget=budget, log=False,
                  policy=Policy(images_per_minute=60_000))

    async def go() -> tuple[list[str], bool, bool]:
        providers = []
        for i in range(20):
            providers.append((await chain.agenerate(f"before {i}")).provider)
        assert state.available
        own_redis.stop()  # SIGKILL: connections die mid-pool
        for i in range(200):
            providers.append((await chain.agenerate(f"during {i}")).provider)
            if i % 20 == 0:
                await asyncio.sleep(0.06)  # let the retry interval pass now and then
        down = state.available
        own_redis.start()
        await asyncio.sleep(0.06)
        for i in range(20):
            providers.append((await chain.agenerate(f"after {i}")).provider)
        up = state.available
        assert chain.budget is not None  # the copy bound to the chain books into Redis
        spent_shared = await chain.budget.spent()  # from Redis again (a fresh, empty server)
        await chain.aclose()
        assert spent_shared == pytest.approx(0.20)  # the 20 calls made after it came back
        return providers, down, up

    with caplog.at_level(logging.INFO, logger="fallback_chain.state"):
        providers, down, up = asyncio.run(go())
    assert providers == ["a"] * 240  # every request delivered, none failed over
    assert provider.calls == 240
    assert not down and up
    warned = warnings_of(caplog)
    assert len(warned) == 1, warned
    assert "unreachable" in warned[0] and "local state" in warned[0]
    assert str(own_redis.port) in warned[0]
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    assert state.link.outages == 1


def test_fail_closed_refuses_calls_while_redis_is_down(own_redis: RedisServer,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    state = RedisState(own_redis.url, on_unavailable="fail", retry_s=0.05)
    provider = FakeProvider("a")
    chain = Chain([provider], state=state, log=False)

    async def go() -> None:
        await chain.agenerate("fine")
        own_redis.stop()
        for _ in range(3):
            with pytest.raises(SharedStateUnavailableError, match="unreachable") as info:
                await chain.agenerate("refused")
            assert info.value.attempts == [] and info.value.request_id
        assert provider.calls == 1  # nothing was sent while the state was unknown
        own_redis.start()
        await asyncio.sleep(0.06)
        await chain.agenerate("fine again")
        assert provider.calls == 2
        await chain.aclose()

    with caplog.at_level(logging.WARNING, logger="fallback_chain.state"):
        asyncio.run(go())
    assert len(warnings_of(caplog)) == 1


def test_an_unreachable_redis_from_the_start_is_one_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listens on the port: connection refused is immediate, and while Redis is
    down no request pays for a connection attempt (one try per ``retry_s``)."""
    from redis_helpers import free_port

    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", retry_s=60)
    chain = Chain([FakeProvider("a", rates={500: 1.0}), FakeProvider("b")], state=state,
                  log=False, policy=Policy(breaker_failures=3, retries={"server_error": 0}))

    async def go() -> list[str]:
        outcomes = []
        for i in range(10):
            result = await chain.agenerate(f"p{i}")
            outcomes.append(result.attempts[0].outcome.value)
        await chain.aclose()
        return outcomes

    with caplog.at_level(logging.WARNING, logger="fallback_chain.state"):
        outcomes = asyncio.run(go())
    # the local breaker still works: three failures open it
    assert outcomes == ["server_error"] * 3 + ["breaker_open"] * 7
    assert len(warnings_of(caplog)) == 1
