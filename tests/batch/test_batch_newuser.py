"""What a new user tripped on in ``batch`` (issue 14, section 4): exit codes when a brief is
refused, clean errors for a bad output or a missing input before anything is written,
consistent counts, request errors in our own words, the emulated ledger and readable output
in 80 columns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from batch_helpers import fake_chain, run, write_csv
from typer.testing import CliRunner

from fallback_chain.cli.batch import EXIT_REFUSED, exit_code
from fallback_chain.cli.batch import batch as batch_command
from fallback_chain.providers import FakeProvider

app = typer.Typer()
app.command("batch")(batch_command)


@app.callback()
def _root() -> None:
    """A one-command app (the real CLI registers the same function)."""


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FALLBACK_CHAIN_CONFIG", raising=False)
    monkeypatch.delenv("FALLBACK_CHAIN_LEDGER", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["batch", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    return result.exit_code, result.stdout, result.stderr


# ------------------------------------------------------------------------------ item 1

def test_a_refused_brief_is_exit_code_3_and_another_failure_is_1(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [{"prompt": "a red fox"},
                                             {"prompt": "a weapon on a table"}])
    picky = FakeProvider("picky", blocked_terms=["weapon"], image_size=(64, 64))
    refused = run(fake_chain(picky), source, tmp_path / "a")
    assert refused.delivered == 1 and refused.failed == 1 and refused.refused == 1
    assert exit_code(refused) == EXIT_REFUSED == 3

    broken = FakeProvider("broken", script=["ok", 500, 500, 500, 500], image_size=(64, 64))
    exhausted = run(fake_chain(broken), write_csv(tmp_path / "two.csv", [
        {"prompt": "one"}, {"prompt": "two"}]), tmp_path / "b")
    assert exhausted.failed == 1 and exhausted.refused == 0
    assert exit_code(exhausted) == 1
    assert exit_code(run(fake_chain(), source, tmp_path / "c")) == 0


def test_exit_codes_are_documented_in_help_and_the_demo_script() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    text = " ".join(out.replace("│", " ").split())
    assert "3 every row delivered except rows refused on content grounds" in text
    script = (Path(__file__).resolve().parents[2] / "scripts" / "demo").read_text()
    assert '"$status" -eq 3' in script and "Exit codes: 0" in script


# ------------------------------------------------------------------------------ items 3, 4

def test_an_output_that_is_a_file_is_a_clean_usage_error(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [{"prompt": "a red fox"}])
    (tmp_path / "notadir.txt").write_text("keep me")
    for out in ("notadir.txt", "notadir.txt/sub"):
        code, stdout, err = invoke(str(source), "--out", out, "--emulated", "--progress",
                                   "none")
        assert code == 2, (out, stdout, err)
        assert err.startswith(f"error: {out}: ") and "Traceback" not in err + stdout
    assert (tmp_path / "notadir.txt").read_text() == "keep me"


def test_a_missing_input_writes_nothing(tmp_path: Path) -> None:
    code, _, err = invoke("nosuch.csv", "--out", "o2", "--emulated", "--progress", "none")
    assert code == 2 and "nosuch.csv: no such file" in err
    assert not (tmp_path / "o2").exists()


# ------------------------------------------------------------------------------ item 15

def test_counts_agree_and_request_errors_are_in_our_words(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [
        {"prompt": "a red fox", "quality": "standard"},
        {"prompt": "a blue fox", "quality": "best"},
        {"prompt": "a weapon", "quality": "draft"}])
    picky = FakeProvider("picky", blocked_terms=["weapon"], image_size=(64, 64))
    summary = run(fake_chain(picky), source, tmp_path / "out")
    assert (summary.delivered, summary.failed, summary.invalid_rows) == (1, 1, 1)
    assert summary.failed_by_reason == {"content_policy": 1}
    assert sum(summary.failed_by_reason.values()) == summary.failed
    with (tmp_path / "out" / "failures.csv").open() as fh:
        errors = [row["error"] for row in csv.DictReader(fh)]
    invalid = next(e for e in errors if "quality" in e)
    assert "must be one of draft, standard, final (got 'best')" in invalid
    assert "Input should" not in invalid


def test_several_images_are_named_id_tilde_n(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [{"id": "fox", "prompt": "a red fox", "n": "2"}])
    run(fake_chain(), source, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("fox*")) == [
        "fox.json", "fox~1.png", "fox~2.png"]


# ------------------------------------------------------------------------------ items 7, 13

def test_the_emulated_batch_keeps_a_ledger_and_its_summary_fits_80_columns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_csv(tmp_path / "in.csv", [{"prompt": f"brief {i}"} for i in range(4)])
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = invoke(str(source), "--out", "out", "--emulated", "--progress", "none")
    assert code in (0, 1, 3), out
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "per provider" in out and "spent: $0." in out  # as header: value blocks
    ledger = tmp_path / "fallback-chain-emulated-ledger.db"
    assert ledger.is_file()
    from fallback_chain.cost.ledger import Ledger

    with Ledger(ledger, create=False) as book:
        assert book.count() >= 4
    summary = json.loads(invoke(str(source), "--out", "out", "--emulated", "--json",
                                "--progress", "none")[1])
    assert summary["skipped"] >= 1  # resumed; nothing twice
