"""fal.ai and Black Forest Labs join the library through the registry alone: their class data
passes the registry's checks, ``fallback-chain providers`` lists their models with prices and
lifecycle, and ``fallback-chain generate --emulated`` runs a config naming each vendor id (and
a mixed chain ``fake(429) -> fal -> bfl``)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fallback_chain import registry
from fallback_chain.config.vendors import VENDORS

QUEUE_VENDORS = ("fal", "bfl")


@pytest.mark.parametrize("vendor", QUEUE_VENDORS)
def test_registry_data_matches_the_constructor(vendor):
    from tests.test_registry import (
        test_each_adapter_declares_its_vendor_data_and_it_matches_its_constructor as check,
    )

    check(vendor)
    assert vendor in VENDORS and registry.get(vendor).emulator_api
    cls = registry.get(vendor)
    assert cls.provider_key(cls.default_model) == f"{vendor}/{cls.default_model}"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fallback_chain.cli import app

    for name in ("FAL_KEY", "BFL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Result:
        result = runner.invoke(app, list(args))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == code, result.output
        return result

    return run


@pytest.mark.parametrize(("vendor", "models"), [
    ("fal", {"fal-ai/flux/schnell": 0.003, "fal-ai/flux/dev": 0.025}),
    ("bfl", {"flux-pro-1.1": 0.04, "flux-2-pro": 0.03, "flux-2-klein-4b": 0.014}),
])
def test_providers_lists_models_with_prices_and_lifecycle(cli, vendor, models):
    doc = json.loads(cli("providers", "--vendor", vendor, "--json").stdout)
    listed = {m["model"]: m for m in doc["models"]}
    for model, usd in models.items():
        assert listed[model]["status"] == "active"
        assert listed[model]["price"]["usd_per_image"] == pytest.approx(usd)
    table = cli("providers", "--vendor", vendor).stdout
    assert all(model in table for model in models)


@pytest.mark.parametrize(("vendor", "model"), [("fal", "fal-ai/flux/dev"),
                                               ("bfl", "flux-2-pro")])
def test_generate_emulated_with_a_config_naming_the_vendor(cli, tmp_path, vendor, model):
    (tmp_path / "fallback-chain.toml").write_text(textwrap.dedent(f'''
        [chains.main]
        [[chains.main.providers]]
        vendor = "{vendor}"
        model = "{model}"
        '''))
    missing = cli("generate", "a fox", code=2).output
    assert "no API key" in missing and registry.get(vendor).env_vars[0] in missing
    doc = json.loads(cli("generate", "a red fox", "--emulated", "--out", "o", "--json").stdout)
    assert doc["ok"] and doc["emulated"] and doc["provider"] == vendor
    assert list((tmp_path / "o").iterdir())


def test_a_mixed_chain_falls_through_a_rate_limit_to_fal(cli, tmp_path):
    (tmp_path / "fallback-chain.toml").write_text(textwrap.dedent('''
        [chains.main]
        [[chains.main.providers]]
        vendor = "fake"
        options = { script = ["429"] }
        [[chains.main.providers]]
        vendor = "fal"
        [[chains.main.providers]]
        vendor = "bfl"
        '''))
    doc = json.loads(cli("generate", "a red fox", "--emulated", "--out", "o", "--json").stdout)
    assert doc["ok"] and doc["provider"] == "fal"
