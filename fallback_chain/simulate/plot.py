"""One PNG that compares the configurations at a glance.

Top row, one bar per configuration: success rate, cost per delivered image (the part spent on
attempts that delivered nothing hatched on top), latency p50/p95/p99. Middle row: which
provider delivered, where the chain spent its time, attempts per image. Bottom: cost per
delivered image and p95 latency over the simulated day, with outage windows shaded.

Needs matplotlib (``pip install 'fallback-chain[sim]'``); it is imported only here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .timeparse import format_clock

if TYPE_CHECKING:
    from .runner import ExperimentResult

CONFIG_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860",
                 "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD")
PROVIDER_COLORS = ("#66C2A5", "#FC8D62", "#8DA0CB", "#E78AC3", "#A6D854", "#FFD92F",
                   "#E5C494", "#B3B3B3")


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(
            "the plot needs matplotlib: pip install 'fallback-chain[sim]' (or pass --no-plot)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(ax: Any, names: list[str], values: list[float], fmt: str, title: str,
          colors: list[str], notes: list[str] | None = None) -> None:
    ys = range(len(names))
    clean = [0.0 if math.isnan(v) else v for v in values]
    ax.barh(ys, clean, color=colors)
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    top = max(clean, default=0.0) or 1.0
    for y, v in zip(ys, values, strict=True):
        label = "–" if math.isnan(v) else fmt.format(v)
        if notes and notes[y]:
            label += f"  {notes[y]}"
        ax.text((0.0 if math.isnan(v) else v) + top * 0.01, y, label, va="center", fontsize=9)
    ax.set_xlim(0, top * (1.45 if notes else 1.25))
    ax.spines[["top", "right"]].set_visible(False)


def _stacked_shares(ax: Any, names: list[str], shares: list[dict[str, float]],
                    providers: list[str], title: str) -> None:
    ys = list(range(len(names)))
    left = [0.0] * len(names)
    for i, p in enumerate(providers):
        widths = [s.get(p, 0.0) for s in shares]
        ax.barh(ys, widths, left=left, color=PROVIDER_COLORS[i % len(PROVIDER_COLORS)],
                label=p, edgecolor="white", linewidth=0.5)
        for y, (x0, w) in enumerate(zip(left, widths, strict=True)):
            if w >= 0.08:
                ax.text(x0 + w / 2, y, f"{w:.0%}", ha="center", va="center", fontsize=8)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(ys, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)


def _shade_outages(ax: Any, result: ExperimentResult) -> None:
    exp = result.experiment
    for i, name in enumerate(result.providers):
        profile = exp.profiles.get(name)
        if profile is None:
            continue
        for o in profile.outages:
            if o.observed:  # rates measured from a ledger, not an incident
                continue
            ax.axvspan(o.start / 3600, o.end / 3600, color=PROVIDER_COLORS[i % 8], alpha=0.25,
                       lw=0)
            ax.text((o.start + o.end) / 7200, 0.02, f"{name}\noutage", ha="center",
                    va="bottom", fontsize=8, transform=ax.get_xaxis_transform())


def _timeline(ax: Any, result: ExperimentResult, colors: list[str], field: str,
              title: str, fmt: str) -> None:
    for r, color in zip(result.results, colors, strict=True):
        xs, ys = [], []
        for t in r.timeline:
            v = (t.cost_per_image_usd if field == "cost" else t.latency_p95_s)
            xs.append((t.start + result.experiment.timeline_bucket_s / 2) / 3600)
            ys.append(v)
        ax.plot(xs, ys, marker="o", ms=3, lw=1.6, color=color, label=r.config)
    _shade_outages(ax, result)
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.xaxis.set_major_formatter(lambda x, _: format_clock(x * 3600))
    ax.yaxis.set_major_formatter(lambda y, _: fmt.format(y))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def plot_results(result: ExperimentResult, path: str | Path) -> Path:
    """Draw the comparison to ``path`` (PNG) and return it."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    runs = result.results
    names = [r.config for r in runs]
    colors = [CONFIG_COLORS[i % len(CONFIG_COLORS)] for i in range(len(runs))]
    height = 3.0 + 0.45 * max(len(runs), 3)
    fig = plt.figure(figsize=(16, 2 * height + 3.6), dpi=100, layout="constrained")
    grid = fig.add_gridspec(3, 3, height_ratios=[height, height, 3.6])
    exp = result.experiment
    fig.suptitle(f"{exp.name} — {sum(r.requests for r in runs[:1]):,} requests, seed "
                 f"{result.seed}: {exp.workload.describe()}", fontsize=13, fontweight="bold")

    failed = [r.requests - r.delivered for r in runs]
    ax = fig.add_subplot(grid[0, 0])
    _bars(ax, names, [r.success_rate * 100 for r in runs], "{:.2f}%",
          "Success rate (higher is better)", colors,
          [f"({f:,} failed)" if f else "" for f in failed])
    ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])

    ax = fig.add_subplot(grid[0, 1])
    useful = [(r.spend_usd - r.wasted_usd) / r.images if r.images else 0.0 for r in runs]
    wasted = [r.wasted_usd / r.images if r.images else 0.0 for r in runs]
    ys = list(range(len(runs)))
    ax.barh(ys, useful, color=colors)
    ax.barh(ys, wasted, left=useful, color=colors, alpha=0.45, hatch="///",
            edgecolor="white")
    top = max((u + w for u, w in zip(useful, wasted, strict=True)), default=0.0) or 1.0
    for y, r in zip(ys, runs, strict=True):
        label = (f"${r.cost_per_image_usd:.4f}  ({r.wasted_share:.0%} wasted)"
                 if r.images else "–")
        ax.text(useful[y] + wasted[y] + top * 0.01, y, label, va="center", fontsize=9)
    ax.set_yticks(ys, names)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.45)
    ax.set_title("Cost per delivered image (hatched: wasted on failures)", loc="left",
                 fontsize=11, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)

    ax = fig.add_subplot(grid[0, 2])
    width = 0.26
    for k, (q, alpha) in enumerate((("p50", 1.0), ("p95", 0.65), ("p99", 0.35))):
        vals = [getattr(r, f"latency_{q}_s") for r in runs]
        clean = [0.0 if math.isnan(v) else v for v in vals]
        ax.barh([y + (k - 1) * width for y in ys], clean, height=width, color=colors,
                alpha=alpha)
        for y, v in zip(ys, vals, strict=True):
            if not math.isnan(v):
                ax.text(v, y + (k - 1) * width, f" {q} {v:.1f}s", va="center", fontsize=7.5)
    ax.set_yticks(ys, names)
    ax.invert_yaxis()
    lat_top = max((r.latency_p99_s for r in runs if not math.isnan(r.latency_p99_s)),
                  default=1.0)
    ax.set_xlim(0, lat_top * 1.3)
    ax.set_title("Latency of delivered requests (s)", loc="left", fontsize=11,
                 fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)

    providers = result.providers
    ax = fig.add_subplot(grid[1, 0])
    _stacked_shares(ax, names, [{p: r.served_share(p) for p in providers} for r in runs],
                    providers, "Served by")
    ax = fig.add_subplot(grid[1, 1])
    _stacked_shares(ax, names, [dict(r.busy_share) for r in runs], providers,
                    "Time spent in each provider")
    handles = [Patch(color=PROVIDER_COLORS[i % 8], label=p) for i, p in enumerate(providers)]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.08),
              ncol=len(providers), frameon=False, fontsize=9)
    _bars(fig.add_subplot(grid[1, 2]), names, [r.attempts_per_image for r in runs],
          "{:.2f}", "Calls per delivered image", colors)

    sub = grid[2, :].subgridspec(1, 2)
    ax = fig.add_subplot(sub[0, 0])
    _timeline(ax, result, colors, "cost", "Cost per delivered image over the day "
              "(by arrival time)", "${:.3f}")
    ax = fig.add_subplot(sub[0, 1])
    _timeline(ax, result, colors, "p95", "p95 latency over the day (s)", "{:.0f}s")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center",
               ncol=min(len(runs), 6), frameon=False, fontsize=9)

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    plt.close(fig)
    return target
