"""The report and the review page in a real browser (headless chromium, Selenium): the
report `batch` writes for the emulated demo renders, its filters work, the refusal shows its
reason, markup in a prompt stays inert, and the review page's ticks round-trip into the
selection file. Screenshots are kept (see conftest.py)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from report_helpers import PLANTED, make_batch

from fallback_chain.batch.storage import Storage
from fallback_chain.report import read_selection, write_report
from fallback_chain.report.review import ReviewServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "LEONARDO_API_KEY", "OPENAI_API_KEY")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`fallback-chain batch examples/briefs.csv --out DIR --emulated`, run as a user would;
    it writes DIR/report.html at the end."""
    work = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env["OPENAI_API_KEY"] = PLANTED  # must not reach the report (the emulator needs none)
    proc = subprocess.run(
        [sys.executable, "-m", "fallback_chain.cli", "batch",
         str(ROOT / "examples" / "briefs.csv"), "--out", "out", "--emulated",
         "--progress", "none"],
        cwd=work, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # delivered all but the refusal
    assert "report: out/report.html" in proc.stdout
    return work / "out"


def _latest(out: Path) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for line in (out / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("type") == "item":
            latest[record["id"]] = record
    return latest


def _delivered(out: Path) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in _latest(out).items() if r["status"] == "delivered"}


def _visible_cards(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return [c for c in driver.find_elements(By.CSS_SELECTOR, "#grid .card") if c.is_displayed()]


def _no_errors(driver: Any) -> None:
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors


def test_the_demo_report_renders_every_delivered_item(driver: Any, demo: Path,
                                                       shots: Any) -> None:
    from selenium.webdriver.common.by import By

    html = (demo / "report.html").read_text(encoding="utf-8")
    assert PLANTED not in html
    driver.get((demo / "report.html").as_uri())
    delivered = _delivered(demo)
    cards = driver.find_elements(By.CSS_SELECTOR, "#grid .card")
    assert len(cards) == len(delivered) == len(_visible_cards(driver)) == 11
    assert {c.get_attribute("data-id") for c in cards} == set(delivered)
    assert driver.find_element(By.ID, "shown-count").text == "(11 of 11)"
    first = cards[0].find_element(By.TAG_NAME, "img")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                 first) > 0
    assert len(driver.find_elements(By.CSS_SELECTOR, "#charts svg.chart")) == 2
    _no_errors(driver)
    shots(driver, "report")


def test_a_provider_filter_hides_the_other_providers(driver: Any, demo: Path,
                                                    shots: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.get((demo / "report.html").as_uri())
    by_provider: dict[str, list[str]] = {}
    for item_id, record in _delivered(demo).items():
        by_provider.setdefault(record["provider"], []).append(item_id)
    assert len(by_provider) >= 2  # the demo falls back from Gemini at least once
    provider = "leonardo" if "leonardo" in by_provider else min(by_provider)
    chip = driver.find_element(By.CSS_SELECTOR,
                               f'.chip[data-filter="provider"][data-value="{provider}"]')
    chip.click()
    shown = _visible_cards(driver)
    assert sorted(c.get_attribute("data-id") for c in shown) == sorted(by_provider[provider])
    assert {c.get_attribute("data-provider") for c in shown} == {provider}
    assert "active" in chip.get_attribute("class").split()
    assert driver.find_element(By.ID, "shown-count").text == (
        f"({len(by_provider[provider])} of 11)")
    shots(driver, f"report-filter-{provider}")
    chip.click()  # again: the filter is off
    assert len(_visible_cards(driver)) == 11


def test_the_refusal_is_shown_with_its_reason(driver: Any, demo: Path, shots: Any) -> None:
    from selenium.webdriver.common.by import By

    # which brief meets the emulator's scripted refusal depends on the batch's concurrency
    refused = [r for r in _latest(demo).values() if r["status"] == "failed"]
    assert [r["reason"] for r in refused] == ["content_policy"]
    with (ROOT / "examples" / "briefs.csv").open(encoding="utf-8") as fh:
        prompt = {row["id"]: row["prompt"] for row in csv.DictReader(fh)}[refused[0]["id"]]
    driver.get((demo / "report.html").as_uri())
    row = driver.find_element(By.CSS_SELECTOR,
                              f'#failures tr.failure[data-id="{refused[0]["id"]}"]')
    assert row.is_displayed() and row.get_attribute("data-outcome") == "refused"
    assert "IMAGE_SAFETY" in row.find_element(By.CSS_SELECTOR, ".reason").text
    assert prompt in row.text  # the prompt, from the failures file
    driver.find_element(By.CSS_SELECTOR,
                        '.chip[data-filter="outcome"][data-value="refused"]').click()
    assert _visible_cards(driver) == [] and row.is_displayed()
    driver.execute_script("arguments[0].scrollIntoView()", row)
    shots(driver, "report-refused")


def test_markup_in_a_prompt_stays_inert_in_the_browser(driver: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    out = make_batch(tmp_path / "out")
    page = tmp_path / "r.html"
    write_report(Storage(str(out)), str(page))
    driver.get(page.as_uri())
    assert driver.execute_script("return window.PWNED === undefined")
    card = driver.find_element(By.CSS_SELECTOR, '.card[data-id="a-cat"] .prompt')
    assert "<script>window.PWNED=1</script>" in card.text
    assert PLANTED not in driver.page_source
    _no_errors(driver)


def test_review_ticks_round_trip_into_the_selection_file(driver: Any, demo: Path,
                                                        tmp_path: Path, shots: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    selection = tmp_path / "selection.txt"
    server = ReviewServer(Storage(str(demo)), str(selection))
    server.start()
    try:
        driver.get(server.url)
        cards = driver.find_elements(By.CSS_SELECTOR, "#grid .card")
        ids = [c.get_attribute("data-id") for c in cards]
        driver.execute_script("arguments[0].focus()", cards[0])
        body = driver.switch_to.active_element
        body.send_keys(Keys.SPACE)                      # tick the first
        driver.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
        driver.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
        assert driver.switch_to.active_element.get_attribute("data-id") == ids[2]
        driver.switch_to.active_element.send_keys(Keys.SPACE)   # tick the third
        driver.switch_to.active_element.send_keys(Keys.ENTER)   # open its details
        assert cards[2].find_element(By.TAG_NAME, "details").get_attribute("open") is not None
        assert driver.find_element(By.ID, "selected-count").text == "2 selected"
        driver.switch_to.active_element.send_keys("s")          # save
        WebDriverWait(driver, 10).until(lambda d: d.find_element(
            By.ID, "save-status").get_attribute("data-state") == "saved")
        shots(driver, "review")
        assert read_selection(str(selection)) == [ids[0], ids[2]]
        assert selection.read_text(encoding="utf-8") == f"{ids[0]}\n{ids[2]}\n"
        driver.refresh()  # the saved selection comes back ticked
        picked = driver.find_elements(By.CSS_SELECTOR, "#grid .card.picked")
        assert [c.get_attribute("data-id") for c in picked] == [ids[0], ids[2]]
        assert driver.find_element(By.ID, "selected-count").text == "2 selected"
        _no_errors(driver)
    finally:
        server.stop()
