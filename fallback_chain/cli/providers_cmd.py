"""``fallback-chain providers``: every provider and model the library knows, from the model
records (``providers/<vendor>/models.json``), with capabilities, a price from the price
catalogue and lifecycle status (shutdown date, suggested replacement). Reads no config and no
key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from fallback_chain.richtable import print_table

from ._output import JsonOption, console, print_json

if TYPE_CHECKING:
    from fallback_chain.provider import Capabilities
    from fallback_chain.providers.catalogue import ModelInfo

#: The size and tier the price column quotes.
PRICE_SIZE = (1024, 1024)
PRICE_QUALITY = "standard"


def _vendor(value: str | None) -> str | None:
    """``--vendor``: one of the catalogued vendors of the registry."""
    from fallback_chain import registry

    known = registry.catalogued()
    if value is not None and value not in known:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(known)}")
    return value


def providers_command(
    vendor: Annotated[str | None, typer.Option(
        help="Only this vendor's models (a registered vendor id).", callback=_vendor)] = None,
    active: Annotated[bool, typer.Option(
        "--active", help="Hide models that are shut down.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List every provider and model with capabilities, price and lifecycle status."""
    from fallback_chain.providers import catalogue

    models = catalogue.models(vendor)
    if active:
        models = [m for m in models if not m.is_retired()]
    rows = [describe(m) for m in models]
    if as_json:
        print_json({"price_basis": {"size": "x".join(map(str, PRICE_SIZE)),
                                    "quality": PRICE_QUALITY}, "models": rows})
        return
    _print(rows)


def describe(info: ModelInfo) -> dict[str, Any]:
    """One model as a JSON-ready dict."""
    caps = info.capabilities
    return {
        "vendor": info.vendor,
        "model": info.id,
        "family": info.family,
        "status": "shut_down" if info.is_retired() else info.status,
        "shutdown": info.shutdown.isoformat() if info.shutdown else None,
        "replacement": info.replacement,
        "sizes": size_summary(caps),
        "capabilities": {
            "sizes": ["x".join(map(str, s)) for s in caps.sizes],
            "aspect_ratios": [":".join(map(str, r)) for r in caps.aspect_ratios],
            "default_size": "x".join(map(str, caps.default_size)),
            "min_side": caps.min_side, "max_side": caps.max_side,
            "max_pixels": caps.max_pixels, "size_multiple": caps.size_multiple,
            "max_n": caps.max_n, "max_prompt_chars": caps.max_prompt_chars,
            "edits": caps.edits, "reference_image": caps.reference_image,
            "rewrites_prompt": caps.rewrites_prompt,
            "output_formats": sorted(caps.output_formats),
            "transparent_background": caps.transparent_background,
            "negative_prompt": caps.negative_prompt, "seed": caps.seed,
        },
        "price": price(info.vendor, info.id),
    }


def size_summary(caps: Capabilities) -> str:
    if caps.sizes:
        return ", ".join("x".join(map(str, s)) for s in caps.sizes)
    if caps.aspect_ratios:
        return "ratios " + ", ".join(":".join(map(str, r)) for r in caps.aspect_ratios)
    mp = caps.max_pixels / 1e6
    return (f"any WxH, sides {caps.min_side}-{caps.max_side} px, multiple of "
            f"{caps.size_multiple}, up to {mp:.1f} MP, ratio up to {caps.max_ratio:g}:1")


def price(vendor: str, model: str) -> dict[str, Any] | None:
    """The catalogue's estimate for one image at ``PRICE_SIZE``/``PRICE_QUALITY``."""
    from fallback_chain.cost.catalogue import PriceCatalogue
    from fallback_chain.cost.estimate import estimate

    catalogue = PriceCatalogue.default()
    entry = catalogue.model(vendor, model)
    if entry is None:
        return None
    amount = estimate(vendor, model, size=PRICE_SIZE, quality=PRICE_QUALITY,
                      catalogue=catalogue)
    unit = catalogue.unit(vendor, model)
    prices = catalogue.vendor(vendor)
    credit = prices.credit if prices is not None else None
    derived = entry.derived or (unit == "credits" and credit is not None and credit.derived)
    return {"usd_per_image": amount, "as_of": entry.as_of.isoformat(), "derived": derived,
            "unit": unit}


def short_sizes(caps: dict[str, Any]) -> str:
    """A few characters for the table (the JSON has every size)."""
    if caps["sizes"]:
        return ", ".join(caps["sizes"]) if len(caps["sizes"]) <= 3 else \
            f"{len(caps['sizes'])} sizes"
    if caps["aspect_ratios"]:
        return f"{len(caps['aspect_ratios'])} ratios"
    return f"{caps['min_side']}-{caps['max_side']} px /{caps['size_multiple']}"


def _print(rows: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.table import Table

    out = console()
    colour = {"active": "green", "deprecated": "yellow", "shut_down": "red"}
    for vendor in dict.fromkeys(r["vendor"] for r in rows):
        table = Table(title=vendor, title_justify="left", title_style="bold",
                      box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("model", overflow="fold", min_width=20)
        table.add_column("status", min_width=10, max_width=24, overflow="fold")
        table.add_column("sizes", min_width=9, max_width=11)
        table.add_column("n", justify="right", no_wrap=True)
        table.add_column("can", no_wrap=True, min_width=4)
        table.add_column("$/img", justify="right", no_wrap=True, min_width=6)
        for r in (r for r in rows if r["vendor"] == vendor):
            status = r["status"].replace("_", " ")
            if r["shutdown"]:
                status += f" {r['shutdown']}"
            style = colour.get(r["status"], "dim")
            status = f"[{style}]{status}[/{style}]"
            if r["replacement"]:
                status += f"\n→ {r['replacement']}"
            p = r["price"]
            cost = "-" if p is None or p["usd_per_image"] is None else (
                f"{p['usd_per_image']:.3f}" + ("*" if p["derived"] else ""))
            caps = r["capabilities"]
            can = " ".join(w for w, on in (("edit", caps["edits"]),
                                           ("rewr", caps["rewrites_prompt"])) if on)
            table.add_row(r["model"], status, short_sizes(caps), str(caps["max_n"]), can, cost)
        print_table(out, table)
    out.print(f"$/img: USD for one {'x'.join(map(str, PRICE_SIZE))} image at the {PRICE_QUALITY} "
              "tier, from the price catalogue (* derived, e.g. Leonardo credits at a derived "
              "dollar rate; - not priced; see docs/cost.md). n: most images per request. can: "
              "edit images, rewr(ites) prompts. --json lists every size and capability.",
              markup=False)
