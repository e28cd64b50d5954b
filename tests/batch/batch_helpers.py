"""Helpers for the batch tests (imported as ``batch_helpers``): input files, fake chains,
running a batch, reading outputs."""

from __future__ import annotations

import asyncio
import csv
import json
import socket
from pathlib import Path
from typing import Any

from fallback_chain import Chain
from fallback_chain.batch.engine import BatchOptions, run_batch
from fallback_chain.batch.stats import BatchSummary
from fallback_chain.providers import FakeProvider


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow(r)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def fake_chain(*providers: FakeProvider, **kwargs: Any) -> Chain:
    return Chain(list(providers) or [FakeProvider("fake", image_size=(64, 64))], log=False,
                 **kwargs)


def run(chain: Chain, source: Path | str, out: Path | str, **options: Any) -> BatchSummary:
    options.setdefault("handle_signals", False)
    options.setdefault("fsync", False)
    return asyncio.run(run_batch(chain, str(source), str(out), BatchOptions(**options)))


def manifest(out: Path) -> list[dict[str, Any]]:
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def items(out: Path) -> list[dict[str, Any]]:
    return [r for r in manifest(out) if r.get("type") == "item"]


def sidecar(out: Path, name: str) -> dict[str, Any]:
    return json.loads((out / f"{name}.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
