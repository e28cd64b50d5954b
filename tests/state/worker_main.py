"""One worker process of the multi-worker tests: builds a chain on shared Redis state and
hammers it, then writes what it saw as JSON.

    python worker_main.py MODE REDIS_URL OUT_JSON [key=value ...]

Modes: ``rate`` (one emulated OpenAI provider, 10 images/min, on a scaled clock), ``breaker``
(a failing provider and a backup; the breaker opens and probes), ``budget`` (paid calls
against one daily cap), ``quota`` (two tenants' daily caps).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from fallback_chain import Chain, Policy
from fallback_chain.cost.budget import Budget
from fallback_chain.errors import ChainError
from fallback_chain.events import BreakerStateChanged, Event
from fallback_chain.providers import FakeProvider
from fallback_chain.state import RedisState


class ScaledClock:
    """Wall time running ``scale`` times faster from ``epoch`` (shared by every worker on the
    machine, so all agree): a minute of the limiter passes in 60 / scale real seconds."""

    def __init__(self, epoch: float, scale: float) -> None:
        self.epoch = epoch
        self.scale = scale

    def now(self) -> float:
        return self.wall()

    def wall(self) -> float:
        return self.epoch + (time.time() - self.epoch) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


async def wait_until(t: float) -> None:
    """Every worker begins at the same moment."""
    await asyncio.sleep(max(0.0, t - time.time()))


async def hammer(chain: Chain, until: float, concurrency: int) -> dict[str, int]:
    tally = {"delivered": 0, "failed": 0}

    async def loop(n: int) -> None:
        i = 0
        while time.time() < until:
            i += 1
            try:
                await chain.agenerate(f"worker {os.getpid()} request {n}-{i}", size="1024x1024")
                tally["delivered"] += 1
            except ChainError:
                tally["failed"] += 1

    await asyncio.gather(*(loop(n) for n in range(concurrency)))
    return tally


async def rate(url: str, opts: dict[str, str]) -> dict[str, Any]:
    from fallback_chain.providers import OpenAIProvider

    clock = ScaledClock(float(opts["epoch"]), float(opts["scale"]))
    provider = OpenAIProvider(model="gpt-image-2", api_key="test-key",
                              base_url=opts["emulator"] + "/v1")
    policy = Policy(images_per_minute=10, rate_margin_s=float(opts["margin"]),
                    max_wait_s=10_000, max_cooldown_wait_s=10_000, max_rounds=1000)
    state = RedisState(url, clock=clock, namespace="rate-test")
    chain = Chain([provider], policy=policy, clock=clock, log=False, state=state)
    # warm up (the SDK's import and connection pool) so that the time from the limiter's
    # grant to the request's arrival is that of a running worker, not of a cold start
    assert (await provider.check()).ok
    await wait_until(float(opts["epoch"]))
    tally = await hammer(chain, float(opts["until"]), 4)
    await chain.aclose()
    return {**tally, "outages": state.link.outages}


async def breaker(url: str, opts: dict[str, str]) -> dict[str, Any]:
    opened: list[float] = []

    def on_event(event: Event) -> None:
        if isinstance(event, BreakerStateChanged) and event.new == "open":
            opened.append(time.time())

    sick = FakeProvider("sick", rates={500: 1.0}, latency_s=0.005)
    backup = FakeProvider("backup")
    policy = Policy(retries={"server_error": 0}, breaker_failures=3,
                    breaker_reset_s=float(opts["reset"]))
    chain = Chain([sick, backup], policy=policy, on_event=on_event, log=False,
                  state=RedisState(url, namespace="breaker-test"))
    await wait_until(float(opts["start"]))
    calls: list[float] = []
    skips: list[float] = []
    until = float(opts["until"])
    while time.time() < until:
        result = await chain.agenerate("x")
        for a in result.attempts:
            if a.provider == "sick":
                (calls if a.outcome.was_called else skips).append(a.started_at.timestamp())
        await asyncio.sleep(0.002)
    await chain.aclose()
    return {"calls": calls, "skips": skips, "opened": opened}


async def budget(url: str, opts: dict[str, str]) -> dict[str, Any]:
    cap = Budget(daily_usd=float(opts["cap"]), name="account")
    paid = FakeProvider("paid", price_usd=float(opts["price"]), latency_s=0.01)
    chain = Chain([paid], budget=cap, log=False,
                  state=RedisState(url, namespace="budget-test"))
    await wait_until(float(opts["start"]))
    outcomes = await asyncio.gather(*(chain.agenerate(f"p{i}") for i in range(
        int(opts["requests"]))), return_exceptions=True)
    delivered = sum(1 for o in outcomes if not isinstance(o, BaseException))
    refused = sum(1 for o in outcomes if isinstance(o, ChainError))
    others = [repr(o) for o in outcomes
              if isinstance(o, BaseException) and not isinstance(o, ChainError)]
    assert chain.budget is not None  # the copy bound to the chain books into Redis
    spent = await chain.budget.spent()
    await chain.aclose()
    return {"delivered": delivered, "refused": refused, "others": others, "spent": spent,
            "paid_calls": paid.calls}


async def quota(url: str, opts: dict[str, str]) -> dict[str, Any]:
    """Two tenants on one chain: alice capped at ``cap`` USD a day, bob at ``bob_cap``."""
    from fallback_chain.cost import Limit, Quotas
    from fallback_chain.errors import QuotaExceededError
    from fallback_chain.events import TenantQuotaAlert

    alerts: list[list[Any]] = []

    def on_event(event: Event) -> None:
        if isinstance(event, TenantQuotaAlert):
            alerts.append([event.tenant, event.limit, event.threshold])

    quotas = Quotas(per_user=Limit(daily_usd=float(opts["cap"])),
                    overrides={"bob": Limit(daily_usd=float(opts["bob_cap"]))})
    paid = FakeProvider("paid", price_usd=float(opts["price"]), latency_s=0.01)
    # a generous socket timeout: on a loaded machine a script that ran but answered late
    # would count as an outage, and its reservation would be held (this test is about
    # atomicity; outages are docs/state.md's and test_redis_outage.py's)
    state = RedisState(url, namespace="quota-test", socket_timeout_s=10.0)
    chain = Chain([paid], quotas=quotas, log=False, on_event=on_event, state=state)
    await wait_until(float(opts["start"]))
    users = ["alice", "bob"] * int(opts["requests"])
    outcomes = await asyncio.gather(*(chain.agenerate(f"p{i}", user=u)
                                      for i, u in enumerate(users)), return_exceptions=True)
    tally: dict[str, Any] = {"alerts": alerts, "others": [], "outages": state.link.outages}
    for user, o in zip(users, outcomes, strict=True):
        if isinstance(o, QuotaExceededError):
            assert o.tenant == user
            tally[f"{user}_refused"] = tally.get(f"{user}_refused", 0) + 1
        elif isinstance(o, BaseException):
            tally["others"].append(repr(o))
        else:
            tally[f"{user}_delivered"] = tally.get(f"{user}_delivered", 0) + 1
            tally[f"{user}_paid"] = tally.get(f"{user}_paid", 0.0) + o.cost_usd
    assert chain.quotas is not None
    for user in ("alice", "bob"):
        tally[f"{user}_spent"] = await chain.quotas.used("user", user, "daily_usd")
    await chain.aclose()
    return tally


MODES = {"rate": rate, "breaker": breaker, "budget": budget, "quota": quota}


def main() -> None:
    mode, url, out = sys.argv[1:4]
    opts = dict(arg.split("=", 1) for arg in sys.argv[4:])
    result = asyncio.run(MODES[mode](url, opts))
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
