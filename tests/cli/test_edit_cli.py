"""``fallback-chain edit IMAGE "instruction"``: one edit through the configured chain, alone or
as a step of an edit session kept in a folder (``--session``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fallback_chain.imaging import placeholder_image

FAKES = '''
default_chain = "main"
[chains.main]
[[chains.main.providers]]
vendor = "fake"
name = "first"
options = { script = [429], price_usd = 0.02 }
[[chains.main.providers]]
vendor = "fake"
name = "second"
options = { price_usd = 0.03 }
'''


@pytest.fixture
def start(tmp_path: Path) -> Path:
    path = tmp_path / "start.png"
    path.write_bytes(placeholder_image(128, 96, seed=5))
    return path


def test_edit_alone_falls_back_and_writes_the_image(run, write, start, tmp_path):
    write(FAKES)
    doc = run.json("edit", str(start), "make it blue")
    assert doc["ok"] and doc["provider"] == "second"
    assert [(a["provider"], a["outcome"]) for a in doc["attempts"]] == [
        ("first", "rate_limited"), ("second", "success")]
    assert doc["cost_usd"] == pytest.approx(0.03) and doc["steps"] == 2
    out = Path(doc["image"])
    assert out == Path("start-edited.png") and (tmp_path / out).is_file()
    assert hashlib.sha256((tmp_path / out).read_bytes()).hexdigest() == doc["sha256"]


def test_session_folder_is_created_then_continued(run, write, start, tmp_path):
    write(FAKES)
    first = run.json("edit", str(start), "make it blue", "--session", "work")
    assert first["image"] == str(Path("work") / "step-001.png")
    second = run.json("edit", first["image"], "add a moon", "--session", "work")
    assert second["steps"] == 3 and second["image"] == str(Path("work") / "step-002.png")
    assert second["session_cost_usd"] == pytest.approx(first["cost_usd"] + second["cost_usd"])
    doc = json.loads((tmp_path / "work" / "session.json").read_text())
    assert [(s["kind"], s["instruction"]) for s in doc["steps"]] == [
        ("input", ""), ("edit", "make it blue"), ("edit", "add a moon")]
    # an image that is not the session's current one is refused, and nothing is spent
    result = run("edit", str(start), "again", "--session", "work", code=2)
    assert "not the current image" in result.output
    assert len(json.loads((tmp_path / "work" / "session.json").read_text())["steps"]) == 3


def test_mask_of_another_size_is_refused(run, write, start, tmp_path):
    write(FAKES)
    mask = tmp_path / "mask.png"
    mask.write_bytes(placeholder_image(64, 64, seed=1))
    result = run("edit", str(start), "remove it", "--mask", str(mask), code=2)
    assert "mask is 64x64" in result.output


def test_emulated_demo_chain_edits_on_gemini(run, start, tmp_path):
    doc = run.json("edit", str(start), "make the sky purple", "--emulated", "--session", "w")
    assert doc["provider"] == "gemini" and doc["cost_usd"] > 0
    assert (tmp_path / "w" / "step-001.png").is_file()
