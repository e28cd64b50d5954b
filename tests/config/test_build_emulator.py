"""Every vendor built from a config file, with its key from the environment, the secrets file or
the emulator, generates against a loopback emulator (the real adapters, the real wire)."""

from __future__ import annotations

import asyncio
import os

import pytest
from config_helpers import KEY

from fallback_chain.config import ConfigError, Emulated, load_config

VENDOR_URL = {"gemini": "{url}", "leonardo": "{url}", "openai": "{url}/v1"}
FAST = {"leonardo": 'options = { poll_initial_s = 0.02, poll_interval_s = 0.02 }\n'}


def _config(write, vendor: str, url: str, extra: str = "", head: str = "") -> str:
    base = f'base_url = "{VENDOR_URL[vendor].format(url=url)}"\n'
    return write(f'{head}[chains.main]\n[[chains.main.providers]]\nvendor = "{vendor}"\n'
                 f'{base}{FAST.get(vendor, "")}{extra}')


@pytest.mark.parametrize("vendor", ["gemini", "leonardo", "openai"])
def test_each_vendor_generates_with_its_key_from_the_environment(write, server, monkeypatch,
                                                                 vendor):
    emulator, url = server
    variable = {"gemini": "GEMINI_API_KEY", "leonardo": "LEONARDO_API_KEY",
                "openai": "OPENAI_API_KEY"}[vendor]
    monkeypatch.setenv(variable, KEY)
    with load_config(_config(write, vendor, url)) as config:
        chain = config.chain(log=False)
        try:
            result = chain.generate("a lighthouse", size="1024x1024")
        finally:
            chain.close()
    assert result.provider == vendor
    assert result.image.width > 0
    assert emulator.requests(vendor=vendor)


def test_google_api_key_also_works_for_gemini(write, server, monkeypatch):
    _, url = server
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    [provider] = load_config(_config(write, "gemini", url)).providers()
    assert asyncio.run(provider.check()).ok


def test_key_from_the_secrets_file_is_passed_not_exported(write, server, tmp_path):
    emulator, url = server
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"# keys\nexport OPENAI_API_KEY='{KEY}'\nLEONARDO_API_KEY=unused # x\n")
    secrets.chmod(0o600)
    path = _config(write, "openai", url, head='[secrets]\nfile = "secrets.env"\n')
    config = load_config(path)
    assert config.notes == []
    chain = config.chain(log=False)
    try:
        assert chain.generate("a fox", size="1024x1024").provider == "openai"
    finally:
        chain.close()
    assert "OPENAI_API_KEY" not in os.environ
    assert emulator.requests(vendor="openai")


def test_the_environment_wins_over_the_secrets_file(write, server, tmp_path, monkeypatch):
    _, url = server
    (tmp_path / "secrets.env").write_text("GEMINI_API_KEY=a-wrong-key-from-the-file\n")
    (tmp_path / "secrets.env").chmod(0o600)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    path = _config(write, "gemini", url, head='[secrets]\nfile = "secrets.env"\n')
    [provider] = load_config(path).providers()
    assert asyncio.run(provider.check()).ok


def test_key_env_names_the_variable(write, server, monkeypatch):
    _, url = server
    monkeypatch.setenv("OPENAI_API_KEY", "the-default-account-key")
    monkeypatch.setenv("TEAM_B_OPENAI_KEY", KEY)
    [provider] = load_config(_config(write, "openai", url, 'key_env = "TEAM_B_OPENAI_KEY"\n')
                             ).providers()
    assert asyncio.run(provider.check()).ok


def test_a_missing_key_names_the_variables_the_file_and_the_line(write, tmp_path):
    path = write('''
        [secrets]
        file = "secrets.env"
        [chains.main]
        [[chains.main.providers]]
        vendor = "fake"
        [[chains.main.providers]]
        vendor = "gemini"
        ''')
    (tmp_path / "secrets.env").write_text("OPENAI_API_KEY=x-not-this-one\n")
    (tmp_path / "secrets.env").chmod(0o600)
    config = load_config(path)
    built = config.build_providers()
    assert built[0].provider is not None and built[1].provider is None
    with pytest.raises(ConfigError) as info:
        config.chain()
    message = str(info.value)
    assert message.startswith(f"{path}:6: chains.main.providers[1]: no API key for provider "
                              "'gemini': set GEMINI_API_KEY or GOOGLE_API_KEY in the "
                              "environment or in the secrets file ")
    assert "x-not-this-one" not in message


