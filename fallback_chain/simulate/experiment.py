"""Experiments: provider profiles, a workload, and the configurations to compare on them.

An experiment file (TOML)::

    [experiment]
    name = "outage at ten"
    seed = 7                      # same seed, same results (--seed overrides it)
    date = "2026-01-01"           # the simulated day (UTC); budgets count per day of it
    timeline_bucket = "5m"        # width of the rows of timeline.csv and of the plot's timeline

    [policy]                      # the base policy of every configuration (Policy keywords)
    attempt_timeout_s = 60

    [workload]                    # see workload.py
    start = "09:00"
    duration = "3h"
    rate_per_min = 30

    [providers.gemini]            # one profile per simulated vendor, see profiles.py
    price_usd = 0.039
    ...

    [[configurations]]
    name = "given order"
    providers = ["gemini", "leonardo", "openai"]   # the chain, in order (default: every profile)
    order = "given"               # or "cost": Chain(order="cost")
    policy = {retries = {server_error = 0}}        # merged over [policy]
    budget = {per_request_usd = 0.25, daily_usd = 40}

``policy`` takes every keyword of :class:`fallback_chain.Policy` (``retries``,
``cooldowns_s``, ``breaker_failures``, ``breaker_reset_s``, ``attempt_timeout_s``,
``deadline_s``, ``images_per_minute``, ``max_concurrency``, hedging's ``hedge_delay_s``,
``hedge_delay``, ``hedge_max_extra_usd``, ``max_hedges``, per-provider ``providers = {...}``,
...). ``retries``, ``cooldowns_s`` and ``providers`` merge with the base policy key by key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ExperimentError
from .profiles import ProviderProfile, parse_profile
from .timeparse import duration
from .workload import Workload, parse_workload

if TYPE_CHECKING:
    from ..config.locate import Positions
    from ..config.tomlmodel import TomlProblems
    from .experiment_file import ConfigurationTable, ExperimentFile

#: Policy fields that arrive with hedged requests; a configuration using them is skipped
#: (with a note) on a version of the library that does not have them yet.
HEDGING_FIELDS = ("hedge_delay_s", "hedge_delay", "hedge_max_extra_usd", "max_hedges")
_FROZENSET_FIELDS = ("stop_on", "breaker_outcomes")
_MERGED_FIELDS = ("retries", "cooldowns_s")


def derive_seed(seed: int, *labels: str) -> int:
    """A 64-bit seed for one random stream, from the experiment seed and a label (stable
    across runs and Python versions, unlike ``hash``)."""
    text = ":".join((str(seed), *labels)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def policy_fields() -> frozenset[str]:
    """The keyword names ``Policy`` accepts in this version of the library."""
    from ..policy import Policy

    return frozenset(f.name for f in dataclasses.fields(Policy))


def merge_policy(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; ``retries``, ``cooldowns_s`` and each provider's table
    under ``providers`` merge key by key."""
    out = dict(base)
    for key, value in over.items():
        if key in _MERGED_FIELDS and isinstance(value, Mapping):
            out[key] = {**out.get(key, {}), **value}
        elif key == "providers" and isinstance(value, Mapping):
            merged = {k: dict(v) for k, v in out.get("providers", {}).items()}
            for name, table in value.items():
                merged[name] = merge_policy(merged.get(name, {}), table)
            out[key] = merged
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Configuration:
    """One way of running the chain: which providers in which order, the policy, a budget.

    ``policy`` holds :class:`~fallback_chain.Policy` keywords (already merged with the
    experiment's base policy).
    """

    name: str
    providers: Sequence[str]
    policy: Mapping[str, Any] = field(default_factory=dict)
    order: Literal["given", "cost"] = "given"
    budget: Mapping[str, float] | None = None

    def unavailable(self) -> str | None:
        """Why this configuration cannot run on this version of the library, if it cannot."""
        missing = [k for k in self.policy if k in HEDGING_FIELDS and k not in policy_fields()]
        if missing:
            return (f"needs hedged requests ({', '.join(missing)}), which this version of "
                    "fallback-chain does not have")
        return None

    def build_policy(self, where: str = "") -> Any:
        """The ``Policy`` (an ``ExperimentError`` naming the bad field if it is invalid)."""
        from ..errors import ConfigurationError
        from ..policy import Policy

        where = where or f"configurations.{self.name}.policy"
        known = policy_fields()
        unknown = sorted(set(self.policy) - known)
        if unknown:
            raise ExperimentError(where, f"unknown Policy field(s) {unknown}; Policy takes "
                                         f"{', '.join(sorted(known))}")
        kwargs = dict(self.policy)
        for key in _FROZENSET_FIELDS:
            if key in kwargs and isinstance(kwargs[key], list | tuple | set):
                kwargs[key] = frozenset(kwargs[key])
        own = kwargs.get("providers", {})
        stray = sorted(set(own) - set(self.providers))
        if stray:
            raise ExperimentError(f"{where}.providers",
                                  f"names {stray}, which are not in this configuration's "
                                  f"chain {list(self.providers)}")
        try:
            return Policy(**kwargs)
        except (ConfigurationError, TypeError, ValueError) as exc:
            raise ExperimentError(where, str(exc)) from None

    def build_budget(self, clock: Any) -> Any:
        """A fresh ``Budget`` for one run (``None`` without a budget)."""
        if self.budget is None:
            return None
        from ..cost.budget import Budget

        name = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.name) or "sim"
        try:
            return Budget(**dict(self.budget), name=name, clock=clock)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ExperimentError(f"configurations.{self.name}.budget", str(exc)) from None


