"""Fetch generated images from vendor URLs safely (Leonardo's CDN, DALL-E ``url`` answers).

Only hosts on an allow-list are contacted: the vendor's CDN, or the origin of the configured
``base_url`` (so emulators work). Plain ``http`` is refused except for that origin, redirects are
followed by hand and every hop is checked, the body is streamed with a size cap, and the bytes
must verify as a whole image. Every failure is a ``ProviderError``: an expired link (403/404/410)
or a bad body is ``malformed_response``; a disallowed location is ``malformed_response`` too
(``provider_code="url_not_allowed"``), and nothing is fetched from it. A URL that cannot be
parsed, that carries credentials, or that ``urllib`` and ``httpx`` read differently is refused.

An allowed *host name* may still resolve to a private address (a hijacked or misconfigured DNS
record, DNS rebinding). Clients built on :func:`guarded_transport` resolve every host
themselves, refuse to connect when any address is not globally routable (loopback, RFC 1918,
link-local such as the cloud metadata address 169.254.169.254, ...), except the configured
origins (an emulator on 127.0.0.1), and connect to the very address they checked.

The size cap is read when a download starts (``MAX_IMAGE_BYTES``, patchable in tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urljoin, urlsplit

from fallback_chain.errors import ProviderError
from fallback_chain.image_limits import ImageLimits
from fallback_chain.imaging import InvalidImageError
from fallback_chain.outcome import Outcome
from fallback_chain.results import GeneratedImage
from fallback_chain.verify import verified_image

if TYPE_CHECKING:
    import httpcore
    import httpx

MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_REDIRECTS = 3
URL_NOT_ALLOWED = "url_not_allowed"


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts images may come from. ``*.example.com`` matches subdomains; ``origins`` are exact
    ``scheme://host:port`` prefixes allowed even over plain http (an emulator's address)."""

    hosts: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()

    @classmethod
    def of(cls, hosts: Iterable[str] = (), base_urls: Iterable[str | None] = ()) -> AllowList:
        origins = tuple(o for o in (_origin(u) for u in base_urls if u) if o)
        return cls(tuple(h.lower() for h in hosts), origins)

    def refuse(self, url: str) -> str | None:
        """Why ``url`` may not be fetched, or ``None`` if it may. Never raises."""
        parts = _split(url)
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            return f"not a usable http(s) URL: {url[:120]!r}"
        if parts.username is not None or parts.password is not None:
            return f"refusing a URL with credentials in it (host {parts.hostname})"
        if not _same_target(url, parts):
            return f"ambiguous URL (URL parsers disagree on its host): {url[:120]!r}"
        if _origin(parts) in self.origins:
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

    def trusted_endpoints(self) -> frozenset[tuple[str, int]]:
        """``(host, port)`` of the configured origins: the only places a guarded transport
        connects to without checking the address first."""
        out = set()
        for origin in self.origins:
            parts = _split(origin)
            if parts is not None and parts.hostname:
                out.add((parts.hostname.lower(), _port(parts)))
        return frozenset(out)


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range or not a number
    except (ValueError, TypeError, AttributeError):
        return None
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _origin(url: str | SplitResult) -> str:
    p = _split(url) if isinstance(url, str) else url
    if p is None:
        return ""
    return f"{p.scheme}://{(p.hostname or '').lower()}:{_port(p)}"


def _same_target(url: str, parts: SplitResult) -> bool:
    """Whether httpx (which fetches) reads the scheme, host and port ``urlsplit`` (which the
    allow-list checked) read: a differential between URL parsers is a classic SSRF trick."""
    try:
        import httpx

        parsed = httpx.URL(url)
    except Exception:
        return False
    host = parsed.raw_host.decode("ascii", "replace").lower().strip("[]")
    return (parsed.scheme == parts.scheme and host == (parts.hostname or "")
            and (parsed.port or _port(parts)) == _port(parts))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------- address guard


