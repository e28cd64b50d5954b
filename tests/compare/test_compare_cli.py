"""``fallback-chain compare`` through Typer's CliRunner."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from compare_helpers import KEY, emulated_vendors
from PIL import Image
from typer.testing import CliRunner

from fallback_chain.compare.sheet import Layout

runner = CliRunner()

FAST_TOML = """
[leonardo]
job_delay_s = 0.02
"""


def _faults(tmp_path: Path, extra: str = "") -> str:
    path = tmp_path / "faults.toml"
    path.write_text(FAST_TOML + extra)
    return str(path)


def _invoke(app, *args: str):
    return runner.invoke(app, ["compare", *args], catch_exceptions=False)


def test_emulated_json(app, tmp_path):
    out = tmp_path / "out"
    result = _invoke(app, "a red fox in snow", "--emulated", "--runs", "2", "--json",
                     "--out", str(out), "--faults", _faults(tmp_path), "--thumb-px", "96")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # nothing but JSON on stdout
    assert doc["emulated"] is True and doc["runs"] == 2 and doc["prompt"] == "a red fox in snow"
    vendors = emulated_vendors()
    assert [p["label"] for p in doc["providers"]] == vendors
    assert {"gemini", "leonardo", "openai"} <= set(vendors)
    assert [p["delivered"] for p in doc["providers"]] == [2] * len(vendors)
    assert len(doc["cells"]) == 2 * len(vendors)
    assert all(c["outcome"] == "success" for c in doc["cells"])
    assert all(c["cost_usd"] > 0 and c["latency_s"] > 0 for c in doc["cells"])
    sheet = Path(doc["contact_sheet"])
    assert sheet == out / "contact-sheet.png"
    lay = Layout.for_thumb(96)
    with Image.open(sheet) as img:
        img.load()
        assert img.format == "PNG"
        assert img.width == lay.pad + lay.label_w + lay.pad + 2 * lay.cell_w
        assert img.height > len(vendors) * lay.row_h
    for cell in doc["cells"]:
        assert len(cell["files"]) == 1 and Path(cell["files"][0]).is_file()
    names = {p.name for p in (out / "images").iterdir()}
    assert {"gemini-run1.png", "gemini-run2.png", "leonardo-run1.jpg", "leonardo-run2.jpg",
            "openai-run1.png", "openai-run2.png"} <= names
    assert {n.split("-run")[0] for n in names} == set(vendors) and len(names) == 2 * len(vendors)
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["contact_sheet"] == "contact-sheet.png"
    assert saved["cells"][0]["files"][0].startswith(f"images/{vendors[0]}-run1.")
    assert "compare-emulated-key" not in result.stdout + (out / "comparison.json").read_text()


def test_emulated_failures_show_in_table_and_json(app, tmp_path):
    faults = _faults(tmp_path, '[openai]\nscript = "500,500,500,500"\n')
    args = ("a lighthouse", "--emulated", "-p", "openai,gemini:gemini-2.5-flash-image",
            "--runs", "3", "--concurrency", "1", "--faults", faults)
    result = _invoke(app, *args, "--json", "--out", str(tmp_path / "j"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    openai = [c for c in doc["cells"] if c["label"] == "openai"]
    assert [c["outcome"] for c in openai] == ["server_error", "server_error", "success"]
    assert [c["calls"] for c in openai] == [2, 2, 1]
    assert openai[0]["files"] == [] and openai[0]["message"]
    assert doc["providers"][0]["failures"] == {"server_error": 2}

    table = _invoke(app, *args, "--out", str(tmp_path / "t"))
    assert table.exit_code == 0, table.output
    text = table.stdout
    for expected in ("Runs", "Per provider", "server_error", "gemini-2.5-flash-image",
                     "gpt-image-2", "contact sheet:", "4 of 6 runs delivered"):
        assert expected in text, expected
    assert "(emulated)" in text
    assert f"contact sheet: {tmp_path / 't' / 'contact-sheet.png'}" in text  # never wrapped


def test_nothing_delivered_exits_1(app, tmp_path):
    faults = _faults(tmp_path, '[openai]\nscript = "500*10"\n')
    result = _invoke(app, "x", "--emulated", "-p", "openai", "--runs", "2", "--json",
                     "--faults", faults, "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [c["delivered"] for c in doc["cells"]] == [False, False]
    assert (tmp_path / "o" / "contact-sheet.png").is_file()  # the failures are still drawn


def test_default_out_is_a_new_folder_per_run(app, tmp_path):
    faults = _faults(tmp_path)
    for _ in range(2):
        result = _invoke(app, "x", "--emulated", "-p", "gemini", "--runs", "1", "--json",
                         "--faults", faults)
        assert result.exit_code == 0, result.output
    folders = sorted((tmp_path / "compare-out").iterdir())  # cwd is tmp_path
    assert len(folders) == 2
    assert all((f / "contact-sheet.png").is_file() for f in folders)


@pytest.mark.parametrize(("args", "message"), [
    (["x"], "which providers?"),
    (["x", "-p", "foo:bar"], "'foo' is not a vendor"),
    (["x", "-p", "gemini,,openai"], "empty item"),
    (["x", "-p", "gemini,gemini"], "more than once"),
    (["x", "-p", "mine"], "'mine': not a vendor"),
    (["x", "-p", "gemini"], "GEMINI_API_KEY"),
    (["x", "-p", "openai", "--faults", "faults.toml"], "--faults only applies with --emulated"),
    (["   ", "--emulated"], "prompt"),
    (["x", "--emulated", "--size", "big"], "size"),
    (["x", "--emulated", "--config", "nope.toml"], "nope.toml does not exist"),
])
def test_bad_input_exits_2(app, tmp_path, args, message):
    (tmp_path / "faults.toml").write_text(FAST_TOML)
    result = runner.invoke(app, ["compare", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


CONFIG = """
default_chain = "main"

