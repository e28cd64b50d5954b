"""``estimate``: what a call should cost before it is made, from the price catalogue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .sizes import Size, SizeLike, nearest_key, parse_size

if TYPE_CHECKING:
    from .catalogue import PriceCatalogue
    from .schema import ModelPrice


def estimate(vendor: str, model: str | None, *, size: SizeLike = None,
             quality: str | None = None, n: int = 1, batch: bool = False,
             catalogue: PriceCatalogue | None = None) -> float | None:
    """Expected USD for ``n`` images from ``vendor``/``model`` (``None``: the vendor's default
    model), or ``None`` when the catalogue cannot price it (unknown model, no table).

    ``size`` is ``(w, h)``, ``"WxH"``, ``"W:H"`` or ``None``/``"auto"``; a size missing from the
    table is priced at the listed size nearest in aspect ratio, then in area. ``quality`` is one
    of our tiers (``draft``/``standard``/``final``, default ``standard``), mapped per model by
    :meth:`PriceCatalogue.vendor_quality`, or a vendor setting (``"high"``, ``"hd"``, ``"2K"``).
    ``batch=True`` uses batch-API prices where listed. Negotiated ``price_factor`` and
    ``flat_usd_per_image`` overrides apply; credits are converted at the vendor's credit rate.
    """
    if n < 0:
        raise ValueError(f"n must not be negative (got {n})")
    if catalogue is None:
        from .catalogue import PriceCatalogue
        catalogue = PriceCatalogue.default()
    cat = catalogue
    per_image = cat.memoised(("estimate", vendor, model, size, quality, batch),
                             lambda: _per_image_usd(cat, vendor, model, size, quality, batch))
    return None if per_image is None else per_image * n


def _per_image_usd(catalogue: PriceCatalogue, vendor: str, model: str | None, size: SizeLike,
                   quality: str | None, batch: bool) -> float | None:
    entry = catalogue.model(vendor, model)
    if entry is None:
        return None
    factor = catalogue.price_factor(vendor, model)
    if entry.flat_usd_per_image is not None:
        return entry.flat_usd_per_image * factor
    px = parse_size(size)
    q = catalogue.vendor_quality(vendor, model, quality, px)
    unit_price = _unit_price(entry, px, q, batch)
    if unit_price is None:
        return None
    if catalogue.unit(vendor, model) == "credits":
        rate = catalogue.usd_per_credit(vendor)
        if rate is None:
            return None
        unit_price *= rate
    return unit_price * factor


def _unit_price(entry: ModelPrice, px: Size | None, quality: str | None, batch: bool
                ) -> float | None:
    """Price of one image in the model's unit: table, then per pixel, then output tokens."""
    table = entry.per_image_batch if batch and entry.per_image_batch else entry.per_image
    price = _lookup(table, px, quality)
    if price is not None:
        return price
    if entry.per_pixel:
        coef = _pick(entry.per_pixel, quality)
        if coef is not None:
            w, h = px or (1024, 1024)
            return coef * w * h
    rates = entry.tokens_per_1m
    if entry.output_tokens and rates is not None and rates.image_out is not None:
        tokens = _lookup(entry.output_tokens, px, quality)
        if tokens is not None:
            return tokens * rates.image_out / 1e6
    return None


def _lookup(table: dict[str, dict[str, float]] | dict[str, dict[str, int]], px: Size | None,
            quality: str | None) -> float | None:
    key = nearest_key(table, px)
    return None if key is None else _pick(table[key], quality)


def _pick(row: dict[str, float] | dict[str, int], quality: str | None) -> float | None:
    """The row's price for ``quality``: exact, ``"*"``, or the only quality the row has."""
    if quality is not None and quality in row:
        return float(row[quality])
    if "*" in row:
        return float(row["*"])
    if len(row) == 1:
        return float(next(iter(row.values())))
    return None
