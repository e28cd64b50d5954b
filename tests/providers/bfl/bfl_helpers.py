"""Helpers of the BFL tests: an emulator on virtual time, the adapter wired to it in-process,
and a chain runner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fallback_chain import Chain, ChainResult, ImageRequest
from fallback_chain.clock import Clock
from fallback_chain.emulator import Emulator
from fallback_chain.errors import ChainError
from fallback_chain.provider import Provider
from fallback_chain.providers.bfl import BFLProvider
from fallback_chain.vtime import run_virtual

KEY = "bfl-test-key"
BASE = "http://emulator.test/bfl"
PROMPT = "a lighthouse at dusk"


def emulator(script: Any = None, *, clock: Clock, **settings: Any) -> Emulator:
    """An emulator whose BFL answers after 5 ms and finishes tasks after 3 s (virtual)."""
    section: dict[str, Any] = {"latency": 5, "job_delay_s": 3.0, **settings}
    if script is not None:
        section["script"] = script
    return Emulator(faults={"bfl": section}, api_keys=KEY, clock=clock)


def provider(emu: Emulator, clock: Clock, **kw: Any) -> BFLProvider:
    kw.setdefault("api_key", KEY)
    kw.setdefault("base_url", BASE)
    kw.setdefault("transport", emu.httpx_transport())
    return BFLProvider(clock=clock, **kw)


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
    return emu.log.count(vendor="bfl", endpoint=endpoint)
