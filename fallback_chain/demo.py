"""The demonstration run: no API keys needed, real adapters against the built-in emulator.

``python -m fallback_chain.demo [--out DIR] [--count N] [--seed S]`` starts the emulated
Gemini, Leonardo and OpenAI APIs on a loopback port, builds the canonical chain of the real
adapters pointed at it (explicitly: nothing here ever talks to a real vendor), and generates
a few images one after another. The emulator is told to misbehave the way the real services
do: Gemini is often rate-limited, Leonardo's jobs sometimes fail, and one prompt is refused on
content grounds, so every attempt printed shows the chain at work. Images and one JSON
sidecar per image (prompt, provider, model, cost, latency, every attempt) go to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from .chain import Chain
from .errors import ChainError, ContentPolicyError
from .policy import Policy
from .results import ChainResult

KEY = "demo-key"  # the emulator's key; no real key is read or needed

BRIEFS = [
    "a lighthouse at dusk, watercolour",
    "a bowl of ramen on a wooden table, top-down photo",
    "an isometric city block at night, neon",
    "a red fox in fresh snow",
    "a prompt that the safety system refuses",
    "a product shot of a ceramic mug on linen",
    "a mountain lake at sunrise, mist",
    "a minimalist poster of a bicycle",
]

#: Gemini's first answers in order (then 30 % rate limits at random): the fifth brief is
#: refused. Its Retry-After is short, so Gemini is back for the next brief.
FAULTS: dict[str, Any] = {
    "default": {"latency": {"dist": "uniform", "min_ms": 20, "max_ms": 120}},
    "gemini": {"script": "429,ok,429,ok,image_safety", "rates": {"429": 0.3},
               "retry_after": 0.1},
    "leonardo": {"rates": {"500": 0.4}, "job_delay_s": 0.2},
}


def build_chain(base_url: str) -> Chain:
    from providers import GeminiProvider, LeonardoProvider, OpenAIProvider

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifecycle notices are not the point of the demo
        providers = [
            GeminiProvider(model="gemini-2.5-flash-image", api_key=KEY, base_url=base_url),
            LeonardoProvider(api_key=KEY, base_url=base_url, poll_initial_s=0.1,
                             poll_interval_s=0.1),
            OpenAIProvider(model="gpt-image-2", api_key=KEY, base_url=f"{base_url}/v1"),
        ]
    policy = Policy(attempt_timeout_s=30, backoff_initial_s=0.05)
    return Chain(providers, name="demo", policy=policy, log=False)


async def generate_all(chain: Chain, briefs: list[str], out: Path
                       ) -> list[ChainResult | ChainError]:
    outcomes: list[ChainResult | ChainError] = []
    async with chain:
        for i, brief in enumerate(briefs):
            try:
                res: ChainResult | ChainError = await chain.agenerate(brief, size="1024x1024")
            except ChainError as exc:
                res = exc
            outcomes.append(res)
            report(i, brief, res, out)
    return outcomes


def report(i: int, brief: str, res: ChainResult | ChainError, out: Path) -> None:
    trail = " -> ".join(f"{a.provider}:{a.outcome.value}" for a in res.attempts)
    if isinstance(res, ChainResult):
        path = res.image.save(out / f"{i:03d}")
        sidecar = {"prompt": brief, "provider": res.provider, "model": res.model,
                   "width": res.image.width, "height": res.image.height,
                   "cost_usd": res.cost_usd, "latency_s": res.latency_s,
                   "request_id": res.request_id,
                   "attempts": [a.model_dump(mode="json") for a in res.attempts]}
        path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
        status = f"delivered by {res.provider}/{res.model} in {res.latency_s:.2f}s, " \
                 f"${res.cost_usd:.4f} -> {path}"
    else:
        why = "refused" if isinstance(res, ContentPolicyError) else "not delivered"
        status = f"{why}: {res.message}"
    print(f"[{i:03d}] {brief}\n      {trail}\n      {status}", flush=True)


def run(out: Path, count: int, seed: int) -> int:
    from .emulator import Emulator, serve_in_thread

    briefs = [BRIEFS[i % len(BRIEFS)] for i in range(count)]
    emulator = Emulator(faults=FAULTS, api_keys=KEY, seed=seed)
    with serve_in_thread(emulator) as base_url:
        print(f"emulated vendor APIs on {base_url} (no real vendor is called)\n")
        results = asyncio.run(generate_all(build_chain(base_url), briefs, out))
    delivered = [r for r in results if isinstance(r, ChainResult)]
    spent = sum(r.cost_usd for r in results)
    wasted = sum(a.cost_usd for r in results for a in r.attempts if a.outcome != "success")
    calls = sum(1 for r in results for a in r.attempts if a.outcome.was_called)
    print(f"\n{len(delivered)} of {len(results)} delivered with {calls} calls; "
          f"${spent:.4f} spent (${wasted:.4f} on attempts that delivered nothing); "
          f"images and sidecars in {out}/")
    return 0 if delivered else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fallback_chain.demo",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("demo-out"),
                        help="folder for images and sidecars (default: demo-out)")
    parser.add_argument("--count", type=int, default=len(BRIEFS), help="number of briefs")
    parser.add_argument("--seed", type=int, default=7, help="seed of the emulated faults")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    return run(args.out, args.count, args.seed)


if __name__ == "__main__":
    sys.exit(main())
