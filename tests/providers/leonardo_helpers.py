"""Helpers for the Leonardo adapter tests: an emulator on virtual time, a provider wired to it
in-process, a chain runner, and a transport wrapper that rewrites or reroutes traffic."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from job_helpers import Harness, run_chain

from fallback_chain.cost.catalogue import PriceCatalogue
from fallback_chain.emulator import Emulator
from fallback_chain.emulator.leonardo_api import credits_for
from fallback_chain.providers.leonardo.adapter import LeonardoProvider

__all__ = ["BASE", "KEY", "LEONARDO", "PROMPT", "WrappingTransport", "emulator", "provider",
           "rehost_images", "run_chain", "submissions", "to_emulator", "usd"]

KEY = "test-key"
BASE = "http://emulator.test"
PROMPT = "a lighthouse at dusk"
#: Leonardo answers after 5 ms and finishes jobs after 4 s (virtual).
LEONARDO = Harness("leonardo", LeonardoProvider, KEY, BASE, job_delay_s=4.0)
emulator, provider = LEONARDO.emulator, LEONARDO.provider


def submissions(emu: Emulator) -> int:
    """How many jobs Leonardo (the emulator) was asked to create."""
    return LEONARDO.calls(emu)


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
