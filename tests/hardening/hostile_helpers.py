"""Helpers for the hostile-input and hostile-response tests (imported as ``hostile_helpers``):
broken images, a chain runner that records one attempt per provider, a scripted Leonardo API
on ``httpx.MockTransport``, and real loopback servers (a Leonardo stub and a server that only
counts the connections it gets) with a DNS override, for the tests that must prove nothing
was fetched from a forbidden place."""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import warnings
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from fallback_chain import Chain, ChainResult, ImageRequest, Policy
from fallback_chain.errors import ChainError
from fallback_chain.imaging import placeholder_image
from fallback_chain.provider import Provider

KEY = "test-key"
BASE = "http://emulator.test"
PROMPT = "a lighthouse at dusk"
JOB = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
#: Every provider outcome a policy can retry on; all set to 0 so one case is one attempt.
RETRYABLE = ("auth_error", "connection_error", "content_policy", "invalid_request",
             "malformed_response", "not_found", "quota_exhausted", "rate_limited",
             "server_error", "timeout")
ONE_ATTEMPT = Policy(retries=dict.fromkeys(RETRYABLE, 0), wait_for_cooldown=False,
                     backoff_initial_s=0.001, backoff_max_s=0.001, backoff_jitter=0.0)


# ------------------------------------------------------------------------------- images

def png(width: int = 64, height: int = 64, *, seed: int = 1, alpha: bool = False) -> bytes:
    return placeholder_image(width, height, seed=seed, alpha=alpha)


