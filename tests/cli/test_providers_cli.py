"""``fallback-chain providers``: every catalogued model with capabilities, price, lifecycle."""

from __future__ import annotations

import pytest

from fallback_chain.cost.estimate import estimate
from fallback_chain.providers import catalogue


def test_json_lists_every_catalogued_model(run):
    doc = run.json("providers")
    got = {(m["vendor"], m["model"]) for m in doc["models"]}
    assert got == {(m.vendor, m.id) for m in catalogue.models()}
    assert doc["price_basis"] == {"size": "1024x1024", "quality": "standard"}


def test_capabilities_lifecycle_and_price(run):
    models = {m["model"]: m for m in run.json("providers")["models"]}
    dalle = models["dall-e-3"]
    assert (dalle["status"], dalle["shutdown"], dalle["replacement"]) == (
        "shut_down", "2026-05-12", "gpt-image-2")
    assert dalle["capabilities"]["max_n"] == 1 and dalle["capabilities"]["rewrites_prompt"]
    assert dalle["capabilities"]["sizes"] == ["1024x1024", "1792x1024", "1024x1792"]
    gpt = models["gpt-image-2"]
    assert gpt["status"] == "active" and gpt["capabilities"]["edits"]
    assert gpt["price"]["usd_per_image"] == pytest.approx(
        estimate("openai", "gpt-image-2", size=(1024, 1024), quality="standard"))
    gemini = models["gemini-3.1-flash-image"]
    assert "16:9" in gemini["capabilities"]["aspect_ratios"]
    leonardo = next(m for m in models.values() if m["vendor"] == "leonardo")
    assert leonardo["price"]["derived"] is True  # credits at a derived dollar rate


def test_vendor_filter_and_active_only(run):
    gemini = run.json("providers", "--vendor", "gemini")["models"]
    assert gemini and {m["vendor"] for m in gemini} == {"gemini"}
    active = run.json("providers", "--active")["models"]
    assert active and all(m["status"] != "shut_down" for m in active)
    assert "dall-e-3" not in {m["model"] for m in active}


def test_table(run):
    out = run("providers").stdout
    for text in ("openai", "gemini", "leonardo", "gpt-image-2", "shut down 2026-05-12",
                 "→ gpt-image-2", "$/img"):
        assert text in out


def test_unknown_vendor_is_a_usage_error(run):
    assert "gemni" in run("providers", "--vendor", "gemni", code=2).output
