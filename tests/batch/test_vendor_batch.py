"""``--vendor-batch``: vendor batch jobs (Gemini Batch Mode, OpenAI Batches) against the
emulator, the chain as the safety net, prices both ways. Polls and deadlines run on a
fast-forward clock (no real waiting)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fallback_chain.batch import BatchOptions, BatchSummary, run_batch
from fallback_chain.batch.vendor import VendorBatchOptions, parse_duration, price_both_ways
from fallback_chain.batch.vendor.journal import NAME as JOURNAL
from fallback_chain.chain import Chain
from fallback_chain.clock import FastForwardClock
from fallback_chain.cost.batch import ChainStep
from fallback_chain.cost.estimate import estimate
from fallback_chain.demo import build_demo_chain
from fallback_chain.emulator import Emulator
from fallback_chain.events import AttemptFinished
from fallback_chain.policy import Policy

KEY = "vb-key"
BRIEFS = Path(__file__).resolve().parents[2] / "examples" / "briefs.csv"


def _run(chain_of: Any, source: Path, out: Path, **vendor: Any) -> BatchSummary:
    clock = vendor.pop("clock", None) or FastForwardClock()

    async def go() -> BatchSummary:
        chain: Chain = chain_of()
        async with chain:
            return await run_batch(chain, str(source), str(out), BatchOptions(
                handle_signals=False, fsync=False,
                vendor_batch=VendorBatchOptions(clock=clock, poll_initial_s=5, **vendor)))

    return asyncio.run(go())


def _demo(url: str) -> Any:
    return lambda: build_demo_chain(url, api_key=KEY)


def _openai_first(url: str) -> Any:
    from fallback_chain.providers import GeminiProvider, OpenAIProvider

    def build() -> Chain:
        return Chain([OpenAIProvider(model="gpt-image-2", api_key=KEY, base_url=f"{url}/v1"),
                      GeminiProvider(model="gemini-2.5-flash-image", api_key=KEY,
                                     base_url=url)],
                     policy=Policy(attempt_timeout_s=30, backoff_initial_s=0.01), log=False)

    return build


def _sidecars(out: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def _calls(emu: Emulator) -> Counter[tuple[str, str]]:
    return Counter((e.vendor, e.endpoint) for e in emu.requests())


def _journal(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / JOURNAL).read_text())
    return data


def test_demo_briefs_delivered_at_half_price_then_a_rerun_does_nothing(
        emu: Emulator, url: str, tmp_path: Path) -> None:
    emu.batches.configure(polls=3)
    events: list[Any] = []
    summary = _run(lambda: build_demo_chain(url, api_key=KEY, on_event=events.append), BRIEFS,
                   tmp_path / "out")
    assert summary.delivered == summary.rows == 12 and summary.failed == 0
    batch_attempts = [e.attempt for e in events if isinstance(e, AttemptFinished)
                      and e.attempt.provider == "gemini (vendor batch)"]
    assert len(batch_attempts) == 10  # what the cost ledger records
    assert summary.providers["gemini (vendor batch)"]["delivered"] == 10
    sidecars = _sidecars(tmp_path / "out")
    batched = {k: s for k, s in sidecars.items() if s.get("vendor_batch")}
    assert len(batched) == 10  # the n=2 row and the repeated row stay real-time
    job_id = emu.batches.jobs[0].id
    for sidecar in batched.values():
        vb = sidecar["vendor_batch"]
        assert vb["batch_id"] == job_id and vb["vendor"] == "gemini"
        assert "ai.google.dev/gemini-api/docs/pricing" in vb["price"]["source"]
        assert vb["price"]["as_of"]
        standard = estimate("gemini", "gemini-2.5-flash-image", size=sidecar["size_requested"],
                            quality=sidecar["quality"])
        assert standard is not None
        assert sidecar["cost_usd"] == pytest.approx(standard / 2, rel=0.02)
        assert sidecar["attempts"][0]["cost_usd"] == sidecar["cost_usd"]
    assert sum(a.cost_usd for a in batch_attempts) == pytest.approx(
        sum(s["cost_usd"] for s in batched.values()))
    manifest = (tmp_path / "out" / "manifest.jsonl").read_text()
    assert manifest.count('"how": "vendor_batch"') + manifest.count('"how":"vendor_batch"') == 10
    calls = _calls(emu)
    assert calls[("gemini", "batch_create")] == 1 and calls[("gemini", "batch_get")] == 3
    assert calls[("gemini", "generate")] == 2  # the n=2 row: two real-time calls
    assert _journal(tmp_path / "out")["jobs"][0]["state"] == "collected"

    before = len(emu.requests())
    again = _run(_demo(url), BRIEFS, tmp_path / "out")
    assert again.skipped == 12 and again.generated == 0 and again.failed == 0
    assert len(emu.requests()) == before  # not one call: no job, no poll, no generation


def test_refusal_reported_errors_and_garbled_lines_go_real_time(
        emu: Emulator, url: str, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    rows = [f"p{i},a study of shapes number {i}" for i in range(8)]
    rows.append("bad,a prompt that the safety system refuses")
    source.write_text("id,prompt\n" + "\n".join(rows) + "\n")
    emu.batches.configure(error_rate=0.3, malformed_lines=1, seed=3)
    summary = _run(_demo(url), source, tmp_path / "out")
    assert summary.delivered == 8 and summary.failed == 1
    assert summary.failed_by_reason == {"content_policy": 1}
    outcomes = _journal(tmp_path / "out")["jobs"][0]["outcomes"]
    realtime = {i for i, o in outcomes.items() if o["status"] == "realtime"}
    assert realtime and outcomes["bad"]["status"] == "refused"
    generated = [e.prompt for e in emu.requests(vendor="gemini", endpoint="generate")]
    assert "a prompt that the safety system refuses" not in generated  # never re-sent
    assert sorted(generated) == sorted(f"a study of shapes number {i[1:]}" for i in realtime)
    failures = (tmp_path / "out" / "failures.csv").read_text()
    assert "bad" in failures and "not re-sent" in failures
    # a re-run reports the refusal again, sends nothing
    before = len(emu.requests())
    again = _run(_demo(url), source, tmp_path / "out")
    assert again.failed_by_reason == {"content_policy": 1} and again.skipped == 8
    assert len(emu.requests()) == before


def test_missed_deadline_cancels_and_the_rest_goes_real_time(
        emu: Emulator, url: str, tmp_path: Path) -> None:
    emu.batches.configure(polls=10**9, done_fraction=0.5)  # never finishes by itself
    clock = FastForwardClock()
    summary = _run(_demo(url), BRIEFS, tmp_path / "out", clock=clock,
                   deadline_s=parse_duration("6h"), poll_max_s=3600)
    assert summary.delivered == 12 and summary.failed == 0
    assert clock.skipped > 6 * 3600 - 60  # waited six (virtual) hours, then cancelled
    calls = _calls(emu)
    assert calls[("gemini", "batch_cancel")] == 1 and calls[("gemini", "batch_create")] == 1
    job = _journal(tmp_path / "out")["jobs"][0]
    assert job["final_state"] == "cancelled"
    kinds = Counter(o["status"] for o in job["outcomes"].values())
    assert kinds == {"delivered": 5, "realtime": 5}  # partial results kept
    assert calls[("gemini", "generate")] == 5 + 2


@pytest.mark.parametrize("fault", ["expire", "fail"])
def test_expired_or_failed_job_falls_back(emu: Emulator, url: str, tmp_path: Path,
                                          fault: str) -> None:
    emu.batches.configure(**{fault: True})
    summary = _run(_demo(url), BRIEFS, tmp_path / "out")
    assert summary.delivered == 12 and summary.failed == 0
    job = _journal(tmp_path / "out")["jobs"][0]
    assert job["final_state"] == ("expired" if fault == "expire" else "failed")
    batched = sum(1 for s in _sidecars(tmp_path / "out").values() if s.get("vendor_batch"))
    assert batched == (5 if fault == "expire" else 0)


def test_openai_files_and_batches(emu: Emulator, url: str, tmp_path: Path) -> None:
    emu.batches.configure(polls=2, malformed_lines=1)
    summary = _run(_openai_first(url), BRIEFS, tmp_path / "out")
    assert summary.delivered == 12
    calls = _calls(emu)
    assert calls[("openai", "file_upload")] == 1 and calls[("openai", "batch_create")] == 1
    assert calls[("openai", "file_content")] == 1
    batched = [s for s in _sidecars(tmp_path / "out").values() if s.get("vendor_batch")]
    assert len(batched) == 11 - 1  # n=2 is fine here; one line garbled: real-time
    for sidecar in batched:
        price = sidecar["vendor_batch"]["price"]
        assert "platform.openai.com/docs/guides/batch" in price["source"]
        assert price["per_image_usd"] == pytest.approx(price["standard_per_image_usd"] / 2)
        reported = sidecar["vendor_batch"]["cost_at_standard_price_usd"]
        assert sidecar["cost_usd"] == pytest.approx(reported / 2, rel=1e-6)


def test_jobs_split_within_the_limit(emu: Emulator, url: str, tmp_path: Path) -> None:
    summary = _run(_demo(url), BRIEFS, tmp_path / "out", max_items=4)
    assert summary.delivered == 12
    jobs = _journal(tmp_path / "out")["jobs"]
    assert [len(j["items"]) for j in jobs] == [4, 4, 2]
    assert _calls(emu)[("gemini", "batch_create")] == 3


def test_dry_run_prices_both_ways(tmp_path: Path) -> None:
    steps = [ChainStep("gemini", "gemini-2.5-flash-image"), ChainStep("leonardo", None),
             ChainStep("openai", "gpt-image-2")]
    price = price_both_ways(steps, str(BRIEFS))
    assert price.batch_provider == "gemini:gemini-2.5-flash-image"
    assert (price.items, price.eligible, price.images) == (12, 10, 13)
    assert price.batch_usd == pytest.approx(10 * 0.0195)
    assert price.realtime_usd == pytest.approx(13 * 0.039)
    assert price.vendor_batch_usd == pytest.approx(10 * 0.0195 + 3 * 0.039)
    assert price.saving_pct is not None and 35 < price.saving_pct < 40
    # no batch API in the chain: everything real-time
    none = price_both_ways([ChainStep("leonardo", None)], str(BRIEFS))
    assert none.batch_provider is None and none.vendor_batch_usd == none.realtime_usd


def test_cli_dry_run_shows_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from fallback_chain.cli import app

    monkeypatch.chdir(tmp_path)
    shutil.copy(BRIEFS, tmp_path / "briefs.csv")
    result = CliRunner().invoke(app, ["batch", "briefs.csv", "--emulated", "--dry-run",
                                      "--vendor-batch", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["vendor_batch"]["vendor_batch_usd"] < data["vendor_batch"]["realtime_usd"]
    bad = CliRunner().invoke(app, ["batch", "briefs.csv", "--emulated", "--dry-run",
                                   "--vendor-batch", "--batch-deadline", "soon"])
    assert bad.exit_code == 2 and "--batch-deadline" in bad.output


def test_parse_duration() -> None:
    assert parse_duration("6h") == 21600 and parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90 and parse_duration(2.5) == 2.5
    for bad in ("soon", "0", "-1h", ""):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)
