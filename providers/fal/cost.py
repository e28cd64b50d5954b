"""What a fal.ai request cost. fal's queue answers report no price, so the cost of a delivered
request is the catalogue's price of its images (``providers/fal/models.json``: fal's price per
image at 1 megapixel, with its source and date). fal bills FLUX per megapixel, rounded up to
whole megapixels, and every ``image_size`` preset the adapter asks for is at most 1 MP
(1024x1024 is the largest), so each delivered image costs one megapixel's price."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fallback_chain.cost.usage import catalogue_or_default

if TYPE_CHECKING:
    from fallback_chain.cost.catalogue import PriceCatalogue


def cost_from_fal_images(model: str, sizes: Sequence[tuple[int, int]], *,
                         catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for the images of one fal request (``sizes``: each image's ``(width, height)``,
    ``(0, 0)`` when fal did not say), or ``None`` when the catalogue cannot price ``model``."""
    from fallback_chain.cost.estimate import estimate

    cat = catalogue_or_default(catalogue)
    total = 0.0
    for width, height in sizes:
        usd = estimate("fal", model, size=(width, height) if width and height else None,
                       catalogue=cat)
        if usd is None:
            return None
        total += usd
    return total
