"""``fallback-chain check``: a preflight per provider that spends nothing, reports missing keys
per provider, exits non-zero when any failed, and never prints a key."""

from __future__ import annotations

from cli_helpers import PLANTED


def _config(write, url: str) -> None:
    write(f'''
        default_chain = "main"
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
        [chains.spare]
        [[chains.spare.providers]]
        vendor = "fake"
        ''')


def test_every_provider_passes(run, write, server, monkeypatch):
    emulator, url = server
    for name in ("GEMINI_API_KEY", "LEONARDO_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(name, PLANTED)
    _config(write, url)
    doc = run.json("check")
    assert doc["ok"] is True
    assert [(r["provider"], r["ok"]) for r in doc["providers"]] == [
        ("gemini", True), ("leonardo", True), ("openai", True)]
    seen = emulator.requests()
    assert {e.vendor for e in seen} == {"gemini", "leonardo", "openai"}
    assert {e.endpoint for e in seen} == {"meta"}  # nothing that costs money was called
    out = run("check").stdout
    assert "3 of 3 provider(s) ready" in out and "nothing was spent" in out


def test_failures_are_reported_per_provider(run, write, server, monkeypatch):
    _, url = server
    monkeypatch.setenv("GEMINI_API_KEY", PLANTED)
    wrong = "sk-WRONGkey-for-the-check-test-5512"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    _config(write, url)  # no LEONARDO_API_KEY anywhere
    doc = run.json("check", code=1)
    rows = {r["provider"]: r for r in doc["providers"]}
    assert rows["gemini"]["ok"] is True
    assert rows["leonardo"]["ok"] is False
    assert "no API key for provider 'leonardo': set LEONARDO_API_KEY" in rows["leonardo"]["detail"]
    assert rows["openai"]["ok"] is False
    assert "401" in rows["openai"]["detail"]
    human = run("check", code=1)
    assert "FAILED" in human.stdout and "1 of 3 provider(s) ready; 2 failed" in human.stdout
    assert wrong not in human.output and wrong not in str(doc)


def test_all_chains_and_a_named_chain(run, write, server, monkeypatch):
    _, url = server
    for name in ("GEMINI_API_KEY", "LEONARDO_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(name, PLANTED)
    _config(write, url)
    assert [r["chain"] for r in run.json("check", "--all")["providers"]] == ["main"] * 3 + [
        "spare"]
    spare = run.json("check", "--chain", "spare")["providers"]
    assert [(r["provider"], r["ok"]) for r in spare] == [("fake", True)]


def test_an_unresponsive_provider_times_out(run, write, server, monkeypatch):
    emulator, url = server
    monkeypatch.setenv("LEONARDO_API_KEY", PLANTED)
    emulator.set_faults({"leonardo": {"latency": {"dist": "fixed", "ms": 1000}}})
    write(f'[chains.main]\n[[chains.main.providers]]\nvendor = "leonardo"\n'
          f'base_url = "{url}"\n')
    doc = run.json("check", "--timeout", "0.2", code=1)
    assert doc["providers"][0]["detail"] == "no answer within 0.2s"


def test_without_a_config(run):
    assert "no config file" in run("check", code=2).stderr
