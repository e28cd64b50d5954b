"""The official openai SDK against the emulator: normal results, and every fault surfaces as
the exception class and attributes the real service produces (docs/vendor-facts.md §1-§3)."""

from __future__ import annotations

import base64
import binascii
import email.utils
import io
import json
from typing import Any

import httpx2
import openai
import pytest

from fallback_chain.emulator import Emulator
from fallback_chain.imaging import InvalidImageError, inspect_image, placeholder_image

KEY = "test-key"


def decode(b64: str | None) -> bytes:
    assert b64 is not None
    return base64.b64decode(b64, validate=True)


# ------------------------------------------------------------------------------ success


@pytest.mark.parametrize(("kwargs", "size", "mime", "tokens_per_image"), [
    ({"model": "gpt-image-1.5", "size": "1024x1024", "quality": "low"}, (1024, 1024),
     "image/png", 272),
    ({"model": "gpt-image-1", "size": "1536x1024", "quality": "high", "n": 2}, (1536, 1024),
     "image/png", 6208),
    ({"model": "gpt-image-1-mini", "size": "1024x1536", "output_format": "jpeg"}, (1024, 1536),
     "image/jpeg", 1584),
    ({"model": "gpt-image-1.5", "output_format": "webp", "background": "transparent"},
     (1024, 1024), "image/webp", 1056),
    ({"model": "gpt-image-2", "size": "1536x864", "quality": "low"}, (1536, 864), "image/png",
     round(200 * 1536 * 864 / 1024**2)),
    ({"model": "gpt-image-2.5-flare", "size": "1024x1024", "quality": "high"}, (1024, 1024),
     "image/png", 1756),
])
def test_gpt_image_returns_b64_images_and_usage(
        oai: openai.OpenAI, kwargs: dict[str, Any], size: tuple[int, int], mime: str,
        tokens_per_image: int) -> None:
    result = oai.images.generate(prompt="a lighthouse at dusk", **kwargs)
    n = kwargs.get("n", 1)
    assert len(result.data) == n
    for item in result.data:
        assert item.url is None and item.revised_prompt is None
        info = inspect_image(decode(item.b64_json))
        assert (info.width, info.height) == size and info.mime_type == mime
    assert result.size == f"{size[0]}x{size[1]}"
    assert result.output_format == kwargs.get("output_format", "png")
    assert result.usage is not None
    assert result.usage.output_tokens == tokens_per_image * n
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens
    assert result.usage.input_tokens_details.text_tokens > 0


def test_transparent_background_draws_alpha(oai: openai.OpenAI) -> None:
    result = oai.images.generate(model="gpt-image-1.5", prompt="a logo",
                                 background="transparent")
    assert result.background == "transparent"
    assert inspect_image(decode(result.data[0].b64_json)).has_alpha


def test_dalle3_url_points_at_the_emulator_and_expires(
        oai: openai.OpenAI, http2: httpx2.Client, emu: Emulator, clock: Any) -> None:
    emu.set_faults({"openai": {"url_ttl_s": 60}})
    result = oai.images.generate(model="dall-e-3", prompt="a fox", size="1792x1024")
    item = result.data[0]
    assert item.b64_json is None and item.revised_prompt and "a fox" in item.revised_prompt
    assert item.url is not None and item.url.startswith("http://emulator.test/_files/")
    image = http2.get(item.url)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert (inspect_image(image.content).width, inspect_image(image.content).height) == \
        (1792, 1024)
    clock.advance(61)
    expired = http2.get(item.url)
    assert expired.status_code == 403
    assert "AuthenticationFailed" in expired.text


def test_dalle3_b64_json_and_dalle2(oai: openai.OpenAI) -> None:
    r3 = oai.images.generate(model="dall-e-3", prompt="a fox", response_format="b64_json",
                             quality="hd", style="natural")
    assert r3.data[0].revised_prompt
    assert inspect_image(decode(r3.data[0].b64_json)).width == 1024
    assert r3.usage is None
    r2 = oai.images.generate(model="dall-e-2", prompt="a fox", size="256x256", n=3,
                             response_format="b64_json")
    assert len(r2.data) == 3 and r2.data[0].revised_prompt is None
    assert inspect_image(decode(r2.data[0].b64_json)).width == 256


def _png(w: int, h: int, seed: int = 1, alpha: bool = False) -> io.BytesIO:
    buf = io.BytesIO(placeholder_image(w, h, seed=seed, alpha=alpha))
    buf.name = f"img{seed}.png"
    return buf


