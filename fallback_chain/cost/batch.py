"""Price a batch of requests against a chain before running it: best case, expected under given
failure rates, and worst case.

For each request and each provider ``i`` in chain order, with price ``c_i`` (from
:func:`~fallback_chain.cost.estimate.estimate`) and failure rate ``f_i``:

* best case: the first provider serves every request, ``sum c_1``;
* expected: provider ``i`` is reached with probability ``R_i = f_1 ... f_(i-1)`` and then costs
  ``c_i`` if it delivers and ``b * c_i`` if it fails (``b`` = ``failures_billed``, the share of
  failed calls the vendor bills, e.g. timeouts; default 0), so
  ``E = sum_i R_i * c_i * ((1 - f_i) + f_i * b)``; the expected number of requests nobody
  serves is ``sum over requests of f_1 ... f_k``;
* worst case: every provider is called and bills, ``sum_i c_i``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .estimate import estimate

if TYPE_CHECKING:
    from .catalogue import PriceCatalogue


class PricedRequest(Protocol):
    """What pricing needs from a request (an ``ImageRequest`` qualifies)."""

    @property
    def size(self) -> str | None: ...
    @property
    def quality(self) -> str | None: ...
    @property
    def n(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ChainStep:
    """One provider of a chain, as the price catalogue knows it (``model=None``: default)."""

    vendor: str
    model: str | None = None

    @property
    def label(self) -> str:
        return self.vendor if self.model is None else f"{self.vendor}:{self.model}"


@dataclass(frozen=True, slots=True)
class BatchRequest:
    size: str | None = None
    quality: str | None = None
    n: int = 1


@dataclass(slots=True)
class StepCost:
    label: str
    failure_rate: float
    best_usd: float = 0.0
    expected_usd: float = 0.0
    worst_usd: float = 0.0
    expected_calls: float = 0.0
    unpriced_requests: int = 0


@dataclass(slots=True)
class BatchEstimate:
    requests: int
    best_usd: float
    expected_usd: float
    worst_usd: float
    expected_undelivered: float
    failures_billed: float
    steps: list[StepCost] = field(default_factory=list)

    @property
    def unpriced(self) -> list[str]:
        """Providers the catalogue could not price for some request (counted as $0)."""
        return [s.label for s in self.steps if s.unpriced_requests]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unpriced": self.unpriced}


def parse_chain_spec(spec: str) -> list[ChainStep]:
    """``"gemini:gemini-2.5-flash-image,leonardo,openai:gpt-image-1.5"`` as chain steps."""
    steps = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        vendor, _, model = part.partition(":")
        if not vendor.strip():
            raise ValueError(f"{part!r}: expected 'vendor' or 'vendor:model'")
        steps.append(ChainStep(vendor.strip(), model.strip() or None))
    if not steps:
        raise ValueError("the chain is empty")
    return steps


def estimate_batch(chain: Sequence[ChainStep | tuple[str, str | None]],
                   requests: Iterable[PricedRequest], *,
                   failure_rates: Mapping[str, float] | None = None,
                   failures_billed: float = 0.0,
                   catalogue: PriceCatalogue | None = None) -> BatchEstimate:
    """Best, expected and worst cost of serving ``requests`` with ``chain`` (see module doc).

    ``failure_rates`` maps a step's label (``"openai:gpt-image-1.5"``) or vendor (``"openai"``)
    to the probability that a call fails (default 0). A price the catalogue does not know
    counts as $0 and is listed in ``unpriced``.
    """
    steps = [s if isinstance(s, ChainStep) else ChainStep(*s) for s in chain]
    if not steps:
        raise ValueError("the chain is empty")
    if not 0 <= failures_billed <= 1:
        raise ValueError(f"failures_billed must be between 0 and 1 (got {failures_billed})")
    rates = _failure_rates(steps, failure_rates or {})
    if catalogue is None:
        from .catalogue import PriceCatalogue
        catalogue = PriceCatalogue.default()
    costs = [StepCost(s.label, f) for s, f in zip(steps, rates, strict=True)]
    cache: dict[tuple[int, str | None, str | None, int], float | None] = {}
    count = 0
    undelivered = 0.0
    for req in requests:
        count += 1
        reach = 1.0
        for i, (step, f, out) in enumerate(zip(steps, rates, costs, strict=True)):
            key = (i, req.size, req.quality, req.n)
            if key not in cache:
                cache[key] = estimate(step.vendor, step.model, size=req.size,
                                      quality=req.quality, n=req.n, catalogue=catalogue)
            price = cache[key]
            if price is None:
                out.unpriced_requests += 1
                price = 0.0
            if i == 0:
                out.best_usd += price
            out.worst_usd += price
            out.expected_calls += reach
            out.expected_usd += reach * price * ((1 - f) + f * failures_billed)
            reach *= f
        undelivered += reach
    return BatchEstimate(count, sum(c.best_usd for c in costs),
                         sum(c.expected_usd for c in costs), sum(c.worst_usd for c in costs),
                         undelivered, failures_billed, costs)


def _failure_rates(steps: Sequence[ChainStep], given: Mapping[str, float]) -> list[float]:
    known = {s.label for s in steps} | {s.vendor for s in steps}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"failure rate for {unknown}, which is not in the chain "
                         f"({', '.join(s.label for s in steps)})")
    for name, rate in given.items():
        if not 0 <= rate <= 1:
            raise ValueError(f"failure rate of {name} must be between 0 and 1 (got {rate})")
    return [given.get(s.label, given.get(s.vendor, 0.0)) for s in steps]


def read_requests_csv(path: str | os.PathLike[str]) -> list[BatchRequest]:
    """Requests from a CSV file: with a header naming ``prompt`` and optionally ``size``,
    ``quality`` and ``n``; or without a header, one prompt per line (first column)."""
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    if "prompt" not in header:
        return [BatchRequest() for _ in rows]
    col: dict[str, int] = {
        name: header.index(name) for name in ("size", "quality", "n") if name in header}
    out = []
    for line, row in enumerate(rows[1:], start=2):
        def cell(name: str, row: list[str] = row) -> str | None:
            i = col.get(name)
            value = row[i].strip() if i is not None and i < len(row) else ""
            return value or None
        n_text = cell("n")
        try:
            n = int(n_text) if n_text else 1
        except ValueError:
            raise ValueError(f"{path}, line {line}: n={n_text!r} is not a whole number") from None
        if n < 1:
            raise ValueError(f"{path}, line {line}: n must be at least 1")
        out.append(BatchRequest(cell("size"), cell("quality"), n))
    return out
