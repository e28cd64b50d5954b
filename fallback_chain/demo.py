"""A small demonstration run that needs no API keys: a chain of fake providers with faults.

``python -m fallback_chain.demo [--out DIR] [--count N] [--seed S]`` generates a few images
through a Gemini-like provider that is often rate-limited, a flaky Leonardo-like one and a
reliable OpenAI-like one; one prompt is refused on content grounds. It writes the images and
a JSON sidecar per image to ``--out`` and prints every attempt and a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from .chain import Chain
from .errors import ChainError, ContentPolicyError
from .outcome import Outcome
from .policy import Policy
from .results import ChainResult

BRIEFS = [
    "a lighthouse at dusk, watercolour",
    "a bowl of ramen on a wooden table, top-down photo",
    "an isometric city block at night, neon",
    "a red fox in fresh snow",
    "a product shot of a ceramic mug on linen",
    "BLOCKED: a prompt the safety system refuses",
    "a mountain lake at sunrise, mist",
    "a minimalist poster of a bicycle",
]


def build_chain(seed: int) -> Chain:
    from providers.fake import FakeProvider

    gemini = FakeProvider("gemini", model="gemini-2.5-flash-image", seed=seed,
                          rates={429: 0.45}, latency_s=(0.05, 0.15), price_usd=0.039,
                          retry_after_s=0.2, blocked_terms=["BLOCKED"])
    leonardo = FakeProvider("leonardo", model="phoenix-1.0", seed=seed + 1,
                            rates={500: 0.4}, latency_s=(0.05, 0.2), price_usd=0.015)
    openai = FakeProvider("openai", model="gpt-image-2", seed=seed + 2,
                          latency_s=(0.1, 0.3), price_usd=0.053)
    return Chain([gemini, leonardo, openai], name="demo",
                 policy=Policy(backoff_initial_s=0.05, cooldowns_s={"rate_limited": 0.2}),
                 seed=seed, log=False)


async def run(out: Path, count: int, seed: int) -> int:
    chain = build_chain(seed)
    briefs = [BRIEFS[i % len(BRIEFS)] for i in range(count)]
    results = await asyncio.gather(*(chain.agenerate(b, size="512x512") for b in briefs),
                                   return_exceptions=True)
    delivered = failed = 0
    spent = 0.0
    for i, (brief, res) in enumerate(zip(briefs, results, strict=True)):
        if isinstance(res, ChainResult):
            delivered += 1
            spent += res.cost_usd
            path = res.image.save(out / f"{i:03d}")
            sidecar = {"prompt": brief, "provider": res.provider, "model": res.model,
                       "cost_usd": res.cost_usd, "latency_s": res.latency_s,
                       "attempts": [a.model_dump(mode="json") for a in res.attempts]}
            path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2))
            status = f"delivered by {res.provider} -> {path}"
            attempts = res.attempts
        elif isinstance(res, ChainError):
            failed += 1
            spent += res.cost_usd
            why = "refused" if isinstance(res, ContentPolicyError) else "failed"
            status = f"{why}: {res.message}"
            attempts = res.attempts
        else:
            raise res
        trail = " -> ".join(f"{a.provider}:{a.outcome.value}" for a in attempts)
        print(f"[{i:03d}] {brief[:45]:<45} {trail}\n      {status}")
    tried = sum(1 for r in results if isinstance(r, ChainResult | ChainError)
                for a in r.attempts if a.outcome is not Outcome.SUCCESS)
    print(f"\n{delivered} delivered, {failed} not delivered, {tried} failed or skipped "
          f"attempts, ${spent:.4f} spent; images in {out}/")
    return 0 if delivered else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fallback_chain.demo",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run(args.out, args.count, args.seed))


if __name__ == "__main__":
    sys.exit(main())