[chains.main]
attempt_timeout_s = 30
ledger = "spend.db"

[[chains.main.providers]]
vendor = "openai"
model = "gpt-image-2"

[[chains.main.providers]]
vendor = "fake"
name = "stand-in"

[chains.other]
[[chains.other.providers]]
vendor = "fake"
name = "elsewhere"
"""


def test_names_from_the_config_file(app, tmp_path):
    (tmp_path / "fallback-chain.toml").write_text(CONFIG)
    result = _invoke(app, "x", "-p", "stand-in", "--runs", "2", "--json",
                     "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(c["label"], c["outcome"]) for c in doc["cells"]] == [
        ("stand-in", "success"), ("stand-in", "success")]
    assert doc["emulated"] is False
    with sqlite3.connect(tmp_path / "spend.db") as db:  # real spend goes to the chain's ledger
        rows = db.execute("SELECT chain, provider, outcome FROM attempts").fetchall()
    assert rows == [("compare:stand-in", "stand-in", "success")] * 2

    other = runner.invoke(app, ["compare", "x", "-p", "elsewhere"])
    assert other.exit_code == 2 and "add --chain other" in other.output
    chosen = _invoke(app, "x", "-p", "elsewhere", "--chain", "other", "--runs", "1", "--json",
                     "--out", str(tmp_path / "o2"))
    assert chosen.exit_code == 0, chosen.output
    # the real provider of the config needs its key: no key, no silent stand-in
    real = runner.invoke(app, ["compare", "x", "-p", "openai/gpt-image-2"])
    assert real.exit_code == 2 and "OPENAI_API_KEY" in real.output
    assert "fallback-chain.toml:" in real.output  # the file and line of the provider


def test_emulated_points_configured_providers_at_the_emulator(app, tmp_path):
    config = tmp_path / "conf.toml"
    config.write_text(CONFIG)
    result = _invoke(app, "x", "--emulated", "--config", str(config), "--runs", "1", "--json",
                     "--out", str(tmp_path / "o"), "--faults", _faults(tmp_path))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    cells = {c["label"]: c for c in doc["cells"]}
    assert set(cells) == {"openai/gpt-image-2", "stand-in"}  # the whole default chain
    openai = cells["openai/gpt-image-2"]
    # the real OpenAI adapter talked to the emulator, which reported usage tokens
    assert openai["model"] == "gpt-image-2" and openai["provider"] == "openai"
    assert openai["attempts"][0]["cost_source"] == "reported" and openai["cost_usd"] > 0
    assert not (tmp_path / "spend.db").exists()  # emulated spend is kept out of the ledger


def test_help_is_fast_and_imports_nothing_heavy():
    code = ("import sys, fallback_chain.cli.compare; "
            "print(sorted(m for m in ('PIL', 'openai', 'google.genai', 'httpx2', 'pydantic', "
            "'fallback_chain.compare.run') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_emulated_with_its_default_faults(app, tmp_path):
    """The command as a newcomer tries it: only --emulated (and a folder)."""
    result = _invoke(app, "a bowl of ramen", "--emulated", "--runs", "1",
                     "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    n = len(emulated_vendors())
    assert f"{n} of {n} runs delivered" in result.stdout
    assert "no real vendor is called" in result.stderr
    assert "expected cost about $" in result.stderr


def test_a_configured_vendor_name_is_the_configured_provider(app, tmp_path, server,
                                                              monkeypatch):
    """`-p gemini` with a config whose chain has an unnamed Gemini provider uses that
    provider, base_url and all (here: the test's emulator), not a bare adapter."""
    emulator, base_url = server
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    config = tmp_path / "conf.toml"
    config.write_text(f'[chains.main]\n[[chains.main.providers]]\nvendor = "gemini"\n'
                      f'base_url = "{base_url}"\n')
    result = _invoke(app, "x", "-p", "gemini", "--config", str(config), "--runs", "2",
                     "--json", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert [c["outcome"] for c in json.loads(result.stdout)["cells"]] == ["success"] * 2
    assert emulator.log.count(vendor="gemini", endpoint="generate") == 2
    assert KEY not in result.stdout
