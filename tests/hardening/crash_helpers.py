"""Helpers for the crash-safety test (imported as ``crash_helpers``), and, run as a script, the
batch command with a SIGKILL planted at a chosen write.

``python crash_helpers.py STEP N -- BATCH ARGS...`` runs ``fallback-chain batch BATCH ARGS``
with the batch's storage and manifest modules seeing a wrapped ``os``: at the ``N``-th
occurrence of ``STEP`` the process sends itself SIGKILL (no cleanup, no ``finally``, exactly as
from outside). The steps, for files under the output folder:

* ``image-partial`` / ``sidecar-partial``: half of a temporary file's bytes are written, then
  the kill (a half-written temporary file stays behind);
* ``image-before-rename`` / ``sidecar-before-rename``: the temporary file is whole, not yet
  renamed into place;
* ``image-after-rename`` / ``sidecar-after-rename``: the file is in place, the next write not
  begun (images without a sidecar; a sidecar without its manifest line);
* ``manifest-after-line``: right after an item's manifest line was appended;
* ``manifest-torn``: half an item's manifest line is appended, then the kill. A SIGKILL
  cannot do this to a single ``write``; a machine crash can (the docs say a torn line is
  skipped on reading), so it is planted here on purpose.

``STEP`` ``none`` runs the command unchanged.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()

WRITE_STEPS = ("image-partial", "image-before-rename", "image-after-rename", "sidecar-partial",
               "sidecar-before-rename", "sidecar-after-rename", "manifest-after-line",
               "manifest-torn")

#: Emulated vendors for the crash runs: quick, a little flaky (rate limits, failed jobs, server
#: errors, so fallbacks happen), never refusing (every item can be delivered in the end).
#: Leonardo makes JPEGs, Gemini 2.5 and OpenAI PNGs: an item killed half way may come back as
#: another format from another provider.
FAULTS = """
seed = 23
[default]
latency = { dist = "uniform", min_ms = 5, max_ms = 25 }
[gemini]
rates = { "429" = 0.3, "500" = 0.05 }
retry_after = 0.05
[leonardo]
job_delay_s = 0.03
rates = { job_failed = 0.15 }
[openai]
rates = { "500" = 0.05 }
"""


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FALLBACK_CHAIN_CONFIG", "FALLBACK_CHAIN_LEDGER")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def generate_log(url: str) -> list[dict[str, Any]]:
    """The emulator's log of generation requests (every vendor)."""
    import httpx

    entries: list[dict[str, Any]] = httpx.get(f"{url}/_emulator/log",
                                              params={"endpoint": "generate"},
                                              timeout=10).json()["entries"]
    return entries


def batch_command(plan: str, count: int, *args: str) -> list[str]:
    """The command line of one batch run with a kill planted at the ``count``-th ``plan``."""
    return [sys.executable, str(HERE), plan, str(count), "--", *args]


# ------------------------------------------------------------------------------ the outcome

@dataclass
class Run:
    """One start of the batch command and how it ended."""

    plan: str  # a WRITE_STEPS entry, or "timed"
    detail: tuple[float, int] | int  # (delay, deliveries) when timed, else the occurrence
    returncode: int
    killed: bool
    started_at: float  # wall clock
    ended_at: float  # wall clock, just after the process was reaped
    delivered_after: int  # items with a delivered record in the manifest after this run

    @property
    def seconds(self) -> float:
        return self.ended_at - self.started_at


@dataclass
class Output:
    """What a batch output folder holds, read back independently of the library."""

    folder: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    torn_lines: int = 0

    @classmethod
    def read(cls, folder: Path) -> Output:
        out = cls(folder)
        path = folder / "manifest.jsonl"
        if path.exists():
            for raw in path.read_bytes().splitlines():
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    out.torn_lines += 1
                    continue
                out.records.append(record)
        return out

    @property
    def items(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("type") == "item"]

    def delivered_counts(self) -> Counter[str]:
        return Counter(r["id"] for r in self.items if r.get("status") == "delivered")

    def temp_files(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.name.endswith(".tmp"))


