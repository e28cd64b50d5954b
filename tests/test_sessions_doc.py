"""docs/sessions.md: its Python examples run as written, in order, and print what it says."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "sessions.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)


def test_the_examples_run_and_print_what_the_doc_shows(tmp_path, monkeypatch, capsys):
    assert len(BLOCKS) == 2
    monkeypatch.chdir(tmp_path)
    for index, block in enumerate(BLOCKS):
        script = tmp_path / f"example_{index}.py"
        script.write_text(block)
        runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("generate a lighthouse at dusk -> gemini ['gemini:success']")
    assert out[1].startswith("edit make the sky purple -> gemini ['gemini:success']")
    assert out[2].startswith("edit same scene at night -> openai ['gemini:rate_limited', "
                             "'leonardo:skipped', 'openai:success']")
    hashes = [re.findall(r"'([0-9a-f]{8})'", line) for line in out[4:8]]
    assert [line.split()[:2] for line in out[4:8]] == [
        ["gemini", "200"], ["gemini", "200"], ["gemini", "429"], ["openai", "200"]]
    first, second = hashes[1][0], hashes[2][1]
    assert hashes == [[], [first], [first, second], [second]]
    assert out[8].startswith("3 steps $") and out[8].split()[-1] == out[3].split()[-1]
    assert out[9] == "undid: add a full moon | now same scene at night"
    assert (tmp_path / "night.png").is_file()
    saved = sorted(p.name for p in (tmp_path / "lighthouse-session").iterdir())
    assert saved == ["session.json", "step-000.png", "step-001.png", "step-002.png"]
