"""Router overhead per attempt with zero-latency providers (issue 2's target: <= 20 µs).

The providers here do no work at all (they hand back one prebuilt reply or raise one prebuilt
``ProviderError``), so the time measured is the router's: validation of the request, skip
checks, breaker, timeout scope, attempt record, cost settlement, events and result. Each case
runs sequentially on a plain asyncio loop with the system clock; the figure is the median of
several repetitions, divided by the number of attempts per request.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from typing import Any

from fallback_chain import Chain, ImageRequest, Policy
from fallback_chain.errors import ProviderError
from fallback_chain.imaging import placeholder_image
from fallback_chain.outcome import Outcome
from fallback_chain.provider import Capabilities, Provider, ProviderReply
from fallback_chain.results import GeneratedImage

_IMAGE = GeneratedImage.from_bytes(placeholder_image(64, 64))


class NullProvider(Provider):
    """Succeeds, or fails with a fresh ``ProviderError`` of one outcome, instantly."""

    def __init__(self, name: str, fail: Outcome | None = None) -> None:
        self.name = name
        self.model = "null"
        self.capabilities = Capabilities(max_n=10)
        self._fail = fail
        self._reply = ProviderReply(images=[_IMAGE], cost_usd=0.01)

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        if self._fail is not None:
            status = 500 if self._fail is Outcome.SERVER_ERROR else 429
            raise ProviderError(self._fail, "slow down", status_code=status)
        return self._reply

    def estimate_cost(self, request: ImageRequest) -> float | None:
        return 0.01


def _case(chain: Chain, request: ImageRequest | str, attempts: int, n: int,
          reps: int) -> dict[str, Any]:
    async def loop() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            await chain.agenerate(request)
        return time.perf_counter() - t0

    async def main() -> list[float]:
        await loop()  # warm-up
        out = []
        for _ in range(reps):
            gc.collect()
            out.append(await loop())
        return out

    times = asyncio.run(main())
    per_req = statistics.median(times) / n
    return {"µs/request": per_req * 1e6, "attempts/request": attempts,
            "µs/attempt": per_req * 1e6 / attempts, "requests/s": 1 / per_req}


def run(quick: bool = False) -> dict[str, Any]:
    n, reps = (2_000, 3) if quick else (20_000, 7)
    no_cooldown = Policy(cooldowns_s={"rate_limited": 0})
    # Issue 9's path d at zero latency: no backoff before the retry, a breaker that never opens.
    retry_at_once = Policy(backoff_initial_s=0.0, backoff_jitter=0.0,
                           breaker_failures=1_000_000_000)
    request = ImageRequest(prompt="a lighthouse at dusk")
    rows = []
    cases: list[tuple[str, Chain, int, ImageRequest | str]] = [
        ("success, prebuilt request", Chain([NullProvider("a")], log=False), 1, request),
        ("success, prompt string (validation included)", Chain([NullProvider("a")], log=False),
         1, "a lighthouse at dusk"),
        ("429 -> next provider", Chain([NullProvider("a", Outcome.RATE_LIMITED), NullProvider("b")],
                                        policy=no_cooldown, log=False), 2, request),
        ("500 -> retry -> next provider", Chain([NullProvider("a", Outcome.SERVER_ERROR),
                                                  NullProvider("b")],
                                                 policy=retry_at_once, log=False), 3, request),
        ("success, with default logging subscriber", Chain([NullProvider("a")]), 1, request),
    ]
    for label, chain, attempts, req in cases:
        rows.append({"case": label, **_case(chain, req, attempts, n, reps)})
    return {
        "title": "Router overhead (zero-latency providers, sequential)",
        "rows": rows,
        "notes": (f"{n} requests per repetition, median of {reps}. Target: <= 20 µs per "
                  "attempt on this machine. The 429 case disables the cooldown so every request "
                  "takes both attempts; the 500 case retries at once (no backoff) and never "
                  "opens the breaker, so every request takes three attempts."),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
