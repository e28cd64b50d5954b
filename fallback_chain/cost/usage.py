"""What a call cost, from what the vendor reported: token usage (OpenAI, Gemini) or credits
(Leonardo). Each function returns USD, or ``None`` when the model or its rates are unknown.

Both camelCase (wire) and snake_case (SDK ``model_dump()``) keys are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalogue import PriceCatalogue
    from .schema import TokenRates


def _catalogue(catalogue: PriceCatalogue | None) -> PriceCatalogue:
    if catalogue is not None:
        return catalogue
    from .catalogue import PriceCatalogue
    return PriceCatalogue.default()


def _prices(vendor: str, model: str, catalogue: PriceCatalogue | None
            ) -> tuple[float | None, TokenRates | None, float]:
    """``(flat USD per image, token rates, price factor)`` of ``model``, looked up once per
    catalogue (remembered by it): a reported cost is computed on every successful call."""
    cat = _catalogue(catalogue)

    def compute() -> tuple[float | None, TokenRates | None, float]:
        entry = cat.model(vendor, model)
        if entry is None:
            return None, None, 1.0
        return entry.flat_usd_per_image, entry.tokens_per_1m, cat.price_factor(vendor, model)

    return cat.memoised(("usage-prices", vendor, model), compute)


def _get(d: Mapping[str, Any] | None, *names: str) -> Any:
    if not d:
        return None
    for name in names:
        value = d.get(name)
        if value is not None:
            return value
    return None


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def cost_from_openai_usage(model: str, usage: Mapping[str, Any], *, images: int = 1,
                           catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for one Images API response from its ``usage`` object.

    ``input_tokens_details.{text_tokens, image_tokens}`` are billed at the text-in and image-in
    rates; ``cached_tokens`` (or ``cached_tokens_details.{text_tokens, image_tokens}``) at the
    cached rates: a bare ``cached_tokens`` count is taken from the text tokens first (the
    smaller discount, so the figure errs high). ``output_tokens_details.{image_tokens,
    text_tokens}`` are billed at the image-out and text-out rates; without details every output
    token is an image token, and text output of a model with no published text-out rate is
    billed at the image-out rate (both err high). A missing cached rate bills at the full rate.
    Under a negotiated flat price per image the cost is that price × ``images``.
    """
    flat, r, factor = _prices("openai", model, catalogue)
    if flat is not None:
        return flat * factor * images
    if r is None:
        return None
    inp = _get(usage, "input_tokens_details") or {}
    total_in = _int(_get(usage, "input_tokens"))
    image_in = _int(_get(inp, "image_tokens"))
    text_in = _int(_get(inp, "text_tokens")) if "text_tokens" in inp else total_in - image_in
    cached_details = _get(inp, "cached_tokens_details") or {}
    if cached_details:
        cached_text = min(text_in, _int(_get(cached_details, "text_tokens")))
        cached_image = min(image_in, _int(_get(cached_details, "image_tokens")))
    else:
        cached = _int(_get(inp, "cached_tokens") or _get(usage, "cached_tokens"))
        cached_text = min(text_in, cached)
        cached_image = min(image_in, cached - cached_text)
    out = _get(usage, "output_tokens_details") or {}
    total_out = _int(_get(usage, "output_tokens"))
    if out:
        image_out = _int(_get(out, "image_tokens"))
        text_out = _int(_get(out, "text_tokens"))
    else:
        image_out, text_out = total_out, 0
    image_out_rate = r.image_out or 0.0
    usd = (
        (text_in - cached_text) * _rate(r.text_in)
        + cached_text * _rate(r.text_in_cached, r.text_in)
        + (image_in - cached_image) * _rate(r.image_in, r.text_in)
        + cached_image * _rate(r.image_in_cached, r.image_in, r.text_in)
        + image_out * image_out_rate
        + text_out * _rate(r.text_out, image_out_rate)
    ) / 1e6
    return usd * factor


def cost_from_gemini_usage(model: str, usage_metadata: Mapping[str, Any], *,
                           catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for one ``generateContent`` response from its ``usageMetadata``.

    Prompt tokens at the input rate (image parts at the image-in rate when
    ``promptTokensDetails`` says so); ``candidatesTokensDetails`` IMAGE tokens at the image-out
    rate and TEXT tokens at the text-out rate; ``thoughtsTokenCount`` at the text-out rate.
    Without candidate details every candidate token is an image token (errs high). Cached
    content is billed at the full input rate (Gemini's cache prices are not in the catalogue).
    Under a negotiated flat price per image the cost is that price when an image was produced.
    """
    flat, r, factor = _prices("gemini", model, catalogue)
    if flat is not None:
        details = _get(usage_metadata, "candidatesTokensDetails", "candidates_tokens_details")
        produced = any(str(_get(d, "modality")).upper().endswith("IMAGE") and
                       _int(_get(d, "tokenCount", "token_count")) for d in details or ())
        return flat * factor if produced else 0.0
    if r is None:
        return None
    u = usage_metadata
    prompt = _int(_get(u, "promptTokenCount", "prompt_token_count"))
    prompt_image = sum(
        _int(_get(d, "tokenCount", "token_count"))
        for d in _get(u, "promptTokensDetails", "prompt_tokens_details") or ()
        if str(_get(d, "modality")).upper().endswith("IMAGE"))
    prompt_image = min(prompt_image, prompt)
    cand_total = _int(_get(u, "candidatesTokenCount", "candidates_token_count"))
    details = _get(u, "candidatesTokensDetails", "candidates_tokens_details") or ()
    if details:
        image_out = text_out = 0
        for d in details:
            tokens = _int(_get(d, "tokenCount", "token_count"))
            if str(_get(d, "modality")).upper().endswith("IMAGE"):
                image_out += tokens
            else:
                text_out += tokens
    else:
        image_out, text_out = cand_total, 0
    thoughts = _int(_get(u, "thoughtsTokenCount", "thoughts_token_count"))
    image_rate = r.image_out or 0.0
    usd = (
        (prompt - prompt_image) * _rate(r.text_in)
        + prompt_image * _rate(r.image_in, r.text_in)
        + image_out * image_rate
        + (text_out + thoughts) * _rate(r.text_out, image_rate)
    ) / 1e6
    return usd * factor


def cost_from_leonardo_credits(credits: float, usd_per_credit: float | None = None, *,
                               catalogue: PriceCatalogue | None = None) -> float | None:
    """USD for ``credits`` Leonardo API credits, at ``usd_per_credit`` or the catalogue's rate
    (derived, about $0.0015; override it with your account's real rate)."""
    if credits < 0:
        raise ValueError(f"credits must not be negative (got {credits})")
    if usd_per_credit is None:
        usd_per_credit = _catalogue(catalogue).usd_per_credit("leonardo")
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


def _rate(*candidates: float | None) -> float:
    for c in candidates:
        if c is not None:
            return c
    return 0.0
