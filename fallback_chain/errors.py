"""Errors: what a caller of the chain can catch, and the one error adapters raise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .outcome import Outcome
from .secrets import redact

if TYPE_CHECKING:
    from .provider import ProviderReply
    from .results import Attempt, GeneratedImage


class ChainError(Exception):
    """The chain could not deliver images. ``attempts`` lists everything that was tried;
    ``images`` holds any images that were delivered (and paid for) by a partial delivery
    before the chain gave up, fewer than asked for."""

    def __init__(self, message: str, attempts: Sequence[Attempt] = (), *,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.attempts: list[Attempt] = list(attempts)
        self.request_id = request_id
        self.images: list[GeneratedImage] = []

    @property
    def cost_usd(self) -> float:
        """Money spent on the attempts of this request (failed attempts can cost money too)."""
        return sum(a.cost_usd for a in self.attempts)

    def __str__(self) -> str:
        if not self.attempts:
            return self.message
        return f"{self.message} [{summarise_attempts(self.attempts)}]"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[ChainError], state: dict[str, Any]) -> ChainError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class ContentPolicyError(ChainError):
    """A provider refused the request on content grounds; by default the chain stops there."""

    def __init__(self, message: str, attempts: Sequence[Attempt] = (), *, provider: str,
                 reason: str, categories: Sequence[str] = (),
                 request_id: str | None = None) -> None:
        super().__init__(message, attempts, request_id=request_id)
        self.provider = provider
        self.reason = reason
        self.categories = list(categories)


class ChainStoppedError(ChainError):
    """The policy said to stop after an outcome other than a content refusal."""


class ChainExhaustedError(ChainError):
    """Every provider was tried or skipped and none delivered."""


class BudgetExceededError(ChainError):
    """No provider could be used without going over a budget."""


class QuotaExceededError(BudgetExceededError):
    """A tenant's quota (``fallback_chain.cost.Quotas``) left no provider usable; nothing was
    sent. ``kind`` (``"user"`` or ``"project"``), ``tenant`` and ``limit`` (``"daily_usd"``,
    ``"monthly_images"``, ...) say which; the message names only that tenant."""

    def __init__(self, message: str, attempts: Sequence[Attempt] = (), *, kind: str,
                 tenant: str, limit: str, request_id: str | None = None) -> None:
        super().__init__(message, attempts, request_id=request_id)
        self.kind = kind
        self.tenant = tenant
        self.limit = limit


class DeadlineExceededError(ChainError, TimeoutError):
    """The whole-request deadline passed before any provider delivered."""


class SharedStateUnavailableError(ChainError):
    """The shared state backend (Redis) could not be reached to admit a call and the chain was
    told to fail closed (``on_unavailable="fail"``): the provider was not called, so no shared
    limit, breaker or budget was bypassed."""


class RequestValidationError(ChainError, ValueError):
    """The request is invalid; nothing was sent to any provider.

    ``errors`` lists ``(field, problem)`` pairs.
    """

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors = list(errors)
        detail = "; ".join(f"{field}: {problem}" if field else problem
                           for field, problem in self.errors)
        super().__init__(f"invalid image request: {detail}")


class ConfigurationError(ValueError):
    """A chain or provider is set up wrongly (missing key, duplicate names, bad option)."""


class ProviderError(Exception):
    """Raised by adapters, and only by adapters: one vendor response mapped to an ``Outcome``.

    ``cost_usd`` is set when the vendor billed the failed call (and reported how much).
    ``details`` carries structured extras such as moderation categories. ``request_fault``
    marks an ``invalid_request`` that no vendor would accept (the request itself is broken,
    e.g. no prompt), as opposed to one only this vendor refuses (a size or parameter it does
    not support); the policy stops the chain on it by default (``Policy.on_request_fault``).

    ``partial`` is for an adapter that makes several calls for one request: when some of them
    delivered images and another failed, it raises the failure with the delivered images as a
    ``ProviderReply`` (fewer than ``request.n``). The chain keeps those images and asks the
    next provider only for the missing count. ``cost_usd`` stays the whole attempt's billed
    cost (the delivered calls' included); without it, ``partial.cost_usd`` is used.
    """

    def __init__(self, outcome: Outcome | str, message: str = "", *,
                 status_code: int | None = None, provider_code: str | None = None,
                 retry_after_s: float | None = None, cost_usd: float | None = None,
                 details: Mapping[str, Any] | None = None,
                 partial: ProviderReply | None = None, request_fault: bool = False) -> None:
        self.outcome = Outcome(outcome)
        self.request_fault = request_fault and self.outcome is Outcome.INVALID_REQUEST
        self.message = redact(message)[:2000] if message else self.outcome.value
        self.status_code = status_code
        self.provider_code = provider_code
        self.retry_after_s = retry_after_s
        self.cost_usd = cost_usd
        self.details: Mapping[str, Any] = details or {}
        self.partial = partial
        super().__init__(self.message)

    def __str__(self) -> str:
        bits = [self.outcome.value]
        if self.status_code is not None:
            bits.append(str(self.status_code))
        if self.provider_code:
            bits.append(self.provider_code)
        return f"{' '.join(bits)}: {self.message}"

    def __repr__(self) -> str:
        return (f"ProviderError({self.outcome.value!r}, {self.message!r}, "
                f"status_code={self.status_code!r}, provider_code={self.provider_code!r})")


def summarise_attempts(attempts: Sequence[Attempt]) -> str:
    """One line: ``gemini#1 rate_limited 429; leonardo#1 server_error 500; ...``."""
    parts = []
    for a in attempts:
        code = f" {a.status_code}" if a.status_code is not None else ""
        parts.append(f"{a.provider}#{a.attempt} {a.outcome.value}{code}")
    return "; ".join(parts)
