"""Where budget totals live. ``MemoryBudgetStore`` for one process; the Redis store
(``fallback_chain.state.redis``) shares totals between workers by running each method as one
Lua script.

Amounts are integers in nano-USD (1e-9 USD): sums are exact, caps compare exactly, and a Redis
implementation can use ``INCRBY``. Keys are opaque strings chosen by :class:`Budget`
(``"<budget>:day:2026-01-31"``); a store may expire them once their period is over.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

NANO = 1_000_000_000


def to_nano(usd: float) -> int:
    return round(usd * NANO)


def from_nano(amount: int) -> float:
    return amount / NANO


@runtime_checkable
class BudgetStore(Protocol):
    """Spent and reserved totals per key, in nano-USD."""

    async def reserve_if_fits(self, caps: Sequence[tuple[str, int]], amount: int) -> str | None:
        """Atomically: if for every ``(key, cap)`` ``spent + reserved < cap`` and
        ``spent + reserved + amount <= cap``, add ``amount`` to the reserved total of every key
        and return ``None``; otherwise change nothing and return the first key that would not
        fit. (``cap`` may be huge for keys that are only tracked.)"""
        ...

    async def settle(self, keys: Sequence[str], reserved: int, actual: int) -> list[int]:
        """Atomically release ``reserved`` and add ``actual`` to the spent total of each key;
        return the new spent totals, in the order of ``keys``."""
        ...

    async def release(self, keys: Sequence[str], reserved: int) -> None:
        """Release ``reserved`` from each key (a reservation that was never used)."""
        ...

    async def totals(self, key: str) -> tuple[int, int]:
        """``(spent, reserved)`` for ``key`` (zeros when unknown)."""
        ...

    async def claim(self, marker: str) -> bool:
        """``True`` for the first caller to claim ``marker`` (an alert that must fire once
        across every worker sharing the store), ``False`` after."""
        ...


class MemoryBudgetStore:
    """Totals in a dict, guarded by a lock (safe across threads of one process)."""

    __slots__ = ("_claimed", "_lock", "_totals")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, list[int]] = {}  # key -> [spent, reserved]
        self._claimed: set[str] = set()

    async def reserve_if_fits(self, caps: Sequence[tuple[str, int]], amount: int) -> str | None:
        with self._lock:
            for key, cap in caps:
                spent, reserved = self._totals.get(key, (0, 0))
                used = spent + reserved
                if used >= cap or used + amount > cap:
                    return key
            for key, _ in caps:
                self._totals.setdefault(key, [0, 0])[1] += amount
            return None

    async def settle(self, keys: Sequence[str], reserved: int, actual: int) -> list[int]:
        with self._lock:
            out = []
            for key in keys:
                row = self._totals.setdefault(key, [0, 0])
                row[1] = max(0, row[1] - reserved)
                row[0] += actual
                out.append(row[0])
            return out

    async def release(self, keys: Sequence[str], reserved: int) -> None:
        with self._lock:
            for key in keys:
                row = self._totals.setdefault(key, [0, 0])
                row[1] = max(0, row[1] - reserved)

    async def totals(self, key: str) -> tuple[int, int]:
        with self._lock:
            spent, reserved = self._totals.get(key, (0, 0))
            return spent, reserved

    async def claim(self, marker: str) -> bool:
        with self._lock:
            if marker in self._claimed:
                return False
            self._claimed.add(marker)
            return True
