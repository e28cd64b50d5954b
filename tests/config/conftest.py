"""Fixtures for the config tests: no stray keys or config paths from the environment, a helper
that writes a config file, and one loopback emulator for the module that asks for it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from config_helpers import KEY, KEY_VARS

from fallback_chain.emulator import Emulator, serve_in_thread


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """``write(text, name="fallback-chain.toml")``: dedent ``text`` into a file, return its path."""

    def _write(text: str, name: str = "fallback-chain.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Emulator, str]]:
    emulator = Emulator(api_keys=KEY)
    with serve_in_thread(emulator) as base_url:
        yield emulator, base_url


@pytest.fixture
def server(live: tuple[Emulator, str]) -> tuple[Emulator, str]:
    emulator, base_url = live
    emulator.set_faults({"leonardo": {"job_delay_s": 0.05}})
    emulator.reset()
    return emulator, base_url
