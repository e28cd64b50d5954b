"""``Budget``: per-request ceilings, period caps with reservations, alerts, UTC roll-over."""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import UTC, datetime

import pytest

from fallback_chain.cost.budget import Budget, Reservation
from fallback_chain.cost.budget_store import BudgetStore, MemoryBudgetStore
from fallback_chain.events import BudgetAlert
from fallback_chain.vtime import VirtualClock, run_virtual


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# ---------------------------------------------------------------------------- per request

def test_refuse_request_against_the_per_request_ceiling():
    b = Budget(per_request_usd=0.10)
    assert b.refuse_request(0.0, 0.10) is None  # exactly at the cap is allowed
    assert b.refuse_request(0.04, 0.06) is None
    why = b.refuse_request(0.06, 0.05)
    assert why is not None and "per-request" in why and "0.1000" in why
    assert b.refuse_request(0.09, None) is None  # unknown cost: allowed while room is left
    assert b.refuse_request(0.10, None) is not None
    assert Budget().refuse_request(100.0, 100.0) is None  # no ceiling


# ---------------------------------------------------------------------- reserve / settle

def test_reserve_settle_release(manual_clock):
    async def go() -> None:
        b = Budget(daily_usd=1.0, monthly_usd=5.0, clock=manual_clock)
        r = await b.reserve(0.4)
        assert isinstance(r, Reservation)
        assert (await b.spent(), await b.reserved(), await b.reserved("month")) == (0.0, 0.4, 0.4)
        assert await b.remaining() == pytest.approx(0.6)
        await b.settle(r, 0.3)
        assert (await b.spent(), await b.reserved(), await b.spent("month")) == (0.3, 0.0, 0.3)
        r2 = await b.reserve(0.5)
        assert isinstance(r2, Reservation)
        await b.release(r2)
        await b.release(r2)  # releasing twice (or after settle) is a no-op
        assert (await b.spent(), await b.reserved()) == (0.3, 0.0)
        with pytest.raises(RuntimeError, match="already"):
            await b.settle(r, 0.1)

    run_virtual(go())


def test_a_reservation_that_does_not_fit_is_refused_and_books_nothing(manual_clock):
    async def go() -> None:
        b = Budget(daily_usd=1.0, clock=manual_clock, name="team-a")
        held = await b.reserve(0.7)
        assert isinstance(held, Reservation)
        why = await b.reserve(0.31)
        assert isinstance(why, str)
        assert "daily budget 'team-a'" in why and "$0.7000 reserved" in why
        assert await b.reserved() == pytest.approx(0.7)
        assert isinstance(await b.reserve(0.3), Reservation)  # exactly to the cap fits

    run_virtual(go())


def test_the_monthly_cap_applies_too(manual_clock):
    async def go() -> None:
        b = Budget(daily_usd=10.0, monthly_usd=1.0, clock=manual_clock)
        await b.settle(await b.reserve(0.9), 0.9)
        why = await b.reserve(0.2)
        assert isinstance(why, str) and "monthly" in why

    run_virtual(go())


def test_unknown_estimate_reserves_nothing_and_books_the_actual(manual_clock):
    async def go() -> None:
        b = Budget(daily_usd=1.0, clock=manual_clock)
        r = await b.reserve(None)
        assert isinstance(r, Reservation) and r.amount == 0 and not r.known
        assert await b.reserved() == 0
        await b.settle(r, 0.95)
        assert await b.spent() == pytest.approx(0.95)
        assert isinstance(await b.reserve(None), Reservation)  # room left: allowed
        await b.settle(await b.reserve(0.05), 0.05)
        assert isinstance(await b.reserve(None), str)  # used up: even an unknown cost is refused

    run_virtual(go())


def test_no_caps_still_tracks_spend(manual_clock):
    async def go() -> None:
        b = Budget(clock=manual_clock)
        r = await b.reserve(12.5)
        assert isinstance(r, Reservation)
        await b.settle(r, 12.5)
        assert await b.spent() == 12.5 and await b.spent("month") == 12.5
        assert await b.remaining() is None

    run_virtual(go())


