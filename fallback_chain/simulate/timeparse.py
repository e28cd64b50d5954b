"""Times of day and durations as experiment files write them.

* A time of day is ``"HH:MM"`` or ``"HH:MM:SS"`` (seconds since midnight of the simulated day;
  ``"24:00"`` and later reach into the next day) or a number of seconds.
* A duration is a number of seconds or a string of number-unit parts: ``"90s"``, ``"20m"``,
  ``"2h"``, ``"1d"``, ``"1h30m"``, ``"250ms"``.
"""

from __future__ import annotations

import re

from .errors import ExperimentError

_CLOCK = re.compile(r"^\s*(\d{1,3}):([0-5]\d)(?::([0-5]\d(?:\.\d+)?))?\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def time_of_day(value: object, where: str) -> float:
    """Seconds since midnight of the simulated day."""
    if isinstance(value, bool):
        raise ExperimentError(where, f"expected a time of day like '10:00' (got {value!r})")
    if isinstance(value, int | float):
        if value < 0:
            raise ExperimentError(where, f"must not be negative (got {value!r})")
        return float(value)
    if isinstance(value, str):
        m = _CLOCK.match(value)
        if m:
            return int(m[1]) * 3600.0 + int(m[2]) * 60.0 + float(m[3] or 0.0)
    raise ExperimentError(where, f"expected a time of day like '10:00' or '10:00:30' "
                                 f"(got {value!r})")


def duration(value: object, where: str) -> float:
    """A non-negative number of seconds."""
    if isinstance(value, bool):
        raise ExperimentError(where, f"expected a duration like '20m' (got {value!r})")
    if isinstance(value, int | float):
        if value < 0:
            raise ExperimentError(where, f"must not be negative (got {value!r})")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _UNIT[u] for n, u in parts)
    raise ExperimentError(where, f"expected seconds or a duration like '90s', '20m', '2h', "
                                 f"'1h30m' (got {value!r})")


def format_clock(seconds: float) -> str:
    """``37800.0`` → ``"10:30"`` (``"10:30:15"`` when there are seconds)."""
    whole = round(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}" if s else f"{h:02d}:{m:02d}"
