"""The pytest plugin of fallback-chain (loaded by pytest through the ``pytest11`` entry point
when the ``testing`` extra is installed). Fixtures:

* ``fc_emulator``: an :class:`~fallback_chain.testing.EmulatorKit` per test (the emulated
  vendor APIs, adapters wired to them in-process, fault scripts). Mark a test
  ``@pytest.mark.fc_faults({"openai": {"script": "429,ok"}})`` to start with those faults.
* ``fake_chain``: a :class:`~fallback_chain.testing.FakeChainFactory`
  (``fake_chain("429,ok", "ok")``).
* ``virtual_clock``: a :class:`~fallback_chain.testing.VirtualTime` (``virtual_clock.clock``
  for the chain, ``virtual_clock.run(coro)`` to run on virtual time).

Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .kit import EmulatorKit, FakeChainFactory, VirtualTime


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fc_faults(faults): the fault configuration fc_emulator starts with "
        "(a mapping, TOML text or a path; fallback-chain's emulator)")


@pytest.fixture
def fc_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorKit]:
    """An emulator of the vendor APIs for this test, with adapters wired to it."""
    from .kit import EmulatorKit, faults_of

    marker = request.node.get_closest_marker("fc_faults")
    faults = faults_of(marker.args, marker.kwargs) if marker is not None else None
    kit = EmulatorKit(faults)
    yield kit
    kit.close()


@pytest.fixture
def fake_chain() -> Iterator[FakeChainFactory]:
    """Build chains of fake providers from fault scripts: ``fake_chain("429,ok", "ok")``."""
    from .kit import FakeChainFactory

    factory = FakeChainFactory()
    yield factory
    factory.close()


@pytest.fixture
def virtual_clock() -> Iterator[VirtualTime]:
    """Virtual time for this test: build chains with ``clock=virtual_clock.clock`` and run
    them with ``virtual_clock.run(chain.agenerate(...))``."""
    from .kit import VirtualTime

    vt = VirtualTime()
    yield vt
    vt.close()
