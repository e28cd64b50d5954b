"""Helpers of the fal tests: an emulator on virtual time, the adapter wired to it in-process,
and a chain runner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fallback_chain import Chain, ChainResult, ImageRequest
from fallback_chain.clock import Clock
from fallback_chain.emulator import Emulator
from fallback_chain.errors import ChainError
from fallback_chain.provider import Provider
from fallback_chain.providers.fal import FalProvider
from fallback_chain.vtime import run_virtual

KEY = "fal-test-key"
BASE = "http://emulator.test/fal"
PROMPT = "a lighthouse at dusk"


def emulator(script: Any = None, *, clock: Clock, **settings: Any) -> Emulator:
    """An emulator whose fal answers after 5 ms and completes requests after 3 s (virtual)."""
    section: dict[str, Any] = {"latency": 5, "job_delay_s": 3.0, **settings}
    if script is not None:
        section["script"] = script
    return Emulator(faults={"fal": section}, api_keys=KEY, clock=clock)


def provider(emu: Emulator, clock: Clock, **kw: Any) -> FalProvider:
    kw.setdefault("api_key", KEY)
    kw.setdefault("base_url", BASE)
    kw.setdefault("transport", emu.httpx_transport())
    return FalProvider(clock=clock, **kw)


def run_chain(providers: Sequence[Provider], request: ImageRequest, *, clock: Clock,
              **chain_kw: Any) -> tuple[ChainResult | None, ChainError | None]:
    chain_kw.setdefault("attempt_timeout_s", 30.0)
    chain = Chain(list(providers), clock=clock, log=False, **chain_kw)

    async def go() -> tuple[ChainResult | None, ChainError | None]:
        try:
            return await chain.agenerate(request), None
        except ChainError as exc:
            return None, exc
        finally:
            await chain.aclose()

    return run_virtual(go())


def calls(emu: Emulator, endpoint: str = "generate") -> int:
    return emu.log.count(vendor="fal", endpoint=endpoint)
