"""What shared state costs per request: the router with its state in memory (the default)
against the same router with its state in Redis (a local ``redis-server`` on loopback,
started here), with zero-latency providers so only the state's cost shows.

Cases: one provider, nothing limited (breaker check and record, cooldown check); and one
provider with an images-per-minute limit and a daily budget (all four stores: cooldown,
breaker, limiter, budget reserve and settle). Sequential, and 32 requests in flight.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from typing import Any

from fallback_chain import Chain, ImageRequest, Policy
from fallback_chain.cost.budget import Budget
from fallback_chain.state import RedisState

from .bench_router import NullProvider


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Redis:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.port = _free_port()
        self.dir = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.dir.cleanup()


def _chain(state: Any, limited: bool) -> Chain:
    policy = Policy(images_per_minute=1e9, max_concurrency=1000) if limited else Policy()
    budget = Budget(daily_usd=1e9, name="bench") if limited else None
    return Chain([NullProvider("a")], policy=policy, budget=budget, state=state, log=False)


def _measure(chain: Chain, n: int, concurrency: int, reps: int) -> float:
    request = ImageRequest(prompt="a lighthouse at dusk")

    async def batch() -> float:
        sem = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with sem:
                await chain.agenerate(request)

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - t0

    async def main() -> list[float]:
        await batch()  # warm-up: connections, scripts loaded
        out = [await batch() for _ in range(reps)]
        await chain.aclose()
        return out

    return statistics.median(asyncio.run(main())) / n


def run(quick: bool = False) -> dict[str, Any]:
    n, reps = (500, 3) if quick else (3_000, 5)
    server = _Redis()
    rows = []
    try:
        for limited, label in ((False, "breaker + cooldown"),
                               (True, "breaker + cooldown + rate limit + budget")):
            for concurrency in (1, 32):
                memory = _measure(_chain(None, limited), n, concurrency, reps)
                state = RedisState(server.url)
                shared = _measure(_chain(state, limited), n, concurrency, reps)
                per_request = state.link.round_trips / (n * (reps + 1))
                rows.append({
                    "case": f"{label}, {'sequential' if concurrency == 1 else '32 in flight'}",
                    "memory µs/request": memory * 1e6, "redis µs/request": shared * 1e6,
                    "redis round trips/request": per_request,
                    "redis requests/s": 1 / shared})
    finally:
        server.close()
    return {"title": "Shared state: the router with its state in memory and in Redis",
            "rows": rows,
            "notes": ("Zero-latency providers, a local redis-server on loopback (one process "
                      "on the same 2 cores). A round trip is one script or command sent.")}
