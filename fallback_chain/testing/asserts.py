"""Assertions about a chain's result (or its error) whose failure message shows every attempt.

    assert_attempts(result, ["rate_limited", "server_error", "success"])
    assert_attempts(result, [("openai/gpt-image-2", "rate_limited"), ("gemini", "success")])
    assert_served_by(result, "gemini")
    assert_cost(result, 0.039)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from ..results import Attempt


class Served(Protocol):
    """A ``ChainResult``, or anything of yours that carries its ``provider`` and
    ``attempts``."""

    @property
    def provider(self) -> str | None: ...

    @property
    def attempts(self) -> Sequence[Attempt]: ...


#: A ``ChainResult``, a fallback-chain error (``.attempts``), or any object with ``attempts``.
Outcome = Any


def _attempts_of(outcome: Outcome) -> list[Attempt]:
    attempts = getattr(outcome, "attempts", None)
    if attempts is None:
        raise TypeError(f"expected a ChainResult or a fallback-chain error with .attempts, "
                        f"got {type(outcome).__name__}")
    return list(attempts)


def describe_attempts(outcome: Outcome) -> str:
    """One line per attempt: number, provider, outcome, status, cost and message."""
    lines = []
    for i, a in enumerate(_attempts_of(outcome), 1):
        status = f" HTTP {a.status_code}" if a.status_code is not None else ""
        message = f"  {a.message}" if a.message else ""
        lines.append(f"  {i}. {a.provider:<24} {a.outcome.value:<18}{status}"
                     f"  ${a.cost_usd:.4f}{message}")
    return "\n".join(lines) or "  (no attempts)"


def _actual(attempt: Attempt, want: Any) -> Any:
    if isinstance(want, tuple):
        return (attempt.provider, attempt.outcome.value)
    return attempt.outcome.value


def _wanted(want: Any) -> Any:
    if isinstance(want, tuple):
        provider, outcome = want
        return (str(provider), str(getattr(outcome, "value", outcome)))
    return str(getattr(want, "value", want))


def assert_attempts(outcome: Outcome, expected: Sequence[Any]) -> None:
    """The attempts' outcomes, in order: ``["rate_limited", "success"]``, or
    ``(provider, outcome)`` pairs to check who was asked too."""
    attempts = _attempts_of(outcome)
    wanted = [_wanted(w) for w in expected]
    actual = [_actual(a, w) for a, w in zip(attempts, expected, strict=False)]
    if len(attempts) != len(wanted) or actual != wanted:
        raise AssertionError(
            f"attempts differ\n  expected: {wanted}\n  actual:   "
            f"{[_actual(a, wanted[0] if wanted else '') for a in attempts]}\n"
            f"attempts:\n{describe_attempts(outcome)}")


def assert_served_by(result: Served, provider: str) -> None:
    """The provider (its key, e.g. ``openai/gpt-image-2``, or its name) that delivered."""
    served = {a.provider for a in result.attempts if a.outcome.value == "success"}
    if result.provider:
        served.add(result.provider)
    if provider not in served and not any(s.startswith(provider + "/") for s in served):
        raise AssertionError(f"served by {result.provider!r}, not {provider!r}\n"
                             f"attempts:\n{describe_attempts(result)}")


def assert_cost(outcome: Outcome, usd: float, *,
                abs_tol: float = 1e-9) -> None:
    """The money spent on every attempt of the request (failed ones included), in USD."""
    spent = sum(a.cost_usd for a in _attempts_of(outcome))
    if not math.isclose(spent, usd, rel_tol=0.0, abs_tol=abs_tol):
        raise AssertionError(f"cost ${spent:.6f}, expected ${usd:.6f}\n"
                             f"attempts:\n{describe_attempts(outcome)}")
