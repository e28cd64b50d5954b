"""Cost from what the vendor reported. The worked examples of docs/cost.md, to the cent."""

from __future__ import annotations

import pytest

from fallback_chain.cost.catalogue import PriceCatalogue
from fallback_chain.cost.usage import (
    cost_from_gemini_usage,
    cost_from_leonardo_credits,
    cost_from_leonardo_job,
    cost_from_openai_usage,
)


def cents(x: float | None) -> float:
    assert x is not None
    return round(x, 5)


# ----------------------------------------------------------------------- worked examples

def test_gpt_image_1_high_square_from_usage():
    usage = {"input_tokens": 0, "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
             "output_tokens": 4160, "total_tokens": 4160}
    assert cents(cost_from_openai_usage("gpt-image-1", usage)) == 0.1664


def test_gpt_image_1_5_high_square_with_a_50_token_prompt():
    usage = {"input_tokens": 50, "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
             "output_tokens": 4160, "total_tokens": 4210}
    assert cents(cost_from_openai_usage("gpt-image-1.5", usage)) == 0.13337


def test_gemini_2_5_flash_image():
    meta = {"promptTokenCount": 0, "candidatesTokenCount": 1290,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}]}
    assert cents(cost_from_gemini_usage("gemini-2.5-flash-image", meta)) == 0.0387


@pytest.mark.parametrize(("model", "tokens", "usd"), [
    ("gemini-3.1-flash-image", 747, 0.04482),   # 512: 747 x $60/M (list $0.045)
    ("gemini-3.1-flash-image", 1120, 0.0672),   # 1K  (list $0.067)
    ("gemini-3.1-flash-image", 1680, 0.1008),   # 2K  (list $0.101)
    ("gemini-3.1-flash-image", 2520, 0.1512),   # 4K  (list $0.151)
    ("gemini-3.1-flash-lite-image", 1120, 0.0336),
    ("gemini-3-pro-image", 1120, 0.1344),       # 1K/2K (list $0.134)
    ("gemini-3-pro-image", 2000, 0.24),         # 4K
])
def test_gemini_3_models(model, tokens, usd):
    meta = {"candidatesTokenCount": tokens,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": tokens}]}
    assert cents(cost_from_gemini_usage(model, meta)) == usd


def test_leonardo_lightning_xl_batch_of_four():
    # 40 credits for 4 images at 1024² x $0.0015 = $0.06, i.e. $0.015 per image
    assert cents(cost_from_leonardo_credits(40)) == 0.06
    assert cents(cost_from_leonardo_credits(40, 0.00257)) == 0.1028  # old API Basic rate
    # GPT Image-1.5 via Leonardo, QUALITY mode at 1024²: 38 credits
    assert cents(cost_from_leonardo_credits(38)) == 0.057


# ------------------------------------------------------------------------------ details

def test_openai_cached_tokens_and_image_input_and_text_output():
    usage = {"input_tokens": 1200,
             "input_tokens_details": {"text_tokens": 200, "image_tokens": 1000,
                                      "cached_tokens": 300},
             "output_tokens": 1100,
             "output_tokens_details": {"image_tokens": 1056, "text_tokens": 44}}
    # cached tokens come off the text first: 200 text cached, 100 image cached
    want = (200 * 1.25 + 900 * 8 + 100 * 2 + 1056 * 32 + 44 * 10) / 1e6
    assert cost_from_openai_usage("gpt-image-1.5", usage) == pytest.approx(want)
    detailed = {**usage, "input_tokens_details": {
        "text_tokens": 200, "image_tokens": 1000,
        "cached_tokens_details": {"text_tokens": 0, "image_tokens": 300}}}
    want = (200 * 5 + 700 * 8 + 300 * 2 + 1056 * 32 + 44 * 10) / 1e6
    assert cost_from_openai_usage("gpt-image-1.5", detailed) == pytest.approx(want)


def test_openai_text_output_without_a_published_rate_bills_at_the_image_rate():
    usage = {"input_tokens": 10, "output_tokens": 200,
             "output_tokens_details": {"image_tokens": 196, "text_tokens": 4}}
    assert cost_from_openai_usage("gpt-image-2", usage) == pytest.approx(
        (10 * 5 + 200 * 30) / 1e6)


def test_openai_usage_without_details():
    assert cost_from_openai_usage("gpt-image-1", {"input_tokens": 12,
                                                  "output_tokens": 1056}) == pytest.approx(
        (12 * 5 + 1056 * 40) / 1e6)


def test_gemini_prompt_images_thoughts_and_snake_case():
    meta = {"prompt_token_count": 569, "candidates_token_count": 1130,
            "prompt_tokens_details": [{"modality": "TEXT", "token_count": 9},
                                      {"modality": "IMAGE", "token_count": 560}],
            "candidates_tokens_details": [{"modality": "IMAGE", "token_count": 1120},
                                          {"modality": "TEXT", "token_count": 10}],
            "thoughts_token_count": 200}
    want = (569 * 2 + 1120 * 120 + 210 * 12) / 1e6
    assert cost_from_gemini_usage("gemini-3-pro-image", meta) == pytest.approx(want)


def test_gemini_without_details_counts_candidates_as_image_tokens():
    assert cost_from_gemini_usage("gemini-2.5-flash-image", {
        "promptTokenCount": 9, "candidatesTokenCount": 1290}) == pytest.approx(
        (9 * 0.3 + 1290 * 30) / 1e6)


def test_leonardo_job_cost_in_dollars_or_credits():
    assert cost_from_leonardo_job({"generationId": "g", "apiCreditCost": 11,
                                   "cost": {"amount": "0.11", "unit": "DOLLARS"}}) == 0.11
    assert cost_from_leonardo_job({"cost": {"amount": "24", "unit": "CREDITS"}}) == \
        pytest.approx(0.036)
    assert cost_from_leonardo_job({"apiCreditCost": 40}, 0.002) == pytest.approx(0.08)
    assert cost_from_leonardo_job({"generationId": "g"}) is None


def test_unknown_models_and_negotiated_factors():
    assert cost_from_openai_usage("gpt-image-9", {"output_tokens": 1}) is None
    assert cost_from_gemini_usage("gemini-9", {"candidatesTokenCount": 1}) is None
    cat = PriceCatalogue.builtin().with_overrides({"vendors": {"openai": {"price_factor": 0.5}}})
    assert cost_from_openai_usage("gpt-image-1", {"output_tokens": 4160},
                                  catalogue=cat) == pytest.approx(0.0832)
    with pytest.raises(ValueError, match="negative"):
        cost_from_leonardo_credits(-1)
