"""Metrics through the meter: attempts, durations, cost, images, requests, cooldowns, alerts."""

from __future__ import annotations

import pytest
from otel_helpers import run

from fallback_chain import Chain, Policy
from fallback_chain.cost.budget import Budget
from fallback_chain.errors import ChainError
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.fake import Step
from fallback_chain.vtime import VirtualClock


def _by(points, *keys):
    return {tuple(attrs[k] for k in keys): value for attrs, value in points}


def test_metric_points_add_up_to_the_results_cost(otel):
    clock = VirtualClock()
    chain = Chain([FakeProvider("a", script=[429], clock=clock),
                   FakeProvider("b", script=[500, 500], clock=clock),
                   FakeProvider("c", clock=clock)], clock=clock, log=False)
    otel.instrument(chain)
    result = run(chain)
    assert not isinstance(result, ChainError)

    attempts = _by(otel.points("fallback_chain.attempts"), "fallback_chain.provider",
                   "fallback_chain.outcome")
    assert attempts == {("a", "rate_limited"): 1, ("b", "server_error"): 2, ("c", "success"): 1}
    cost = otel.points("fallback_chain.cost")
    assert sum(v for _, v in cost) == pytest.approx(result.cost_usd)
    assert {(a["fallback_chain.provider"], a["gen_ai.request.model"], a["fallback_chain.outcome"],
             a["fallback_chain.cost_source"]) for a, _ in cost} == {
        (x.provider, x.model, x.outcome.value, x.cost_source) for x in result.attempts
        if x.cost_usd > 0}
    durations = _by(otel.points("fallback_chain.attempt.duration"), "fallback_chain.provider")
    assert set(durations) == {("a",), ("b",), ("c",)}
    (req_attrs, req_seconds), = otel.points("fallback_chain.request.duration")
    assert req_attrs["fallback_chain.status"] == "delivered"
    assert req_seconds == pytest.approx(result.latency_s)
    assert _by(otel.points("fallback_chain.requests"), "fallback_chain.status") == {
        ("delivered",): 1}
    assert _by(otel.points("fallback_chain.images"), "fallback_chain.provider") == {("c",): 1}
    cooldowns = _by(otel.points("fallback_chain.cooldowns"), "fallback_chain.provider",
                    "fallback_chain.outcome")
    assert cooldowns == {("a", "rate_limited"): 1}


def test_failed_attempts_that_bill_are_counted_with_their_outcome(otel):
    clock = VirtualClock()
    slow = FakeProvider("a", script=["timeout"], clock=clock, price_usd=0.05)
    chain = Chain([slow, FakeProvider("b", clock=clock, price_usd=0.02)], clock=clock, log=False,
                  attempt_timeout_s=5, policy=Policy(retries={"timeout": 0}, bill_timeouts=True))
    otel.instrument(chain)
    result = run(chain)
    assert not isinstance(result, ChainError)
    cost = _by(otel.points("fallback_chain.cost"), "fallback_chain.provider",
               "fallback_chain.outcome")
    assert cost == {("a", "timeout"): pytest.approx(0.05), ("b", "success"): pytest.approx(0.02)}
    assert sum(cost.values()) == pytest.approx(result.cost_usd)


def test_failed_requests_and_skips_are_counted(otel):
    clock = VirtualClock()
    chain = Chain([FakeProvider("a", script=[Step("quota_exhausted")] * 3, clock=clock)],
                  clock=clock, log=False, policy=Policy(max_wait_s=0))
    otel.instrument(chain)
    assert isinstance(run(chain), ChainError)
    assert isinstance(run(chain), ChainError)
    requests = otel.points("fallback_chain.requests")
    assert [(a["fallback_chain.status"], v) for a, v in requests] == [("failed", 2)]
    assert requests[0][0]["error.type"].endswith("Error")
    attempts = _by(otel.points("fallback_chain.attempts"), "fallback_chain.outcome")
    assert attempts[("quota_exhausted",)] == 1
    assert attempts[("cooling_down",)] == 1
    # a skip is not a call: no duration for it
    assert _by(otel.points("fallback_chain.attempt.duration"), "fallback_chain.outcome") .keys() \
        == {("quota_exhausted",)}
    assert _by(otel.points("fallback_chain.quota.alerts"), "fallback_chain.provider") == {
        ("a",): 1}


def test_budget_alerts_are_counted(otel):
    clock = VirtualClock()
    budget = Budget(daily_usd=0.05)
    chain = Chain([FakeProvider("a", clock=clock, price_usd=0.02)], clock=clock, log=False,
                  budget=budget)
    otel.instrument(chain)
    for _ in range(3):
        run(chain)
    alerts = otel.points("fallback_chain.budget.alerts")
    assert alerts, "spending 0.06 of a 0.05 cap crosses 0.8 and 1.0"
    assert 0.8 in {a["fallback_chain.budget.threshold"] for a, _ in alerts}
