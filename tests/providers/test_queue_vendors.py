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


def _mixed_chain(faults: dict[str, object]):
    """Gemini -> fal.ai FLUX -> Black Forest Labs on one emulator, in-process, virtual time."""
    from fallback_chain import Chain
    from fallback_chain.emulator import Emulator
    from fallback_chain.providers.bfl import BFLProvider
    from fallback_chain.providers.fal import FalProvider
    from fallback_chain.providers.gemini import GeminiProvider
    from fallback_chain.vtime import VirtualClock

    clock = VirtualClock()
    emu = Emulator(faults={**faults, "fal": {**faults.get("fal", {}), "job_delay_s": 1.0},
                           "bfl": {**faults.get("bfl", {}), "job_delay_s": 1.0}},
                   api_keys="mixed-key", clock=clock)
    base = "http://emulator.test"
    providers = [
        GeminiProvider("gemini-3.1-flash-image", api_key="mixed-key", base_url=base,
                       transport=emu.httpx2_transport()),
        FalProvider(api_key="mixed-key", base_url=f"{base}/fal", clock=clock,
                    transport=emu.httpx_transport()),
        BFLProvider(api_key="mixed-key", base_url=f"{base}/bfl", clock=clock,
                    transport=emu.httpx_transport()),
    ]
    return Chain(providers, clock=clock, log=False, attempt_timeout_s=30.0), emu


def _run(chain):
    from fallback_chain import ImageRequest
    from fallback_chain.errors import ChainError
    from fallback_chain.vtime import run_virtual

    async def go():
        try:
            return await chain.agenerate(ImageRequest(prompt="a kite", size="1024x1024")), None
        except ChainError as exc:
            return None, exc
        finally:
            await chain.aclose()

    return run_virtual(go())


def test_mixed_chain_falls_through_429_and_5xx_and_stops_on_a_refusal():
    from fallback_chain import Outcome
    from fallback_chain.errors import ContentPolicyError

    chain, emu = _mixed_chain({"gemini": {"script": "429"}, "fal": {"script": "500,502"}})
    result, _ = _run(chain)
    assert result is not None and result.provider == "bfl"
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("gemini", Outcome.RATE_LIMITED), ("fal", Outcome.SERVER_ERROR),
        ("fal", Outcome.SERVER_ERROR), ("bfl", Outcome.SUCCESS)]

    chain, emu = _mixed_chain({"gemini": {"script": "503,503"}, "fal": {"script": "policy"}})
    result, error = _run(chain)
    assert result is None and isinstance(error, ContentPolicyError)
    assert emu.log.count(vendor="bfl") == 0  # the refused prompt never reached BFL


def test_cost_functions_are_reachable_through_the_registry():
    from fallback_chain.cost import usage

    assert usage.cost_from_fal_images("fal-ai/flux/dev", [(1024, 1024), (512, 512)]) == \
        pytest.approx(0.05)
    assert usage.cost_from_bfl_credits(4) == pytest.approx(0.04)
    assert usage.cost_from_bfl_image("flux-2-pro", (1024, 1024)) == pytest.approx(0.03)
