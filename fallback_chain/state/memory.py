"""State in the process (the default): nothing is shared between workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..cost.budget_store import BudgetStore, MemoryBudgetStore
from ..resilience.breaker import BreakerStore, MemoryBreakers
from ..resilience.capacity import CapacityStore, MemoryCapacity
from ..resilience.cooldown import CooldownStore, MemoryCooldowns

if TYPE_CHECKING:
    from ..clock import Clock


@dataclass(slots=True)
class MemoryBound:
    breakers: BreakerStore
    cooldowns: CooldownStore = field(default_factory=MemoryCooldowns)
    capacity: CapacityStore = field(default_factory=MemoryCapacity)
    budgets: BudgetStore = field(default_factory=MemoryBudgetStore)


class MemoryState:
    """Fresh in-process stores for each chain."""

    def bind(self, namespace: str, clock: Clock) -> MemoryBound:
        return MemoryBound(MemoryBreakers(clock))

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return "MemoryState()"
