"""Provider profiles: how a simulated vendor behaves (price, latency, faults, outages, limits).

In an experiment file, each profile is a table under ``[providers.NAME]``::

    [providers.gemini]
    model = "gemini-2.5-flash-image"
    price_usd = 0.039                       # per delivered image
    latency = {p50 = 6.0, p95 = 14.0}       # successful calls (see distributions.py)
    error_latency = 0.8                     # failed calls (default 0.5 s)
    faults = {server_error = 0.02, rate_limited = 0.01}   # share of calls, by outcome
    images_per_minute = 10                  # the vendor's own limit: 429 + Retry-After beyond it
    outages = [{start = "10:00", end = "10:20", outcome = ["server_error", "connection_error"]}]
    billed_on_failure = {timeout = 1.0}     # share of the price billed when a call fails so

Outcomes are the provider outcomes of the policy table (``rate_limited``, ``server_error``,
``timeout``, ``connection_error``, ``malformed_response``, ``content_policy``,
``quota_exhausted``, ``invalid_request``, ``auth_error``, ``not_found``). A ``timeout`` fault
hangs until the router's attempt timeout ends the call, as a silent vendor does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..outcome import Outcome
from ..policy.rules import CONFIGURABLE
from .distributions import Distribution, Fixed, parse_distribution
from .errors import ExperimentError
from .timeparse import format_clock, time_of_day

if TYPE_CHECKING:
    from .experiment_file import OutageTable

FAULTS = frozenset(CONFIGURABLE)

FaultTable = tuple[tuple[float, Outcome], ...]
"""Cumulative probabilities: a call fails with the first outcome whose bound exceeds a uniform
draw, and succeeds when none does."""


def fault_table(faults: Mapping[Outcome, float]) -> FaultTable:
    """``{outcome: share}`` as cumulative bounds, in the order given."""
    table: list[tuple[float, Outcome]] = []
    total = 0.0
    for outcome, share in faults.items():
        if share > 0:
            total += share
            table.append((total, outcome))
    return tuple(table)


@dataclass(frozen=True, slots=True)
class Outage:
    """A window of the simulated day (seconds since midnight, ``start`` inclusive, ``end``
    exclusive) in which ``faults`` replace the profile's usual fault rates, and ``latency``
    (if set) replaces the latency of every call."""

    start: float
    end: float
    faults: Mapping[Outcome, float]
    latency: Distribution | None = None
    observed: bool = False  # a window of rates measured from a ledger, not an incident

    def describe(self) -> str:
        mix = ", ".join(f"{o.value} {p:.0%}" for o, p in self.faults.items())
        slow = f", latency {self.latency.describe()}" if self.latency is not None else ""
        return f"{format_clock(self.start)}–{format_clock(self.end)}: {mix or 'no faults'}{slow}"


@dataclass(frozen=True)
class ProviderProfile:
    """One simulated vendor. See the module docstring for the file form of each field."""

    name: str
    model: str = "sim-image-1"
    price_usd: float = 0.04
    latency: Distribution = field(default_factory=lambda: Fixed(5.0))
    error_latency: Distribution = field(default_factory=lambda: Fixed(0.5))
    latency_by_outcome: Mapping[Outcome, Distribution] = field(default_factory=dict)
    faults: Mapping[Outcome, float] = field(default_factory=dict)
    outages: Sequence[Outage] = ()
    images_per_minute: float | None = None
    retry_after_s: float | None = None
    billed_on_failure: Mapping[Outcome, float] = field(default_factory=dict)
    max_n: int = 10

    def __post_init__(self) -> None:
        where = f"providers.{self.name}"
        if not self.name:
            raise ExperimentError("providers", "a profile needs a name")
        if not (self.price_usd >= 0 and math.isfinite(self.price_usd)):
            raise ExperimentError(f"{where}.price_usd", f"must be >= 0 (got {self.price_usd!r})")
        _check_faults(self.faults, f"{where}.faults")
        for outcome, share in self.billed_on_failure.items():
            if outcome not in FAULTS or not 0 <= share <= 1:
                raise ExperimentError(f"{where}.billed_on_failure.{outcome}",
                                      f"must be a failure outcome with a share in 0..1 "
                                      f"(got {share!r})")
        if self.images_per_minute is not None and not self.images_per_minute > 0:
            raise ExperimentError(f"{where}.images_per_minute",
                                  f"must be > 0 (got {self.images_per_minute!r})")
        if self.retry_after_s is not None and self.retry_after_s < 0:
            raise ExperimentError(f"{where}.retry_after_s", "must be >= 0")
        if not 1 <= self.max_n <= 10:
            raise ExperimentError(f"{where}.max_n", f"must be 1..10 (got {self.max_n!r})")
        ordered = sorted(self.outages, key=lambda o: o.start)
        for i, o in enumerate(ordered):
            _check_faults(o.faults, f"{where}.outages[{i}]")
            if not o.end > o.start:
                raise ExperimentError(f"{where}.outages[{i}]", "end must be after start")
            if i and o.start < ordered[i - 1].end:
                raise ExperimentError(f"{where}.outages[{i}]",
                                      f"overlaps the outage {ordered[i - 1].describe()}")
        object.__setattr__(self, "outages", tuple(ordered))

    def latency_for(self, outcome: Outcome | None) -> Distribution:
        """The latency of a call ending in ``outcome`` (``None``: a success)."""
        if outcome is None:
            return self.latency_by_outcome.get(Outcome.SUCCESS, self.latency)
        return self.latency_by_outcome.get(outcome, self.error_latency)

    def describe(self) -> str:
        bits = [f"${self.price_usd:g}/image", self.latency.describe()]
        if self.faults:
            bits.append(", ".join(f"{o.value} {p:.1%}" for o, p in self.faults.items()))
        if self.images_per_minute:
            bits.append(f"{self.images_per_minute:g} images/min")
        bits += [f"outage {o.describe()}" for o in self.outages if not o.observed]
        observed = sum(1 for o in self.outages if o.observed)
        if observed:
            bits.append(f"fault rates measured in {observed} window(s)")
        return "; ".join(bits)


def _check_faults(faults: Mapping[Outcome, float], where: str) -> None:
    total = 0.0
    for outcome, share in faults.items():
        if outcome not in FAULTS:
            raise ExperimentError(f"{where}.{outcome}", "is not a failure outcome; use one of "
                                  + ", ".join(sorted(o.value for o in FAULTS)))
        if isinstance(share, bool) or not 0 <= share <= 1:
            raise ExperimentError(f"{where}.{outcome.value}",
                                  f"must be a share between 0 and 1 (got {share!r})")
        total += share
    if total > 1 + 1e-9:
        raise ExperimentError(where, f"fault shares add up to {total:.3f}, more than 1")


# ---------------------------------------------------------------------------- file form



def outcome_of(name: object, where: str, *, allow_success: bool = False) -> Outcome:
    try:
        outcome = Outcome(str(name))
    except ValueError:
        outcome = None
    if outcome is None or (outcome not in FAULTS
                           and not (allow_success and outcome is Outcome.SUCCESS)):
        raise ExperimentError(where, f"{name!r} is not a provider outcome; use one of "
                              + ", ".join(sorted(o.value for o in FAULTS)))
    return outcome


def _shares(spec: Mapping[str, float], where: str) -> dict[Outcome, float]:
    return {outcome_of(key, f"{where}.{key}"): float(value) for key, value in spec.items()}


def _outage(spec: OutageTable, where: str) -> Outage:
    start = time_of_day(spec.start, f"{where}.start")
    end = time_of_day(spec.end, f"{where}.end")
    if spec.faults is not None:
        faults = _shares(spec.faults, f"{where}.faults")
    else:
        names = spec.outcome or "server_error"
        listed = [names] if isinstance(names, str) else names
        outcomes = [outcome_of(n, f"{where}.outcome") for n in listed]
        faults = {o: spec.rate / len(outcomes) for o in outcomes}
    latency = spec.latency
    return Outage(start, end, faults,
                  None if latency is None else parse_distribution(latency, f"{where}.latency"))


def parse_profile(name: str, spec: object) -> ProviderProfile:
    """A profile from its ``[providers.NAME]`` table."""
    from .experiment_file import ProfileTable, table

    where = f"providers.{name}"
    t = table(ProfileTable, spec, where)
    kwargs: dict[str, object] = {}
    for key in ("model", "price_usd", "images_per_minute", "retry_after_s", "max_n"):
        value = getattr(t, key)
        if value is not None:
            kwargs[key] = value
    for key in ("latency", "error_latency"):
        if getattr(t, key) is not None:
            kwargs[key] = parse_distribution(getattr(t, key), f"{where}.{key}")
    if t.latency_by_outcome is not None:
        kwargs["latency_by_outcome"] = {
            outcome_of(k, f"{where}.latency_by_outcome.{k}", allow_success=True):
                parse_distribution(v, f"{where}.latency_by_outcome.{k}")
            for k, v in t.latency_by_outcome.items()}
    if t.faults is not None:
        kwargs["faults"] = _shares(t.faults, f"{where}.faults")
    if t.billed_on_failure is not None:
        kwargs["billed_on_failure"] = _shares(t.billed_on_failure, f"{where}.billed_on_failure")
    if t.outages is not None:
        kwargs["outages"] = tuple(_outage(o, f"{where}.outages[{i}]")
                                  for i, o in enumerate(t.outages))
    return ProviderProfile(name, **kwargs)  # type: ignore[arg-type]
