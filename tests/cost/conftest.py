"""Fixtures for the cost tests: a clean price-catalogue cache and no stray price overrides."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fallback_chain.cost.catalogue import ENV_VAR, PriceCatalogue


@pytest.fixture(autouse=True)
def _fresh_prices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_VAR, raising=False)
    PriceCatalogue.clear_cache()
    yield
    PriceCatalogue.clear_cache()


class ManualClock:
    """A clock whose wall time the test sets (for code that only reads the time)."""

    def __init__(self, wall: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.t = wall

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()
