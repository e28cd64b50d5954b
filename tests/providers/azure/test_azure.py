"""AzureOpenAIProvider through the openai SDK's AsyncAzureOpenAI against the emulated Azure API
(in-process, and over a real loopback server): the URL and auth Azure gets, success and cost,
429 / 5xx / content filter / timeout through a chain, Entra ID tokens, configuration errors,
and the openai SDK used directly as a client of the emulated API."""

from __future__ import annotations

import asyncio
import sys
import types

import openai
import pytest

from fallback_chain import Chain, ImageRequest, Outcome, Policy
from fallback_chain.cost.catalogue import PriceCatalogue
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.errors import ChainExhaustedError, ConfigurationError, ContentPolicyError
from fallback_chain.events import CooldownStarted
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.azure import AzureOpenAIProvider
from fallback_chain.providers.azure.adapter import DEFAULT_API_VERSION
from fallback_chain.providers.azure.cost import cost_from_azure_usage
from fallback_chain.providers.azure.wire import error_from_status

KEY = "azure-test-key-123"
ENDPOINT = "http://azure-emulator.test"
FAST = Policy(backoff_initial_s=0.001, backoff_max_s=0.001, backoff_jitter=0.0,
              wait_for_cooldown=False, attempt_timeout_s=5.0)


def emulator(script=None, **settings) -> Emulator:
    faults = {"azure": {"script": script, **settings}} if script is not None else None
    return Emulator(faults=faults, api_keys=KEY)


def azure(emu: Emulator, **kw) -> AzureOpenAIProvider:
    kw.setdefault("api_key", KEY)
    kw.setdefault("endpoint", ENDPOINT)
    kw.setdefault("deployment", "images-prod")
    return AzureOpenAIProvider(transport=emu.httpx2_transport(), **kw)


async def through_chain(providers, prompt="a lighthouse at dusk", **kw):
    events: list = []
    chain = Chain(providers, policy=kw.pop("policy", FAST), log=False, on_event=events.append,
                  **kw)
    try:
        result = await chain.agenerate(prompt)
        return result, None, result.attempts, events
    except (ContentPolicyError, ChainExhaustedError) as exc:
        return None, exc, exc.attempts, events
    finally:
        await chain.aclose()


def test_success_goes_to_the_deployment_with_api_key_and_version_and_is_priced():
    emu = emulator()
    provider = azure(emu)
    result, error, attempts, _ = asyncio.run(through_chain([provider]))
    assert error is None and len(result.images) == 1
    (entry,) = emu.requests(vendor="azure")
    assert entry.path == "/openai/deployments/images-prod/images/generations"
    assert entry.params["model"] == "gpt-image-2"
    (attempt,) = attempts
    assert attempt.provider == "azure" and attempt.outcome is Outcome.SUCCESS
    assert provider.key == "azure/gpt-image-2"  # breakers and cooldowns: one per model
    assert attempt.cost_source == "reported"
    # the reported usage at Azure's rates (providers/azure/models.json)
    usage = {"input_tokens": 10, "output_tokens": 1000,
             "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
             "output_tokens_details": {"image_tokens": 1000, "text_tokens": 0}}
    assert cost_from_azure_usage("gpt-image-1", usage) == pytest.approx(
        (10 * 5.0 + 1000 * 40.0) / 1e6)
    assert provider.estimate_cost(ImageRequest(prompt="x")) == pytest.approx(0.053)


def test_the_request_carries_api_key_header_and_api_version(monkeypatch):
    seen = []
    emu = emulator()
    inner = emu.httpx2_transport()

    class Spy(type(inner)):  # type: ignore[misc]
        async def handle_async_request(self, request):
            seen.append(request)
            return await super().handle_async_request(request)

    provider = AzureOpenAIProvider(api_key=KEY, endpoint=ENDPOINT, transport=Spy(emu))
    asyncio.run(through_chain([provider]))
    (request,) = seen
    assert request.headers["api-key"] == KEY and "authorization" not in request.headers
    assert request.url.params["api-version"] == DEFAULT_API_VERSION
    assert request.url.path == "/openai/deployments/gpt-image-2/images/generations"


