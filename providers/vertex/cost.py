"""What a Gemini call on Vertex AI cost: its ``usageMetadata`` (the same object the Gemini API
sends) at Vertex's rates (``providers/vertex/models.json``), with the Gemini formula
(:func:`fallback_chain.providers.gemini.cost.cost_from_gemini_usage`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..gemini.cost import cost_from_gemini_usage

if TYPE_CHECKING:
    from fallback_chain.cost.catalogue import PriceCatalogue


def cost_from_vertex_usage(model: str, usage_metadata: Mapping[str, Any], *,
                           catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for one Vertex AI ``generateContent`` response from its ``usageMetadata`` (prompt
    tokens, image and text output tokens, thinking tokens) at the catalogue's Vertex rates."""
    return cost_from_gemini_usage(model, usage_metadata, catalogue=catalogue, vendor="vertex")
