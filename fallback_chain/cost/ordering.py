"""Order providers to minimise the expected cost of each delivered image.

A chain tries providers in order until one delivers. Let provider ``k`` deliver with
probability ``p_k`` and cost ``c_k`` per attempt in expectation: ``c_k = p_k * price_k +
(1 - p_k) * failure_cost_k``, where ``failure_cost`` is what a failed attempt is billed (0 for
a 429 or a 5xx, the full price for a billed timeout). Provider ``k`` is reached with probability
``R_k = (1 - p_1) ... (1 - p_(k-1))``, so one request costs ``E = sum_k R_k * c_k`` and is
delivered with probability ``1 - prod_k (1 - p_k)``, which does not depend on the order. The
order that minimises the expected cost per delivered image is therefore the one that minimises
``E``.

Exchange argument: swapping neighbours ``i, j`` changes only their two terms, and ``i`` first
is no worse exactly when ``c_i + (1 - p_i) c_j <= c_j + (1 - p_j) c_i``, i.e.
``c_i / p_i <= c_j / p_j``. Sorting by the ratio ``c / p`` (the expected spend per delivery if
that provider were retried until it delivered) is optimal.

Consequences: when failures are free the ratio is the price, so the cheapest provider goes
first however unreliable it is (its failures cost nothing but time); an expensive provider
moves forward only when failures elsewhere are billed often enough that its reliability pays.
Ties keep the given order, so an expensive fallback stays a fallback.

Success rates are smoothed with a Beta prior: ``p = (successes + a) / (attempts + a + b)``,
default ``(a, b) = (9, 1)``: an unknown provider is assumed 90 % reliable, and about ten
observed attempts weigh as much as the prior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_PRIOR = (9.0, 1.0)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A provider as the ordering sees it. ``cost_usd``: price of a delivering attempt
    (``None``: unknown, ordered after every priced provider); ``failure_cost_usd``: expected
    billed cost of a failed attempt; ``successes``/``attempts``: what was observed."""

    name: str
    cost_usd: float | None
    successes: int = 0
    attempts: int = 0
    failure_cost_usd: float = 0.0

    def success_rate(self, prior: tuple[float, float] = DEFAULT_PRIOR) -> float:
        a, b = prior
        return (self.successes + a) / (self.attempts + a + b)

    def expected_attempt_cost(self, prior: tuple[float, float] = DEFAULT_PRIOR) -> float:
        p = self.success_rate(prior)
        return p * (self.cost_usd or 0.0) + (1 - p) * self.failure_cost_usd


def order_by_expected_cost(candidates: Sequence[Candidate], *,
                           prior: tuple[float, float] = DEFAULT_PRIOR) -> list[Candidate]:
    """``candidates`` sorted by expected cost per delivered image (see the module docstring):
    ascending ``c / p``; unknown prices last; ties in the given order."""
    a, b = prior
    if a < 0 or b < 0 or a + b <= 0:
        raise ValueError(f"prior must be two non-negative weights, not both 0 (got {prior})")
    for c in candidates:
        if c.attempts < 0 or not 0 <= c.successes <= c.attempts:
            raise ValueError(f"{c.name}: need 0 <= successes <= attempts")

    def key(c: Candidate) -> tuple[int, float]:
        if c.cost_usd is None:
            return (1, 0.0)
        p = c.success_rate(prior)
        return (0, c.expected_attempt_cost(prior) / p if p > 0 else math.inf)

    return sorted(candidates, key=key)


def expected_cost(order: Sequence[Candidate], *, prior: tuple[float, float] = DEFAULT_PRIOR
                  ) -> tuple[float, float]:
    """``(expected cost of one request, probability it is delivered)`` for this order."""
    reach = 1.0
    cost = 0.0
    for c in order:
        cost += reach * c.expected_attempt_cost(prior)
        reach *= 1 - c.success_rate(prior)
    return cost, 1 - reach
