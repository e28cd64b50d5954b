"""Cooldowns: a provider that said "slow down" (or "out of quota", "bad key") is kept out of
every request until a time. State sits behind ``CooldownStore`` so several workers can share it.
"""

from __future__ import annotations

from typing import Protocol


class CooldownStore(Protocol):
    async def remaining(self, key: str, now: float) -> float:
        """Seconds until ``key`` may be used again (0 when it may be used now). ``now`` is the
        chain's clock; a shared store may read its own (shared) clock instead."""
        ...

    async def start(self, key: str, seconds: float, now: float) -> float:
        """Keep ``key`` out for ``seconds`` from ``now``; never shortens a running cooldown.
        Returns the time the cooldown ends, on the chain's clock (``now + remaining``)."""
        ...

    async def clear(self, key: str) -> None: ...


class MemoryCooldowns:
    """Cooldowns of one process, keyed by provider, on the chain's clock."""

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def remaining(self, key: str, now: float) -> float:
        until = self._until.get(key)
        if until is None:
            return 0.0
        if until <= now:
            del self._until[key]
            return 0.0
        return until - now

    async def start(self, key: str, seconds: float, now: float) -> float:
        until = max(self._until.get(key, 0.0), now + seconds)
        self._until[key] = until
        return until

    async def clear(self, key: str) -> None:
        self._until.pop(key, None)
