"""The price catalogue: built-in data, provenance, lookups, overrides, env files, laziness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fallback_chain.cost.catalogue import ENV_VAR, PriceCatalogue, PriceCatalogueError
from fallback_chain.cost.estimate import estimate

#: A frozen copy of the reference price list the catalogue was compiled from (2026-11-21).
REFERENCE = Path(__file__).with_name("data") / "pricing-reference.json"


def test_builtin_catalogue_is_valid_and_cached():
    cat = PriceCatalogue.builtin()
    assert cat is PriceCatalogue.builtin()
    assert cat is PriceCatalogue.default()  # no env override: the same object
    assert {"openai", "gemini", "leonardo"} <= set(cat.vendors())
    assert str(cat.data.compiled) == "2026-12-06"


def test_every_entry_names_its_source_and_date():
    cat = PriceCatalogue.builtin()
    for vkey in cat.vendors():
        vendor = cat.vendor(vkey)
        assert vendor is not None and vendor.source and vendor.as_of
        if vendor.credit is not None:
            assert vendor.credit.source and vendor.credit.as_of
    entries = list(cat.entries())
    assert len(entries) >= 40
    for vkey, mkey, model in entries:
        assert model.source.strip(), (vkey, mkey)
        assert model.as_of is not None, (vkey, mkey)


def test_lifecycle_status_and_shutdown_dates():
    cat = PriceCatalogue.builtin()
    expect = {("openai", "dall-e-3"): ("shut_down", "2026-05-12"),
              ("openai", "gpt-image-1"): ("shut_down", "2026-10-23"),
              ("openai", "gpt-image-1.5"): ("deprecated", "2026-12-01"),
              ("openai", "gpt-image-2"): ("active", None),
              ("gemini", "imagen-4.0-generate-001"): ("shut_down", "2026-08-17"),
              ("gemini", "gemini-3-pro-image-preview"): ("shut_down", "2026-06-25"),
              ("gemini", "gemini-2.5-flash-image"): ("deprecated", "2027-03-15")}
    for (vendor, model), (status, shutdown) in expect.items():
        entry = cat.model(vendor, model)
        assert entry is not None
        assert entry.status == status
        assert (str(entry.shutdown) if entry.shutdown else None) == shutdown


def test_per_image_prices_match_the_reference_json():
    ref = json.loads(REFERENCE.read_text())
    cat = PriceCatalogue.builtin()
    for model in ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2"):
        entry = cat.model("openai", model)
        assert entry is not None
        assert entry.per_image == ref["openai"][model]["per_image"], model
        ours = entry.tokens_per_1m.model_dump(exclude_none=True) if entry.tokens_per_1m else {}
        theirs = {k: v for k, v in ref["openai"][model]["tokens_per_1m"].items() if k != "batch"}
        assert ours == theirs, model
    assert cat.model("openai", "dall-e-3").per_image == ref["openai"]["dall-e-3"]["per_image"]
    g = ref["google"]["gemini-3.1-flash-image"]
    entry = cat.model("gemini", "gemini-3.1-flash-image")
    assert entry.per_image["*"] == {k: v["standard"] for k, v in g["per_image"].items()}
    assert entry.output_tokens["*"] == {k: v for k, v in g["tokens_per_image"].items()}
    assert cat.usd_per_credit("leonardo") == ref["leonardo"]["usd_per_credit_derived"]
    assert cat.vendor("leonardo").credit.derived is True


def test_names_resolve_through_aliases_prefixes_and_snapshot_dates():
    cat = PriceCatalogue.builtin()
    assert cat.vendor_key("Google") == "gemini"
    assert cat.model_key("openai", "gpt-image-2-2026-04-21") == "gpt-image-2"
    assert cat.model_key("openai", "chatgpt-image-latest") == "gpt-image-1.5"
    assert cat.model_key("openai", "GPT-Image-2.5-Sunburst-2026-09-08") == "gpt-image-2.5-sunburst"
    assert cat.model_key("gemini", "models/gemini-2.5-flash-image") == "gemini-2.5-flash-image"
    assert cat.model_key("gemini", "gemini/gemini-3-pro-image") == "gemini-3-pro-image"
    assert cat.model_key("leonardo", None) == "lightning-xl"
    assert cat.model_key("leonardo", "b24e16ff-06e3-43eb-8d33-4416c2d75876") == "lightning-xl"
    assert cat.model_key("openai", "gpt-image-9") is None
    assert cat.model("nobody", "x") is None


def test_like_entries_copy_prices_but_keep_their_own_lifecycle():
    cat = PriceCatalogue.builtin()
    flare = cat.model("openai", "gpt-image-2.5-flare")
    sunburst = cat.model("openai", "gpt-image-2.5-sunburst")
    assert sunburst.per_image == flare.per_image
    assert sunburst.aliases == ("gpt-image-2.5-sunburst-2026-09-08",)
    preview = cat.model("gemini", "gemini-3.1-flash-image-preview")
    assert preview.per_image == cat.model("gemini", "gemini-3.1-flash-image").per_image
    assert preview.status == "shut_down"


def test_quality_tier_mapping_is_data_the_adapters_can_read():
    cat = PriceCatalogue.builtin()
    assert cat.quality_tiers("openai", "gpt-image-1.5") == {
        "draft": "low", "standard": "medium", "final": "high"}
    assert cat.quality_tiers("openai", "dall-e-3") == {
        "draft": "standard", "standard": "standard", "final": "hd"}
    assert cat.quality_tiers("gemini", "gemini-3.1-flash-image") == {
        "draft": "512", "standard": "1K", "final": "2K"}
    assert cat.quality_tiers("leonardo", "gpt-image-1.5") == {
        "draft": "fast", "standard": "quality", "final": "ultra"}
    # what to send: tiers map, vendor settings pass through, None means standard
    assert cat.vendor_quality("openai", "gpt-image-2", "final") == "high"
    assert cat.vendor_quality("openai", "gpt-image-2", "xhigh") == "xhigh"
    assert cat.vendor_quality("openai", "gpt-image-2") == "medium"


def test_gemini_size_class_follows_the_requested_pixels():
    cat = PriceCatalogue.builtin()
    q = cat.vendor_quality
    assert q("gemini", "gemini-3.1-flash-image", "standard", "1376x768") == "1K"
    assert q("gemini", "gemini-3.1-flash-image", "standard", "2048x2048") == "2K"
    assert q("gemini", "gemini-3.1-flash-image", "draft", (4096, 4096)) == "4K"
    assert q("gemini", "gemini-3.1-flash-image", "final", "512x512") == "2K"  # never lowered
    assert q("gemini", "gemini-3.1-flash-image", "4K", "512x512") == "4K"  # explicit wins
    # a model without 4K prices a 4K request at its largest class
    assert q("gemini", "gemini-3.1-flash-lite-image", "final", "4096x4096") == "1K"
    assert q("gemini", "gemini-3-pro-image", "draft", "512x512") == "1K"


def test_with_overrides_returns_a_new_catalogue_and_records_provenance():
    base = PriceCatalogue.builtin()
    cat = base.with_overrides({"source": "contract 2026-11", "as_of": "2026-11-01", "vendors": {
        "openai": {"price_factor": 0.8},
        "gemini": {"models": {"gemini-2.5-flash-image": {"flat_usd_per_image": 0.03}}},
        "leonardo": {"credit": {"usd": 0.001}}}})
    assert base.price_factor("openai") == 1.0  # the original is untouched
    assert cat.price_factor("openai", "gpt-image-1.5") == 0.8
    assert cat.vendor("openai").override.source == "contract 2026-11"
    model = cat.model("gemini", "gemini-2.5-flash-image")
    assert model.override.source == "contract 2026-11"
    assert str(model.override.as_of) == "2026-11-01"
    assert model.source == base.model("gemini", "gemini-2.5-flash-image").source
    assert cat.vendor("leonardo").credit.override.source == "contract 2026-11"
    assert cat.origins == ("built-in", "contract 2026-11")
    assert estimate("openai", "gpt-image-1.5", size="1024x1024", quality="high",
                    catalogue=cat) == pytest.approx(0.133 * 0.8)
    assert estimate("gemini", "gemini-2.5-flash-image", n=2, catalogue=cat) == pytest.approx(0.06)
    assert estimate("leonardo", "lightning-xl", size="1024x1024",
                    catalogue=cat) == pytest.approx(0.010)


def test_overrides_can_add_models_but_they_must_name_source_and_date():
    base = PriceCatalogue.builtin()
    new = {"per_image": {"*": {"medium": 0.02}}}
    with pytest.raises(PriceCatalogueError, match="source"):
        base.with_overrides({"vendors": {"openai": {"models": {"gpt-image-2.6-flare": new}}}})
    cat = base.with_overrides({"vendors": {"openai": {"models": {"gpt-image-2.6-flare": {
        **new, "source": "our account manager's email", "as_of": "2026-11-20"}}}}})
    assert estimate("openai", "gpt-image-2.6-flare", catalogue=cat) == pytest.approx(0.02)


def test_null_in_an_override_deletes_and_invalid_data_is_rejected():
    base = PriceCatalogue.builtin()
    cat = base.with_overrides({"vendors": {"openai": {"models": {"gpt-image-2": {
        "per_image": None}}}}})
    assert cat.model("openai", "gpt-image-2").per_image == {}
    assert estimate("openai", "gpt-image-2", catalogue=cat) is None
    with pytest.raises(PriceCatalogueError, match="negative"):
        base.with_overrides({"vendors": {"openai": {"models": {"gpt-image-2": {
            "per_image": {"1024x1024": {"low": -1}}}}}}})
    with pytest.raises(PriceCatalogueError, match="draft"):
        base.with_overrides({"vendors": {"openai": {"quality_tiers": {"draft": "low",
                                                                      "standard": None}}}})
    with pytest.raises(PriceCatalogueError):
        base.with_overrides({"vendors": {"openai": {"models": {"gpt-image-2": {
            "pricee": 1}}}}})  # a typo is an error, not a silent no-op


def test_load_merges_a_file_over_the_builtin_data(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"vendors": {"openai": {"models": {"gpt-image-2": {
        "per_image": {"1024x1024": {"medium": 0.05}}}}}}}))
    cat = PriceCatalogue.load(path)
    assert estimate("openai", "gpt-image-2", size="1024x1024", catalogue=cat) == 0.05
    assert estimate("openai", "gpt-image-2", size="1024x1024", quality="high",
                    catalogue=cat) == 0.211  # merged, not replaced
    assert cat.model("openai", "gpt-image-2").override.source == f"file {path}"
    with pytest.raises(PriceCatalogueError):
        PriceCatalogue.load(path, merge=False)  # not a complete catalogue on its own
    full = tmp_path / "full.json"
    full.write_text(json.dumps(PriceCatalogue.builtin().to_dict()))
    assert PriceCatalogue.load(full, merge=False).model_key("openai", "gpt-image-2")


def test_environment_variable_updates_prices_without_a_release(tmp_path, monkeypatch):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"vendors": {"gemini": {"models": {"gemini-2.5-flash-image": {
        "flat_usd_per_image": 0.03}}}}}))
    monkeypatch.setenv(ENV_VAR, str(path))
    assert estimate("gemini", "gemini-2.5-flash-image") == pytest.approx(0.03)
    assert PriceCatalogue.default() is PriceCatalogue.default()  # cached
    # the file changes: picked up on the next lookup
    path.write_text(json.dumps({"vendors": {"gemini": {"models": {"gemini-2.5-flash-image": {
        "flat_usd_per_image": 0.025}}}}}))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert estimate("gemini", "gemini-2.5-flash-image") == pytest.approx(0.025)
    # a broken update keeps the last good prices
    path.write_text("{not json")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert estimate("gemini", "gemini-2.5-flash-image") == pytest.approx(0.025)
    monkeypatch.delenv(ENV_VAR)
    assert estimate("gemini", "gemini-2.5-flash-image") == pytest.approx(0.039)


def test_a_missing_override_file_is_an_error_on_first_load(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nope.json"))
    with pytest.raises(PriceCatalogueError, match=ENV_VAR):
        PriceCatalogue.default()


def test_importing_the_cost_package_does_not_read_the_price_data():
    code = ("import sys, fallback_chain, fallback_chain.cost; "
            "from fallback_chain.cost import settle_cost; "
            "print(sorted(m for m in sys.modules if m.startswith('fallback_chain.cost')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    # estimate is bound at import (a function named like its submodule cannot be lazy: see
    # cost/__init__.py); it and the size helpers it uses read no price data
    assert out.strip() == ("['fallback_chain.cost', 'fallback_chain.cost.estimate', "
                           "'fallback_chain.cost.settle', 'fallback_chain.cost.sizes']")


def test_flat_negotiated_price_wins_over_token_rates_in_reported_cost():
    from fallback_chain.cost.catalogue import PriceCatalogue
    from fallback_chain.cost.estimate import estimate
    from fallback_chain.cost.usage import cost_from_gemini_usage, cost_from_openai_usage

    cat = PriceCatalogue.builtin().with_overrides({"vendors": {
        "gemini": {"models": {"gemini-2.5-flash-image": {"flat_usd_per_image": 0.03}}},
        "openai": {"models": {"gpt-image-1.5": {"flat_usd_per_image": 0.02}}}}})
    produced = {"promptTokenCount": 9, "candidatesTokenCount": 1290,
                "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}]}
    refused = {"promptTokenCount": 9, "candidatesTokenCount": 0}
    assert cost_from_gemini_usage("gemini-2.5-flash-image", produced, catalogue=cat) == 0.03
    assert cost_from_gemini_usage("gemini-2.5-flash-image", refused, catalogue=cat) == 0.0
    assert estimate("gemini", "gemini-2.5-flash-image", catalogue=cat) == 0.03
    usage = {"input_tokens": 50, "output_tokens": 4160,
             "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}}
    assert cost_from_openai_usage("gpt-image-1.5", usage, images=3, catalogue=cat) == 0.06
