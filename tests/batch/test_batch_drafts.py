"""Drafts, then finals, on the emulated demo briefs (examples/briefs.csv): ``batch --draft``
makes every row at draft quality on the cheapest expected order; ``finalize`` makes finals of
the chosen ones at final quality, linked to their drafts; both resume; the dry runs price both
stages."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fallback_chain.batch.drafts import DraftsError, draft_row, final_rows
from fallback_chain.cli import app

BRIEFS = Path(__file__).resolve().parents[2] / "examples" / "briefs.csv"


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FALLBACK_CHAIN_CONFIG", raising=False)
    monkeypatch.delenv("FALLBACK_CHAIN_LEDGER", raising=False)
    monkeypatch.chdir(tmp_path)


def cli(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, [*args, "--emulated", "--json"])
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout)


def sidecar(folder: Path, name: str) -> dict:
    return json.loads((folder / f"{name}.json").read_text())


def test_drafts_then_finals_of_the_demo_briefs_resume(tmp_path: Path) -> None:
    with BRIEFS.open() as fh:
        briefs = {r["id"]: r for r in csv.DictReader(fh)}
    code, drafts = cli("batch", str(BRIEFS), "--out", "d", "--draft", "--concurrency", "1",
                       "--progress", "none")
    assert code == 0 and drafts["delivered"] == len(briefs) and drafts["failed"] == 0
    d = tmp_path / "d"
    for brief_id, brief in briefs.items():
        draft = sidecar(d, brief_id)
        assert draft["quality"] == "draft" and draft["prompt"] == brief["prompt"]
        assert isinstance(draft["seed"], int)  # fixed now, so the final can reuse it
    # the cheapest expected order: the demo's OpenAI model is the cheapest at draft quality
    assert set(drafts["providers"]) == {"openai"}
    code, again = cli("batch", str(BRIEFS), "--out", "d", "--draft", "--progress", "none")
    assert code == 0 and again["skipped"] == len(briefs) and again["cost_usd"] == 0

    (tmp_path / "ids.txt").write_text("hero-lighthouse\n# not this one: social-city\n"
                                      "social-fox\n")
    code, priced = cli("finalize", "d", "--select", "ids.txt", "--out", "f", "--dry-run")
    assert code == 0 and priced["priced"] == 2 and priced["estimate"]["expected_usd"] > 0
    assert not (tmp_path / "f").exists()  # a dry run writes nothing
    code, finals = cli("finalize", "d", "--select", "ids.txt", "--out", "f",
                       "--progress", "none")
    assert code == 0 and finals["delivered"] == 2
    f = tmp_path / "f"
    for brief_id in ("hero-lighthouse", "social-fox"):
        draft, final = sidecar(d, brief_id), sidecar(f, brief_id)
        assert final["quality"] == "final"
        assert (final["prompt"], final["seed"], final["n"]) == (
            draft["prompt"], draft["seed"], draft["n"])
        assert final["size_requested"] == draft["size_requested"]
        link = final["metadata"]["draft"]
        assert (link["id"], link["sidecar"]) == (brief_id, f"{brief_id}.json")
        assert link["images"] == [im["file"] for im in draft["images"]]
        assert link["provider"] == draft["provider"]
        assert {k: v for k, v in final["metadata"].items() if k != "draft"} == \
            draft["metadata"]
    assert not (f / "social-city.json").exists()
    code, resumed = cli("finalize", "d", "--select", "ids.txt", "--out", "f",
                        "--progress", "none")
    assert code == 0 and resumed["skipped"] == 2 and resumed["cost_usd"] == 0
    code, rest = cli("finalize", "d", "--all", "--out", "f", "--progress", "none",
                     "--concurrency", "1")
    # one demo brief is refused on content grounds by the final-quality chain (by design)
    assert code == 3 and rest["failed_by_reason"] == {"content_policy": 1}
    assert rest["skipped"] == 2 and rest["delivered"] == len(briefs) - 3


def test_the_draft_dry_run_prices_both_stages(tmp_path: Path) -> None:
    code, report = cli("batch", str(BRIEFS), "--out", "d", "--draft", "--dry-run")
    assert code == 0 and not (tmp_path / "d").exists()
    draft, final = report["draft"], report["final"]
    assert draft["priced"] == final["priced"] == 12
    assert 0 < draft["estimate"]["expected_usd"] < final["estimate"]["expected_usd"]
    first = draft["estimate"]["steps"][0]["label"]
    assert first.startswith("openai:")  # the cheapest provider for drafts comes first


def test_finalize_needs_a_selection_and_known_ids(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["finalize", "d", "--out", "f", "--json"])
    assert result.exit_code == 2 and "--select IDS_FILE or --all" in result.stdout
    with pytest.raises(DraftsError, match="not a folder of drafts"):
        final_rows(tmp_path / "nothing", None)


def test_a_draft_row_keeps_its_seed_or_gets_one_from_its_prompt() -> None:
    assert draft_row({"prompt": "a fox", "seed": "7"}, True) == {
        "prompt": "a fox", "seed": "7", "quality": "draft"}
    derived = draft_row({"prompt": "a fox", "quality": "final"}, False)
    assert derived["quality"] == "draft" and isinstance(derived["seed"], int)
    assert derived == draft_row({"prompt": "a fox"}, False)  # stable across runs
