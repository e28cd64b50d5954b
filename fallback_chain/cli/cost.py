"""``fallback-chain cost``: spend reports from the ledger, and price estimates for a batch.

Only typer is imported at module level; sqlite, pydantic, rich and the price data load inside
the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fallback_chain.richtable import print_table

if TYPE_CHECKING:
    from fallback_chain.cost.batch import BatchEstimate
    from fallback_chain.cost.report import CostReport, ReportRow

from ._output import DEFAULT_LEDGER, EMULATED_LEDGER, LEDGER_ENV

app = typer.Typer(name="cost", no_args_is_help=True, add_completion=False,
                  help="Spend reports from the cost ledger, and price estimates for a batch.")
cost_app = app


class By(StrEnum):
    day = "day"
    provider = "provider"
    model = "model"
    outcome = "outcome"
    user = "user"
    project = "project"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command("report")
def report(
    ledger: Annotated[Path | None, typer.Option(
        help=f"Ledger file (default: ${LEDGER_ENV}, else the config file's ledger for the "
             f"chain, else ./{DEFAULT_LEDGER}).", dir_okay=False)] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", dir_okay=False,
        help="Config file whose ledger to read (default: $FALLBACK_CHAIN_CONFIG, else "
             "./fallback-chain.toml, if there is one).")] = None,
    chain: Annotated[str | None, typer.Option(
        "--chain", help="Chain of the config file whose ledger to read (default: its "
                        "default_chain).")] = None,
    emulated: Annotated[bool, typer.Option(
        "--emulated", help=f"Read the ledger of the --emulated runs (./{EMULATED_LEDGER}), "
                           "kept apart from real spend.")] = False,
    since: Annotated[str | None, typer.Option(
        help="Only attempts started on or after this UTC date (YYYY-MM-DD) or time.")] = None,
    until: Annotated[str | None, typer.Option(
        help="Only attempts started before this UTC date or time.")] = None,
    by: Annotated[list[By] | None, typer.Option(
        help="Group by day, provider, model, outcome, user or project (repeatable; default: "
             "day, provider, model and outcome).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
    = False,
) -> None:
    """Summarise spend, including money spent on attempts that did not deliver."""
    from fallback_chain.cost.ledger import Ledger
    from fallback_chain.cost.report import GROUPINGS, cost_report

    path = _ledger_path(ledger, config, chain, emulated)
    if (not path.is_file() and ledger is None and not emulated
            and Path(EMULATED_LEDGER).is_file()):
        # no real ledger yet, but the emulated runs kept one (scripts/demo): show that one
        typer.echo(f"no ledger at {path}; reading the --emulated runs' ledger "
                   f"./{EMULATED_LEDGER} (emulated money, nothing was billed)", err=True)
        path, emulated = Path(EMULATED_LEDGER), True
    groupings = [b.value for b in by] if by else list(GROUPINGS)
    try:
        with Ledger(path, create=False) as book:
            result = cost_report(book, since=since, until=until, by=groupings)  # type: ignore[arg-type]
    except FileNotFoundError as exc:
        hint = ""
        if not emulated and Path(EMULATED_LEDGER).is_file():
            hint = (f"; the --emulated runs recorded theirs in ./{EMULATED_LEDGER}: "
                    "fallback-chain cost report --emulated")
        raise _fail(f"{exc}{hint}") from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    _print_report(result, path)


def _ledger_path(ledger: Path | None, config: Path | None, chain: str | None,
                 emulated: bool) -> Path:
    """``--ledger``; ``--emulated``: the emulated runs' ledger; ``$FALLBACK_CHAIN_LEDGER``;
    the config file's ledger for the chain (when a config file is given or found); else
    ``./fallback-chain-ledger.db``."""
    if ledger is not None:
        return ledger
    if emulated:
        return Path(EMULATED_LEDGER)
    if os.environ.get(LEDGER_ENV):
        return Path(os.environ[LEDGER_ENV])
    from fallback_chain.config import ConfigError, ConfigNotFoundError, find_config

    from ._output import open_config

    try:
        find_config(config)
    except ConfigNotFoundError:
        if config is not None or chain is not None:
            raise _fail(f"{config or 'no config file'}: not found") from None
        return Path(DEFAULT_LEDGER)
    cfg = open_config(config, as_json=False, chains=[chain])
    try:
        found = cfg.ledger_path(chain)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    finally:
        cfg.close()
    return found if found is not None else Path(DEFAULT_LEDGER)


ESTIMATE_HELP = (
    "Price a batch of requests against a chain of providers: expected under the given failure "
    "rates, with no failures, and worst case.\n\n"
    "No failures: the first provider serves every request. Expected: under the failure rates; "
    "it can be lower than 'no failures' when failed calls are not billed and a later provider "
    "is cheaper. Worst: every provider is called and bills. A model that is shut down (or "
    "about to be) is priced with a warning: its calls would fail.\n\n"
    "Example: fallback-chain cost estimate briefs.csv --providers "
    "gemini:gemini-3.1-flash-image,openai:gpt-image-2 --failure-rate gemini=0.2")


@app.command("estimate", help=ESTIMATE_HELP)
def estimate(
    prompts: Annotated[Path, typer.Argument(
        help="CSV of requests: a 'prompt' column and optional 'size', 'quality', 'n' columns, "
             "or one prompt per line.", exists=True, dir_okay=False, readable=True)],
    providers: Annotated[str | None, typer.Option(
        "--providers", "-p",
        help="Providers in order: vendor or vendor:model, comma-separated, e.g. "
             "'gemini, leonardo, openai:gpt-image-2' (as compare takes them). Default: the "
             "providers of --chain.")] = None,
    chain: Annotated[str | None, typer.Option(
        "--chain", help="Chain of the config file to price (default: its default_chain), "
                        "when --providers is not given.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", dir_okay=False,
        help="Config file (default: $FALLBACK_CHAIN_CONFIG, else ./fallback-chain.toml).")]
    = None,
    failure_rate: Annotated[list[str] | None, typer.Option(
        "--failure-rate", help="PROVIDER=RATE, the share of calls that fail (repeatable; "
        "PROVIDER is a vendor or vendor:model; default 0).")] = None,
    failures_billed: Annotated[float, typer.Option(
        help="Share of failed calls the vendor bills (e.g. timeouts), for the expected case.",
        min=0.0, max=1.0)] = 0.0,
    prices: Annotated[Path | None, typer.Option(
        help="A price file merged over the built-in catalogue (see docs/cost.md).",
        exists=True, dir_okay=False, readable=True)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
) -> None:
    """Price a batch of requests against a chain of providers: with no failures, expected
    under the given failure rates, and worst case.

    No failures: the first provider serves every request. Expected: under the failure rates;
    it can be lower than "no failures" when failed calls are not billed and a later provider
    is cheaper. Worst: every provider is called and bills. A model that is shut down (or
    about to be) is priced with a warning: its calls would fail.

    Example: fallback-chain cost estimate briefs.csv --providers
    gemini:gemini-3.1-flash-image,openai:gpt-image-2 --failure-rate gemini=0.2
    """
    from fallback_chain.batch.report import lifecycle_warnings
    from fallback_chain.cost.batch import estimate_batch, parse_chain_spec, read_requests_csv
    from fallback_chain.cost.catalogue import PriceCatalogue, PriceCatalogueError

    if providers is not None and chain is not None:
        raise _fail("--providers and --chain: give one (--providers lists vendors; --chain "
                    "names a chain of the config file)")
    try:
        steps = (parse_chain_spec(providers) if providers is not None
                 else _config_steps(config, chain))
        rates = _parse_rates(failure_rate or [])
        catalogue = PriceCatalogue.load(prices) if prices else PriceCatalogue.default()
        requests = read_requests_csv(prompts)
        result = estimate_batch(steps, requests, failure_rates=rates,
                                failures_billed=failures_billed, catalogue=catalogue)
    except (ValueError, OSError, PriceCatalogueError) as exc:
        raise _fail(str(exc)) from None
    notes = lifecycle_warnings(steps)
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "warnings": notes}, indent=2))
        return
    from ._output import warn

    warn(notes)
    _print_estimate(result)


def _config_steps(config: Path | None, chain: str | None) -> list[Any]:
    """The price steps of the config file's chain (``--chain``, else its default chain)."""
    from fallback_chain.config import ConfigError
    from fallback_chain.cost.batch import ChainStep

    from ._output import open_config

    cfg = open_config(config, as_json=False, chains=[chain])
    try:
        spec = cfg.chain_config(chain)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    finally:
        cfg.close()
    return [ChainStep(p.vendor, p.model) for p in spec.providers]


