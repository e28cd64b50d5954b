"""Latency distributions of simulated providers; every draw comes from a seeded ``Random``.

In an experiment file a distribution is a number (fixed), ``[low, high]`` (uniform) or a table:

* ``{dist = "fixed", value = 2.0}``
* ``{dist = "uniform", low = 1.0, high = 3.0}``
* ``{dist = "lognormal", p50 = 4.0, p95 = 9.0}`` (``dist`` may be left out when ``p50`` and
  ``p95`` are given): the usual shape of service latencies, set by its median and 95th
  percentile
* ``{dist = "exponential", mean = 2.0}``
* ``{dist = "empirical", values = [1.2, 3.4, ...]}``: draws one of the values at random (replay
  builds these from a ledger)

Every distribution also takes ``min`` and ``max`` (seconds) to clip draws.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .errors import ExperimentError

#: The 95th percentile of the standard normal distribution.
Z95 = 1.6448536269514722


class Distribution(Protocol):
    """A latency distribution: ``sample`` draws seconds (never negative) from ``rng``."""

    def sample(self, rng: random.Random) -> float: ...

    def describe(self) -> str: ...

    def quantile(self, q: float) -> float: ...


@dataclass(frozen=True, slots=True)
class Fixed:
    value: float

    def sample(self, rng: random.Random) -> float:
        return self.value

    def describe(self) -> str:
        return f"{self.value:g}s"

    def quantile(self, q: float) -> float:
        return self.value


@dataclass(frozen=True, slots=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return self.low + (self.high - self.low) * rng.random()

    def describe(self) -> str:
        return f"uniform {self.low:g}–{self.high:g}s"

    def quantile(self, q: float) -> float:
        return self.low + (self.high - self.low) * q


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal with median ``p50`` and 95th percentile ``p95``."""

    p50: float
    p95: float
    low: float = 0.0
    high: float = math.inf
    _mu: float = field(init=False, repr=False, compare=False)
    _sigma: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_mu", math.log(self.p50))
        object.__setattr__(self, "_sigma", math.log(self.p95 / self.p50) / Z95)

    def sample(self, rng: random.Random) -> float:
        x = math.exp(self._mu + self._sigma * rng.gauss())
        return self.low if x < self.low else self.high if x > self.high else x

    def describe(self) -> str:
        return f"lognormal p50 {self.p50:g}s, p95 {self.p95:g}s"

    def quantile(self, q: float) -> float:
        from statistics import NormalDist

        x = math.exp(self._mu + self._sigma * NormalDist().inv_cdf(min(max(q, 1e-9), 1 - 1e-9)))
        return min(max(x, self.low), self.high)


@dataclass(frozen=True, slots=True)
class Exponential:
    mean: float
    low: float = 0.0
    high: float = math.inf

    def sample(self, rng: random.Random) -> float:
        x = rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0
        return self.low if x < self.low else self.high if x > self.high else x

    def describe(self) -> str:
        return f"exponential mean {self.mean:g}s"

    def quantile(self, q: float) -> float:
        x = -self.mean * math.log(1.0 - min(q, 1 - 1e-12))
        return min(max(x, self.low), self.high)


@dataclass(frozen=True, slots=True)
class Empirical:
    """Draws one of ``values`` uniformly at random (a recorded sample)."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(sorted(self.values)))

    def sample(self, rng: random.Random) -> float:
        values = self.values
        return values[int(rng.random() * len(values))]

    def describe(self) -> str:
        return (f"empirical ({len(self.values)} values, p50 {self.quantile(0.5):.3g}s, "
                f"p95 {self.quantile(0.95):.3g}s)")

    def quantile(self, q: float) -> float:
        return quantile(self.values, q)


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values, interpolating linearly (NaN if empty)."""
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


_KEYS = {
    "fixed": {"value"},
    "uniform": {"low", "high"},
    "lognormal": {"p50", "p95"},
    "exponential": {"mean"},
    "empirical": {"values"},
}


def _number(spec: Mapping[str, object], key: str, where: str, *, positive: bool = False
            ) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ExperimentError(f"{where}.{key}", f"expected a number of seconds (got {value!r})")
    if value < 0 or (positive and value == 0):
        raise ExperimentError(f"{where}.{key}",
                              f"must be {'> 0' if positive else '>= 0'} (got {value!r})")
    return float(value)


def parse_distribution(spec: object, where: str) -> Distribution:
    """Build a distribution from its experiment-file form (see the module docstring)."""
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return Fixed(_number({"value": spec}, "value", where))
    if isinstance(spec, list) and len(spec) == 2:
        low, high = (_number({"v": v}, "v", where) for v in spec)
        if high < low:
            raise ExperimentError(where, f"[low, high] needs low <= high (got {spec!r})")
        return Uniform(low, high)
    if not isinstance(spec, Mapping):
        raise ExperimentError(where, "expected seconds, [low, high], or a table such as "
                                     "{dist = \"lognormal\", p50 = 4, p95 = 9}")
    kind = spec.get("dist")
    if kind is None:
        kind = "lognormal" if "p50" in spec else "fixed" if "value" in spec else None
    if kind not in _KEYS:
        raise ExperimentError(f"{where}.dist", f"unknown distribution {kind!r}; use one of "
                                               f"{', '.join(sorted(_KEYS))}")
    unknown = sorted(set(spec) - _KEYS[kind] - {"dist", "min", "max"})
    if unknown:
        raise ExperimentError(where, f"unknown key(s) {unknown} for a {kind} distribution "
                                     f"(it takes {', '.join(sorted(_KEYS[kind]))}, min, max)")
    low = _number(spec, "min", where) if "min" in spec else 0.0
    high = _number(spec, "max", where) if "max" in spec else math.inf
    if high < low:
        raise ExperimentError(where, f"max must be >= min (got {high} < {low})")
    dist: Distribution
    if kind == "fixed":
        dist = Fixed(min(max(_number(spec, "value", where), low), high))
    elif kind == "uniform":
        a, b = _number(spec, "low", where), _number(spec, "high", where)
        if b < a:
            raise ExperimentError(where, f"high must be >= low (got {b} < {a})")
        dist = Uniform(max(a, low), min(b, high))
    elif kind == "lognormal":
        p50 = _number(spec, "p50", where, positive=True)
        p95 = _number(spec, "p95", where, positive=True)
        if p95 < p50:
            raise ExperimentError(f"{where}.p95", f"must be >= p50 (got {p95} < {p50})")
        dist = LogNormal(p50, p95, low, high)
    elif kind == "exponential":
        dist = Exponential(_number(spec, "mean", where), low, high)
    else:
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ExperimentError(f"{where}.values", "expected a non-empty list of seconds")
        dist = Empirical(tuple(min(max(_number({"v": v}, "v", f"{where}.values"), low), high)
                               for v in values))
    return dist
