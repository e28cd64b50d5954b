"""``order_by_expected_cost``: the closed-form two-provider case and a brute-force check."""

from __future__ import annotations

import itertools
import random

import pytest

from fallback_chain.cost.ordering import Candidate, expected_cost, order_by_expected_cost

EVEN = (1.0, 1.0)  # Laplace prior: p = (successes + 1) / (attempts + 2)


def test_two_providers_closed_form():
    # A: $0.04, p = 0.5; B: $0.05, p = 0.9; every attempt billed (failure cost = price)
    a = Candidate("a", 0.04, successes=49, attempts=98, failure_cost_usd=0.04)
    b = Candidate("b", 0.05, successes=89, attempts=98, failure_cost_usd=0.05)
    assert a.success_rate(EVEN) == 0.5 and b.success_rate(EVEN) == 0.9
    # A first: 0.04 + 0.5 x 0.05 = 0.065; B first: 0.05 + 0.1 x 0.04 = 0.054
    assert expected_cost([a, b], prior=EVEN)[0] == pytest.approx(0.065)
    assert expected_cost([b, a], prior=EVEN)[0] == pytest.approx(0.054)
    assert order_by_expected_cost([a, b], prior=EVEN) == [b, a]
    # delivery probability does not depend on the order
    assert expected_cost([a, b], prior=EVEN)[1] == expected_cost([b, a], prior=EVEN)[1] == \
        pytest.approx(0.95)


def test_free_failures_put_the_cheapest_first_however_unreliable():
    a = Candidate("a", 0.04, successes=49, attempts=98)
    b = Candidate("b", 0.05, successes=89, attempts=98)
    # A first: 0.5 x 0.04 + 0.5 x 0.9 x 0.05 = 0.0425; B first: 0.9 x 0.05 + 0.1 x 0.5 x 0.04
    assert expected_cost([a, b], prior=EVEN)[0] == pytest.approx(0.0425)
    assert expected_cost([b, a], prior=EVEN)[0] == pytest.approx(0.047)
    assert order_by_expected_cost([b, a], prior=EVEN) == [a, b]


def test_matches_brute_force_over_all_orders():
    rng = random.Random(11)
    for _ in range(50):
        cands = []
        for i in range(5):
            attempts = rng.randint(0, 200)
            price = rng.choice([0.003, 0.015, 0.034, 0.039, 0.067, 0.133])
            cands.append(Candidate(f"p{i}", price, rng.randint(0, attempts), attempts,
                                   failure_cost_usd=price * rng.choice([0, 0.3, 1])))
        best = min(expected_cost(list(p))[0] for p in itertools.permutations(cands))
        assert expected_cost(order_by_expected_cost(cands))[0] == pytest.approx(best)


def test_prior_unknown_prices_and_ties():
    unknown = Candidate("new", 0.03)
    assert unknown.success_rate() == pytest.approx(0.9)  # default prior (9, 1)
    x, y = Candidate("x", 0.02), Candidate("y", 0.02)
    mystery = Candidate("mystery", None)
    assert order_by_expected_cost([mystery, y, x]) == [y, x, mystery]
    with pytest.raises(ValueError, match="successes"):
        order_by_expected_cost([Candidate("bad", 0.1, successes=3, attempts=1)])
    with pytest.raises(ValueError, match="prior"):
        order_by_expected_cost([x], prior=(0.0, 0.0))