@dataclass(frozen=True)
class Experiment:
    """Profiles, a workload and configurations; ``day`` is the simulated date (UTC)."""

    profiles: Mapping[str, ProviderProfile]
    workload: Workload
    configurations: Sequence[Configuration]
    name: str = "experiment"
    seed: int = 0
    day: date = date(2026, 1, 1)
    timeline_bucket_s: float = 300.0
    source: str | None = None

    def __post_init__(self) -> None:
        if not self.configurations:
            raise ExperimentError("configurations", "list at least one configuration")
        names = [c.name for c in self.configurations]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ExperimentError("configurations", f"duplicate name(s) {dupes}")
        for c in self.configurations:
            missing = [p for p in c.providers if p not in self.profiles]
            if missing:
                raise ExperimentError(f"configurations.{c.name}.providers",
                                      f"no profile for {missing}; profiles: "
                                      f"{sorted(self.profiles)}")
        if not self.timeline_bucket_s > 0:
            raise ExperimentError("experiment.timeline_bucket", "must be > 0")

    @property
    def epoch(self) -> float:
        """Unix time of midnight (UTC) of the simulated day."""
        return datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC).timestamp()

    def with_seed(self, seed: int) -> Experiment:
        return dataclasses.replace(self, seed=seed)

    def provider_names(self) -> list[str]:
        """Every provider used by some configuration, in first-use order."""
        seen: dict[str, None] = {}
        for c in self.configurations:
            for p in c.providers:
                seen.setdefault(p, None)
        return list(seen)


# ----------------------------------------------------------------------------- loading


def load_experiment(path: str | Path, *, need_workload: bool = True) -> Experiment:
    """Read an experiment file; errors name the file, the line and the bad key."""
    from ..config import tomlmodel

    source = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise ExperimentError("", f"cannot read: {exc.strerror or exc}", source=source) from None
    try:
        doc = tomlmodel.parse(text, source)
    except tomlmodel.TomlProblems as exc:
        raise _from_problems(exc, source) from None
    return parse_experiment(doc, source=source, need_workload=need_workload, text=text)


