"""GeminiProvider through google-genai against the emulator (in-process, plus one real loopback
server): success, every fault the emulator can produce for Gemini, the request it sends, cost,
n > 1 as parallel calls, the credentials preflight and the secrets it must keep."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
import warnings

import httpx2
import pytest
from google.genai import errors, types

from fallback_chain import Chain, ImageRequest, Outcome, Policy
from fallback_chain.cost.catalogue import PriceCatalogue
from fallback_chain.cost.usage import cost_from_gemini_usage
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.errors import (
    ChainExhaustedError,
    ConfigurationError,
    ContentPolicyError,
    ProviderError,
)
from fallback_chain.events import CooldownStarted
from fallback_chain.imaging import placeholder_image
from fallback_chain.providers import FakeProvider, catalogue
from fallback_chain.providers.gemini.adapter import ENV_VARS, GeminiProvider
from fallback_chain.providers.gemini.parse import error_from_api, read_response
from fallback_chain.resilience.cooldown import MemoryCooldowns

KEY = "test-key-gemini-123"
BASE = "http://emulator.test"
MODEL = "gemini-2.5-flash-image"
#: Fast retries, no waiting for cooldowns: tests never sleep for real.
FAST = Policy(backoff_initial_s=0.001, backoff_max_s=0.001, backoff_jitter=0.0,
              wait_for_cooldown=False, attempt_timeout_s=5.0)
PNG = placeholder_image(64, 48, seed=1)
JPEG_MODEL = "gemini-3.1-flash-image"


def emulator(script=None, **settings) -> Emulator:
    faults = {"gemini": {"script": script, **settings}} if script is not None else None
    return Emulator(faults=faults, api_keys=KEY)


def gemini(emu: Emulator, model: str = MODEL, **kw) -> GeminiProvider:
    kw.setdefault("api_key", KEY)
    kw.setdefault("base_url", BASE)
    return GeminiProvider(model, transport=emu.httpx2_transport(), **kw)


def calls(emu: Emulator) -> int:
    return emu.log.count(vendor="gemini", endpoint="generate")


def bodies(emu: Emulator) -> list[dict]:
    return [dict(e.params or {}) for e in emu.requests(vendor="gemini", endpoint="generate")]


def run(coro):
    return asyncio.run(coro)


async def through_chain(providers, request="a lighthouse at dusk", *, policy=FAST, **kw):
    """Run one request; return (result or None, error or None, attempts)."""
    chain = Chain(providers, policy=policy, log=False, **kw)
    try:
        result = await chain.agenerate(request) if isinstance(request, ImageRequest) \
            else await chain.agenerate(request, size="1536x1024")
        return result, None, result.attempts
    except (ContentPolicyError, ChainExhaustedError) as exc:
        return None, exc, exc.attempts
    finally:
        await chain.aclose()


def usage_cost(prompt_tokens: int, image_tokens: int, text_tokens: int = 0) -> float:
    return cost_from_gemini_usage(MODEL, {
        "promptTokenCount": prompt_tokens,
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": image_tokens},
                                    {"modality": "TEXT", "tokenCount": text_tokens}]})


# ------------------------------------------------------------------------ every fault


# fault, outcome, status, provider_code, cost_source, calls the vendor saw, who served
FAULTS = [
    ("ok", "success", None, None, "reported", 1, "gemini"),
    ("rate_limit", "rate_limited", 429, "RESOURCE_EXHAUSTED", "none", 1, "backup"),
    ("429", "rate_limited", 429, "RESOURCE_EXHAUSTED", "none", 1, "backup"),
    ("quota", "quota_exhausted", 429, "RESOURCE_EXHAUSTED", "none", 1, "backup"),
    ("prepaid", "quota_exhausted", 402, "RESOURCE_EXHAUSTED", "none", 1, "backup"),
    ("auth", "auth_error", 400, "API_KEY_INVALID", "none", 1, "backup"),
    ("permission", "auth_error", 403, "PERMISSION_DENIED", "none", 1, "backup"),
    ("401", "auth_error", 401, "UNAUTHENTICATED", "none", 1, "backup"),
    ("not_found", "not_found", 404, "NOT_FOUND", "none", 1, "backup"),
    ("invalid_argument", "invalid_request", 400, "INVALID_ARGUMENT", "none", 1, "backup"),
    ("409", "invalid_request", 409, "ABORTED", "none", 1, "backup"),
    ("499", "connection_error", 499, "CANCELLED", "none", 2, "gemini"),
    ("server_error", "server_error", 500, "INTERNAL", "none", 2, "gemini"),
    ("500", "server_error", 500, "INTERNAL", "none", 2, "gemini"),
    ("overloaded", "server_error", 503, "UNAVAILABLE", "none", 2, "gemini"),
    ("bad_gateway", "server_error", 502, None, "none", 2, "gemini"),
    ("504", "server_error", 504, "DEADLINE_EXCEEDED", "none", 2, "gemini"),
    ("reset", "connection_error", None, None, "none", 2, "gemini"),
    ("cut", "connection_error", None, None, "none", 2, "gemini"),
    ("hang", "timeout", None, None, "estimated", 1, "backup"),
    ("truncated", "malformed_response", 200, None, "none", 2, "gemini"),
    ("html", "malformed_response", 200, None, "none", 2, "gemini"),
    ("bad_base64", "malformed_response", 200, None, "none", 2, "gemini"),
    ("no_image", "malformed_response", 200, "NO_IMAGE", "reported", 2, "gemini"),
    ("text_only", "malformed_response", 200, "STOP", "reported", 2, "gemini"),
    ("fewer_images", "malformed_response", 200, "STOP", "reported", 2, "gemini"),
    ({"fault": "no_image", "reason": "IMAGE_OTHER"}, "malformed_response", 200, "IMAGE_OTHER",
     "reported", 2, "gemini"),
    ("image_safety", "content_policy", 200, "IMAGE_SAFETY", "reported", 1, None),
    ("policy", "content_policy", 200, "IMAGE_SAFETY", "reported", 1, None),
    ("prohibited_content", "content_policy", 200, "PROHIBITED_CONTENT", "reported", 1, None),
    ("blocked_prompt", "content_policy", 200, "PROHIBITED_CONTENT", "reported", 1, None),
    ({"fault": "image_safety", "reason": "IMAGE_PROHIBITED_CONTENT"}, "content_policy", 200,
     "IMAGE_PROHIBITED_CONTENT", "reported", 1, None),
    ({"fault": "blocked_prompt", "reason": "SAFETY"}, "content_policy", 200, "SAFETY",
     "reported", 1, None),
]


@pytest.mark.parametrize(("fault", "outcome", "status", "code", "cost_source", "n_calls",
                          "served_by"), FAULTS, ids=[str(f[0]) for f in FAULTS])
def test_every_fault_through_a_chain(fault, outcome, status, code, cost_source, n_calls,
                                     served_by):
    emu = emulator([fault], hang_s=5)
    backup = FakeProvider("backup")

    async def go():
        # a short attempt timeout only where the emulator hangs: a loaded machine must not
        # turn a slow 429 into a timeout
        return await through_chain([gemini(emu), backup], policy=FAST.replace(
            attempt_timeout_s=0.5 if outcome == "timeout" else 5.0))

    result, error, attempts = run(go())
    first = attempts[0]
    assert (first.provider, first.model, first.attempt) == ("gemini", MODEL, 1)
    assert first.outcome == outcome, first.message
    assert first.status_code == status
    assert first.provider_code == code
    assert first.latency_s > 0
    assert first.cost_source == cost_source
    if cost_source == "none":
        assert first.cost_usd == 0
    else:
        assert first.cost_usd > 0
    assert calls(emu) == n_calls
    if served_by is None:  # a refusal stops the chain; the backup is never asked
        assert isinstance(error, ContentPolicyError)
        assert error.provider == "gemini" and code in error.reason
        assert backup.calls == 0
    else:
        assert result is not None and result.provider == served_by
        assert len(result.images) == 1
        assert backup.calls == (1 if served_by == "backup" else 0)


def test_the_table_covers_every_gemini_fault_of_the_emulator():
    from fallback_chain.emulator.faults import VENDOR_KINDS

    covered = {f if isinstance(f, str) else f["fault"] for f, *_ in FAULTS} | {"5xx"}
    assert VENDOR_KINDS["gemini"] - covered == set()


def test_5xx_token_is_one_of_the_server_errors():
    emu = emulator(["5xx"])
    _, _, attempts = run(through_chain([gemini(emu)]))
    assert attempts[0].outcome is Outcome.SERVER_ERROR
    assert attempts[0].status_code in (500, 502, 503)
    assert attempts[1].outcome is Outcome.SUCCESS


def test_success_attempt_and_reply():
    emu = emulator()
    result, _, attempts = run(through_chain([gemini(emu)]))
    (attempt,) = attempts
    assert attempt.outcome is Outcome.SUCCESS and attempt.cost_source == "reported"
    assert attempt.cost_usd == pytest.approx(usage_cost(5, 1290))  # 1290 image tokens at $30/M
    assert attempt.estimated_cost_usd == pytest.approx(0.039)
    image = result.images[0]
    assert (image.mime_type, image.width, image.height) == ("image/png", 1248, 832)  # 3:2 at 1K
    assert result.usage["candidatesTokensDetails"] == [{"modality": "IMAGE", "tokenCount": 1290}]
    assert result.model == MODEL


# ------------------------------------------------------------------------ the brief's cases


def test_image_safety_stops_the_chain_with_the_reason():
    emu = emulator(["image_safety"])
    backup = FakeProvider("backup")
    _, error, attempts = run(through_chain([gemini(emu), backup]))
    assert isinstance(error, ContentPolicyError)
    assert error.provider == "gemini"
    assert "IMAGE_SAFETY" in error.reason and "withheld the image" in error.reason
    assert error.categories == []  # the emulator sends no safetyRatings
    assert backup.calls == 0
    assert [a.provider for a in attempts] == ["gemini"]
    assert calls(emu) == 1


def test_rate_limit_retry_info_sets_retry_after_and_the_cooldown():
    emu = emulator([{"fault": "rate_limit", "retry_after": 12.5}])
    cooldowns = MemoryCooldowns()
    events = []
    provider = gemini(emu)
    backup = FakeProvider("backup")

    async def go():
        chain = Chain([provider, backup], policy=FAST, log=False, cooldowns=cooldowns,
                      on_event=events.append)
        first = await chain.agenerate("a fox")
        second = await chain.agenerate("a fox")  # gemini is still cooling down
        remaining = await cooldowns.remaining("gemini", time.monotonic())
        await chain.aclose()
        return first, second, remaining

    first, second, remaining = run(go())
    attempt = first.attempts[0]
    assert attempt.outcome is Outcome.RATE_LIMITED
    assert attempt.retry_after_s == 12.5
    assert "Please retry in 12.5s" in attempt.message
    started = [e for e in events if isinstance(e, CooldownStarted)]
    assert [(e.provider, e.seconds) for e in started] == [("gemini", 12.5)]
    assert 11 < remaining <= 12.5
    assert first.provider == second.provider == "backup"
    assert second.attempts[0].outcome is Outcome.COOLING_DOWN
    assert calls(emu) == 1


def test_wrong_key_is_auth_error():
    emu = emulator()
    provider = gemini(emu, api_key="not-the-key")
    _, error, attempts = run(through_chain([provider]))
    assert isinstance(error, ChainExhaustedError)
    (attempt,) = attempts
    assert attempt.outcome is Outcome.AUTH_ERROR
    assert (attempt.status_code, attempt.provider_code) == (400, "API_KEY_INVALID")
    assert "API key not valid" in attempt.message
    check = run(gemini(emu, api_key="not-the-key").check())
    assert not check.ok and "API key was refused" in check.detail


def test_n3_is_three_parallel_calls_and_three_images():
    emu = emulator()
    provider = gemini(emu)
    request = ImageRequest(prompt="three foxes", n=3, size="16:9", seed=7)
    result, _, attempts = run(through_chain([provider], request))
    assert len(result.images) == 3
    assert calls(emu) == 3
    assert [b["generationConfig"]["seed"] for b in bodies(emu)] == [7, 8, 9]
    assert attempts[0].cost_usd == pytest.approx(3 * usage_cost(3, 1290))
    assert result.usage["calls"] == 3
    assert result.usage["candidatesTokenCount"] == 3 * 1290


# ------------------------------------------------------------------------ n > 1 failures


def test_n3_one_call_rate_limited_fails_the_attempt_and_reports_what_was_billed():
    emu = emulator(["ok", {"fault": "rate_limit", "retry_after": 4}, "ok"])
    _, error, attempts = run(through_chain([gemini(emu)],
                                           ImageRequest(prompt="three foxes", n=3)))
    assert isinstance(error, ChainExhaustedError)
    attempt = attempts[0]
    assert attempt.outcome is Outcome.RATE_LIMITED and attempt.retry_after_s == 4
    assert "1 of 3 parallel calls failed" in attempt.message
    # the two calls that drew an image were billed; the attempt reports their cost
    assert attempt.cost_source == "reported"
    assert attempt.cost_usd == pytest.approx(2 * usage_cost(3, 1290))
    assert calls(emu) == 3


def test_n2_refusal_beats_a_server_error():
    emu = emulator(["500", "image_safety"])
    backup = FakeProvider("backup")
    _, error, _ = run(through_chain([gemini(emu), backup], ImageRequest(prompt="x", n=2)))
    assert isinstance(error, ContentPolicyError) and "IMAGE_SAFETY" in error.reason
    assert backup.calls == 0


def test_n2_direct_error_details():
    emu = emulator(["reset", "no_image"])

    async def go():
        provider = gemini(emu)
        try:
            await provider.generate(ImageRequest(prompt="x", n=2), timeout=5)
        finally:
            await provider.aclose()

    with pytest.raises(ProviderError) as info:
        run(go())
    err = info.value
    assert err.outcome is Outcome.MALFORMED_RESPONSE  # the server said something; a reset didn't
    assert sorted(err.details["outcomes"]) == ["connection_error", "malformed_response"]
    assert err.cost_usd == pytest.approx(usage_cost(1, 0))


# ------------------------------------------------------------------------ what is sent


@pytest.mark.parametrize(("size", "quality", "model", "image_config"), [
    ("auto", "standard", MODEL, None),
    ("1536x1024", "standard", MODEL, {"aspectRatio": "3:2"}),
    ("16:9", "final", MODEL, {"aspectRatio": "16:9"}),  # 2.5 draws 1K only: no imageSize
    ("1000x3000", "standard", MODEL, {"aspectRatio": "9:16"}),  # nearest supported ratio
    ("auto", "final", JPEG_MODEL, {"imageSize": "2K"}),
    ("auto", "draft", JPEG_MODEL, {"imageSize": "512"}),
    ("4096x4096", "standard", JPEG_MODEL, {"aspectRatio": "1:1", "imageSize": "4K"}),
    ("1:4", "standard", JPEG_MODEL, {"aspectRatio": "1:4", "imageSize": "1K"}),
    ("auto", "final", "gemini-3-pro-image", {"imageSize": "2K"}),
    ("auto", "final", "gemini-9-ultra-image", {"imageSize": "2K"}),  # unknown id: 3.x family
])
def test_size_and_quality_mapping(size, quality, model, image_config):
    emu = emulator()
    request = ImageRequest(prompt="a cat", size=size, quality=quality)
    result, _, _ = run(through_chain([gemini(emu, model)], request))
    (body,) = bodies(emu)
    assert body["generationConfig"].get("imageConfig") == image_config
    assert body["generationConfig"]["responseModalities"] == ["IMAGE"]
    assert result.provider == "gemini"


def test_estimate_agrees_with_the_size_class_sent():
    emu = emulator()
    flash = gemini(emu, JPEG_MODEL)
    assert flash.estimate_cost(ImageRequest(prompt="x", quality="final", n=2)) == \
        pytest.approx(2 * 0.101)
    assert flash.estimate_cost(ImageRequest(prompt="x", size="4096x4096")) == \
        pytest.approx(0.151)
    assert gemini(emu).estimate_cost(ImageRequest(prompt="x", quality="final")) == \
        pytest.approx(0.039)
    assert gemini(emu, "gemini-9-ultra-image").estimate_cost(ImageRequest(prompt="x")) is None
    fixed = gemini(emu, JPEG_MODEL, image_size="4k")
    assert fixed.image_size == "4K"
    assert fixed.estimate_cost(ImageRequest(prompt="x", quality="draft")) == pytest.approx(0.151)


def test_explicit_image_size_is_always_sent():
    emu = emulator()
    run(through_chain([gemini(emu, image_size="2K")], ImageRequest(prompt="x")))
    assert bodies(emu)[0]["generationConfig"]["imageConfig"] == {"imageSize": "2K"}
    with pytest.raises(ConfigurationError, match="image_size"):
        gemini(emu, image_size="huge")


def test_edit_images_become_inline_data_next_to_the_text():
    emu = emulator()
    jpeg = placeholder_image(40, 40, seed=2, fmt="jpeg")
    request = ImageRequest(prompt="make it blue", images=[PNG, jpeg], negative_prompt="red")
    run(through_chain([gemini(emu)], request))
    (body,) = bodies(emu)
    parts = body["contents"][0]["parts"]
    assert parts[0] == {"text": "make it blue"}  # no negative prompt appended
    blobs = [p["inlineData"] for p in parts[1:]]
    # google-genai 3.4 writes the blob's keys in snake_case and its data as URL-safe base64;
    # both are valid proto JSON for the API
    assert [b.get("mimeType", b.get("mime_type")) for b in blobs] == ["image/png", "image/jpeg"]
    assert base64.urlsafe_b64decode(blobs[0]["data"]) == PNG
    assert base64.urlsafe_b64decode(blobs[1]["data"]) == jpeg
    assert "red" not in str(body)


def test_a_mask_is_refused_before_anything_is_sent():
    emu = emulator()
    provider = gemini(emu)
    request = ImageRequest(prompt="fill", images=[PNG], mask=placeholder_image(64, 48, seed=3))
    assert "Gemini takes no mask" in provider.unsupported_reason(request)
    result, _, attempts = run(through_chain([provider, FakeProvider("backup")], request))
    assert attempts[0].outcome is Outcome.SKIPPED and "no mask" in attempts[0].message
    assert result.provider == "backup"
    with pytest.raises(ProviderError) as info:
        run(provider.generate(request, timeout=5))
    assert info.value.outcome is Outcome.INVALID_REQUEST
    assert calls(emu) == 0


@pytest.mark.parametrize(("seed", "sent"), [(0, 0), (2**31 - 1, 2**31 - 1), (2**31, -(2**31)),
                                            (2**32 - 1, -1)])
def test_seed_goes_to_generation_config_as_int32(seed, sent):
    emu = emulator()
    run(through_chain([gemini(emu)], ImageRequest(prompt="x", seed=seed)))
    assert bodies(emu)[0]["generationConfig"]["seed"] == sent


def test_base_url_version_suffix_and_api_version():
    emu = emulator()
    run(through_chain([gemini(emu, base_url=f"{BASE}/v1beta/")], ImageRequest(prompt="x")))
    run(through_chain([gemini(emu, api_version="v1beta")], ImageRequest(prompt="x")))
    run(through_chain([gemini(emu)], ImageRequest(prompt="x")))
    run(through_chain([gemini(emu, api_version="v1")], ImageRequest(prompt="x")))
    paths = [e.path for e in emu.requests(vendor="gemini")]
    # the default is v1beta, the surface Google documents for image generation (google-genai
    # 3.x alone would call v1); v1 only when asked for
    assert paths == [f"/v1beta/models/{MODEL}:generateContent"] * 3 + \
        [f"/v1/models/{MODEL}:generateContent"]


# ------------------------------------------------------------------------ timeouts, transport


def test_attempt_timeout_bounds_the_call():
    emu = emulator(["hang"], hang_s=30)

    async def go():
        provider = gemini(emu)
        started = time.monotonic()
        try:
            await provider.generate(ImageRequest(prompt="x"), timeout=0.2)
        except ProviderError as exc:
            return exc, time.monotonic() - started
        finally:
            await provider.aclose()

    err, elapsed = run(go())
    assert err.outcome is Outcome.TIMEOUT
    assert elapsed < 2


def test_the_sdk_can_never_take_its_aiohttp_path(monkeypatch):
    from google.genai import _api_client

    emu = emulator()
    provider = gemini(emu)

    async def make():  # the SDK client belongs to an event loop: make it inside one
        return provider._client()

    client = asyncio.run(make())
    monkeypatch.setattr(_api_client, "has_aiohttp", True)  # as if aiohttp were installed
    assert client._api_client._use_aiohttp() is False
    assert client._api_client._http_options.retry_options is None


def test_client_is_pooled_closed_and_lent_clients_are_left_open():
    emu = emulator()

    async def go():
        provider = gemini(emu)
        first = provider._client()
        await provider.generate(ImageRequest(prompt="x"), timeout=5)
        assert provider._client() is first
        http = provider._clients.get()[1]
        await provider.aclose()
        assert http is not None and http.is_closed and provider._clients.peek() is None
        await provider.generate(ImageRequest(prompt="x"), timeout=5)  # reopens
        await provider.aclose()
        lent = httpx2.AsyncClient(transport=emu.httpx2_transport())
        borrower = GeminiProvider(MODEL, api_key=KEY, base_url=BASE, http_client=lent)
        await borrower.generate(ImageRequest(prompt="x"), timeout=5)
        await borrower.aclose()
        assert not lent.is_closed
        await lent.aclose()

    run(go())
    assert calls(emu) == 3


# ------------------------------------------------------------------------ check()


def test_check_spends_nothing():
    emu = emulator()
    result = run(gemini(emu).check())
    assert result.ok and result.provider == "gemini" and MODEL in result.detail
    assert calls(emu) == 0
    assert [e.path for e in emu.requests(vendor="gemini")] == [f"/v1beta/models/{MODEL}"]


@pytest.mark.parametrize(("fault", "words"), [("permission", "API key was refused"),
                                              ("not_found", "does not exist"),
                                              ("503", "preflight failed")])
def test_check_reports_failures(fault, words):
    emu = emulator([fault], applies_to=["meta"])
    result = run(gemini(emu).check())
    assert not result.ok and words in result.detail


def test_check_when_nothing_listens():
    provider = GeminiProvider(MODEL, api_key=KEY, base_url="http://127.0.0.1:9",
                              check_timeout_s=2)
    result = run(provider.check())
    assert not result.ok and "connection_error" in result.detail


# ------------------------------------------------------------------------ keys and secrets


def test_missing_key_names_both_variables(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigurationError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        GeminiProvider()


def test_gemini_api_key_wins_over_google_api_key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GOOGLE_API_KEY", "some-other-google-key")
    emu = emulator()
    provider = GeminiProvider(MODEL, base_url=BASE, transport=emu.httpx2_transport())
    result, _, _ = run(through_chain([provider], ImageRequest(prompt="x")))
    assert result.provider == "gemini"
    monkeypatch.delenv("GEMINI_API_KEY")
    fallback = GeminiProvider(MODEL, base_url=BASE, transport=emu.httpx2_transport())
    _, _, attempts = run(through_chain([fallback], ImageRequest(prompt="x")))
    assert attempts[0].outcome is Outcome.AUTH_ERROR


def test_the_key_never_leaks():
    secret = "AIzaSyTotallySecretGeminiKey_0123456789"
    emu = Emulator(api_keys={"gemini": secret}, faults={"gemini": {"script": [
        "auth", "reset", {"fault": "text_only", "message": f"your key is {secret}"}]}})
    provider = gemini(emu, api_key=secret)
    retries = {"auth_error": 3, "connection_error": 3, "malformed_response": 3}
    result, _, attempts = run(through_chain([provider], ImageRequest(prompt="x"),
                                            policy=FAST.replace(retries=retries,
                                                                cooldowns_s={"auth_error": 0})))
    assert [a.outcome for a in attempts] == [
        Outcome.AUTH_ERROR, Outcome.CONNECTION_ERROR, Outcome.MALFORMED_RESPONSE,
        Outcome.SUCCESS]
    text = repr(provider) + repr(result) + "".join(a.model_dump_json() for a in attempts)
    assert secret not in text
    assert "your key is ***" in attempts[2].message


# ------------------------------------------------------------------------ model ids, prices


def test_any_model_id_is_accepted_and_retired_ones_warn():
    emu = emulator()
    unknown = gemini(emu, "gemini-9-ultra-image")
    assert (unknown.info.family, unknown.info.known) == ("gemini-3-image", False)
    assert unknown.capabilities.max_n == 4 and not unknown.capabilities.negative_prompt
    catalogue._warned.discard(("gemini", "gemini-3-pro-image-preview"))
    with pytest.warns(catalogue.ModelLifecycleWarning, match="shut down"):
        gemini(emu, "gemini-3-pro-image-preview")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gemini(emu, "gemini-3-pro-image-preview")  # once per process


def test_negotiated_prices_apply_to_estimates_and_reported_cost():
    emu = emulator()
    prices = PriceCatalogue.default().with_overrides({"vendors": {"gemini": {"price_factor": 0.5}}})
    provider = gemini(emu, prices=prices)
    assert provider.estimate_cost(ImageRequest(prompt="x")) == pytest.approx(0.0195)
    result, _, _ = run(through_chain([provider], ImageRequest(prompt="x")))
    assert result.cost_usd == pytest.approx(usage_cost(1, 1290) * 0.5)


def test_sdk_loaded_only_by_the_adapter():
    code = ("import sys, fallback_chain.providers; assert 'google' not in sys.modules; "
            "from fallback_chain.providers.gemini.adapter import GeminiProvider; "
            "assert 'google.genai' not in "
            "sys.modules; GeminiProvider(api_key='k' * 8); assert 'google.genai' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------ parsing units


def _response(**fields) -> types.GenerateContentResponse:
    return types.GenerateContentResponse.model_validate(fields)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_thought_parts_are_skipped():
    draft = placeholder_image(32, 32, seed=9)
    resp = _response(candidates=[{"finishReason": "STOP", "content": {"role": "model", "parts": [
        {"thought": True, "inlineData": {"mimeType": "image/png", "data": _b64(draft)}},
        {"thought": True, "text": "thinking..."},
        {"text": "Here you go"},
        {"inlineData": {"mimeType": "image/png", "data": _b64(PNG)}}]}}])
    result = asyncio.run(read_response(resp, lambda usage: None))
    assert [img.data for img in result.images] == [PNG]
    assert result.texts == ["Here you go"]
    only_drafts = _response(candidates=[{"finishReason": "STOP", "content": {"parts": [
        {"thought": True, "inlineData": {"mimeType": "image/png", "data": _b64(draft)}}]}}])
    with pytest.raises(ProviderError) as info:
        asyncio.run(read_response(only_drafts, lambda usage: None))
    assert info.value.outcome is Outcome.MALFORMED_RESPONSE


def test_safety_categories_and_block_messages():
    prompt = _response(promptFeedback={
        "blockReason": "SAFETY", "blockReasonMessage": "The prompt was blocked.",
        "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
             "blocked": True},
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM"}]},
        usageMetadata={"promptTokenCount": 10})
    with pytest.raises(ProviderError) as info:
        asyncio.run(read_response(prompt, lambda usage: 0.25))
    err = info.value
    assert err.outcome is Outcome.CONTENT_POLICY and err.cost_usd == 0.25
    assert err.message == "Gemini blocked the prompt (SAFETY): The prompt was blocked."
    assert err.details["categories"] == ["HARM_CATEGORY_DANGEROUS_CONTENT"]
    assert err.details["block_reason"] == "SAFETY" and err.details["stage"] == "prompt"
    output = _response(candidates=[{"finishReason": "IMAGE_SAFETY",
                                    "finishMessage": "Unable to show the image.",
                                    "safetyRatings": [{"category": "HARM_CATEGORY_HATE_SPEECH",
                                                       "probability": "HIGH"}]}])
    with pytest.raises(ProviderError) as info:
        asyncio.run(read_response(output, lambda usage: None))
    assert info.value.details["categories"] == ["HARM_CATEGORY_HATE_SPEECH"]
    assert "Unable to show the image." in info.value.message
    assert info.value.cost_usd is None


@pytest.mark.parametrize(("body", "outcome"), [
    ({"candidates": []}, Outcome.MALFORMED_RESPONSE),
    ({"candidates": [{"finishReason": "LANGUAGE"}]}, Outcome.INVALID_REQUEST),
    ({"candidates": [{"finishReason": "RECITATION"}]}, Outcome.CONTENT_POLICY),
    ({"candidates": [{"finishReason": "SOME_FUTURE_REASON"}]}, Outcome.MALFORMED_RESPONSE),
    ({"candidates": [{"finishReason": "STOP", "content": {"parts": [
        {"inlineData": {"mimeType": "image/png", "data": _b64(PNG[:-20])}}]}}]},
     Outcome.MALFORMED_RESPONSE),
])
def test_answers_without_a_usable_image(body, outcome):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK warns about unknown enum values
        resp = _response(**body)
    with pytest.raises(ProviderError) as info:
        asyncio.run(read_response(resp, lambda usage: None))
    assert info.value.outcome is outcome


def _api_error(status, error, headers=None):
    response = httpx2.Response(status, json={"error": error}, headers=headers or {})
    return errors.APIError.raise_error(status, {"error": error}, response)


@pytest.mark.parametrize(("status", "error", "outcome", "retry_after"), [
    (429, {"status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaValue": "50"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "52758s"}]},
     Outcome.QUOTA_EXHAUSTED, 52758.0),
    (429, {"status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3.700s"}]},
     Outcome.RATE_LIMITED, 3.7),
    (429, {"status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo",
         "retryDelay": {"seconds": 2, "nanos": 500000000}}]},
     Outcome.RATE_LIMITED, 2.5),
    (400, {"status": "FAILED_PRECONDITION",
           "message": "User location is not supported for the API use."},
     Outcome.AUTH_ERROR, None),
    (400, {"status": "INVALID_ARGUMENT", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]},
     Outcome.AUTH_ERROR, None),
    (408, {"status": "DEADLINE_EXCEEDED"}, Outcome.TIMEOUT, None),
    (410, {"status": "NOT_FOUND"}, Outcome.NOT_FOUND, None),
])
def test_error_classification_by_status_and_reason(status, error, outcome, retry_after):
    with pytest.raises(errors.APIError) as info:
        _api_error(status, {"code": status, "message": "m", **error})
    err = error_from_api(info.value)
    assert err.outcome is outcome and err.status_code == status
    assert err.retry_after_s == retry_after


def test_retry_after_header_is_a_fallback_and_odd_statuses():
    with pytest.raises(errors.APIError) as info:
        _api_error(429, {"code": 429, "status": "RESOURCE_EXHAUSTED"}, {"retry-after": "9"})
    assert error_from_api(info.value).retry_after_s == 9.0
    odd = errors.APIError(204, {}, None)  # only exactly 200 is success in google-genai
    assert error_from_api(odd).outcome is Outcome.MALFORMED_RESPONSE


# ------------------------------------------------------------------------ a real server


def test_over_a_real_loopback_server():
    emu = Emulator(api_keys=KEY, faults={"gemini": {"script": ["reset", "ok", "429"]}})
    with serve_in_thread(emu) as base_url:
        async def go():
            provider = GeminiProvider(MODEL, api_key=KEY, base_url=base_url)
            backup = FakeProvider("backup")
            chain = Chain([provider, backup], policy=FAST, log=False)
            try:
                first = await chain.agenerate("a harbour", size="4:3", n=2)
                check = await provider.check()
            finally:
                await chain.aclose()
            return first, check, backup

        result, check, backup = run(go())
    outcomes = [a.outcome for a in result.attempts]
    # attempt 1: reset + ok in parallel -> connection error, and the paid image is kept; the
    # retry asks only for the missing image: 429 -> rate limited; the backup makes it
    assert outcomes == [Outcome.CONNECTION_ERROR, Outcome.RATE_LIMITED, Outcome.SUCCESS]
    assert result.provider == "backup" and backup.calls == 1
    assert [r.n for r in backup.requests] == [1]
    assert [o.provider for o in result.origins] == ["gemini", "backup"]
    assert result.attempts[0].cost_source == "reported"  # the half that drew an image is billed
    assert calls(emu) == 3
    assert check.ok
