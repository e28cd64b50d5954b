"""The Redis stores against a real redis-server: every check-and-change is atomic across
workers (here: several ``RedisState`` objects, each with its own connections), keys are
namespaced per chain, and the semantics match the in-process stores."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fallback_chain import Chain, Policy
from fallback_chain.cost.budget import Budget, Reservation
from fallback_chain.errors import ConfigurationError
from fallback_chain.events import BudgetAlert
from fallback_chain.providers import FakeProvider
from fallback_chain.resilience.breaker import Admission, BreakerRules
from fallback_chain.resilience.capacity import Limits
from fallback_chain.state import RedisState
from fallback_chain.state.redis.backend import RedisBound

pytestmark = pytest.mark.redis


class ManualClock:
    """A wall clock the test moves by hand (the scripts' time source)."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


def run(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return asyncio.run(fn(*args))


def workers(url: str, n: int, clock: ManualClock | None = None,
            namespace: str = "chain") -> list[tuple[RedisState, RedisBound]]:
    """``n`` independent views of one Redis (as ``n`` worker processes would have)."""
    out = []
    for _ in range(n):
        state = RedisState(url, clock=clock)
        out.append((state, state.bind(namespace, clock or ManualClock())))
    return out


async def close(views: list[tuple[RedisState, RedisBound]]) -> None:
    for state, _ in views:
        await state.aclose()


# ------------------------------------------------------------------------------ breaker

def test_a_breaker_opened_by_one_worker_is_open_for_the_others(redis_url: str) -> None:
    async def go() -> None:
        clock = ManualClock()
        views = workers(redis_url, 3, clock)
        rules = BreakerRules(fail_max=3, reset_timeout_s=30.0)
        one, two, three = (b.breakers for _, b in views)
        changes = []
        for _ in range(3):
            verdict = await one.admit("gemini", rules)
            assert verdict.admission is Admission.PASS
            changes.append(await one.record("gemini", verdict.admission, False, rules))
        assert changes == [None, None, ("closed", "open")]
        for other in (two, three):
            verdict = await other.admit("gemini", rules)
            assert (verdict.admission, verdict.state) == (Admission.REJECT, "open")
            assert verdict.probe_in_s == pytest.approx(30.0)
        assert (await two.admit("openai", rules)).admission is Admission.PASS  # per key
        await close(views)

    run(go)


def test_half_open_grants_exactly_one_probe_across_workers(redis_url: str) -> None:
    async def go() -> None:
        clock = ManualClock()
        views = workers(redis_url, 4, clock)
        rules = BreakerRules(fail_max=1, reset_timeout_s=10.0)
        stores = [b.breakers for _, b in views]
        first = await stores[0].admit("k", rules)
        await stores[0].record("k", first.admission, False, rules)
        clock.t += 10.0
        verdicts = await asyncio.gather(*(s.admit("k", rules) for s in stores for _ in range(25)))
        probes = [v for v in verdicts if v.admission is Admission.PROBE]
        assert len(probes) == 1 and len(verdicts) == 100
        assert sum(v.changed_from == "open" for v in verdicts) == 1  # one open -> half-open
        holder = next(s for s, v in zip([s for s in stores for _ in range(25)], verdicts,
                                        strict=True) if v.admission is Admission.PROBE)
        # an inconclusive probe (a 429) frees the lease; a healthy one closes the breaker
        assert await holder.record("k", Admission.PROBE, None, rules) is None
        again = await stores[3].admit("k", rules)
        assert again.admission is Admission.PROBE
        assert await stores[3].record("k", Admission.PROBE, True, rules) == ("half-open",
                                                                             "closed")
        assert (await stores[1].admit("k", rules)).admission is Admission.PASS
        await close(views)

    run(go)


def test_a_probe_lease_expires_when_its_worker_dies(redis_url: str) -> None:
    async def go() -> None:
        clock = ManualClock()
        views = workers(redis_url, 2, clock)
        rules = BreakerRules(fail_max=1, reset_timeout_s=5.0, probe_lease_s=0.2)
        dead, alive = (b.breakers for _, b in views)
        await dead.record("k", (await dead.admit("k", rules)).admission, False, rules)
        clock.t += 5.0
        assert (await dead.admit("k", rules)).admission is Admission.PROBE  # then it "dies"
        assert (await alive.admit("k", rules)).admission is Admission.REJECT
        await asyncio.sleep(0.3)  # the lease is a Redis key with a TTL (real time)
        assert (await alive.admit("k", rules)).admission is Admission.PROBE
        await close(views)

    run(go)


def test_a_failed_probe_reopens_and_reset_closes(redis_url: str) -> None:
    async def go() -> None:
        clock = ManualClock()
        [(state, bound)] = workers(redis_url, 1, clock)
        rules = BreakerRules(fail_max=2, reset_timeout_s=5.0)
        store = bound.breakers
        for _ in range(2):
            await store.record("k", Admission.PASS, False, rules)
        assert store.peek("k") == "open"
        clock.t += 5.0
        probe = await store.admit("k", rules)
        assert probe.admission is Admission.PROBE
        assert await store.record("k", probe.admission, False, rules) == ("half-open", "open")
        assert (await store.admit("k", rules)).probe_in_s == pytest.approx(5.0)
        assert await store.reset("k") == ("open", "closed")
        assert (await store.admit("k", rules)).admission is Admission.PASS
        await state.aclose()

    run(go)


# ---------------------------------------------------------------------------- cooldowns

def test_cooldowns_are_shared_never_shortened_and_expire(redis_url: str) -> None:
    async def go() -> None:
        clock = ManualClock()
        views = workers(redis_url, 2, clock)
        one, two = (b.cooldowns for _, b in views)
        assert await two.remaining("k", 0.0) == 0.0
        assert await one.start("k", 30.0, 100.0) == pytest.approx(130.0)  # chain-clock time
        assert await two.remaining("k", 0.0) == pytest.approx(30.0)
        assert await two.start("k", 5.0, 0.0) == pytest.approx(30.0)  # not shortened
        clock.t += 29.0
        assert await one.remaining("k", 0.0) == pytest.approx(1.0)
        clock.t += 1.5
        assert await one.remaining("k", 0.0) == 0.0
        await one.start("j", 60.0, 0.0)
        await two.clear("j")
        assert await one.remaining("j", 0.0) == 0.0
        await close(views)

    run(go)


def test_cooldown_keys_carry_a_ttl(redis_url: str) -> None:
    async def go() -> None:
        [(state, bound)] = workers(redis_url, 1)
        await bound.cooldowns.start("gemini", 12.0, 0.0)
        ttl = await state.link.client().pttl("fc:{chain}:cooldown:gemini")
        assert 12_000 < ttl <= 13_000
        await state.aclose()

    run(go)


# ---------------------------------------------------------------------------- capacity

def test_the_rate_limit_is_one_gcra_for_all_workers(redis_url: str) -> None:
    async def go() -> None:
        clock = ManualClock()
        views = workers(redis_url, 4, clock)
        limits = Limits(images_per_minute=10)  # one image every 6 s
        answers = await asyncio.gather(*(b.capacity.try_acquire("k", 1, 0.0, limits)
                                         for _, b in views for _ in range(5)))
        assert answers.count(0.0) == 1
        assert all(a == pytest.approx(6.0) for a in answers if a != 0.0)
        clock.t += 6.0
        granted = [await b.capacity.try_acquire("k", 1, 0.0, limits) for _, b in views]
        assert granted.count(0.0) == 1
        # a granted call that is not made gives its rate back
        await views[0][1].capacity.refund("k", 1, limits)
        assert await views[1][1].capacity.try_acquire("k", 1, 0.0, limits) == 0.0
        await close(views)

    run(go)


def test_in_flight_slots_are_shared_and_leases_expire(redis_url: str) -> None:
    async def go() -> None:
        clock = ManualClock()
        views = workers(redis_url, 2, clock)
        one, two = (b.capacity for _, b in views)
        limits = Limits(max_concurrency=2)
        assert await one.try_acquire("k", 1, 0.0, limits) == 0.0
        assert await two.try_acquire("k", 1, 0.0, limits) == 0.0
        assert await two.try_acquire("k", 1, 0.0, limits) is None  # both slots held
        await one.release("k", limits)
        assert await two.try_acquire("k", 1, 0.0, limits) == 0.0
        clock.t += 901.0  # a worker that died holding slots loses them after lease_s
        assert await one.try_acquire("k", 1, 0.0, limits) == 0.0
        await close(views)

    run(go)


# ------------------------------------------------------------------------------ budgets

def test_concurrent_reservations_never_overshoot_and_settle_exactly(redis_url: str) -> None:
    async def go() -> tuple[int, float, float]:
        views = workers(redis_url, 4)
        budgets = [Budget(daily_usd=1.0, store=b.budgets, name="acct") for _, b in views]

        async def one(budget: Budget) -> bool:
            r = await budget.reserve(0.03)
            if isinstance(r, str):
                return False
            await asyncio.sleep(0)
            await budget.settle(r, 0.03)
            return True

        won = await asyncio.gather(*(one(b) for b in budgets for _ in range(40)))
        spent, reserved = await budgets[0].spent(), await budgets[2].reserved()
        await close(views)
        return sum(won), spent, reserved

    granted, spent, reserved = run(go)
    assert granted == 33  # floor(1.00 / 0.03): never 34
    assert spent == pytest.approx(0.99) and reserved == 0.0


def test_budget_alerts_fire_once_across_workers(redis_url: str) -> None:
    async def go() -> list[BudgetAlert]:
        views = workers(redis_url, 3)
        alerts: list[BudgetAlert] = []
        budgets = []
        for _, b in views:
            budget = Budget(daily_usd=1.0, store=b.budgets, name="acct")
            budget.set_emitter(alerts.append)  # type: ignore[arg-type]
            budgets.append(budget)
        for i in range(10):
            r = await budgets[i % 3].reserve(0.1)
            assert isinstance(r, Reservation)
            await budgets[i % 3].settle(r, 0.1)
        await close(views)
        return alerts

    alerts = run(go)
    assert [(a.budget, a.threshold) for a in alerts] == [("acct/day", 0.8), ("acct/day", 1.0)]


# ------------------------------------------------------------------- chains and naming

def test_chains_with_different_names_never_share_state(redis_url: str) -> None:
    policy = Policy(retries={"server_error": 0}, breaker_failures=2)

    async def go() -> tuple[str, str]:
        sick = Chain([FakeProvider("a", script=[500] * 5), FakeProvider("b")], name="blog",
                     state=redis_url, policy=policy, log=False)
        for i in range(2):
            await sick.agenerate(f"p{i}")
        other = Chain([FakeProvider("a"), FakeProvider("b")], name="social",
                      state=redis_url, policy=policy, log=False)
        same = Chain([FakeProvider("a"), FakeProvider("b")], name="blog",
                     state=RedisState(redis_url), policy=policy, log=False)
        seen_by_other = (await other.agenerate("x")).provider
        seen_by_same = (await same.agenerate("x")).provider
        for chain in (sick, other, same):
            await chain.aclose()
        return seen_by_other, seen_by_same

    assert run(go) == ("a", "b")


def test_a_namespace_makes_two_chains_share(redis_url: str) -> None:
    async def go() -> list[str]:
        a = Chain([FakeProvider("a", script=[429]), FakeProvider("b")], name="one",
                  state=RedisState(redis_url, namespace="acme"), log=False)
        await a.agenerate("x")  # a 429 cools "a" down for everyone in "acme"
        b = Chain([FakeProvider("a"), FakeProvider("b")], name="two",
                  state=RedisState(redis_url, namespace="acme"), log=False)
        result = await b.agenerate("y")
        await a.aclose()
        await b.aclose()
        return [x.outcome.value for x in result.attempts]

    assert run(go) == ["cooling_down", "success"]


def test_the_chain_budget_uses_the_shared_store(redis_url: str) -> None:
    async def go() -> float:
        budgets = [Budget(daily_usd=1.0, name="acct") for _ in range(2)]
        chains = [Chain([FakeProvider("a", price_usd=0.25)], state=RedisState(redis_url),
                        budget=b, log=False) for b in budgets]
        for chain in chains:
            await chain.agenerate("x")
        # the caller's budgets are unchanged (their own, empty, in-process totals); the
        # copies bound to the chains book into Redis, and each reads both chains' spend
        assert [await b.spent() for b in budgets] == [0.0, 0.0]
        assert chains[0].budget is not None
        spent = await chains[0].budget.spent()
        for chain in chains:
            await chain.aclose()
        return spent

    assert run(go) == pytest.approx(0.5)


def test_bad_urls_and_passwords_stay_out_of_sight(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigurationError, match="not a Redis URL"):
        RedisState("http://127.0.0.1:6379")
    with pytest.raises(ConfigurationError, match="on_unavailable"):
        RedisState("redis://x", on_unavailable="maybe")  # type: ignore[arg-type]
    state = RedisState("redis://:hunter2-sekret@127.0.0.1:1/0", retry_s=60)
    assert "hunter2-sekret" not in repr(state) and "***" in repr(state)

    async def go() -> None:
        chain = Chain([FakeProvider("a")], state=state, log=False)
        await chain.agenerate("x")
        await chain.aclose()

    with caplog.at_level(logging.DEBUG):
        run(go)
    assert caplog.records and all("hunter2-sekret" not in r.getMessage()
                                  for r in caplog.records)


def test_chain_state_must_be_a_backend_or_url() -> None:
    with pytest.raises(ConfigurationError, match="state must be"):
        Chain([FakeProvider("a")], state=42)  # type: ignore[arg-type]


def test_the_success_path_costs_two_round_trips_and_still_resets_failures(
        redis_url: str) -> None:
    """Cooldown check and breaker admission; a success on a closed breaker with no failures
    counted has nothing to record. A success after another worker's failure resets it."""
    policy = Policy(breaker_failures=2, retries={"server_error": 0})

    async def go() -> tuple[float, list[str]]:
        state_a, state_b = RedisState(redis_url), RedisState(redis_url)
        a = Chain([FakeProvider("p"), FakeProvider("q")], state=state_a, policy=policy,
                  log=False)
        b_sick = FakeProvider("p", script=[500, 500])
        b = Chain([b_sick, FakeProvider("q")], state=state_b, policy=policy, log=False)
        for i in range(10):
            await a.agenerate(f"warm {i}")
        before = state_a.link.round_trips
        for i in range(50):
            await a.agenerate(f"p{i}")
        per_request = (state_a.link.round_trips - before) / 50
        await b.agenerate("fails once")  # failures: 1
        await a.agenerate("succeeds")  # sees 1 failure at admission, so resets it
        await b.agenerate("fails again")  # failures: 1 again, not 2: still closed
        outcomes = [x.outcome.value for x in (await b.agenerate("ok")).attempts]
        await a.aclose()
        await b.aclose()
        return per_request, outcomes

    per_request, outcomes = run(go)
    assert per_request == 2.0
    assert outcomes == ["success"]
