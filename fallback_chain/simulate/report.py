"""The outputs of an experiment: CSV files, a JSON document and a Rich table.

The CSV files hold only simulated figures (no wall-clock time), formatted with fixed
decimals, so the same experiment with the same seed gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .metrics import ConfigResult
from .timeparse import format_clock

if TYPE_CHECKING:
    from rich.console import Console

    from .runner import ExperimentResult


def _f(digits: int) -> Callable[[float], str]:
    def fmt(v: float) -> str:
        return "" if v is None or math.isnan(v) else f"{v:.{digits}f}"
    return fmt


_USD, _SHARE, _SECONDS = _f(6), _f(4), _f(3)

#: (column, formatter, value) of the summary CSV, before the per-provider columns.
SUMMARY_COLUMNS: list[tuple[str, Callable[[Any], str], Callable[[ConfigResult], Any]]] = [
    ("config", str, lambda r: r.config),
    ("requests", str, lambda r: r.requests),
    ("delivered", str, lambda r: r.delivered),
    ("success_rate", _SHARE, lambda r: r.success_rate),
    ("refused", str, lambda r: r.refused),
    ("images", str, lambda r: r.images),
    ("spend_usd", _USD, lambda r: r.spend_usd),
    ("cost_per_image_usd", _USD, lambda r: r.cost_per_image_usd),
    ("wasted_usd", _USD, lambda r: r.wasted_usd),
    ("wasted_share", _SHARE, lambda r: r.wasted_share),
    ("calls", str, lambda r: r.calls),
    ("attempts_per_image", _SHARE, lambda r: r.attempts_per_image),
    ("cancelled_calls", str, lambda r: r.cancelled),
    ("latency_p50_s", _SECONDS, lambda r: r.latency_p50_s),
    ("latency_p95_s", _SECONDS, lambda r: r.latency_p95_s),
    ("latency_p99_s", _SECONDS, lambda r: r.latency_p99_s),
]


def summary_rows(result: ExperimentResult) -> list[dict[str, str]]:
    rows = []
    for r in result.results:
        row = {name: fmt(get(r)) for name, fmt, get in SUMMARY_COLUMNS}
        for p in result.providers:
            row[f"served_share_{p}"] = _SHARE(r.served_share(p))
            row[f"calls_{p}"] = str(r.calls_by.get(p, 0))
            row[f"busy_s_{p}"] = _SECONDS(r.busy_s.get(p, 0.0))
            row[f"busy_share_{p}"] = _SHARE(r.busy_share.get(p, 0.0))
            row[f"spend_usd_{p}"] = _USD(r.spend_by.get(p, 0.0))
        row["note"] = r.note
        rows.append(row)
    return rows


def _csv(rows: Sequence[dict[str, str]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def summary_csv(result: ExperimentResult) -> str:
    """One row per configuration (see ``metrics`` for what each figure means)."""
    return _csv(summary_rows(result))


def timeline_csv(result: ExperimentResult) -> str:
    """One row per configuration and slice of the simulated day (by arrival time)."""
    rows = []
    for r in result.results:
        for t in r.timeline:
            row = {"config": r.config, "start": format_clock(t.start),
                   "requests": str(t.requests), "delivered": str(t.delivered),
                   "success_rate": _SHARE(t.success_rate),
                   "cost_per_image_usd": _USD(t.cost_per_image_usd),
                   "spend_usd": _USD(t.spend_usd), "wasted_usd": _USD(t.wasted_usd),
                   "latency_p50_s": _SECONDS(t.latency_p50_s),
                   "latency_p95_s": _SECONDS(t.latency_p95_s)}
            for p in result.providers:
                share = t.served.get(p, 0) / t.delivered if t.delivered else 0.0
                row[f"served_share_{p}"] = _SHARE(share)
            rows.append(row)
    return _csv(rows)


def _num(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 9)


def to_json(result: ExperimentResult, *, wall: bool = False) -> dict[str, Any]:
    """The summary as a JSON-ready dict (``wall=True`` adds real run times)."""
    exp = result.experiment
    configs = []
    for r in result.results:
        item: dict[str, Any] = {
            "config": r.config, "requests": r.requests, "delivered": r.delivered,
            "success_rate": _num(r.success_rate), "refused": r.refused, "images": r.images,
            "spend_usd": _num(r.spend_usd), "cost_per_image_usd": _num(r.cost_per_image_usd),
            "wasted_usd": _num(r.wasted_usd), "wasted_share": _num(r.wasted_share),
            "calls": r.calls, "attempts_per_image": _num(r.attempts_per_image),
            "cancelled_calls": r.cancelled,
            "latency_s": {"p50": _num(r.latency_p50_s), "p95": _num(r.latency_p95_s),
                          "p99": _num(r.latency_p99_s)},
            "providers": {p: {"served_share": _num(r.served_share(p)),
                              "calls": r.calls_by.get(p, 0),
                              "busy_s": _num(r.busy_s.get(p, 0.0)),
                              "busy_share": _num(r.busy_share.get(p, 0.0)),
                              "spend_usd": _num(r.spend_by.get(p, 0.0))}
                          for p in result.providers},
        }
        if r.note:
            item["note"] = r.note
        if wall:
            item["wall_s"] = round(r.wall_s, 3)
        configs.append(item)
    return {"experiment": exp.name, "seed": result.seed, "date": exp.day.isoformat(),
            "workload": exp.workload.describe(),
            "providers": {p: exp.profiles[p].describe() for p in result.providers
                          if p in exp.profiles},
            "configurations": configs,
            "skipped": dict(result.skipped)}


# ------------------------------------------------------------------------------- table

def print_table(result: ExperimentResult, console: Console | None = None) -> None:
    """The comparison tables: the figures of each configuration (best of each column in
    bold green), then where the requests went, provider by provider."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from ..richtable import print_table as fit_print

    console = console or Console()
    exp = result.experiment
    counts = sorted({r.requests for r in result.results})
    title = (f"{exp.name}: {counts[0]:,} requests, seed {result.seed}" if len(counts) == 1
             else f"{exp.name}: seed {result.seed}")
    table = Table(title=title, caption=exp.workload.describe(), header_style="bold",
                  title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD)
    columns: list[tuple[str, Callable[[ConfigResult], float], Callable[[float], str], bool]] = [
        ("success", lambda r: r.success_rate, lambda v: f"{v:.2%}", True),
        ("$/image", lambda r: r.cost_per_image_usd, lambda v: f"${v:.4f}", False),
        ("wasted", lambda r: r.wasted_usd, lambda v: f"${v:,.2f}", False),
        ("calls/img", lambda r: r.attempts_per_image, lambda v: f"{v:.2f}", False),
        ("p50", lambda r: r.latency_p50_s, lambda v: f"{v:.1f}s", False),
        ("p95", lambda r: r.latency_p95_s, lambda v: f"{v:.1f}s", False),
        ("p99", lambda r: r.latency_p99_s, lambda v: f"{v:.1f}s", False),
    ]
    table.add_column("configuration", style="cyan", min_width=13, overflow="fold")
    for name, *_ in columns:
        table.add_column(name, justify="right", no_wrap=True)
    best: dict[str, float] = {}
    for name, get, _, high in columns:
        values = [get(r) for r in result.results if not math.isnan(get(r))]
        if len(values) > 1:
            best[name] = max(values) if high else min(values)
    for r in result.results:
        cells = []
        for name, get, fmt, _ in columns:
            v = get(r)
            text = "–" if math.isnan(v) else fmt(v)
            if name in best and not math.isnan(v) and math.isclose(v, best[name],
                                                                     rel_tol=1e-9):
                text = f"[bold green]{text}[/]"
            cells.append(text)
        label = r.config + (f" [dim]({r.note})[/]" if r.note else "")
        table.add_row(label, *cells)
    fit_print(console, table)

    where = Table(title="Share of deliveries / share of time in calls, by provider",
                  header_style="bold", title_justify="left", box=box.SIMPLE_HEAD)
    where.add_column("configuration", style="cyan", min_width=13, overflow="fold")
    for p in result.providers:
        where.add_column(p, justify="right", no_wrap=True)
    for r in result.results:
        where.add_row(r.config, *(f"{r.served_share(p):.0%} / {r.busy_share.get(p, 0.0):.0%}"
                                  for p in result.providers))
    console.print(where)
    for name, why in result.skipped.items():
        console.print(f"[yellow]skipped[/] {name}: {why}")
