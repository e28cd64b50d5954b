"""Tenant quotas (issue 19): per-user and per-project caps on images and USD, reserved before
every attempt and settled after it, like the period budget."""

from __future__ import annotations

import asyncio
import contextlib
import pickle

import pytest

from fallback_chain import Chain, ChainResult, Outcome
from fallback_chain.cost import Limit, Quotas
from fallback_chain.cost.quotas import digest
from fallback_chain.errors import BudgetExceededError, QuotaExceededError
from fallback_chain.events import Event, TenantQuotaAlert
from fallback_chain.providers import FakeProvider
from fallback_chain.request import ImageRequest
from fallback_chain.vtime import VirtualClock, run_virtual


def test_alice_hits_her_cap_and_bob_is_still_served():
    clock = VirtualClock()
    events: list[Event] = []
    fake = FakeProvider("a", clock=clock, price_usd=0.04, latency_s=0.1)
    quotas = Quotas(per_user=Limit(daily_usd=0.10))
    chain = Chain([fake], clock=clock, quotas=quotas, on_event=events.append, log=False)

    async def go():
        out = []
        for who in ("alice", "alice", "alice", "bob"):
            try:
                out.append(await chain.agenerate("a cat", size="64x64", user=who))
            except BudgetExceededError as exc:
                out.append(exc)
        return out

    first, second, third, bob = run_virtual(go())
    assert isinstance(first, ChainResult) and isinstance(second, ChainResult)
    assert isinstance(third, QuotaExceededError)  # $0.08 spent + $0.04 > $0.10
    assert (third.kind, third.tenant, third.limit) == ("user", "alice", "daily_usd")
    assert "alice" in str(third) and "daily_usd" in str(third)
    assert third.attempts[0].outcome is Outcome.BUDGET_EXCEEDED
    assert fake.calls == 3  # nothing was sent for alice's third request
    assert isinstance(bob, ChainResult)
    assert "alice" not in repr(bob.attempts)
    alerts = [e for e in events if isinstance(e, TenantQuotaAlert)]
    assert [(a.tenant, a.limit, a.threshold) for a in alerts] == [("alice", "daily_usd", 0.8)]
    assert pickle.loads(pickle.dumps(third)).tenant == "alice"


def test_images_per_day_overrides_and_projects():
    clock = VirtualClock()
    fake = FakeProvider("a", clock=clock, price_usd=0.0, latency_s=0.1)
    quotas = Quotas(per_user=Limit(daily_images=2), overrides={"vip": Limit(daily_images=5)},
                    per_project=Limit(monthly_images=6))
    chain = Chain([fake], clock=clock, quotas=quotas, log=False)

    async def ask(user: str, project: str | None = None, n: int = 1) -> str:
        try:
            await chain.agenerate("x", size="64x64", user=user, project=project, n=n)
        except QuotaExceededError as exc:
            return f"{exc.kind}:{exc.limit}"
        return "ok"

    async def go():
        return [await ask("carol"), await ask("carol"), await ask("carol"),
                await ask("vip", n=4), await ask("vip", n=2), await ask("vip"),
                await ask("dan", "p1", n=2), await ask("erin", "p1", n=2),
                await ask("gina", "p1", n=1), await ask("frank", "p1", n=2),
                await ask("frank")]

    assert run_virtual(go()) == [
        "ok", "ok", "user:daily_images",
        "ok", "user:daily_images", "ok",
        "ok", "ok", "ok", "project:monthly_images",  # the project's 6 images are used up
        "ok"]  # without the project frank is served


def test_a_failed_call_costs_usd_but_books_no_image_and_a_new_day_resets():
    clock = VirtualClock()
    broken = FakeProvider("broken", clock=clock, rates={500: 1.0}, price_usd=0.01,
                          latency_s=0.1)
    good = FakeProvider("good", clock=clock, price_usd=0.01, latency_s=0.1)
    quotas = Quotas(per_user=Limit(daily_images=1))
    chain = Chain([broken, good], clock=clock, quotas=quotas, log=False)

    async def go():
        await chain.agenerate("x", size="64x64", user="u")
        with pytest.raises(QuotaExceededError):
            await chain.agenerate("x", size="64x64", user="u")
        used = await chain.quotas.used("user", "u", "daily_images")  # type: ignore[union-attr]
        await clock.sleep(86400)
        await chain.agenerate("x", size="64x64", user="u")
        return used

    assert run_virtual(go()) == 1.0