def parse_experiment(doc: Mapping[str, Any], *, source: str | None = None,
                     need_workload: bool = True,
                     extra_profiles: Mapping[str, ProviderProfile] | None = None,
                     text: str | None = None) -> Experiment:
    """An experiment from its parsed TOML document (``text``: the document itself, so that
    errors can name their line). ``need_workload=False`` (replay) lets the workload and, with
    ``extra_profiles``, some profiles come from elsewhere."""
    from ..config import tomlmodel
    from ..config.locate import Positions
    from .experiment_file import ExperimentFile

    try:
        model = tomlmodel.validate(ExperimentFile, doc, text=text, source=source)
    except tomlmodel.TomlProblems as exc:
        raise _from_problems(exc, source) from None
    where = Positions(text) if text is not None else None
    names = [c.name for c in model.configurations or ()]
    with _located(source, where, names):
        return _build(model, source, need_workload, extra_profiles)


def _build(model: ExperimentFile, source: str | None, need_workload: bool,
           extra_profiles: Mapping[str, ProviderProfile] | None) -> Experiment:
    header = model.experiment
    bucket = duration(header.timeline_bucket, "experiment.timeline_bucket")
    profiles: dict[str, ProviderProfile] = dict(extra_profiles or {})
    for name, spec in model.providers.items():
        profiles.setdefault(name, parse_profile(name, spec))
    if not profiles:
        raise ExperimentError("providers", "describe at least one provider "
                                           "([providers.NAME] tables)")
    if model.workload is not None or need_workload:
        workload = parse_workload(model.workload or {})
    else:
        workload = Workload()
    if not model.configurations:
        raise ExperimentError("configurations", "list at least one [[configurations]] table")
    configs = [_configuration(c, i, model.policy, list(profiles))
               for i, c in enumerate(model.configurations)]
    return Experiment(profiles=profiles, workload=workload, configurations=configs,
                      name=header.name or (Path(source).stem if source else "experiment"),
                      seed=header.seed, day=header.date, timeline_bucket_s=bucket, source=source)


def _configuration(table: ConfigurationTable, i: int, base: Mapping[str, Any],
                   profiles: list[str]) -> Configuration:
    where = f"configurations.{table.name}"
    providers = table.providers or profiles
    own = table.policy
    merged = merge_policy(base, own)
    if "providers" in merged:  # the base may set overrides for providers this chain lacks
        merged["providers"] = {k: v for k, v in merged["providers"].items()
                               if k in providers or k in own.get("providers", {})}
    config = Configuration(name=table.name, providers=tuple(providers), policy=merged,
                           order=table.order, budget=table.budget)
    if config.unavailable() is None:
        try:
            config.build_policy(f"{where}.policy")  # fail early, naming the field
        except ExperimentError as exc:
            raise ExperimentError(exc.where, exc.problem,
                                  loc=("configurations", i, "policy")) from None
    return config


def _from_problems(exc: TomlProblems, source: str | None) -> ExperimentError:
    first, *rest = exc.problems
    from ..config.tomlmodel import render

    return ExperimentError(first.field, first.message, source=source, line=first.line,
                           more=tuple(render(p, source) for p in rest))


@contextlib.contextmanager
def _located(source: str | None, where: Positions | None, names: list[str]
             ) -> Iterator[None]:
    """Name the file, and the line of the key an ``ExperimentError`` names, when known."""
    try:
        yield
    except ExperimentError as exc:
        if source is None:
            raise
        loc = exc.loc or _loc(exc.where)
        if loc[:1] == ("configurations",) and len(loc) > 1 and loc[1] in names:
            loc = ("configurations", names.index(str(loc[1])), *loc[2:])
        line = where.line(loc) if where is not None else None
        raise exc.in_file(source, line) from None


def _loc(where: str) -> tuple[str | int, ...]:
    """``"providers.a.outages[0].start"`` as ``("providers", "a", "outages", 0, "start")``."""
    out: list[str | int] = []
    for part in where.split("."):
        name, *indexes = part.split("[")
        if name:
            out.append(name)
        out.extend(int(i.rstrip("]")) for i in indexes if i.rstrip("]").isdigit())
    return tuple(out)
