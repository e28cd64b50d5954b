"""``--vendor-batch`` as a real-time call would be: budget caps and tenant quotas reserved
and settled, the prompt pre-screen run before a row goes into a job, the input streamed in
bounded chunks, a refusal costing what the vendor reports; and the emulator's admin reset
forgetting batch jobs like ``Emulator.reset()``."""

from __future__ import annotations

import ast
import asyncio
import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fallback_chain.batch import BatchOptions, BatchSummary, run_batch
from fallback_chain.batch.items import BatchItem
from fallback_chain.batch.vendor import VendorBatchOptions
from fallback_chain.batch.vendor.price import batch_price
from fallback_chain.chain import Chain
from fallback_chain.clock import FastForwardClock
from fallback_chain.cost import Budget
from fallback_chain.cost.quotas import Limit, Quotas
from fallback_chain.emulator import Emulator
from fallback_chain.policy import Policy
from fallback_chain.prescreen import Blocklist
from fallback_chain.request import ImageRequest

KEY = "vb-key"
MODEL = "gemini-2.5-flash-image"
VENDOR_DIR = Path(__file__).resolve().parents[2] / "fallback_chain" / "batch" / "vendor"


def _gemini(url: str, **chain: Any) -> Callable[[], Chain]:
    from fallback_chain.providers import GeminiProvider

    def build() -> Chain:
        return Chain([GeminiProvider(model=MODEL, api_key=KEY, base_url=url)],
                     policy=Policy(attempt_timeout_s=30, backoff_initial_s=0.01), log=False,
                     **chain)

    return build


def _run(build: Callable[[], Chain], source: Path, out: Path,
         adjust: Callable[[Chain], None] | None = None, **vendor: Any) -> BatchSummary:
    async def go() -> BatchSummary:
        chain = build()
        if adjust is not None:
            adjust(chain)
        async with chain:
            return await run_batch(chain, str(source), str(out), BatchOptions(
                handle_signals=False, fsync=False, vendor_batch=VendorBatchOptions(
                    clock=FastForwardClock(), poll_initial_s=5, **vendor)))

    return asyncio.run(go())