def test_emulated_target_replaces_urls_and_keys(write, server):
    emulator, url = server
    path = write('''
        [chains.main]
        [[chains.main.providers]]
        vendor = "gemini"
        [[chains.main.providers]]
        vendor = "leonardo"
        options = { poll_initial_s = 0.02, poll_interval_s = 0.02 }
        [[chains.main.providers]]
        vendor = "openai"
        [[chains.main.providers]]
        vendor = "fake"
        ''')
    target = Emulated.from_emulator(emulator, url)
    assert target.key_for("openai") == KEY and target.url_for("openai") == f"{url}/v1"
    emulator.set_faults({"gemini": {"script": "500,500"}, "leonardo": {"script": "429"}})
    chain = load_config(path).chain(emulated=target, log=False)  # no key in the environment
    try:
        result = chain.generate("a bicycle", size="1024x1024")
    finally:
        chain.close()
    assert [(a.provider, a.outcome.value) for a in result.attempts] == [
        ("gemini", "server_error"), ("gemini", "server_error"), ("leonardo", "rate_limited"),
        ("openai", "success")]


def test_emulator_accepting_any_key():
    target = Emulated("http://127.0.0.1:1/", None)
    assert target.key_for("gemini") and target.url_for("gemini") == "http://127.0.0.1:1"


def test_preflight_of_every_vendor(write, server, monkeypatch):
    _, url = server
    for variable in ("GEMINI_API_KEY", "LEONARDO_API_KEY"):
        monkeypatch.setenv(variable, KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "not-the-emulator-key")
    path = write(f'''
        [chains.main]
        [[chains.main.providers]]
        vendor = "gemini"
        base_url = "{url}"
        [[chains.main.providers]]
        vendor = "leonardo"
        base_url = "{url}"
        [[chains.main.providers]]
        vendor = "openai"
        base_url = "{url}/v1"
        ''')

    async def preflight():
        providers = load_config(path).providers()
        try:
            return [await p.check() for p in providers]
        finally:
            for p in providers:
                await p.aclose()

    results = asyncio.run(preflight())
    assert [r.ok for r in results] == [True, True, False]
    assert "not-the-emulator-key" not in results[2].detail


def test_budget_from_the_config_skips_a_provider(write):
    path = write('''
        [chains.main]
        budget = { per_request_usd = 0.03 }
        [[chains.main.providers]]
        vendor = "fake"
        name = "pricey"
        options = { price_usd = 0.05 }
        [[chains.main.providers]]
        vendor = "fake"
        name = "cheap"
        options = { price_usd = 0.01 }
        ''')
    chain = load_config(path).chain(log=False)
    result = chain.generate("x", size="64x64")
    chain.close()
    assert [(a.provider, a.outcome.value) for a in result.attempts] == [
        ("pricey", "budget_exceeded"), ("cheap", "success")]


def test_prices_file_from_the_config(write, tmp_path, monkeypatch):
    (tmp_path / "prices.json").write_text(
        '{"source": "contract", "as_of": "2026-11-01", "vendors": {"openai": '
        '{"price_factor": 0.5}}}')
    monkeypatch.setenv("OPENAI_API_KEY", "k-1234567890")
    path = write('[chains.main]\nprices = "prices.json"\n[[chains.main.providers]]\n'
                 'vendor = "openai"\n')
    from fallback_chain.request import ImageRequest

    [provider] = load_config(path).providers()
    [default] = load_config(write('[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\n',
                                  "plain.toml")).providers()
    request = ImageRequest(prompt="x", size="1024x1024")
    assert provider.estimate_cost(request) == pytest.approx(default.estimate_cost(request) / 2)
