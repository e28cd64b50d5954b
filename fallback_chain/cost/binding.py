"""How a chain binds a caps object (a :class:`~.budget.Budget`, :class:`~.quotas.Quotas`): a
copy per chain, reading the chain's clock unless the object has its own, and booking into the
first chain's store unless it was given one. The object and its copies share one record."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Self

from ..clock import SYSTEM_CLOCK, Clock
from .budget_store import BudgetStore


@dataclass(slots=True)
class Shared:
    """What a caps object and the copies bound to chains share: the store and clock adopted
    from the first chain when none was given, and the alerts already fired in this process."""

    store: BudgetStore | None = None
    clock: Clock | None = None
    fired: dict[str, set[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ChainBound:
    """The clock and store a caps object reads, and the copy a chain binds."""

    _clock: Clock
    _own_store: BudgetStore
    store_given: bool
    _shared: Shared

    @property
    def clock(self) -> Clock:
        """The clock whose UTC date picks the day and month."""
        if self._clock is not SYSTEM_CLOCK:
            return self._clock
        return self._shared.clock or SYSTEM_CLOCK

    @property
    def store(self) -> BudgetStore:
        """Where totals and reservations live."""
        if self.store_given:
            return self._own_store
        return self._shared.store or self._own_store

    def _bound_copy(self, clock: Clock, store: BudgetStore) -> Self:
        """A copy reading ``clock`` unless this object has a clock of its own; without a store
        of its own, the first chain's ``store`` becomes the shared one."""
        bound = copy.copy(self)
        if self._clock is SYSTEM_CLOCK:
            bound._clock = clock
            if self._shared.clock is None:
                self._shared.clock = clock
        if not self.store_given and self._shared.store is None:
            self._shared.store = store
        return bound
