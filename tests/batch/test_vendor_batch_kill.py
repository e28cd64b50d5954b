"""``--vendor-batch`` survives SIGKILL: the batch command runs in its own process against an
emulator in this one, which kills it (SIGKILL) at chosen moments (the emulator's hooks run
before the answer leaves): right when the job is created (the client never learns its id),
while it is polled, when it has just finished; and the test kills it while it writes the
job's results. Each run is started again; the emulator's log proves a single job was ever
submitted. (That a finished batch's second run sends nothing is in test_vendor_batch.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.emulator.batch_jobs import EmulatedJob

KEY = "kill-key"
BRIEFS = Path(__file__).resolve().parents[2] / "examples" / "briefs.csv"


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Emulator, str]]:
    emu = Emulator(api_keys=KEY)
    with serve_in_thread(emu) as url:
        yield emu, url


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FALLBACK_CHAIN_CONFIG", "FALLBACK_CHAIN_LEDGER")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _sidecars(cwd: Path) -> int:
    return sum(1 for p in (cwd / "out").glob("*.json") if not p.name.startswith("."))


def _run(cwd: Path, url: str, kill_on: str | None, emu: Emulator, when: Any = None,
         watch: Any = None) -> tuple[int, str]:
    """One run of the command, SIGKILLed at the emulator event ``kill_on`` (when ``when``
    says so), or as soon as ``watch()`` is true; its exit code and stdout."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fallback_chain.cli.batch", "briefs.csv", "--out", "out",
         "--emulator", url, "--emulator-key", KEY, "--vendor-batch", "--batch-poll", "0.01",
         "--progress", "none", "--json", "--no-report", "--no-fsync"],
        cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def kill(job: EmulatedJob) -> None:
        if when is None or when(job):
            emu.batches.hooks.clear()
            os.kill(proc.pid, signal.SIGKILL)

    emu.batches.hooks.clear()
    if kill_on is not None:
        emu.batches.hooks[kill_on] = kill
    if watch is not None:
        def watcher() -> None:
            while proc.poll() is None:
                if watch():
                    os.kill(proc.pid, signal.SIGKILL)
                    return
                time.sleep(0.001)

        threading.Thread(target=watcher, daemon=True).start()
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        emu.batches.hooks.clear()
    assert proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode, out


def _count(emu: Emulator, endpoint: str) -> int:
    return emu.log.count(vendor="gemini", endpoint=endpoint)


def test_killed_at_every_step_submits_one_job(live: tuple[Emulator, str],
                                               tmp_path: Path) -> None:
    emu, url = live
    emu.reset()
    emu.batches.configure(polls=4)
    (tmp_path / "briefs.csv").write_bytes(BRIEFS.read_bytes())

    # 1. killed as the job is created: the run never learnt the job's id
    code, _ = _run(tmp_path, url, "create", emu)
    assert code == -signal.SIGKILL
    journal = json.loads((tmp_path / "out" / ".fallback-chain-vendor-batch.json").read_text())
    assert journal["jobs"][0]["state"] == "planned" and journal["jobs"][0]["job_id"] is None
    assert _count(emu, "batch_create") == 1

    # 2. found by its label, re-attached, killed while polling (the job still running)
    code, _ = _run(tmp_path, url, "look", emu)
    assert code == -signal.SIGKILL
    assert _count(emu, "batch_list") == 2 and _count(emu, "batch_get") == 1

    # 3. killed the moment the job is over, before its results arrive
    code, _ = _run(tmp_path, url, "look", emu, when=lambda job: job.state == "completed")
    assert code == -signal.SIGKILL
    assert emu.batches.jobs[0].state == "completed"

    # 4. killed while it writes the job's results (once three sidecars are there)
    code, _ = _run(tmp_path, url, None, emu, watch=lambda: _sidecars(tmp_path) >= 3)
    assert code in (-signal.SIGKILL, 0)  # the run may (rarely) finish first
    assert _count(emu, "batch_create") == 1
    _written = _sidecars(tmp_path) if code else 12

    # 5. collects the rest, the others real-time: every row delivered
    code, output = _run(tmp_path, url, None, emu)
    assert code == 0, output
    summary = json.loads(output)
    assert summary["delivered"] + summary["skipped"] == 12 and summary["failed"] == 0
    # what the killed run wrote is kept (its manifest lines, or its files), not redone
    assert summary["skipped"] + summary["recovered"] == _written
    assert _count(emu, "batch_create") == 1 and len(emu.batches.jobs) == 1
    job_id = emu.batches.jobs[0].id
    sidecars = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")]
    batched = [s for s in sidecars if s.get("vendor_batch")]
    assert len(batched) == 10 and all(s["vendor_batch"]["batch_id"] == job_id
                                      for s in batched)

    lines = [json.loads(line) for line in
             (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    items = [line["id"] for line in lines if line.get("type") == "item"]
    # each batched item written once: by the batch, or recovered from its sidecar when the
    # kill fell between the sidecar and its manifest line
    assert sorted(items) == sorted(set(items))
    assert {s["id"] for s in batched} <= set(items)
    how = {line["id"]: line.get("how") for line in lines if line.get("type") == "item"}
    assert all(how[s["id"]] in ("vendor_batch", "recovered") for s in batched)
