"""The product's canonical chain, end to end, through the three real adapters, the official
SDKs and a real loopback emulator server (the README's production chain)."""

from __future__ import annotations

import asyncio
import warnings
from datetime import UTC, datetime

import pytest

from fallback_chain import Chain, Outcome
from fallback_chain.clock import FastForwardClock
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.errors import ContentPolicyError
from fallback_chain.providers import GeminiProvider, LeonardoProvider, OpenAIProvider
from fallback_chain.providers.catalogue import ModelLifecycleWarning, _warned

#: A date before the catalogue's shutdown of the legacy models these tests still call on the
#: emulator (dall-e-2/-3 on 2026-05-12, gpt-image-1 on 2026-10-23, gpt-image-1.5 and -1-mini
#: on 2026-12-01): a chain skips a model shut down on its clock's date without calling it.
LEGACY = datetime(2026, 5, 1, tzinfo=UTC).timestamp()

KEY = "test-key"


@pytest.fixture(scope="module")
def server():
    emu = Emulator(api_keys=KEY, faults={"leonardo": {"job_delay_s": 0.05}})
    with serve_in_thread(emu) as base_url:
        yield emu, base_url


def _chain(base_url: str) -> Chain:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelLifecycleWarning)
        return Chain([
            GeminiProvider(model="gemini-2.5-flash-image", api_key=KEY, base_url=base_url),
            LeonardoProvider(api_key=KEY, base_url=base_url, poll_initial_s=0.02,
                             poll_interval_s=0.02),
            OpenAIProvider(model="gpt-image-1", api_key=KEY, base_url=f"{base_url}/v1"),
            OpenAIProvider(model="dall-e-3", api_key=KEY, base_url=f"{base_url}/v1"),
        ], policy=None, attempt_timeout_s=20, clock=FastForwardClock(LEGACY))


def test_gemini_429_then_leonardo_500_twice_then_gpt_image_1_succeeds(server):
    emu, base_url = server
    emu.reset()
    emu.set_faults({"gemini": {"script": "429"}, "leonardo": {"script": "500,500",
                                                              "job_delay_s": 0.05}})
    chain = _chain(base_url)

    async def go():
        async with chain:
            return await chain.agenerate("a lighthouse at dusk", size="1536x1024",
                                         quality="standard")

    result = asyncio.run(go())
    got = [(a.provider, a.model, a.attempt, a.outcome, a.status_code) for a in result.attempts]
    assert got == [
        ("gemini", "gemini-2.5-flash-image", 1, Outcome.RATE_LIMITED, 429),
        ("leonardo", result.attempts[1].model, 1, Outcome.SERVER_ERROR, 500),
        ("leonardo", result.attempts[1].model, 2, Outcome.SERVER_ERROR, 500),
        ("openai", "gpt-image-1", 1, Outcome.SUCCESS, None),
    ]
    assert (result.provider, result.model) == ("openai", "gpt-image-1")
    assert (result.image.width, result.image.height) == (1536, 1024)
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.attempts))
    assert result.attempts[-1].cost_source == "reported"
    assert result.attempts[-1].cost_usd > 0
    assert all(a.latency_s > 0 for a in result.attempts)
    # the vendors saw exactly these calls
    assert emu.log.count(vendor="gemini", endpoint="generate") == 1
    assert emu.log.count(vendor="leonardo", endpoint="generate") == 2
    assert emu.log.count(vendor="openai", endpoint="generate") == 1


def test_gemini_image_safety_stops_the_chain_with_the_reason(server):
    emu, base_url = server
    emu.reset()
    emu.set_faults({"gemini": {"script": "image_safety"}})
    chain = _chain(base_url)

    async def go():
        async with chain:
            with pytest.raises(ContentPolicyError) as info:
                await chain.agenerate("something the model refuses")
            return info.value

    err = asyncio.run(go())
    assert err.provider == "gemini"
    assert "IMAGE_SAFETY" in err.reason
    assert [a.outcome for a in err.attempts] == [Outcome.CONTENT_POLICY]
    assert emu.log.count(vendor="leonardo") == emu.log.count(vendor="openai") == 0


def test_dalle3_content_policy_violation_stops(server):
    emu, base_url = server
    emu.reset()
    emu.set_faults({"openai": {"models": {"dall-e-3": {"script": "content_policy_violation"}}}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelLifecycleWarning)
        dalle = OpenAIProvider(model="dall-e-3", api_key=KEY, base_url=f"{base_url}/v1")
        backup = OpenAIProvider(model="gpt-image-2", api_key=KEY, base_url=f"{base_url}/v1")
    chain = Chain([dalle, backup], clock=FastForwardClock(LEGACY))

    async def go():
        async with chain:
            with pytest.raises(ContentPolicyError) as info:
                await chain.agenerate("x")
            return info.value

    err = asyncio.run(go())
    assert (err.provider, err.attempts[0].provider_code) == ("openai",
                                                              "content_policy_violation")
    assert len(err.attempts) == 1
    assert emu.log.count(vendor="openai", endpoint="generate") == 1


def test_retired_model_warns_at_construction_and_check_reports_each_provider(server):
    emu, base_url = server
    _warned.discard(("openai", "dall-e-3"))
    with pytest.warns(ModelLifecycleWarning, match="dall-e-3.*shut down.*gpt-image-2"):
        OpenAIProvider(model="dall-e-3", api_key=KEY, base_url=f"{base_url}/v1")
    chain = _chain(base_url)
    wrong = OpenAIProvider(model="gpt-image-2", api_key="wrong-key", base_url=f"{base_url}/v1",
                           name="openai-wrong-key")

    async def go():
        results = [await p.check() for p in [*chain.providers, wrong]]
        await chain.aclose()
        await wrong.aclose()
        return results

    before = emu.log.count(endpoint="generate")
    checks = asyncio.run(go())
    assert [c.ok for c in checks] == [True, True, True, True, False]
    assert "401" in checks[-1].detail or "credentials" in checks[-1].detail
    assert emu.log.count(endpoint="generate") == before  # a preflight spends nothing
