"""``SimProvider`` raises what a real adapter raises and follows its profile."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from fallback_chain import ImageRequest
from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome
from fallback_chain.simulate import (
    Empirical,
    Fixed,
    LogNormal,
    Outage,
    ProviderProfile,
    SimProvider,
    run_simulation,
)
from fallback_chain.simulate.distributions import parse_distribution
from fallback_chain.simulate.errors import ExperimentError
from fallback_chain.simulate.provider import VendorLimiter

REQUEST = ImageRequest(prompt="a lighthouse", n=2)


def _call(provider: SimProvider, at: float = 0.0, timeout: float = 60.0
          ) -> tuple[object, float]:
    async def main() -> tuple[object, float]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                reply: object = await provider.generate(REQUEST, timeout=timeout)
        except (ProviderError, TimeoutError) as exc:
            reply = exc
        return reply, loop.time() - at

    return run_simulation(main(), start=at)


def test_success_delivers_n_verified_images_at_the_profile_price() -> None:
    provider = SimProvider(ProviderProfile("p", price_usd=0.05, latency=Fixed(3.0)))
    reply, took = _call(provider)
    assert took == 3.0
    assert len(reply.images) == 2 and reply.images[0].mime_type == "image/png"  # type: ignore[attr-defined]
    assert reply.cost_usd == pytest.approx(0.10)  # type: ignore[attr-defined]
    assert provider.estimate_cost(REQUEST) == pytest.approx(0.10)


@pytest.mark.parametrize(("outcome", "status"), [
    (Outcome.SERVER_ERROR, 500), (Outcome.RATE_LIMITED, 429), (Outcome.CONTENT_POLICY, 400),
    (Outcome.CONNECTION_ERROR, None), (Outcome.AUTH_ERROR, 401)])
def test_faults_raise_the_adapters_provider_error(outcome: Outcome, status: int | None
                                                  ) -> None:
    profile = ProviderProfile("p", faults={outcome: 1.0}, error_latency=Fixed(0.25),
                              retry_after_s=7.0, billed_on_failure={outcome: 0.5})
    error, took = _call(SimProvider(profile))
    assert isinstance(error, ProviderError)
    assert error.outcome is outcome and error.status_code == status
    assert took == 0.25
    assert error.cost_usd == pytest.approx(0.04 * 2 * 0.5)
    if outcome is Outcome.RATE_LIMITED:
        assert error.retry_after_s == 7.0


def test_timeout_fault_hangs_until_the_callers_timeout() -> None:
    profile = ProviderProfile("p", faults={Outcome.TIMEOUT: 1.0})
    error, took = _call(SimProvider(profile), timeout=45.0)
    assert isinstance(error, TimeoutError) and took == 45.0


def test_slower_than_the_timeout_is_cut_by_the_caller() -> None:
    error, took = _call(SimProvider(ProviderProfile("p", latency=Fixed(90.0))), timeout=30.0)
    assert isinstance(error, TimeoutError) and took == 30.0


def test_outage_window_replaces_the_fault_rates_on_the_wall_clock() -> None:
    down = Outage(36_000.0, 37_200.0, {Outcome.SERVER_ERROR: 1.0})
    profile = ProviderProfile("p", latency=Fixed(1.0), outages=(down,))
    assert not isinstance(_call(SimProvider(profile), at=35_999.0)[0], Exception)
    assert isinstance(_call(SimProvider(profile), at=36_000.0)[0], ProviderError)
    assert isinstance(_call(SimProvider(profile), at=37_199.9)[0], ProviderError)
    assert not isinstance(_call(SimProvider(profile), at=37_200.0)[0], Exception)


def test_overlapping_outages_are_refused() -> None:
    with pytest.raises(ExperimentError, match="overlaps"):
        ProviderProfile("p", outages=(Outage(0, 100, {}), Outage(50, 200, {})))


def test_vendor_limiter_is_a_sliding_minute_with_retry_after() -> None:
    limiter = VendorLimiter(10)
    assert limiter.admit(0.0, 4) == 0.0
    assert limiter.admit(20.0, 6) == 0.0
    assert limiter.admit(30.0, 1) == pytest.approx(30.0)  # the 4 images of t=0 leave at 60
    assert limiter.admit(60.0, 4) == 0.0
    assert limiter.admit(61.0, 11) == math.inf


def test_rate_limited_call_says_when_to_come_back() -> None:
    provider = SimProvider(ProviderProfile("p", latency=Fixed(1.0), images_per_minute=3))

    async def main() -> list[object]:
        out: list[object] = []
        for _ in range(3):
            try:
                out.append(await provider.generate(REQUEST, timeout=60))
            except ProviderError as exc:
                out.append(exc)
        return out

    first, second, third = run_simulation(main())
    assert not isinstance(first, ProviderError)
    assert isinstance(second, ProviderError) and second.status_code == 429
    assert second.retry_after_s == 59.0  # 2 images at t=0 leave at t=60; asked at t=1
    assert isinstance(third, ProviderError)


def test_lognormal_matches_its_percentiles() -> None:
    dist = LogNormal(6.0, 14.0)
    rng = random.Random(1)
    draws = sorted(dist.sample(rng) for _ in range(40_000))
    assert draws[len(draws) // 2] == pytest.approx(6.0, rel=0.03)
    assert draws[int(len(draws) * 0.95)] == pytest.approx(14.0, rel=0.03)
    assert dist.quantile(0.95) == pytest.approx(14.0)


@pytest.mark.parametrize(("spec", "kind"), [
    (2.5, "Fixed"), ([1, 3], "Uniform"), ({"p50": 4, "p95": 9}, "LogNormal"),
    ({"dist": "exponential", "mean": 2}, "Exponential"),
    ({"dist": "empirical", "values": [1, 2, 3]}, "Empirical")])
def test_distribution_forms(spec: object, kind: str) -> None:
    assert type(parse_distribution(spec, "latency")).__name__ == kind


@pytest.mark.parametrize(("spec", "message"), [
    ({"p50": 9, "p95": 4}, "latency.p95: must be >= p50"),
    ({"dist": "gamma"}, "unknown distribution 'gamma'"),
    ({"dist": "uniform", "low": 1}, "latency.high"),
    ("fast", "expected seconds")])
def test_bad_distributions_name_the_key(spec: object, message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        parse_distribution(spec, "latency")


def test_empirical_draws_only_recorded_values() -> None:
    dist = Empirical((3.0, 1.0, 2.0))
    rng = random.Random(0)
    assert {dist.sample(rng) for _ in range(200)} == {1.0, 2.0, 3.0}
