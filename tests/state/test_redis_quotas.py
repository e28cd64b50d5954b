"""Tenant quotas on Redis (issue 19): two chains (two workers' worth of connections) share a
tenant's totals; Redis holds digests of tenant ids, never the ids."""

from __future__ import annotations

import asyncio

import pytest

from fallback_chain import Chain
from fallback_chain.cost import Limit, Quotas
from fallback_chain.cost.quotas import digest
from fallback_chain.errors import QuotaExceededError
from fallback_chain.providers import FakeProvider
from fallback_chain.state import RedisState

pytestmark = pytest.mark.redis


def test_two_workers_share_a_tenants_quota_and_redis_never_holds_the_id(redis_url: str) -> None:
    async def go() -> tuple[list[object], list[str], float]:
        chains = [Chain([FakeProvider("p", price_usd=0.01)], log=False,
                        state=RedisState(redis_url, namespace="quota-keys"),
                        quotas=Quotas(per_user=Limit(daily_images=3, monthly_usd=1.0)))
                  for _ in range(2)]
        out = []
        for i in range(4):
            try:
                out.append(await chains[i % 2].agenerate("x", user="alice@example.com"))
            except QuotaExceededError as exc:
                out.append(exc)
        await chains[0].agenerate("x", user="bob")
        state = chains[0].state
        assert isinstance(state, RedisState)
        keys = [str(k) for k in await state.link.client().keys("*")]
        assert chains[1].quotas is not None
        used = await chains[1].quotas.used("user", "alice@example.com", "monthly_usd")
        for c in chains:
            await c.aclose()
        return out, keys, used

    out, keys, used = asyncio.run(go())
    assert [type(o).__name__ for o in out] == ["ChainResult"] * 3 + ["QuotaExceededError"]
    assert used == pytest.approx(0.03)
    assert keys and not any("alice" in k or "bob" in k for k in keys)
    assert any(digest("alice@example.com") in k for k in keys)
