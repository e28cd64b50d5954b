"""Fixtures shared by every test folder.

``live`` is one real emulator server on a free loopback port per test module; ``server`` hands
it out reset (log, jobs, scripts) with ``emulator_faults`` applied. A folder overrides
``emulator_key`` or ``emulator_faults`` when it needs another key or other faults.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fallback_chain.emulator import Emulator, serve_in_thread


@pytest.fixture(scope="module")
def emulator_key() -> str:
    return "test-key"


@pytest.fixture
def emulator_faults() -> dict[str, Any]:
    return {"leonardo": {"job_delay_s": 0.05}}


@pytest.fixture(scope="module")
def live(emulator_key: str) -> Iterator[tuple[Emulator, str]]:
    emulator = Emulator(api_keys=emulator_key)
    with serve_in_thread(emulator) as base_url:
        yield emulator, base_url


@pytest.fixture
def server(live: tuple[Emulator, str], emulator_faults: dict[str, Any]) -> tuple[Emulator, str]:
    emulator, base_url = live
    emulator.set_faults(emulator_faults)
    emulator.reset()
    return emulator, base_url


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """``write(text, name="fallback-chain.toml")``: dedent ``text`` into a file, return its path."""

    def _write(text: str, name: str = "fallback-chain.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write
