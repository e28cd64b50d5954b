"""``Recorder``: writes one cassette per vendor exchange, at the HTTP layer.

``Chain(providers, recorder=Recorder("cassettes/"))`` hands the recorder to every adapter that
supports recording (OpenAI, Gemini, Leonardo: their ``record_with`` hook); the adapter wraps
the transport of each HTTP client it uses (httpx or httpx2; a client lent with
``http_client=`` is wrapped in place), so every request and answer passes through
:meth:`Recorder.exchange` untouched and a scrubbed copy is written (see ``scrub``).
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from ..secrets import redact
from .format import FORMAT, endpoint_of
from .scrub import placeholder_for, request_shape, scrub

#: Response headers a cassette keeps (and any ``x-ratelimit-*``); values are redacted.
KEPT_HEADERS = frozenset({"content-type", "retry-after", "retry-after-ms", "x-request-id",
                          "request-id", "x-goog-quota-reason"})
#: Headers dropped when the answer is handed back (the body is already decoded).
_TRANSFER_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class Recorder:
    """Record every vendor exchange of a chain into ``directory`` (created if missing).

    ``include_prompt``: keep the prompt in the request shape (off by default: prompts can be
    private). ``clock``: the time written as ``recorded_at``. Files are numbered in the order
    the answers arrive, continuing after any cassettes already in the folder.
    """

    def __init__(self, directory: str | Path, *, include_prompt: bool = False,
                 clock: Clock | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.include_prompt = include_prompt
        self.clock = clock or SYSTEM_CLOCK
        start = max((_sequence_of(p) for p in self.directory.glob("*.json")), default=0)
        self._counter = itertools.count(start + 1)
        self._lock = threading.Lock()
        self.written: list[Path] = []

    def attach(self, chain: Any) -> Any:
        """Record an already built chain's exchanges (what ``Chain(recorder=...)`` does);
        call it before the chain's first request. Returns the chain."""
        for provider in chain.providers:
            hook = getattr(provider, "record_with", None)
            if hook is not None:
                hook(self)
        return chain

    # ------------------------------------------------------------------ the adapters' hook

    def wrap_client(self, client: Any, vendor: str) -> Any:
        """Route ``client``'s requests (an ``httpx``/``httpx2`` ``AsyncClient``) through this
        recorder; returns the client. Wrapping twice is a no-op."""
        inner = client._transport  # httpx and httpx2 keep the default transport here
        if not isinstance(inner, RecordingTransport):
            client._transport = RecordingTransport(inner, self, vendor)
        return client

    # ------------------------------------------------------------------ writing

    def write(self, vendor: str, request: Any, body: bytes, status: int | None,
              headers: Any, content: bytes | None, error: str | None) -> Path:
        """Write one exchange (called by :class:`RecordingTransport`)."""
        method, path = str(request.method), str(request.url.path)
        doc: dict[str, Any] = {
            "format": FORMAT, "sequence": 0, "vendor": vendor,
            "endpoint": endpoint_of(vendor, method, path),
            "recorded_at": datetime.fromtimestamp(self.clock.wall(), UTC)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "request": {"method": method, "path": redact(path),
                        "shape": _shape(request, body, self.include_prompt)},
            "response": None if status is None else _response(status, headers, content),
            "error": error,
        }
        with self._lock:
            doc["sequence"] = sequence = next(self._counter)
            target = self.directory / f"{sequence:04d}-{vendor}-{doc['endpoint']}.json"
            # a last pass over the whole text: nothing registered as a secret survives
            target.write_text(redact(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n",
                              encoding="utf-8")
            self.written.append(target)
        return target


def _sequence_of(path: Path) -> int:
    head = path.name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def _shape(request: Any, body: bytes, include_prompt: bool) -> Any:
    kind = request.headers.get("content-type", "")
    if "json" in kind:
        try:
            return request_shape(json.loads(body), include_prompt=include_prompt)
        except ValueError:
            return None
    if kind.startswith("multipart/"):
        return {"form": "multipart"}
    return None


def _response(status: int, headers: Any, content: bytes | None) -> dict[str, Any]:
    kept = {k.lower(): redact(v) for k, v in headers.items()
            if k.lower() in KEPT_HEADERS or k.lower().startswith("x-ratelimit-")}
    out: dict[str, Any] = {"status": status, "headers": kept}
    content = content or b""
    image = placeholder_for(content) if content else None
    if image is not None:
        out["body_image"] = image
        return out
    try:
        out["body"] = scrub(json.loads(content))
    except ValueError:
        out["body_text"] = scrub(content.decode("utf-8", "replace"))
    return out


def _error_kind(exc: BaseException) -> str:
    name = type(exc).__name__
    if "Timeout" in name:
        return "timeout"
    if name == "RemoteProtocolError":
        return "cut"
    return "reset"


class RecordingTransport:
    """An ``httpx``/``httpx2`` async transport that records every exchange of ``inner``."""

    def __init__(self, inner: Any, recorder: Recorder, vendor: str) -> None:
        self.inner = inner
        self.recorder = recorder
        self.vendor = vendor

    async def handle_async_request(self, request: Any) -> Any:
        body = await request.aread()
        try:
            response = await self.inner.handle_async_request(request)
            content = await response.aread()
        except Exception as exc:
            self.recorder.write(self.vendor, request, body, None, {}, None, _error_kind(exc))
            raise
        self.recorder.write(self.vendor, request, body, response.status_code, response.headers,
                            content, None)
        lib = sys.modules[type(response).__module__.split(".")[0]]
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in _TRANSFER_HEADERS]
        return lib.Response(response.status_code, headers=headers, content=content,
                            request=request, extensions=response.extensions)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> RecordingTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.__aexit__(*exc)
