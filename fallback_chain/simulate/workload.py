"""Workloads: when requests arrive and what they ask for.

In an experiment file::

    [workload]
    start = "09:00"            # time of day the simulation starts (default 00:00)
    duration = "3h"            # how long requests keep arriving
    requests = 50000           # optional: stop after this many arrivals (with or without duration)
    arrivals = "poisson"       # or "even" (evenly spaced)
    rate_per_min = 30          # a constant rate, or a schedule by time of day:
    rate_schedule = [{from = "09:00", per_min = 20}, {from = "10:00", per_min = 60}]
    mix = [{n = 1, size = "1024x1024", weight = 4}, {n = 4, size = "16:9", quality = "final"}]

A Poisson process with a rate that changes by time of day is drawn piece by piece: within a
piece the gaps are exponential at that piece's rate, and at a boundary the draw restarts with
the new rate (exact, because the exponential distribution is memoryless). Every request draws
its kind from ``mix`` by weight. Arrivals and kinds come from their own seeded streams, so every
configuration of an experiment sees exactly the same traffic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ExperimentError
from .timeparse import duration, time_of_day

_MIX_FIELDS = {"n", "size", "quality", "size_match", "background", "output_format",
               "exact_prompt", "prompt", "weight"}


@dataclass(frozen=True, slots=True)
class RequestKind:
    """One kind of request in the mix (the fields of ``ImageRequest``) and its weight."""

    n: int = 1
    size: str = "auto"
    quality: str = "standard"
    weight: float = 1.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return {"prompt": "a simulated request", "n": self.n, "size": self.size,
                "quality": self.quality, **self.extra}

    def label(self) -> str:
        return f"n={self.n} {self.size} {self.quality}"


@dataclass(frozen=True, slots=True)
class RatePiece:
    start: float  # time of day, seconds
    per_min: float


@dataclass(frozen=True)
class Workload:
    """``start``/``end`` are seconds since midnight of the simulated day; ``requests`` caps the
    number of arrivals. With a schedule, each piece's rate holds until the next piece."""

    start: float = 0.0
    end: float | None = 3600.0
    requests: int | None = None
    arrivals: Literal["poisson", "even"] = "poisson"
    schedule: Sequence[RatePiece] = (RatePiece(0.0, 60.0),)
    mix: Sequence[RequestKind] = (RequestKind(),)
    label: str = ""  # describes traffic that comes from elsewhere (a replayed ledger)

    def __post_init__(self) -> None:
        if self.end is None and self.requests is None:
            raise ExperimentError("workload", "give a duration, a number of requests, or both")
        if self.end is not None and self.end <= self.start:
            raise ExperimentError("workload.duration", "must be > 0")
        if self.requests is not None and self.requests < 1:
            raise ExperimentError("workload.requests", "must be >= 1")
        if self.arrivals not in ("poisson", "even"):
            raise ExperimentError("workload.arrivals", "must be 'poisson' or 'even'")
        if not self.schedule:
            raise ExperimentError("workload", "needs a rate (rate_per_min or rate_schedule)")
        pieces = sorted(self.schedule, key=lambda p: p.start)
        for p in pieces:
            if not (p.per_min >= 0 and math.isfinite(p.per_min)):
                raise ExperimentError("workload.rate", f"must be >= 0 (got {p.per_min!r})")
        if self.end is None and pieces[-1].per_min == 0:
            raise ExperimentError("workload.rate", "the last rate is 0 and there is no "
                                                   "duration: requests would never arrive")
        if not self.mix or any(k.weight <= 0 for k in self.mix):
            raise ExperimentError("workload.mix", "needs at least one kind, weights > 0")
        object.__setattr__(self, "schedule", tuple(pieces))

    def rate_at(self, t: float) -> float:
        """Arrivals per second at time of day ``t``."""
        rate = self.schedule[0].per_min
        for p in self.schedule:
            if p.start <= t:
                rate = p.per_min
        return rate / 60.0

    def arrival_times(self, rng: random.Random) -> list[float]:
        """Arrival times (seconds since midnight), ascending."""
        out: list[float] = []
        cap = self.requests if self.requests is not None else math.inf
        end = self.end if self.end is not None else math.inf
        bounds = [p.start for p in self.schedule[1:]]
        t = self.start
        piece = sum(1 for b in bounds if b <= t)
        while len(out) < cap:
            rate = self.schedule[piece].per_min / 60.0
            limit = min(end, bounds[piece] if piece < len(bounds) else math.inf)
            if rate > 0:
                gap = rng.expovariate(rate) if self.arrivals == "poisson" else 1.0 / rate
                if t + gap < limit:
                    t += gap
                    out.append(t)
                    continue
            if limit >= end:
                break
            t = limit  # the rate changes here: start afresh (memoryless)
            piece += 1
        return out

    def kinds(self, count: int, rng: random.Random) -> list[int]:
        """The index into ``mix`` of each of ``count`` requests."""
        if len(self.mix) == 1:
            return [0] * count
        weights = [k.weight for k in self.mix]
        return rng.choices(range(len(self.mix)), weights=weights, k=count)

    def describe(self) -> str:
        from .timeparse import format_clock

        if self.label:
            return self.label
        span = (f"{format_clock(self.start)}–{format_clock(self.end)}" if self.end is not None
                else f"from {format_clock(self.start)}")
        rates = (f"{self.schedule[0].per_min:g}/min" if len(self.schedule) == 1 else
                 ", ".join(f"{p.per_min:g}/min from {format_clock(p.start)}"
                           for p in self.schedule))
        cap = f", at most {self.requests:,} requests" if self.requests else ""
        return f"{self.arrivals} arrivals {span} ({rates}){cap}"


