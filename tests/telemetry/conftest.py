"""The ``otel`` fixture: in-memory OpenTelemetry providers, shut down after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otel_helpers import Otel


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.close()