def _csv(path: Path, rows: list[str], header: str = "id,prompt") -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _manifest(out: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    return {x["id"]: x for x in lines if x.get("type") == "item"}


def _job_prompts(emu: Emulator) -> list[str]:
    return [json.dumps(body) for job in emu.batches.jobs for _, body in job.requests]


def _per_image() -> float:
    price = batch_price("gemini", MODEL, ImageRequest(prompt="x")).per_image_usd
    assert price is not None
    return price


# ---------------------------------------------------------------------- budget and quotas

def test_rows_over_the_budget_are_reported_not_submitted(
        emu: Emulator, url: str, tmp_path: Path) -> None:
    p = _per_image()
    budget = Budget(daily_usd=3.5 * p)
    source = _csv(tmp_path / "in.csv", [f"p{i},a study of shapes number {i}" for i in range(6)])
    summary = _run(_gemini(url, budget=budget), source, tmp_path / "out")
    assert summary.delivered == 3 and summary.failed_by_reason == {"budget_exceeded": 3}
    assert [len(job.requests) for job in emu.batches.jobs] == [3]  # the others never sent
    assert not emu.requests(vendor="gemini", endpoint="generate")  # nor sent real-time
    manifest = _manifest(tmp_path / "out")
    over = sorted(i for i, x in manifest.items() if x["status"] == "failed")
    assert over == ["p3", "p4", "p5"]
    assert manifest["p3"]["reason"] == "budget_exceeded"
    assert manifest["p3"]["attempts"][0]["outcome"] == "budget_exceeded"
    assert "daily" in manifest["p3"]["attempts"][0]["message"]
    failures = (tmp_path / "out" / "failures.csv").read_text()
    assert "every provider would exceed the budget" in failures
    spent = asyncio.run(budget.spent())
    delivered = sum(x["cost_usd"] for x in manifest.values() if x["status"] == "delivered")
    assert spent == pytest.approx(delivered) and spent == pytest.approx(3 * p, rel=0.05)
    assert asyncio.run(budget.reserved()) == 0  # every reservation settled or released


def test_per_request_cap_below_the_batch_price_sends_nothing(
        emu: Emulator, url: str, tmp_path: Path) -> None:
    source = _csv(tmp_path / "in.csv", [f"p{i},a study of shapes number {i}" for i in range(3)])
    summary = _run(_gemini(url, budget=Budget(per_request_usd=_per_image() / 2)), source,
                   tmp_path / "out")
    assert summary.failed_by_reason == {"budget_exceeded": 3} and summary.delivered == 0
    assert not emu.batches.jobs and not emu.requests(vendor="gemini")


def test_tenant_quota_caps_the_rows_of_a_job(emu: Emulator, url: str, tmp_path: Path) -> None:
    quotas = Quotas(per_user=Limit(daily_images=2))
    rows = ["a1,a red cube,alice", "a2,a blue cube,alice", "a3,a green cube,alice",
            "b1,a grey cube,bob"]
    source = _csv(tmp_path / "in.csv", rows, header="id,prompt,user")
    summary = _run(_gemini(url, quotas=quotas), source, tmp_path / "out")
    assert summary.delivered == 3 and summary.failed_by_reason == {"budget_exceeded": 1}
    assert len(emu.batches.jobs[0].requests) == 3
    assert not any("green" in body for body in _job_prompts(emu))
    manifest = _manifest(tmp_path / "out")
    assert manifest["a3"]["status"] == "failed" and "alice" in manifest["a3"]["error"]
    assert asyncio.run(quotas.used("user", "alice", "daily_images")) == 2
    assert asyncio.run(quotas.used("user", "bob", "daily_images")) == 1


# ---------------------------------------------------------------------- the pre-screen

@pytest.mark.parametrize("how", ["chain", "add_prescreen"])
def test_prescreen_flags_rows_before_the_job(emu: Emulator, url: str, tmp_path: Path,
                                             how: str) -> None:
    screen = Blocklist(terms=["forbidden"])
    build = _gemini(url, prescreen=screen) if how == "chain" else _gemini(url)
    adjust = None if how == "chain" else (lambda chain: chain.add_prescreen(screen))
    rows = ["p0,a quiet harbour", "p1,a forbidden castle", "p2,a green field"]
    summary = _run(build, _csv(tmp_path / "in.csv", rows), tmp_path / "out", adjust)
    assert summary.delivered == 2 and summary.failed_by_reason == {"content_policy": 1}
    assert len(emu.batches.jobs[0].requests) == 2
    assert not any("forbidden" in body for body in _job_prompts(emu))  # never submitted
    assert not emu.requests(vendor="gemini", endpoint="generate")  # nor real-time
    failed = _manifest(tmp_path / "out")["p1"]
    assert failed["reason"] == "content_policy" and failed["cost_usd"] == 0
    assert failed["attempts"][0]["provider"] == "moderation"
    assert failed["moderation"]["categories"] == ["blocklist:forbidden"]


# ---------------------------------------------------------------------- memory

def test_a_large_input_is_held_a_job_at_a_time(emu: Emulator, url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from fallback_chain.batch.vendor import phase
    from fallback_chain.providers.gemini.batch import GeminiBatch

    monkeypatch.setattr(phase, "CHUNK", 8)
    rows = 120
    source = _csv(tmp_path / "in.csv", [f"p{i},shape {i}" for i in range(rows)])
    live: list[int] = []
    submit = GeminiBatch.submit

    async def counting(self: GeminiBatch, label: str, lines: list[dict[str, Any]]) -> str:
        live.append(sum(isinstance(o, BatchItem) for o in gc.get_objects()))
        return await submit(self, label, lines)

    monkeypatch.setattr(GeminiBatch, "submit", counting)
    summary = _run(_gemini(url), source, tmp_path / "out", max_items=12)
    assert summary.delivered == rows and summary.generated == rows
    assert len(emu.batches.jobs) == rows // 12 and len(live) == rows // 12
    assert max(live) <= 12 + 8  # one job's rows and one chunk, never the whole input


# ---------------------------------------------------------------------- refusal cost

def test_a_refusal_costs_what_the_vendor_reports(emu: Emulator, url: str,
                                                 tmp_path: Path) -> None:
    budget = Budget(daily_usd=100)
    rows = ["ok,a calm lake", "bad,a prompt that the safety system refuses"]
    summary = _run(_gemini(url, budget=budget), _csv(tmp_path / "in.csv", rows),
                   tmp_path / "out")
    assert summary.failed_by_reason == {"content_policy": 1}
    bad = _manifest(tmp_path / "out")["bad"]
    vb = bad["vendor_batch"]
    standard = vb["cost_at_standard_price_usd"]  # the prompt tokens of usageMetadata
    assert standard and standard > 0
    ratio = vb["price"]["per_image_usd"] / vb["price"]["standard_per_image_usd"]
    assert bad["cost_usd"] == pytest.approx(standard * ratio) and bad["cost_usd"] > 0
    assert bad["attempts"][0]["cost_source"] == "reported" and vb["cost_basis"] == "reported"
    ok = _manifest(tmp_path / "out")["ok"]["cost_usd"]
    assert asyncio.run(budget.spent()) == pytest.approx(ok + bad["cost_usd"])


# ---------------------------------------------------------------------- plumbing

def test_vendor_batch_uses_no_private_item_server_method() -> None:
    private = []
    for path in VENDOR_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                    ast.unparse(node.value).endswith("server"):
                private.append(f"{path.name}: {ast.unparse(node)}")
    assert private == []


def test_admin_reset_forgets_batch_jobs_like_emulator_reset(emu: Emulator, url: str) -> None:
    def setup() -> str:
        emu.batches.create("gemini", MODEL, "label", [])
        answer = httpx.post(f"{url}/v1/files", headers={"Authorization": f"Bearer {KEY}"},
                            data={"purpose": "batch"}, files={"file": ("in.jsonl", b"{}\n")})
        assert answer.status_code == 200, answer.text
        file_id: str = answer.json()["id"]
        assert emu.batches.jobs and _file(file_id) == 200
        return file_id

    def _file(file_id: str) -> int:
        return httpx.get(f"{url}/v1/files/{file_id}/content",
                         headers={"Authorization": f"Bearer {KEY}"}).status_code

    file_id = setup()
    assert httpx.post(f"{url}/_emulator/reset").status_code == 200
    assert emu.batches.jobs == [] and _file(file_id) == 404
    file_id = setup()
    emu.reset()
    assert emu.batches.jobs == [] and _file(file_id) == 404


def test_rows_over_the_budget_are_tried_again_only_when_failures_are_retried(
        emu: Emulator, url: str, tmp_path: Path) -> None:
    p = _per_image()
    source = _csv(tmp_path / "in.csv", [f"p{i},a study of shapes number {i}" for i in range(3)])
    first = _run(_gemini(url, budget=Budget(daily_usd=1.5 * p)), source, tmp_path / "out")
    assert first.delivered == 1 and first.failed_by_reason == {"budget_exceeded": 2}

    async def again(retry: bool) -> BatchSummary:
        async with _gemini(url, budget=Budget(daily_usd=100))() as chain:
            return await run_batch(chain, str(source), str(tmp_path / "out"), BatchOptions(
                handle_signals=False, fsync=False, retry_failed=retry,
                vendor_batch=VendorBatchOptions(clock=FastForwardClock(), poll_initial_s=5)))

    kept = asyncio.run(again(False))
    assert kept.failed_by_reason == {"budget_exceeded": 2} and len(emu.batches.jobs) == 1
    retried = asyncio.run(again(True))
    assert (retried.delivered, retried.skipped, retried.failed) == (2, 1, 0)
    assert [len(job.requests) for job in emu.batches.jobs] == [1, 2]


class _Broken:
    """A screen whose service is down."""

    model = "broken-screen"

    def __init__(self, on_error: str) -> None:
        self.on_error = on_error

    async def screen(self, request: ImageRequest) -> Any:
        from fallback_chain.outcome import Outcome
        from fallback_chain.prescreen import ScreenError

        raise ScreenError(Outcome.SERVER_ERROR, "moderation is down", 503)


@pytest.mark.parametrize("on_error", ["allow", "block"])
def test_a_failing_screen_allows_or_stops_rows_as_in_real_time(
        emu: Emulator, url: str, tmp_path: Path, on_error: str) -> None:
    from fallback_chain.events import PrescreenFailed

    events: list[Any] = []
    build = _gemini(url, prescreen=_Broken(on_error), on_event=events.append)
    rows = ["p0,a quiet harbour", "p1,a green field"]
    summary = _run(build, _csv(tmp_path / "in.csv", rows), tmp_path / "out")
    if on_error == "allow":
        assert summary.delivered == 2 and len(emu.batches.jobs[0].requests) == 2
        assert sum(isinstance(e, PrescreenFailed) for e in events) == 2
    else:
        assert summary.failed_by_reason == {"stopped": 2} and not emu.batches.jobs
        failed = _manifest(tmp_path / "out")["p0"]
        assert "on_error='block'" in failed["error"]
        assert failed["attempts"][0]["outcome"] == "server_error"
