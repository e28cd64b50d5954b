"""Issue 27, finding 12 (the batch part): hostile manifests and full disks.

* A manifest line whose id is a lone surrogate (``"\\ud800"``, e.g. hand-edited) is skipped with
  a warning instead of crashing every later run; an input row with such an id is a row failure.
* A 1 GiB single-line manifest is read with a bounded buffer: memory stays flat (measured
  here on a 64 MiB line with ``tracemalloc``).
* A disk already full is a clear error, with ``--json`` output and exit code 2 (nothing was
  generated); a disk that fills mid-run stops the batch with exit code 1 (as documented), not
  130 (interrupted), although the items in flight were cancelled.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import sys
import tracemalloc
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "batch"))
from batch_helpers import fake_chain, write_csv

from fallback_chain.batch import manifest as manifest_module
from fallback_chain.batch.engine import BatchOptions, run_batch
from fallback_chain.batch.manifest import Manifest
from fallback_chain.batch.storage import Storage
from fallback_chain.cli import app
from fallback_chain.cli.batch import EXIT_FAILED, exit_code
from fallback_chain.providers import FakeProvider


def _run(source: Path, out: Path, provider: FakeProvider | None = None, **options: Any) -> Any:
    chain = fake_chain(provider or FakeProvider("p", image_size=(32, 32)))
    options.setdefault("fsync", False)

    async def go() -> Any:
        async with chain:
            return await asyncio.wait_for(run_batch(chain, str(source), str(out), BatchOptions(
                handle_signals=False, **options)), 30)
    return asyncio.run(go())


def _input(tmp: Path) -> Path:
    return write_csv(tmp / "in.csv", [{"id": "a", "prompt": "a cat"},
                                      {"id": "b", "prompt": "a dog"}])


def test_a_lone_surrogate_id_in_the_manifest_is_skipped(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.jsonl").write_text(
        '{"type":"item","id":"\\ud800","status":"delivered","key":"k","sidecar":"x.json"}\n'
        '{"type":"item","id":"a","status":"failed","reason":"\\udfff","error":"e"}\n',
        encoding="ascii")
    for _ in range(2):  # the next run as well
        summary = _run(_input(tmp_path), out)
        assert summary.error is None and summary.ok


def test_a_lone_surrogate_id_in_the_input_is_a_row_failure(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "\\ud800", "prompt": "a cat"}\n{"id": "b", "prompt": "a dog"}\n',
                      encoding="ascii")
    out = tmp_path / "out"
    summary = _run(source, out)
    assert summary.error is None
    assert (summary.delivered, summary.invalid_rows) == (1, 1)
    failures = (out / "failures.jsonl").read_text(encoding="utf-8")
    assert "\\ud800" in failures and "not valid Unicode" in failures
    assert _run(source, out).error is None


def test_a_huge_single_line_manifest_is_read_in_bounded_memory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = out / "manifest.jsonl"
    with path.open("wb") as fh:
        fh.truncate(64 << 20)  # 64 MiB of NULs and no newline: one hostile line (sparse)
    with path.open("ab") as fh:
        fh.write(b'\n{"type":"item","id":"a","status":"delivered"}\n')
    manifest = Manifest(Storage(str(out)))
    tracemalloc.start()
    try:
        records = list(manifest.records())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r["id"] for r in records] == ["a"]
    assert manifest.torn_lines == 1
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB"


def _full_disk_os() -> types.SimpleNamespace:
    """The ``os`` module as the manifest sees it, on a disk that is full."""
    def write(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    fake = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake.write = write
    return fake


def test_a_disk_already_full_is_a_json_error_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    source = _input(tmp_path)
    monkeypatch.setattr(manifest_module, "os", _full_disk_os())
    result = CliRunner().invoke(app, ["batch", str(source), "--out", "out", "--emulated",
                                      "--json", "--progress", "none"])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False and "No space left on device" in document["error"]
    assert not list((tmp_path / "out").glob("*.png"))


class _Stuck:
    """A clock whose sleeps (the provider's latency) never end unless cancelled, except the
    first: one item finishes, the others stay in flight."""

    def __init__(self) -> None:
        self.sleeps = 0

    def now(self) -> float:
        return 0.0

    def wall(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps > 1:
            await asyncio.Event().wait()


def test_a_disk_full_mid_run_exits_1_not_130(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_csv(tmp_path / "in.csv", [{"id": f"r{i}", "prompt": f"p {i}"}
                                             for i in range(6)])

    def full(self: Storage, data: bytes, *parts: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Storage, "write_sync", full)
    provider = FakeProvider("p", image_size=(32, 32), latency_s=1.0, clock=_Stuck())
    summary = _run(source, tmp_path / "out", provider, concurrency=3, grace_s=0)
    assert summary.error is not None and "No space left on device" in summary.error
    assert not summary.interrupted
    assert exit_code(summary) == EXIT_FAILED
