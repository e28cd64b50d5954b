"""``fallback-chain generate``: one request through the configured chain, images and sidecars
saved, every attempt printed, typed exit codes; keys never printed or written."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli_helpers import PLANTED, no_secret_in

FAKES = '''
default_chain = "main"
[chains.main]
ledger = "ledger.db"
storage = "images"
[[chains.main.providers]]
vendor = "fake"
name = "first"
options = { script = [429], price_usd = 0.02 }
[[chains.main.providers]]
vendor = "fake"
name = "second"
options = { price_usd = 0.03, blocked_terms = ["weapon"] }
'''


def test_delivers_saves_and_reports_json(run, write, tmp_path):
    write(FAKES)
    doc = run.json("generate", "a red fox", "--size", "512x512", "--n", "2", "--seed", "4")
    assert doc["ok"] and doc["chain"] == "main" and doc["provider"] == "second"
    assert [(a["provider"], a["outcome"]) for a in doc["attempts"]] == [
        ("first", "rate_limited"), ("second", "success")]
    assert doc["cost_usd"] == pytest.approx(0.06)
    assert len(doc["images"]) == 2
    sidecar = Path(doc["sidecar"])
    assert sidecar == tmp_path / "images" / f"{doc['request_id']}.json"
    meta = json.loads(sidecar.read_text())
    for i, image in enumerate(doc["images"]):
        path = Path(image["path"])
        assert path.parent == tmp_path / "images"  # the chain's storage, relative to the file
        assert path.name == f"{doc['request_id']}~{i + 1}.png"  # as batch names them
        assert path.is_file() and path.stat().st_size > 100
        assert meta["images"][i]["file"] == path.name
        assert meta["images"][i]["sha256"] == image["sha256"]
    assert meta["prompt"] == "a red fox" and meta["id"] == doc["request_id"]
    assert (meta["provider"], meta["size_requested"], meta["size_delivered"]) == (
        "second", "512x512", "512x512")
    assert (meta["seed"], meta["quality"], meta["n"], meta["chain"]) == (4, "standard", 2,
                                                                        "main")
    assert meta["moderation"]["outcome"] == "passed"
    assert meta["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in meta["attempts"]))
    assert meta["started_at"] <= meta["finished_at"]
    rows = sqlite3.connect(tmp_path / "ledger.db").execute(
        "SELECT provider, outcome FROM attempts ORDER BY id").fetchall()
    assert rows == [("first", "rate_limited"), ("second", "success")]


def test_human_output(run, write, tmp_path):
    write(FAKES)
    result = run("generate", "a red fox", "--out", "elsewhere")
    out = result.stdout
    assert "rate_limited" in out and "429" in out and "success" in out
    assert "delivered by second:fake-image-1" in out and "$0.0300" in out
    assert len(list((tmp_path / "elsewhere").glob("*.png"))) == 1
    assert len(list((tmp_path / "elsewhere").glob("*.json"))) == 1


@pytest.mark.parametrize(("prompt", "extra", "kind", "code"), [
    ("a weapon", "", "content_policy", 3),
    ("a fox", 'policy = { wait_for_cooldown = false, retries = { server_error = 0 } }\n',
     "exhausted", 1),
    ("a fox", 'budget = { per_request_usd = 0.001 }\n', "budget_exceeded", 4),
])
def test_failures_have_typed_exit_codes(run, write, prompt, extra, kind, code):
    text = FAKES.replace('storage = "images"\n', f'storage = "images"\n{extra}')
    if kind == "exhausted":
        text = text.replace('blocked_terms = ["weapon"]', 'script = [500]')
    write(text)
    doc = run.json("generate", prompt, code=code)
    assert (doc["ok"], doc["error"], doc["exit_code"]) == (False, kind, code)
    assert doc["attempts"]
    if kind == "content_policy":
        assert doc["provider"] == "second" and doc["reason"]
    human = run("generate", prompt, code=code)
    assert "not delivered" in human.stderr or "refused on content grounds" in human.stderr


def test_deadline_exit_code(run, write):
    write('''
        [chains.main]
        deadline_s = 0.2
        [[chains.main.providers]]
        vendor = "fake"
        options = { latency_s = 5 }
        ''')
    doc = run.json("generate", "slow", code=5)
    assert doc["error"] == "deadline_exceeded"


def test_invalid_request_is_a_usage_error(run, write):
    write(FAKES)
    doc = run.json("generate", "x", "--size", "banana", code=2)
    assert doc["error"] == "invalid_request" and "size" in doc["message"]


def test_without_a_config_it_explains_what_to_do(run):
    result = run("generate", "x", code=2)
    assert "no config file" in result.stderr and "fallback-chain demo" in result.stderr
    assert run.json("generate", "x", code=2)["error"] == "no_config"


def test_a_bad_config_names_file_and_line(run, write):
    path = write('[chains.main]\n[[chains.main.providers]]\nvendor = "gemni"\n')
    result = run("generate", "x", code=2)
    assert f"{path.name}:3: chains.main.providers[0].vendor: unknown vendor 'gemni'" in \
        result.stderr.replace("\n", "")


def test_unknown_chain(run, write):
    write(FAKES)
    assert "no chain called 'nope'" in run("generate", "x", "--chain", "nope", code=2).stderr


def test_storage_url_needs_out(run, write):
    write(FAKES.replace('storage = "images"', 'storage = "s3://bucket/x"'))
    assert "pass --out DIR" in run("generate", "x", code=2).stderr.replace("\n", " ")


def test_emulated_runs_the_configured_chain_without_keys(run, write, tmp_path):
    write('''
        [chains.main]
        ledger = "ledger.db"
        [[chains.main.providers]]
        vendor = "openai"
        model = "gpt-image-2"
        ''')
    assert "no API key" in run("generate", "a fox", code=2).stderr
    doc = run.json("generate", "a fox", "--emulated", "--out", "o")
    assert doc["ok"] and doc["emulated"] and doc["provider"] == "openai"
    assert not (tmp_path / "ledger.db").exists()  # emulated spend is not recorded


def test_real_adapters_through_the_emulator_never_leak_the_key(run, write, server, tmp_path,
                                                               monkeypatch):
    emulator, url = server
    emulator.set_faults({"gemini": {"script": "429"}, "leonardo": {"script": "500,500"}})
    for name in ("GEMINI_API_KEY", "LEONARDO_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(name, PLANTED)
    write(f'''
        [chains.main]
        ledger = "ledger.db"
        [[chains.main.providers]]
        vendor = "gemini"
        base_url = "{url}"
        [[chains.main.providers]]
        vendor = "leonardo"
        base_url = "{url}"
        options = {{ poll_initial_s = 0.02, poll_interval_s = 0.02 }}
        [[chains.main.providers]]
        vendor = "openai"
        base_url = "{url}/v1"
        ''')
    doc = run.json("generate", "a lighthouse", "--out", "out")
    assert [(a["provider"], a["outcome"]) for a in doc["attempts"]] == [
        ("gemini", "rate_limited"), ("leonardo", "server_error"), ("leonardo", "server_error"),
        ("openai", "success")]
    run("generate", "a lighthouse", "--out", "out")  # human output, checked by run()
    no_secret_in(tmp_path)


def test_a_key_the_vendor_rejects_is_not_echoed(run, write, server, tmp_path, monkeypatch):
    _, url = server
    wrong = "sk-WRONGkey-but-still-secret-91c3e5"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    write(f'[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\nbase_url = "{url}/v1"\n')
    result = run("generate", "x", "--out", "out", code=1)
    assert "auth_error" in result.stdout
    doc = run.json("generate", "x", "--out", "out", code=1)
    assert doc["attempts"][0]["outcome"] == "auth_error"
    assert wrong not in result.output and wrong not in json.dumps(doc)
