"""``fallback-chain simulate``: compare chain configurations on simulated (or replayed)
traffic.

Only typer is imported at module level; the simulator, Rich and matplotlib load inside the
command, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fallback_chain.simulate.experiment import Configuration
    from fallback_chain.simulate.metrics import ConfigResult
    from fallback_chain.simulate.runner import ExperimentResult


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def simulate(
    experiment: Annotated[Path, typer.Argument(
        help="Experiment file (TOML): provider profiles, workload, configurations. See "
             "docs/simulate.md and examples/experiment.toml.",
        exists=True, dir_okay=False, readable=True)],
    out: Annotated[Path, typer.Option(
        help="Directory for results.csv, timeline.csv, results.json and results.png.",
        file_okay=False)] = Path("simulate-out"),
    seed: Annotated[int | None, typer.Option(
        help="Seed of every random draw (overrides the file's); same seed, same results.")]
    = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the results as JSON instead of tables.")] = False,
    replay: Annotated[Path | None, typer.Option(
        help="A cost ledger (SQLite) to replay: its traffic and each provider's observed "
             "behaviour replace the file's workload and profiles.",
        exists=True, dir_okay=False, readable=True)] = None,
    since: Annotated[str | None, typer.Option(
        help="Replay only attempts started on or after this UTC date or time.")] = None,
    until: Annotated[str | None, typer.Option(
        help="Replay only attempts started before this UTC date or time.")] = None,
    chain: Annotated[str | None, typer.Option(
        help="Replay only the attempts of this chain name.")] = None,
    window: Annotated[str, typer.Option(
        help="Replay: width of the windows in which provider fault rates are measured "
             "(e.g. 10m, 1h); 0 for one rate over the whole ledger.")] = "1h",
    plot: Annotated[bool, typer.Option(
        help="Draw results.png (needs matplotlib: pip install 'fallback-chain\\[sim]').")]
    = True,
) -> None:
    """Run every configuration of EXPERIMENT through the real router over simulated
    providers on a virtual clock, and compare success rate, cost per delivered image, money
    wasted on failures, calls per image, latency and where the time went."""
    from fallback_chain.simulate.errors import ExperimentError
    from fallback_chain.simulate.timeparse import duration

    def progress(config: Configuration, result: ConfigResult | None) -> None:
        if result is None:
            typer.echo(f"  {config.name}: skipped", err=True)
        else:
            typer.echo(f"  {config.name}: {result.requests:,} requests in "
                       f"{result.wall_s:.2f}s", err=True)

    try:
        if replay is not None:
            from fallback_chain.simulate.replay import replay_ledger

            typer.echo(f"replaying {replay} with {experiment}", err=True)
            result = replay_ledger(replay, experiment, seed=seed, since=since, until=until,
                                chain=chain, window_s=duration(window, "--window"))
        else:
            from fallback_chain.simulate.experiment import load_experiment
            from fallback_chain.simulate.runner import run_experiment

            exp = load_experiment(experiment)
            typer.echo(f"simulating {exp.name}: {len(exp.configurations)} configuration(s)",
                       err=True)
            result = run_experiment(exp, seed=seed, on_config=progress)
    except ExperimentError as exc:
        raise _fail(str(exc)) from None
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    written = _write(result, out)
    if as_json:
        typer.echo(json.dumps(_json(result), indent=2))
    else:
        from fallback_chain.simulate.report import print_table

        print_table(result)
    problem = None
    if plot:
        from fallback_chain.simulate.plot import PlotUnavailable, plot_results

        try:
            written.append(plot_results(result, out / "results.png"))
        except PlotUnavailable as exc:
            problem = str(exc)
    typer.echo("wrote " + ", ".join(str(p) for p in written), err=True)
    if problem:
        raise _fail(problem, 1)


def _json(result: ExperimentResult) -> dict[str, object]:
    from fallback_chain.simulate.report import to_json

    return to_json(result)


def _write(result: ExperimentResult, out: Path) -> list[Path]:
    from fallback_chain.simulate.report import summary_csv, timeline_csv

    try:
        out.mkdir(parents=True, exist_ok=True)
        files = {"results.csv": summary_csv(result), "timeline.csv": timeline_csv(result),
                 "results.json": json.dumps(_json(result), indent=2) + "\n"}
        written = []
        for name, text in files.items():
            path = out / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise _fail(f"cannot write to {out}: {exc.strerror or exc}") from None
    return written
