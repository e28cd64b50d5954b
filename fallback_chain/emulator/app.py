"""The emulator application: one ASGI app for every emulated vendor API (the registered
adapters that name one: OpenAI, Gemini and Leonardo here), with faults.

    from fallback_chain.emulator import Emulator
    emu = Emulator(faults={"openai": {"script": "429,500,ok"}}, api_keys="test-key")
    # in-process:  httpx2.AsyncClient(transport=emu.httpx2_transport(), base_url=...)
    # real server: with serve_in_thread(emu) as base_url: ...
    emu.log.count(vendor="openai")          # attempts seen by the server
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import socket
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Message, Receive, Scope, Send

from fallback_chain.clock import SYSTEM_CLOCK, Clock

from .admin_api import AdminAPI, FilesAPI
from .common import RECORD_KEY, SCOPE_KEY, EmulatedDisconnect, VendorAPI, json_response
from .faults import FaultConfig, FaultEngine, emulated_apis
from .log import LogEntry, RequestInfo, RequestLog
from .state import EmulatorState, IdSource, normalise_keys

if TYPE_CHECKING:
    import httpx
    import httpx2

    from .replay import Replay

FaultSource = FaultConfig | Mapping[str, Any] | str | Path | None

DEFAULT_API_KEY = "test-key"


class Emulator:
    """An ASGI application emulating the three vendors; also the Python control API.

    ``faults``: a ``FaultConfig``, a mapping, TOML/JSON text or a path (see
    ``fallback_chain.emulator.faults``). ``api_keys``: one key for every vendor, a mapping
    per vendor, or ``None`` to accept any non-empty key. ``clock``: time for latencies, job
    delays and URL expiry (``fallback_chain.clock.Clock``). ``seed`` overrides the
    configuration's seed. ``max_log_entries``, ``max_jobs`` and ``max_files`` bound the
    request log, the Leonardo jobs and the images kept behind URLs (oldest forgotten first).
    ``vary_images``: draw a different placeholder on every call, per vendor, as the real
    services do without a seed (``compare --emulated`` uses it); by default the same prompt
    always gives the same bytes. ``admin_token``: require it (``X-Emulator-Token``) on the
    ``/_emulator`` admin API, which otherwise answers loopback requests only (docs/security.md).
    ``replay``: a cassette folder written by
    ``fallback_chain.cassette.Recorder``; vendor requests are answered with the recorded
    responses, in order (``fallback_chain.emulator.replay``).
    """

    def __init__(self, faults: FaultSource = None, *,
                 api_keys: str | Mapping[str, str] | None = DEFAULT_API_KEY,
                 clock: Clock | None = None, seed: int | None = None,
                 max_log_entries: int = 100_000, max_jobs: int = 50_000,
                 max_files: int = 50_000, vary_images: bool = False,
                 admin_token: str | None = None,
                 replay: str | Path | None = None) -> None:
        config = self._with_seed(FaultConfig.load(faults), seed)
        self.state = EmulatorState(
            api_keys=normalise_keys(api_keys), faults=FaultEngine(config),
            clock=clock or SYSTEM_CLOCK, log=RequestLog(max_log_entries),
            ids=IdSource(config.seed), max_jobs=max_jobs, max_files=max_files,
            vary_images=vary_images)
        #: The emulated vendor APIs, by vendor id (from the vendor registry), in route order.
        self.apis: dict[str, VendorAPI] = dict(sorted(
            ((vendor, api(self.state)) for vendor, api in emulated_apis().items()),
            key=lambda item: item[1].route_order))
        from .batch_jobs import BatchJobs
        from .batch_routes import batch_routes

        #: Vendor batch jobs (OpenAI Batches, Gemini Batch Mode): ``emu.batches.configure()``.
        self.batches = BatchJobs(self.state)
        routes: list[Route] = [
            *batch_routes(self.state, self.batches),
            *(route for api in self.apis.values() for route in api.routes()),
            Route("/v1/models", self._list_models, methods=["GET"]),
            Route("/v1/models/{model}", self._get_model, methods=["GET"]),
            *FilesAPI(self.state).routes(),
            *AdminAPI(self.state, admin_token).routes(),
        ]
        self._router = Router(routes=routes, default=self._not_found)
        self.replay: Replay | None = None
        if replay is not None:
            from .replay import Replay
            self.replay = Replay(replay)

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._router(scope, receive, send)
            return
        info = RequestInfo(method=scope["method"], path=scope["path"])
        started = time.perf_counter()
        recorded = False

        def record() -> None:
            """Log the request once, before the client can see the answer (or the drop)."""
            nonlocal recorded
            if not recorded and info.vendor is not None:
                recorded = True
                self.state.log.record(info, time=self.state.clock.wall(),
                                      latency_ms=(time.perf_counter() - started) * 1000)

        scope[SCOPE_KEY] = info
        scope[RECORD_KEY] = record

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                info.status = message["status"]
                record()
            await send(message)

        try:
            if self.replay is not None:
                await self.replay.serve(scope, receive, capture, self._router)
            else:
                await self._router(scope, receive, capture)
        except EmulatedDisconnect as exc:
            record()
            if not await _drop_connection(send, exc.kind):
                raise  # in-process: the transport turns it into the library's own error
        except ClientDisconnect:
            pass  # the client left while its body was being read: no one to answer (logged
            # below with no status), and not an error of the application
        finally:
            record()

    # ------------------------------------------------------------------ Python control API

    @property
    def faults(self) -> FaultConfig:
        return self.state.faults.config

    def set_faults(self, faults: FaultSource) -> FaultConfig:
        """Replace the fault configuration (restarts every script and random stream)."""
        config = FaultConfig.load(faults)
        self.state.faults.configure(config)
        return config

    def load_faults(self, path: str | Path) -> FaultConfig:
        return self.set_faults(Path(path))

    def script(self, vendor: str, script: str | list[Any], *, model: str | None = None,
               **settings: Any) -> FaultConfig:
        """Set one vendor's (or one model's) script, keeping the rest of the configuration.

        ``emu.script("openai", "429,500,ok")``; extra keyword arguments set other keys of
        the same section (``rates=...``, ``retry_after=...``, ``job_delay_s=...``).
        """
        if vendor not in self.apis:
            raise ValueError(f"vendor must be one of {tuple(self.apis)}, not {vendor!r}")
        raw = copy.deepcopy(dict(self.faults.raw))
        section = raw.setdefault(vendor, {})
        if model is not None:
            section = section.setdefault("models", {}).setdefault(model, {})
        section["script"] = script
        section.update(settings)
        return self.set_faults(raw)

    @property
    def log(self) -> RequestLog:
        return self.state.log

    def requests(self, *, vendor: str | None = None, endpoint: str | None = None,
                 model: str | None = None) -> list[LogEntry]:
        """Logged requests, oldest first (``emu.requests(vendor="gemini")``)."""
        return self.state.log.entries(vendor=vendor, endpoint=endpoint, model=model)

    def reset(self) -> None:
        """Forget requests, jobs and image files; restart scripts (configuration kept)."""
        self.state.reset()  # the batch jobs too (they register with the state)
        if self.replay is not None:
            self.replay.rewind()

    # ------------------------------------------------------------------ in-process transports

    def httpx_transport(self) -> httpx.AsyncBaseTransport:
        from .transport import HttpxAsyncTransport
        return HttpxAsyncTransport(self)

    def httpx_sync_transport(self) -> httpx.BaseTransport:
        from .transport import HttpxSyncTransport
        return HttpxSyncTransport(self)

    def httpx2_transport(self) -> httpx2.AsyncBaseTransport:
        from .transport import Httpx2AsyncTransport
        return Httpx2AsyncTransport(self)

    def httpx2_sync_transport(self) -> httpx2.BaseTransport:
        from .transport import Httpx2SyncTransport
        return Httpx2SyncTransport(self)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _with_seed(config: FaultConfig, seed: int | None) -> FaultConfig:
        if seed is None:
            return config
        return FaultConfig({**config.raw, "seed": seed})

    def __getattr__(self, name: str) -> VendorAPI:
        """``emu.openai``, ``emu.gemini``, ...: one vendor's emulated API."""
        apis = self.__dict__.get("apis", {})
        if name in apis:
            api: VendorAPI = apis[name]
            return api
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _models_api(self, request: Request, model: str = "") -> VendorAPI:
        for api in self.apis.values():
            if api.claims_models_route(request, model):
                return api
        raise LookupError("no emulated API serves GET /v1/models")

    async def _list_models(self, request: Request) -> Response:
        return await self._models_api(request).list_models(request)

    async def _get_model(self, request: Request) -> Response:
        model = request.path_params["model"]
        return await self._models_api(request, model).get_model(request, model)

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path.startswith("/api/rest/"):
            response: Response = json_response(
                {"error": f"no route for {method} {path}", "path": "$", "code": "not-found"},
                404)
        elif path.startswith("/v1beta/") or ":" in path:
            response = json_response({"error": {"code": 404, "message": f"No route for "
                                                f"{method} {path}", "status": "NOT_FOUND"}}, 404)
        else:
            response = json_response({"error": {
                "message": f"Invalid URL ({method} {path})", "type": "invalid_request_error",
                "param": None, "code": None}}, 404)
        await response(scope, receive, send)


async def _drop_connection(send: Send, kind: str) -> bool:
    """Close the real socket under uvicorn: RST for ``reset``, FIN for ``cut``.

    Returns False when no socket is reachable (in-process), so the caller re-raises.
    """
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    if not isinstance(transport, asyncio.Transport):
        return False
    if kind == "reset":
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    for _ in range(200):  # let connection_lost run so uvicorn does not answer a 500
        if getattr(owner, "disconnected", True):
            break
        await asyncio.sleep(0.005)
    return True
