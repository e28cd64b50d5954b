"""Everything the router does is an event; logging, the cost ledger, metrics and progress bars
subscribe to them, and the router knows none of them.

Subscribers are plain callables, called synchronously in the order they subscribed. A
subscriber that raises is logged and skipped; it never breaks a request. Emitting with no
subscribers costs one truth test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import ChainError
    from .request import ImageRequest
    from .results import Attempt, ChainResult

log = logging.getLogger("fallback_chain")


@dataclass(frozen=True, slots=True)
class Event:
    """Base class; every event names the chain that emitted it."""

    chain: str


@dataclass(frozen=True, slots=True)
class AttemptFinished(Event):
    """One try (or skip) of one provider has been decided and recorded."""

    request_id: str
    #: The attempt: provider, model, outcome, status, latency, cost and its source.
    attempt: Attempt
    #: The request's ``metadata`` (free-form JSON).
    metadata: dict[str, Any]
    #: The request's tenant (quotas; the ledger records it).
    user: str | None = None
    #: The request's project (quotas; the ledger records it).
    project: str | None = None


@dataclass(frozen=True, slots=True)
class RequestFinished(Event):
    """A request ended, with a result or an error."""

    request_id: str
    #: The validated request.
    request: ImageRequest
    #: The result when images were delivered, else ``None``.
    result: ChainResult | None
    #: The error raised to the caller, else ``None``.
    error: ChainError | None


@dataclass(frozen=True, slots=True)
class BreakerStateChanged(Event):
    """A provider's circuit breaker changed state (``closed``, ``open``, ``half-open``)."""

    provider: str
    #: The state before.
    old: str
    #: The state now.
    new: str


@dataclass(frozen=True, slots=True)
class CooldownStarted(Event):
    """A provider is kept out until ``until`` (clock time) because of ``outcome``."""

    provider: str
    #: The outcome that started it (``rate_limited``, ``quota_exhausted``, ...).
    outcome: str
    #: How long, from the server's Retry-After or the policy's ``cooldowns_s``.
    seconds: float
    #: When it ends, in the chain clock's ``now()`` seconds.
    until: float


@dataclass(frozen=True, slots=True)
class QuotaAlert(Event):
    """A provider reported that the account is out of quota or credits."""

    provider: str
    #: The vendor's words.
    message: str


@dataclass(frozen=True, slots=True)
class BudgetAlert(Event):
    """Spend reached ``threshold`` (0.8, 1.0) of a cap."""

    #: The cap: ``"<budget name>/day"`` or ``"<budget name>/month"``.
    budget: str
    #: The share of the cap reached (one of the budget's ``alert_thresholds``).
    threshold: float
    #: Spent in the period so far.
    spent_usd: float
    #: The cap.
    cap_usd: float


@dataclass(frozen=True, slots=True)
class TenantQuotaAlert(Event):
    """A tenant's use reached ``threshold`` (0.8, 1.0) of one of its quota caps: ``kind`` is
    ``"user"`` or ``"project"``, ``limit`` the cap (``"daily_usd"``, ``"monthly_images"``, ...),
    ``used`` and ``cap`` in USD or images. Fired once per tenant, cap and period across every
    worker sharing the state. It names the tenant: deliver it to operators, not tenants."""

    kind: str
    tenant: str
    limit: str
    threshold: float
    used: float
    cap: float


@dataclass(frozen=True, slots=True)
class PrescreenFailed(Event):
    """A prompt pre-screen could not answer and ``on_error="allow"`` let the request through
    (``fallback_chain.prescreen``)."""

    request_id: str
    #: The screen's model (e.g. ``omni-moderation-latest``).
    model: str
    #: How it failed (``timeout``, ``server_error``, ...).
    outcome: str
    message: str


Subscriber = Callable[[Event], None]


class EventBus:
    """A list of subscribers. ``bool(bus)`` is False when nobody listens."""

    __slots__ = ("_subscribers",)

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns a function that removes it again."""
        self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

        return unsubscribe

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def emit(self, event: Event) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber,
                              type(event).__name__)


def log_events(event: Event) -> None:
    """The default subscriber: attempts at DEBUG, breaker, cooldown and alerts at INFO/WARNING."""
    if isinstance(event, AttemptFinished):
        if log.isEnabledFor(logging.DEBUG):
            a = event.attempt
            log.debug("[%s] %s#%d %s %s %.3fs $%.4f %s", event.request_id, a.provider,
                      a.attempt, a.outcome.value, a.status_code or "", a.latency_s, a.cost_usd,
                      a.message or "")
    elif isinstance(event, BreakerStateChanged):
        log.info("breaker of %s: %s -> %s", event.provider, event.old, event.new)
    elif isinstance(event, CooldownStarted):
        log.info("%s cooling down for %.1fs after %s", event.provider, event.seconds,
                 event.outcome)
    elif isinstance(event, QuotaAlert):
        log.warning("%s is out of quota: %s", event.provider, event.message)
    elif isinstance(event, PrescreenFailed):
        log.warning("[%s] pre-screen %s failed (%s: %s); the prompt was let through "
                    "(on_error='allow')", event.request_id, event.model, event.outcome,
                    event.message)
    elif isinstance(event, BudgetAlert):
        log.warning("budget %s at %.0f%%: $%.4f of $%.2f", event.budget, event.threshold * 100,
                    event.spent_usd, event.cap_usd)
    elif isinstance(event, TenantQuotaAlert):  # the tenant id stays out of shared logs
        log.warning("a %s quota (%s) is at %.0f%%", event.kind, event.limit,
                    event.threshold * 100)
