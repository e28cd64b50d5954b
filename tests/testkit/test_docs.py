"""docs/testing.md: its Python examples run as written, and say what they print."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "testing.md").read_text()
BLOCKS = {block.split("\n", 1)[0].removeprefix("# ").strip(): block
          for block in re.findall(r"```python\n(.*?)```", DOC, flags=re.S)}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def test_the_example_test_file_passes_with_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_my_autopilot.py").write_text(BLOCKS["test_my_autopilot.py"])
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -q\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_the_record_and_replay_script_prints_what_the_page_says(tmp_path: Path) -> None:
    (tmp_path / "record_and_replay.py").write_text(BLOCKS["record_and_replay.py"])
    done = subprocess.run([sys.executable, "record_and_replay.py"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    said = re.search(r"It prints `(.*?)`", DOC, flags=re.S)
    assert said is not None
    assert done.stdout.strip() == " ".join(said[1].split())


def test_the_cassette_example_is_a_cassette_of_this_format() -> None:
    from fallback_chain.cassette.format import FORMAT

    example = json.loads(re.findall(r"```json\n(.*?)```", DOC, flags=re.S)[0])
    assert example["format"] == FORMAT
    assert set(example) == {"format", "sequence", "vendor", "endpoint", "recorded_at",
                            "request", "response", "error"}
