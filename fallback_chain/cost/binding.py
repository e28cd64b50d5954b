"""How a chain binds a caps object (a :class:`~.budget.Budget`, :class:`~.quotas.Quotas`)
without changing it: the chain gets a copy, the caller's object keeps its settings, clock,
store and emitter.

The copy reads the chain's clock unless the object has a clock of its own. It books into the
object's own store when the object was given one, or when the chain keeps its state in the
process (then every chain given the object books into the object's own in-process totals, so
the caps hold across them and the object's queries see them); when the chain shares its
state (Redis), into the chain's store, so the caps hold across workers. ``chain.budget`` (and
``chain.quotas``) is the bound copy: its queries read what that chain books, on its clock.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Self

from ..clock import SYSTEM_CLOCK, Clock
from .budget_store import BudgetStore, MemoryBudgetStore


@dataclass(slots=True)
class Shared:
    """What a caps object and the copies bound to chains share: the alerts already fired in
    this process (so one crossing alerts once, whichever chain booked it)."""

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
        return self._clock

    @property
    def store(self) -> BudgetStore:
        """Where totals and reservations live."""
        return self._own_store

    def _bound_copy(self, clock: Clock, store: BudgetStore) -> Self:
        """A copy reading ``clock`` unless this object has a clock of its own, and booking
        into the chain's ``store`` when this object has no store of its own and the chain's
        is shared (not in the process). This object is not changed."""
        bound = copy.copy(self)
        if self._clock is SYSTEM_CLOCK:
            bound._clock = clock
        if not self.store_given and not isinstance(store, MemoryBudgetStore):
            bound._own_store = store
        return bound
