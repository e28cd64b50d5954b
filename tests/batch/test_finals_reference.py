"""A final is asked with its draft as a reference image: the emulator's request log shows the
draft's bytes in the final's request to every provider whose model takes a reference (Gemini's
inline image parts, GPT Image's edits endpoint); a provider that takes none (Leonardo) is still
called, without the reference, and its attempt says the reference was dropped. The dry run
still prices the finals."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fallback_chain.cli import app
from fallback_chain.demo import KEY
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.walk.reference import DROPPED

BRIEFS = ('id,prompt,size,quality,n\n'
          'fox,"a red fox in fresh snow",1:1,standard,1\n'
          'mug,"a product shot of a ceramic mug on linen",1024x1024,standard,1\n')


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FALLBACK_CHAIN_CONFIG", raising=False)
    monkeypatch.setenv("FALLBACK_CHAIN_LEDGER", str(tmp_path / "ledger.db"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def emulator() -> Iterator[tuple[Emulator, str]]:
    # Gemini and Leonardo always fail, so each final walks the whole demo chain: Gemini is
    # asked (with the reference), Leonardo (without), then OpenAI's edits endpoint delivers
    emu = Emulator(faults={"gemini": {"rates": {"500": 1.0}}, "leonardo": {"rates": {"500": 1.0}},
                           "default": {"latency": {"dist": "fixed", "ms": 1}}},
                   api_keys=KEY, seed=3)
    with serve_in_thread(emu) as url:
        yield emu, url


def cli(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_the_final_request_carries_the_draft_image(
        tmp_path: Path, emulator: tuple[Emulator, str]) -> None:
    emu, url = emulator
    (tmp_path / "briefs.csv").write_text(BRIEFS)
    code, drafts = cli("batch", "briefs.csv", "--out", "d", "--draft", "--emulator", url,
                       "--emulator-key", KEY, "--progress", "none", "--no-report")
    assert code == 0 and drafts["delivered"] == 2
    draft = json.loads((tmp_path / "d" / "fox.json").read_text())
    draft_sha = [im["sha256"] for im in draft["images"]]
    assert draft_sha == [hashlib.sha256((tmp_path / "d" / im["file"]).read_bytes()).hexdigest()
                         for im in draft["images"]]

    (tmp_path / "ids.txt").write_text("fox\n")
    code, priced = cli("finalize", "d", "--select", "ids.txt", "--out", "f", "--dry-run",
                       "--emulated")
    assert code == 0 and priced["priced"] == 1 and priced["estimate"]["expected_usd"] > 0

    since = emu.log.entries()[-1].seq
    code, finals = cli("finalize", "d", "--select", "ids.txt", "--out", "f",
                       "--emulator", url, "--emulator-key", KEY, "--progress", "none")
    assert code == 0 and finals["delivered"] == 1
    calls = [e for e in emu.log.entries(since=since) if e.endpoint == "generate"]
    by_vendor = {v: [e for e in calls if e.vendor == v] for v in ("gemini", "leonardo", "openai")}
    assert all(by_vendor.values()), [(e.vendor, e.path) for e in calls]
    # Gemini and GPT Image were given the draft's bytes; Leonardo (no reference) was not
    assert {e.input_images for e in by_vendor["gemini"]} == {tuple(draft_sha)}
    assert [e.input_images for e in by_vendor["openai"]] == [tuple(draft_sha)]
    assert by_vendor["openai"][0].path == "/v1/images/edits"
    assert all(e.input_images == () for e in by_vendor["leonardo"])

    final = json.loads((tmp_path / "f" / "fox.json").read_text())
    assert final["provider"] == "openai" and final["quality"] == "final"
    assert final["metadata"]["draft"]["id"] == "fox"  # the sidecar links final to draft
    leonardo = [a for a in final["attempts"] if a["provider"] == "leonardo"]
    assert leonardo and all(a["message"].startswith(DROPPED) for a in leonardo)
    assert not any((a["message"] or "").startswith(DROPPED)
                   for a in final["attempts"] if a["provider"] != "leonardo")
    assert not (tmp_path / "f" / "mug.json").exists()


def test_the_draft_dry_run_prices_both_stages(tmp_path: Path) -> None:
    (tmp_path / "briefs.csv").write_text(BRIEFS)
    code, report = cli("batch", "briefs.csv", "--out", "d", "--draft", "--dry-run",
                       "--emulated")
    assert code == 0 and report["draft"]["priced"] == report["final"]["priced"] == 2
    assert 0 < report["draft"]["estimate"]["expected_usd"] < \
        report["final"]["estimate"]["expected_usd"]
