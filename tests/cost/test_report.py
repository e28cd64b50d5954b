"""``cost_report`` and ``fallback-chain cost report``: spend by day, provider, model, outcome,
with the money spent on attempts that did not deliver."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from fallback_chain import Attempt, Outcome
from fallback_chain.cli import app
from fallback_chain.cost.ledger import Ledger
from fallback_chain.cost.report import cost_report


def add(ledger: Ledger, request: str, provider: str, model: str, outcome: Outcome, cost: float,
        day: str, source: str = "reported") -> None:
    ledger.record("main", request, Attempt(
        provider=provider, model=model, attempt=1, outcome=outcome,
        started_at=datetime.fromisoformat(f"{day}T10:00:00").replace(tzinfo=UTC),
        cost_usd=cost, cost_source=source if cost else "none"))


@pytest.fixture
def ledger_path(tmp_path):
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        # 1 Jan: r1 gemini 429 then openai ok; r2 gemini ok
        add(ledger, "r1", "gemini", "g", Outcome.RATE_LIMITED, 0.0, "2026-01-01")
        add(ledger, "r1", "openai", "o", Outcome.SUCCESS, 0.04, "2026-01-01")
        add(ledger, "r2", "gemini", "g", Outcome.SUCCESS, 0.039, "2026-01-01")
        # 2 Jan: r3 openai timeout billed at its estimate, leonardo skipped, gemini ok
        add(ledger, "r3", "openai", "o", Outcome.TIMEOUT, 0.04, "2026-01-02", "estimated")
        add(ledger, "r3", "leonardo", "l", Outcome.COOLING_DOWN, 0.0, "2026-01-02")
        add(ledger, "r3", "gemini", "g", Outcome.SUCCESS, 0.039, "2026-01-02")
        # 2 Jan: r4 fails everywhere, one billed failure
        add(ledger, "r4", "gemini", "g", Outcome.SERVER_ERROR, 0.0, "2026-01-02")
        add(ledger, "r4", "openai", "o", Outcome.MALFORMED_RESPONSE, 0.04, "2026-01-02")
    return path


def test_totals_and_undelivered_spend(ledger_path):
    with Ledger(ledger_path, create=False) as ledger:
        report = cost_report(ledger)
    t = report.total
    assert (t.attempts, t.calls, t.delivered, t.requests) == (8, 7, 3, 4)
    assert t.spent_usd == pytest.approx(0.198)
    assert t.undelivered_usd == pytest.approx(0.08)
    assert t.estimated_usd == pytest.approx(0.04)
    assert t.usd_per_delivery == pytest.approx(0.198 / 3)


def test_sections(ledger_path):
    with Ledger(ledger_path, create=False) as ledger:
        report = cost_report(ledger)
    days = {r.key: r for r in report.sections["day"]}
    assert list(days) == ["2026-01-01", "2026-01-02"]
    assert days["2026-01-01"].spent_usd == pytest.approx(0.079)
    assert days["2026-01-02"].undelivered_usd == pytest.approx(0.08)
    providers = {r.key: r for r in report.sections["provider"]}
    assert next(iter(providers)) == "openai"  # sorted by spend
    assert providers["openai"].undelivered_usd == pytest.approx(0.08)
    assert providers["openai"].delivered == 1
    assert providers["leonardo"].calls == 0
    assert {r.key for r in report.sections["model"]} == {"openai / o", "gemini / g",
                                                         "leonardo / l"}
    outcomes = {r.key: r for r in report.sections["outcome"]}
    assert outcomes["timeout"].undelivered_usd == pytest.approx(0.04)
    assert outcomes["rate_limited"].spent_usd == 0


def test_since_and_until(ledger_path):
    with Ledger(ledger_path, create=False) as ledger:
        later = cost_report(ledger, since="2026-01-02", by=["provider"])
        early = cost_report(ledger, until="2026-01-02", by=[])
    assert later.total.spent_usd == pytest.approx(0.119)
    assert list(later.sections) == ["provider"]
    assert early.total.spent_usd == pytest.approx(0.079)
    assert later.since == "2026-01-02"


def test_cli_report_json(ledger_path):
    result = CliRunner().invoke(app, ["cost", "report", "--ledger", str(ledger_path),
                                      "--since", "2026-01-01", "--by", "outcome", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total"]["undelivered_usd"] == pytest.approx(0.08)
    assert list(data["sections"]) == ["outcome"]


def test_cli_report_tables(ledger_path, monkeypatch):
    monkeypatch.setenv("FALLBACK_CHAIN_LEDGER", str(ledger_path))
    monkeypatch.setenv("COLUMNS", "160")
    result = CliRunner().invoke(app, ["cost", "report"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "spent on attempts that did not deliver: $0.0800 (40% of spend)" in out
    for title in ("by day", "by provider", "by model", "by outcome", "not delivered"):
        assert title in out


def test_cli_report_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["cost", "report", "--ledger", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no ledger" in result.output
