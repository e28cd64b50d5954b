"""How a vendor batch runs: the deadline, the polling backoff, the clock."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...clock import SYSTEM_CLOCK, Clock

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: The vendors' own completion window (OpenAI ``completion_window="24h"``; Gemini's target).
VENDOR_WINDOW_S = 24 * 3600.0


def parse_duration(text: str | float) -> float:
    """Seconds from ``90``, ``"90s"``, ``"20m"``, ``"6h"``, ``"1h30m"`` or ``"1d"``."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        value = str(text).strip().lower().replace(" ", "")
        parts = _PART.findall(value)
        if value.replace(".", "", 1).isdigit():
            seconds = float(value)
        elif parts and "".join(n + u for n, u in parts) == value:
            seconds = sum(float(n) * _UNIT[u] for n, u in parts)
        else:
            raise ValueError(f"expected a duration like '90s', '20m', '6h' (got {text!r})")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive (got {text!r})")
    return seconds


@dataclass(frozen=True)
class VendorBatchOptions:
    """``deadline_s``: how long after its submission a job may run before it is cancelled
    and what remains goes real-time (default 6 h; the vendors allow 24 h). Polls start after
    ``poll_initial_s`` and grow by ``poll_factor`` up to ``poll_max_s``. ``clock``: time for
    polls and deadlines (inject a virtual one in tests). ``max_items``: a smaller job size
    than the vendor's limit."""

    deadline_s: float = 6 * 3600.0
    poll_initial_s: float = 10.0
    poll_factor: float = 2.0
    poll_max_s: float = 300.0
    clock: Clock = SYSTEM_CLOCK
    max_items: int | None = None

    def __post_init__(self) -> None:
        if self.deadline_s <= 0 or self.poll_initial_s < 0 or self.poll_factor < 1:
            raise ValueError("deadline_s > 0, poll_initial_s >= 0 and poll_factor >= 1")
        if self.max_items is not None and self.max_items < 1:
            raise ValueError("max_items must be at least 1")