@pytest.mark.parametrize(("script", "outcomes", "served_by", "cooldown"), [
    (["429"], [Outcome.RATE_LIMITED, Outcome.SUCCESS], "next", 7.0),
    (["500", "500"], [Outcome.SERVER_ERROR, Outcome.SERVER_ERROR, Outcome.SUCCESS], "next",
     None),
    (["500", "ok"], [Outcome.SERVER_ERROR, Outcome.SUCCESS], "azure", None),
    (["quota"], [Outcome.QUOTA_EXHAUSTED, Outcome.SUCCESS], "next", 3600.0),
    (["deployment_not_found"], [Outcome.NOT_FOUND, Outcome.SUCCESS], "next", 86400.0),
    (["auth"], [Outcome.AUTH_ERROR, Outcome.SUCCESS], "next", 3600.0),
    (["resource_blocked"], [Outcome.AUTH_ERROR, Outcome.SUCCESS], "next", 3600.0),
    (["reset", "reset"], [Outcome.CONNECTION_ERROR] * 2 + [Outcome.SUCCESS], "next", None),
    (["truncated", "ok"], [Outcome.MALFORMED_RESPONSE, Outcome.SUCCESS], "azure", None),
])
def test_faults_through_a_chain(script, outcomes, served_by, cooldown):
    emu = emulator(script, retry_after=7)
    result, error, attempts, events = asyncio.run(
        through_chain([azure(emu), FakeProvider("next")]))
    assert error is None, error
    assert [a.outcome for a in attempts] == outcomes
    assert result.provider == served_by
    cooldowns = [e.seconds for e in events if isinstance(e, CooldownStarted)
                 and e.provider == "azure/gpt-image-2"]
    assert cooldowns == ([] if cooldown is None else [cooldown])


def test_content_filter_stops_the_chain_with_the_categories():
    emu = emulator([{"fault": "content_filter", "categories": ["violence", "hate"]}])
    backup = FakeProvider("next")
    _, error, attempts, _ = asyncio.run(through_chain([azure(emu), backup]))
    assert isinstance(error, ContentPolicyError)
    assert sorted(error.categories) == ["hate", "violence"]
    assert "content management policy" in error.reason
    assert "violence (high)" in error.reason and "hate (high)" in error.reason
    assert backup.calls == 0 and [a.outcome for a in attempts] == [Outcome.CONTENT_POLICY]


def test_timeout_advances():
    emu = emulator(["hang"], hang_s=30)
    policy = Policy(backoff_initial_s=0.001, backoff_jitter=0.0, wait_for_cooldown=False,
                    attempt_timeout_s=0.3)
    result, error, attempts, _ = asyncio.run(
        through_chain([azure(emu), FakeProvider("next")], policy=policy))
    assert error is None and result.provider == "next"
    assert [a.outcome for a in attempts] == [Outcome.TIMEOUT, Outcome.SUCCESS]


