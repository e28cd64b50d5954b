"""The outcome of one attempt: the vocabulary shared by adapters, router, policy and ledger."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What happened when one provider was asked (or not asked) for images.

    Values are lower-case strings, so ``Outcome("rate_limited") is Outcome.RATE_LIMITED`` and an
    ``Outcome`` compares equal to its string.
    """

    SUCCESS = "success"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    MALFORMED_RESPONSE = "malformed_response"
    CONTENT_POLICY = "content_policy"
    INVALID_REQUEST = "invalid_request"
    AUTH_ERROR = "auth_error"
    NOT_FOUND = "not_found"
    BREAKER_OPEN = "breaker_open"
    COOLING_DOWN = "cooling_down"
    SKIPPED = "skipped"
    BUDGET_EXCEEDED = "budget_exceeded"
    CANCELLED = "cancelled"
    #: The provider delivered (and billed) images that a validator rejected.
    REJECTED = "rejected"

    @property
    def was_called(self) -> bool:
        """True when the provider was actually called (as opposed to skipped by the router)."""
        return self not in _NOT_CALLED


_NOT_CALLED = frozenset(
    {Outcome.BREAKER_OPEN, Outcome.COOLING_DOWN, Outcome.SKIPPED, Outcome.BUDGET_EXCEEDED}
)

#: Outcomes that say the provider is unhealthy; they count towards opening its circuit breaker.
HEALTH_FAILURES = frozenset(
    {Outcome.SERVER_ERROR, Outcome.CONNECTION_ERROR, Outcome.MALFORMED_RESPONSE, Outcome.TIMEOUT}
)


def outcome_for_status(status: int) -> Outcome:
    """The outcome a bare HTTP status implies when the body says nothing more specific."""
    if 200 <= status < 300:
        return Outcome.MALFORMED_RESPONSE  # a 2xx that an adapter could not use
    if status == 429:
        return Outcome.RATE_LIMITED
    if status == 402:
        return Outcome.QUOTA_EXHAUSTED
    if status in (401, 403):
        return Outcome.AUTH_ERROR
    if status in (404, 410):
        return Outcome.NOT_FOUND
    if status == 408:
        return Outcome.TIMEOUT
    if status >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.INVALID_REQUEST
