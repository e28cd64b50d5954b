"""The official google-genai SDK against the emulator (docs/vendor-facts.md §4): images, usage,
HTTP-200 refusals, errors in Google's envelope, auth, and malformed answers."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pydantic
import pytest
from google import genai
from google.genai import errors, types

from fallback_chain.emulator import Emulator
from fallback_chain.imaging import inspect_image

MODEL = "gemini-2.5-flash-image"


def image_config(**kwargs: Any) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"],
                                       image_config=types.ImageConfig(**kwargs))


@pytest.mark.parametrize(("model", "config", "size", "mime", "tokens"), [
    (MODEL, None, (1024, 1024), "image/png", 1290),
    (MODEL, image_config(aspect_ratio="16:9"), (1344, 768), "image/png", 1290),
    (MODEL, image_config(aspect_ratio="2:3"), (832, 1248), "image/png", 1290),
    ("gemini-3.1-flash-image", image_config(aspect_ratio="1:1", image_size="2K"), (2048, 2048),
     "image/jpeg", 1680),
    ("gemini-3.1-flash-image", image_config(aspect_ratio="4:3"), (1184, 864), "image/jpeg",
     1120),
    ("gemini-3-pro-image", image_config(aspect_ratio="9:16", image_size="1K"), (768, 1344),
     "image/jpeg", 1120),
    ("gemini-future-image-9", image_config(aspect_ratio="4:1"), (2048, 512), "image/png", 1290),
])
def test_generate_content_returns_inline_image_and_usage(
        gem: genai.Client, model: str, config: types.GenerateContentConfig | None,
        size: tuple[int, int], mime: str, tokens: int) -> None:
    resp = gem.models.generate_content(model=model, contents="a red fox in snow", config=config)
    assert resp.parts is not None
    images = [p.inline_data for p in resp.parts if p.inline_data]
    assert len(images) == 1 and images[0].data is not None
    info = inspect_image(images[0].data)
    assert (info.width, info.height) == size
    assert images[0].mime_type == mime == info.mime_type
    assert resp.candidates and resp.candidates[0].finish_reason == types.FinishReason.STOP
    usage = resp.usage_metadata
    assert usage is not None and usage.candidates_tokens_details
    image_tokens = [d.token_count for d in usage.candidates_tokens_details
                    if d.modality == types.MediaModality.IMAGE]
    assert image_tokens == [tokens]
    assert usage.total_token_count == (usage.prompt_token_count or 0) + \
        (usage.candidates_token_count or 0)
    assert resp.model_version == model


def test_v1beta_and_image_input(http2: httpx2.Client, emu: Emulator) -> None:
    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(
        base_url="http://emulator.test", api_version="v1beta", httpx_client=http2))
    source = types.Part.from_bytes(data=b"\x89PNG fake but base64-able", mime_type="image/png")
    resp = client.models.generate_content(model=MODEL, contents=[source, "make it blue"])
    assert resp.parts and any(p.inline_data for p in resp.parts)
    [entry] = emu.requests(vendor="gemini")
    assert entry.path == f"/v1beta/models/{MODEL}:generateContent"
    assert entry.prompt == "make it blue"


def test_image_only_modality_has_no_text(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(response_modalities=["IMAGE"])
    resp = gem.models.generate_content(model=MODEL, contents="x", config=config)
    assert resp.parts is not None and [bool(p.inline_data) for p in resp.parts] == [True]


# ------------------------------------------------------------------ HTTP-200 refusals


def test_blocked_prompt(gem: genai.Client, emu: Emulator) -> None:
    emu.script("gemini", "blocked_prompt")
    resp = gem.models.generate_content(model=MODEL, contents="x")
    assert resp.candidates is None and resp.parts is None
    assert resp.prompt_feedback is not None
    assert resp.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT
    assert resp.sdk_http_response is not None


@pytest.mark.parametrize(("token", "finish"), [
    ("image_safety", types.FinishReason.IMAGE_SAFETY),
    ("policy", types.FinishReason.IMAGE_SAFETY),
    ("prohibited_content", types.FinishReason.PROHIBITED_CONTENT),
    ("no_image", types.FinishReason.NO_IMAGE),
])
def test_finish_reason_refusals_have_no_image(gem: genai.Client, emu: Emulator, token: str,
                                              finish: types.FinishReason) -> None:
    emu.script("gemini", token)
    resp = gem.models.generate_content(model=MODEL, contents="x")
    assert resp.candidates and resp.candidates[0].finish_reason == finish
    assert resp.candidates[0].content is None and resp.parts is None


def test_text_only_refusal_and_empty_answer(gem: genai.Client, emu: Emulator) -> None:
    emu.script("gemini", "text_only,fewer_images")
    refusal = gem.models.generate_content(model=MODEL, contents="x")
    assert refusal.parts and all(p.inline_data is None for p in refusal.parts)
    assert refusal.text and "unable" in refusal.text
    empty = gem.models.generate_content(model=MODEL, contents="x")
    assert empty.candidates and empty.candidates[0].finish_reason == types.FinishReason.STOP
    assert empty.parts == []


def test_block_reason_can_be_chosen(gem: genai.Client, emu: Emulator) -> None:
    emu.script("gemini", [{"fault": "blocked_prompt", "reason": "SAFETY"}])
    resp = gem.models.generate_content(model=MODEL, contents="x")
    assert resp.prompt_feedback and resp.prompt_feedback.block_reason == \
        types.BlockedReason.SAFETY


# ------------------------------------------------------------------ errors


def _details(err: errors.APIError) -> list[dict[str, Any]]:
    body = err.details
    assert isinstance(body, dict)
    return list(body["error"].get("details", []))


@pytest.mark.parametrize(("token", "exc_type", "code", "status"), [
    ("429", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
    ("quota", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
    ("prepaid", errors.ClientError, 402, "RESOURCE_EXHAUSTED"),
    ("auth", errors.ClientError, 400, "INVALID_ARGUMENT"),
    ("invalid_argument", errors.ClientError, 400, "INVALID_ARGUMENT"),
    ("permission", errors.ClientError, 403, "PERMISSION_DENIED"),
    ("not_found", errors.ClientError, 404, "NOT_FOUND"),
    ("500", errors.ServerError, 500, "INTERNAL"),
    ("503", errors.ServerError, 503, "UNAVAILABLE"),
    ("504", errors.ServerError, 504, "DEADLINE_EXCEEDED"),
    ("502", errors.ServerError, 502, "Bad Gateway"),
])
def test_errors_in_googles_envelope(gem: genai.Client, emu: Emulator, token: str,
                                    exc_type: type[errors.APIError], code: int,
                                    status: str) -> None:
    emu.script("gemini", token)
    with pytest.raises(exc_type) as err:
        gem.models.generate_content(model=MODEL, contents="x")
    assert (err.value.code, err.value.status) == (code, status)
    if code != 502:
        assert err.value.response.headers["content-type"] == "application/json"
    assert gem.models.generate_content(model=MODEL, contents="x").parts  # then normal


def test_rate_limit_carries_retry_info(gem: genai.Client, emu: Emulator) -> None:
    emu.script("gemini", [{"fault": "429", "retry_after": 19}])
    with pytest.raises(errors.ClientError) as err:
        gem.models.generate_content(model=MODEL, contents="x")
    retry = [d for d in _details(err.value) if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "19s"}]
    quota = [d for d in _details(err.value) if d["@type"].endswith("QuotaFailure")]
    assert quota[0]["violations"][0]["quotaDimensions"]["model"] == MODEL
    assert "retry-after" not in err.value.response.headers  # Google sends no header


def test_wrong_key_is_400_api_key_invalid(http2: httpx2.Client) -> None:
    client = genai.Client(api_key="wrong", http_options=types.HttpOptions(
        base_url="http://emulator.test", httpx_client=http2))
    with pytest.raises(errors.ClientError) as err:
        client.models.generate_content(model=MODEL, contents="x")
    assert err.value.code == 400 and err.value.status == "INVALID_ARGUMENT"
    reasons = [d.get("reason") for d in _details(err.value)]
    assert "API_KEY_INVALID" in reasons
    with pytest.raises(errors.ClientError) as err2:
        client.models.get(model=MODEL)
    assert err2.value.code == 400


def test_missing_key_is_403_and_query_key_works(http2: httpx2.Client) -> None:
    url = f"/v1beta/models/{MODEL}:generateContent"
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    missing = http2.post(url, json=body)
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    assert http2.post(url, json=body, params={"key": "test-key"}).status_code == 200
    assert http2.post(url, json=body, params={"key": "nope"}).status_code == 400


def test_models_preflight_accepts_any_model(gem: genai.Client, emu: Emulator) -> None:
    model = gem.models.get(model="gemini-nano-banana-7")
    assert model.name == "models/gemini-nano-banana-7"
    assert [e.endpoint for e in emu.requests(vendor="gemini")] == ["meta"]
    assert emu.requests(vendor="openai") == []


@pytest.mark.parametrize(("body", "fragment"), [
    ({"contents": []}, "contents is not specified"),
    ({"contents": [{"parts": [{"text": "x"}]}], "bogus": 1}, 'Unknown name "bogus"'),
    ({"contents": [{"parts": [{"text": "x"}]}],
      "generationConfig": {"imageConfig": {"aspectRatio": "wide"}}}, "aspect_ratio"),
    ({"contents": [{"parts": [{"text": "x"}]}],
      "generationConfig": {"imageConfig": {"imageSize": "3K"}}}, "image_size"),
])
def test_invalid_argument(http2: httpx2.Client, body: dict[str, Any], fragment: str) -> None:
    response = http2.post(f"/v1/models/{MODEL}:generateContent", json=body,
                          headers={"x-goog-api-key": "test-key"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and fragment in error["message"]


# ------------------------------------------------------------------ malformed answers


def test_malformed_answers_escape_the_sdk_error_types(gem: genai.Client, emu: Emulator) -> None:
    emu.script("gemini", "bad_base64,truncated,html")
    with pytest.raises(pydantic.ValidationError):
        gem.models.generate_content(model=MODEL, contents="x")
    with pytest.raises(json.JSONDecodeError):
        gem.models.generate_content(model=MODEL, contents="x")
    with pytest.raises(json.JSONDecodeError):
        gem.models.generate_content(model=MODEL, contents="x")


@pytest.mark.parametrize(("token", "exc_type"), [
    ("reset", httpx2.ReadError), ("hang", httpx2.ReadTimeout),
    ("cut", httpx2.RemoteProtocolError),
])
def test_connection_faults_raise_httpx2_errors(gem: genai.Client, emu: Emulator, token: str,
                                               exc_type: type[Exception]) -> None:
    emu.script("gemini", token)
    config = types.GenerateContentConfig(http_options=types.HttpOptions(timeout=200))
    with pytest.raises(exc_type):
        gem.models.generate_content(model=MODEL, contents="x", config=config)
    [entry] = emu.requests(vendor="gemini")
    assert entry.fault == token


# ------------------------------------------------------------------ fixes found by the adapter


def test_sdk_url_safe_base64_images_are_counted(gem: genai.Client, emu: Emulator) -> None:
    import base64

    from fallback_chain.imaging import placeholder_image

    # bytes whose base64 has '-' or '_' in google-genai's URL-safe encoding
    data = next(d for d in (placeholder_image(8, 8, seed=s) for s in range(50))
                if any(c in base64.urlsafe_b64encode(d).decode() for c in "-_"))
    part = types.Part.from_bytes(data=data, mime_type="image/png")
    resp = gem.models.generate_content(model=MODEL, contents=[part, "edit"])
    assert resp.usage_metadata is not None
    assert resp.usage_metadata.prompt_token_count == 1 + 258  # "edit" + one input image


def test_seed_changes_the_image(gem: genai.Client) -> None:
    def image(seed: int) -> bytes:
        config = types.GenerateContentConfig(response_modalities=["IMAGE"], seed=seed)
        resp = gem.models.generate_content(model=MODEL, contents="same prompt", config=config)
        assert resp.parts and resp.parts[0].inline_data
        return resp.parts[0].inline_data.data or b""

    assert image(1) != image(2)
    assert image(1) == image(1)


def test_safety_categories_are_reported_as_safety_ratings(gem: genai.Client,
                                                          emu: Emulator) -> None:
    emu.script("gemini", [{"fault": "image_safety",
                           "categories": ["HARM_CATEGORY_DANGEROUS_CONTENT"]}])
    resp = gem.models.generate_content(model=MODEL, contents="x")
    assert resp.candidates
    ratings = resp.candidates[0].safety_ratings or []
    assert [(r.category, r.blocked) for r in ratings] == [
        (types.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT, True)]
