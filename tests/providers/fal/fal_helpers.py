"""Helpers of the fal tests: an emulator on virtual time (fal answers after 5 ms and completes
requests after 3 s), the adapter wired to it in-process, and a chain runner."""

from __future__ import annotations

from job_helpers import Harness, run_chain

from fallback_chain.providers.fal import FalProvider

__all__ = ["BASE", "FAL", "KEY", "PROMPT", "calls", "emulator", "provider", "run_chain"]

KEY = "fal-test-key"
BASE = "http://emulator.test/fal"
PROMPT = "a lighthouse at dusk"
FAL = Harness("fal", FalProvider, KEY, BASE, job_delay_s=3.0)
emulator, provider, calls = FAL.emulator, FAL.provider, FAL.calls
