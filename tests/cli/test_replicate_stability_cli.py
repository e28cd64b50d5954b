"""Issue 17: `fallback-chain generate --emulated` and `providers` with a config naming the
Stability AI and Replicate vendor ids."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("vendor", "model", "cost"), [
    ("stability", "sd3.5-large-turbo", 0.04),
    ("replicate", "black-forest-labs/flux-dev", 0.025),
])
def test_generate_emulated_with_the_vendor_id(run, write, tmp_path, vendor, model, cost):
    write(f'''
        [chains.main]
        ledger = "ledger.db"
        [[chains.main.providers]]
        vendor = "{vendor}"
        model = "{model}"
        ''')
    assert "no API key" in run("generate", "a fox", code=2).stderr
    doc = run.json("generate", "a fox", "--emulated", "--out", "o")
    assert doc["ok"] and doc["emulated"] and doc["provider"] == vendor
    assert doc["model"] == model and doc["cost_usd"] == pytest.approx(cost)
    assert (tmp_path / doc["images"][0]["path"]).is_file()


@pytest.mark.parametrize(("vendor", "models"), [
    ("stability", {"stable-image-core", "stable-image-ultra", "sd3.5-large"}),
    ("replicate", {"black-forest-labs/flux-schnell", "black-forest-labs/flux-dev"}),
])
def test_providers_lists_models_with_prices_and_lifecycle(run, vendor, models):
    doc = run.json("providers", "--vendor", vendor)
    rows = {m["model"]: m for m in doc["models"] if m["vendor"] == vendor}
    assert models <= set(rows)
    for m in models:
        assert rows[m]["status"] == "active" and rows[m]["price"]["usd_per_image"] > 0
