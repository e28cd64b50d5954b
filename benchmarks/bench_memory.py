"""Peak memory with 1,000 concurrent requests in flight (issue 9, case g).

The emulator (its own process) answers a model configured with a fixed latency of 1.5 s, so
1,000 requests started at once are all open together: the run fails unless the emulator saw
exactly 1,000 calls per burst and, from its log (arrival and response time of each), held all
of them open at the same moment. Each variant runs in a fresh interpreter, so its peak RSS is
its own:

* ``rss_before_mb``: resident memory once the client is warm (one request made);
* ``peak_rss_mb``: the peak resident memory during the burst (``VmHWM``, reset just before);
* ``kb/request``: the growth over the burst per request in flight;
* ``traced_peak_kb/request``: a second burst under ``tracemalloc``: the peak of Python
  allocations above the pre-burst level, per request (Python objects only, no C buffers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_overhead import (
    BODY,
    KEY,
    PROMPT,
    SIZE,
    emulator,
    hits,
    import_litellm,
    litellm_version,
    log_entries,
    no_retry_client,
)

ROOT = Path(__file__).resolve().parents[1]
SLOW_MODEL = "gpt-image-2.6-flare"  # never fails, answers after a fixed latency
VARIANTS = {"raw": "raw openai SDK", "chain": "fallback-chain", "litellm": "LiteLLM Router"}


def _status_mb(field: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_mb() -> float:
    """Resident memory now."""
    now = _status_mb("VmRSS")
    return now if now is not None else _peak_rss_mb()


def _reset_peak() -> None:
    """Start the peak-RSS watermark afresh (Linux >= 4.0: ``echo 5 > clear_refs``)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    """Peak resident memory of this process image. ``VmHWM`` rather than ``ru_maxrss``: on
    Linux the latter survives ``exec``, so a child started by a big parent reports the
    parent's size."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10  # bytes vs KiB


async def _setup(variant: str, base: str) -> tuple[Callable[[], Awaitable[Any]],
                                                   Callable[[], Awaitable[None]]]:
    body = {**BODY, "model": SLOW_MODEL}
    if variant == "raw":
        import openai

        # the SDK's default 5 s connect timeout trips when 1,000 connections open at once on
        # two cores (the emulator accepts them one by one): this measures memory, not that
        client = openai.AsyncOpenAI(api_key=KEY, base_url=f"{base}/v1", max_retries=0,
                                    timeout=openai.Timeout(600, connect=120))

        async def raw() -> Any:
            return await client.images.generate(**body)

        return raw, client.close
    if variant == "chain":
        from fallback_chain import Chain, ImageRequest
        from fallback_chain.providers import OpenAIProvider

        chain = Chain([OpenAIProvider(model=SLOW_MODEL, api_key=KEY, base_url=f"{base}/v1")])
        request = ImageRequest(prompt=PROMPT, size=SIZE, quality="draft")

        async def ours() -> Any:
            return await chain.agenerate(request)

        return ours, chain.aclose
    if variant == "litellm":
        litellm = import_litellm()
        client = no_retry_client(base)
        extra = {k: v for k, v in BODY.items() if k != "prompt"}
        router = litellm.Router(model_list=[{"model_name": "slow", "litellm_params": {
            "model": f"openai/{SLOW_MODEL}", "api_key": KEY, "api_base": f"{base}/v1",
            "max_retries": 0}}], num_retries=0, disable_cooldowns=True)

        async def lite() -> Any:
            return await router.aimage_generation(model="slow", prompt=PROMPT, client=client,
                                                  **extra)

        async def close() -> None:
            await client.close()

        return lite, close
    raise ValueError(f"unknown variant {variant!r}")


async def _worker(variant: str, base: str, n: int) -> dict[str, Any]:
    call, close = await _setup(variant, base)
    await call()  # warm: imports, client, connection
    gc.collect()
    _reset_peak()
    before = _rss_mb()
    t0 = time.perf_counter()
    await asyncio.gather(*(call() for _ in range(n)))
    elapsed = time.perf_counter() - t0
    peak = _peak_rss_mb()
    gc.collect()
    tracemalloc.start()
    floor = tracemalloc.get_traced_memory()[0]
    t1 = time.perf_counter()
    await asyncio.gather(*(call() for _ in range(n)))
    traced_elapsed = time.perf_counter() - t1
    traced_peak = tracemalloc.get_traced_memory()[1] - floor
    tracemalloc.stop()
    await close()
    return {"rss_before_mb": before, "peak_rss_mb": peak, "burst_s": elapsed,
            "traced_peak_mb": traced_peak / 2**20, "traced_burst_s": traced_elapsed}


def max_in_flight(entries: list[dict[str, Any]]) -> int:
    """How many logged requests the emulator held open at once (a log entry's ``time`` is when
    its response head went out, ``latency_ms`` before that it arrived)."""
    events: list[tuple[float, int]] = []
    for e in entries:
        end = float(e["time"])
        events += [(end - float(e["latency_ms"]) / 1000, 1), (end, -1)]
    current = peak = 0
    for _, step in sorted(events):  # at equal times the end (-1) sorts first
        current += step
        peak = max(peak, current)
    return peak


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        new = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def _child(variant: str, base: str, n: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_memory", "--worker", variant, "--base", base,
         "--n", str(n)], capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory worker {variant} failed: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _faults(latency_ms: int) -> str:
    return f'[openai.models."{SLOW_MODEL}"]\nlatency = {latency_ms}\n'


def run(quick: bool = False, *, litellm: bool | None = None) -> dict[str, Any]:
    n, latency_ms = (100, 300) if quick else (1000, 1500)
    installed = litellm_version()
    with_litellm = installed is not None if litellm is None else litellm
    variants = ["raw", "chain"] + (["litellm"] if with_litellm else [])
    rows: list[dict[str, Any]] = []
    with emulator(_faults(latency_ms)) as base:
        seq = 0
        for variant in variants:
            print(f"    {variant} ...", file=sys.stderr, flush=True)
            r = _child(variant, base, n)
            entries = log_entries(base, seq)
            seq = max([seq, *(int(e["seq"]) for e in entries)])
            seen = hits(entries)
            want = {(SLOW_MODEL, 200): 2 * n + 1}
            if seen != want:
                raise RuntimeError(f"memory {variant}: expected {want} calls, saw {dict(seen)}")
            overlap = max_in_flight(entries)
            if overlap < n:
                raise RuntimeError(
                    f"memory {variant}: at most {overlap} of {n} requests were in flight at the "
                    "emulator at once")
            rows.append({
                "variant": VARIANTS[variant], "in flight": n,
                "rss_before_mb": r["rss_before_mb"], "peak_rss_mb": r["peak_rss_mb"],
                "kb/request": (r["peak_rss_mb"] - r["rss_before_mb"]) * 1024 / n,
                "traced_peak_kb/request": r["traced_peak_mb"] * 1024 / n,
                "burst_s": r["burst_s"], "max in flight at the emulator": overlap,
            })
    lite = ("" if with_litellm else
            " **LiteLLM is not installed, so its row is missing** (`pip install -e '.[bench]'`)."
            if installed is None else " LiteLLM skipped on request.")
    notes = (f"{n} requests started at once against `{SLOW_MODEL}` with a fixed "
             f"{latency_ms} ms latency in the emulator ({SIZE} PNG, base64 in the "
             "response); each variant in a fresh interpreter. The emulator's log shows all of them "
             "open at once (last column, from the first burst and the tracemalloc one). RSS "
             "growth is what the allocator kept, so it is coarse; the tracemalloc figure counts "
             "Python objects only." + lite)
    return {"title": "Peak memory with requests in flight (g)", "rows": rows, "notes": notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory")
    parser.add_argument("--worker", choices=sorted(VARIANTS))
    parser.add_argument("--base")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.worker:
        _raise_fd_limit()
        print(json.dumps(asyncio.run(_worker(args.worker, args.base, args.n))))
    else:
        print(json.dumps(run(quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