def parse_workload(spec: object) -> Workload:
    """A workload from its ``[workload]`` table."""
    from .experiment_file import WorkloadTable, table

    where = "workload"
    t = table(WorkloadTable, spec, where)
    start = time_of_day(t.start, f"{where}.start")
    end = None
    if t.duration is not None:
        end = start + duration(t.duration, f"{where}.duration")
    if end is None and t.requests is None:
        end = start + 3600.0
    schedule: list[RatePiece]
    if t.rate_schedule is not None:
        schedule = [RatePiece(time_of_day(p.start, f"{where}.rate_schedule[{i}].from"),
                              p.per_min) for i, p in enumerate(t.rate_schedule)]
        if schedule[0].start > start:  # before the first piece: its rate
            schedule[0] = RatePiece(min(start, schedule[0].start), schedule[0].per_min)
    else:
        schedule = [RatePiece(0.0, 60.0 if t.rate_per_min is None else t.rate_per_min)]
    mix = [_kind(k, f"{where}.mix[{i}]") for i, k in enumerate(t.mix)]
    return Workload(start=start, end=end, requests=t.requests, arrivals=t.arrivals,
                    schedule=tuple(schedule), mix=tuple(mix))


def _kind(spec: object, where: str) -> RequestKind:
    if not isinstance(spec, Mapping):
        raise ExperimentError(where, "expected a table such as {n = 1, size = \"1024x1024\"}")
    unknown = sorted(set(spec) - _MIX_FIELDS)
    if unknown:
        raise ExperimentError(where, f"unknown key(s) {unknown}; a request kind takes "
                                     f"{', '.join(sorted(_MIX_FIELDS))}")
    weight = spec.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
        raise ExperimentError(f"{where}.weight", f"must be a number > 0 (got {weight!r})")
    n = spec.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool):
        raise ExperimentError(f"{where}.n", f"expected an integer (got {n!r})")
    extra = {k: v for k, v in spec.items() if k not in ("n", "size", "quality", "weight")}
    kind = RequestKind(n=n, size=str(spec.get("size", "auto")),
                       quality=str(spec.get("quality", "standard")), weight=float(weight),
                       extra=extra)
    from ..request import ImageRequest

    try:
        ImageRequest(**kind.fields())
    except ValueError as exc:
        raise ExperimentError(where, str(exc)) from None
    return kind


def build_requests(mix: Sequence[RequestKind]) -> list[Any]:
    """One validated ``ImageRequest`` per kind (requests are immutable and reused)."""
    from ..request import ImageRequest

    return [ImageRequest(**k.fields()) for k in mix]
