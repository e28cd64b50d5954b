"""Counters for a batch run, in bounded memory: latencies go into a log-scale histogram (about
1 % relative error on the percentiles) rather than a list that grows with the items."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..outcome import Outcome

if TYPE_CHECKING:
    from ..results import Attempt

_RATIO = 1.02
_LOG = math.log(_RATIO)
_FLOOR = 1e-4  # 0.1 ms


class Histogram:
    """Counts per log-spaced bucket; ``quantile(q)`` answers within ~1 %."""

    __slots__ = ("_buckets", "count", "max")

    def __init__(self) -> None:
        self._buckets: Counter[int] = Counter()
        self.count = 0
        self.max = 0.0

    def add(self, value: float) -> None:
        self._buckets[int(math.log(max(value, _FLOOR) / _FLOOR) / _LOG)] += 1
        self.count += 1
        self.max = max(self.max, value)

    def quantile(self, q: float) -> float | None:
        if not self.count:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for bucket in sorted(self._buckets):
            seen += self._buckets[bucket]
            if seen > rank:
                mid: float = _FLOOR * _RATIO ** (bucket + 0.5)
                return min(mid, self.max)
        return self.max


@dataclass(slots=True)
class ProviderStats:
    attempts: int = 0  # tries and skips
    calls: int = 0  # tries that reached the provider
    delivered: int = 0
    failed_calls: int = 0
    rate_limited: int = 0
    cost_usd: float = 0.0
    undelivered_usd: float = 0.0
    latency: Histogram = field(default_factory=Histogram)

    def to_dict(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "calls": self.calls, "delivered": self.delivered,
                "failed_calls": self.failed_calls, "rate_limited": self.rate_limited,
                "cost_usd": round(self.cost_usd, 6),
                "undelivered_usd": round(self.undelivered_usd, 6),
                "call_latency_p50_s": _r(self.latency.quantile(0.5)),
                "call_latency_p95_s": _r(self.latency.quantile(0.95))}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@dataclass(slots=True)
class BatchStats:
    """Live counters; the progress display reads them, the summary is made from them."""

    total: int | None = None
    rows: int = 0
    invalid_rows: int = 0
    delivered: int = 0
    generated: int = 0
    shared: int = 0
    from_cache: int = 0
    recovered: int = 0
    skipped: int = 0
    failed: int = 0
    interrupted: int = 0
    images: int = 0
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    undelivered_usd: float = 0.0
    latency: Histogram = field(default_factory=Histogram)
    providers: dict[str, ProviderStats] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        """Rows dealt with so far (delivered, skipped, failed or invalid)."""
        return self.delivered + self.skipped + self.failed + self.invalid_rows

    def on_attempt(self, a: Attempt) -> None:
        p = self.providers.get(a.provider)
        if p is None:
            p = self.providers[a.provider] = ProviderStats()
        p.attempts += 1
        self.cost_usd += a.cost_usd
        p.cost_usd += a.cost_usd
        if a.outcome.was_called:
            p.calls += 1
            p.latency.add(a.latency_s)
        if a.outcome is Outcome.SUCCESS:
            p.delivered += 1
            return
        self.undelivered_usd += a.cost_usd
        p.undelivered_usd += a.cost_usd
        if a.outcome.was_called:
            p.failed_calls += 1
        if a.outcome is Outcome.RATE_LIMITED:
            p.rate_limited += 1

    def on_failed(self, reason: str) -> None:
        self.failed += 1
        self.failed_by_reason[reason] += 1

    def on_invalid(self) -> None:
        self.invalid_rows += 1  # counted apart: ``failed`` == sum(``failed_by_reason``)

    def calls(self) -> int:
        return sum(p.calls for p in self.providers.values())

    def rate_limited(self) -> int:
        return sum(p.rate_limited for p in self.providers.values())


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What a run did, for the summary table, ``--json`` and the caller."""

    input: str
    output: str
    manifest: str
    failures_file: str | None
    rows: int
    invalid_rows: int
    delivered: int
    generated: int
    shared: int
    from_cache: int
    recovered: int
    skipped: int
    failed: int
    interrupted: bool
    interrupted_items: int
    failed_by_reason: dict[str, int]
    images: int
    cost_usd: float
    undelivered_usd: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    elapsed_s: float
    items_per_s: float
    calls: int
    rate_limited: int
    providers: dict[str, dict[str, Any]]
    error: str | None = None

    @classmethod
    def from_stats(cls, stats: BatchStats, *, input: str, output: str, manifest: str,
                   failures_file: str | None, elapsed_s: float, interrupted: bool,
                   error: str | None = None) -> BatchSummary:
        done = stats.delivered + stats.failed
        return cls(
            input=input, output=output, manifest=manifest, failures_file=failures_file,
            rows=stats.rows, invalid_rows=stats.invalid_rows, delivered=stats.delivered,
            generated=stats.generated, shared=stats.shared, from_cache=stats.from_cache,
            recovered=stats.recovered, skipped=stats.skipped, failed=stats.failed,
            interrupted=interrupted, interrupted_items=stats.interrupted,
            failed_by_reason=dict(stats.failed_by_reason.most_common()), images=stats.images,
            cost_usd=round(stats.cost_usd, 6), undelivered_usd=round(stats.undelivered_usd, 6),
            latency_p50_s=_r(stats.latency.quantile(0.5)),
            latency_p95_s=_r(stats.latency.quantile(0.95)), elapsed_s=round(elapsed_s, 3),
            items_per_s=round(done / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            calls=stats.calls(), rate_limited=stats.rate_limited(),
            providers={k: v.to_dict() for k, v in sorted(stats.providers.items())},
            error=error)

    @property
    def refused(self) -> int:
        """Rows a provider refused on content grounds (a final, reported answer)."""
        return self.failed_by_reason.get("content_policy", 0)

    @property
    def ok(self) -> bool:
        """Everything delivered (or already delivered), nothing failed, not interrupted."""
        return not (self.failed or self.invalid_rows or self.interrupted or self.error)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}
