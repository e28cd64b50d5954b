"""Fixtures for the emulator tests: an emulator on a manual clock, SDK clients wired to it
in-process, and one real loopback server shared by the module that asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import httpx2
import openai
import pytest
from google import genai
from google.genai import types

from fallback_chain.emulator import Emulator

KEY = "test-key"
BASE = "http://emulator.test"


class ManualClock:
    """A clock that only moves when told to; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: float = 1_000.0, wall_epoch: float = 1_767_225_600.0) -> None:
        self.t = start
        self.epoch = wall_epoch - start

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.epoch + self.t

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Emulator:
    return Emulator(api_keys=KEY, clock=clock)


@pytest.fixture
def http2(emu: Emulator) -> Iterator[httpx2.Client]:
    """A plain httpx2 client onto the emulator (in-process)."""
    with httpx2.Client(transport=emu.httpx2_sync_transport(), base_url=BASE) as client:
        yield client


@pytest.fixture
def oai(http2: httpx2.Client) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=f"{BASE}/v1", http_client=http2, max_retries=0,
                         timeout=2.0)


@pytest.fixture
def gem(http2: httpx2.Client) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=BASE, httpx_client=http2, timeout=2000))


@pytest.fixture
def leo(emu: Emulator) -> Iterator[httpx.Client]:
    """Leonardo is exercised with plain httpx (no SDK needed)."""
    with httpx.Client(transport=emu.httpx_sync_transport(), base_url=f"{BASE}/api/rest/v1",
                      headers={"authorization": f"Bearer {KEY}"}) as client:
        yield client


@pytest.fixture
def emulator_faults() -> dict[str, object]:
    return {}  # the emulator's own tests start every test with no faults at all
