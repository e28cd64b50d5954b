"""`fallback-chain batch`: dry run, emulated runs, config file, errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from batch_helpers import write_csv
from typer.testing import CliRunner

from fallback_chain.cli.batch import batch

app = typer.Typer()
app.command("batch")(batch)


@app.callback()
def _root() -> None:
    """A one-command app (the real CLI registers the same function)."""


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FALLBACK_CHAIN_CONFIG", raising=False)
    monkeypatch.delenv("FALLBACK_CHAIN_LEDGER", raising=False)
    monkeypatch.chdir(tmp_path)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["batch", *args])
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_the_options() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    for option in ("--out", "--config", "--chain", "--concurrency", "--dry-run", "--cache",
                   "--json", "--emulated"):
        assert option in out


def test_dry_run_validates_and_prices_without_writing(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [
        {"prompt": "a", "size": "1024x1024", "n": "2"}, {"prompt": "", "size": "64x64", "n": ""},
        {"prompt": "b", "size": "", "n": ""}])
    code, out, _ = invoke(str(source), "--out", "out", "--emulated", "--dry-run", "--json",
                          "--failure-rate", "gemini=0.5")
    assert code == 1  # an invalid row
    report = json.loads(out)
    assert (report["rows"], report["valid"], report["invalid"], report["priced"]) == (3, 2, 1, 2)
    assert report["errors"] == [f"{source}, line 3: prompt: is required"]
    est = report["estimate"]
    # half of Gemini's calls fail over to the (cheaper) Leonardo: expected differs from best
    assert 0 < est["best_usd"] != est["expected_usd"] < est["worst_usd"]
    assert report["providers"][0].startswith("gemini:")
    assert not (tmp_path / "out").exists()
    code, out, _ = invoke(str(source), "--out", "out", "--emulated", "--dry-run")
    assert "dry run of" in out and "Nothing was sent" in out and "total" in out


def test_emulated_run_writes_images_and_prints_a_summary(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [{"id": f"e{i}", "prompt": f"brief {i}"}
                                             for i in range(4)])
    code, out, _ = invoke(str(source), "--out", "out", "--emulated", "--progress", "plain",
                          "--concurrency", "2")
    assert "summary" in out and "per provider" in out and "manifest:" in out
    delivered = len(list((tmp_path / "out").glob("e*.json")))
    assert delivered >= 3 and code == (0 if delivered == 4 else 1)
    code, out, _ = invoke(str(source), "--out", "out", "--emulated", "--json",
                          "--progress", "none")
    summary = json.loads(out)
    assert summary["chain"] == "demo (emulated)"
    assert summary["skipped"] == delivered and summary["delivered"] == 4 - delivered


def test_a_config_file_gives_the_chain_storage_and_concurrency(tmp_path: Path) -> None:
    (tmp_path / "fallback-chain.toml").write_text(
        'default_chain = "main"\n'
        '[chains.main]\nstorage = "images"\nconcurrency = 3\n'
        '[[chains.main.providers]]\nvendor = "openai"\nmodel = "gpt-image-2"\n'
        'images_per_minute = 6000\n')
    source = write_csv(tmp_path / "in.csv", [{"id": "x", "prompt": "a lighthouse"}])
    code, out, err = invoke(str(source), "--emulated", "--json", "--progress", "none")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["chain"] == "main (emulated)" and summary["delivered"] == 1
    assert summary["output"] == str(tmp_path / "images")
    assert json.loads((tmp_path / "images" / "x.json").read_text())["provider"] == "openai"


@pytest.mark.parametrize(("args", "message"), [
    (["missing.csv", "--out", "o", "--emulated"], "missing.csv: no such file"),
    (["in.csv", "--emulated"], "no output given: pass --out"),
    (["in.csv", "--out", "o", "--emulated", "--storage-option", "oops"],
     "expected KEY=VALUE"),
    (["bad.csv", "--out", "o", "--emulated"], "bad.csv, line 1: the first line must be a "
                                              "header naming a 'prompt' column"),
    (["in.csv", "--out", "o"], "no config file"),
])
def test_errors_are_clear_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    write_csv(tmp_path / "in.csv", [{"prompt": "p"}])
    (tmp_path / "bad.csv").write_text("text\nhello\n")
    code, out, err = invoke(*args)
    assert code == 2
    assert message in err + out
