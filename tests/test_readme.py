"""The README's Python examples run as written, and its two commands exist."""

from __future__ import annotations

import os
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / f"example_{index}.py"
    script.write_text(BLOCKS[index])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    if "lighthouse.png" in BLOCKS[index]:
        assert (tmp_path / "lighthouse.png").is_file()
        assert "openai 1 success" in out
        assert "leonardo 2 server_error 500" in out


@pytest.mark.parametrize("command", re.findall(r"^(scripts/\w+)", README, flags=re.M))
def test_readme_commands_exist(command):
    path = ROOT / command
    assert path.is_file()
    assert os.access(path, os.X_OK)
