"""Every row of the README's default policy table, driven through a two-provider chain of fakes."""

from __future__ import annotations

import pytest

from fallback_chain import Chain, Policy
from fallback_chain.errors import ChainExhaustedError, ConfigurationError, ContentPolicyError
from fallback_chain.events import CooldownStarted, Event, QuotaAlert
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.fake import Step
from fallback_chain.vtime import VirtualClock, run_virtual

S, F = "success", None  # shorthand

# script of provider a, script of provider b, expected attempts (provider, attempt, outcome),
# and who serves (or the error class).
ROWS = [
    ("rate_limited advances at once", [429], ["ok"],
     [("a", 1, "rate_limited"), ("b", 1, S)], "b"),
    ("quota_exhausted advances", ["quota_exhausted"], ["ok"],
     [("a", 1, "quota_exhausted"), ("b", 1, S)], "b"),
    ("server_error retried once, then advance", [500, 500], ["ok"],
     [("a", 1, "server_error"), ("a", 2, "server_error"), ("b", 1, S)], "b"),
    ("server_error retried once, then success", [503], ["ok"],
     [("a", 1, "server_error"), ("a", 2, S)], "a"),
    ("connection_error retried once", ["connection_error", "connection_error"], ["ok"],
     [("a", 1, "connection_error"), ("a", 2, "connection_error"), ("b", 1, S)], "b"),
    ("malformed_response retried once", ["malformed_response", "malformed_response"], ["ok"],
     [("a", 1, "malformed_response"), ("a", 2, "malformed_response"), ("b", 1, S)], "b"),
    ("fewer images than asked is malformed", [Step("ok", images=0), Step("ok", images=0)],
     ["ok"],
     [("a", 1, "malformed_response"), ("a", 2, "malformed_response"), ("b", 1, S)], "b"),
    ("timeout advances without retry", ["timeout"], ["ok"],
     [("a", 1, "timeout"), ("b", 1, S)], "b"),
    ("content_policy stops the chain", ["content_policy"], ["ok"],
     [("a", 1, "content_policy")], ContentPolicyError),
    ("invalid_request advances, no retry", [400], ["ok"],
     [("a", 1, "invalid_request"), ("b", 1, S)], "b"),
    ("auth_error advances", [401], ["ok"],
     [("a", 1, "auth_error"), ("b", 1, S)], "b"),
    ("403 is an auth_error", [403], ["ok"],
     [("a", 1, "auth_error"), ("b", 1, S)], "b"),
    ("not_found advances", [404], ["ok"],
     [("a", 1, "not_found"), ("b", 1, S)], "b"),
    ("everything fails", [500, 500], [401],
     [("a", 1, "server_error"), ("a", 2, "server_error"), ("b", 1, "auth_error")],
     ChainExhaustedError),
]


def _run_row(script_a: list[object], script_b: list[object], policy: Policy | None = None):
    clock = VirtualClock()
    a = FakeProvider("a", script_a, clock=clock, latency_s=0.5)
    b = FakeProvider("b", script_b, clock=clock, latency_s=0.5)
    events: list[Event] = []
    chain = Chain([a, b], clock=clock, policy=policy or Policy(attempt_timeout_s=10),
                  on_event=events.append)

    async def go():
        try:
            return await chain.agenerate("a lighthouse at dusk", size="256x256")
        except Exception as exc:
            return exc

    return run_virtual(go()), a, b, events


@pytest.mark.parametrize(("label", "script_a", "script_b", "expected", "served"), ROWS,
                         ids=[r[0] for r in ROWS])
def test_policy_row(label, script_a, script_b, expected, served):
    outcome, a, b, _ = _run_row(script_a, script_b)
    got = [(x.provider, x.attempt, x.outcome.value) for x in outcome.attempts]
    assert got == expected
    if isinstance(served, str):
        assert outcome.provider == served
        assert len(outcome.images) == 1
        assert outcome.cost_usd == pytest.approx(sum(x.cost_usd for x in outcome.attempts))
    else:
        assert isinstance(outcome, served)
    # the vendors saw exactly the calls the attempts list reports
    assert a.calls == sum(1 for x in outcome.attempts if x.provider == "a")
    assert b.calls == sum(1 for x in outcome.attempts if x.provider == "b")


def test_content_policy_reports_provider_and_reason_and_calls_nothing_after():
    err, _a, b, _ = _run_row([Step("content_policy", message="prompt mentions a weapon")],
                             ["ok"])
    assert isinstance(err, ContentPolicyError)
    assert err.provider == "a"
    assert err.reason == "prompt mentions a weapon"
    assert err.categories == ["fake"]
    assert b.calls == 0


