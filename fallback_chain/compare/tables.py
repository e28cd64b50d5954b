"""Rich tables for ``fallback-chain compare``: every run, then one line per provider; and the
money and time formats the tables and the contact sheet share."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from .model import Comparison

REVISED_CHARS = 100


def runs_table(comparison: Comparison) -> Table:
    """One line per run: provider and model, run, outcome, revised prompt (truncated), cost,
    latency."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Runs", title_justify="left")
    table.add_column("provider / model", max_width=36, overflow="fold")
    table.add_column("run", justify="right")
    table.add_column("outcome", min_width=7, overflow="fold")
    table.add_column("revised prompt", ratio=1, min_width=16, overflow="fold")
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("latency", justify="right", no_wrap=True)
    for row in comparison.rows:
        # one spelling for a provider and its model everywhere: NAME:MODEL
        who = Text(row.label if row.model in row.label else f"{row.label}:{row.model}")
        for c in row.cells:
            outcome = Text(c.outcome, style="green" if c.delivered else "red")
            if not c.delivered and c.message:
                outcome.append(f"\n{_cut(c.message, 80)}", style="dim")
            revised = (Text(_cut(c.revised_prompt, REVISED_CHARS)) if c.revised_prompt
                       else Text("-", style="dim"))
            table.add_row(who, str(c.run), outcome, revised, usd(c.cost_usd),
                          secs(c.latency_s))
        table.add_section()
    return table


def summary_table(comparison: Comparison) -> Table:
    """One line per provider: runs delivered, failures, latency, cost, spread."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Per provider (latency over delivered runs)", title_justify="left")
    table.add_column("provider", overflow="fold")
    for name in ("ok", "p50", "p95", "cost", "per image", "spread"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("failed", overflow="fold")
    for s in comparison.stats():
        failed = ", ".join(f"{k} x{v}" for k, v in s.failures.items()) or "-"
        table.add_row(Text(s.label), f"{s.delivered}/{s.runs}", secs(s.latency_p50_s),
                      secs(s.latency_p95_s), usd(s.cost_usd), usd(s.cost_per_image_usd),
                      f"{s.spread:.3f}" if s.spread is not None else "-", Text(failed))
    return table


def cross_table(comparison: Comparison) -> Table | None:
    """Mean difference between each pair of providers' images (``None`` with one row)."""
    from rich.table import Table
    from rich.text import Text

    pairs = comparison.cross_spread()
    if not pairs:
        return None
    table = Table(title="Between providers", title_justify="left")
    table.add_column("provider", overflow="fold")
    table.add_column("and", overflow="fold")
    table.add_column("image difference", justify="right")
    labels = [r.label for r in comparison.rows]
    for (i, j), value in sorted(pairs.items()):
        table.add_row(Text(labels[i]), Text(labels[j]),
                      f"{value:.3f}" if value is not None else "-")
    return table


def usd(x: float | None) -> str:
    return "-" if x is None else f"${x:.4f}"


def secs(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 0.01:
        return f"{x * 1000:.1f} ms"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
