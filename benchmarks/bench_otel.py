"""What OpenTelemetry export costs the router (zero-latency providers, sequential).

Two workloads: one successful attempt, and the chain ``[429], [500, 500], ok`` (four attempts:
a 429 moves on, a 500 is retried at once and fails again, the third provider delivers). Each
runs under these set-ups:

* **no exporter**: the baseline, nobody subscribed to ``chain.events``;
* **instrument(), no provider configured**: ``instrument(chain)`` with no tracer or meter
  provider given or set globally, so it subscribes nothing;
* **fresh interpreter, [otel] installed / extra absent**: the baseline again in new processes,
  with OpenTelemetry importable, and with ``opentelemetry`` and ``prometheus_client`` made
  unimportable (as if the extra were not installed); compared with each other;
* **meter provider / tracer provider / both**: the OpenTelemetry SDK with an in-memory metric
  reader and a span exporter that drops what it is handed (``SimpleSpanProcessor``: spans are
  built and ended in the request's own task; an application would batch the export).

The figures are (CPU time of ``n`` requests) / ``n``, best and median over repetitions in
which the set-ups take turns; ``spread`` is (slowest - fastest) / fastest, the noise against
which the differences are read. CPU time of the process, not wall time: the machine is
shared, and the requests are CPU-bound on one thread (no I/O, no sleeping, and the span
processor and metric reader used here start no thread).
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fallback_chain import Chain, ImageRequest, Policy
from fallback_chain.errors import ProviderError
from fallback_chain.imaging import placeholder_image
from fallback_chain.outcome import Outcome
from fallback_chain.provider import Capabilities, Provider, ProviderReply
from fallback_chain.results import GeneratedImage

ROOT = Path(__file__).resolve().parent.parent
_IMAGE = GeneratedImage.from_bytes(placeholder_image(64, 64))
#: every failure moves on or retries at once; no cooldown, no breaker opening
POLICY = Policy(cooldowns_s={"rate_limited": 0, "server_error": 0}, backoff_initial_s=0.0,
                backoff_jitter=0.0, breaker_failures=1_000_000_000)
WORKLOADS = {"success": 1, "429, 500->500, ok": 4}


class NullProvider(Provider):
    """Succeeds, or fails with a fresh ``ProviderError`` for ``status``, instantly."""

    def __init__(self, name: str, status: int | None = None) -> None:
        self.name = name
        self.model = "null"
        self.capabilities = Capabilities(max_n=10)
        self._status = status
        self._reply = ProviderReply(images=[_IMAGE], cost_usd=0.01)

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        if self._status is not None:
            outcome = Outcome.RATE_LIMITED if self._status == 429 else Outcome.SERVER_ERROR
            raise ProviderError(outcome, "nope", status_code=self._status)
        return self._reply

    def estimate_cost(self, request: ImageRequest) -> float | None:
        return 0.01


def build(workload: str) -> Chain:
    if workload == "success":
        return Chain([NullProvider("c")], policy=POLICY, log=False)
    return Chain([NullProvider("a", 429), NullProvider("b", 500), NullProvider("c")],
                 policy=POLICY, log=False)


def measure(chains: dict[str, Chain], attempts: int, n: int, reps: int
            ) -> dict[str, dict[str, Any]]:
    """Time ``n`` sequential requests on each chain, ``reps`` times, the chains taking turns
    within each repetition (so that a slow spell of a shared machine hits them alike)."""
    request = ImageRequest(prompt="a lighthouse at dusk")

    async def loop(chain: Chain) -> float:
        t0 = time.process_time()
        for _ in range(n):
            result = await chain.agenerate(request)
        if len(result.attempts) != attempts:
            raise RuntimeError(f"took {len(result.attempts)} attempts, not {attempts}")
        return time.process_time() - t0

    async def main() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {label: [] for label in chains}
        for chain in chains.values():
            await loop(chain)  # warm-up
        for _ in range(reps):
            for label, chain in chains.items():
                gc.collect()
                out[label].append(await loop(chain))
        return out

    rows = {}
    for label, times in asyncio.run(main()).items():
        best, median = min(times) / n * 1e6, statistics.median(times) / n * 1e6
        rows[label] = {"best µs/request": best, "median µs/request": median,
                       "best µs/attempt": best / attempts,
                       "spread %": (max(times) - min(times)) / min(times) * 100}
    return rows


def _sdk(traces: bool, metrics: bool) -> Callable[[Chain], Any]:
    def setup(chain: Chain) -> Any:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        from fallback_chain.telemetry.otel import instrument

        class Drop(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        tracer_provider = meter_provider = None
        if traces:
            tracer_provider = TracerProvider()
            tracer_provider.add_span_processor(SimpleSpanProcessor(Drop()))
        if metrics:
            meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        exporter = instrument(chain, tracer_provider=tracer_provider,
                              meter_provider=meter_provider)
        assert exporter.active
        return exporter

    return setup


def _unconfigured(chain: Chain) -> Any:
    from fallback_chain.telemetry.otel import instrument

    exporter = instrument(chain)
    if exporter.active or chain.events:
        raise RuntimeError("a global OpenTelemetry provider is set: not the case measured")
    return exporter


SETUPS: dict[str, Callable[[Chain], Any] | None] = {
    "no exporter": None,
    "instrument(), no provider configured": _unconfigured,
    "meter provider (SDK)": _sdk(traces=False, metrics=True),
    "tracer provider (SDK, spans dropped)": _sdk(traces=True, metrics=False),
    "tracer + meter providers (SDK)": _sdk(traces=True, metrics=True),
}

#: run in a fresh interpreter, with or without OpenTelemetry importable: prints the row as JSON
_FRESH = """
import json, sys
if {absent}:
    for name in ("opentelemetry", "prometheus_client"):
        sys.modules[name] = None
