"""Property-based tests of the router over random fault scripts and chain lengths."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fallback_chain import Chain, ChainResult, Outcome, Policy
from fallback_chain.errors import ChainError, ContentPolicyError, DeadlineExceededError
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.fake import Step
from fallback_chain.vtime import VirtualClock, run_virtual

FAULTS = ["ok", 429, 500, 503, "quota_exhausted", "connection_error", "malformed_response",
          "timeout", "content_policy", 400, 401, 404]

steps = st.builds(
    Step,
    outcome=st.sampled_from(FAULTS),
    latency_s=st.sampled_from([0.0, 0.1, 1.0, 5.0]),
    retry_after_s=st.one_of(st.none(), st.sampled_from([0.5, 3.0, 120.0])),
)
scripts = st.lists(steps, max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chain_scripts=st.lists(scripts, min_size=1, max_size=5),
    retries=st.integers(min_value=0, max_value=3),
    deadline=st.one_of(st.none(), st.floats(min_value=0.5, max_value=40.0)),
    timeout=st.sampled_from([2.0, 4.0, 30.0]),
    n=st.integers(min_value=1, max_value=3),
)
def test_router_invariants(chain_scripts, retries, deadline, timeout, n):
    clock = VirtualClock()
    fakes = [FakeProvider(f"p{i}", script, clock=clock, price_usd=0.01 * (i + 1))
             for i, script in enumerate(chain_scripts)]
    policy = Policy(retries={"server_error": retries, "connection_error": retries,
                             "malformed_response": retries},
                    attempt_timeout_s=timeout, deadline_s=deadline)
    chain = Chain(fakes, clock=clock, policy=policy, seed=7)

    async def go():
        t0 = clock.now()
        try:
            out: ChainResult | ChainError = await chain.agenerate("x", n=n, size="128x128")
        except ChainError as exc:
            out = exc
        return out, clock.now() - t0

    out, elapsed = run_virtual(go())
    attempts = out.attempts

    # every attempt that says it called a provider matches a real call, and vice versa
    for fake in fakes:
        assert fake.calls == sum(1 for a in attempts
                                 if a.provider == fake.name and a.outcome.was_called)

    # no provider gets more tries in one turn than the policy allows; a 429 ends a turn (the
    # chain may come back after the cooldown, at most max_rounds times)
    run_len = 0
    prev = None
    for a in attempts:
        if not a.outcome.was_called:
            prev, run_len = None, 0
            continue
        run_len = run_len + 1 if a.provider == prev else 1
        prev = None if a.outcome is Outcome.RATE_LIMITED else a.provider
        assert run_len <= 1 + retries
        assert a.attempt >= run_len
    for fake in fakes:
        assert fake.calls <= policy.max_rounds * (1 + retries)

    # nothing runs after a stop
    stops = [i for i, a in enumerate(attempts) if a.outcome is Outcome.CONTENT_POLICY]
    if stops:
        assert stops[0] == len(attempts) - 1
        assert isinstance(out, ContentPolicyError)

    # cost is the sum of attempt costs; skips and un-billed failures cost nothing
    total = sum(a.cost_usd for a in attempts)
    assert abs(out.cost_usd - total) < 1e-12
    for a in attempts:
        if a.cost_source == "none":
            assert a.cost_usd == 0

    # attempts are in time order
    starts = [a.started_at for a in attempts]
    assert starts == sorted(starts)

    # the deadline holds (virtual time is exact, so no slack is needed beyond rounding)
    if deadline is not None:
        assert elapsed <= deadline + 1e-6
    if isinstance(out, DeadlineExceededError):
        assert deadline is not None

    if isinstance(out, ChainResult):
        assert attempts[-1].outcome is Outcome.SUCCESS
        assert attempts[-1].provider == out.provider
        assert len(out.images) == n
        assert all(a.outcome is not Outcome.SUCCESS for a in attempts[:-1])
    else:
        assert all(a.outcome is not Outcome.SUCCESS for a in attempts)
