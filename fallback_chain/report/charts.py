"""Inline SVG bar charts of spend and latency by provider (no plotting library)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from typing import Any

_COLOURS = ("#2f6fdf", "#e0742b", "#2a9d68", "#b04fc2", "#c9a227", "#5a6b7d")


@dataclass
class ProviderStats:
    calls: int = 0
    cost_usd: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        values = sorted(self.latencies)
        if not values:
            return 0.0
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def provider_stats(attempts: Iterable[dict[str, Any]]) -> dict[str, ProviderStats]:
    """Calls, spend and call latencies per provider, from attempt records."""
    stats: dict[str, ProviderStats] = {}
    for a in attempts:
        s = stats.setdefault(str(a.get("provider") or "?"), ProviderStats())
        s.calls += 1
        s.cost_usd += float(a.get("cost_usd") or 0.0)
        if a.get("latency_s") is not None:
            s.latencies.append(float(a["latency_s"]))
    return dict(sorted(stats.items()))


def bar_chart(title: str, rows: list[tuple[str, list[float]]], series: list[str],
              unit: str, fmt: str) -> str:
    """Horizontal bars: one group per row label, one bar per series value."""
    label_w, bar_w, bar_h, gap = 110, 300, 14, 10
    top = 28
    group_h = bar_h * len(series) + gap
    height = top + group_h * max(len(rows), 1) + 22
    peak = max((v for _, values in rows for v in values), default=0.0) or 1.0
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" '
             f'viewBox="0 0 {label_w + bar_w + 90} {height}" '
             f'width="{label_w + bar_w + 90}" height="{height}" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<text x="0" y="16" class="chart-title">{escape(title)}</text>']
    for gi, (label, values) in enumerate(rows):
        y0 = top + gi * group_h
        parts.append(f'<text x="0" y="{y0 + bar_h * len(series) / 2 + 4:.1f}">'
                     f'{escape(label)}</text>')
        for si, value in enumerate(values):
            y = y0 + si * bar_h
            w = max(1.0, bar_w * value / peak)
            colour = _COLOURS[si % len(_COLOURS)]
            name = escape(f"{label} {series[si]}: {value:{fmt}}{unit}")
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" '
                         f'fill="{colour}"><title>{name}</title></rect>')
            parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}" '
                         f'class="chart-value">{value:{fmt}}{unit}</text>')
    if len(series) > 1:
        x = 0
        for si, name in enumerate(series):
            colour = _COLOURS[si % len(_COLOURS)]
            parts.append(f'<rect x="{label_w + x}" y="{height - 14}" width="10" height="10" '
                         f'fill="{colour}"/><text x="{label_w + x + 14}" y="{height - 5}">'
                         f'{escape(name)}</text>')
            x += 14 + 8 * len(name) + 16
    parts.append("</svg>")
    return "".join(parts)


def charts(stats: dict[str, ProviderStats]) -> str:
    """The spend chart and the latency chart (p50, p95 of calls) side by side."""
    if not stats:
        return '<p class="muted">No provider calls were made.</p>'
    spend = bar_chart("Spend by provider (USD)",
                      [(p, [s.cost_usd]) for p, s in stats.items()], ["spend"], "", ".4f")
    latency = bar_chart("Call latency by provider (s)",
                        [(p, [s.percentile(0.5), s.percentile(0.95)])
                         for p, s in stats.items()], ["p50", "p95"], "s", ".2f")
    return f'<div class="charts">{spend}{latency}</div>'
