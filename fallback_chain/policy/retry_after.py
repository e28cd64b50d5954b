"""Server-directed waits: ``Retry-After`` (seconds or HTTP-date), ``retry-after-ms``, and
Google's ``RetryInfo.retryDelay`` duration strings such as ``"19s"`` or ``"3.700s"``."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | None) -> float | None:
    """``"19s"`` → 19.0, ``"3.700s"`` → 3.7, ``"250ms"`` → 0.25, ``"12"`` → 12.0; else ``None``."""
    if not text:
        return None
    m = _DURATION.match(text)
    if not m:
        return None
    return float(m[1]) * _UNIT[m[2]]


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait according to the response headers, or ``None`` when they say nothing.

    ``retry-after-ms`` wins over ``retry-after``; ``retry-after`` may be a number of seconds or
    an HTTP-date (``now`` is the current epoch time, for tests). Negative waits become 0.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
