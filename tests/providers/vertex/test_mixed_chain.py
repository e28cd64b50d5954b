"""A chain that mixes the seed vendors with Azure OpenAI and Vertex AI, on one emulator over a
real loopback server: 429, 5xx and refusals fall through (or stop) as the policy says."""

from __future__ import annotations

import asyncio

from google.oauth2.credentials import Credentials

from fallback_chain import Chain, Outcome, Policy
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.errors import ContentPolicyError
from fallback_chain.providers import GeminiProvider, OpenAIProvider
from fallback_chain.providers.azure import AzureOpenAIProvider
from fallback_chain.providers.vertex import VertexProvider

KEY = "mixed-chain-key-123"
FAST = Policy(backoff_initial_s=0.001, backoff_max_s=0.001, backoff_jitter=0.0,
              wait_for_cooldown=False, attempt_timeout_s=5.0)


def providers(base_url: str) -> list:
    return [
        GeminiProvider(api_key=KEY, base_url=base_url),
        VertexProvider(project="acme", location="us-central1", base_url=base_url,
                       credentials=Credentials(token=KEY)),
        AzureOpenAIProvider(model="gpt-image-1.5", api_key=KEY, endpoint=base_url),
        OpenAIProvider(api_key=KEY, base_url=f"{base_url}/v1"),
    ]


def test_gemini_vertex_azure_openai_fall_through():
    emu = Emulator(api_keys=KEY, faults={"gemini": {"script": ["429"]},
                                         "vertex": {"script": ["503", "503"]}})
    with serve_in_thread(emu) as base_url:
        async def go():
            chain = Chain(providers(base_url), policy=FAST, log=False)
            try:
                return await chain.agenerate("a tram in the rain")
            finally:
                await chain.aclose()

        result = asyncio.run(go())
    # gemini 429 -> advance; vertex 503 twice (retried once) -> advance; azure serves
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("gemini", Outcome.RATE_LIMITED), ("vertex", Outcome.SERVER_ERROR),
        ("vertex", Outcome.SERVER_ERROR), ("azure", Outcome.SUCCESS)]
    assert result.attempts[-1].cost_source == "reported" and result.cost_usd > 0
    assert emu.log.count(vendor="openai", endpoint="generate") == 0


def test_an_azure_content_filter_stops_before_openai_is_asked():
    emu = Emulator(api_keys=KEY, faults={"azure": {"script": ["content_filter"]}})
    with serve_in_thread(emu) as base_url:
        async def go():
            azure = AzureOpenAIProvider(api_key=KEY, endpoint=base_url)
            openai = OpenAIProvider(api_key=KEY, base_url=f"{base_url}/v1")
            chain = Chain([azure, openai], policy=FAST, log=False)
            try:
                return await chain.agenerate("a tram in the rain")
            except ContentPolicyError as exc:
                return exc
            finally:
                await chain.aclose()

        refused = asyncio.run(go())
    assert isinstance(refused, ContentPolicyError) and refused.categories == ["violence"]
    assert emu.log.count(vendor="openai", endpoint="generate") == 0
