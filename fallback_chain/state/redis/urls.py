"""Credentials in a Redis URL, found and masked.

redis-py (``redis.connection.parse_url``, redis-py 5.x) takes credentials from a URL in two
places, for ``redis://``, ``rediss://`` and ``unix://`` alike:

* the userinfo: ``redis://user:password@host``, ``redis://:password@host``, and
  ``redis://word@host``, where a lone ``word`` is sent as the username of ``AUTH`` (people
  often put a password there);
* the query string: any ``name=value`` is passed to the connection as a keyword, so
  ``?password=...`` (and ``?username=...``, ``?ssl_password=...``) work too.

:func:`safe_url` masks every one of them (values percent-encoded or not); :func:`secrets_in`
lists them (to register with :func:`fallback_chain.secrets.register_secret`).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
#: Query parameters that carry a credential (redis-py passes every parameter through).
_SECRET_PARAM = re.compile(r"pass|secret|token|auth|credential|username|^user$", re.I)


def _userinfo(netloc: str) -> tuple[str | None, str]:
    """``(userinfo or None, host[:port])``."""
    if "@" not in netloc:
        return None, netloc
    userinfo, _, host = netloc.rpartition("@")
    return userinfo, host


def _params(query: str) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for piece in query.split("&") if query else []:
        name, eq, value = piece.partition("=")
        pairs.append((name, value if eq else None))
    return pairs


def secret_params(url: str) -> list[str]:
    """Names of the query parameters of ``url`` that carry a credential."""
    return [name for name, value in _params(urlsplit(url).query)
            if value and _SECRET_PARAM.search(unquote(name))]


def secrets_in(url: str) -> list[str]:
    """Every credential ``url`` holds, as written and percent-decoded."""
    parts = urlsplit(url)
    found: list[str] = []
    userinfo, _ = _userinfo(parts.netloc)
    if userinfo:
        user, colon, password = userinfo.partition(":")
        found += [password] if colon else [user]
    found += [value for name, value in _params(parts.query)
              if value and _SECRET_PARAM.search(unquote(name))]
    return [s for value in found for s in dict.fromkeys((value, unquote(value))) if s]


def safe_url(url: str) -> str:
    """``url`` with every credential masked (for logs, errors, reprs and tables)."""
    parts = urlsplit(url)
    userinfo, host = _userinfo(parts.netloc)
    netloc = parts.netloc
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    query = "&".join(
        name if value is None
        else f"{name}={MASK if value and _SECRET_PARAM.search(unquote(name)) else value}"
        for name, value in _params(parts.query))
    if netloc == parts.netloc and query == parts.query:
        return url
    if "://" in url:  # urlunsplit would drop an empty netloc: unix:///path -> unix:/path
        rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
        rebuilt += f"?{query}" if query or "?" in url else ""
        return rebuilt + (f"#{parts.fragment}" if parts.fragment else "")
    return urlunsplit(parts._replace(netloc=netloc, query=query))
