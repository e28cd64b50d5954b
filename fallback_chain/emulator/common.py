"""What the three vendor APIs share: the fault pipeline, connection-level faults, helpers."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .faults import Decision, Fault, Rule
from .log import RequestInfo
from .state import EmulatorState

SCOPE_KEY = "fallback_chain.emulator"
RECORD_KEY = "fallback_chain.emulator.record"  # logs the request now (before a drop or hang)

#: Fault kinds handled at the connection level rather than by a vendor's body.
CONNECTION_KINDS = frozenset({"reset", "hang"})

WRONG_CONTENT_TYPE_HTML = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    "<h1>Checking your browser before accessing the API.</h1></body></html>")


class EmulatedDisconnect(Exception):
    """Raised out of the ASGI app to drop the connection (``kind`` is ``reset`` or ``cut``).

    Under the real server the emulator catches it and closes the socket; the in-process
    transports turn it into the HTTP library's own ``ReadError``/``RemoteProtocolError``.
    """

    def __init__(self, kind: str, *, received: int = 0, expected: int = 0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.received = received
        self.expected = expected


class ConnectionFaultResponse(Response):
    """A response that is not one: reset before headers, hang, or a body cut short."""

    def __init__(self, kind: str, *, hang_s: float = 0.0, head: Response | None = None) -> None:
        super().__init__(b"", status_code=200)
        self.kind = kind
        self.hang_s = hang_s
        self.head = head

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = scope.get(RECORD_KEY)
        if callable(record) and self.kind != "cut":
            record()
        if self.kind == "hang":
            try:
                async with asyncio.timeout(self.hang_s):
                    while (await receive())["type"] != "http.disconnect":
                        pass
            except TimeoutError:
                pass
            raise EmulatedDisconnect("reset")
        if self.kind == "cut" and self.head is not None:
            body = bytes(self.head.body)
            await send({"type": "http.response.start", "status": self.head.status_code,
                        "headers": self.head.raw_headers})
            half = body[: len(body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            raise EmulatedDisconnect("cut", received=len(half), expected=len(body))
        raise EmulatedDisconnect("reset")


def request_info(request: Request) -> RequestInfo:
    info = request.scope.get(SCOPE_KEY)
    if not isinstance(info, RequestInfo):  # called outside Emulator.__call__ (e.g. bare router)
        info = RequestInfo(method=request.method, path=request.url.path)
        request.scope[SCOPE_KEY] = info
    return info


def retry_after_headers(fmt: str, seconds: float, wall_now: float) -> dict[str, str]:
    """Retry hint headers in one of the formats the OpenAI SDK reads."""
    headers: dict[str, str] = {}
    if fmt in ("seconds", "both"):
        headers["retry-after"] = str(max(0, math.ceil(seconds)))
    if fmt == "http-date":
        headers["retry-after"] = formatdate(wall_now + seconds, usegmt=True)
    if fmt in ("ms", "both"):
        headers["retry-after-ms"] = str(round(seconds * 1000))
    return headers


def fmt_seconds(seconds: float) -> str:
    """``12`` or ``3.7`` (no trailing zeros), as vendors print delays."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def truncated(response: Response) -> Response:
    """The same response with its body cut in half (framing stays consistent)."""
    body = bytes(response.body)
    headers = {k: v for k, v in response.headers.items()
               if k.lower() not in ("content-length", "content-type")}
    return Response(body[: max(1, len(body) // 2)], status_code=response.status_code,
                    headers=headers, media_type=response.media_type or "application/json")


async def json_body(request: Request) -> tuple[Any, str | None]:
    """The parsed JSON body, or ``(None, problem)``."""
    raw = await request.body()
    if not raw:
        return None, "empty body"
    try:
        return json.loads(raw), None
    except ValueError as exc:
        return None, str(exc)


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


Handler = Callable[[Fault | None, Rule], Awaitable[Response]]


class VendorAPI:
    """Base of the vendor APIs: runs a handler under the fault decision for its request."""

    vendor = ""
    #: This vendor's own fault kinds (besides ``faults.COMMON_KINDS``).
    fault_kinds: frozenset[str] = frozenset()
    #: What ``malformed`` picks from (seeded): a 200 the client cannot use.
    malformed_kinds: tuple[str, ...] = ("truncated", "html")
    #: How a 429's Retry-After is given unless the fault configuration says otherwise.
    retry_after_format = "seconds"
    #: Routes of APIs with a lower number come first (a more specific path before a general one).
    route_order = 0

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return []

    def claims_models_route(self, request: Request, model: str = "") -> bool:
        """Whether ``GET /v1/models[/{model}]`` (a path more than one vendor uses) is this
        vendor's: the APIs are asked in ``route_order``; the first that says yes answers."""
        return False

    async def list_models(self, request: Request) -> Response:
        raise NotImplementedError

    async def get_model(self, request: Request, model: str) -> Response:
        raise NotImplementedError

    def note(self, request: Request, endpoint: str, model: str | None = None) -> RequestInfo:
        """Mark the request as this vendor's (so it is logged even if refused early)."""
        info = request_info(request)
        info.vendor, info.endpoint = self.vendor, endpoint
        if model is not None:
            info.model = model
        return info

    def error_for(self, fault: Fault, request: Request, model: str | None,
                  rule: Rule) -> Response | None:
        """The error response a fault stands for, or None if the handler applies it."""
        raise NotImplementedError

    async def guarded(self, request: Request, *, endpoint: str, model: str | None,
                      handler: Handler, prompt: str | None = None,
                      params: dict[str, Any] | None = None,
                      vendor: str | None = None) -> Response:
        vendor = vendor or self.vendor
        info = request_info(request)
        info.vendor, info.endpoint, info.model = vendor, endpoint, model
        if prompt is not None:
            info.prompt = prompt
        if params is not None:
            info.params = params
        decision: Decision = self.state.faults.decide(vendor, model, endpoint)
        fault, rule = decision.fault, decision.rule
        info.fault = fault.kind if fault else None
        info.drawn = decision.drawn
        if decision.latency_s > 0:
            await self.state.clock.sleep(decision.latency_s)
        if fault is not None and fault.kind in CONNECTION_KINDS:
            return ConnectionFaultResponse(fault.kind, hang_s=fault.hang_s or rule.hang_s)
        if fault is not None and fault.kind == "html":
            return HTMLResponse(WRONG_CONTENT_TYPE_HTML, status_code=200)
        response = self.error_for(fault, request, model, rule) if fault is not None else None
        if response is None:
            response = await handler(fault, rule)
        if fault is not None and fault.kind == "truncated":
            return truncated(response)
        if fault is not None and fault.kind == "cut":
            return ConnectionFaultResponse("cut", head=response)
        return response


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=headers)
