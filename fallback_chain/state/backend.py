"""The interface a state backend offers a chain: four stores, bound to the chain's namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..clock import Clock
    from ..cost.budget_store import BudgetStore
    from ..resilience.breaker import BreakerStore
    from ..resilience.capacity import CapacityStore
    from ..resilience.cooldown import CooldownStore


class StateBackend(Protocol):
    """Builds the stores of one chain. ``namespace`` (the chain's name unless the backend was
    given one) keeps two chains on one backend apart."""

    def bind(self, namespace: str, clock: Clock) -> BoundState: ...

    async def aclose(self) -> None: ...


class BoundState(Protocol):
    @property
    def breakers(self) -> BreakerStore: ...

    @property
    def cooldowns(self) -> CooldownStore: ...

    @property
    def capacity(self) -> CapacityStore: ...

    @property
    def budgets(self) -> BudgetStore: ...
