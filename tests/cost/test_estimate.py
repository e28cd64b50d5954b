"""``estimate``: per-image tables, nearest sizes, tiers, credits, per-pixel and token fallbacks."""

from __future__ import annotations

import pytest

from fallback_chain.cost.estimate import estimate
from fallback_chain.cost.sizes import nearest_key, parse_size


@pytest.mark.parametrize(("vendor", "model", "size", "quality", "usd"), [
    ("openai", "gpt-image-1.5", "1024x1024", "draft", 0.009),
    ("openai", "gpt-image-1.5", "1024x1024", "standard", 0.034),
    ("openai", "gpt-image-1.5", "1024x1024", "final", 0.133),
    ("openai", "gpt-image-1.5", "1536x1024", "final", 0.20),
    ("openai", "gpt-image-2", "1024x1536", "high", 0.165),  # a vendor setting passes through
    ("openai", "gpt-image-2.5-sunburst", "1024x1024", "max", 0.21072),
    ("openai", "dall-e-3", "1792x1024", "final", 0.12),
    ("openai", "dall-e-2", "256x256", "final", 0.016),
    ("gemini", "gemini-2.5-flash-image", "1344x768", "final", 0.039),
    ("gemini", "gemini-3.1-flash-image", None, "draft", 0.045),  # 512 when size is free
    ("gemini", "gemini-3.1-flash-image", "1024x1024", "draft", 0.067),  # the size needs 1K
    ("gemini", "gemini-3.1-flash-image", "1024x1024", "standard", 0.067),
    ("gemini", "gemini-3.1-flash-image", "2048x2048", "standard", 0.101),
    ("gemini", "gemini-3.1-flash-image", "16:9", "final", 0.101),
    ("gemini", "gemini-3-pro-image", "4096x4096", "standard", 0.24),
    ("google", "imagen-4.0-ultra-generate-001", None, None, 0.06),
    ("leonardo", "lightning-xl", "1024x1024", "final", 10 * 0.0015),
    ("leonardo", "lightning-xl", "512x512", None, 3.75 * 0.0015),
    ("fal", "flux-1-schnell", "1024x1024", None, 0.003),
])
def test_list_prices(vendor, model, size, quality, usd):
    assert estimate(vendor, model, size=size, quality=quality) == pytest.approx(usd)


def test_n_multiplies_and_default_models_are_used():
    assert estimate("openai", "gpt-image-1.5", size="1024x1024", quality="final",
                    n=4) == pytest.approx(4 * 0.133)
    assert estimate("gemini", None) == pytest.approx(0.039)  # gemini-2.5-flash-image
    assert estimate("openai", None, size="1024x1024") == pytest.approx(0.053)  # gpt-image-2
    assert estimate("openai", "gpt-image-1.5", n=0) == 0


def test_sizes_missing_from_the_table_use_the_nearest_listed_size():
    # aspect ratio first: 1792x1024 is landscape, so 1536x1024 rather than 1024x1024
    assert estimate("openai", "gpt-image-1.5", size=(1792, 1024),
                    quality="final") == pytest.approx(0.20)
    assert estimate("openai", "gpt-image-1.5", size="720x1280",
                    quality="final") == pytest.approx(0.20)
    assert estimate("openai", "gpt-image-1.5", size="512x512",
                    quality="final") == pytest.approx(0.133)
    # auto: the 1024x1024 price
    assert estimate("openai", "gpt-image-1.5", size="auto",
                    quality="final") == pytest.approx(0.133)
    # gpt-image-2.5 has no 1536x1024 entry: the landscape request takes the nearest (square)
    assert estimate("openai", "gpt-image-2.5-flare", size="1536x1024",
                    quality="high") == pytest.approx(0.05268)


def test_per_pixel_formulas_for_leonardo_v2_models():
    # GPT Image-1.5 via Leonardo: 0.0000123977 x w x h x mode -> 13 / 38 / 137 credits at 1024²
    for quality, credits in (("draft", 13), ("standard", 38), ("final", 137)):
        usd = estimate("leonardo", "gpt-image-1.5", size="1024x1024", quality=quality)
        assert usd / 0.0015 == pytest.approx(credits, abs=0.05)
    assert estimate("leonardo", "flux-pro-2.0", size="1440x1440") / 0.0015 == pytest.approx(
        56, abs=0.1)


def test_token_fallback_when_there_is_no_per_image_table(tmp_path):
    from fallback_chain.cost.catalogue import PriceCatalogue

    cat = PriceCatalogue.builtin().with_overrides({"vendors": {"openai": {"models": {
        "gpt-image-1": {"per_image": None}}}}})
    # 4160 output tokens x $40/M, from the output-token table
    assert estimate("openai", "gpt-image-1", size="1024x1024", quality="final",
                    catalogue=cat) == pytest.approx(0.1664)


def test_unknown_things_are_none_not_a_guess():
    assert estimate("openai", "gpt-image-9") is None
    assert estimate("nobody", "model") is None
    assert estimate("openai", "gpt-image-2.6-sunburst") is None  # token rates only
    assert estimate("openai", "gpt-image-1.5", quality="ultra") is None  # no such setting
    with pytest.raises(ValueError, match="size"):
        estimate("openai", "gpt-image-1.5", size="huge")


def test_batch_prices():
    assert estimate("gemini", "gemini-3.1-flash-image", quality="standard",
                    batch=True) == pytest.approx(0.034)
    assert estimate("openai", "gpt-image-1.5", size="1024x1024", quality="final",
                    batch=True) == pytest.approx(0.133 / 2)  # the Batch API: half price
    assert estimate("openai", "dall-e-3", size="1024x1024", quality="final",
                    batch=True) == pytest.approx(0.08)  # no batch table: the list price


def test_size_helpers():
    assert parse_size("16:9") == (1365, 768)
    assert parse_size("auto") is None
    assert parse_size((640, 480)) == (640, 480)
    assert nearest_key(["1024x1024", "1024x1536", "1536x1024"], (1000, 1600)) == "1024x1536"
    assert nearest_key(["*"], (10, 10)) == "*"
    assert nearest_key([], None) is None
