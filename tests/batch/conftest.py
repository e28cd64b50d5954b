"""Fixtures for the batch tests; helpers live in ``batch_helpers``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fallback_chain.emulator import Emulator, serve_in_thread

#: The key the vendor-batch tests' emulator accepts.
VENDOR_BATCH_KEY = "vb-key"


@pytest.fixture
def prompts() -> list[dict[str, Any]]:
    return [{"id": f"item-{i:03d}", "prompt": f"brief number {i}", "size": "64x64"}
            for i in range(12)]


# The vendor-batch tests' emulator (test_vendor_batch*.py): one loopback server per module,
# reset for each test.
@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Emulator, str]]:
    emu = Emulator(api_keys=VENDOR_BATCH_KEY)
    with serve_in_thread(emu) as url:
        yield emu, url


@pytest.fixture
def emu(live: tuple[Emulator, str]) -> Emulator:
    live[0].reset()
    live[0].batches.configure()
    return live[0]


@pytest.fixture
def url(live: tuple[Emulator, str]) -> str:
    return live[1]
