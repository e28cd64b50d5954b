"""OpenAI requests against OpenAI's own OpenAPI schemas.

``specs/openai-openapi-images-excerpt.yaml`` is a byte-for-byte copy of
an excerpt of the images part of the OpenAI OpenAPI file
(https://github.com/openai/openai-openapi at commit f85dbe2), kept here so the test runs
without the network.

1. Every request shape our OpenAI adapter sends (through the official SDK) validates against
   ``CreateImageRequest`` / ``CreateImageEditRequest``, checked on what the emulator received.
2. The emulator never accepts what the spec rejects (property test over random bodies).

OpenAPI's ``nullable: true`` is translated to JSON Schema's ``null`` type before validating.
Models newer than the spec (gpt-image-2.5+, with qualities ``xhigh``/``max`` from SDK 3.52)
are deliberately accepted by the emulator; the property test sticks to the spec's models.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import openai
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fallback_chain.emulator import Emulator
from fallback_chain.imaging import placeholder_image

SPEC = Path(__file__).with_name("specs") / "openai-openapi-images-excerpt.yaml"
KEY = "test-key"


def _nullable_to_null(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_to_null(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_null(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


@cache
def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    document = _nullable_to_null(yaml.safe_load(SPEC.read_text()))
    schema = {"$ref": f"#/components/schemas/{schema_name}",
              "components": document["components"]}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def spec_errors(schema_name: str, body: Any) -> list[str]:
    return [e.message for e in validator(schema_name).iter_errors(body)]


def test_spec_validator_resolves_refs_and_rejects_the_obvious() -> None:
    assert spec_errors("CreateImageRequest", {"prompt": "x", "partial_images": 2}) == []
    assert spec_errors("CreateImageRequest", {"prompt": "x", "partial_images": 4})
    assert spec_errors("CreateImageRequest", {"prompt": "x", "n": 11})
    assert spec_errors("CreateImageRequest", {"n": 1})
    assert spec_errors("CreateImageEditRequest", {"prompt": "x", "input_fidelity": "max",
                                                  "image": "b"})
    assert spec_errors("CreateImageRequest", {"prompt": "x", "model": None}) == []


# ------------------------------------------------------------------ what we send


GENERATIONS: list[dict[str, Any]] = [  # the request shapes the OpenAI adapter uses
    {"model": "gpt-image-1.5", "prompt": "a lighthouse", "size": "1024x1024", "n": 1},
    {"model": "gpt-image-1", "prompt": "a lighthouse", "size": "1536x1024", "quality": "high",
     "n": 4, "output_format": "jpeg", "output_compression": 80, "moderation": "auto"},
    {"model": "gpt-image-1-mini", "prompt": "a logo", "size": "auto", "quality": "low",
     "background": "transparent", "output_format": "webp"},
    {"model": "gpt-image-2", "prompt": "a banner", "size": "1536x864", "quality": "medium",
     "user": "user-42"},
    {"model": "dall-e-3", "prompt": "a fox", "size": "1792x1024", "quality": "hd",
     "style": "natural", "response_format": "url"},
    {"model": "dall-e-3", "prompt": "a fox", "response_format": "b64_json"},
    {"model": "dall-e-2", "prompt": "a fox", "size": "512x512", "n": 3},
]


def _png(seed: int, name: str, size: int = 64, alpha: bool = False) -> io.BytesIO:
    buf = io.BytesIO(placeholder_image(size, size, seed=seed, alpha=alpha))
    buf.name = name
    return buf


EDITS: list[dict[str, Any]] = [
    {"model": "gpt-image-1.5", "prompt": "add a hat", "size": "1024x1024", "quality": "low"},
    {"model": "gpt-image-1.5", "prompt": "combine", "n": 2, "input_fidelity": "high",
     "output_format": "png", "background": "opaque", "_images": 3},
    {"model": "gpt-image-1", "prompt": "fill the hole", "_mask": True, "size": "1536x1024"},
    {"model": "dall-e-2", "prompt": "a hat", "size": "256x256", "response_format": "b64_json"},
]


@pytest.fixture
def sdk() -> Any:
    emu = Emulator()
    with httpx2.Client(transport=emu.httpx2_sync_transport()) as http:
        yield emu, openai.OpenAI(api_key=KEY, base_url="http://emulator.test/v1",
                                 http_client=http, max_retries=0)


@pytest.mark.parametrize("kwargs", GENERATIONS)
def test_generation_requests_we_send_match_the_spec(sdk: Any, kwargs: dict[str, Any]) -> None:
    emu, client = sdk
    client.images.generate(**kwargs)
    [entry] = emu.requests(endpoint="generate")
    assert entry.status == 200
    assert entry.params == kwargs  # the SDK adds nothing
    assert spec_errors("CreateImageRequest", dict(entry.params)) == []


def _form_as_schema_value(params: dict[str, Any]) -> dict[str, Any]:
    """Multipart fields as the schema describes them: files as strings, typed scalars."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in ("image", "image[]"):
            files = ["<binary>"] * len(value)
            out["image"] = files if key == "image[]" else files[0]
        elif key == "mask":
            out["mask"] = "<binary>"
        elif key in ("n", "output_compression", "partial_images"):
            out[key] = int(value)
        elif key == "stream":
            out[key] = value == "true"
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("spec", EDITS)
def test_edit_requests_we_send_match_the_spec(sdk: Any, spec: dict[str, Any]) -> None:
    emu, client = sdk
    kwargs = {k: v for k, v in spec.items() if not k.startswith("_")}
    images = [_png(i, f"in{i}.png") for i in range(spec.get("_images", 1))]
    kwargs["image"] = images if len(images) > 1 else images[0]
    if spec.get("_mask"):
        kwargs["mask"] = _png(9, "mask.png", alpha=True)
    client.images.edit(**kwargs)
    [entry] = emu.requests(endpoint="generate")
    assert entry.status == 200
    body = _form_as_schema_value(dict(entry.params))
    assert spec_errors("CreateImageEditRequest", body) == []
    assert ("image[]" in entry.params) == (len(images) > 1)


