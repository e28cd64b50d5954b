"""docs/quality.md's examples run and print what their comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "quality.md"


def _promised(code: str) -> list[str]:
    """The expected output: every ``# text`` comment after a print, and ``# [...]`` lines."""
    out = []
    for line in code.splitlines():
        stripped = line.strip()
        if stripped.startswith("print(") and "  # " in line:
            out.append(line.rsplit("  # ", 1)[1].strip())
        elif stripped.startswith("# ["):
            out.append(stripped.removeprefix("# "))
    return out


def _run(code: str, tmp_path: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_every_example_prints_what_it_says(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 3
    for code in blocks:
        promised = _promised(code)
        assert promised
        assert _run(code, tmp_path) == promised


def test_the_drafts_commands_run_and_resume(tmp_path: Path, monkeypatch) -> None:
    import json
    import shutil

    from typer.testing import CliRunner

    from fallback_chain.cli import app

    monkeypatch.delenv("FALLBACK_CHAIN_CONFIG", raising=False)
    monkeypatch.delenv("FALLBACK_CHAIN_LEDGER", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").mkdir()
    shutil.copy(DOC.parents[1] / "examples" / "briefs.csv", tmp_path / "examples")
    (tmp_path / "picked.txt").write_text("hero-lighthouse\nsocial-fox\n")
    block = re.findall(r"```console\n(.*?)```", DOC.read_text(), re.S)[0]
    commands = [line.removeprefix("$ fallback-chain ").split() for line in block.splitlines()]
    summaries = []
    for args in commands:
        done = CliRunner().invoke(app, [*args, "--json", "--concurrency", "1"]
                                  if "--dry-run" not in args else [*args, "--json"])
        assert done.exit_code == 0, done.output
        summaries.append(json.loads(done.stdout))
    priced, drafts, finals, again = summaries
    assert priced["draft"]["priced"] == priced["final"]["priced"] == drafts["delivered"] == 12
    assert finals["delivered"] == 2 and finals["cost_usd"] > 0
    assert again["skipped"] == 2 and again["cost_usd"] == 0
