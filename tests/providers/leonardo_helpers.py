"""Helpers for the Leonardo adapter tests: an emulator on virtual time, a provider wired to it
in-process, a chain runner, and a transport wrapper that rewrites or reroutes traffic."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from fallback_chain import Chain, ChainResult, ImageRequest
from fallback_chain.clock import Clock
from fallback_chain.cost.catalogue import PriceCatalogue
from fallback_chain.emulator import Emulator
from fallback_chain.emulator.leonardo_api import credits_for
from fallback_chain.errors import ChainError
from fallback_chain.provider import Provider
from fallback_chain.providers.leonardo.adapter import LeonardoProvider
from fallback_chain.vtime import run_virtual

KEY = "test-key"
BASE = "http://emulator.test"
PROMPT = "a lighthouse at dusk"


def emulator(script: Any = None, *, clock: Clock, **settings: Any) -> Emulator:
    """An emulator whose Leonardo answers after 5 ms and finishes jobs after 4 s (virtual)."""
    section: dict[str, Any] = {"latency": 5, "job_delay_s": 4.0, **settings}
    if script is not None:
        section["script"] = script
    return Emulator(faults={"leonardo": section}, api_keys=KEY, clock=clock)


def provider(emu: Emulator, clock: Clock, **kw: Any) -> LeonardoProvider:
    kw.setdefault("api_key", KEY)
    kw.setdefault("base_url", BASE)
    kw.setdefault("transport", emu.httpx_transport())
    return LeonardoProvider(clock=clock, **kw)


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


def submissions(emu: Emulator) -> int:
    """How many jobs Leonardo (the emulator) was asked to create."""
    return emu.log.count(vendor="leonardo", endpoint="generate")


def usd(width: int, height: int, n: int, alchemy: bool = True) -> float:
    """What the emulator bills for a job, in USD at the catalogue's credit rate."""
    rate = PriceCatalogue.default().usd_per_credit("leonardo")
    assert rate is not None
    return credits_for(width, height, n, alchemy) * rate


Rewrite = Callable[[httpx.Request, Any], Any]


class WrappingTransport(httpx.AsyncBaseTransport):
    """Sits between the provider and an inner transport (the emulator).

    ``reroute(request)`` may return a different request to send inward (e.g. CDN → emulator);
    ``rewrite_poll(request, body)`` may change the JSON of poll answers. ``seen`` keeps every
    request the provider made, as the provider made it.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *,
                 reroute: Callable[[httpx.Request], httpx.Request] | None = None,
                 rewrite_poll: Rewrite | None = None) -> None:
        self.inner = inner
        self.reroute = reroute
        self.rewrite_poll = rewrite_poll
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        outgoing = self.reroute(request) if self.reroute else request
        response = await self.inner.handle_async_request(outgoing)
        is_poll = (request.method == "GET" and "/api/rest/v1/generations/" in request.url.path)
        if self.rewrite_poll is None or not is_poll or response.status_code != 200:
            return response
        await response.aread()
        body = self.rewrite_poll(request, json.loads(response.content))
        return httpx.Response(200, json=body, request=request)

    def hosts(self) -> list[str]:
        return [r.url.host for r in self.seen]


def to_emulator(request: httpx.Request) -> httpx.Request:
    """Send a request meant for another host to the emulator instead (same path)."""
    if request.url.host == "emulator.test":
        return request
    return httpx.Request(request.method, request.url.copy_with(scheme="http",
                                                                host="emulator.test", port=None),
                         headers=[(k, v) for k, v in request.headers.raw if k.lower() != b"host"],
                         content=request.content)


def rehost_images(new_prefix: str) -> Rewrite:
    """A poll rewrite that moves every image URL to ``new_prefix`` (keeping its path)."""
    def rewrite(_request: httpx.Request, body: Any) -> Any:
        gen = body.get("generations_by_pk") or {}
        for img in gen.get("generated_images") or []:
            path = httpx.URL(img["url"]).path
            img["url"] = new_prefix.rstrip("/") + path
        return body
    return rewrite