# ------------------------------------------------------------------ what the adapter sends

ADAPTER_MATRIX = [  # (model, ImageRequest fields): every branch of providers/openai_wire.py
    (model, fields)
    for model in ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2",
                  "dall-e-3", "dall-e-2")
    for fields in (
        {"size": "auto"}, {"size": "1536x1024", "quality": "final"},
        {"size": "16:9", "quality": "draft"}, {"n": 2}, {"output_format": "jpeg"},
        {"background": "transparent", "output_format": "webp"},
        {"negative_prompt": "blur", "seed": 7},
        {"images": "one"}, {"images": "two"}, {"images": "mask"})
]


def test_every_request_our_openai_adapter_sends_validates_against_the_spec() -> None:
    """Drive ``OpenAIProvider`` itself over a matrix of requests; every body the emulator
    received must validate against the spec's schema (requests the adapter refuses up front
    are skipped by the router and never sent, which is also checked)."""
    import asyncio
    import warnings

    from fallback_chain import ImageRequest
    from fallback_chain.errors import ProviderError
    from fallback_chain.providers import OpenAIProvider

    emu = Emulator()
    sent = refused = 0

    async def go() -> None:
        nonlocal sent, refused
        async with httpx2.AsyncClient(transport=emu.httpx2_transport()) as http:
            for model, fields in ADAPTER_MATRIX:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    provider = OpenAIProvider(model=model, api_key=KEY, http_client=http,
                                              base_url="http://emulator.test/v1")
                kw = dict(fields)
                images = kw.pop("images", None)
                if images:
                    kw["images"] = [placeholder_image(256, 256, seed=i)
                                    for i in range(2 if images == "two" else 1)]
                    if images == "mask":
                        kw["mask"] = placeholder_image(256, 256, seed=9, alpha=True)
                request = ImageRequest(prompt="a lighthouse at dusk", **kw)
                if provider.unsupported_reason(request) is not None:
                    refused += 1
                    continue
                emu.log.clear()
                try:
                    await provider.generate(request, timeout=30)
                except ProviderError as exc:  # the emulator refused: show why
                    raise AssertionError(f"{model} {fields}: {exc}") from exc
                for entry in emu.requests(endpoint="generate"):
                    sent += 1
                    params = dict(entry.params or {})
                    if request.images:
                        errors = spec_errors("CreateImageEditRequest",
                                             _form_as_schema_value(params))
                    else:
                        errors = spec_errors("CreateImageRequest", params)
                    assert errors == [], (model, fields, params, errors)

    asyncio.run(go())
    assert sent >= 40  # most of the matrix is servable
    assert refused >= 5  # e.g. dall-e-3 with n=2 or edits: refused before any call


