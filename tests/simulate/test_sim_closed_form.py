"""The simulator against closed-form answers, on 100,000 requests through the real router."""

from __future__ import annotations

import math

from sim_helpers import NO_BREAKER, config, experiment

from fallback_chain.outcome import Outcome
from fallback_chain.simulate import Fixed, ProviderProfile, run_experiment

N = 100_000
P_FAIL = 0.3
C1, C2 = 0.04, 0.08
C_FAIL1 = 0.5 * C1  # the primary bills half its price for a failed call


def test_primary_failing_at_random_shifts_exactly_p_to_the_second() -> None:
    primary = ProviderProfile("primary", price_usd=C1, latency=Fixed(2.0),
                              error_latency=Fixed(0.5), faults={Outcome.SERVER_ERROR: P_FAIL},
                              billed_on_failure={Outcome.SERVER_ERROR: 0.5})
    second = ProviderProfile("second", price_usd=C2, latency=Fixed(3.0))
    chain = config("p=0.3, no retry", ["primary", "second"],
                   retries={"server_error": 0}, **NO_BREAKER)
    result = run_experiment(experiment([primary, second], [chain], requests=N, seed=11))
    r = result.results[0]

    assert r.requests == N and r.delivered == N
    assert abs(r.served_share("second") - P_FAIL) <= 0.01
    expected = (1 - P_FAIL) * C1 + P_FAIL * (C_FAIL1 + C2)
    assert math.isclose(r.cost_per_request_usd, expected, rel_tol=0.01)
    # every request called the primary once; the failures also called the second once
    assert r.calls_by["primary"] == N
    assert r.calls_by["second"] == r.served["second"]
    assert math.isclose(r.wasted_usd, r.calls_by["second"] * C_FAIL1, rel_tol=1e-9)
    # latencies are fixed: 2 s when the primary delivers, 0.5 + 3 s when it does not
    assert r.latency_p50_s == 2.0 and r.latency_p99_s == 3.5


def test_retries_follow_the_geometric_formula() -> None:
    """With one retry the primary fails a request with p^2; cost follows."""
    primary = ProviderProfile("primary", price_usd=C1, latency=Fixed(1.0),
                              faults={Outcome.SERVER_ERROR: P_FAIL})
    second = ProviderProfile("second", price_usd=C2, latency=Fixed(1.0))
    chain = config("one retry", ["primary", "second"], retries={"server_error": 1},
                   **NO_BREAKER)
    r = run_experiment(experiment([primary, second], [chain], requests=20_000,
                                  seed=5)).results[0]
    assert abs(r.served_share("second") - P_FAIL**2) <= 0.01
    expected = (1 - P_FAIL**2) * C1 + P_FAIL**2 * C2
    assert math.isclose(r.cost_per_request_usd, expected, rel_tol=0.01)
    assert math.isclose(r.calls_by["primary"] / r.requests, 1 + P_FAIL, rel_tol=0.01)
