"""VertexProvider through google-genai (``vertexai=True``) against the emulated Vertex AI API
(in-process, and over a real loopback server): project/location URLs with OAuth credentials,
express mode with an API key, success and cost, 429 / 5xx / refusal / timeout through a chain,
Vertex's quota and credential failures, and google-genai used directly as a client."""

from __future__ import annotations

import asyncio
import json

import pytest
from google import genai
from google.auth import exceptions as auth_exceptions
from google.genai import errors as genai_errors
from google.genai import types
from google.oauth2.credentials import Credentials

from fallback_chain import Chain, ImageRequest, Outcome, Policy
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.errors import ChainExhaustedError, ConfigurationError, ContentPolicyError
from fallback_chain.events import CooldownStarted
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.vertex import VertexProvider
from fallback_chain.providers.vertex.cost import cost_from_vertex_usage
from fallback_chain.providers.vertex.errors import error_from_exception

KEY = "vertex-test-token-123"
BASE = "http://vertex-emulator.test"
MODEL = "gemini-2.5-flash-image"
FAST = Policy(backoff_initial_s=0.001, backoff_max_s=0.001, backoff_jitter=0.0,
              wait_for_cooldown=False, attempt_timeout_s=5.0)
PROJECT_PATH = ("/v1beta1/projects/acme-images/locations/us-central1/publishers/google/models/"
                f"{MODEL}:generateContent")


