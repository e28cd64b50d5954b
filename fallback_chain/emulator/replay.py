"""Replay mode: ``Emulator(replay="cassettes/")`` answers the vendor requests it recognises
with the recorded responses, in order (``fallback_chain.cassette``).

A request matches the next unused cassette with the same method and path (the model is in the
path for Gemini; Leonardo's poll path holds the recorded job id). Image placeholders become real
images of the recorded format and size; a recorded connection failure is replayed as one
(``reset``, ``cut``; a ``timeout`` hangs until the client gives up). A vendor request with no
cassette left gets a 404 naming it; the emulator's own routes (``/_emulator/...``) still work.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fallback_chain.cassette.format import Cassette, load_cassettes
from fallback_chain.cassette.scrub import expand, image_for

from .common import SCOPE_KEY, EmulatedDisconnect

_HANG_S = 3600.0
_URL = re.compile(r"^https?://[^/?#]+(?P<path>/[^?#]*)")


class Replay:
    """The recorded answers of one cassette folder, consumed in order per (method, path)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.cassettes = load_cassettes(self.directory)
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], deque[Cassette]] = defaultdict(deque)
        self.rewind()

    def rewind(self) -> None:
        """Start again from the first cassette."""
        with self._lock:
            self._queues.clear()
            for c in self.cassettes:
                self._queues[(c.method, c.path_key)].append(c)

    def take(self, method: str, path: str) -> Cassette | None:
        with self._lock:
            queue = self._queues.get((method, path))
            return queue.popleft() if queue else None

    def claims(self, path: str) -> bool:
        return not path.startswith("/_emulator")

    def recorded_paths(self) -> frozenset[str]:
        """Paths of recorded GETs (image downloads), so URLs to them can point here."""
        return frozenset(c.path_key for c in self.cassettes if c.method == "GET")

    async def serve(self, scope: Scope, receive: Receive, send: Send, fallback: ASGIApp) -> None:
        method, path = scope["method"], scope["path"]
        if not self.claims(path):
            await fallback(scope, receive, send)
            return
        cassette = self.take(method, path)
        info = scope.get(SCOPE_KEY)
        if cassette is None and path.startswith("/_files"):
            await fallback(scope, receive, send)
            return
        if cassette is None:
            body = {"error": {"message": f"fallback-chain replay: no recorded exchange left for "
                                         f"{method} {path}", "code": "not_recorded"}}
            await Response(json.dumps(body), 404, media_type="application/json")(
                scope, receive, send)
            return
        if info is not None:
            info.vendor, info.endpoint = cassette.vendor, cassette.endpoint
            info.fault = f"replay:{cassette.path.name}"
        while (await receive()).get("more_body"):
            pass  # read the request body before answering
        await _answer(cassette, scope, receive, send, self.recorded_paths())


def _origin(scope: Scope) -> str:
    host = dict(scope.get("headers") or []).get(b"host", b"emulator.test").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}"


def _here(value: Any, origin: str, paths: frozenset[str]) -> Any:
    """Recorded URLs of recorded downloads, pointed at this emulator (the CDN's were
    scrubbed of their signatures, and the recording's host may be gone)."""
    if isinstance(value, str):
        m = _URL.match(value)
        return origin + m["path"] if m is not None and m["path"] in paths else value
    if isinstance(value, list):
        return [_here(v, origin, paths) for v in value]
    if isinstance(value, dict):
        return {k: _here(v, origin, paths) for k, v in value.items()}
    return value


async def _answer(cassette: Cassette, scope: Scope, receive: Receive, send: Send,
                  paths: frozenset[str]) -> None:
    if cassette.error == "timeout":
        await asyncio.sleep(_HANG_S)
        raise EmulatedDisconnect("reset")
    if cassette.error is not None or cassette.response is None:
        raise EmulatedDisconnect("reset")
    recorded = cassette.response
    headers = dict(recorded.get("headers") or {})
    if "body_image" in recorded:
        content = image_for(str(recorded["body_image"])) or b""
    elif "body" in recorded:
        content = json.dumps(_here(expand(recorded["body"]), _origin(scope), paths)).encode()
    else:
        content = str(recorded.get("body_text", "")).encode()
    headers.pop("content-length", None)
    await Response(content, int(recorded["status"]), headers=headers)(scope, receive, send)
