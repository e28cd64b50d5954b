"""Fetch generated images from vendor URLs safely (Leonardo's CDN, DALL-E ``url`` answers).

Only hosts on an allow-list are contacted: the vendor's CDN, or the origin of the configured
``base_url`` (so emulators work). Plain ``http`` is refused except for that origin, redirects are
followed by hand and every hop is checked, the body is streamed with a size cap, and the bytes
must verify as a whole image. Every failure is a ``ProviderError``: an expired link (403/404/410)
or a bad body is ``malformed_response``; a disallowed location is ``malformed_response`` too,
and nothing is fetched from it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from fallback_chain.errors import ProviderError
from fallback_chain.imaging import InvalidImageError
from fallback_chain.outcome import Outcome
from fallback_chain.results import GeneratedImage

if TYPE_CHECKING:
    import httpx

MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts images may come from. ``*.example.com`` matches subdomains; ``origins`` are exact
    ``scheme://host:port`` prefixes allowed even over plain http (an emulator's address)."""

    hosts: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()

    @classmethod
    def of(cls, hosts: Iterable[str] = (), base_urls: Iterable[str | None] = ()) -> AllowList:
        origins = tuple(_origin(u) for u in base_urls if u)
        return cls(tuple(h.lower() for h in hosts), origins)

    def refuse(self, url: str) -> str | None:
        """Why ``url`` may not be fetched, or ``None`` if it may."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"not an http(s) URL: {url[:120]!r}"
        if _origin(url) in self.origins:
            return None
        host = parts.hostname.lower()
        if parts.scheme != "https":
            return f"refusing plain http outside the allow-list: {host}"
        if _is_ip(host):
            return f"refusing an IP-address URL outside the allow-list: {host}"
        for allowed in self.hosts:
            if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
                return None
        return f"host {host!r} is not on the allow-list {list(self.hosts)}"


def _origin(url: str) -> str:
    p = urlsplit(url)
    port = p.port or (443 if p.scheme == "https" else 80)
    return f"{p.scheme}://{(p.hostname or '').lower()}:{port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def fetch_image(client: httpx.AsyncClient, url: str, allow: AllowList, *,
                      timeout: float, max_bytes: int = MAX_IMAGE_BYTES) -> GeneratedImage:
    """Download and verify one image, following at most ``MAX_REDIRECTS`` checked redirects."""
    for _ in range(MAX_REDIRECTS + 1):
        why = allow.refuse(url)
        if why:
            raise ProviderError(Outcome.MALFORMED_RESPONSE, f"image URL refused: {why}")
        try:
            async with client.stream("GET", url, timeout=timeout,
                                     follow_redirects=False) as resp:
                if resp.status_code in (301, 302, 303, 307, 308):
                    url = urljoin(url, resp.headers.get("location", ""))
                    continue
                if resp.status_code in (403, 404, 410):
                    raise ProviderError(
                        Outcome.MALFORMED_RESPONSE,
                        f"image URL answered {resp.status_code}: the link has expired or the "
                        "image is gone", status_code=resp.status_code)
                if resp.status_code != 200:
                    raise ProviderError(Outcome.SERVER_ERROR,
                                        f"image download answered {resp.status_code}",
                                        status_code=resp.status_code)
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                        f"image is {int(declared):,} bytes; limit {max_bytes:,}")
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                            f"image exceeds the {max_bytes:,}-byte limit")
        except ProviderError:
            raise
        except Exception as exc:
            raise _transport_error(exc) from None
        try:
            return GeneratedImage.from_bytes(bytes(body))
        except InvalidImageError as exc:
            raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                f"downloaded bytes are not an image: {exc}") from None
    raise ProviderError(Outcome.MALFORMED_RESPONSE, f"more than {MAX_REDIRECTS} redirects")


async def fetch_all(client: httpx.AsyncClient, urls: Sequence[str], allow: AllowList, *,
                    timeout: float, max_bytes: int = MAX_IMAGE_BYTES) -> list[GeneratedImage]:
    """Download every URL at once (vendor links expire); the first failure cancels the rest
    and is raised as a ``ProviderError``."""
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(fetch_image(client, u, allow, timeout=timeout,
                                                max_bytes=max_bytes)) for u in urls]
    except BaseExceptionGroup as group:
        first = _first_leaf(group)
        raise first if isinstance(first, ProviderError) else _transport_error(first) from None
    return [t.result() for t in tasks]


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> Exception:
    """The first ``ProviderError`` in a (nested) exception group, else the first exception."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            stack[:0] = list(exc.exceptions)
        else:
            leaves.append(exc)
    for exc in leaves:
        if isinstance(exc, ProviderError):
            return exc
    for exc in leaves:
        if not isinstance(exc, Exception):
            raise exc  # KeyboardInterrupt, SystemExit, CancelledError: not ours to convert
    return leaves[0]  # type: ignore[return-value]


def _transport_error(exc: Exception) -> ProviderError:
    """Map an httpx transport exception to an outcome by its class name (httpx or httpx2)."""
    name = type(exc).__name__
    if "Timeout" in name:
        return ProviderError(Outcome.TIMEOUT, f"image download timed out ({name})")
    if name in ("ConnectError", "ReadError", "WriteError", "RemoteProtocolError",
                "NetworkError", "ProtocolError", "CloseError") or isinstance(exc, OSError):
        return ProviderError(Outcome.CONNECTION_ERROR, f"image download failed: {name}")
    return ProviderError(Outcome.MALFORMED_RESPONSE, f"image download failed: {name}: {exc}")
