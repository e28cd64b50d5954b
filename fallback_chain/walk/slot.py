"""The long-lived parts of a chain that a request walks over: one ``Slot`` per provider, and
the ``Router`` holding them with the chain's stores (owned by ``Chain``)."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..resilience.capacity import CapacityStore, Limits, MemoryCapacity

if TYPE_CHECKING:
    from ..clock import Clock
    from ..cost.budget import Budget
    from ..cost.quotas import Quotas
    from ..events import EventBus
    from ..policy import Policy
    from ..prescreen import Screen
    from ..provider import Provider
    from ..resilience.breaker import CircuitBreaker
    from ..resilience.cooldown import CooldownStore
    from ..results import ImageOrigin
    from ..validators import Validator
    from .admission import Check

_P95_MIN_SAMPLES = 20


@dataclass(slots=True, eq=False)  # compared by identity
class Slot:
    """One provider in a chain, with its own resolved policy and breaker."""

    provider: Provider
    key: str
    policy: Policy
    breaker: CircuitBreaker
    limits: Limits = field(default_factory=Limits)
    calls: int = 0  # observed calls and outcomes, for cost-aware ordering
    successes: int = 0
    failure_cost_usd: float = 0.0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    checks: tuple[Check, ...] = ()  # admission, in order (see ``use_checks``)
    checks_again: tuple[Check, ...] = ()  # those run again before a retry
    origin: ImageOrigin | None = None  # who made this provider's images (set by the router)

    def use_checks(self, checks: tuple[Check, ...]) -> None:
        """Admit calls to this provider with ``checks``, in this order."""
        self.checks = checks
        self.checks_again = tuple(c for c in checks if c.again)

    def hedge_delay(self) -> float | None:
        """How long to wait for this provider before hedging (``None``: never hedge)."""
        policy = self.policy
        if policy.hedge_delay_s is None:
            return None
        if policy.hedge_delay == "p95" and len(self.latencies) >= _P95_MIN_SAMPLES:
            ordered = sorted(self.latencies)
            return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return policy.hedge_delay_s


@dataclass(slots=True)
class Router:
    """The long-lived state a request needs (owned by ``Chain``)."""

    name: str
    slots: list[Slot]
    policy: Policy
    clock: Clock
    cooldowns: CooldownStore
    events: EventBus
    rng: random.Random
    budget: Budget | None = None
    order: str = "given"
    capacity: CapacityStore = field(default_factory=MemoryCapacity)
    quotas: Quotas | None = None
    validators: tuple[Validator, ...] = ()  # the chain's quality gate (``validators.py``)
    screens: tuple[Screen, ...] = ()  # the prompt pre-screen (``prescreen.py``)
    hedging: bool = field(init=False, default=False)  # any provider hedges

    def __post_init__(self) -> None:
        from ..results import ImageOrigin, trusted
        from .admission import checks_for

        self.hedging = any(s.policy.hedge_delay_s is not None for s in self.slots)
        for slot in self.slots:
            slot.use_checks(checks_for(slot, self))
            slot.origin = trusted(ImageOrigin, provider=slot.provider.name,
                                  model=slot.provider.model)

    def ordered(self, estimate: Callable[[Slot], float | None]) -> list[Slot]:
        """The chain's order, or with ``order="cost"`` the order minimising the expected cost
        per delivered image given each provider's estimate (``estimate``, the request's one
        estimate per provider) and observed success rate."""
        if self.order != "cost":
            return self.slots  # not modified by the walk: no copy
        from ..cost.ordering import Candidate, order_by_expected_cost

        by_key = {s.key: s for s in self.slots}
        candidates = [Candidate(
            s.key, estimate(s), s.successes, s.calls,
            s.failure_cost_usd / (s.calls - s.successes) if s.calls > s.successes else 0.0)
            for s in self.slots]
        return [by_key[c.name] for c in order_by_expected_cost(candidates)]