def test_edits_accept_image_and_image_array_and_mask(oai: openai.OpenAI, emu: Emulator) -> None:
    one = oai.images.edit(model="gpt-image-1.5", prompt="add a hat", image=_png(64, 64),
                          mask=_png(64, 64, seed=9, alpha=True), size="1024x1536")
    assert inspect_image(decode(one.data[0].b64_json)).height == 1536
    many = oai.images.edit(model="gpt-image-1.5", prompt="combine",
                           image=[_png(64, 64, 1), _png(64, 64, 2), _png(32, 32, 3)], n=2)
    assert len(many.data) == 2
    assert many.usage is not None and many.usage.input_tokens_details.image_tokens > 0
    entries = emu.requests(vendor="openai")
    assert [len(e.params["image"]) if "image" in (e.params or {}) else 0 for e in entries] == \
        [1, 0]
    assert len((entries[1].params or {})["image[]"]) == 3
    assert (entries[0].params or {})["mask"][0]["size"] > 0


@pytest.mark.parametrize(("kwargs", "param", "code"), [
    ({"image": io.BytesIO(b"not an image")}, "image", "invalid_value"),
    ({"image": _png(64, 64), "mask": _png(32, 32)}, "mask", "invalid_value"),
    ({"image": _png(64, 64), "mask": _png(64, 64, alpha=False)}, "mask", "invalid_value"),
    ({"image": [_png(8, 8, i) for i in range(17)]}, "image", "invalid_value"),
    ({"image": _png(64, 64), "model": "dall-e-3"}, "model", "invalid_value"),
])
def test_edit_validation(oai: openai.OpenAI, kwargs: dict[str, Any], param: str,
                         code: str) -> None:
    kwargs.setdefault("model", "gpt-image-1.5")
    with pytest.raises(openai.BadRequestError) as err:
        oai.images.edit(prompt="x", **kwargs)
    assert (err.value.param, err.value.code) == (param, code)


def test_models_preflight(oai: openai.OpenAI, emu: Emulator) -> None:
    listed = [m.id for m in oai.models.list()]
    assert "gpt-image-1.5" in listed and "dall-e-3" in listed
    assert oai.models.retrieve("gpt-image-2.6-flare").id == "gpt-image-2.6-flare"
    with pytest.raises(openai.NotFoundError) as err:
        oai.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found"
    assert [e.endpoint for e in emu.requests(vendor="openai")] == ["meta"] * 3


# ------------------------------------------------------------------------------ faults


FAULTS: list[tuple[str, str, type[Exception], dict[str, Any]]] = [
    # token, model, exception class, attributes
    ("429", "gpt-image-1.5", openai.RateLimitError,
     {"status_code": 429, "code": "rate_limit_exceeded", "type": "requests"}),
    ("quota", "gpt-image-1.5", openai.RateLimitError,
     {"status_code": 429, "code": "insufficient_quota", "type": "insufficient_quota"}),
    ("credit_balance_exhausted", "gpt-image-1.5", openai.RateLimitError,
     {"code": "credit_balance_exhausted"}),
    ("policy", "dall-e-3", openai.BadRequestError,
     {"status_code": 400, "code": "content_policy_violation", "param": None}),
    ("content_policy_violation", "dall-e-3", openai.BadRequestError,
     {"code": "content_policy_violation", "type": "invalid_request_error"}),
    ("policy", "gpt-image-1.5", openai.BadRequestError,
     {"code": "moderation_blocked", "type": "image_generation_user_error"}),
    ("invalid_value", "gpt-image-1.5", openai.BadRequestError, {"code": "invalid_value"}),
    ("unknown_parameter", "gpt-image-1.5", openai.BadRequestError,
     {"code": "unknown_parameter", "param": "response_format"}),
    ("auth", "gpt-image-1.5", openai.AuthenticationError,
     {"status_code": 401, "code": "invalid_api_key"}),
    ("permission", "gpt-image-1.5", openai.PermissionDeniedError, {"status_code": 403}),
    ("model_not_found", "gpt-image-1.5", openai.NotFoundError,
     {"status_code": 404, "code": "model_not_found"}),
    ("500", "gpt-image-1.5", openai.InternalServerError,
     {"status_code": 500, "type": "server_error", "code": None}),
    ("503", "gpt-image-1.5", openai.InternalServerError,
     {"status_code": 503, "type": "server_error"}),
    ("504", "gpt-image-1.5", openai.InternalServerError, {"status_code": 504}),
    ("hang", "gpt-image-1.5", openai.APITimeoutError, {}),
    ("reset", "gpt-image-1.5", openai.APIConnectionError, {}),
    ("cut", "gpt-image-1.5", openai.APIConnectionError, {}),
]