def jpeg(width: int = 64, height: int = 64, *, seed: int = 1) -> bytes:
    return placeholder_image(width, height, seed=seed, fmt="jpeg")


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_from_chunks(width: int, height: int, idat: bytes) -> bytes:
    """A PNG whose every chunk CRC is right, around an arbitrary IDAT payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def flipped(data: bytes) -> bytes:
    """``data`` with one byte in the middle corrupted."""
    out = bytearray(data)
    out[len(out) // 2] ^= 0xFF
    return bytes(out)


def header_then_garbage(data: bytes) -> bytes:
    """The first 33 bytes (a PNG's signature and IHDR) followed by junk."""
    return data[:33] + bytes(range(256)) * 4


HTML = (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
        b"<body>Checking your browser</body></html>")


def decodes(data: bytes) -> tuple[int, int]:
    """Fully decode ``data`` with Pillow (every pixel); its size. Raises if it is corrupt."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.size


def no_alpha_mask(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 255).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------ running

Outcome_ = tuple[ChainResult | None, ChainError | None]


async def attempt(providers: list[Provider], request: ImageRequest, *, clock: Any,
                  timeout: float = 30.0, policy: Policy = ONE_ATTEMPT) -> Outcome_:
    """One request through a chain of ``providers``; the result or the typed error."""
    chain = Chain(providers, policy=policy, attempt_timeout_s=timeout, clock=clock, log=False)
    try:
        return await chain.agenerate(request), None
    except ChainError as exc:
        return None, exc
    finally:
        await chain.aclose()


def sound(result: ChainResult | None, error: ChainError | None, n: int) -> str:
    """The outcome of the last attempt, after checking the invariants: a success has ``n``
    images that fully decode and match their recorded size; a failure is typed."""
    if result is not None:
        assert error is None
        assert len(result.images) >= n
        for image in result.images:
            assert decodes(image.data) == (image.width, image.height)
        return result.attempts[-1].outcome.value
    assert isinstance(error, ChainError), error
    assert error.attempts, "a failure always records what was tried"
    return error.attempts[-1].outcome.value


# ------------------------------------------------------------------ Leonardo on a mock

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


def submitted(job: str = JOB, **extra: Any) -> dict[str, Any]:
    return {"sdGenerationJob": {"generationId": job, "apiCreditCost": 10, **extra}}


def completed(urls: list[str], job: str = JOB, **extra: Any) -> dict[str, Any]:
    return {"generations_by_pk": {"id": job, "status": "COMPLETE", "prompt": PROMPT,
                                  "generated_images": [{"url": u, "nsfw": False, "id": f"i{i}"}
                                                       for i, u in enumerate(urls)], **extra}}


@dataclass
class LeonardoMock:
    """Leonardo's REST API on ``httpx.MockTransport``: ``submit`` answers the POST, ``poll`` the
    GETs of the job, ``files`` every other GET (by URL; default: a valid PNG at
    ``BASE/img/N.png``). ``seen`` keeps every request the provider made."""

    submit: Reply | dict[str, Any] | None = None
    poll: Reply | dict[str, Any] | None = None
    urls: list[str] = field(default_factory=lambda: [f"{BASE}/img/0.png", f"{BASE}/img/1.png"])
    files: dict[str, Reply | bytes] = field(default_factory=dict)
    seen: list[httpx.Request] = field(default_factory=list)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        if request.method == "POST" and path.endswith("/generations"):
            return _answer(self.submit if self.submit is not None else submitted(), request)
        if path.startswith("/api/rest/v1/generations/"):
            return _answer(self.poll if self.poll is not None else completed(self.urls), request)
        body = self.files.get(str(request.url))
        if body is None and request.url.host == "emulator.test" and path.startswith("/img/"):
            body = png(64, 64, seed=int(path.rsplit("/", 1)[-1].split(".")[0] or 0))
        if body is None:
            return httpx.Response(404, text="no such file")
        return _answer(body, request)

    def downloads(self) -> list[str]:
        """The URLs of every request that was not an API call."""
        return [str(r.url) for r in self.seen if "/api/rest/v1/" not in r.url.path]


def _answer(reply: Reply | dict[str, Any] | bytes, request: httpx.Request) -> httpx.Response:
    if isinstance(reply, httpx.Response):
        return reply
    if isinstance(reply, dict):
        return httpx.Response(200, json=reply)
    if isinstance(reply, bytes):
        return httpx.Response(200, content=reply, headers={"content-type": "image/png"})
    return reply(request)


def leonardo(mock: LeonardoMock | httpx.AsyncBaseTransport, clock: Any, **kw: Any) -> Any:
    from fallback_chain.providers.leonardo.adapter import LeonardoProvider

    transport = mock.transport if isinstance(mock, LeonardoMock) else mock
    kw.setdefault("poll_initial_s", 0.01)
    return LeonardoProvider(api_key=KEY, base_url=kw.pop("base_url", BASE),
                            transport=transport, clock=clock, **kw)


async def endless(chunk_size: int, total: int, pulled: list[int]) -> AsyncIterator[bytes]:
    """``total`` bytes of PNG-looking junk in ``chunk_size`` pieces, generated on demand;
    ``pulled[0]`` counts the bytes the reader actually took."""
    yield b"\x89PNG\r\n\x1a\n"
    pulled[0] += 8
    block = bytes(chunk_size)
    while pulled[0] < total:
        pulled[0] += chunk_size
        yield block


# --------------------------------------------------------------------- real loopback servers

class CountingServer:
    """A TCP listener that accepts, counts and closes every connection: the forbidden place a
    test points an image URL at. ``hits`` must stay 0."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self.hits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class LeonardoStub:
    """Leonardo's API on a real loopback port (``url``): one job, ``COMPLETE`` at once, whose
    images are ``image_urls``. It also serves ``/img.png`` (a valid PNG) and
    ``/redirect?to=URL`` (a 302). ``paths`` lists what it was asked for."""

    def __init__(self, image_urls: list[str] | None = None) -> None:
        stub = self
        self.image_urls = image_urls or []
        self.paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str,
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                stub.paths.append(self.path)
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self._send(200, json.dumps(submitted()).encode(), "application/json")

            def do_GET(self) -> None:
                stub.paths.append(self.path)
                parts = urlsplit(self.path)
                if parts.path.startswith("/api/rest/v1/generations/"):
                    body = json.dumps(completed(stub.image_urls)).encode()
                    self._send(200, body, "application/json")
                elif parts.path == "/img.png":
                    self._send(200, png(), "image/png")
                elif parts.path == "/redirect":
                    target = parse_qs(parts.query)["to"][0]
                    self._send(302, b"", "text/plain", {"location": target})
                else:
                    self._send(404, b"{}", "application/json")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(2)


@contextmanager
def resolving(monkeypatch: pytest.MonkeyPatch, names: dict[str, str]) -> Iterator[None]:
    """Make ``socket.getaddrinfo`` answer ``names`` (host → address) like a hijacked DNS; every
    other name resolves as usual (the event loop resolves through ``socket.getaddrinfo``)."""
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
             flags: int = 0) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in names:
            return real(names[name], port, family, type, proto, flags)
        return real(host, port, family, type, proto, flags)

    with monkeypatch.context() as m:
        m.setattr(socket, "getaddrinfo", fake)
        yield
