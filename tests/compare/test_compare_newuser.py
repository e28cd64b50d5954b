"""The emulated compare demonstrates something (issue 14, item 16): each vendor draws its own
placeholders and a new one per run, so spreads and between-provider differences are not 0;
rows name provider and model one way (item 15); quality errors are in our own words."""

from __future__ import annotations

import json
from pathlib import Path

from compare_helpers import emulated_vendors
from typer.testing import CliRunner

from fallback_chain.emulator import Emulator, serve_in_thread

runner = CliRunner()


def _faults(tmp_path: Path) -> str:
    path = tmp_path / "faults.toml"
    path.write_text("[leonardo]\njob_delay_s = 0.02\n")
    return str(path)


def test_emulated_compare_shows_differences_between_runs_and_providers(app, tmp_path):
    result = runner.invoke(app, ["compare", "a red fox in snow", "--emulated", "--runs", "3",
                                 "--json", "--out", str(tmp_path / "o"), "--faults",
                                 _faults(tmp_path), "--thumb-px", "64"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    spreads = {p["label"]: p["spread"] for p in doc["providers"]}
    vendors = emulated_vendors()
    assert set(spreads) == set(vendors) >= {"gemini", "leonardo", "openai"}
    assert all(s is not None and s > 0.01 for s in spreads.values()), spreads
    assert all(p["distinct_images"] == 3 for p in doc["providers"])
    costs = {p["label"]: p["cost_per_image_usd"] for p in doc["providers"]}
    assert all(c is not None and c > 0 for c in costs.values()), costs
    seed = {costs[v] for v in ("gemini", "leonardo", "openai")}
    assert len(seed) == 3, costs  # each vendor prices from its own records
    cross = {(c["a"], c["b"]): c["spread"] for c in doc["cross_spread"]}
    pairs = len(vendors) * (len(vendors) - 1) // 2
    assert len(cross) == pairs and all(v > 0.01 for v in cross.values()), cross


def test_rows_name_provider_and_model_one_way(app, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, ["compare", "a fox", "--emulated", "--runs", "1", "-p",
                                 "openai", "--out", str(tmp_path / "o"), "--faults",
                                 _faults(tmp_path), "--thumb-px", "64"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "openai:gpt-image-2" in result.stdout
    assert "openai/gpt-image-2" not in result.stdout and "…" not in result.stdout


def test_a_bad_quality_is_refused_in_our_words(app):
    result = runner.invoke(app, ["compare", "a fox", "--emulated", "--quality", "best"])
    assert result.exit_code == 2
    assert "quality: must be one of draft, standard, final (got 'best')" in result.stderr
    assert "Input should" not in result.stderr


def test_the_emulator_varies_images_only_when_asked():
    import httpx

    for vary, expect_same in ((False, True), (True, False)):
        emulator = Emulator({}, api_keys="k", vary_images=vary)
        with serve_in_thread(emulator) as url:
            bodies = [httpx.post(f"{url}/v1/images/generations",
                                 headers={"Authorization": "Bearer k"},
                                 json={"model": "gpt-image-2", "prompt": "a fox",
                                       "size": "1024x1024"}).json()["data"][0]["b64_json"]
                      for _ in range(2)]
        assert (bodies[0] == bodies[1]) is expect_same


def test_emulated_compare_does_not_warn_about_the_secrets_file(app, tmp_path):
    import warnings

    config = tmp_path / "fc.toml"
    config.write_text('default_chain = "main"\n[secrets]\nfile = "nowhere/secrets.env"\n'
                      '[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\n'
                      'model = "gpt-image-2"\n')
    args = ["compare", "x", "--config", str(config), "--runs", "1", "--json",
            "--out", str(tmp_path / "o")]
    with warnings.catch_warnings(record=True) as emulated:
        warnings.simplefilter("always")
        result = runner.invoke(app, [*args, "--emulated", "--faults", _faults(tmp_path)],
                               catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert not [w for w in emulated if "secrets" in str(w.message)]
    with warnings.catch_warnings(record=True) as real:
        warnings.simplefilter("always")
        runner.invoke(app, args)  # no key: fails, but reads the secrets file and says so
    assert [w for w in real if "secrets.env does not exist" in str(w.message)]
