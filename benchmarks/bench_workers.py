"""Queued batches on Celery workers against per-provider rate limits: 1 worker vs 3.

Two providers (Gemini and OpenAI, the real adapters) answer through the emulator, served in
this process behind a vendor-side limit per provider: a token bucket (burst 2) that answers
HTTP 429 in the vendor's own format past its rate. The workers' chain has the same limits
client-side (``images_per_minute`` in the config), held in the queue's Redis, so every worker
process draws from one limiter per provider. Real time, with the limits scaled 60x (the
config's "per minute" figures are served per second), so a run takes seconds, not minutes.

Reported: images per second delivered between the first and the last call, as a share of the
combined limit (target >= 95 %), and the share of calls that met a 429 (target < 1 %). Needs
``redis-server`` on the PATH (``scripts/test`` installs it); the row says so when it is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key"
#: Images per second per provider (the config says the same numbers per minute x 60).
LIMITS = {"gemini": 8.0, "openai": 6.0}
CONCURRENCY = 16
LATENCY_MS = 50

CONFIG = """
default_chain = "main"

[chains.main]
attempt_timeout_s = 30
policy = {{ cooldowns_s = {{ rate_limited = 1.0 }} }}

[[chains.main.providers]]
vendor = "gemini"
model = "gemini-2.5-flash-image"
images_per_minute = {gemini}

[[chains.main.providers]]
vendor = "openai"
model = "gpt-image-2"
images_per_minute = {openai}
"""


class VendorLimits:
    """ASGI middleware: a token bucket per vendor in front of the emulator's generate calls;
    past its rate, a 429 in the vendor's format. Counts calls and refusals."""

    def __init__(self, app: Any, per_second: dict[str, float], burst: float = 2.0) -> None:
        self.app = app
        self.rate = per_second
        self.burst = burst
        self.tokens = dict.fromkeys(per_second, burst)
        self.last = dict.fromkeys(per_second, time.monotonic())
        self.calls = dict.fromkeys(per_second, 0)
        self.rejected = dict.fromkeys(per_second, 0)
        self.times: dict[str, list[float]] = {v: [] for v in per_second}
        self._lock = threading.Lock()

    def _take(self, vendor: str) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens[vendor] = min(self.burst, self.tokens[vendor]
                                      + (now - self.last[vendor]) * self.rate[vendor])
            self.last[vendor] = now
            self.calls[vendor] += 1
            if self.tokens[vendor] >= 1.0:
                self.tokens[vendor] -= 1.0
                self.times[vendor].append(time.time())
                return True
            self.rejected[vendor] += 1
            return False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        vendor = _vendor(scope)
        if vendor is not None and not self._take(vendor):
            body = json.dumps(_too_many(vendor)).encode()
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json"), (b"retry-after", b"1")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _vendor(scope: Any) -> str | None:
    if scope.get("type") != "http" or scope.get("method") != "POST":
        return None
    path = str(scope.get("path", ""))
    if path.endswith(":generateContent"):
        return "gemini"
    if path.endswith("/images/generations"):
        return "openai"
    return None


def _too_many(vendor: str) -> dict[str, Any]:
    if vendor == "gemini":
        return {"error": {"code": 429, "message": "Resource has been exhausted",
                          "status": "RESOURCE_EXHAUSTED"}}
    return {"error": {"message": "Rate limit reached for images per minute",
                      "type": "requests", "param": None, "code": "rate_limit_exceeded"}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _redis(folder: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    assert binary is not None
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def _workers(n: int, queue: str, emulator: str, config: Path) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FALLBACK_CHAIN_")}
    env["PYTHONPATH"] = str(ROOT)
    logs = [config.parent / f"worker-{i}.log" for i in range(n)]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "fallback_chain.cli", "worker", "--queue", queue,
         "--concurrency", str(CONCURRENCY), "--config", str(config), "--emulator", emulator,
         "--emulator-key", KEY, "--loglevel", "INFO", "--hostname", f"bench{i}@local"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=config.parent)
        for i, log in enumerate(logs)]
    try:
        deadline = time.monotonic() + 90
        for proc, log in zip(procs, logs, strict=True):
            while b" ready." not in log.read_bytes():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _case(workers: int, items: int) -> dict[str, Any]:
    from fallback_chain.distributed.coordinator import QueueOptions, run_queued_batch
    from fallback_chain.emulator import Emulator, serve_in_thread

    combined = sum(LIMITS.values())
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        folder = Path(tmp)
        emulator = Emulator({"default": {"latency": LATENCY_MS}}, api_keys=KEY, seed=1)
        limited = VendorLimits(emulator, LIMITS)
        config = folder / "fallback-chain.toml"
        config.write_text(CONFIG.format(**{v: r * 60 for v, r in LIMITS.items()}))
        source = folder / "input.jsonl"
        source.write_text("".join(json.dumps({"id": f"i{i:05d}", "prompt": f"brief {i}",
                                              "size": "1024x1024"}) + "\n"
                                  for i in range(items)))
        with (_redis(folder) as queue, serve_in_thread(limited) as url,
              _workers(workers, queue, url, config)):
            wall = time.perf_counter()
            run = asyncio.run(run_queued_batch(
                queue, str(source), str(folder / "out"),
                QueueOptions(fsync=False, handle_signals=False)))
            wall = time.perf_counter() - wall
    granted = sorted(t for times in limited.times.values() for t in times)
    span = granted[-1] - granted[0] if len(granted) > 1 else float("nan")
    rate = (len(granted) - 1) / span  # deliveries per second between the first and last call
    calls = sum(limited.calls.values())
    rejected = sum(limited.rejected.values())
    summary = run.summary
    return {
        "case": f"{workers} worker{'s' if workers > 1 else ''} x {CONCURRENCY} in flight, "
                f"limits {' + '.join(f'{v} {r:g}' for v, r in LIMITS.items())} images/s "
                "(per minute x 60)",
        "items": items, "delivered": summary.delivered, "failed": summary.failed,
        "images/s": rate, "combined limit/s": combined, "of limit": f"{rate / combined:.1%}",
        "calls": calls, "429s": f"{rejected} ({rejected / max(calls, 1):.2%})",
        "per provider": ", ".join(f"{v} {limited.times[v].__len__()}" for v in LIMITS),
        "wall s": wall}


def run(quick: bool = False) -> dict[str, Any]:
    title = "Queued batches on Celery workers: 1 vs 3 workers against per-provider limits"
    if shutil.which("redis-server") is None:
        return {"title": title, "rows": [{"case": "not run: redis-server is not installed"}],
                "notes": "Install redis-server (scripts/test does) and run again."}
    items = 200 if quick else 420  # about 30 s of the combined limit
    rows = [_case(1, items), _case(3, items)]
    return {"title": title, "rows": rows, "notes": (
        "Targets: >= 95 % of the combined limit, < 1 % of calls meeting a 429. The emulator "
        "(in this process, behind a token bucket per vendor, burst 2, that answers 429 past "
        f"its rate) answers after {LATENCY_MS} ms; the workers' client-side limiter "
        "(images_per_minute, GCRA) is shared in the queue's Redis, so three processes draw "
        "from one limit per provider. images/s counts the calls the vendor accepted between "
        "the first and the last; wall s includes enqueuing, the tail and assembling the "
        "manifest, not the workers' start-up.")}
