"""Refuse API keys in a config file: a key-like field name anywhere (``api_key``, ``token``,
``secret``, ``password``...), or a value shaped like a known vendor key or equal to a key the
environment holds. The message never repeats the value."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .errors import Loc
from .vendors import VENDORS

_WORDS = ("api_key", "apikey", "api-key", "key", "keys", "secret", "secrets", "token", "tokens",
          "password", "passwd", "credential", "credentials", "authorization", "bearer",
          "access_key", "private_key", "secret_key")
_KEYLIKE = re.compile(
    r"(?:^|[_\-.])(?:" + "|".join(re.escape(w) for w in _WORDS) + r")(?:$|[_\-.])", re.IGNORECASE)
_KEY_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{30,}|"
                         r"Bearer\s+[A-Za-z0-9._\-]{16,})")
#: Key-like names that are allowed where they are: the secrets table names a file, and a
#: provider's (or a moderation pre-screen's) key_env names a variable (its value is checked to
#: be a variable name).
_ALLOWED = (("secrets",), ("secrets", "file"))


def _allowed(loc: Loc) -> bool:
    if loc in _ALLOWED:
        return True
    return (len(loc) == 5 and loc[0] == "chains" and loc[2] in ("providers", "prescreen")
            and loc[4] == "key_env")


def key_variables(vendor: str | None = None) -> list[str]:
    """The environment variables that hold keys (of one vendor, or of every vendor)."""
    vendors = [VENDORS[vendor]] if vendor is not None and vendor in VENDORS else list(
        VENDORS.values())
    return [name for v in vendors for name in v.env_vars]


def advice(vendor: str | None) -> str:
    names = " or ".join(key_variables(vendor)) or "the vendor's key variable"
    return (f"keys never go in the config file: set {names} in the environment, or put it in "
            "the secrets file named by [secrets] file = \"...\"")


def find_secrets(data: Mapping[str, Any], known_keys: Iterable[str] = ()) -> Iterator[
        tuple[Loc, str]]:
    """``(location, message)`` for every key-like field or key-like value in ``data``."""
    known = {k for k in known_keys if k and len(k) >= 8}
    known |= {os.environ[v] for v in key_variables() if len(os.environ.get(v, "")) >= 8}
    yield from _walk(data, (), None, known)


def _walk(node: Any, loc: Loc, vendor: str | None, known: set[str]
          ) -> Iterator[tuple[Loc, str]]:
    if isinstance(node, Mapping):
        here = node.get("vendor") if isinstance(node.get("vendor"), str) else vendor
        for key, value in node.items():
            path = (*loc, key)
            if _KEYLIKE.search(str(key)) and not _allowed(path):
                yield path, f"{key!r} looks like a secret; " + advice(here)
                continue
            yield from _walk(value, path, here, known)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*loc, i), vendor, known)
    elif isinstance(node, str) and (_KEY_SHAPES.search(node) or node in known):
        yield loc, "this value looks like an API key; " + advice(vendor)
