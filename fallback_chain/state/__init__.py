"""Where a chain keeps the state its workers share: breakers, cooldowns, the images-per-minute
limiter and budget totals.

``MemoryState`` (the default) keeps it in the process. ``RedisState`` keeps it in Redis so
several workers, on one machine or many, see one breaker per provider, one cooldown, one rate
limit and one budget. Both hand the router the same four small stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ..errors import SharedStateUnavailableError
    from .backend import StateBackend
    from .memory import MemoryState
    from .redis import RedisState

__all__ = ["MemoryState", "RedisState", "SharedStateUnavailableError", "StateBackend"]

_WHERE = {
    "MemoryState": ".memory",
    "RedisState": ".redis",
    "SharedStateUnavailableError": "..errors",
    "StateBackend": ".backend",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
