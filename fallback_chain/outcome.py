"""The outcome of one attempt: the vocabulary shared by adapters, router, policy and ledger."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What happened when one provider was asked (or not asked) for images.

    Values are lower-case strings, so ``Outcome("rate_limited") is Outcome.RATE_LIMITED`` and an
    ``Outcome`` compares equal to its string.
    """

    #: The provider delivered every image asked for (or the rest of a partial delivery).
    SUCCESS = "success"
    #: A rate limit (HTTP 429 that is not a quota or billing limit).
    RATE_LIMITED = "rate_limited"
    #: Out of quota, credits or a billing limit (``insufficient_quota``, HTTP 402, a daily cap), at
    #: any status.
    QUOTA_EXHAUSTED = "quota_exhausted"
    #: A 5xx answer or an HTML error page.
    SERVER_ERROR = "server_error"
    #: No answer within the attempt timeout (or HTTP 408).
    TIMEOUT = "timeout"
    #: The connection was refused, reset or dropped.
    CONNECTION_ERROR = "connection_error"
    #: An unusable 2xx answer: a bad image, too few images, no image and no safety reason.
    MALFORMED_RESPONSE = "malformed_response"
    #: A refusal on content grounds (the vendor's reason is kept).
    CONTENT_POLICY = "content_policy"
    #: Another 4xx: a size, parameter or model this vendor lacks (or, marked as a request fault, a
    #: request no vendor would take).
    INVALID_REQUEST = "invalid_request"
    #: The key was refused (HTTP 401/403, Gemini ``API_KEY_INVALID``).
    AUTH_ERROR = "auth_error"
    #: The model does not exist for this account (HTTP 404/410, ``model_not_found``).
    NOT_FOUND = "not_found"
    #: Skipped: the provider's circuit breaker is open.
    BREAKER_OPEN = "breaker_open"
    #: Skipped: the provider is cooling down after an earlier outcome.
    COOLING_DOWN = "cooling_down"
    #: Skipped: the provider cannot serve the request (capability, lifecycle) or is at capacity.
    SKIPPED = "skipped"
    #: Skipped: the call's estimate does not fit a budget or quota.
    BUDGET_EXCEEDED = "budget_exceeded"
    #: A call cancelled: it lost a hedge race (another provider answered first) or the caller gave
    #: up.
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
