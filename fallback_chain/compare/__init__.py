"""Compare providers on one prompt: the same request N times on each provider, a contact
sheet of every image and a table of revised prompts, costs and latencies.

    from fallback_chain.compare import compare, render_contact_sheet

    comparison = await compare([gemini, leonardo, openai], ImageRequest(prompt="..."), runs=5)
    render_contact_sheet(comparison, "sheet.png")
    for row in comparison.stats():
        print(row.label, row.delivered, row.latency_p50_s, row.cost_per_image_usd, row.spread)

See ``docs/compare.md``. Names load on first use (Pillow only when a sheet is drawn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .model import Cell, Comparison, Row
    from .run import compare
    from .sheet import render_contact_sheet
    from .stats import ProviderStats, image_spread, percentile

__all__ = ["Cell", "Comparison", "ProviderStats", "Row", "compare", "image_spread",
           "percentile", "render_contact_sheet"]

_WHERE = {
    "Cell": ".model", "Comparison": ".model", "Row": ".model",
    "compare": ".run",
    "render_contact_sheet": ".sheet",
    "ProviderStats": ".stats", "image_spread": ".stats", "percentile": ".stats",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
