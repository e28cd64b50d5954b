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
    assert len(blocks) == 2
    for code in blocks:
        promised = _promised(code)
        assert promised
        assert _run(code, tmp_path) == promised
