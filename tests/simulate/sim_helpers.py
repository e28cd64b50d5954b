"""Shared builders for the simulation tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fallback_chain.simulate.experiment import Configuration, Experiment
from fallback_chain.simulate.profiles import ProviderProfile
from fallback_chain.simulate.workload import RatePiece, Workload

EXAMPLE = "examples/experiment.toml"


def experiment(profiles: Sequence[ProviderProfile], configs: Sequence[Configuration], *,
               requests: int | None = None, start: float = 0.0, end: float | None = None,
               per_min: float = 600.0, arrivals: str = "poisson", bucket_s: float = 300.0,
               seed: int = 0) -> Experiment:
    workload = Workload(start=start, end=end, requests=requests, arrivals=arrivals,  # type: ignore[arg-type]
                        schedule=(RatePiece(0.0, per_min),))
    return Experiment({p.name: p for p in profiles}, workload, list(configs), seed=seed,
                      timeline_bucket_s=bucket_s)


def config(name: str, chain: Sequence[str], /, **policy: Any) -> Configuration:
    return Configuration(name, tuple(chain), dict(policy))


NO_BREAKER: Mapping[str, Any] = {"breaker_failures": 10**9}
