"""The batch price of one item, from the model record (``per_image_batch`` with its
``batch_source`` and ``batch_as_of``, else the record's own source and date)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...cost.catalogue import PriceCatalogue
    from ...request import ImageRequest


@dataclass(frozen=True, slots=True)
class BatchPrice:
    """USD per image at the batch price and at the standard price (``None``: unknown), and
    where the batch price comes from."""

    per_image_usd: float | None
    standard_per_image_usd: float | None
    source: str | None
    as_of: str | None

    @property
    def ratio(self) -> float | None:
        """Batch price over standard price (``None`` when either is unknown)."""
        if self.per_image_usd is None or not self.standard_per_image_usd:
            return None
        return self.per_image_usd / self.standard_per_image_usd

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def batch_price(vendor: str, model: str | None, request: ImageRequest, *,
                catalogue: PriceCatalogue | None = None) -> BatchPrice:
    from ...cost.catalogue import PriceCatalogue
    from ...cost.estimate import estimate

    cat = catalogue or PriceCatalogue.default()
    size = None if request.size == "auto" else request.size
    entry = cat.model(vendor, model)
    if entry is None or not entry.per_image_batch:
        standard = estimate(vendor, model, size=size, quality=request.quality, catalogue=cat)
        return BatchPrice(None, standard, None, None)
    batch = estimate(vendor, model, size=size, quality=request.quality, batch=True,
                     catalogue=cat)
    standard = estimate(vendor, model, size=size, quality=request.quality, catalogue=cat)
    as_of = entry.batch_as_of or entry.as_of
    return BatchPrice(batch, standard, entry.batch_source or entry.source,
                      as_of.isoformat() if as_of else None)


def item_cost(price: BatchPrice, n: int, standard_cost: float | None
              ) -> tuple[float, str]:
    """What one delivered item cost at the batch price, and how it was worked out: the
    vendor's reported usage priced at the batch rate (``reported``), else the record's batch
    price per image (``estimated``)."""
    if standard_cost is not None and price.ratio is not None:
        return round(standard_cost * price.ratio, 8), "reported"
    if price.per_image_usd is not None:
        return round(price.per_image_usd * n, 8), "estimated"
    return (standard_cost or 0.0), "reported" if standard_cost is not None else "none"


def refusal_cost(price: BatchPrice, standard_cost: float | None) -> tuple[float, str]:
    """What a refused item cost: the vendor's reported usage (the prompt tokens Gemini bills
    for a refusal), at the batch rate when the record has one (``reported``); $0 when the
    answer reports nothing (``none``)."""
    if standard_cost is None or standard_cost <= 0:
        return 0.0, "none"
    if price.ratio is not None:
        return round(standard_cost * price.ratio, 8), "reported"
    return standard_cost, "reported"
