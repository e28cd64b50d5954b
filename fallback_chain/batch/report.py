"""The end-of-run summary table and the ``--dry-run`` price table (Rich, on stdout)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..richtable import print_table

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rich.console import Console
    from rich.table import Table

    from fallback_chain.cost.batch import BatchEstimate, ChainStep

    from .pricing import DryRunReport
    from .stats import BatchSummary


def _usd(x: float | None) -> str:
    if x is None:
        return "-"
    return f"${x:,.4f}" if abs(x) < 100 else f"${x:,.2f}"


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}s"


def print_summary(summary: BatchSummary, console: Console | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = console or Console(highlight=False)
    s = summary
    state = ("[red]stopped: " + escape(s.error) + "[/red]" if s.error else
             "[yellow]interrupted[/yellow] (run the same command again to resume)"
             if s.interrupted else "[green]done[/green]")
    out.print(f"[bold]batch[/bold] {escape(s.input)} → {escape(s.output)}: {state}")
    table = Table(title="summary", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    how = ", ".join(f"{n} {label}" for n, label in (
        (s.generated, "generated"), (s.shared, "shared with an identical item"),
        (s.from_cache, "from the cache"), (s.recovered, "recovered from files")) if n)
    rows: list[tuple[str, str]] = [
        ("rows read", f"{s.rows:,}"),
        ("delivered", f"{s.delivered:,}" + (f" ({how})" if how else "")),
        ("already done (skipped)", f"{s.skipped:,}"),
        ("failed", f"{s.failed:,}"),
        ("invalid rows", f"{s.invalid_rows:,}"),
        ("images written", f"{s.images:,}"),
        ("spent", _usd(s.cost_usd)),
        ("spent on attempts that delivered nothing", _usd(s.undelivered_usd)),
        ("latency p50 / p95", f"{_secs(s.latency_p50_s)} / {_secs(s.latency_p95_s)}"),
        ("calls (rate-limited)", f"{s.calls:,} ({s.rate_limited:,})"),
        ("elapsed", f"{s.elapsed_s:,.1f}s ({s.items_per_s:,.1f} items/s)"),
    ]
    if s.interrupted_items:
        rows.append(("cancelled in flight", f"{s.interrupted_items:,}"))
    for what, value in rows:
        table.add_row(what, value)
    print_table(out, table)
    if s.failed_by_reason:
        reasons = Table(title="failed by reason", title_justify="left")
        reasons.add_column("reason")
        reasons.add_column("items", justify="right")
        for reason, count in s.failed_by_reason.items():
            reasons.add_row(reason, f"{count:,}")
        print_table(out, reasons)
    if s.providers:
        print_table(out, _providers_table(s.providers))
    out.print(f"manifest: {s.manifest}", markup=False)
    if s.failures_file:
        out.print(f"failures (feed back as input): {s.failures_file}", markup=False)


def _providers_table(providers: dict[str, dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title="per provider", title_justify="left")
    for col in ("provider", "calls", "delivered", "failed", "rate-limited", "spent",
                "not delivered", "p50", "p95"):
        table.add_column(col, justify="left" if col == "provider" else "right")
    for name, p in providers.items():
        table.add_row(name, f"{p['calls']:,}", f"{p['delivered']:,}", f"{p['failed_calls']:,}",
                      f"{p['rate_limited']:,}", _usd(p["cost_usd"]),
                      _usd(p["undelivered_usd"]), _secs(p["call_latency_p50_s"]),
                      _secs(p["call_latency_p95_s"]))
    return table


def print_dry_run(report: DryRunReport, console: Console | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape

    out = console or Console(highlight=False)
    est = report.estimate
    out.print(f"[bold]dry run[/bold] of {escape(report.input)}: {report.rows:,} rows, "
              f"{report.valid:,} valid, {report.invalid:,} invalid"
              + (f", {report.already_delivered:,} already delivered" if
                 report.already_delivered else "")
              + f"; {report.priced:,} would be generated. Nothing was sent.")
    for error in report.errors:
        out.print(f"  {error}", markup=False)
    if report.invalid > len(report.errors):
        out.print(f"  ... and {report.invalid - len(report.errors):,} more invalid rows")
    print_table(out, estimate_table(est, f"price of {report.priced:,} request(s)"))
    for note in estimate_notes(est):
        out.print(note)


#: The columns of a price estimate: what each case means is printed under the table.
ESTIMATE_COLUMNS = ("provider", "failure rate", "expected calls", "expected", "no failures",
                    "worst case")


def estimate_table(est: BatchEstimate, title: str) -> Table:
    """The price table of an estimate: expected first, then the two bounding scenarios."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ESTIMATE_COLUMNS:
        table.add_column(col, justify="left" if col == "provider" else "right")
    for s in est.steps:
        table.add_row(escape(s.label) + (" (unpriced)" if s.unpriced_requests else ""),
                      f"{s.failure_rate:.0%}", f"{s.expected_calls:,.1f}",
                      _usd(s.expected_usd), _usd(s.best_usd), _usd(s.worst_usd))
    table.add_section()
    table.add_row("total", "", "", _usd(est.expected_usd), _usd(est.best_usd),
                  _usd(est.worst_usd))
    return table


def estimate_notes(est: BatchEstimate) -> list[str]:
    """What the columns mean (and why expected can be below "no failures"), as Rich text."""
    notes = ["[dim]expected: under the failure rates; no failures: the first provider serves "
             "every request; worst case: every provider is called and bills.[/dim]"]
    if est.expected_usd < est.best_usd - 1e-9:
        billed = ("failed calls are not billed" if not est.failures_billed
                  else f"only {est.failures_billed:.0%} of failed calls are billed")
        notes.append(f"expected is below no failures: {billed} and the requests that fail "
                     "over go to cheaper providers further down the chain.")
    if est.unpriced:
        notes.append(f"[yellow]no price in the catalogue for {', '.join(est.unpriced)} "
                     "(counted as $0)[/yellow]")
    return notes


def lifecycle_warnings(steps: Iterable[ChainStep]) -> list[str]:
    """A warning for each step whose model is shut down or about to be (the catalogue of
    models, ``providers/<vendor>/models.json``); estimating such a model prices calls that fail."""
    import warnings

    from fallback_chain.providers import catalogue

    notes = []
    for step in steps:
        if step.model is None:
            continue
        try:
            info = catalogue.lookup(step.vendor, step.model)
        except (KeyError, ValueError):  # a vendor the catalogue does not know
            continue
        if not info.known:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # returned here, printed by the command
            message = catalogue.warn_if_retired(info)
        if message:
            notes.append(message)
    return notes
