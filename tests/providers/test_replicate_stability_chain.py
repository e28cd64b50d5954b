"""Issue 17: Stability AI and Replicate in one chain with Leonardo, on one emulator (virtual
time): a 429, two 5xx and a refusal fall through, or stop, as the policy says."""

from __future__ import annotations

from typing import Any

from fallback_chain import Chain, ChainResult, ImageRequest
from fallback_chain.emulator import Emulator
from fallback_chain.errors import ChainError, ContentPolicyError
from fallback_chain.providers.leonardo import LeonardoProvider
from fallback_chain.providers.replicate import ReplicateProvider
from fallback_chain.providers.stability import StabilityProvider
from fallback_chain.vtime import VirtualClock, run_virtual

KEY = "chain-key"
BASE = "http://emulator.test"


def run(faults: dict[str, Any]) -> tuple[ChainResult | None, ChainError | None, Emulator]:
    clock = VirtualClock()
    emu = Emulator(faults={"default": {"latency": 5}, **faults}, api_keys=KEY, clock=clock)
    common: dict[str, Any] = {"api_key": KEY, "base_url": BASE, "clock": clock,
                              "transport": emu.httpx_transport()}
    chain = Chain([StabilityProvider(**common), ReplicateProvider(**common),
                   LeonardoProvider(**common, poll_initial_s=0.5, poll_interval_s=0.5)],
                  clock=clock, log=False, attempt_timeout_s=60)

    async def go() -> tuple[ChainResult | None, ChainError | None]:
        try:
            return await chain.agenerate(ImageRequest(prompt="a harbour at dawn")), None
        except ChainError as exc:
            return None, exc
        finally:
            await chain.aclose()

    result, error = run_virtual(go())
    return result, error, emu


def test_429_then_two_5xx_fall_through_to_the_next_vendor():
    result, _, _ = run({"stability": {"script": "429"},
                        "replicate": {"script": "500,503"},
                        "leonardo": {"job_delay_s": 2.0}})
    assert result is not None and result.provider == "leonardo"
    assert [(a.provider, a.outcome.value, a.status_code) for a in result.attempts] == [
        ("stability", "rate_limited", 429), ("replicate", "server_error", 500),
        ("replicate", "server_error", 503), ("leonardo", "success", None)]
    assert result.cost_usd is not None and result.cost_usd > 0


def test_a_refusal_stops_the_chain_before_the_next_vendor():
    for faults, where in (({"stability": {"script": "moderated"}}, "stability"),
                          ({"stability": {"script": "500,500"},
                            "replicate": {"script": "nsfw"}}, "replicate")):
        _, error, emu = run(faults)
        assert isinstance(error, ContentPolicyError) and error.provider == where
        assert emu.log.count(vendor="leonardo") == 0


def test_both_deliver_when_nothing_goes_wrong():
    result, _, _ = run({})
    assert result is not None and result.provider == "stability"
    result, _, _ = run({"stability": {"script": "quota"}})
    assert result is not None and result.provider == "replicate"
    assert [a.outcome.value for a in result.attempts] == ["quota_exhausted", "success"]
