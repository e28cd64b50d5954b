"""Memory stays flat however many rows the input has: the reader streams, the queue is
bounded, the index is on disk, statistics are histograms."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from batch_helpers import write_csv

from fallback_chain import Chain
from fallback_chain.batch.engine import BatchOptions, run_batch
from fallback_chain.providers import FakeProvider


def _csv(path: Path, rows: int) -> Path:
    with path.open("w") as fh:
        fh.write("prompt,size,quality,campaign\n")
        fh.writelines(f"brief number {i} for the spring catalogue,1024x1024,standard,c{i % 97}\n"
                      for i in range(rows))
    return path


def _dry_run_peak_rss(source: Path, cwd: Path) -> tuple[dict[str, object], float]:
    """Run `batch --dry-run` in its own process; its result and its peak RSS in MiB."""
    env = {k: v for k, v in os.environ.items() if k != "FALLBACK_CHAIN_CONFIG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fallback_chain.cli.batch", str(source), "--out",
         str(cwd / "out"), "--dry-run", "--emulated", "--json"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err.decode()
    return json.loads(out), usage.ru_maxrss / 1024  # Linux reports KiB


@pytest.mark.slow
def test_a_million_row_csv_is_streamed_in_flat_memory(tmp_path: Path) -> None:
    small = _csv(tmp_path / "small.csv", 1_000)
    big = _csv(tmp_path / "big.csv", 1_000_000)
    assert big.stat().st_size > 60 * 2**20
    report, rss_small = _dry_run_peak_rss(small, tmp_path)
    assert report["rows"] == 1_000
    report, rss_big = _dry_run_peak_rss(big, tmp_path)
    assert (report["rows"], report["valid"], report["priced"]) == (1_000_000,) * 3
    assert report["estimate"]["requests"] == 1_000_000  # type: ignore[index]
    # the file alone is 60+ MiB; reading it whole (or keeping rows) would add far more
    assert rss_big - rss_small < 25, (rss_small, rss_big)


async def _engine_peak(source: Path, out: Path) -> int:
    chain = Chain([FakeProvider("p", image_size=(64, 64), keep_requests=False)], log=False)
    options = BatchOptions(concurrency=16, handle_signals=False, fsync=False)
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    summary = await run_batch(chain, str(source), str(out), options)
    assert summary.failed == 0 and summary.delivered > 0
    return tracemalloc.get_traced_memory()[1] - before


def test_engine_memory_does_not_grow_with_the_number_of_items(tmp_path: Path) -> None:
    def rows(n: int, tag: str) -> list[dict[str, str]]:
        return [{"prompt": f"{tag} brief {i}", "size": "64x64"} for i in range(n)]

    warm = write_csv(tmp_path / "warm.csv", rows(50, "warm"))
    few = write_csv(tmp_path / "few.csv", rows(200, "few"))
    many = write_csv(tmp_path / "many.csv", rows(2_000, "many"))
    tracemalloc.start()
    try:
        asyncio.run(_engine_peak(warm, tmp_path / "warm"))  # imports, caches, thread pools
        peak_few = asyncio.run(_engine_peak(few, tmp_path / "few"))
        peak_many = asyncio.run(_engine_peak(many, tmp_path / "many"))
    finally:
        tracemalloc.stop()
    # ten times the items, about the same peak (keeping ~500 bytes per item would fail)
    assert peak_many < peak_few * 1.5 + 256 * 1024, (peak_few, peak_many)
