"""Constants shared by the compare tests (a module with a unique name, so it imports cleanly
next to other test folders' helpers)."""

from __future__ import annotations

KEY = "compare-test-key"
#: No latency, quick Leonardo jobs: the emulator as fast as it goes.
FAST: dict[str, object] = {"leonardo": {"job_delay_s": 0.02}}


def emulated_vendors() -> list[str]:
    """What ``compare --emulated`` compares by default: every vendor the emulator serves
    (the registry's, so a new vendor joins these tests without an edit), in label order."""
    from fallback_chain import registry

    return sorted(registry.where(lambda cls: cls.emulator_api is not None))
