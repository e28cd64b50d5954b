"""What a Stability AI generation cost: the model's credits at the catalogue's USD per credit
(``providers/stability/models.json``: 1 credit = $0.01, https://platform.stability.ai/pricing).

Stability's answers do not report the credits they took; a generation's price is fixed per
model (Core 3 credits, Ultra 8, SD 3.5 Large 6.5...), so the catalogue's figure is the cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fallback_chain.cost.usage import catalogue_or_default

if TYPE_CHECKING:
    from fallback_chain.cost.catalogue import PriceCatalogue


def cost_from_stability_credits(credits: float, usd_per_credit: float | None = None, *,
                                catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for ``credits`` Stability credits, at ``usd_per_credit`` or the catalogue's rate."""
    if credits < 0:
        raise ValueError(f"credits must not be negative (got {credits})")
    if usd_per_credit is None:
        usd_per_credit = catalogue_or_default(catalogue).usd_per_credit("stability")
        if usd_per_credit is None:
            return None
    return credits * usd_per_credit


def stability_model_credits(model: str, *, catalogue: PriceCatalogue | None = None
                            ) -> float | None:
    """The credits one image of ``model`` takes, from the price catalogue (``None``: not
    priced)."""
    price = catalogue_or_default(catalogue).model("stability", model)
    if price is None:
        return None
    row = price.per_image.get("*") or next(iter(price.per_image.values()), None)
    if not row:
        return None
    return row.get("standard", next(iter(row.values())))


def cost_from_stability_image(model: str, usd_per_credit: float | None = None, *,
                              catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for one image of ``model`` (its credits at the credit rate)."""
    credits = stability_model_credits(model, catalogue=catalogue)
    if credits is None:
        return None
    return cost_from_stability_credits(credits, usd_per_credit, catalogue=catalogue)