@dataclass
class FakeBatch:
    """A batch of ``rows`` (CSV) through a fake provider, in this process, into
    ``folder/out``."""

    folder: Path
    rows: list[dict[str, Any]]

    @property
    def out(self) -> Path:
        return self.folder / "out"

    def run(self) -> Any:
        import asyncio
        import csv

        from fallback_chain import Chain
        from fallback_chain.batch import BatchOptions, run_batch
        from fallback_chain.providers import FakeProvider

        source = self.folder / "in.csv"
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        with source.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
        chain = Chain([FakeProvider("fake", image_size=(32, 32))], log=False)
        options = BatchOptions(handle_signals=False, fsync=False)
        return asyncio.run(run_batch(chain, str(source), str(self.out), options))


def check_image(data: bytes) -> tuple[int, int]:
    """Decode ``data`` fully (raises on a truncated or corrupt image); its size."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


# ------------------------------------------------------------------------------ the injector

class _CrashingOS:
    """``os`` for the batch's storage and manifest modules, killing the process at one step."""

    def __init__(self, real: Any, step: str, count: int) -> None:
        self._real = real
        self._step = step
        self._left = count
        self._kinds: dict[int, str] = {}
        self._lock = threading.Lock()  # writes run in the storage's thread pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _hit(self, step: str) -> bool:
        if step != self._step:
            return False
        with self._lock:
            self._left -= 1
            return self._left == 0

    def _die(self) -> None:
        self._real.kill(self._real.getpid(), signal.SIGKILL)
        time.sleep(60)  # never reached: SIGKILL cannot be caught

    @staticmethod
    def _kind(path: str) -> str | None:
        name = os.path.basename(str(path))
        if name == "manifest.jsonl":
            return "manifest"
        if name.startswith(".") and name.endswith(".tmp"):
            name = name[1:].rsplit(".", 2)[0]  # .NAME.<pid>-<n>.tmp -> NAME
        elif not name or name.startswith("."):
            return None
        return "sidecar" if name.endswith(".json") else "image"

    def open(self, path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        fd: int = self._real.open(path, flags, mode, **kw)
        kind = self._kind(path)
        if kind is not None:
            self._kinds[fd] = kind
        return fd

    def close(self, fd: int) -> None:
        self._kinds.pop(fd, None)
        self._real.close(fd)

    def write(self, fd: int, data: Any) -> int:
        kind = self._kinds.get(fd)
        if kind == "manifest" and b'"type":"item"' not in bytes(data):
            kind = None  # the run's header line, or the newline ending a torn line
        torn = {"image": "image-partial", "sidecar": "sidecar-partial",
                "manifest": "manifest-torn"}.get(kind or "")
        if torn is not None and len(data) > 1 and self._hit(torn):
            self._real.write(fd, bytes(data[:len(data) // 2]))
            self._die()
        written: int = self._real.write(fd, data)
        if kind == "manifest" and self._hit("manifest-after-line"):
            self._die()
        return written

    def replace(self, src: Any, dst: Any) -> None:
        kind = self._kind(dst)
        if kind in ("image", "sidecar") and self._hit(f"{kind}-before-rename"):
            self._die()
        self._real.replace(src, dst)
        if kind in ("image", "sidecar") and self._hit(f"{kind}-after-rename"):
            self._die()


def _main(argv: list[str]) -> None:
    step, count, sep, *args = argv
    assert sep == "--", "usage: crash_helpers.py STEP N -- BATCH ARGS..."
    if step != "none":
        from fallback_chain.batch import manifest, storage

        crashing = _CrashingOS(os, step, int(count))
        storage.os = crashing  # type: ignore[attr-defined,assignment]
        manifest.os = crashing  # type: ignore[attr-defined,assignment]
    import typer

    from fallback_chain.cli.batch import batch

    # the crash plans count the batch's own writes; the HTML report written after a finished
    # run (docs/report.md) is not what they exercise
    sys.argv = ["fallback-chain batch", *args, "--no-report"]
    typer.run(batch)


if __name__ == "__main__":
    _main(sys.argv[1:])
