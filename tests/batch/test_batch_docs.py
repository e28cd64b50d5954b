"""docs/batch.md's Python example runs as written, and the options it lists exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "batch.md"


def test_the_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    block = re.search(r"## Python\n\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").mkdir()  # the example reads examples/briefs.csv
    (tmp_path / "examples" / "briefs.csv").write_text(
        "id,prompt\nfox,a red fox\ncat,a cat\nfox2,a red fox\n")
    exec(compile(block.group(1), str(DOC), "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.split()[:3] == ["3", "0", "0.02"]  # one shared
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "cat.png", "fox.png", "fox2.png"]
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 2


def test_every_documented_option_exists() -> None:
    import typer
    from typer.main import get_command

    from fallback_chain.cli.batch import batch

    app = typer.Typer()
    app.command()(batch)
    names = {opt for p in get_command(app).params for opt in p.opts}
    table = DOC.read_text().split("## Options", 1)[1].split("Exit codes", 1)[0]
    documented = set(re.findall(r"`(--[a-z-]+)", table))
    assert documented and documented <= names | {"--no-retry-failed"}, documented - names
