"""Queued batches on Celery workers against per-provider rate limits: 1 worker vs 3.

Two providers (Gemini and OpenAI, the real adapters) answer through the emulator, served in
this process behind the vendor's limit per provider: images per minute, counted over a
sliding minute, past which the vendor answers HTTP 429 in its own format. The workers' chain
has the same limits client-side (``images_per_minute`` in the config, default margin), held in
the queue's Redis, so every worker process draws from one limiter per provider. Real time,
real minutes: each case runs for about 80 seconds.

Reported: images per second accepted by the vendors between the first and the last call, as a
share of the combined limit (target >= 95 %), the same without the first and last tenth of the
calls (steady state), and the share of calls that met a 429 (target < 1 %). Needs
``redis-server`` on the PATH (``scripts/test`` installs it); the row says so when it is
missing.
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
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key"
#: Images per minute per provider: the vendor's limit and the workers' config alike.
LIMITS = {"gemini": 180.0, "openai": 120.0}
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
policy = {{ burst_images = {burst} }}

[[chains.main.providers]]
vendor = "openai"
model = "gpt-image-2"
images_per_minute = {openai}
policy = {{ burst_images = {burst} }}
"""


class VendorLimits:
    """ASGI middleware: the vendor's images-per-minute limit in front of the emulator's
    generate calls, counted over a sliding minute per vendor; past it, a 429 in the vendor's
    format. Counts calls and refusals."""

    def __init__(self, app: Any, per_minute: dict[str, float], window_s: float = 60.0) -> None:
        self.app = app
        self.limit = per_minute
        self.window_s = window_s
        self.recent: dict[str, deque[float]] = {v: deque() for v in per_minute}
        self.calls = dict.fromkeys(per_minute, 0)
        self.rejected = dict.fromkeys(per_minute, 0)
        self.times: dict[str, list[float]] = {v: [] for v in per_minute}
        self.refused: list[float] = []
        self._lock = threading.Lock()

    def _take(self, vendor: str) -> bool:
        with self._lock:
            now = time.monotonic()
            recent = self.recent[vendor]
            while recent and recent[0] <= now - self.window_s:
                recent.popleft()
            self.calls[vendor] += 1
            if len(recent) < self.limit[vendor]:
                recent.append(now)
                self.times[vendor].append(time.time())
                return True
            self.rejected[vendor] += 1
            self.refused.append(time.time())
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


def _case(workers: int, items: int, burst: int = 1) -> dict[str, Any]:
    from fallback_chain.distributed.coordinator import QueueOptions, run_queued_batch
    from fallback_chain.emulator import Emulator, serve_in_thread

    combined = sum(LIMITS.values()) / 60.0  # images per second
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        folder = Path(tmp)
        emulator = Emulator({"default": {"latency": LATENCY_MS}}, api_keys=KEY, seed=1)
        limited = VendorLimits(emulator, LIMITS)
        config = folder / "fallback-chain.toml"
        config.write_text(CONFIG.format(burst=burst, **LIMITS))
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
    rate = _rate(granted)  # accepted calls per second between the first and the last
    cut = len(granted) // 10  # steady state: without the first and the last tenth
    steady = _rate(granted[cut:len(granted) - cut])
    start = granted[0]
    calls = sum(limited.calls.values())
    rejected = sum(limited.rejected.values())
    summary = run.summary
    return {
        "case": f"{workers} worker{'s' if workers > 1 else ''} x {CONCURRENCY} in flight, "
                f"limits {' + '.join(f'{v} {r:g}' for v, r in LIMITS.items())} images/min"
                + (f", burst_images {burst}" if burst > 1 else ""),
        "items": items, "delivered": summary.delivered, "failed": summary.failed,
        "images/s": rate, "combined limit/s": combined, "of limit": f"{rate / combined:.1%}",
        "of limit, steady": f"{steady / combined:.1%}",
        "calls": calls, "429s": f"{rejected} ({rejected / max(calls, 1):.2%})",
        "429s at s": " ".join(f"{t - start:.1f}" for t in limited.refused[:10]),
        "per provider": ", ".join(f"{v} {limited.times[v].__len__()}" for v in LIMITS),
        "wall s": wall}


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


def run(quick: bool = False) -> dict[str, Any]:
    title = "Queued batches on Celery workers: 1 vs 3 workers against per-provider limits"
    if shutil.which("redis-server") is None:
        return {"title": title, "rows": [{"case": "not run: redis-server is not installed"}],
                "notes": "Install redis-server (scripts/test does) and run again."}
    items = 200 if quick else 400  # 80 s of the combined limit: more than a minute
    rows = [_case(1, items), _case(3, items), _case(3, items, burst=2)]
    return {"title": title, "rows": rows, "notes": (
        "Targets: >= 95 % of the combined limit, < 1 % of calls meeting a 429. The emulator "
        "(in this process, behind a sliding-minute count per vendor that answers 429 past "
        f"the limit) answers after {LATENCY_MS} ms; the workers' client-side limiter "
        "(images_per_minute, GCRA, calls spaced (60 + 0.5) / limit seconds) is shared in the "
        "queue's Redis, so three processes draw from one limit per provider. images/s counts "
        "the calls the vendors accepted, from the first to the last; wall s includes "
        "enqueuing, the tail and assembling the manifest, not the workers' start-up. "
        "Workers: 16 items in flight each. With burst_images 1 a call granted late (the "
        "process woke late: a loaded machine) loses that time for good; burst_images 2 lets "
        "the limiter catch up, at the price of two calls at once after a pause.")}