@pytest.mark.parametrize(("token", "model", "exc_type", "attrs"), FAULTS,
                         ids=[f"{f[0]}-{f[1]}" for f in FAULTS])
def test_fault_surfaces_as_the_sdk_exception(
        oai: openai.OpenAI, emu: Emulator, token: str, model: str, exc_type: type[Exception],
        attrs: dict[str, Any]) -> None:
    emu.script("openai", [{"fault": token, "hang_s": 5}] if token == "hang" else token)
    with pytest.raises(exc_type) as err:
        oai.with_options(timeout=0.2).images.generate(model=model, prompt="a cat")
    for name, value in attrs.items():
        assert getattr(err.value, name) == value, name
    if isinstance(err.value, openai.APIStatusError) and err.value.status_code != 502:
        assert isinstance(err.value.body, dict) and {"message", "type", "param", "code"} <= \
            set(err.value.body)
        assert err.value.request_id and err.value.request_id.startswith("req_")
    [entry] = emu.requests(vendor="openai")
    assert entry.fault == token and entry.prompt == "a cat"
    # the next request is back to normal
    assert oai.images.generate(model=model, prompt="a cat", response_format="b64_json"
                               if model.startswith("dall-e") else openai.omit).data


def test_moderation_blocked_carries_moderation_details(oai: openai.OpenAI,
                                                        emu: Emulator) -> None:
    emu.script("openai", [{"fault": "moderation_blocked", "reason": "output",
                           "categories": ["violence"]}])
    with pytest.raises(openai.BadRequestError) as err:
        oai.images.generate(model="gpt-image-1.5", prompt="x")
    assert isinstance(err.value.body, dict)
    assert err.value.body["moderation_details"] == {"moderation_stage": "output",
                                                    "categories": ["violence"]}
    assert "safety_violations=[violence]" in err.value.message


def test_502_is_an_html_page(oai: openai.OpenAI, emu: Emulator) -> None:
    emu.script("openai", "502")
    with pytest.raises(openai.InternalServerError) as err:
        oai.images.generate(model="gpt-image-1.5", prompt="x")
    assert err.value.status_code == 502
    assert err.value.response.headers["content-type"].startswith("text/html")
    assert isinstance(err.value.body, str) and "502 Bad Gateway" in err.value.body
    assert err.value.code is None


@pytest.mark.parametrize(("fmt", "header", "check"), [
    ("seconds", "retry-after", lambda v: v == "7"),
    ("ms", "retry-after-ms", lambda v: v == "6500"),
    ("http-date", "retry-after", lambda v: email.utils.parsedate_to_datetime(v) is not None),
])
def test_rate_limit_retry_after_formats(oai: openai.OpenAI, emu: Emulator, fmt: str,
                                        header: str, check: Any) -> None:
    emu.script("openai", [{"fault": "429", "retry_after": 6.5, "retry_after_format": fmt}])
    with pytest.raises(openai.RateLimitError) as err:
        oai.images.generate(model="gpt-image-1.5", prompt="x")
    assert check(err.value.response.headers[header])


def test_quota_429_has_no_retry_after(oai: openai.OpenAI, emu: Emulator) -> None:
    emu.script("openai", "quota")
    with pytest.raises(openai.RateLimitError) as err:
        oai.images.generate(model="gpt-image-1.5", prompt="x")
    assert "retry-after" not in err.value.response.headers


def test_sdk_retries_are_counted_by_the_server(http2: httpx2.Client, emu: Emulator) -> None:
    emu.script("openai", "429,429,ok", retry_after=0.01, retry_after_format="ms")
    client = openai.OpenAI(api_key=KEY, base_url="http://emulator.test/v1", http_client=http2,
                           max_retries=2)
    assert client.images.generate(model="gpt-image-1.5", prompt="retry me").data
    entries = emu.requests(vendor="openai", endpoint="generate")
    assert [(e.status, e.fault) for e in entries] == [(429, "429"), (429, "429"), (200, None)]
    retry_counts = [e.params for e in entries]  # the same body three times
    assert retry_counts[0] == retry_counts[2]
    assert all(e.prompt == "retry me" for e in entries)


