"""``Ledger``: attempts from a real chain into SQLite, batched, crash-consistent, key-free."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest

from fallback_chain import Attempt, Chain, Outcome
from fallback_chain.cost.ledger import Ledger
from fallback_chain.events import AttemptFinished, RequestFinished
from fallback_chain.providers import FakeProvider
from fallback_chain.request import ImageRequest
from fallback_chain.secrets import register_secret
from fallback_chain.vtime import VirtualClock, run_virtual


def committed(path) -> int:
    """Rows another process would see right now."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])


def attempt(provider: str = "a", outcome: Outcome = Outcome.SUCCESS, cost: float = 0.01,
            when: str = "2026-01-01T12:00:00", **kw: object) -> Attempt:
    return Attempt(provider=provider, model=kw.pop("model", "m1"), attempt=1, outcome=outcome,
                   started_at=datetime.fromisoformat(when).replace(tzinfo=UTC), cost_usd=cost,
                   cost_source="reported" if cost else "none", **kw)


def test_records_every_attempt_of_a_chain(tmp_path):
    path = tmp_path / "ledger.db"
    clock = VirtualClock()
    with Ledger(path) as ledger:
        chain = Chain([FakeProvider("gemini", [500, 500], clock=clock, model="g-1"),
                       FakeProvider("openai", clock=clock, model="o-1", price_usd=0.04)],
                      clock=clock, name="main", on_event=ledger, log=False)
        result = run_virtual(chain.agenerate("a fox", metadata={"user_id": "u-42"}))
    assert committed(path) == 3
    with Ledger(path, create=False) as ledger:
        rows = ledger.rows()
    assert [(r["provider"], r["model"], r["attempt"], r["outcome"]) for r in rows] == [
        ("gemini", "g-1", 1, "server_error"), ("gemini", "g-1", 2, "server_error"),
        ("openai", "o-1", 1, "success")]
    assert {r["request_id"] for r in rows} == {result.request_id}
    assert {r["chain"] for r in rows} == {"main"}
    assert rows[0]["status_code"] == 500 and rows[0]["provider_code"] == "server_error"
    assert rows[0]["cost_source"] == "none" and rows[0]["cost_usd"] == 0
    assert rows[2]["cost_usd"] == pytest.approx(0.04) and rows[2]["cost_source"] == "reported"
    assert rows[2]["estimated_cost_usd"] == pytest.approx(0.04)
    assert rows[0]["metadata"] == {"user_id": "u-42"}
    assert rows[0]["started_at"].startswith("2026-01-01T00:00:")
    assert rows[0]["started_at"].endswith("Z")


def test_rows_are_buffered_and_written_in_batches(tmp_path):
    path = tmp_path / "ledger.db"
    ledger = Ledger(path, batch_size=3, flush_interval_s=3600)
    for _ in range(2):
        ledger(AttemptFinished("c", "r1", attempt(), {}))
    assert (ledger.pending, committed(path)) == (2, 0)
    ledger(AttemptFinished("c", "r1", attempt(), {}))
    assert (ledger.pending, committed(path)) == (0, 3)
    ledger(AttemptFinished("c", "r2", attempt(), {}))
    req = ImageRequest(prompt="x")
    ledger(RequestFinished("c", "r2", req, None, None))  # interval not reached: still buffered
    assert committed(path) == 3
    ledger.flush_interval_s = 0.0
    ledger(RequestFinished("c", "r2", req, None, None))
    assert committed(path) == 4
    ledger(AttemptFinished("c", "r3", attempt(), {}))
    ledger.close()
    assert committed(path) == 5  # close loses nothing
    ledger.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        ledger.record("c", "r4", attempt())


def test_queries_see_buffered_rows(tmp_path):
    with Ledger(tmp_path / "l.db", batch_size=1000) as ledger:
        ledger.record("c", "r1", attempt(cost=0.25))
        ledger.record("c", "r1", attempt(provider="b", cost=0.5, when="2026-01-02T00:00:00"))
        assert ledger.count() == 2
        assert ledger.total_usd() == pytest.approx(0.75)
        assert ledger.total_usd(since="2026-01-02") == pytest.approx(0.5)
        assert ledger.total_usd(until="2026-01-02") == pytest.approx(0.25)
        assert [r["provider"] for r in ledger.rows(provider="b")] == ["b"]


def test_wal_mode_and_consistency_after_a_crash(tmp_path):
    path = tmp_path / "crash.db"
    script = textwrap.dedent(f"""
        import os
        from datetime import datetime, UTC
        from fallback_chain import Attempt, Outcome
        from fallback_chain.cost.ledger import Ledger
        ledger = Ledger({str(path)!r}, batch_size=100)
        for i in range(250):
            ledger.record("c", f"r{{i}}", Attempt(
                provider="p", model="m", attempt=1, outcome=Outcome.SUCCESS,
                started_at=datetime.now(UTC), cost_usd=0.01, cost_source="reported"))
        os._exit(1)  # killed: no close, no atexit
    """)
    subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert committed(path) == 200  # the two full batches; the 50 buffered rows died


def test_pending_rows_are_written_at_interpreter_exit(tmp_path):
    path = tmp_path / "exit.db"
    script = textwrap.dedent(f"""
        from datetime import datetime, UTC
        from fallback_chain import Attempt, Outcome
        from fallback_chain.cost.ledger import Ledger
        ledger = Ledger({str(path)!r}, batch_size=100)
        for i in range(7):
            ledger.record("c", "r", Attempt(
                provider="p", model="m", attempt=i + 1, outcome=Outcome.SUCCESS,
                started_at=datetime.now(UTC), cost_usd=0.01, cost_source="reported"))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert committed(path) == 7


def test_export_jsonl(tmp_path):
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.record("c", "r1", attempt(cost=0.1), {"user_id": "u1"})
        ledger.record("c", "r2", attempt(outcome=Outcome.TIMEOUT, cost=0.2,
                                         when="2026-01-03T00:00:00"))
        n = ledger.export_jsonl(tmp_path / "out.jsonl")
        assert ledger.export_jsonl(tmp_path / "late.jsonl", since="2026-01-02") == 1
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert n == 2 == len(lines)
    assert lines[0]["metadata"] == {"user_id": "u1"} and lines[0]["cost_usd"] == 0.1
    assert lines[1]["outcome"] == "timeout"


def test_api_keys_never_reach_the_file(tmp_path):
    key = "sk-live-abcdefghijklmnopqrstuvwx"
    registered = "leo-0123456789abcdef"
    register_secret(registered)
    path = tmp_path / "l.db"
    clock = VirtualClock()
    with Ledger(path) as ledger:
        chain = Chain([FakeProvider("a", [401], clock=clock), FakeProvider("b", clock=clock)],
                      clock=clock, on_event=ledger, log=False)
        run_virtual(chain.agenerate("x", metadata={"note": f"key {key}", "k": registered}))
        ledger.export_jsonl(tmp_path / "out.jsonl")
    for file in (path, tmp_path / "out.jsonl"):
        data = file.read_bytes()
        assert key.encode() not in data and registered.encode() not in data
    with Ledger(path, create=False) as ledger:
        assert ledger.rows()[0]["metadata"] == {"note": "key ***", "k": "***"}
        assert "message" not in ledger.rows()[0]


def test_opening_rules(tmp_path):
    with pytest.raises(FileNotFoundError):
        Ledger(tmp_path / "missing.db", create=False)
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="schema 99"):
        Ledger(path)
    with pytest.raises(ValueError, match="batch_size"):
        Ledger(tmp_path / "x.db", batch_size=0)
