"""What an Azure OpenAI image call cost: its ``usage`` tokens (the same object OpenAI sends)
priced at Azure's token rates (``providers/azure/models.json``), with OpenAI's formula
(:func:`fallback_chain.providers.openai.cost.cost_from_openai_usage`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..openai.cost import cost_from_openai_usage

if TYPE_CHECKING:
    from fallback_chain.cost.catalogue import PriceCatalogue


def cost_from_azure_usage(model: str, usage: Mapping[str, Any], *, images: int = 1,
                          catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for one Azure OpenAI Images API response from its ``usage`` object (text and image
    input tokens, cached tokens, image output tokens), at the catalogue's Azure rates for
    ``model`` (the model behind the deployment, e.g. ``gpt-image-2``)."""
    return cost_from_openai_usage(model, usage, images=images, catalogue=catalogue,
                                  vendor="azure")
