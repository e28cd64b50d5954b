"""Outages on the virtual wall clock move traffic to the next provider inside the window,
and only there; the vendor's own rate limit answers 429 with Retry-After."""

from __future__ import annotations

from sim_helpers import config, experiment

from fallback_chain.outcome import Outcome
from fallback_chain.simulate import Fixed, Outage, ProviderProfile, run_experiment
from fallback_chain.simulate.timeparse import time_of_day

TEN, TEN_TWENTY = time_of_day("10:00", "t"), time_of_day("10:20", "t")


def _run(breaker_reset_s: float) -> dict[float, float]:
    """Share served by the second provider per minute of arrivals, 09:30-10:50."""
    down = Outage(TEN, TEN_TWENTY, {Outcome.SERVER_ERROR: 0.5, Outcome.CONNECTION_ERROR: 0.5})
    gemini = ProviderProfile("gemini", price_usd=0.039, latency=Fixed(4.0), outages=(down,))
    openai = ProviderProfile("openai", price_usd=0.08, latency=Fixed(6.0))
    chain = config("given", ["gemini", "openai"], breaker_reset_s=breaker_reset_s)
    exp = experiment([gemini, openai], [chain], start=time_of_day("09:30", "t"),
                     end=time_of_day("10:50", "t"), per_min=30, bucket_s=60.0)
    r = run_experiment(exp).results[0]
    assert r.delivered == r.requests
    return {t.start: t.served["openai"] / t.delivered for t in r.timeline}


def test_outage_shifts_traffic_only_inside_the_window() -> None:
    shares = _run(breaker_reset_s=30.0)
    inside = [s for t, s in shares.items() if TEN <= t < TEN_TWENTY]
    before = [s for t, s in shares.items() if t < TEN]
    after = [s for t, s in shares.items() if t >= TEN_TWENTY + 60]  # the breaker's probe
    assert len(inside) == 20 and all(s == 1.0 for s in inside)
    assert before and all(s == 0.0 for s in before)
    assert after and all(s == 0.0 for s in after)


def test_traffic_comes_back_at_the_breakers_first_healthy_probe() -> None:
    """The simulation runs the real breaker: during the outage it opens, and traffic returns
    to the primary at the first probe after the window, within one reset period."""
    reset = 300.0
    shares = _run(breaker_reset_s=reset)
    last_spill = max(t for t, s in shares.items() if s > 0)
    assert TEN_TWENTY <= last_spill < TEN_TWENTY + reset
    assert all(s == 1.0 for t, s in shares.items() if TEN <= t < TEN_TWENTY)


def test_vendor_rate_limit_caps_images_per_minute() -> None:
    gemini = ProviderProfile("gemini", price_usd=0.039, latency=Fixed(2.0),
                             images_per_minute=10)
    openai = ProviderProfile("openai", price_usd=0.08, latency=Fixed(2.0))
    chain = config("given", ["gemini", "openai"])
    exp = experiment([gemini, openai], [chain], start=0.0, end=3600.0, per_min=20,
                     arrivals="even", bucket_s=60.0)
    r = run_experiment(exp).results[0]
    assert r.delivered == r.requests == 1199
    per_minute = [t.served["gemini"] for t in r.timeline]
    assert max(per_minute) <= 10
    # the limit is used: about ten a minute reach gemini, the rest go to openai
    assert 0.4 < r.served_share("gemini") <= 0.5


def test_client_side_limiter_keeps_the_vendor_from_saying_429() -> None:
    """The vendor's limit and the policy's limiter are independent: with the policy pacing
    gemini at its vendor limit, no call to gemini is wasted on a 429."""
    gemini = ProviderProfile("gemini", price_usd=0.039, latency=Fixed(2.0),
                             images_per_minute=10)
    openai = ProviderProfile("openai", price_usd=0.08, latency=Fixed(2.0))
    unpaced = config("unpaced", ["gemini", "openai"])
    paced = config("paced", ["gemini", "openai"],
                   providers={"gemini": {"images_per_minute": 10}})
    exp = experiment([gemini, openai], [unpaced, paced], start=0.0, end=3600.0, per_min=20)
    by = {r.config: r for r in run_experiment(exp).results}
    assert by["unpaced"].calls_by["gemini"] > by["unpaced"].served["gemini"]  # 429s
    assert by["paced"].calls_by["gemini"] == by["paced"].served["gemini"]  # none
    assert by["paced"].delivered == by["paced"].requests
