"""Helpers shared by the adapter tests that run against the emulator on virtual time: one
vendor's emulator, its adapter wired to it in-process (:class:`Harness`), and a chain runner.

Each vendor's tests keep their names (``emulator``, ``provider``, ``calls``) as a harness's
bound methods, e.g. ``emulator, provider = FAL.emulator, FAL.provider``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fallback_chain import Chain, ChainResult, ImageRequest
from fallback_chain.clock import Clock
from fallback_chain.emulator import Emulator
from fallback_chain.errors import ChainError
from fallback_chain.provider import Provider
from fallback_chain.vtime import run_virtual

P = TypeVar("P", bound=Provider)


@dataclass(frozen=True)
class Harness(Generic[P]):
    """``vendor``'s emulator section (answers after 5 ms, jobs done after ``job_delay_s``
    virtual seconds unless the section says otherwise) and ``adapter`` wired to it."""

    vendor: str
    adapter: type[P]
    key: str
    base: str
    job_delay_s: float | None = None

    def emulator(self, script: Any = None, *, clock: Clock, **settings: Any) -> Emulator:
        section: dict[str, Any] = {"latency": 5}
        if self.job_delay_s is not None:
            section["job_delay_s"] = self.job_delay_s
        section.update(settings)
        if script is not None:
            section["script"] = script
        return Emulator(faults={self.vendor: section}, api_keys=self.key, clock=clock)

    def provider(self, emu: Emulator, clock: Clock, **kw: Any) -> P:
        kw.setdefault("api_key", self.key)
        kw.setdefault("base_url", self.base)
        kw.setdefault("transport", emu.httpx_transport())
        return self.adapter(clock=clock, **kw)

    def calls(self, emu: Emulator, endpoint: str = "generate") -> int:
        """How many requests of ``endpoint`` kind the emulator logged for this vendor."""
        return emu.log.count(vendor=self.vendor, endpoint=endpoint)


def run_chain(providers: Sequence[Provider], request: ImageRequest, *, clock: Clock,
              **chain_kw: Any) -> tuple[ChainResult | None, ChainError | None]:
    """``request`` through a chain of ``providers`` on virtual time: ``(result, None)`` or
    ``(None, error)``."""
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
