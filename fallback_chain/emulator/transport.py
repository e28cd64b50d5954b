"""In-process transports: ``httpx`` and ``httpx2`` clients that call the emulator directly.

    emu = Emulator()
    client = openai.AsyncOpenAI(api_key="test-key", base_url="http://emulator.test/v1",
                                http_client=httpx2.AsyncClient(transport=emu.httpx2_transport()),
                                max_retries=0)

Connection faults become the library's own exceptions: ``reset`` -> ``ReadError``, a body
``cut`` short -> ``RemoteProtocolError``, and a ``hang`` (or any answer slower than the
request's read timeout) -> ``ReadTimeout``. The read timeout bounds the whole exchange here,
not the gap between bytes as on a socket. Sync transports run the app on a private event
loop in a daemon thread (``close()`` stops it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

import httpx
import httpx2
from starlette.types import ASGIApp, Message

from .common import EmulatedDisconnect

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Exchange:
    method: str
    scheme: str
    host: str
    port: int
    raw_path: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    timeout: float | None


@dataclass(frozen=True, slots=True)
class _Raw:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class _Reset(Exception):
    pass


class _Cut(Exception):
    def __init__(self, received: int, expected: int) -> None:
        super().__init__(f"peer closed connection without sending complete message body "
                         f"(received {received} bytes, expected {expected})")


class _Timeout(Exception):
    pass


async def _call_app(app: ASGIApp, ex: _Exchange) -> _Raw:
    path, _, query = ex.raw_path.partition(b"?")
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": ex.method, "scheme": ex.scheme, "path": unquote(path.decode("ascii")),
        "raw_path": path, "query_string": query, "root_path": "",
        "headers": [(k.lower(), v) for k, v in ex.headers],
        "server": (ex.host, ex.port), "client": ("127.0.0.1", 50000),
    }
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    complete = asyncio.Event()
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": ex.body, "more_body": False}
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                complete.set()

    try:
        async with asyncio.timeout(ex.timeout):
            await app(scope, receive, send)
    except TimeoutError:
        raise _Timeout("timed out") from None
    except EmulatedDisconnect as exc:
        if exc.kind == "cut":
            raise _Cut(exc.received, exc.expected) from None
        raise _Reset("[Errno 104] Connection reset by peer") from None
    finally:
        complete.set()
    if status is None:
        raise _Reset("Server disconnected without sending a response.")
    return _Raw(status, headers, b"".join(chunks))


def _exchange(request: httpx.Request | httpx2.Request, body: bytes) -> _Exchange:
    url = request.url
    port = url.port or (443 if url.scheme == "https" else 80)
    timeout = request.extensions.get("timeout", {}).get("read")
    return _Exchange(request.method, url.scheme, url.host, port, url.raw_path,
                     list(request.headers.raw), body, timeout)


class _LoopThread:
    """A private event loop in a daemon thread, for the sync transports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, daemon=True,
                                                name="emulator-transport")
                self._thread.start()
                self._loop = loop
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


# ---------------------------------------------------------------------------------- httpx


async def _lib_call(lib: Any, app: ASGIApp, request: Any, body: bytes) -> Any:
    """Run one exchange and build ``lib``'s response (``lib`` is the httpx or httpx2 module,
    whose APIs match); connection faults become ``lib``'s own exceptions, as on a socket."""
    try:
        raw = await _call_app(app, _exchange(request, body))
    except _Reset as exc:
        raise lib.ReadError(str(exc), request=request) from None
    except _Cut as exc:
        raise lib.RemoteProtocolError(str(exc), request=request) from None
    except _Timeout as exc:
        raise lib.ReadTimeout(str(exc), request=request) from None
    return lib.Response(raw.status, headers=raw.headers, content=raw.body, request=request)


async def _httpx_call(app: ASGIApp, request: httpx.Request, body: bytes) -> httpx.Response:
    response: httpx.Response = await _lib_call(httpx, app, request, body)
    return response


class HttpxAsyncTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient(transport=HttpxAsyncTransport(app))``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await _httpx_call(self.app, request, await request.aread())


class HttpxSyncTransport(httpx.BaseTransport):
    """``httpx.Client(transport=HttpxSyncTransport(app))``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._loop = _LoopThread()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._loop.run(_httpx_call(self.app, request, request.read()))

    def close(self) -> None:
        self._loop.close()


# ---------------------------------------------------------------------------------- httpx2


async def _httpx2_call(app: ASGIApp, request: httpx2.Request, body: bytes) -> httpx2.Response:
    response: httpx2.Response = await _lib_call(httpx2, app, request, body)
    return response


class Httpx2AsyncTransport(httpx2.AsyncBaseTransport):
    """``httpx2.AsyncClient(transport=Httpx2AsyncTransport(app))`` (openai 3.x, google-genai)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await _httpx2_call(self.app, request, await request.aread())


class Httpx2SyncTransport(httpx2.BaseTransport):
    """``httpx2.Client(transport=Httpx2SyncTransport(app))``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._loop = _LoopThread()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return self._loop.run(_httpx2_call(self.app, request, request.read()))

    def close(self) -> None:
        self._loop.close()
