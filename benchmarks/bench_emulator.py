"""Requests per second the emulator serves: a real uvicorn server (``fallback-chain emulate``
in its own process) on loopback, driven by a concurrent ``httpx.AsyncClient``; success path
for each vendor, so we know the emulator is never the bottleneck of our own benchmarks."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

KEY = "bench-key"
CONCURRENCY = 16
PROMPT = "a lighthouse at dusk"

# name -> (method, path, body, headers) built from a base URL and a per-run job id
Case = Callable[[str], tuple[str, str, dict[str, Any] | None, dict[str, str]]]
OPENAI = {"authorization": f"Bearer {KEY}"}
GEMINI = {"x-goog-api-key": KEY}

CASES: dict[str, Case] = {
    "openai models preflight (GET /v1/models/{m})": lambda _job: (
        "GET", "/v1/models/gpt-image-1.5", None, OPENAI),
    "openai generation (gpt-image, 1024x1024 PNG, b64)": lambda _job: (
        "POST", "/v1/images/generations",
        {"model": "gpt-image-1.5", "prompt": PROMPT, "quality": "low", "size": "1024x1024"},
        OPENAI),
    "openai generation (dall-e-3, url)": lambda _job: (
        "POST", "/v1/images/generations", {"model": "dall-e-3", "prompt": PROMPT}, OPENAI),
    "gemini generateContent (1:1 PNG, inline base64)": lambda _job: (
        "POST", "/v1/models/gemini-2.5-flash-image:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
         "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}, GEMINI),
    "leonardo create generation": lambda _job: (
        "POST", "/api/rest/v1/generations", {"prompt": PROMPT, "num_images": 1}, OPENAI),
    "leonardo poll generation (COMPLETE)": lambda job: (
        "GET", f"/api/rest/v1/generations/{job}", None, OPENAI),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(port: int, faults: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fallback_chain.cli", "emulate", "--port", str(port),
         "--api-key", KEY, "--faults", str(faults), "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1], env={**os.environ})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=0.5).is_success:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died")
    proc.kill()
    raise RuntimeError("emulator did not start")


async def _drive(base: str, case: Case, job: str, total: int) -> dict[str, float]:
    latencies: list[float] = []
    remaining = total
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                method, path, body, headers = case(job)
                started = time.perf_counter()
                response = await client.request(method, path, json=body, headers=headers)
                await response.aread()
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{method} {path}: {response.status_code} "
                                       f"{response.text[:200]}")

        for _ in range(min(CONCURRENCY, 8)):  # warm-up: connections and the image cache
            await client.request(*case(job)[:2], json=case(job)[2], headers=case(job)[3])
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"requests": total, "rps": total / elapsed,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


def run(quick: bool) -> dict[str, Any]:
    total = 200 if quick else 2000
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    faults = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-emulator-{port}.toml"
    faults.write_text("[leonardo]\njob_delay_s = 0\n")
    proc = _start_server(port, faults)
    rows: list[dict[str, Any]] = []
    try:
        created = httpx.post(f"{base}/api/rest/v1/generations", headers=OPENAI,
                             json={"prompt": PROMPT, "num_images": 1}).json()
        job = created["sdGenerationJob"]["generationId"]
        for name, case in CASES.items():
            result = asyncio.run(_drive(base, case, job, total))
            rows.append({"case": name, **{k: round(v, 1) for k, v in result.items()}})
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        faults.unlink(missing_ok=True)
    return {
        "title": "Emulator throughput (real uvicorn server on loopback)",
        "rows": rows,
        "notes": (f"`fallback-chain emulate` in its own process (uvicorn, h11, one worker), "
                  f"driven by one httpx.AsyncClient with {CONCURRENCY} concurrent requests "
                  f"on the same machine; {total} requests per case after a warm-up. Same "
                  "prompt throughout, so images come from the drawing cache: the figures "
                  "measure serving, not drawing. The client shares the machine's cores with "
                  "the server, so these are lower bounds."),
    }