from benchmarks.bench_otel import build, measure
rows = measure({{"x": build({workload!r})}}, {attempts}, {n}, {reps})
print(json.dumps(rows["x"]))
"""

FRESH_INSTALLED = "fresh interpreter, [otel] installed"
FRESH_ABSENT = "fresh interpreter, [otel] extra absent"


def _fresh(workload: str, attempts: int, n: int, reps: int, rounds: int
           ) -> dict[str, dict[str, Any]]:
    """The baseline in fresh interpreters with and without OpenTelemetry importable, taking
    turns ``rounds`` times; the best of each."""
    best: dict[str, dict[str, Any]] = {}
    for _ in range(rounds):
        for label, absent in ((FRESH_INSTALLED, False), (FRESH_ABSENT, True)):
            code = _FRESH.format(absent=absent, workload=workload, attempts=attempts, n=n,
                                 reps=reps)
            out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                                 text=True, check=True)
            row = dict(json.loads(out.stdout))
            if label not in best or row["best µs/request"] < best[label]["best µs/request"]:
                best[label] = row
    return best


def run(quick: bool = False) -> dict[str, Any]:
    n, reps = (1_000, 3) if quick else (3_000, 9)
    rows = []
    for workload, attempts in WORKLOADS.items():
        chains = {}
        for label, setup in SETUPS.items():
            chains[label] = build(workload)
            if setup is not None:
                setup(chains[label])
        measured = measure(chains, attempts, n, reps)
        base = measured["no exporter"]["best µs/request"]
        fresh = _fresh(workload, attempts, n, reps, 2 if quick else 3)
        for label, row in [*measured.items(), *fresh.items()]:
            if label == FRESH_ABSENT:
                base = fresh[FRESH_INSTALLED]["best µs/request"]
            rows.append({"workload": workload, "set-up": label, **row,
                         "vs baseline %": (row["best µs/request"] / base - 1) * 100})
    return {
        "title": "OpenTelemetry export overhead (zero-latency providers, sequential)",
        "rows": rows,
        "notes": (
            f"CPU time per request. {n} requests per repetition, {reps} repetitions, the "
            "set-ups taking turns within each; `best` is the fastest repetition, `spread %` "
            "is (slowest - fastest) / fastest, the noise the differences are read against, "
            "and `vs baseline %` compares the best figures. The two 'fresh interpreter' rows "
            "run the baseline in new processes, with and without opentelemetry importable "
            "(taking turns, best of each); the 'extra absent' row is compared with the "
            "'installed' one. With the SDK, spans go through SimpleSpanProcessor to an "
            "exporter that drops them, and metrics to an in-memory reader that is never "
            "collected during the run: what is measured is building spans and recording "
            "measurements in the request's own task."),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
