"""docs/compare.md's examples run and say what they show."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from compare_helpers import emulated_vendors
from typer.testing import CliRunner

DOC = Path(__file__).resolve().parents[2] / "docs" / "compare.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), re.S)


def test_python_example_prints_what_the_comments_say(tmp_path):
    code = _blocks("python")[0]
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    promised = [line.strip().removeprefix("# -> ")
                for line in code.splitlines() if line.strip().startswith("# -> ")]
    assert out.splitlines() == promised
    assert (tmp_path / "sheet.png").is_file()


def test_fault_example_fails_the_runs_it_says(app, tmp_path):
    faults = tmp_path / "faults.toml"
    faults.write_text(_blocks("toml")[0] + "\n[leonardo]\njob_delay_s = 0.02\n")
    result = CliRunner().invoke(app, [
        "compare", "x", "--emulated", "--faults", str(faults), "--runs", "3",
        "--concurrency", "1", "--json", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    outcomes = {}
    for cell in json.loads(result.stdout)["cells"]:
        outcomes.setdefault(cell["label"], []).append(cell["outcome"])
    faulted = {"gemini": ["success", "content_policy", "success"],
               "openai": ["server_error", "success", "success"]}
    assert outcomes == {v: faulted.get(v, ["success"] * 3) for v in emulated_vendors()}