@pytest.fixture(autouse=True)
def _no_google_env(monkeypatch):
    for name in ("GOOGLE_CLOUD_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
                 "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)


def emulator(script=None, **settings) -> Emulator:
    faults = {"vertex": {"script": script, **settings}} if script is not None else None
    return Emulator(faults=faults, api_keys=KEY)


def vertex(emu: Emulator, **kw) -> VertexProvider:
    """Project mode with a static OAuth token (the emulator's key): no ADC, no network."""
    kw.setdefault("credentials", Credentials(token=KEY))
    kw.setdefault("project", "acme-images")
    kw.setdefault("location", "us-central1")
    kw.setdefault("base_url", BASE)
    return VertexProvider(transport=emu.httpx2_transport(), **kw)


async def through_chain(providers, prompt="a harbour at dawn", **kw):
    events: list = []
    chain = Chain(providers, policy=kw.pop("policy", FAST), log=False, on_event=events.append)
    try:
        result = await chain.agenerate(prompt, **kw)
        return result, None, result.attempts, events
    except (ContentPolicyError, ChainExhaustedError) as exc:
        return None, exc, exc.attempts, events
    finally:
        await chain.aclose()


def test_project_mode_calls_the_project_location_url_with_a_bearer_token():
    emu = emulator()
    result, error, attempts, _ = asyncio.run(through_chain([vertex(emu)]))
    assert error is None and len(result.images) == 1
    (entry,) = emu.requests(vendor="vertex")
    assert entry.path == PROJECT_PATH
    (attempt,) = attempts
    assert attempt.provider == "vertex" and attempt.cost_source == "reported"
    # the reported usageMetadata at Vertex's rates (providers/vertex/models.json)
    usage = {"promptTokenCount": 10,
             "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}]}
    assert cost_from_vertex_usage(MODEL, usage) == pytest.approx((10 * 0.3 + 1290 * 30) / 1e6)
    assert attempt.cost_usd == pytest.approx(cost_from_vertex_usage(MODEL, entry_usage(emu)))


def entry_usage(emu: Emulator) -> dict:
    """The usage the emulator reported for its only image (prompt tokens + 1290 image
    tokens)."""
    (entry,) = emu.requests(vendor="vertex")
    prompt = entry.prompt or ""
    return {"promptTokenCount": max(1, -(-len(prompt) // 4)),
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}]}


def test_express_mode_sends_the_key_and_no_project():
    emu = emulator()
    provider = VertexProvider(api_key=KEY, base_url=BASE, transport=emu.httpx2_transport())
    assert provider.auth_mode == "api_key"
    _, error, _, _ = asyncio.run(through_chain([provider]))
    assert error is None
    (entry,) = emu.requests(vendor="vertex")
    assert entry.path == f"/v1beta1/publishers/google/models/{MODEL}:generateContent"


@pytest.mark.parametrize(("script", "outcomes", "served_by", "cooldown"), [
    (["429"], [Outcome.RATE_LIMITED, Outcome.SUCCESS], "next", 30.0),
    (["quota_per_day"], [Outcome.QUOTA_EXHAUSTED, Outcome.SUCCESS], "next", 3600.0),
    (["500", "500"], [Outcome.SERVER_ERROR] * 2 + [Outcome.SUCCESS], "next", None),
    (["503", "ok"], [Outcome.SERVER_ERROR, Outcome.SUCCESS], "vertex", None),
    (["401"], [Outcome.AUTH_ERROR, Outcome.SUCCESS], "next", 3600.0),
    (["permission"], [Outcome.AUTH_ERROR, Outcome.SUCCESS], "next", 3600.0),
    (["precondition"], [Outcome.AUTH_ERROR, Outcome.SUCCESS], "next", 3600.0),
    (["not_found"], [Outcome.NOT_FOUND, Outcome.SUCCESS], "next", 86400.0),
    (["no_image", "ok"], [Outcome.MALFORMED_RESPONSE, Outcome.SUCCESS], "vertex", None),
    (["reset", "reset"], [Outcome.CONNECTION_ERROR] * 2 + [Outcome.SUCCESS], "next", None),
])
def test_faults_through_a_chain(script, outcomes, served_by, cooldown):
    emu = emulator(script)
    result, error, attempts, events = asyncio.run(
        through_chain([vertex(emu), FakeProvider("next")]))
    assert error is None, error
    assert [a.outcome for a in attempts] == outcomes
    assert result.provider == served_by
    cooldowns = [e.seconds for e in events if isinstance(e, CooldownStarted)
                 and e.provider == "vertex"]
    assert cooldowns == ([] if cooldown is None else [cooldown])


def test_a_retry_after_header_is_honoured_when_sent():
    emu = emulator(["429"], retry_after=12, retry_after_format="seconds")
    _, _, _, events = asyncio.run(through_chain([vertex(emu), FakeProvider("next")]))
    assert [e.seconds for e in events if isinstance(e, CooldownStarted)] == [12.0]


@pytest.mark.parametrize("fault", ["image_safety", "blocked_prompt", "prohibited_content"])
def test_a_safety_refusal_stops_the_chain(fault):
    emu = emulator([fault])
    backup = FakeProvider("next")
    _, error, attempts, _ = asyncio.run(through_chain([vertex(emu), backup]))
    assert isinstance(error, ContentPolicyError) and backup.calls == 0
    assert [a.outcome for a in attempts] == [Outcome.CONTENT_POLICY]
    assert attempts[0].cost_source == "reported"  # Vertex bills the refused call's tokens


def test_timeout_advances():
    emu = emulator(["hang"], hang_s=30)
    policy = Policy(backoff_initial_s=0.001, backoff_jitter=0.0, wait_for_cooldown=False,
                    attempt_timeout_s=0.3)
    result, error, attempts, _ = asyncio.run(
        through_chain([vertex(emu), FakeProvider("next")], policy=policy))
    assert error is None and result.provider == "next"
    assert [a.outcome for a in attempts] == [Outcome.TIMEOUT, Outcome.SUCCESS]


def test_n2_is_two_parallel_calls():
    emu = emulator()
    result, error, _, _ = asyncio.run(through_chain([vertex(emu)], n=2))
    assert error is None and len(result.images) == 2
    assert emu.log.count(vendor="vertex", endpoint="generate") == 2


def test_a_wrong_token_is_an_auth_error_and_check_reports_it():
    emu = emulator()
    provider = vertex(emu, credentials=Credentials(token="stale-token"))
    _, _, attempts, _ = asyncio.run(through_chain([provider, FakeProvider("next")]))
    assert attempts[0].outcome is Outcome.AUTH_ERROR
    assert "invalid authentication credentials" in attempts[0].message

    async def check(p):
        try:
            return await p.check()
        finally:
            await p.aclose()

    ok = asyncio.run(check(vertex(emu)))
    assert ok.ok and "credentials accepted" in ok.detail and "project acme-images" in ok.detail
    assert not asyncio.run(check(vertex(emu, credentials=Credentials(token="stale")))).ok
    assert emu.log.count(vendor="vertex", endpoint="generate") == 1


def test_credential_failures_of_google_auth():
    assert error_from_exception(auth_exceptions.DefaultCredentialsError(
        "Your default credentials were not found.")).outcome is Outcome.AUTH_ERROR
    assert error_from_exception(auth_exceptions.RefreshError(
        "invalid_grant: Invalid JWT Signature.")).outcome is Outcome.AUTH_ERROR
    assert error_from_exception(auth_exceptions.TransportError(
        "connection refused")).outcome is Outcome.CONNECTION_ERROR


def test_a_service_account_file_gives_credentials_and_project(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "from-the-file", "private_key_id": "k1",
        "private_key": pem, "client_email": "img@from-the-file.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}))
    provider = VertexProvider(credentials=str(path))
    assert (provider.project, provider.location, provider.auth_mode) == (
        "from-the-file", "global", "credentials")
    # a config's secrets file hands GOOGLE_APPLICATION_CREDENTIALS over as the "key"
    assert VertexProvider(api_key=str(path)).auth_mode == "credentials"
    with pytest.raises(ConfigurationError, match="service-account key file"):
        VertexProvider(credentials=str(tmp_path / "missing.json"))


def test_configuration_errors(monkeypatch):
    with pytest.raises(ConfigurationError, match="not both"):
        VertexProvider(api_key=KEY, credentials=Credentials(token=KEY))
    with pytest.raises(ConfigurationError, match="GOOGLE_CLOUD_PROJECT"):
        VertexProvider(base_url=BASE, credentials=Credentials(token=KEY))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    provider = VertexProvider(credentials=Credentials(token=KEY))
    assert (provider.project, provider.location, provider.api_version) == (
        "env-project", "europe-west4", "v1beta1")
    assert provider.estimate_cost(ImageRequest(prompt="x")) == pytest.approx(0.039)


def test_google_genai_as_a_client_of_the_emulated_api_over_loopback():
    """``genai.Client(vertexai=True, ...)`` used directly (not through the adapter) against a
    real emulator server: an image, then Vertex's 429 as google-genai raises it."""
    emu = Emulator(api_keys=KEY, faults={"vertex": {"script": ["ok", "429"]}})
    with serve_in_thread(emu) as base_url:
        async def go():
            client = genai.Client(vertexai=True, project="acme-images", location="us-central1",
                                  credentials=Credentials(token=KEY),
                                  http_options=types.HttpOptions(base_url=base_url))
            config = types.GenerateContentConfig(response_modalities=["IMAGE"])
            first = await client.aio.models.generate_content(
                model=MODEL, contents="a red kite", config=config)
            try:
                await client.aio.models.generate_content(model=MODEL, contents="a red kite",
                                                         config=config)
            except genai_errors.ClientError as exc:
                return first, exc
            return first, None

        first, refused = asyncio.run(go())
    part = first.candidates[0].content.parts[0]
    assert part.inline_data.data[:4] == b"\x89PNG"
    assert first.usage_metadata.candidates_token_count == 1290
    assert refused is not None and refused.code == 429 and refused.status == "RESOURCE_EXHAUSTED"
    assert [e.path for e in emu.requests(vendor="vertex")] == [PROJECT_PATH] * 2