def test_content_policy_can_advance_when_configured():
    result, _a, _b, _ = _run_row(["content_policy"], ["ok"],
                                Policy(on_content_policy="advance"))
    assert result.provider == "b"
    assert [x.outcome.value for x in result.attempts] == ["content_policy", "success"]


@pytest.mark.parametrize(("script", "outcome", "cooldown"), [
    ([429], "rate_limited", 30.0),
    ([Step(429, retry_after_s=7)], "rate_limited", 7.0),
    (["quota_exhausted"], "quota_exhausted", 3600.0),
    ([401], "auth_error", 3600.0),
    ([404], "not_found", 86400.0),
])
def test_cooldowns_keep_the_provider_out_of_the_next_request(script, outcome, cooldown):
    clock = VirtualClock()
    a = FakeProvider("a", script, clock=clock)
    b = FakeProvider("b", clock=clock)
    events: list[Event] = []
    chain = Chain([a, b], clock=clock, on_event=events.append)

    async def go():
        first = await chain.agenerate("x")
        second = await chain.agenerate("y")
        return first, second

    first, second = run_virtual(go())
    assert first.attempts[0].outcome == outcome
    assert [x.outcome.value for x in second.attempts] == ["cooling_down", "success"]
    started = [e for e in events if isinstance(e, CooldownStarted)]
    assert [(e.provider, e.outcome, e.seconds) for e in started] == [("a", outcome, cooldown)]
    assert any(isinstance(e, QuotaAlert) for e in events) == (outcome == "quota_exhausted")
    assert a.calls == 1


def test_policy_overrides_per_provider():
    clock = VirtualClock()
    a = FakeProvider("a", [500, 500, 500, "ok"], clock=clock)
    b = FakeProvider("b", [500, 500], clock=clock)
    c = FakeProvider("c", clock=clock)
    policy = Policy(retries={"server_error": 0}, providers={"a": {"retries": {"server_error": 3}}})
    result = run_virtual(Chain([a, b, c], clock=clock, policy=policy).agenerate("x"))
    assert [(x.provider, x.outcome.value) for x in result.attempts] == [
        ("a", "server_error"), ("a", "server_error"), ("a", "server_error"), ("a", "success")]


def test_retries_wait_with_backoff_and_honour_retry_after():
    clock = VirtualClock()
    a = FakeProvider("a", [Step(503, retry_after_s=4.0)], clock=clock)
    chain = Chain([a], clock=clock, policy=Policy(backoff_initial_s=1.0, backoff_jitter=0))

    async def go():
        t0 = clock.now()
        result = await chain.agenerate("x")
        return result, clock.now() - t0

    result, elapsed = run_virtual(go())
    assert [x.outcome.value for x in result.attempts] == ["server_error", "success"]
    assert elapsed == pytest.approx(4.0)


def test_unknown_outcome_names_in_policy_are_rejected():
    from fallback_chain.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="not a provider outcome"):
        Policy(retries={"server_eror": 2})
    with pytest.raises(ConfigurationError, match="unknown option"):
        Policy(providers={"a": {"retry": 1}})
    with pytest.raises(ConfigurationError, match="not in this chain"):
        Chain([FakeProvider("a")], policy=Policy(providers={"zz": {"attempt_timeout_s": 1}}))


@pytest.mark.parametrize(("deadline", "retry_after", "expected", "elapsed"), [
    # both providers rate-limited; the earliest cooldown (a: 2 s) fits the deadline: wait, retry a
    (30.0, 2.0, ["rate_limited", "rate_limited", "success"], 3.0),
    # it does not fit: give up at once instead of sleeping into the deadline
    (2.5, 2.0, ["rate_limited", "rate_limited"], 1.0),
    # no deadline, but longer than max_cooldown_wait_s (60 s): give up
    (None, 100.0, ["rate_limited", "rate_limited"], 1.0),
])
def test_wait_for_the_earliest_cooldown_only_if_it_fits(deadline, retry_after, expected,
                                                         elapsed):
    clock = VirtualClock()
    a = FakeProvider("a", [Step(429, retry_after_s=retry_after)], clock=clock, latency_s=0.5)
    b = FakeProvider("b", [Step(429, retry_after_s=retry_after + 5)], clock=clock,
                     latency_s=0.5)
    chain = Chain([a, b], clock=clock, deadline_s=deadline)

    async def go():
        t0 = clock.now()
        try:
            out = await chain.agenerate("x")
        except ChainExhaustedError as exc:
            out = exc
        return out, clock.now() - t0

    out, took = run_virtual(go())
    assert [x.outcome.value for x in out.attempts] == expected
    assert took == pytest.approx(elapsed)


@pytest.mark.parametrize("field", ["backoff_initial_s", "breaker_reset_s", "attempt_timeout_s",
                                   "max_wait_s", "rate_margin_s", "images_per_minute"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=f"{field} must be a finite number"):
        Policy(**{field: value})