# ------------------------------------------------------------------ what the spec rejects


def _values(*good: Any) -> st.SearchStrategy[Any]:
    """Mostly good values, one time in eight a value of a wrong type or outside the enum."""
    bad = st.sampled_from([None, True, 3, -1, 1.5, "nonsense", "", [1], {"a": 1}])
    return st.integers(0, 7).flatmap(lambda i: bad if i == 0 else st.sampled_from(good))


SPEC_MODELS = ["gpt-image-1.5", "gpt-image-2", "dall-e-2", "dall-e-3", "gpt-image-1",
               "gpt-image-1-mini"]

BODIES = st.fixed_dictionaries({"prompt": _values("a cat", "x" * 50)}, optional={
    "model": _values(*SPEC_MODELS),
    "n": st.one_of(_values(1, 2), st.integers(-2, 12)),
    "quality": _values("standard", "hd", "low", "medium", "high", "auto", "xhigh"),
    "response_format": _values("url", "b64_json"),
    "output_format": _values("png", "jpeg", "webp", "gif"),
    "output_compression": st.one_of(_values(50, 100), st.integers(-5, 105)),
    "partial_images": st.one_of(_values(0, 1), st.integers(-1, 4)),
    "size": _values("auto", "1024x1024", "1536x1024", "256x256", "1792x1024", "1536x864",
                    "7x7"),
    "moderation": _values("low", "auto", "high"),
    "background": _values("transparent", "opaque", "auto"),
    "style": _values("vivid", "natural", "bold"),
    "user": _values("u-1"),
})


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_emulator_never_accepts_what_the_spec_rejects(body: dict[str, Any]) -> None:
    emu = Emulator()
    with httpx2.Client(transport=emu.httpx2_sync_transport(),
                       base_url="http://emulator.test") as http:
        response = http.post("/v1/images/generations", json=body,
                             headers={"authorization": f"Bearer {KEY}"})
    errors = spec_errors("CreateImageRequest", body)
    if errors:
        assert response.status_code == 400, (body, errors)
        error = response.json()["error"]
        assert set(error) >= {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
    elif response.status_code == 404:  # a model id the spec allows (any string) but no one has
        assert response.json()["error"]["code"] == "model_not_found"
    else:
        assert response.status_code in (200, 400), body


@pytest.mark.parametrize("fields", [
    {"prompt": "x", "n": "11"},
    {"n": "1"},
    {"prompt": "x", "quality": "hd"},
    {"prompt": "x", "input_fidelity": "max"},
    {"prompt": "x", "output_format": "gif"},
    {"prompt": "x", "partial_images": "5"},
])
def test_edits_rejected_when_the_spec_rejects(fields: dict[str, str]) -> None:
    typed = _form_as_schema_value({**fields, "image": [{}]})
    assert spec_errors("CreateImageEditRequest", typed)
    emu = Emulator()
    with httpx2.Client(transport=emu.httpx2_sync_transport(),
                       base_url="http://emulator.test") as http:
        response = http.post(
            "/v1/images/edits", data={"model": "gpt-image-1.5", **fields},
            files={"image": ("a.png", placeholder_image(32, 32), "image/png")},
            headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_edit_without_image_is_rejected() -> None:
    assert spec_errors("CreateImageEditRequest", {"prompt": "x"})
    emu = Emulator()
    with httpx2.Client(transport=emu.httpx2_sync_transport(),
                       base_url="http://emulator.test") as http:
        response = http.post("/v1/images/edits", files={"prompt": (None, "x")},
                             headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "image"