def test_malformed_200s(oai: openai.OpenAI, emu: Emulator) -> None:
    emu.script("openai", "bad_base64,fewer_images,truncated,html,bad_image")
    bad = oai.images.generate(model="gpt-image-1.5", prompt="x")
    with pytest.raises(binascii.Error):
        base64.b64decode(bad.data[0].b64_json or "", validate=True)
    with pytest.raises(binascii.Error):
        base64.b64decode(bad.data[0].b64_json or "")
    fewer = oai.images.generate(model="gpt-image-1.5", prompt="x", n=3)
    assert len(fewer.data) == 2
    with pytest.raises(json.JSONDecodeError):
        oai.images.generate(model="gpt-image-1.5", prompt="x")
    html = oai.images.generate(model="gpt-image-1.5", prompt="x")
    assert isinstance(html, str) and html.lstrip().startswith("<!DOCTYPE html>")
    broken = oai.images.generate(model="gpt-image-1.5", prompt="x")
    with pytest.raises(InvalidImageError):
        inspect_image(decode(broken.data[0].b64_json))


# ------------------------------------------------------------------------------ auth


def test_wrong_and_missing_key(http2: httpx2.Client) -> None:
    wrong = openai.OpenAI(api_key="sk-wrong-key-123", base_url="http://emulator.test/v1",
                          http_client=http2, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        wrong.images.generate(model="gpt-image-1.5", prompt="x")
    assert err.value.code == "invalid_api_key"
    assert "sk-wrong-key-123" not in err.value.message  # the key is masked
    missing = http2.post("/v1/images/generations", json={"prompt": "x"})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] is None


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(("body", "status", "param", "code"), [
    ({"model": "gpt-image-1.5", "prompt": "x", "n": 11}, 400, "n", "invalid_value"),
    ({"model": "gpt-image-1.5", "prompt": "x", "n": 0}, 400, "n", "invalid_value"),
    ({"model": "gpt-image-1.5", "prompt": "x", "size": "1792x1024"}, 400, "size",
     "invalid_value"),
    ({"model": "gpt-image-2", "prompt": "x", "size": "1000x1000"}, 400, "size",
     "invalid_value"),
    ({"model": "gpt-image-2", "prompt": "x", "size": "3840x640"}, 400, "size",
     "invalid_value"),
    ({"model": "dall-e-3", "prompt": "x", "size": "1536x1024"}, 400, "size", "invalid_value"),
    ({"model": "dall-e-3", "prompt": "x", "n": 2}, 400, "n", "invalid_value"),
    ({"model": "dall-e-3", "prompt": "x", "quality": "high"}, 400, "quality", "invalid_value"),
    ({"model": "gpt-image-1.5", "prompt": "x", "quality": "hd"}, 400, "quality",
     "invalid_value"),
    ({"model": "gpt-image-1.5"}, 400, "prompt", "missing_required_parameter"),
    ({"model": "gpt-image-1.5", "prompt": "x", "response_format": "url"}, 400,
     "response_format", "unknown_parameter"),
    ({"model": "gpt-image-1.5", "prompt": "x", "style": "vivid"}, 400, "style",
     "unknown_parameter"),
    ({"model": "dall-e-3", "prompt": "x", "output_format": "png"}, 400, "output_format",
     "unknown_parameter"),
    ({"model": "gpt-image-1.5", "prompt": "x", "colour": "red"}, 400, "colour",
     "unknown_parameter"),
    ({"model": "gpt-image-1.5", "prompt": 5}, 400, "prompt", "invalid_type"),
    ({"model": "gpt-image-1.5", "prompt": "x", "n": "2"}, 400, "n", "invalid_type"),
    ({"model": "gpt-image-1.5", "prompt": "x", "output_format": "gif"}, 400, "output_format",
     "invalid_value"),
    ({"model": "gpt-image-1.5", "prompt": "x", "background": "transparent",
      "output_format": "jpeg"}, 400, "background", "invalid_value"),
    ({"model": "dall-e-2", "prompt": "x" * 1001}, 400, "prompt", "invalid_value"),
    ({"model": "imagen-4", "prompt": "x"}, 404, None, "model_not_found"),
])
def test_invalid_requests_rejected_in_openai_envelope(
        http2: httpx2.Client, body: dict[str, Any], status: int, param: str | None,
        code: str) -> None:
    response = http2.post("/v1/images/generations", json=body,
                          headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert (error["param"], error["code"]) == (param, code)
    assert error["type"] == "invalid_request_error"


def test_default_model_is_dalle2_and_sdk_raises_bad_request(oai: openai.OpenAI) -> None:
    result = oai.images.generate(prompt="x", size="512x512", response_format="b64_json")
    assert inspect_image(decode(result.data[0].b64_json)).width == 512
    with pytest.raises(openai.BadRequestError) as err:
        oai.images.generate(model="gpt-image-1.5", prompt="x", n=11)
    assert err.value.code == "invalid_value" and err.value.param == "n"
