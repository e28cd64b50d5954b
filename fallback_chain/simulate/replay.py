"""Replay: what would another configuration have cost on the traffic a ledger recorded?

From a :class:`~fallback_chain.cost.Ledger` (every attempt of every request) this module takes

* **the traffic**: one request per ``request_id``, arriving when its first attempt started,
  asking for ``metadata["n"]`` images when the metadata says so (else one);
* **each provider's observed behaviour**: the share of its calls that ended in each outcome
  (overall, and per time window so that an outage in the recording happens again at the same
  time), the recorded latencies of its successes and of each kind of failure (drawn from as
  empirical distributions), its price (the mean settled cost of a success per image) and the
  share of the price it billed for each kind of failure;
* **the recorded figures** themselves, as a first row named ``recorded``, so the simulated
  configurations can be read against what really happened.

Then every configuration of the experiment file runs on that traffic with those providers.
Providers the ledger never called need a ``[providers.NAME]`` profile in the experiment file;
the ledger wins for the others. Skips (cooldowns, open breakers, capacity, budget) are the old
router's decisions, not provider behaviour, and hedges that lost the race were cut short, so
neither is used for the rates.

Limits, said plainly: outcomes are drawn independently per call (a vendor that failed one
prompt repeatably is a random failure here); a window's rates are shrunk towards the
provider's overall rates (``prior_calls`` pseudo-calls) so that a window with three calls does
not decide them alone; latencies of successes slower than the old attempt timeout were never
recorded; the ledger has no Retry-After, so recorded 429s cool a provider down for the
policy's default; the request size is not recorded, so a provider's price is per image of
whatever sizes were asked.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..outcome import Outcome
from .distributions import Distribution, Empirical, Fixed
from .experiment import Experiment, parse_experiment
from .metrics import Collector, ConfigResult
from .profiles import FAULTS, Outage, ProviderProfile
from .runner import ExperimentResult, Traffic, run_experiment
from .timeparse import format_clock
from .workload import RatePiece, RequestKind, Workload, build_requests

_SKIPS = frozenset({Outcome.BREAKER_OPEN, Outcome.COOLING_DOWN, Outcome.SKIPPED,
                    Outcome.BUDGET_EXCEEDED})
RECORDED = "recorded"


@dataclass(frozen=True, slots=True)
class Call:
    """One ledger row, as the simulator reads it (seconds since midnight of the first day)."""

    request_id: str
    provider: str
    model: str
    outcome: Outcome
    started: float
    latency_s: float
    cost_usd: float
    estimated_cost_usd: float | None
    n: int


@dataclass(frozen=True)
class Recording:
    """What a ledger recorded, ready to replay."""

    day: date
    calls: list[Call]
    arrivals: list[float]
    sizes: list[int]
    request_ids: list[str]
    providers: list[str]

    def __len__(self) -> int:
        return len(self.arrivals)


def _n(metadata: object) -> int:
    if isinstance(metadata, Mapping):
        n = metadata.get("n")
        if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 10:
            return n
    return 1


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def recording_from_rows(rows: Iterable[Mapping[str, Any]]) -> Recording:
    """A recording from ledger rows (dicts as ``Ledger.rows()`` returns them)."""
    raw = [(r, _epoch(str(r["started_at"]))) for r in rows]
    if not raw:
        raise ValueError("the ledger has no attempts in that window")
    first = min(t for _, t in raw)
    day = datetime.fromtimestamp(first, UTC).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    calls: list[Call] = []
    arrival: dict[str, float] = {}
    size: dict[str, int] = {}
    providers: dict[str, None] = {}
    for r, t in raw:
        rid = str(r["request_id"])
        at = t - midnight
        n = _n(r.get("metadata"))
        try:
            outcome = Outcome(str(r["outcome"]))
        except ValueError:
            continue
        calls.append(Call(rid, str(r["provider"]), str(r["model"]), outcome, at,
                          float(r["latency_s"]), float(r["cost_usd"]),
                          None if r.get("estimated_cost_usd") is None
                          else float(r["estimated_cost_usd"]), n))
        providers.setdefault(str(r["provider"]), None)
        if rid not in arrival or at < arrival[rid]:
            arrival[rid] = at
        size[rid] = max(size.get(rid, 1), n)
    order = sorted(arrival, key=lambda k: (arrival[k], k))
    return Recording(day, calls, [arrival[k] for k in order], [size[k] for k in order], order,
                     list(providers))


def read_ledger(path: str | Path, *, since: str | None = None, until: str | None = None,
                chain: str | None = None) -> Recording:
    """The attempts of a ledger file (optionally a time window and one chain's)."""
    from ..cost.ledger import Ledger

    with Ledger(path, create=False) as ledger:
        rows = ledger.rows(since=since, until=until)
    if chain is not None:
        rows = [r for r in rows if r.get("chain") == chain]
    return recording_from_rows(rows)


# ------------------------------------------------------------------------------ profiles

def _empirical(values: Sequence[float]) -> Distribution | None:
    return Empirical(tuple(values)) if values else None


def profile_from_calls(name: str, calls: Sequence[Call], *, window_s: float = 3600.0,
                       prior_calls: float = 2.0) -> ProviderProfile:
    """A provider's observed behaviour as a profile (see the module docstring)."""
    used = [c for c in calls if c.outcome not in _SKIPS and c.outcome is not Outcome.CANCELLED]
    model = Counter(c.model for c in calls).most_common(1)[0][0] if calls else "recorded"
    if not used:
        raise ValueError(f"{name}: the ledger has no completed call of this provider")
    total = len(used)
    failures: Counter[Outcome] = Counter(
        c.outcome for c in used if c.outcome is not Outcome.SUCCESS)
    faults: dict[Outcome, float] = {o: failures[o] / total
                                    for o in sorted(failures, key=lambda o: o.value)
                                    if o in FAULTS}
    successes = [c for c in used if c.outcome is Outcome.SUCCESS]
    paid = [c.cost_usd / c.n for c in successes if c.cost_usd > 0]
    estimated = [c.estimated_cost_usd / c.n for c in used if c.estimated_cost_usd]
    price = (math.fsum(paid) / len(paid) if paid
             else math.fsum(estimated) / len(estimated) if estimated else 0.0)
    by_outcome: dict[Outcome, list[float]] = {}
    billed: dict[Outcome, float] = {}
    for o in faults:
        of = [c for c in used if c.outcome is o]
        if o is not Outcome.TIMEOUT:  # a timeout hangs until the new attempt timeout
            by_outcome[o] = [c.latency_s for c in of]
            charge = math.fsum(c.cost_usd / c.n for c in of) / len(of)
            if charge > 0 and price > 0:
                billed[o] = min(1.0, charge / price)
    latency = _empirical([c.latency_s for c in successes]) or Fixed(
        sorted(c.latency_s for c in used)[len(used) // 2])
    errors = [x for values in by_outcome.values() for x in values]
    windows: list[Outage] = []
    if window_s > 0:
        buckets: dict[int, list[Call]] = {}
        for c in used:
            buckets.setdefault(int(c.started // window_s), []).append(c)
        for k in sorted(buckets):
            seen = buckets[k]
            counts: Counter[Outcome] = Counter(
                c.outcome for c in seen if c.outcome is not Outcome.SUCCESS)
            mix = {o: (counts[o] + prior_calls * faults.get(o, 0.0)) / (len(seen) + prior_calls)
                   for o in sorted(set(counts) | set(faults), key=lambda o: o.value)
                   if o in FAULTS}
            windows.append(Outage(k * window_s, (k + 1) * window_s,
                                  {o: p for o, p in mix.items() if p > 0}, observed=True))
    return ProviderProfile(
        name, model=model, price_usd=price, latency=latency,
        error_latency=_empirical(errors) or Fixed(0.5),
        latency_by_outcome={o: Empirical(tuple(v)) for o, v in by_outcome.items() if v},
        faults=faults, outages=tuple(windows), billed_on_failure=billed)


def profiles_from_recording(recording: Recording, *, window_s: float = 3600.0,
                            prior_calls: float = 2.0) -> dict[str, ProviderProfile]:
    by: dict[str, list[Call]] = {}
    for c in recording.calls:
        by.setdefault(c.provider, []).append(c)
    out = {}
    for name in recording.providers:
        if any(c.outcome not in _SKIPS and c.outcome is not Outcome.CANCELLED
               for c in by[name]):
            out[name] = profile_from_calls(name, by[name], window_s=window_s,
                                           prior_calls=prior_calls)
    return out


# -------------------------------------------------------------------------- the baseline

def recorded_result(recording: Recording, providers: Sequence[str], start: float,
                    bucket_s: float) -> ConfigResult:
    """The recorded figures, measured as the simulator measures a configuration."""
    collector = Collector(providers, start, bucket_s)
    by: dict[str, list[Call]] = {}
    for c in recording.calls:
        by.setdefault(c.request_id, []).append(c)
    for rid, arrived, n in zip(recording.request_ids, recording.arrivals, recording.sizes,
                               strict=True):
        calls = by[rid]
        win = next((c for c in calls if c.outcome is Outcome.SUCCESS), None)
        if win is not None:
            latency = win.started + win.latency_s - arrived
        else:
            latency = max(c.started + c.latency_s for c in calls) - arrived
        refused = win is None and any(c.outcome is Outcome.CONTENT_POLICY for c in calls)
        collector.add(arrived, latency, None if win is None else win.provider, n, calls,
                      refused)
    return collector.summary(RECORDED, note="as recorded in the ledger")


# ------------------------------------------------------------------------------- replay

def replay_experiment(doc: Mapping[str, Any], recording: Recording, *,
                      source: str | None = None, window_s: float = 3600.0,
                      prior_calls: float = 2.0) -> tuple[Experiment, Traffic]:
    """The experiment (profiles from the ledger first) and the recorded traffic."""
    profiles = profiles_from_recording(recording, window_s=window_s, prior_calls=prior_calls)
    experiment = parse_experiment(doc, source=source, need_workload=False,
                                  extra_profiles=profiles)
    sizes = sorted(set(recording.sizes))
    kinds = [RequestKind(n=n) for n in sizes]
    index = {n: i for i, n in enumerate(sizes)}
    bucket = experiment.timeline_bucket_s
    start = math.floor(recording.arrivals[0] / bucket) * bucket
    end = max(recording.arrivals[-1] + 1.0, start + 1.0)
    label = (f"{len(recording):,} requests replayed from the ledger, "
             f"{recording.day.isoformat()} {format_clock(recording.arrivals[0])}–"
             f"{format_clock(recording.arrivals[-1])} UTC")
    workload = Workload(start=start, end=end, schedule=(RatePiece(0.0, 60.0),),
                        mix=tuple(kinds), label=label)
    experiment = replace(experiment, workload=workload, day=recording.day)
    traffic = Traffic(recording.arrivals, [index[n] for n in recording.sizes],
                      build_requests(kinds))
    return experiment, traffic


def replay_ledger(ledger: str | Path, experiment_file: str | Path, *, seed: int | None = None,
           since: str | None = None, until: str | None = None, chain: str | None = None,
           window_s: float = 3600.0) -> ExperimentResult:
    """Run the configurations of ``experiment_file`` on the traffic and provider behaviour
    recorded in ``ledger``; the first row of the result is what was recorded."""
    import tomllib

    from .errors import ExperimentError

    source = str(experiment_file)
    try:
        doc = tomllib.loads(Path(experiment_file).read_text("utf-8"))
    except OSError as exc:
        raise ExperimentError("", f"cannot read: {exc.strerror or exc}", source=source
                              ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError("", f"not valid TOML: {exc}", source=source) from None
    recording = read_ledger(ledger, since=since, until=until, chain=chain)
    try:
        experiment, traffic = replay_experiment(doc, recording, source=source,
                                                window_s=window_s)
    except ExperimentError as exc:
        raise exc.in_file(source) from None
    result = run_experiment(experiment, seed=seed, traffic=traffic)
    providers = list(dict.fromkeys([*recording.providers, *result.providers]))
    baseline = recorded_result(recording, providers, experiment.workload.start,
                               experiment.timeline_bucket_s)
    return ExperimentResult(experiment, result.seed, [baseline, *result.results],
                            result.skipped, providers)
