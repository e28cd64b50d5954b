"""Issue 27, finding 5: one hostile row never hangs or crashes a batch. A CSV ``metadata`` cell
of 50,000 nested brackets and a JSONL ``seed`` of 5,000 digits are row failures; the other rows
are generated; ``--dry-run`` counts them as invalid rows. A reader that crashes anyway ends the
run with a clear error instead of leaving the workers waiting forever."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "batch"))
from batch_helpers import fake_chain, write_csv

from fallback_chain.batch import engine
from fallback_chain.batch.engine import BatchOptions, run_batch
from fallback_chain.batch.pricing import dry_run
from fallback_chain.providers import FakeProvider

DEEP = "[" * 50_000 + "]" * 50_000


def _run(source: Path, out: Path) -> Any:
    chain = fake_chain(FakeProvider("p", image_size=(32, 32)))

    async def go() -> Any:
        async with chain:
            return await asyncio.wait_for(run_batch(chain, str(source), str(out), BatchOptions(
                concurrency=2, handle_signals=False, fsync=False)), 10)
    return asyncio.run(go())


def _hostile_csv(tmp: Path) -> Path:
    return write_csv(tmp / "in.csv", [
        {"id": "a", "prompt": "a cat", "metadata": ""},
        {"id": "b", "prompt": "a dog", "metadata": DEEP},
        {"id": "c", "prompt": "a cow", "metadata": '{"k": 1}'}])


def _hostile_jsonl(tmp: Path) -> Path:
    path = tmp / "in.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "a cat"}) + "\n"
                    + '{"id": "b", "prompt": "a dog", "seed": ' + "7" * 5000 + "}\n"
                    + json.dumps({"id": "c", "prompt": "a cow", "metadata": {"x": 1}}) + "\n"
                    + '{"id": "d", "prompt": "deep", "metadata": ' + "[" * 50_000 + "}\n",
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("make", [_hostile_csv, _hostile_jsonl])
def test_a_hostile_row_is_a_row_failure_and_the_rest_run(tmp_path: Path, make: Any) -> None:
    source = make(tmp_path)
    summary = _run(source, tmp_path / "out")
    assert summary.error is None
    assert summary.delivered == 2
    assert summary.invalid_rows == (1 if source.suffix == ".csv" else 2)
    failures = (tmp_path / "out" / f"failures{source.suffix}").read_text(encoding="utf-8")
    assert "b" in failures


@pytest.mark.parametrize("make", [_hostile_csv, _hostile_jsonl])
def test_dry_run_counts_hostile_rows_as_invalid(tmp_path: Path, make: Any) -> None:
    source = make(tmp_path)
    report = dry_run([("fake", None)], str(source))
    assert report.invalid == (1 if source.suffix == ".csv" else 2)


def test_a_reader_that_crashes_ends_the_run_with_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _hostile_csv(tmp_path)
    real = engine.iter_items

    def crashing(*args: Any) -> Any:
        header, items = real(*args)

        def boom() -> Iterator[Any]:
            yield next(items)
            raise RuntimeError("the reader broke")
        return header, boom()

    monkeypatch.setattr(engine, "iter_items", crashing)
    summary = _run(source, tmp_path / "out")
    assert summary.error is not None and "the reader broke" in summary.error
    assert not summary.ok
