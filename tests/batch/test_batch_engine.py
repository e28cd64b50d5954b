"""The job pool with fake providers: outputs, sidecars, sharing, resume, failures, limits."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

import pytest
from batch_helpers import fake_chain, items, manifest, run, sidecar, write_csv, write_jsonl

from fallback_chain import Chain, ImageRequest
from fallback_chain.batch.engine import BatchOptions, BatchRun
from fallback_chain.batch.progress import NullReporter
from fallback_chain.batch.storage import Storage
from fallback_chain.imaging import inspect_image, placeholder_image
from fallback_chain.provider import Capabilities, Provider, ProviderReply
from fallback_chain.providers import FakeProvider
from fallback_chain.results import GeneratedImage


def test_every_row_gets_images_a_sidecar_and_a_manifest_line(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [
        {"id": "one", "prompt": "a red fox", "size": "64x64", "quality": "final", "seed": "3",
         "metadata": '{"brief": 1}', "n": ""},
        {"id": "two", "prompt": "a blue fox", "size": "128x64", "quality": "", "seed": "",
         "metadata": "", "n": "2"}])
    chain = fake_chain(FakeProvider("flaky", script=[500, 500]),
                       FakeProvider("good", price_usd=0.02))
    out = tmp_path / "out"
    summary = run(chain, source, out, concurrency=1)
    assert (summary.delivered, summary.generated, summary.failed, summary.images) == (2, 2, 0, 3)
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.jsonl", "one.json", "one.png", "two.json", "two~1.png", "two~2.png"]
    one = sidecar(out, "one")
    assert one["id"] == "one" and one["prompt"] == "a red fox"
    assert (one["size_requested"], one["size_delivered"]) == ("64x64", "64x64")
    assert (one["quality"], one["seed"], one["n"], one["metadata"]) == ("final", 3, 1,
                                                                        {"brief": 1})
    assert (one["provider"], one["model"]) == ("good", "fake-image-1")
    assert "revised_prompt" in one and one["shared"] is None
    assert [(a["provider"], a["outcome"]) for a in one["attempts"]] == [
        ("flaky", "server_error"), ("flaky", "server_error"), ("good", "success")]
    assert one["cost_usd"] == pytest.approx(0.02) and one["latency_s"] >= 0
    assert one["moderation"] == {"outcome": "passed", "refusals": []}
    assert one["started_at"] <= one["finished_at"] and one["finished_at"].endswith("Z")
    assert one["input"] == {"source": str(source), "line": 2}
    image = one["images"][0]
    assert image["file"] == "one.png"
    info = inspect_image((out / "one.png").read_bytes())
    assert (info.width, info.height) == (image["width"], image["height"]) == (64, 64)
    two = sidecar(out, "two")
    assert [i["file"] for i in two["images"]] == ["two~1.png", "two~2.png"]
    assert two["size_delivered"] == "128x64"
    records = items(out)
    assert {r["id"]: r["status"] for r in records} == {"one": "delivered", "two": "delivered"}
    assert manifest(out)[0]["type"] == "run"
    assert two["provider"] == "flaky"  # its script has run out: it works again
    assert summary.cost_usd == pytest.approx(0.02 + 2 * 0.01)
    assert summary.providers["flaky"]["failed_calls"] == 2
    assert summary.providers["good"]["delivered"] == 1
    assert not list(out.glob(".*")), "no temporary files are left"


def test_identical_requests_are_generated_once_and_shared(tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "prompt": f"brief {i % 3}", "size": "64x64"} for i in range(9)]
    provider = FakeProvider("p", latency_s=0.01)
    out = tmp_path / "out"
    summary = run(fake_chain(provider), write_csv(tmp_path / "in.csv", rows), out,
                  concurrency=4)
    assert provider.calls == 3
    assert (summary.delivered, summary.generated, summary.shared) == (9, 3, 6)
    for i in range(9):
        car = sidecar(out, f"r{i}")
        assert car["images"][0]["file"] == f"r{i}.png" and (out / f"r{i}.png").is_file()
        if car["shared"] is not None:
            assert car["shared"]["source"] == "batch" and car["cost_usd"] == 0
            assert car["attempts"] == [] and car["shared"]["original_attempts"]
            source = sidecar(out, car["shared"]["from_id"])
            assert source["prompt"] == car["prompt"] and source["shared"] is None
            assert (out / f"r{i}.png").read_bytes() == (out / source["images"][0]["file"]
                                                        ).read_bytes()
    assert summary.cost_usd == pytest.approx(0.03)


def test_a_refusal_is_shared_by_identical_items_but_other_failures_are_not(
        tmp_path: Path) -> None:
    rows = [{"id": f"w{i}", "prompt": "a weapon"} for i in range(3)]
    rows += [{"id": f"x{i}", "prompt": "exhausted"} for i in range(2)]
    provider = FakeProvider("p", blocked_terms=["weapon"], script=["ok", 500, 500, 500, 500])
    out = tmp_path / "out"
    summary = run(fake_chain(provider), write_csv(tmp_path / "in.csv", rows), out,
                  concurrency=1)
    # one call for the refused prompt; each 'exhausted' item tries itself (2 calls each)
    assert provider.calls == 1 + 2 + 2
    assert summary.failed_by_reason == {"content_policy": 3, "exhausted": 2}
    refused = [r for r in items(out) if r["reason"] == "content_policy"]
    assert sum(1 for r in refused if r.get("shared_from")) == 2
    assert refused[0]["moderation"]["outcome"] == "refused"


def test_failures_file_in_the_input_format_can_be_fed_back(tmp_path: Path) -> None:
    rows = [{"id": "ok", "prompt": "fine", "campaign": "c1"},
            {"id": "", "prompt": "a weapon", "campaign": "c2"},
            {"id": "bad", "prompt": "fine", "n": "99", "campaign": "c3"}]
    source = write_csv(tmp_path / "in.csv", rows, ["id", "prompt", "n", "campaign"])
    out = tmp_path / "out"
    picky = fake_chain(FakeProvider("p", blocked_terms=["weapon"]))
    summary = run(picky, source, out)
    assert (summary.delivered, summary.failed, summary.invalid_rows) == (1, 1, 1)
    assert summary.failures_file == str(out / "failures.csv")
    with (out / "failures.csv").open(newline="") as fh:
        failed = list(csv.DictReader(fh))
    assert [r["prompt"] for r in failed] == ["fine", "a weapon"]  # file order: bad row first
    assert failed[0]["id"] == "bad" and "n: must be between 1 and 10" in failed[0]["error"]
    assert failed[1]["id"].startswith("row-") and "refused" in failed[1]["error"]
    assert failed[1]["campaign"] == "c2"
    # fix the bad row, feed the file back to the same output: same ids, same files
    fixed = tmp_path / "fixed.csv"
    fixed.write_text((out / "failures.csv").read_text().replace(",99,", ",1,"))
    again = run(fake_chain(FakeProvider("p")), fixed, out)
    assert (again.delivered, again.failed, again.invalid_rows) == (2, 0, 0)
    assert not (out / "failures.csv").exists()
    assert sidecar(out, failed[1]["id"])["metadata"] == {"campaign": "c2"}


def test_jsonl_input_gives_a_jsonl_failures_file(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a weapon", "meta": [1]},
                                                 {"prompt": ""}])
    (tmp_path / "in.jsonl").write_text(source.read_text() + "not json\n")
    out = tmp_path / "out"
    run(fake_chain(FakeProvider("p", blocked_terms=["weapon"])), source, out)
    failed = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    # invalid rows are listed as they are read, failed items when they fail
    refused = next(f for f in failed if f.get("prompt") == "a weapon")
    unparsable = next(f for f in failed if "raw" in f)
    assert refused["prompt"] == "a weapon" and refused["meta"] == [1]
    assert refused["id"].startswith("row-") and "refused" in refused["error"]
    assert {"prompt": "", "error": f"{source}, line 2: prompt: must not be empty or "
                                   "whitespace"} in failed
    assert unparsable["raw"] == "not json" and unparsable["line"] == 3
    assert "line 3: not valid JSON" in unparsable["error"]


def test_rerun_skips_delivered_items_and_retries_failed_ones(
        tmp_path: Path, prompts: list[dict[str, Any]]) -> None:
    prompts[3]["prompt"] = "a weapon"
    source = write_csv(tmp_path / "in.csv", prompts)
    out = tmp_path / "out"
    first = run(fake_chain(FakeProvider("p", blocked_terms=["weapon"])), source, out)
    assert (first.delivered, first.failed) == (11, 1)
    provider = FakeProvider("p", blocked_terms=["weapon"])
    second = run(fake_chain(provider), source, out, retry_failed=False)
    assert (second.skipped, second.failed, provider.calls) == (11, 1, 0)
    assert "not retried" in (out / "failures.csv").read_text()
    provider = FakeProvider("p")
    third = run(fake_chain(provider), source, out)
    assert (third.skipped, third.delivered, provider.calls) == (11, 1, 1)
    delivered = [r["id"] for r in items(out) if r["status"] == "delivered"]
    assert sorted(delivered) == sorted(p["id"] for p in prompts)  # each exactly once


def test_an_item_whose_files_exist_is_recovered_without_a_call(
        tmp_path: Path, prompts: list[dict[str, Any]]) -> None:
    source = write_csv(tmp_path / "in.csv", prompts)
    out = tmp_path / "out"
    run(fake_chain(), source, out)
    # lose the manifest lines of 3 items (as if killed before writing them), and the sidecar
    # of a fourth (killed between its image and its sidecar)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    keep = [ln for ln in lines if not any(f'"id":"item-00{i}"' in ln for i in (1, 2, 3, 4))]
    (out / "manifest.jsonl").write_text("".join(keep))
    (out / "item-004.json").unlink()
    provider = FakeProvider("fake", image_size=(64, 64))
    summary = run(fake_chain(provider), source, out)
    assert (summary.recovered, summary.generated, summary.skipped) == (3, 1, 8)
    assert provider.calls == 1 and [r.prompt for r in provider.requests] == ["brief number 4"]
    assert sidecar(out, "item-004")["id"] == "item-004"


def test_cache_across_runs_serves_a_request_without_paying_again(
        tmp_path: Path, prompts: list[dict[str, Any]]) -> None:
    source = write_csv(tmp_path / "in.csv", prompts[:4])
    cache = tmp_path / "cache"
    first = FakeProvider("p")
    run(fake_chain(first), source, tmp_path / "out1", cache=str(cache))
    assert first.calls == 4 and len(list(cache.rglob("*.json"))) == 4
    second = FakeProvider("p")
    summary = run(fake_chain(second), source, tmp_path / "out2", cache=str(cache))
    assert second.calls == 0 and summary.from_cache == 4 and summary.cost_usd == 0
    car = sidecar(tmp_path / "out2", "item-000")
    assert car["shared"]["source"] == "cache" and car["provider"] == "p"
    assert (tmp_path / "out2" / "item-000.png").read_bytes() == (
        tmp_path / "out1" / "item-000.png").read_bytes()


class Gauge(Provider):
    """Counts calls in flight; each call takes ``delay`` seconds."""

    def __init__(self, delay: float = 0.02) -> None:
        self.name, self.model = "gauge", "gauge-1"
        self.capabilities = Capabilities(max_n=10)
        self.delay = delay
        self.now = self.peak = self.calls = 0
        self.on_call: Any = None
        self.image = GeneratedImage.from_bytes(placeholder_image(64, 64))

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        self.calls += 1
        self.now += 1
        self.peak = max(self.peak, self.now)
        if self.on_call is not None:
            self.on_call(self.calls)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.now -= 1
        return ProviderReply(images=[self.image] * request.n, cost_usd=0.01)


def test_global_concurrency_is_respected_and_reading_stays_bounded(tmp_path: Path) -> None:
    rows = [{"prompt": f"brief {i}"} for i in range(300)]
    source = write_csv(tmp_path / "in.csv", rows)
    gauge = Gauge()
    chain = Chain([gauge], log=False)
    opts = BatchOptions(concurrency=5, queue_size=10, handle_signals=False, fsync=False)
    batch = BatchRun(chain, str(source), str(tmp_path / "out"), opts, NullReporter())
    read_ahead: list[int] = []
    gauge.on_call = lambda n: read_ahead.append(batch.stats.rows - batch.stats.finished)
    summary = asyncio.run(batch.run())
    assert summary.delivered == 300 and gauge.calls == 300
    assert gauge.peak == 5
    # rows read but not finished: in flight + queued + one chunk being read, never the file
    assert max(read_ahead) <= 5 + 10 + 64


def test_stop_request_finishes_in_flight_items_and_leaves_a_consistent_manifest(
        tmp_path: Path) -> None:
    rows = [{"id": f"s{i:03d}", "prompt": f"brief {i}"} for i in range(200)]
    source = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out"
    gauge = Gauge(delay=0.05)
    chain = Chain([gauge], log=False)
    opts = BatchOptions(concurrency=8, handle_signals=False, fsync=False, grace_s=5)
    batch = BatchRun(chain, str(source), str(out), opts, NullReporter())

    def maybe_stop(n: int) -> None:
        if n == 40:
            asyncio.get_running_loop().call_soon(batch.request_stop)

    gauge.on_call = maybe_stop
    summary = asyncio.run(batch.run())
    assert summary.interrupted and summary.interrupted_items == 0  # grace let them finish
    assert 40 <= summary.delivered < 200 and gauge.calls == summary.delivered
    _check_consistent(out, summary.delivered)
    again = Gauge(delay=0.0)
    rest = run(Chain([again], log=False), source, out, concurrency=8)
    assert rest.skipped == summary.delivered and again.calls == 200 - summary.delivered
    _check_consistent(out, 200)


def test_stop_with_no_grace_cancels_in_flight_items(tmp_path: Path) -> None:
    rows = [{"id": f"s{i:03d}", "prompt": f"brief {i}"} for i in range(50)]
    source = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out"
    gauge = Gauge(delay=30)
    chain = Chain([gauge], log=False)
    opts = BatchOptions(concurrency=4, handle_signals=False, fsync=False, grace_s=0.05)
    batch = BatchRun(chain, str(source), str(out), opts, NullReporter())
    gauge.on_call = lambda n: n == 4 and asyncio.get_running_loop().call_soon(
        batch.request_stop)
    summary = asyncio.run(asyncio.wait_for(batch.run(), 10))
    assert summary.interrupted and summary.interrupted_items == 4 and summary.delivered == 0
    assert items(out) == [] and not list(out.glob("*.png"))


def _check_consistent(out: Path, expected: int) -> None:
    records = items(out)
    ids = [r["id"] for r in records if r["status"] == "delivered"]
    assert len(ids) == len(set(ids)) == expected
    for r in records:
        for f in [*r["files"], r["sidecar"]]:
            assert (out / f).is_file()
    assert len(list(out.glob("*.json"))) == expected  # no sidecar without its manifest line


def test_a_storage_failure_stops_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           prompts: list[dict[str, Any]]) -> None:
    source = write_csv(tmp_path / "in.csv", prompts)
    real = Storage.write_sync

    def flaky(self: Storage, data: bytes, *parts: str) -> None:
        if parts[-1] == "item-002.png":
            raise OSError(28, "No space left on device")
        real(self, data, *parts)

    monkeypatch.setattr(Storage, "write_sync", flaky)
    provider = FakeProvider("p")
    summary = run(fake_chain(provider), source, tmp_path / "out", concurrency=1)
    assert summary.error is not None and "No space left on device" in summary.error
    assert summary.failed_by_reason == {"storage_error": 1}
    assert provider.calls == 3 and summary.delivered == 2 and not summary.ok