def test_entra_id_token_provider_sends_a_bearer_token_and_no_key(monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    emu = emulator()
    asked = []

    async def token() -> str:
        asked.append(1)
        return KEY

    provider = azure(emu, api_key=None, azure_ad_token_provider=token)
    _, error, _, _ = asyncio.run(through_chain([provider]))
    assert error is None and asked == [1]
    # a wrong token is the emulator's 401, an auth_error
    bad = azure(emu, api_key=None, azure_ad_token_provider=lambda: "expired-token")
    _, error, attempts, _ = asyncio.run(through_chain([bad, FakeProvider("next")]))
    assert attempts[0].outcome is Outcome.AUTH_ERROR
    assert "Access denied due to invalid subscription key" in attempts[0].message


def test_entra_id_option_builds_the_provider_from_azure_identity(monkeypatch):
    """``entra_id=True`` imports azure-identity only then; here a stand-in module records the
    scope asked for (azure-identity itself is optional and not installed for the tests)."""
    calls = []
    aio = types.ModuleType("azure.identity.aio")

    class DefaultAzureCredential:
        pass

    def get_bearer_token_provider(credential, scope):
        calls.append((type(credential).__name__, scope))
        return lambda: KEY

    aio.DefaultAzureCredential = DefaultAzureCredential  # type: ignore[attr-defined]
    aio.get_bearer_token_provider = get_bearer_token_provider  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure.identity.aio", aio)
    provider = azure(emulator(), api_key=None, entra_id=True)
    assert calls == [("DefaultAzureCredential", "https://cognitiveservices.azure.com/.default")]
    _, error, _, _ = asyncio.run(through_chain([provider]))
    assert error is None
    monkeypatch.setitem(sys.modules, "azure.identity.aio", None)  # not installed
    with pytest.raises(ConfigurationError, match="azure-identity"):
        azure(emulator(), api_key=None, entra_id=True)


def test_configuration_errors(monkeypatch):
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        AzureOpenAIProvider(api_key=KEY)
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_API_KEY"):
        AzureOpenAIProvider(endpoint=ENDPOINT)
    with pytest.raises(ConfigurationError, match="not both"):
        AzureOpenAIProvider(api_key=KEY, endpoint=ENDPOINT, azure_ad_token_provider=lambda: "t")
    with pytest.raises(ConfigurationError, match="resource root"):
        AzureOpenAIProvider(api_key=KEY, endpoint=f"{ENDPOINT}/openai/deployments/x")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    provider = AzureOpenAIProvider(model="gpt-image-1.5", name="hero")
    assert (provider.endpoint, provider.deployment, provider.key) == (
        ENDPOINT, "gpt-image-1.5", "hero")


def test_check_is_free_and_reports_a_wrong_key():
    emu = emulator()

    async def go(provider):
        try:
            return await provider.check()
        finally:
            await provider.aclose()

    ok = asyncio.run(go(azure(emu)))
    assert ok.ok and "credentials accepted" in ok.detail
    assert emu.log.count(vendor="azure", endpoint="generate") == 0
    bad = asyncio.run(go(azure(emu, api_key="wrong-key-000")))
    assert not bad.ok and "credentials rejected" in bad.detail


def test_negotiated_prices_apply_to_azure_only():
    prices = PriceCatalogue.builtin().with_overrides(
        {"vendors": {"azure": {"models": {"gpt-image-2": {"price_factor": 0.5}}}}})
    provider = azure(emulator(), prices=prices)
    assert provider.estimate_cost(ImageRequest(prompt="x")) == pytest.approx(0.053 / 2)


@pytest.mark.parametrize(("status", "body", "outcome", "retry_after"), [
    (429, {"code": "429", "message": "Requests to the Images_Generations_Create Operation "
           "have exceeded call rate limit. Please retry after 6 seconds."},
     Outcome.RATE_LIMITED, 6.0),
    (429, {"code": "429", "message": "... Please retry after 86400 seconds."},
     Outcome.QUOTA_EXHAUSTED, None),
    (400, {"code": "content_policy_violation", "message": "Your request was rejected as a "
           "result of our safety system.", "inner_error": {
               "code": "ResponsibleAIPolicyViolation", "revised_prompt": "a revised prompt",
               "content_filter_results": {"sexual": {"filtered": True, "severity": "medium"},
                                          "violence": {"filtered": False}}}},
     Outcome.CONTENT_POLICY, None),
    (403, {"code": "Forbidden", "message": "Your resource has been temporarily blocked "
           "because we detected behavior that may violate our content policy."},
     Outcome.AUTH_ERROR, None),
    (404, {"code": "DeploymentNotFound", "message": "The API deployment for this resource "
           "does not exist."}, Outcome.NOT_FOUND, None),
])
def test_azure_error_table(status, body, outcome, retry_after):
    err = error_from_status(status, body, {})
    assert err.outcome is outcome
    assert err.retry_after_s == retry_after
    if outcome is Outcome.CONTENT_POLICY:
        assert err.details["categories"] == ["sexual"]
        assert err.details["revised_prompt"] == "a revised prompt"
        assert "sexual (medium)" in err.message


def test_the_openai_sdk_as_a_client_of_the_emulated_api_over_loopback():
    """``openai.AsyncAzureOpenAI`` used directly (not through the adapter) against a real
    emulator server: a 200 with images and usage, then Azure's content-filter 400 as the SDK
    exposes it."""
    emu = Emulator(api_keys=KEY, faults={"azure": {"script": ["ok", "content_filter"]}})
    with serve_in_thread(emu) as base_url:
        async def go():
            client = openai.AsyncAzureOpenAI(azure_endpoint=base_url, azure_deployment="dep",
                                             api_version=DEFAULT_API_VERSION, api_key=KEY,
                                             max_retries=0)
            try:
                first = await client.images.generate(model="gpt-image-1.5", prompt="a fox")
                try:
                    await client.images.generate(model="gpt-image-1.5", prompt="a fox")
                except openai.BadRequestError as exc:
                    return first, exc
                return first, None
            finally:
                await client.close()

        first, refused = asyncio.run(go())
    assert first.data[0].b64_json and first.usage.output_tokens > 0
    assert refused is not None and refused.code == "content_filter"
    assert refused.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert refused.body["innererror"]["content_filter_result"]["violence"]["filtered"] is True
    assert [e.path for e in emu.requests(vendor="azure")] == [
        "/openai/deployments/dep/images/generations"] * 2


def test_an_edit_goes_to_the_deployments_edits_url_as_multipart():
    from fallback_chain.imaging import placeholder_image

    emu = emulator()
    provider = azure(emu)

    async def go():
        try:
            return await provider.generate(
                ImageRequest(prompt="make it blue", images=[placeholder_image(64, 64)], n=2),
                timeout=10)
        finally:
            await provider.aclose()

    reply = asyncio.run(go())
    assert len(reply.images) == 2 and reply.cost_usd is not None
    (entry,) = emu.requests(vendor="azure")
    assert entry.path == "/openai/deployments/images-prod/images/edits"
    assert len(entry.input_images) == 1
