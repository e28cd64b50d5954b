"""Simulation, experiments and replay: run the real ``Chain`` over simulated providers on a
virtual clock and compare configurations on cost, success and latency.

* ``ProviderProfile`` / ``SimProvider``: a simulated vendor (price, latency distribution,
  fault rates, outages, its own images-per-minute limit).
* ``Workload``: arrivals over the simulated day and the request mix.
* ``Experiment`` / ``Configuration`` / ``load_experiment``: profiles, workload and the
  configurations to compare, from a TOML file.
* ``run_experiment`` / ``simulate``: run them; ``ExperimentResult`` and ``ConfigResult`` hold
  the figures. ``summary_csv``, ``timeline_csv``, ``to_json``, ``print_table`` and ``plot_results``
  present them.
* ``replay_ledger``: the same, on the traffic and provider behaviour a cost ledger recorded.
* ``SimLoop`` / ``SimClock`` / ``run_simulation``: the virtual-time event loop underneath.

See ``docs/simulate.md``. Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .distributions import Empirical, Exponential, Fixed, LogNormal, Uniform
    from .errors import ExperimentError
    from .experiment import Configuration, Experiment, load_experiment, parse_experiment
    from .loop import SimClock, SimLoop, SimulationDeadlock, run_simulation
    from .metrics import ConfigResult, TimelineRow
    from .plot import PlotUnavailable, plot_results
    from .profiles import Outage, ProviderProfile, parse_profile
    from .provider import SimProvider
    from .replay import Recording, read_ledger, replay_ledger
    from .report import print_table, summary_csv, timeline_csv, to_json
    from .runner import ExperimentResult, Traffic, make_traffic, run_experiment, simulate
    from .workload import RatePiece, RequestKind, Workload

_WHERE = {
    "Empirical": ".distributions",
    "Exponential": ".distributions",
    "Fixed": ".distributions",
    "LogNormal": ".distributions",
    "Uniform": ".distributions",
    "ExperimentError": ".errors",
    "Configuration": ".experiment",
    "Experiment": ".experiment",
    "load_experiment": ".experiment",
    "parse_experiment": ".experiment",
    "SimClock": ".loop",
    "SimLoop": ".loop",
    "SimulationDeadlock": ".loop",
    "run_simulation": ".loop",
    "ConfigResult": ".metrics",
    "TimelineRow": ".metrics",
    "PlotUnavailable": ".plot",
    "plot_results": ".plot",
    "Outage": ".profiles",
    "ProviderProfile": ".profiles",
    "parse_profile": ".profiles",
    "SimProvider": ".provider",
    "Recording": ".replay",
    "read_ledger": ".replay",
    "replay_ledger": ".replay",
    "print_table": ".report",
    "summary_csv": ".report",
    "timeline_csv": ".report",
    "to_json": ".report",
    "ExperimentResult": ".runner",
    "Traffic": ".runner",
    "make_traffic": ".runner",
    "run_experiment": ".runner",
    "simulate": ".runner",
    "RatePiece": ".workload",
    "RequestKind": ".workload",
    "Workload": ".workload",
}

__all__ = [
    "ConfigResult",
    "Configuration",
    "Empirical",
    "Experiment",
    "ExperimentError",
    "ExperimentResult",
    "Exponential",
    "Fixed",
    "LogNormal",
    "Outage",
    "PlotUnavailable",
    "ProviderProfile",
    "RatePiece",
    "Recording",
    "RequestKind",
    "SimClock",
    "SimLoop",
    "SimProvider",
    "SimulationDeadlock",
    "TimelineRow",
    "Traffic",
    "Uniform",
    "Workload",
    "load_experiment",
    "make_traffic",
    "parse_experiment",
    "parse_profile",
    "plot_results",
    "print_table",
    "read_ledger",
    "replay_ledger",
    "run_experiment",
    "run_simulation",
    "simulate",
    "summary_csv",
    "timeline_csv",
    "to_json",
]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
