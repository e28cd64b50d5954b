"""What a Replicate prediction cost. Official models (the FLUX family...) are billed per output
image (``providers/replicate/models.json``, from the models' pages on replicate.com); other
models are billed per second of their hardware (``metrics.predict_time`` times the
hardware's rate, https://replicate.com/pricing), which the caller passes as
``usd_per_second``. A prediction's answer reports neither figure in dollars."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fallback_chain.cost.usage import catalogue_or_default

if TYPE_CHECKING:
    from fallback_chain.cost.catalogue import PriceCatalogue


def replicate_price_per_image(model: str, *, catalogue: PriceCatalogue | None = None
                              ) -> float | None:
    """USD per output image of ``model`` (``owner/name``, a version suffix ignored)."""
    price = catalogue_or_default(catalogue).model("replicate", model.partition(":")[0])
    if price is None or not price.per_image:
        return None
    row = price.per_image.get("*") or next(iter(price.per_image.values()))
    return row.get("standard", next(iter(row.values()), None)) if row else None


def cost_from_replicate_outputs(model: str, images: int, *,
                                catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for ``images`` output images of a per-image-priced model (``None``: not priced)."""
    if images < 0:
        raise ValueError(f"images must not be negative (got {images})")
    rate = replicate_price_per_image(model, catalogue=catalogue)
    return None if rate is None else rate * images


def cost_from_replicate_predict_time(predict_time_s: float, usd_per_second: float) -> float:
    """USD for a time-billed prediction: ``metrics.predict_time`` at the hardware's rate."""
    if predict_time_s < 0 or usd_per_second < 0:
        raise ValueError("predict_time_s and usd_per_second must not be negative")
    return predict_time_s * usd_per_second
