"""A cap on the size of a vendor's API answer, enforced while the answer streams in.

The OpenAI and Gemini SDKs read a whole answer into memory before they look at it: without a
cap, a 1 GiB JSON body took more than 3 GiB of memory and stalled the event loop for seconds.
``CappedTransport`` wraps the httpx2 transport the SDK's client uses and stops reading as soon
as more than the cap has arrived (a declared ``Content-Length`` above it is refused before any
byte is read). The cap counts *decoded* bytes: the transport asks for ``gzip, deflate`` only
and decodes those itself in bounded steps, so a compression bomb is stopped at the cap too; an
answer in any other encoding is refused.

The cap of a call is set around it with :func:`answer_limit` (a context variable, so
concurrent calls on one client each keep theirs) and sized from the largest legitimate answer
with :func:`answer_budget`: ``n`` images of the largest size the model produces, stored
uncompressed in RGBA and base64-encoded, plus room for the JSON around them. Calls made
without a limit (``check()``) get ``DEFAULT_LIMIT``.

The same transport refuses a redirect to another origin (scheme, host, port): the SDKs follow
redirects and would re-send the request body (the prompt, the input images) to wherever a
``Location`` points. Redirects within the API's own origin are still followed.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import httpx2

if TYPE_CHECKING:
    from fallback_chain.provider import Capabilities

#: The cap of calls made outside :func:`answer_limit` (model lookups and the like).
DEFAULT_LIMIT = 8 * 1024 * 1024
#: Room for the JSON around the images (usage, ids, revised prompts).
JSON_ROOM = 1024 * 1024
#: Decoded bytes produced per step when inflating a compressed answer.
_PIECE = 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)

_LIMIT: ContextVar[int | None] = ContextVar("fallback_chain_answer_limit", default=None)


class AnswerTooLarge(Exception):
    """The answer is (or declares itself) larger than the cap of its call."""

    def __init__(self, limit: int, status: int, declared: int | None = None) -> None:
        self.limit = limit
        self.status = status
        what = (f"declares {declared:,} bytes" if declared is not None
                else f"went past {limit:,} bytes")
        super().__init__(f"the answer {what}; the cap for this call is {limit:,} bytes")


class RefusedAnswer(Exception):
    """An answer this transport will not read: an unknown encoding, a cross-origin redirect."""

    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


def image_budget(capabilities: Capabilities) -> int:
    """Bytes of the largest image ``capabilities`` allow, as base64 of an uncompressed RGBA
    PNG (4 bytes a pixel, a filter byte a row and deflate's stored-block overhead)."""
    sizes = capabilities.sizes
    pixels = max((w * h for w, h in sizes), default=0) if sizes else capabilities.max_pixels
    raw = pixels * 4 + capabilities.max_side + pixels * 4 // 8192 + 4096
    return (raw + 2) // 3 * 4


def answer_budget(capabilities: Capabilities, images: int) -> int:
    """The cap for an answer that carries ``images`` images (see the module docstring)."""
    return max(1, images) * image_budget(capabilities) + JSON_ROOM


@contextmanager
def answer_limit(limit: int | None) -> Iterator[None]:
    """Calls made inside this block read at most ``limit`` bytes of answer (``None``: the
    transport's default)."""
    token = _LIMIT.set(limit)
    try:
        yield
    finally:
        _LIMIT.reset(token)


def found_in(exc: BaseException | None) -> AnswerTooLarge | RefusedAnswer | None:
    """The cap's (or the redirect check's) exception in ``exc``'s chain of causes, if any
    (the SDKs wrap transport exceptions in their own connection errors)."""
    seen = 0
    while exc is not None and seen < 16:
        if isinstance(exc, AnswerTooLarge | RefusedAnswer):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


class CappedTransport(httpx2.AsyncBaseTransport):
    """``inner`` with the answer cap and the cross-origin redirect check."""

    def __init__(self, inner: httpx2.AsyncBaseTransport | None = None, *,
                 default_limit: int = DEFAULT_LIMIT) -> None:
        self._inner = inner if inner is not None else httpx2.AsyncHTTPTransport()
        self.default_limit = default_limit

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        limit = _LIMIT.get() or self.default_limit
        request.headers["Accept-Encoding"] = "gzip, deflate"
        response = await self._inner.handle_async_request(request)
        try:
            return self._capped(request, response, limit)
        except BaseException:
            await response.aclose()
            raise

    def _capped(self, request: httpx2.Request, response: httpx2.Response, limit: int
                ) -> httpx2.Response:
        status = response.status_code
        if status in _REDIRECTS:
            _check_redirect(request, response)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise RefusedAnswer(f"the answer is encoded as {encoding!r}, which was not asked "
                                "for", status)
        declared = response.headers.get("content-length", "")
        if encoding in ("", "identity") and declared.isdigit() and int(declared) > limit:
            raise AnswerTooLarge(limit, status, int(declared))
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length")]
        decoder = (zlib.decompressobj(zlib.MAX_WBITS | 32)
                   if encoding not in ("", "identity") else None)
        inner = response.stream
        if not isinstance(inner, httpx2.AsyncByteStream):
            raise TypeError("an async transport answered with a sync stream")
        stream = _CappedStream(inner, limit, status, decoder)
        return httpx2.Response(status, headers=headers, stream=stream,
                               extensions=response.extensions, request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _check_redirect(request: httpx2.Request, response: httpx2.Response) -> None:
    location = response.headers.get("location")
    if not location:
        return
    here = str(request.url)
    target = urljoin(here, location)
    if _origin(target) != _origin(here):
        raise RefusedAnswer(
            f"the API answered {response.status_code} with a redirect to another origin "
            f"({_origin(target)[1] or target!r}); API calls never follow one (the request "
            "body would be sent there)", response.status_code)


class _CappedStream(httpx2.AsyncByteStream):
    """The answer's bytes, decoded, ending in ``AnswerTooLarge`` past ``limit``."""

    def __init__(self, inner: httpx2.AsyncByteStream, limit: int, status: int,
                 decoder: zlib._Decompress | None) -> None:
        self._inner = inner
        self._limit = limit
        self._status = status
        self._decoder = decoder
        self._seen = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            for piece in self._decode(chunk):
                yield self._count(piece)
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                yield self._count(tail)

    def _decode(self, chunk: bytes) -> Iterator[bytes]:
        if self._decoder is None:
            yield chunk
            return
        data = chunk
        while data:
            try:
                out = self._decoder.decompress(data, _PIECE)
            except zlib.error as exc:
                raise httpx2.DecodingError(f"the compressed answer is corrupt: {exc}") from None
            data = self._decoder.unconsumed_tail
            if out:
                yield out
            elif not data:
                break

    def _count(self, piece: bytes) -> bytes:
        self._seen += len(piece)
        if self._seen > self._limit:
            raise AnswerTooLarge(self._limit, self._status)
        return piece

    async def aclose(self) -> None:
        await self._inner.aclose()
