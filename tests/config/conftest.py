"""Fixtures for the config tests: no stray keys or config paths from the environment, a helper
that writes a config file, and one loopback emulator for the module that asks for it."""

from __future__ import annotations

import pytest
from config_helpers import KEY, KEY_VARS


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def emulator_key() -> str:
    return KEY
