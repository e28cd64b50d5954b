"""What a call cost, from what the vendor reported: helpers shared by the vendors' usage-to-cost
modules (``providers/<vendor>/cost.py``, named by each adapter class's ``cost_module``).

Each vendor's functions live in its own folder (``fallback_chain.providers.openai.cost`` has
``cost_from_openai_usage``, ...). They are also reachable here, by name, through the vendor
registry: ``fallback_chain.cost.usage.cost_from_<vendor>_<what>`` is looked up in that
vendor's ``cost_module``. Each returns USD, or ``None`` when the model or its rates are
unknown. Both camelCase (wire) and snake_case (SDK ``model_dump()``) keys are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalogue import PriceCatalogue
    from .schema import TokenRates

_PREFIX = "cost_from_"


def catalogue_or_default(catalogue: PriceCatalogue | None) -> PriceCatalogue:
    if catalogue is not None:
        return catalogue
    from .catalogue import PriceCatalogue
    return PriceCatalogue.default()


def usage_prices(vendor: str, model: str, catalogue: PriceCatalogue | None
            ) -> tuple[float | None, TokenRates | None, float]:
    """``(flat USD per image, token rates, price factor)`` of ``model``, looked up once per
    catalogue (remembered by it): a reported cost is computed on every successful call."""
    cat = catalogue_or_default(catalogue)

    def compute() -> tuple[float | None, TokenRates | None, float]:
        entry = cat.model(vendor, model)
        if entry is None:
            return None, None, 1.0
        return entry.flat_usd_per_image, entry.tokens_per_1m, cat.price_factor(vendor, model)

    return cat.memoised(("usage-prices", vendor, model), compute)


def field(d: Mapping[str, Any] | None, *names: str) -> Any:
    if not d:
        return None
    for name in names:
        value = d.get(name)
        if value is not None:
            return value
    return None


def as_int(value: Any) -> int:
    return int(value) if value is not None else 0


def first_rate(*candidates: float | None) -> float:
    for c in candidates:
        if c is not None:
            return c
    return 0.0


def __getattr__(name: str) -> Any:
    """``cost_from_<vendor>_...``: the function of that name in the vendor's cost module."""
    if name.startswith(_PREFIX):
        from .. import registry

        for vendor in registry.names():
            if name.startswith(f"{_PREFIX}{vendor}_"):
                module = registry.get(vendor).cost_module
                if module:
                    from importlib import import_module

                    return getattr(import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
