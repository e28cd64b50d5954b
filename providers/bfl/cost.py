"""What a Black Forest Labs task cost: the credits BFL reports when the task is submitted
(``cost`` in the submit answer) at $0.01 a credit ("1 credit = $0.01 USD", BFL's
``black-forest-labs/skills`` repository, ``skills/bfl-api/SKILL.md``, 2026-02-03); when an
answer reports none, the catalogue's price of the model (``providers/bfl/models.json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .wire import USD_PER_CREDIT

if TYPE_CHECKING:
    from fallback_chain.cost.catalogue import PriceCatalogue


def cost_from_bfl_credits(credits: float) -> float:
    """USD for ``credits`` BFL credits."""
    if credits < 0:
        raise ValueError(f"credits must not be negative (got {credits})")
    return credits * USD_PER_CREDIT


def cost_from_bfl_image(model: str, size: tuple[int, int] | None = None, *,
                        catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for one image of ``model`` at ``size`` from the price catalogue (``None``: not
    priced)."""
    from fallback_chain.cost.estimate import estimate

    return estimate("bfl", model, size=size, n=1, catalogue=catalogue)
