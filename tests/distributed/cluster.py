"""Helpers of the queued-batch tests: worker processes, the batch command, the emulator's log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-key"

#: The chain of the workers: Gemini (flaky: rate limits and server errors), then OpenAI.
CONFIG = """
default_chain = "main"

[chains.main]
attempt_timeout_s = 30
policy = { backoff_initial_s = 0.02, cooldowns_s = { rate_limited = 0.2 } }

[[chains.main.providers]]
vendor = "gemini"
model = "gemini-2.5-flash-image"

[[chains.main.providers]]
vendor = "openai"
model = "gpt-image-2"
"""

#: Gemini fails a quarter of its calls; every call takes 150-400 ms.
FAULTS = {
    "seed": 11,
    "default": {"latency": {"dist": "uniform", "min_ms": 150, "max_ms": 400}},
    "gemini": {"rates": {"429": 0.15, "500": 0.1}, "retry_after": 0.2},
}


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("FALLBACK_CHAIN_", "AWS_"))}
    return {**clean, "PYTHONPATH": str(ROOT), **(extra or {})}


class Cluster:
    """``n`` worker processes on one Redis and one emulator."""

    def __init__(self, tmp: Path, redis_url: str, emulator: str,
                 extra_env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.redis_url = redis_url
        self.emulator = emulator
        self.extra_env = extra_env or {}
        self.config = tmp / "fallback-chain.toml"
        self.config.write_text(CONFIG)
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self, n: int, concurrency: int = 8) -> None:
        for i in range(n):
            log = open(self.tmp / f"worker-{i}.log", "wb")  # noqa: SIM115
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "fallback_chain.cli", "worker", "--queue",
                 self.redis_url, "--concurrency", str(concurrency), "--config",
                 str(self.config), "--emulator", self.emulator, "--emulator-key", KEY,
                 "--visibility-timeout", "5", "--restore-interval", "1", "--lease", "10",
                 "--loglevel", "INFO", "--hostname", f"w{i}@test"],
                env=env(self.extra_env), stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp))
        deadline = time.monotonic() + 60
        for i in range(n):
            while b" ready." not in (self.tmp / f"worker-{i}.log").read_bytes():
                assert self.workers[i].poll() is None, self.log(i)
                assert time.monotonic() < deadline, self.log(i)
                time.sleep(0.1)

    def log(self, i: int) -> str:
        return (self.tmp / f"worker-{i}.log").read_text(errors="replace")[-4000:]

    def kill(self, i: int) -> None:
        self.workers[i].send_signal(signal.SIGKILL)
        self.workers[i].wait(10)

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def batch(self, source: Path, out: str, *extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "fallback_chain.cli", "batch", str(source), "--out", out,
             "--queue", self.redis_url, "--progress", "none", "--json", "--no-report", *extra],
            env=env(self.extra_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=self.tmp)


def write_input(path: Path, items: int, invalid: int) -> list[str]:
    """``items`` rows with unique prompts, then ``invalid`` rows without a prompt; returns
    the valid ids."""
    ids = [f"item-{i:03d}" for i in range(items)]
    with path.open("w") as fh:
        for i, item_id in enumerate(ids):
            fh.write(json.dumps({"id": item_id, "prompt": f"brief {i:03d}: a fox in snow",
                                 "size": "1024x1024"}) + "\n")
        for j in range(invalid):
            fh.write(json.dumps({"id": f"bad-{j}", "size": "1024x1024"}) + "\n")
    return ids


def generations(emulator: str) -> tuple[Counter[str], dict[str, list[float]]]:
    """Images the emulator delivered (billed answers), per item id, and when each request
    reached it."""
    log = httpx.get(f"{emulator}/_emulator/log", timeout=30).json()["entries"]
    counts: Counter[str] = Counter()
    times: dict[str, list[float]] = {}
    for e in log:
        if e["endpoint"] != "generate" or e["status"] != 200 or e["fault"] is not None:
            continue
        item = "item-" + str(e["prompt"]).split(":", 1)[0].removeprefix("brief ")
        counts[item] += 1
        times.setdefault(item, []).append(e["time"] - e["latency_ms"] / 1000)  # its start
    return counts, times


def done_items(redis_url: str) -> int:
    """Items with an outcome, across every job in the Redis database (one job per test)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = client.scan_iter("fallback-chain:job:*:results")
        return sum(int(client.hlen(key)) for key in keys)
    finally:
        client.close()


def manifest_items(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("type") == "item":
            last[r["id"]] = r
    return last
