"""Issue 17: `fallback-chain generate --emulated` and `providers` with a config naming the
Stability AI and Replicate vendor ids."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_vendor_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STABILITY_API_KEY", "STABILITY_KEY", "REPLICATE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


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


def test_check_against_a_live_emulator_spends_nothing_and_never_prints_the_key(
        run, write, server, monkeypatch):
    from cli_helpers import PLANTED

    emulator, url = server
    monkeypatch.setenv("STABILITY_API_KEY", PLANTED)
    monkeypatch.setenv("REPLICATE_API_TOKEN", PLANTED)
    write(f'''
        [chains.main]
        [[chains.main.providers]]
        vendor = "stability"
        base_url = "{url}"
        [[chains.main.providers]]
        vendor = "replicate"
        base_url = "{url}"
        ''')
    doc = run.json("check")
    assert doc["ok"] is True
    assert [(r["provider"], r["ok"]) for r in doc["providers"]] == [
        ("stability", True), ("replicate", True)]
    seen = emulator.requests()
    assert {e.vendor for e in seen} == {"stability", "replicate"}
    assert {e.endpoint for e in seen} == {"meta"}  # nothing that costs money was called
