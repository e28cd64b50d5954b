"""Emulator-only routes: image files behind expiring URLs, and the ``/_emulator`` admin API.

Admin endpoints (no auth; the emulator is meant for loopback):

* ``GET  /_emulator/health``  -> ``{"ok": true}``
* ``GET  /_emulator/faults``  -> the current fault configuration
* ``POST /_emulator/faults``  <- a configuration as JSON or TOML (replaces the current one)
* ``GET  /_emulator/log``     -> ``{"count", "entries"}``; filters ``vendor``, ``endpoint``,
  ``model``, ``since`` (a ``seq``)
* ``POST /_emulator/reset``   -> forget log, jobs and files; restart scripts
"""

from __future__ import annotations

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


class AdminAPI:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route("/_emulator/health", self.health, methods=["GET"]),
            Route("/_emulator/faults", self.get_faults, methods=["GET"]),
            Route("/_emulator/faults", self.set_faults, methods=["POST", "PUT"]),
            Route("/_emulator/log", self.get_log, methods=["GET"]),
            Route("/_emulator/reset", self.reset, methods=["POST"]),
        ]

    async def health(self, request: Request) -> Response:
        return json_response({"ok": True})

    async def get_faults(self, request: Request) -> Response:
        return json_response(dict(self.state.faults.config.raw))

    async def set_faults(self, request: Request) -> Response:
        text = (await request.body()).decode("utf-8", "replace")
        try:
            config = FaultConfig.load(text if text.strip() else {})
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