class AddressRefused(Exception):
    """A guarded transport did not connect: the host resolves to a non-public address."""


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (an IPv4-mapped IPv6 judged as IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
    import httpcore

    try:
        async with asyncio.timeout(timeout):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                 type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _GuardedBackend:
    """An ``httpcore`` network backend: resolves each host itself, refuses when any address
    is not public (``trusted`` endpoints excepted) and connects to the address it checked, so
    a second DNS answer cannot move the connection (rebinding)."""

    def __init__(self, trusted: frozenset[tuple[str, int]]) -> None:
        import httpcore

        self._inner = httpcore.AnyIOBackend()
        self._trusted = trusted

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        import httpcore

        if (host.lower(), port) in self._trusted:
            return await self._inner.connect_tcp(host, port, timeout, local_address,
                                                 socket_options)
        addresses = await _resolve(host, port, timeout)
        bad = [a for a in addresses if not is_public_address(a)]
        if bad or not addresses:
            raise AddressRefused(f"{host} resolves to a non-public address "
                                 f"({', '.join(bad) or 'none'}); not connecting")
        error: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address,
                                                     socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("a guarded transport does not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(allow: AllowList, *, limits: httpx.Limits | None = None
                      ) -> httpx.AsyncHTTPTransport:
    """An ``httpx`` transport for the real network that never connects to a non-public
    address, ``allow``'s origins excepted (see the module docstring). Proxies from the
    environment still apply (``httpx.AsyncClient`` mounts them apart); through a proxy, the
    proxy resolves the name."""
    import httpcore
    import httpx

    limits = limits or httpx.Limits()
    transport = httpx.AsyncHTTPTransport(limits=limits)
    backend: Any = _GuardedBackend(allow.trusted_endpoints())
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend)
    return transport


# ------------------------------------------------------------------------------ download


def _refused(why: str) -> ProviderError:
    return ProviderError(Outcome.MALFORMED_RESPONSE, f"image URL refused: {why}",
                         provider_code=URL_NOT_ALLOWED)


async def fetch_image(client: httpx.AsyncClient, url: str, allow: AllowList, *,
                      timeout: float, max_bytes: int | None = None,
                      limits: ImageLimits | None = None) -> GeneratedImage:
    """Download and verify one image, following at most ``MAX_REDIRECTS`` checked redirects.
    ``max_bytes`` defaults to ``MAX_IMAGE_BYTES`` (as it is when the download starts); an
    image declaring a size beyond ``limits`` (what the model makes) is refused from its
    header, before it is verified."""
    limit = MAX_IMAGE_BYTES if max_bytes is None else max_bytes
    for _ in range(MAX_REDIRECTS + 1):
        why = allow.refuse(url)
        if why:
            raise _refused(why)
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
                declared = resp.headers.get("content-length", "").strip()
                if declared.isdigit() and int(declared) > limit:
                    raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                        f"image is {int(declared):,} bytes; limit {limit:,}")
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                            f"image exceeds the {limit:,}-byte limit")
        except ProviderError:
            raise
        except AddressRefused as exc:
            raise _refused(str(exc)) from None
        except Exception as exc:
            raise _transport_error(exc) from None
        try:
            return await verified_image(bytes(body), limits)
        except InvalidImageError as exc:
            raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                f"downloaded bytes are not an image: {exc}") from None
    raise ProviderError(Outcome.MALFORMED_RESPONSE, f"more than {MAX_REDIRECTS} redirects")


async def fetch_all(client: httpx.AsyncClient, urls: Sequence[str], allow: AllowList, *,
                    timeout: float, max_bytes: int | None = None,
                    limits: ImageLimits | None = None) -> list[GeneratedImage]:
    """Download every URL at once (vendor links expire); the first failure cancels the rest
    and is raised as a ``ProviderError``.

    Every URL is checked against ``allow`` before any is fetched: one refused URL and nothing
    is downloaded at all.

    Not an ``asyncio.TaskGroup``: on Python 3.11 and 3.12 a child failing while the group
    exits cancels the caller's task for good, so a later timeout of the caller surfaced as
    ``CancelledError`` (found by the chaos run)."""
    for url in urls:
        why = allow.refuse(url)
        if why:
            raise _refused(why)
    tasks = [asyncio.ensure_future(fetch_image(client, u, allow, timeout=timeout,
                                               max_bytes=max_bytes, limits=limits))
             for u in urls]
    try:
        return list(await asyncio.gather(*tasks))
    except ProviderError:
        raise
    except Exception as exc:
        raise _transport_error(exc) from None
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _transport_error(exc: Exception) -> ProviderError:
    """Map an httpx transport exception to an outcome by its class name (httpx or httpx2)."""
    name = type(exc).__name__
    if "Timeout" in name:
        return ProviderError(Outcome.TIMEOUT, f"image download timed out ({name})")
    if name in ("ConnectError", "ReadError", "WriteError", "RemoteProtocolError",
                "NetworkError", "ProtocolError", "CloseError") or isinstance(exc, OSError):
        return ProviderError(Outcome.CONNECTION_ERROR, f"image download failed: {name}")
    return ProviderError(Outcome.MALFORMED_RESPONSE, f"image download failed: {name}: {exc}")
