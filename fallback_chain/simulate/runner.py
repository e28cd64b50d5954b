"""Run the real ``Chain`` over simulated providers on a virtual clock, one configuration at a
time, on the same traffic.

Each request is a task started at its arrival time (a timer, not a sleeping driver) that calls
``chain.agenerate`` exactly as an application would; the chain runs with its ordinary router,
policy, breakers, cooldowns, budget and hedging, on a :class:`~.loop.SimLoop` whose clock
reads seconds since midnight of the simulated day (``VirtualClock`` maps it to that date).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .experiment import Configuration, Experiment, derive_seed
from .loop import SimClock, SimLoop, run_simulation
from .metrics import Collector, ConfigResult
from .profiles import ProviderProfile
from .provider import SimProvider
from .workload import build_requests


@dataclass(frozen=True)
class Traffic:
    """The requests of a run: arrival times (seconds since midnight, ascending), the index
    of each request's kind, and one prebuilt ``ImageRequest`` per kind."""

    arrivals: Sequence[float]
    kinds: Sequence[int]
    requests: Sequence[Any]

    def __len__(self) -> int:
        return len(self.arrivals)


@dataclass(frozen=True)
class ExperimentResult:
    experiment: Experiment
    seed: int
    results: list[ConfigResult]
    skipped: dict[str, str]  # configuration -> why it did not run
    providers: list[str]

    def by_name(self, name: str) -> ConfigResult:
        for r in self.results:
            if r.config == name:
                return r
        raise KeyError(name)


def make_traffic(experiment: Experiment, seed: int) -> Traffic:
    """The experiment's workload drawn with ``seed`` (the same for every configuration)."""
    workload = experiment.workload
    arrivals = workload.arrival_times(random.Random(derive_seed(seed, "arrivals")))
    kinds = workload.kinds(len(arrivals), random.Random(derive_seed(seed, "mix")))
    return Traffic(arrivals, kinds, build_requests(workload.mix))


def simulate(config: Configuration, profiles: Mapping[str, ProviderProfile], traffic: Traffic,
             *, seed: int, epoch: float, start: float, bucket_s: float,
             providers: Sequence[str] | None = None,
             on_event: Callable[[Any], None] | None = None) -> ConfigResult:
    """Run ``traffic`` through ``config``'s chain; ``providers`` names the columns of the
    result (default: the chain's providers). ``on_event`` subscribes to the chain's events,
    e.g. a ``Ledger`` to record the simulated attempts (slower: every attempt is an event)."""
    from ..chain import Chain
    from ..errors import ChainError, ContentPolicyError

    sim_loop = SimLoop(start)
    clock = SimClock(sim_loop, epoch)
    sims = [SimProvider(profiles[name], seed=derive_seed(seed, "provider", name))
            for name in config.providers]
    chain = Chain(sims, policy=config.build_policy(), clock=clock, name=config.name,
                  budget=config.build_budget(clock), order=config.order,
                  seed=derive_seed(seed, "router"), log=False, on_event=on_event)
    collector = Collector(providers or config.providers, start, bucket_s)
    arrivals, kinds, requests = traffic.arrivals, traffic.kinds, traffic.requests
    total = len(arrivals)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()
        running: dict[int, asyncio.Task[None]] = {}
        generate = chain.agenerate
        add = collector.add
        left = total

        async def one(i: int) -> None:
            nonlocal left
            arrived = arrivals[i]
            request = requests[kinds[i]]
            try:
                result = await generate(request)
            except ChainError as exc:
                add(arrived, loop.time() - arrived, None, request.n, exc.attempts,
                    isinstance(exc, ContentPolicyError))
            except BaseException as exc:  # a bug: stop the run and show it
                if not finished.done():
                    finished.set_exception(exc)
                raise
            else:
                add(arrived, loop.time() - arrived, result.provider, request.n,
                    result.attempts)
            del running[i]
            left -= 1
            if not left and not finished.done():
                finished.set_result(None)

        def arrive(i: int) -> None:
            running[i] = loop.create_task(one(i))
            if i + 1 < total:
                sim_loop.wake_at(arrivals[i + 1], arrive, i + 1)

        if not total:
            return
        sim_loop.wake_at(arrivals[0], arrive, 0)
        try:
            await finished
        finally:
            for task in running.values():
                task.cancel()
            if running:
                await asyncio.gather(*running.values(), return_exceptions=True)

    started, cpu = time.perf_counter(), time.process_time()
    run_simulation(main(), loop=sim_loop)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return replace(collector.summary(config.name), wall_s=wall, cpu_s=cpu)


def run_experiment(experiment: Experiment, *, seed: int | None = None,
                   traffic: Traffic | None = None,
                   on_config: Callable[[Configuration, ConfigResult | None], None] | None = None
                   ) -> ExperimentResult:
    """Run every configuration of ``experiment`` on the same traffic (drawn with ``seed``,
    default the experiment's) and collect their summaries."""
    seed = experiment.seed if seed is None else seed
    traffic = traffic if traffic is not None else make_traffic(experiment, seed)
    providers = experiment.provider_names()
    results: list[ConfigResult] = []
    skipped: dict[str, str] = {}
    for config in experiment.configurations:
        why = config.unavailable()
        if why is not None:
            skipped[config.name] = why
            if on_config is not None:
                on_config(config, None)
            continue
        result = simulate(config, experiment.profiles, traffic, seed=seed,
                          epoch=experiment.epoch, start=experiment.workload.start,
                          bucket_s=experiment.timeline_bucket_s, providers=providers)
        results.append(result)
        if on_config is not None:
            on_config(config, result)
    return ExperimentResult(experiment, seed, results, skipped, providers)
