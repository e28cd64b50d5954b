"""What a Leonardo job cost: its reported credits at the catalogue's USD per credit
(``providers/leonardo/models.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from fallback_chain.cost.usage import catalogue_or_default

if TYPE_CHECKING:
    from fallback_chain.cost.catalogue import PriceCatalogue


def cost_from_leonardo_credits(credits: float, usd_per_credit: float | None = None, *,
                               catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for ``credits`` Leonardo API credits, at ``usd_per_credit`` or the catalogue's rate
    (derived, about $0.0015; override it with your account's real rate)."""
    if credits < 0:
        raise ValueError(f"credits must not be negative (got {credits})")
    if usd_per_credit is None:
        usd_per_credit = catalogue_or_default(catalogue).usd_per_credit("leonardo")
        if usd_per_credit is None:
            return None
    return credits * usd_per_credit


def cost_from_leonardo_job(job: Mapping[str, Any], usd_per_credit: float | None = None, *,
                           catalogue: PriceCatalogue | None = None) -> float | None:
    """USD from a Leonardo ``sdGenerationJob`` (or generation) object: its
    ``cost: {amount, unit: DOLLARS|CREDITS}`` when present, else ``apiCreditCost`` credits."""
    cost = job.get("cost")
    if isinstance(cost, Mapping) and cost.get("amount") is not None:
        try:
            amount = float(Decimal(str(cost["amount"])))
        except (InvalidOperation, ValueError):
            amount = None
        if amount is not None:
            if str(cost.get("unit", "")).upper() == "DOLLARS":
                return amount
            return cost_from_leonardo_credits(amount, usd_per_credit, catalogue=catalogue)
    credits = job.get("apiCreditCost")
    if credits is None:
        return None
    return cost_from_leonardo_credits(float(credits), usd_per_credit, catalogue=catalogue)
