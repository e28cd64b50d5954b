"""Batch rows name validators (``validators`` column); one instance per name serves the batch,
so ``not_duplicate`` catches an image that repeats an earlier one."""

from __future__ import annotations

from pathlib import Path

from batch_helpers import fake_chain, items, run, sidecar, write_csv, write_jsonl

from fallback_chain.providers import FakeProvider


def test_a_row_repeating_an_earlier_image_is_rejected(tmp_path: Path) -> None:
    # the fake draws from prompt and seed only: the final row repeats the draft row's image
    source = write_csv(tmp_path / "in.csv", [
        {"id": "a", "prompt": "a fox", "quality": "draft", "validators": "not_blank,not_duplicate"},
        {"id": "b", "prompt": "a fox", "quality": "final", "validators": "not_duplicate"},
        {"id": "c", "prompt": "an owl", "quality": "final", "validators": "not_duplicate"}])
    summary = run(fake_chain(FakeProvider("p", image_size=(64, 64))), source, tmp_path / "out",
                  concurrency=1)
    assert (summary.delivered, summary.failed) == (2, 1)
    status = {r["id"]: r["status"] for r in items(tmp_path / "out")}
    assert status == {"a": "delivered", "b": "failed", "c": "delivered"}
    assert sidecar(tmp_path / "out", "a")["metadata"] == {
        "validators": ["not_blank", "not_duplicate"]}
    failures = (tmp_path / "out" / "failures.csv").read_text()
    assert "near-duplicate of an earlier image" in failures


def test_an_unknown_validator_makes_the_row_invalid(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "prompt": "a fox", "validators": ["decodes"]},
        {"id": "b", "prompt": "a cat", "validators": ["sharp"]}])
    summary = run(fake_chain(), source, tmp_path / "out")
    assert summary.delivered == 1 and summary.invalid_rows == 1
