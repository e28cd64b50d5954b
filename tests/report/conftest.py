"""Fixtures for the report tests: headless chromium driven by Selenium through Debian's
chromedriver (``scripts/test`` installs both; Selenium never downloads anything), and a place
for screenshots: the pytest temporary folder, copied to ``$FC_ARTIFACTS`` when it is set."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--window-size=1400,1000")


@pytest.fixture(scope="session")
def driver() -> Iterator[Any]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: the browser tests need Debian's chromium and "
                        "chromium-driver (scripts/test installs them: apt-get install "
                        "chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager fetch a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Shots:
    """``shots(driver, name)``: save a screenshot as a test artifact."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, browser: Any, name: str) -> Path:
        path = self.folder / f"{name}.png"
        assert browser.save_screenshot(str(path)), name
        target = os.environ.get("FC_ARTIFACTS")
        if target:
            os.makedirs(target, exist_ok=True)
            shutil.copy(path, os.path.join(target, path.name))
        return path


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Shots:
    return Shots(tmp_path_factory.mktemp("screenshots"))
