"""What a simulated run measures, request by request, and the summary it comes to.

Definitions (the same in the table, the CSV, the JSON and the plot):

* **success rate**: delivered requests / requests. Refusals on content grounds count as not
  delivered (``refused`` says how many).
* **cost per image**: everything spent (every attempt of every request, delivered or not) /
  images delivered.
* **wasted**: money spent on attempts that delivered nothing: failed and cancelled calls
  (hedges that lost the race) and every call of a request that failed.
* **attempts per image**: calls made (skips are not calls) / images delivered.
* **latency p50/p95/p99**: of delivered requests, from arrival to result, in seconds.
* **served**: share of delivered requests each provider delivered.
* **busy**: seconds of calls each provider was given (the sum of attempt latencies); its share
  says where the chain spends its time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..outcome import Outcome
from .distributions import quantile

_SKIPS = frozenset({Outcome.BREAKER_OPEN, Outcome.COOLING_DOWN, Outcome.SKIPPED,
                    Outcome.BUDGET_EXCEEDED})
_SUCCESS = Outcome.SUCCESS
_CANCELLED = Outcome.CANCELLED


class Bucket:
    """Counters of the requests that arrived in one slice of the timeline."""

    __slots__ = ("delivered", "images", "latencies", "requests", "served", "spend", "wasted")

    def __init__(self, providers: int) -> None:
        self.requests = 0
        self.delivered = 0
        self.images = 0
        self.spend = 0.0
        self.wasted = 0.0
        self.latencies: list[float] = []
        self.served = [0] * providers


class Collector:
    """Accumulates requests as they finish (``add``), then ``summary``."""

    def __init__(self, providers: Sequence[str], start: float, bucket_s: float) -> None:
        self.providers = list(providers)
        self.index = {name: i for i, name in enumerate(self.providers)}
        self.start = start
        self.bucket_s = bucket_s
        self.buckets: dict[int, Bucket] = {}
        self.refused = 0
        self.calls = 0
        self.cancelled = 0
        self.busy = [0.0] * len(self.providers)
        self.calls_by = [0] * len(self.providers)
        self.spend_by = [0.0] * len(self.providers)
        self.finished_at = start

    def add(self, arrived: float, latency: float, served_by: str | None, n: int,
            attempts: Sequence[Any], refused: bool = False) -> None:
        """One finished request: arrival time, latency, the provider that delivered it
        (``None``: not delivered), images asked for, and its attempts."""
        key = int((arrived - self.start) // self.bucket_s)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(len(self.providers))
        bucket.requests += 1
        index, busy, calls_by, spend_by = self.index, self.busy, self.calls_by, self.spend_by
        spend = 0.0
        delivering = 0.0
        found = served_by is None
        calls = 0
        for a in attempts:
            outcome = a.outcome
            if outcome in _SKIPS:
                continue
            calls += 1
            i = index[a.provider]
            cost = a.cost_usd
            busy[i] += a.latency_s
            calls_by[i] += 1
            spend_by[i] += cost
            spend += cost
            if outcome is _SUCCESS:
                if not found and a.provider == served_by:
                    found = True
                    delivering = cost
            elif outcome is _CANCELLED:
                self.cancelled += 1
        self.calls += calls
        bucket.spend += spend
        bucket.wasted += spend - delivering
        if served_by is not None:
            bucket.delivered += 1
            bucket.images += n
            bucket.latencies.append(latency)
            bucket.served[index[served_by]] += 1
        elif refused:
            self.refused += 1
        end = arrived + latency
        if end > self.finished_at:
            self.finished_at = end

    def summary(self, config: str, note: str = "") -> ConfigResult:
        buckets = [self.buckets[k] for k in sorted(self.buckets)]
        requests = sum(b.requests for b in buckets)
        delivered = sum(b.delivered for b in buckets)
        images = sum(b.images for b in buckets)
        spend = sum(b.spend for b in buckets)
        wasted = sum(b.wasted for b in buckets)
        latencies = sorted(x for b in buckets for x in b.latencies)
        served = [sum(b.served[i] for b in buckets) for i in range(len(self.providers))]
        busy_total = sum(self.busy)
        timeline = [
            TimelineRow(self.start + k * self.bucket_s, b.requests, b.delivered, b.images,
                        b.spend, b.wasted, _q(sorted(b.latencies), 0.5),
                        _q(sorted(b.latencies), 0.95),
                        {p: b.served[i] for i, p in enumerate(self.providers)})
            for k, b in sorted(self.buckets.items())]
        return ConfigResult(
            config=config, requests=requests, delivered=delivered, refused=self.refused,
            images=images, spend_usd=spend, wasted_usd=wasted, calls=self.calls,
            cancelled=self.cancelled,
            latency_p50_s=_q(latencies, 0.5), latency_p95_s=_q(latencies, 0.95),
            latency_p99_s=_q(latencies, 0.99),
            served={p: served[i] for i, p in enumerate(self.providers)},
            busy_s={p: self.busy[i] for i, p in enumerate(self.providers)},
            busy_share={p: (self.busy[i] / busy_total if busy_total else 0.0)
                        for i, p in enumerate(self.providers)},
            calls_by={p: self.calls_by[i] for i, p in enumerate(self.providers)},
            spend_by={p: self.spend_by[i] for i, p in enumerate(self.providers)},
            finished_at=self.finished_at, timeline=timeline, note=note)


def _q(ordered: list[float], q: float) -> float:
    return quantile(ordered, q) if ordered else math.nan


class _Rates:
    """Figures derived the same way for a time bucket and for a whole configuration."""

    requests: int
    delivered: int
    images: int
    spend_usd: float

    @property
    def success_rate(self) -> float:
        return self.delivered / self.requests if self.requests else math.nan

    @property
    def cost_per_image_usd(self) -> float:
        return self.spend_usd / self.images if self.images else math.nan


@dataclass(frozen=True)
class TimelineRow(_Rates):
    """The requests that arrived in one slice (``start``: seconds since midnight)."""

    start: float
    requests: int
    delivered: int
    images: int
    spend_usd: float
    wasted_usd: float
    latency_p50_s: float
    latency_p95_s: float
    served: dict[str, int]


@dataclass(frozen=True)
class ConfigResult(_Rates):
    """One configuration's summary (see the module docstring for each figure)."""

    config: str
    requests: int
    delivered: int
    refused: int
    images: int
    spend_usd: float
    wasted_usd: float
    calls: int
    cancelled: int
    latency_p50_s: float
    latency_p95_s: float
    latency_p99_s: float
    served: dict[str, int]
    busy_s: dict[str, float]
    busy_share: dict[str, float]
    calls_by: dict[str, int]
    spend_by: dict[str, float]
    finished_at: float
    timeline: list[TimelineRow] = field(default_factory=list, repr=False)
    note: str = ""
    wall_s: float = field(default=0.0, compare=False)  # real seconds the run took (not in CSV)
    cpu_s: float = field(default=0.0, compare=False)  # CPU seconds of this process (not in CSV)


    @property
    def wasted_share(self) -> float:
        return self.wasted_usd / self.spend_usd if self.spend_usd else 0.0

    @property
    def attempts_per_image(self) -> float:
        return self.calls / self.images if self.images else math.nan

    @property
    def cost_per_request_usd(self) -> float:
        return self.spend_usd / self.requests if self.requests else math.nan

    def served_share(self, provider: str) -> float:
        return self.served.get(provider, 0) / self.delivered if self.delivered else 0.0

    @property
    def requests_per_wall_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s else math.nan
