"""The end-of-run summary table and the ``--dry-run`` price table (Rich, on stdout)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..richtable import print_table

if TYPE_CHECKING:
    from rich.console import Console

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
    from rich.table import Table

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
    table = Table(title=f"price of {report.priced:,} request(s)", title_justify="left")
    for col in ("provider", "failure rate", "expected calls", "best", "expected", "worst"):
        table.add_column(col, justify="left" if col == "provider" else "right")
    for s in est.steps:
        table.add_row(escape(s.label) + (" (unpriced)" if s.unpriced_requests else ""),
                      f"{s.failure_rate:.0%}", f"{s.expected_calls:,.1f}", _usd(s.best_usd),
                      _usd(s.expected_usd), _usd(s.worst_usd))
    table.add_section()
    table.add_row("total", "", "", _usd(est.best_usd), _usd(est.expected_usd),
                  _usd(est.worst_usd))
    print_table(out, table)
    if est.unpriced:
        out.print(f"[yellow]no price in the catalogue for {', '.join(est.unpriced)} "
                  "(counted as $0)[/yellow]")
