"""Fixtures for the batch tests; helpers live in ``batch_helpers``."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def prompts() -> list[dict[str, Any]]:
    return [{"id": f"item-{i:03d}", "prompt": f"brief number {i}", "size": "64x64"}
            for i in range(12)]
