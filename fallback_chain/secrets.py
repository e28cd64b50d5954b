"""Keep API keys out of everything the library writes: messages, logs, records, files.

Adapters register every key they hold with :func:`register_secret`; :class:`ProviderError` and
the logging subscriber pass text through :func:`redact`, so a vendor that echoes a key (or a
traceback that contains one) cannot leak it.
"""

from __future__ import annotations

import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

#: Shapes of well-known key formats, masked even if they were never registered.
_KNOWN_SHAPES = re.compile(
    r"(sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{30,}|Bearer\s+[A-Za-z0-9._\-]{16,})"
)
MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`redact` masks it wherever it appears."""
    global _pattern
    if not value or len(value) < 6:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """``text`` with every registered secret and every key-shaped token replaced by ``***``."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _KNOWN_SHAPES.sub(MASK, text)


def mask_key(value: str | None) -> str:
    """A short, safe description of a key for display: its length and nothing else."""
    return "<not set>" if not value else f"<set, {len(value)} chars>"
