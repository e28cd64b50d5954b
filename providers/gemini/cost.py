"""What a Gemini call cost, from its reported ``usageMetadata`` tokens and the catalogue's token
rates (``providers/gemini/models.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fallback_chain.cost.usage import as_int, field, first_rate, usage_prices

if TYPE_CHECKING:
    from fallback_chain.cost.catalogue import PriceCatalogue


def cost_from_gemini_usage(model: str, usage_metadata: Mapping[str, Any], *,
                           catalogue: PriceCatalogue | None = None,
                           vendor: str = "gemini") -> float | None:
    """USD for one ``generateContent`` response from its ``usageMetadata``.

    Prompt tokens at the input rate (image parts at the image-in rate when
    ``promptTokensDetails`` says so); ``candidatesTokensDetails`` IMAGE tokens at the image-out
    rate and TEXT tokens at the text-out rate; ``thoughtsTokenCount`` at the text-out rate.
    Without candidate details every candidate token is an image token (errs high). Cached
    content is billed at the full input rate (Gemini's cache prices are not in the catalogue).
    Under a negotiated flat price per image the cost is that price when an image was produced.
    """
    flat, r, factor = usage_prices(vendor, model, catalogue)  # vendor: "vertex" sells them too
    if flat is not None:
        details = field(usage_metadata, "candidatesTokensDetails", "candidates_tokens_details")
        produced = any(str(field(d, "modality")).upper().endswith("IMAGE") and
                       as_int(field(d, "tokenCount", "token_count")) for d in details or ())
        return flat * factor if produced else 0.0
    if r is None:
        return None
    u = usage_metadata
    prompt = as_int(field(u, "promptTokenCount", "prompt_token_count"))
    prompt_image = sum(
        as_int(field(d, "tokenCount", "token_count"))
        for d in field(u, "promptTokensDetails", "prompt_tokens_details") or ()
        if str(field(d, "modality")).upper().endswith("IMAGE"))
    prompt_image = min(prompt_image, prompt)
    cand_total = as_int(field(u, "candidatesTokenCount", "candidates_token_count"))
    details = field(u, "candidatesTokensDetails", "candidates_tokens_details") or ()
    if details:
        image_out = text_out = 0
        for d in details:
            tokens = as_int(field(d, "tokenCount", "token_count"))
            if str(field(d, "modality")).upper().endswith("IMAGE"):
                image_out += tokens
            else:
                text_out += tokens
    else:
        image_out, text_out = cand_total, 0
    thoughts = as_int(field(u, "thoughtsTokenCount", "thoughts_token_count"))
    image_rate = r.image_out or 0.0
    usd = (
        (prompt - prompt_image) * first_rate(r.text_in)
        + prompt_image * first_rate(r.image_in, r.text_in)
        + image_out * image_rate
        + (text_out + thoughts) * first_rate(r.text_out, image_rate)
    ) / 1e6
    return usd * factor
