"""Drafts, review, finals, as a user runs them, in a real browser (headless chromium, Selenium):
`batch --draft` on the emulated demo briefs, `fallback-chain review DIR` (its page ticks two
drafts and saves DIR/selection.txt), then `finalize DIR --select DIR/selection.txt`: the finals
are exactly the ticked drafts, each linked to its draft. Screenshots of the review page and of
the finals' report are kept (see conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fallback_chain.batch.storage import Storage
from fallback_chain.report import read_selection, write_report

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "LEONARDO_API_KEY", "OPENAI_API_KEY")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (*KEY_VARS, "FALLBACK_CHAIN_CONFIG")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(work: Path, *args: str) -> dict[str, Any]:
    """A command in this process (the imports are paid once), from ``work``, ``--json``."""
    from typer.testing import CliRunner

    from fallback_chain.cli import app

    here = Path.cwd()
    os.chdir(work)
    try:
        result = CliRunner().invoke(app, [*args, "--emulated", "--progress", "none", "--json"],
                                    env={k: None for k in (*KEY_VARS, "FALLBACK_CHAIN_CONFIG")}
                                    | {"FALLBACK_CHAIN_LEDGER": str(work / "ledger.db")})
    finally:
        os.chdir(here)
    assert result.exit_code == 0, result.stdout + result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


@pytest.fixture(scope="module")
def drafts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`batch --draft` on the first six demo briefs."""
    work = tmp_path_factory.mktemp("drafts")
    lines = (ROOT / "examples" / "briefs.csv").read_text(encoding="utf-8").splitlines()
    (work / "briefs.csv").write_text("\n".join(lines[:7]) + "\n", encoding="utf-8")
    summary = _run(work, "batch", "briefs.csv", "--out", "drafts", "--draft", "--no-report")
    assert summary["delivered"] == 6
    return work / "drafts"


@pytest.fixture
def review(drafts: Path) -> Iterator[str]:
    """`fallback-chain review DRAFTS --no-open` in its own process; yields the page's URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fallback_chain.cli", "review", str(drafts), "--no-open"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("review: http://127.0.0.1:"), line + proc.stderr.read()
        assert f"selection file: {drafts / 'selection.txt'}" in line
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _tick_two_and_save(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    cards = driver.find_elements(By.CSS_SELECTOR, "#grid .card")
    ids = [c.get_attribute("data-id") for c in cards]
    driver.execute_script("arguments[0].focus()", cards[1])
    driver.switch_to.active_element.send_keys(Keys.SPACE)          # tick the second
    for _ in range(3):
        driver.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    assert driver.switch_to.active_element.get_attribute("data-id") == ids[4]
    driver.switch_to.active_element.send_keys(Keys.SPACE)          # tick the fifth
    assert driver.find_element(By.ID, "selected-count").text == "2 selected"
    driver.switch_to.active_element.send_keys("s")                 # save
    WebDriverWait(driver, 10).until(lambda d: d.find_element(
        By.ID, "save-status").get_attribute("data-state") == "saved")
    return [ids[1], ids[4]]


def test_finalize_makes_exactly_the_drafts_ticked_in_the_review_page(
        driver: Any, drafts: Path, review: str, shots: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.get(review)
    ticked = _tick_two_and_save(driver)
    shots(driver, "review-drafts")
    selection = drafts / "selection.txt"
    assert read_selection(str(selection)) == ticked

    summary = _run(drafts.parent, "finalize", "drafts", "--select", str(selection), "--out",
                   "finals", "--concurrency", "1")
    assert summary["delivered"] == 2 and summary["failed"] == 0
    finals = drafts.parent / "finals"
    sidecars = {json.loads(p.read_text())["id"]: json.loads(p.read_text())
                for p in finals.glob("*.json")}
    assert sorted(sidecars) == sorted(ticked)  # the ticked drafts, and only them
    for item_id, final in sidecars.items():
        draft = json.loads((drafts / f"{item_id}.json").read_text())
        assert final["quality"] == "final" and final["prompt"] == draft["prompt"]
        assert final["metadata"]["draft"]["id"] == item_id
        assert final["metadata"]["draft"]["images"] == [im["file"] for im in draft["images"]]

    page = finals / "report.html"
    write_report(Storage(str(finals)), str(page))
    driver.get(page.as_uri())
    cards = driver.find_elements(By.CSS_SELECTOR, "#grid .card")
    assert sorted(c.get_attribute("data-id") for c in cards) == sorted(ticked)
    shots(driver, "finals-report")