def test_bad_arguments(manual_clock):
    async def go() -> None:
        with pytest.raises(ValueError, match="daily_usd"):
            Budget(daily_usd=-1)
        with pytest.raises(ValueError, match="thresholds"):
            Budget(alert_thresholds=(0.0,))
        with pytest.raises(ValueError, match="name"):
            Budget(name="a:b")
        b = Budget(daily_usd=1, clock=manual_clock)
        with pytest.raises(ValueError, match="estimate"):
            await b.reserve(float("nan"))
        r = await b.reserve(0.1)
        assert isinstance(r, Reservation)
        with pytest.raises(ValueError, match="actual"):
            await b.settle(r, -0.1)
        with pytest.raises(ValueError, match="period"):
            await b.spent("week")  # type: ignore[arg-type]

    run_virtual(go())


def test_memory_store_satisfies_the_protocol():
    assert isinstance(MemoryBudgetStore(), BudgetStore)


# ------------------------------------------------------------------------------ alerts

def test_alerts_fire_once_per_threshold_per_cap(manual_clock):
    async def go() -> None:
        alerts: list[BudgetAlert] = []
        b = Budget(daily_usd=1.0, monthly_usd=10.0, clock=manual_clock, name="ops")
        b.set_emitter(alerts.append, chain="main")
        for _ in range(7):
            await b.settle(await b.reserve(0.1), 0.1)
        assert alerts == []
        await b.settle(await b.reserve(0.1), 0.1)  # 0.80
        await b.settle(await b.reserve(0.05), 0.05)
        assert [(a.budget, a.threshold) for a in alerts] == [("ops/day", 0.8)]
        assert alerts[0] == BudgetAlert("main", "ops/day", 0.8, pytest.approx(0.8), 1.0)
        await b.settle(await b.reserve(0.15), 0.15)  # 1.00
        assert [(a.budget, a.threshold) for a in alerts] == [("ops/day", 0.8), ("ops/day", 1.0)]

    run_virtual(go())


def test_one_big_settlement_crosses_several_thresholds(manual_clock):
    async def go() -> None:
        alerts: list[BudgetAlert] = []
        b = Budget(daily_usd=1.0, clock=manual_clock, alert_thresholds=(0.5, 0.8, 1.0))
        b.set_emitter(alerts.append)
        await b.settle(await b.reserve(None), 1.2)  # an unknown cost that turned out large
        assert [a.threshold for a in alerts] == [0.5, 0.8, 1.0]

    run_virtual(go())


def test_a_failing_emitter_does_not_break_settlement(manual_clock):
    async def go() -> None:
        def boom(alert: BudgetAlert) -> None:
            raise RuntimeError("subscriber bug")

        b = Budget(daily_usd=0.1, clock=manual_clock)
        b.set_emitter(boom)
        await b.settle(await b.reserve(0.1), 0.1)
        assert await b.spent() == pytest.approx(0.1)

    run_virtual(go())


# -------------------------------------------------------------------------- concurrency

def test_200_concurrent_reservations_never_settle_more_than_the_daily_cap():
    clock = VirtualClock()
    rng = random.Random(7)
    alerts: list[BudgetAlert] = []
    budget = Budget(daily_usd=1.00, clock=clock)
    budget.set_emitter(alerts.append)
    settled: list[float] = []
    refusals = 0

    async def request(i: int) -> None:
        nonlocal refusals
        estimate = rng.choice([0.005, 0.01, 0.02, 0.035, 0.05])
        actual = rng.choice([estimate, estimate, estimate * 0.5, 0.0])  # never above
        for _ in range(5):  # a refused request comes back later, as a client would
            r = await budget.reserve(estimate)
            if isinstance(r, str):
                refusals += 1
                await clock.sleep(rng.uniform(0.5, 3.0))
                continue
            await clock.sleep(rng.uniform(0.1, 5.0))  # the provider call
            await budget.settle(r, actual)
            settled.append(actual)
            return

    async def main() -> tuple[float, float]:
        await asyncio.gather(*(request(i) for i in range(200)))
        return await budget.spent(), await budget.reserved()

    spent, reserved = run_virtual(main())
    assert refusals > 0  # the cap was actually contended
    assert sum(settled) <= 1.00 + 1e-12
    assert spent == pytest.approx(sum(settled), abs=1e-9)
    assert reserved == 0
    assert [a.threshold for a in alerts if a.budget == "default/day"].count(0.8) == 1


