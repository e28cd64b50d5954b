"""A testing kit for code that embeds fallback-chain: a pytest plugin with fixtures
(``fc_emulator``, ``fake_chain``, ``virtual_clock``) and assertion helpers that read well in a
failing test. Install the ``testing`` extra; pytest loads the plugin by itself (its
``pytest11`` entry point). See ``docs/testing.md``.

    from fallback_chain.testing import assert_attempts, assert_cost, assert_served_by
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .asserts import assert_attempts, assert_cost, assert_served_by, describe_attempts
    from .kit import EmulatorKit, FakeChainFactory, VirtualTime

__all__ = ["EmulatorKit", "FakeChainFactory", "VirtualTime", "assert_attempts", "assert_cost",
           "assert_served_by", "describe_attempts"]

_WHERE = {
    "assert_attempts": ".asserts", "assert_cost": ".asserts", "assert_served_by": ".asserts",
    "describe_attempts": ".asserts", "EmulatorKit": ".kit", "FakeChainFactory": ".kit",
    "VirtualTime": ".kit",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
