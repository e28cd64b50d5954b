"""Helpers of the BFL tests: an emulator on virtual time (BFL answers after 5 ms and finishes
tasks after 3 s), the adapter wired to it in-process, and a chain runner."""

from __future__ import annotations

from job_helpers import Harness, run_chain

from fallback_chain.providers.bfl import BFLProvider

__all__ = ["BASE", "BFL", "KEY", "PROMPT", "calls", "emulator", "provider", "run_chain"]

KEY = "bfl-test-key"
BASE = "http://emulator.test/bfl"
PROMPT = "a lighthouse at dusk"
BFL = Harness("bfl", BFLProvider, KEY, BASE, job_delay_s=3.0)
emulator, provider, calls = BFL.emulator, BFL.provider, BFL.calls