def test_concurrent_exact_fit_reaches_the_cap_and_no_further():
    clock = VirtualClock()
    alerts: list[BudgetAlert] = []
    budget = Budget(daily_usd=1.00, clock=clock)
    budget.set_emitter(alerts.append)
    outcomes: list[bool] = []

    async def request(i: int) -> None:
        r = await budget.reserve(0.01)
        outcomes.append(isinstance(r, Reservation))
        if isinstance(r, Reservation):
            await clock.sleep(1 + i % 7)
            await budget.settle(r, 0.01)

    async def main() -> float:
        await asyncio.gather(*(request(i) for i in range(200)))
        return await budget.spent()

    spent = run_virtual(main())
    assert outcomes.count(True) == 100  # 100 x $0.01 = $1.00 exactly (integer nano-USD)
    assert spent == 1.00
    assert [a.threshold for a in alerts] == [0.8, 1.0]


def test_actual_cost_above_the_estimate_is_booked_and_blocks_further_spend(manual_clock):
    async def go() -> None:
        b = Budget(daily_usd=1.0, clock=manual_clock)
        held = [await b.reserve(0.25) for _ in range(4)]
        assert all(isinstance(r, Reservation) for r in held)
        for r in held:
            await b.settle(r, 0.30)  # the vendor billed more than expected: the money is spent
        assert await b.spent() == pytest.approx(1.20)
        assert isinstance(await b.reserve(0.001), str)
        assert isinstance(await b.reserve(None), str)

    run_virtual(go())


def test_reservations_are_atomic_across_threads(manual_clock):
    """Several threads, each with its own event loop, share one budget and its store."""
    b = Budget(daily_usd=1.0, clock=manual_clock)
    won: list[Reservation] = []
    lock = threading.Lock()

    def worker() -> None:
        async def reserve_many() -> None:
            for _ in range(50):
                r = await b.reserve(0.01)
                if isinstance(r, Reservation):
                    with lock:
                        won.append(r)

        asyncio.run(reserve_many())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 100
    assert asyncio.run(b.reserved()) == 1.0


# ---------------------------------------------------------------------------- roll-over

def test_day_and_month_roll_over_at_utc_midnight():
    clock = VirtualClock(epoch=epoch("2026-01-31T23:59:00"))
    alerts: list[BudgetAlert] = []
    budget = Budget(daily_usd=1.0, monthly_usd=30.0, clock=clock)
    budget.set_emitter(alerts.append)

    async def main() -> dict[str, object]:
        out: dict[str, object] = {}
        await budget.settle(await budget.reserve(0.9), 0.9)  # 23:59:00, 90 % of the day
        late = await budget.reserve(0.1)  # reserved on the 31st, settled after midnight
        out["refused_before"] = isinstance(await budget.reserve(0.2), str)
        await clock.sleep(90)  # 00:00:30 on 1 February
        assert isinstance(late, Reservation)
        await budget.settle(late, 0.1)  # books into the 31st, where it was reserved
        out["day_after"] = await budget.spent("day")
        out["month_after"] = await budget.spent("month")
        r = await budget.reserve(0.9)
        out["fits_after"] = isinstance(r, Reservation)
        if isinstance(r, Reservation):
            await budget.settle(r, 0.9)
        out["day_end"] = await budget.spent("day")
        return out

    out = run_virtual(main())
    assert out == {"refused_before": True, "day_after": 0.0, "month_after": 0.0,
                   "fits_after": True, "day_end": 0.9}
    days = [(a.threshold, a.spent_usd) for a in alerts if a.budget == "default/day"]
    # 0.8 on the 31st, 1.0 when the late settlement completed the 31st, 0.8 again on the 1st
    assert days == [(0.8, 0.9), (1.0, pytest.approx(1.0)), (0.8, 0.9)]
