"""What an OpenAI Images API call cost, from its reported ``usage`` tokens and the catalogue's
token rates (``providers/openai/models.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fallback_chain.cost.usage import as_int, field, first_rate, usage_prices

if TYPE_CHECKING:
    from fallback_chain.cost.catalogue import PriceCatalogue


def cost_from_openai_usage(model: str, usage: Mapping[str, Any], *, images: int = 1,
                           catalogue: PriceCatalogue | None = None,
                           vendor: str = "openai") -> float | None:
    """USD for one Images API response from its ``usage`` object.

    ``input_tokens_details.{text_tokens, image_tokens}`` are billed at the text-in and image-in
    rates; ``cached_tokens`` (or ``cached_tokens_details.{text_tokens, image_tokens}``) at the
    cached rates: a bare ``cached_tokens`` count is taken from the text tokens first (the
    smaller discount, so the figure errs high). ``output_tokens_details.{image_tokens,
    text_tokens}`` are billed at the image-out and text-out rates; without details every output
    token is an image token, and text output of a model with no published text-out rate is
    billed at the image-out rate (both err high). A missing cached rate bills at the full rate.
    Under a negotiated flat price per image the cost is that price × ``images``. ``vendor``:
    whose rates (another service selling the same models, e.g. ``"azure"``).
    """
    flat, r, factor = usage_prices(vendor, model, catalogue)
    if flat is not None:
        return flat * factor * images
    if r is None:
        return None
    inp = field(usage, "input_tokens_details") or {}
    total_in = as_int(field(usage, "input_tokens"))
    image_in = as_int(field(inp, "image_tokens"))
    text_in = as_int(field(inp, "text_tokens")) if "text_tokens" in inp else total_in - image_in
    cached_details = field(inp, "cached_tokens_details") or {}
    if cached_details:
        cached_text = min(text_in, as_int(field(cached_details, "text_tokens")))
        cached_image = min(image_in, as_int(field(cached_details, "image_tokens")))
    else:
        cached = as_int(field(inp, "cached_tokens") or field(usage, "cached_tokens"))
        cached_text = min(text_in, cached)
        cached_image = min(image_in, cached - cached_text)
    out = field(usage, "output_tokens_details") or {}
    total_out = as_int(field(usage, "output_tokens"))
    if out:
        image_out = as_int(field(out, "image_tokens"))
        text_out = as_int(field(out, "text_tokens"))
    else:
        image_out, text_out = total_out, 0
    image_out_rate = r.image_out or 0.0
    usd = (
        (text_in - cached_text) * first_rate(r.text_in)
        + cached_text * first_rate(r.text_in_cached, r.text_in)
        + (image_in - cached_image) * first_rate(r.image_in, r.text_in)
        + cached_image * first_rate(r.image_in_cached, r.image_in, r.text_in)
        + image_out * image_out_rate
        + text_out * first_rate(r.text_out, image_out_rate)
    ) / 1e6
    return usd * factor