def test_concurrent_requests_of_one_tenant_never_overshoot():
    clock = VirtualClock()
    fake = FakeProvider("a", clock=clock, price_usd=0.013, latency_s=(0.5, 2.0), seed=3)
    quotas = Quotas(per_user=Limit(daily_usd=1.00))
    chain = Chain([fake], clock=clock, quotas=quotas, log=False)

    async def go():
        reqs = [chain.agenerate(f"p{i}", size="64x64", user=("a" if i % 2 else "b"))
                for i in range(300)]
        return await asyncio.gather(*reqs, return_exceptions=True)

    results = run_virtual(go())
    for who in ("a", "b"):
        mine = [r for i, r in enumerate(results) if (i % 2 == 1) == (who == "a")]
        delivered = [r for r in mine if isinstance(r, ChainResult)]
        assert len(delivered) == int(1.00 // 0.013)  # 76 each: the caps are separate
        assert sum(r.cost_usd for r in delivered) <= 1.00
        assert all(isinstance(r, QuotaExceededError) for r in mine if r not in delivered)


def test_store_keys_carry_digests_not_tenant_ids():
    clock = VirtualClock()
    quotas = Quotas(per_user=Limit(daily_usd=1.0, monthly_images=10))
    chain = Chain([FakeProvider("a", clock=clock)], clock=clock, quotas=quotas, log=False)
    run_virtual(chain.agenerate("x", size="64x64", user="alice@example.com"))
    assert chain.quotas is not None and chain.quotas.store is quotas.store  # in the process
    keys = list(quotas.store._totals)  # type: ignore[attr-defined]
    assert keys and all("alice" not in k for k in keys)
    assert any(digest("alice@example.com") in k for k in keys)


def test_requests_without_a_tenant_are_not_limited_and_ids_are_validated():
    clock = VirtualClock()
    chain = Chain([FakeProvider("a", clock=clock)], clock=clock, log=False,
                  quotas=Quotas(per_user=Limit(daily_images=0)))
    assert isinstance(run_virtual(chain.agenerate("x", size="64x64")), ChainResult)
    with pytest.raises(QuotaExceededError):
        run_virtual(chain.agenerate("x", size="64x64", user="z"))
    for bad in ("", " padded", "a\nb"):
        with pytest.raises(ValueError, match="user"):
            ImageRequest(prompt="x", user=bad)
    with pytest.raises(ValueError, match="daily_images"):
        Limit(daily_images=-1)


def test_the_ledger_records_the_tenant_and_the_report_splits_spend_by_it(tmp_path):
    from fallback_chain.cost import Ledger, cost_report

    clock = VirtualClock()
    ledger = Ledger(tmp_path / "ledger.db")
    fake = FakeProvider("a", clock=clock, price_usd=0.02, latency_s=0.1)
    chain = Chain([fake], clock=clock, on_event=ledger, log=False,
                  quotas=Quotas(per_user=Limit(daily_images=2)))

    async def go():
        for user, project in (("alice", "p1"), ("alice", "p1"), ("alice", None),
                              ("bob", "p2"), (None, None)):
            with contextlib.suppress(QuotaExceededError):
                await chain.agenerate("x", size="64x64", user=user, project=project)

    run_virtual(go())
    report = cost_report(ledger, by=["user", "project"])
    by_user = {r.key: (r.spent_usd, r.delivered, r.attempts) for r in report.sections["user"]}
    assert by_user == {"alice": (pytest.approx(0.04), 2, 3), "bob": (pytest.approx(0.02), 1, 1),
                       "(none)": (pytest.approx(0.02), 1, 1)}
    by_project = {r.key: r.spent_usd for r in report.sections["project"]}
    assert by_project == {"p1": pytest.approx(0.04), "p2": pytest.approx(0.02),
                          "(none)": pytest.approx(0.02)}
    assert {r["user"] for r in ledger.rows()} == {"alice", "bob", None}
    ledger.close()


def test_a_version_1_ledger_is_migrated(tmp_path):
    import sqlite3

    from fallback_chain.cost import Ledger, cost_report

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE attempts (id INTEGER PRIMARY KEY, chain TEXT NOT NULL,
          request_id TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
          attempt INTEGER NOT NULL, outcome TEXT NOT NULL, status_code INTEGER,
          provider_code TEXT, latency_s REAL NOT NULL, estimated_cost_usd REAL,
          cost_usd REAL NOT NULL, cost_source TEXT NOT NULL, started_at TEXT NOT NULL,
          metadata TEXT);
        INSERT INTO attempts (chain, request_id, provider, model, attempt, outcome, latency_s,
          cost_usd, cost_source, started_at) VALUES ('c', 'r1', 'a', 'm', 1, 'success', 0.1,
          0.5, 'reported', '2026-12-01T00:00:00.000000Z');
        PRAGMA user_version = 1;""")
    conn.close()
    with Ledger(path, create=False) as book:
        assert book.query("PRAGMA user_version") == [(2,)]
        report = cost_report(book, by=["user", "day"])
        assert [(r.key, r.spent_usd) for r in report.sections["user"]] == [("(none)", 0.5)]
        assert book.rows()[0]["user"] is None