def _parse_rates(items: list[str]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--failure-rate {item!r}: expected PROVIDER=RATE")
        try:
            rates[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--failure-rate {item!r}: {value!r} is not a number") from None
    return rates


# ------------------------------------------------------------------------------ output

def _usd(x: float | None) -> str:
    if x is None:
        return "-"
    return f"${x:,.4f}" if abs(x) < 100 else f"${x:,.2f}"


def _print_report(result: CostReport, path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = result.total
    window = " ".join(x for x in (f"since {result.since}" if result.since else "",
                                  f"until {result.until}" if result.until else "") if x)
    console.print(f"[bold]Cost report[/bold] for {path}{' ' + window if window else ''}")
    share = f" ({t.undelivered_usd / t.spent_usd:.0%} of spend)" if t.spent_usd else ""
    console.print(f"spent {_usd(t.spent_usd)} on {t.calls} calls in {t.requests} requests; "
                  f"{t.delivered} delivered; {_usd(t.usd_per_delivery)} per delivery")
    console.print(f"spent on attempts that did not deliver: {_usd(t.undelivered_usd)}{share}; "
                  f"of all spend, {_usd(t.estimated_usd)} is estimated, not vendor-reported")
    for name, rows in result.sections.items():
        table = Table(title=f"by {name}", title_justify="left")
        for col, justify in (
                (name, "left"), ("attempts", "right"), ("calls", "right"),
                ("delivered", "right"), ("spent", "right"), ("not delivered", "right"),
                ("estimated", "right"), ("per delivery", "right")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for r in rows:
            table.add_row(*_cells(r))
        table.add_section()
        table.add_row(*_cells(t))
        print_table(console, table)


def _cells(r: ReportRow) -> list[str]:
    return [r.key, str(r.attempts), str(r.calls), str(r.delivered), _usd(r.spent_usd),
            _usd(r.undelivered_usd), _usd(r.estimated_usd), _usd(r.usd_per_delivery)]


def _print_estimate(result: BatchEstimate) -> None:
    from rich.console import Console

    from fallback_chain.batch.report import estimate_notes, estimate_table

    console = Console(highlight=False)
    print_table(console, estimate_table(result, f"{result.requests} request(s)"))
    console.print(f"expected requests no provider serves: {result.expected_undelivered:,.2f}"
                  + (f"; failed calls billed at {result.failures_billed:.0%}"
                     if result.failures_billed else ""))
    for note in estimate_notes(result):
        console.print(note)
