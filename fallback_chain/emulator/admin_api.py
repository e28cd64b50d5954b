"""Emulator-only routes: image files behind expiring URLs, and the ``/_emulator`` admin API.

Admin endpoints (docs/security.md): a body is data (TOML or JSON), never a path. Every one
but ``health`` answers only a request that names a loopback host (``Host: 127.0.0.1``,
``localhost``, ``[::1]``; and the reserved ``*.test`` names in-process tests use) and carries
no cross-origin ``Origin`` (a web page cannot drive it, nor rebind a name of its own onto
127.0.0.1); with an admin token (``Emulator(admin_token=...)``, ``emulate --admin-token``),
any host is accepted from a request with ``X-Emulator-Token: <token>``, and no other:

* ``GET  /_emulator/health``  -> ``{"ok": true}``
* ``GET  /_emulator/faults``  -> the current fault configuration
* ``POST /_emulator/faults``  <- a configuration as JSON or TOML (replaces the current one)
* ``GET  /_emulator/log``     -> ``{"count", "entries"}``; filters ``vendor``, ``endpoint``,
  ``model``, ``since`` (a ``seq``)
* ``POST /_emulator/reset``   -> forget log, jobs and files; restart scripts
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import facts
from .common import VendorAPI, json_response, request_info
from .faults import Fault, FaultConfig, FaultConfigError, Rule
from .state import EmulatorState


class FilesAPI(VendorAPI):
    """``GET /_files/{token}/{name}``: logged under the vendor that made the image."""

    vendor = "files"

    def routes(self) -> list[Route]:
        return [Route("/_files/{token}/{name:path}", self.get_file, methods=["GET"])]

    def error_for(self, fault: Fault, request: Request, model: str | None,
                  rule: Rule) -> Response | None:
        status = fault.status
        if status is not None:
            return Response(f"<Error><Code>{status}</Code></Error>", status_code=status,
                            media_type="application/xml")
        return None

    async def get_file(self, request: Request) -> Response:
        stored = self.state.files.get(request.path_params["token"])
        info = request_info(request)
        info.endpoint = "image"
        if stored is None:
            info.vendor = "files"
            return Response("<Error><Code>BlobNotFound</Code></Error>", status_code=404,
                            media_type="application/xml")

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if self.state.files.is_expired(stored):
                return Response(facts.EXPIRED_URL_XML, status_code=stored.expired_status,
                                media_type="application/xml")
            return Response(stored.recipe.render(), media_type=stored.recipe.mime_type)

        # the fault rule and the log entry are those of the vendor that made the image
        return await self.guarded(request, endpoint="image", model=stored.model,
                                  handler=handle, vendor=stored.vendor)


TOKEN_HEADER = "x-emulator-token"


def _hostname(netloc: str) -> str:
    """The host of a ``Host`` header or an origin's netloc, without port or brackets."""
    host = urlsplit(f"//{netloc}").hostname
    return (host or "").lower()


def _local_name(host: str) -> bool:
    if host in ("localhost", "testserver") or host.endswith((".localhost", ".test")):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AdminAPI:
    def __init__(self, state: EmulatorState, token: str | None = None) -> None:
        self.state = state
        self.token = token

    def routes(self) -> list[Route]:
        return [
            Route("/_emulator/health", self.health, methods=["GET"]),
            Route("/_emulator/faults", self._guard(self.get_faults), methods=["GET"]),
            Route("/_emulator/faults", self._guard(self.set_faults), methods=["POST", "PUT"]),
            Route("/_emulator/log", self._guard(self.get_log), methods=["GET"]),
            Route("/_emulator/reset", self._guard(self.reset), methods=["POST"]),
        ]

    def refusal(self, request: Request) -> Response | None:
        """Why ``request`` may not use the admin API (a 401/403 answer), or None."""
        host = request.headers.get("host", "")
        origin = request.headers.get("origin")
        if origin is not None and (urlsplit(origin).netloc.lower() != host.lower()
                                   or not _local_name(_hostname(host))):
            return json_response({"error": "cross-origin requests to the admin API are "
                                           "refused"}, 403)
        if self.token is not None:
            given = request.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return json_response({"error": f"the admin API needs the {TOKEN_HEADER} "
                                               "header with the emulator's admin token"}, 401)
            return None
        if not _local_name(_hostname(host)):
            return json_response({"error": "the admin API answers requests to a loopback "
                                           "host only; start the emulator with an admin token "
                                           "(emulate --admin-token) to use it from elsewhere"},
                                 403)
        return None

    def _guard(self, handler: Any) -> Any:
        async def guarded(request: Request) -> Response:
            refused = self.refusal(request)
            if refused is not None:
                return refused
            response: Response = await handler(request)
            return response
        return guarded

    async def health(self, request: Request) -> Response:
        return json_response({"ok": True})

    async def get_faults(self, request: Request) -> Response:
        return json_response(dict(self.state.faults.config.raw))

    async def set_faults(self, request: Request) -> Response:
        text = (await request.body()).decode("utf-8", "replace")
        try:  # the body is data, never a path to read
            config = FaultConfig.from_text(text) if text.strip() else FaultConfig.load({})
        except FaultConfigError as exc:
            return json_response({"error": str(exc)}, 400)
        self.state.faults.configure(config)
        return json_response(dict(config.raw))

    async def get_log(self, request: Request) -> Response:
        q = request.query_params
        try:
            since = int(q.get("since", "0"))
        except ValueError:
            return json_response({"error": "since must be an integer"}, 400)
        entries = self.state.log.entries(vendor=q.get("vendor"), endpoint=q.get("endpoint"),
                                         model=q.get("model"), since=since)
        return json_response({"count": len(entries), "entries": [e.to_dict() for e in entries]})

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return json_response({"ok": True})
