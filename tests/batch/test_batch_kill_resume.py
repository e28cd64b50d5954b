"""Crash and interrupt safety, end to end: the batch command runs in its own process against
the real adapters and an emulator in another process (`fallback-chain emulate`), is killed
(SIGKILL) or interrupted (SIGINT) half way, and is run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from batch_helpers import items, write_csv

FAULTS = """
seed = 11
[default]
latency = { dist = "uniform", min_ms = 10, max_ms = 40 }
[gemini]
rates = { "429" = 0.15, "500" = 0.05 }
retry_after = 0.05
[leonardo]
job_delay_s = 0.05
rates = { job_failed = 0.1 }
[openai]
rates = { "500" = 0.05 }
"""


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory,
             emulator_process: Callable[..., AbstractContextManager[str]]) -> Iterator[str]:
    """`fallback-chain emulate` in its own process, on a free loopback port."""
    faults = tmp_path_factory.mktemp("emu") / "faults.toml"
    faults.write_text(FAULTS)
    with emulator_process(faults) as url:
        yield url


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FALLBACK_CHAIN_CONFIG", "FALLBACK_CHAIN_LEDGER")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _batch(cwd: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fallback_chain.cli.batch", "in.csv", "--out", "out",
         "--emulator", url, "--concurrency", "8", "--progress", "none", "--json", *extra],
        cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _delivered_lines(out: Path) -> int:
    try:
        text = (out / "manifest.jsonl").read_text()
    except FileNotFoundError:
        return 0
    return text.count('"status":"delivered"')


def _wait_for(out: Path, count: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _delivered_lines(out) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.01)


def _log(url: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = httpx.get(f"{url}/_emulator/log",
                                              params={"endpoint": "generate"},
                                              timeout=10).json()["entries"]
    return entries


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _sidecars(out: Path) -> dict[str, dict[str, Any]]:
    cars = {}
    for path in out.glob("*.json"):
        car = json.loads(path.read_text())
        cars[car["id"]] = car
    return cars


def test_sigkill_half_way_then_rerun_delivers_every_item_exactly_once(
        tmp_path: Path, emulator: str) -> None:
    n = 200
    write_csv(tmp_path / "in.csv", [{"id": f"k{i:03d}", "prompt": f"kill test brief {i}",
                                     "size": "1024x1024"} for i in range(n)])
    out = tmp_path / "out"
    first = _batch(tmp_path, emulator)
    _wait_for(out, n // 2, first)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    killed_at = time.time()
    before = _sidecars(out)
    assert n // 2 <= len(before) < n, "killed half way"
    second = _batch(tmp_path, emulator)
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["delivered"] + summary["skipped"] == n and summary["failed"] == 0

    # every item delivered exactly once: one sidecar each, its images present, and each id
    # appears in the manifest as delivered (only recovered again, never generated again)
    cars = _sidecars(out)
    assert sorted(cars) == [f"k{i:03d}" for i in range(n)]
    for car in cars.values():
        for image in car["images"]:
            assert (out / image["file"]).is_file()
    generated: dict[str, int] = defaultdict(int)
    for record in items(out):
        assert record["status"] == "delivered"
        if record["how"] == "generated":
            generated[record["id"]] += 1
    assert set(generated) <= set(cars) and max(generated.values()) == 1
    for item_id in before:
        assert cars[item_id] == before[item_id]  # written once, never replaced

    # the emulator's own log: no prompt was sent to any vendor again once its item was done
    done_before_kill = {car["prompt"] for car in before.values()}
    again = [e for e in _log(emulator)
             if e["prompt"] in done_before_kill and e["time"] > killed_at]
    assert again == []
    # and every delivered item's last generation request came before its sidecar was written
    last_request: dict[str, float] = {}
    for entry in _log(emulator):
        if entry["prompt"]:
            last_request[entry["prompt"]] = max(last_request.get(entry["prompt"], 0.0),
                                                entry["time"])
    for car in cars.values():
        assert last_request[car["prompt"]] <= _epoch(car["finished_at"]) + 0.002


def test_sigint_stops_cleanly_with_a_consistent_manifest_and_resumes(
        tmp_path: Path, emulator: str) -> None:
    n = 120
    write_csv(tmp_path / "in.csv", [{"id": f"c{i:03d}", "prompt": f"interrupt brief {i}"}
                                    for i in range(n)])
    out = tmp_path / "out"
    first = _batch(tmp_path, emulator, "--grace", "5")
    _wait_for(out, 30, first)
    started = time.monotonic()
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=30)
    assert time.monotonic() - started < 8, "Ctrl-C must stop within a few seconds"
    assert first.returncode == 130, stderr
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and summary["error"] is None
    assert 30 <= summary["delivered"] < n

    # consistent: every manifest line's files exist, every sidecar has its manifest line
    records = items(out)
    delivered = {r["id"] for r in records if r["status"] == "delivered"}
    assert len(delivered) == summary["delivered"]
    for r in records:
        for f in [*r["files"], r["sidecar"]]:
            assert (out / f).is_file()
    assert set(_sidecars(out)) == delivered
    assert not list(out.glob(".*.tmp"))

    second = _batch(tmp_path, emulator)
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    rest = json.loads(stdout)
    assert rest["skipped"] == len(delivered) and rest["delivered"] == n - len(delivered)
    assert len(_sidecars(out)) == n
