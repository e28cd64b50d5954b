"""Validation of OpenAI image requests: what the spec and each model family accept.

``check_generation`` / ``check_edit`` turn a JSON body (or form fields) into a ``Checked``
request or raise ``OpenAIInvalid`` carrying OpenAI's ``param``/``code``/``message``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import facts

#: Fields of CreateImageRequest [SPEC] plus those SDK 3.52 sends for 2026 models [SDK].
GENERATION_FIELDS = frozenset({
    "prompt", "model", "n", "quality", "response_format", "output_format",
    "output_compression", "stream", "partial_images", "size", "moderation", "background",
    "style", "user", "safety_identifier",
})
#: Fields of CreateImageEditRequest (multipart).  [SPEC]
EDIT_FIELDS = frozenset({
    "image", "image[]", "prompt", "mask", "background", "model", "n", "size",
    "response_format", "output_format", "output_compression", "user", "input_fidelity",
    "stream", "partial_images", "quality", "safety_identifier",
})
#: Fields the spec does not mark nullable: ``null`` is a type error.  [SPEC]
NOT_NULLABLE = frozenset({"prompt", "user"})
_ENUMS: dict[str, tuple[str, ...]] = {  # spec-wide enums [SPEC]
    "quality": ("standard", "hd", "low", "medium", "high", "auto", "xhigh", "max"),
    "response_format": ("url", "b64_json"),
    "output_format": ("png", "jpeg", "webp"),
    "moderation": ("low", "auto"),
    "background": ("transparent", "opaque", "auto"),
    "style": ("vivid", "natural"),
    "input_fidelity": ("high", "low"),
}
_TYPES: dict[str, type] = {
    "prompt": str, "model": str, "n": int, "quality": str, "response_format": str,
    "output_format": str, "output_compression": int, "stream": bool, "partial_images": int,
    "size": str, "moderation": str, "background": str, "style": str, "user": str,
    "input_fidelity": str, "safety_identifier": str,
}


class OpenAIInvalid(Exception):
    """A 400 (or 404 for ``model_not_found``) in OpenAI's envelope."""

    def __init__(self, message: str, *, param: str | None, code: str | None,
                 status: int = 400) -> None:
        super().__init__(message)
        self.message, self.param, self.code, self.status = message, param, code, status


@dataclass
class Checked:
    """A request that passed validation, with defaults resolved."""

    model: str
    family: str
    prompt: str
    n: int
    width: int
    height: int
    size: str
    quality: str
    output_format: str
    background: str
    response_format: str | None
    input_images: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_gpt(self) -> bool:
        return self.family.startswith("gpt-image")


def invalid_value(param: str, value: Any, allowed: tuple[str, ...] | None = None,
                  detail: str | None = None) -> OpenAIInvalid:
    if detail is None:
        supported = ", ".join(f"'{a}'" for a in allowed or ())
        detail = f"Invalid value: '{value}'. Supported values are: {supported}."
    return OpenAIInvalid(detail, param=param, code="invalid_value")


def coerce_form(fields: dict[str, str]) -> dict[str, Any]:
    """Multipart text parts to typed values (``n`` -> int, ``stream`` -> bool)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        expected = _TYPES.get(key)
        if expected is int:
            try:
                out[key] = int(value)
            except ValueError:
                raise OpenAIInvalid(
                    f"Invalid type for '{key}': expected an integer, but got a string instead.",
                    param=key, code=facts.OPENAI_INVALID_TYPE_CODE) from None
        elif expected is bool:
            out[key] = value.strip().lower() in ("true", "1")
        else:
            out[key] = value
    return out


def _common(body: dict[str, Any], allowed: frozenset[str], endpoint: str) -> dict[str, Any]:
    for key in body:
        if key not in allowed:
            raise OpenAIInvalid(f"Unknown parameter: '{key}'.", param=key,
                                code="unknown_parameter")
    for key in NOT_NULLABLE & set(body):
        if body[key] is None:
            raise OpenAIInvalid(f"Invalid type for '{key}': expected a string, but got null "
                                "instead.", param=key, code=facts.OPENAI_INVALID_TYPE_CODE)
    values = {k: v for k, v in body.items() if v is not None}  # the others are nullable
    for key, value in values.items():
        expected = _TYPES.get(key)
        if expected is None:
            continue
        wrong = (not isinstance(value, expected)
                 or (expected is int and isinstance(value, bool)))
        if wrong:
            want = {str: "a string", int: "an integer", bool: "a boolean"}[expected]
            raise OpenAIInvalid(
                f"Invalid type for '{key}': expected {want}, but got "
                f"{type(value).__name__} instead.", param=key,
                code=facts.OPENAI_INVALID_TYPE_CODE)
    for key, options in _ENUMS.items():
        if key in values and values[key] not in options:
            raise invalid_value(key, values[key], options)
    if "prompt" not in values:
        raise OpenAIInvalid("Missing required parameter: 'prompt'.", param="prompt",
                            code=facts.OPENAI_MISSING_PARAM_CODE)
    if not values["prompt"].strip():
        raise invalid_value("prompt", "", detail="Invalid 'prompt': empty string.")
    n = values.get("n", 1)
    if not 1 <= n <= 10:
        raise invalid_value("n", n, detail=f"Invalid 'n': must be between 1 and 10, got {n}.")
    if "partial_images" in values and not 0 <= values["partial_images"] <= 3:
        raise invalid_value("partial_images", values["partial_images"],
                            detail="Invalid 'partial_images': must be between 0 and 3.")
    if values.get("stream"):
        raise invalid_value("stream", True,
                            detail="stream=true is not supported by the emulator.")
    model = values.get("model", facts.OPENAI_DEFAULT_MODEL[endpoint])
    if facts.openai_family(model) is None:
        status, _type, code, msg = facts.OPENAI_ERRORS["model_not_found"]
        raise OpenAIInvalid(msg.format(model=model), param=None, code=code, status=status)
    values["model"] = model
    return values


def _family_params(values: dict[str, Any], family: str) -> None:
    gpt = family.startswith("gpt-image")
    banned = facts.DALLE_ONLY_PARAMS if gpt else facts.GPT_ONLY_PARAMS
    for key in sorted(banned & set(values)):
        raise OpenAIInvalid(f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")
    prompt = values["prompt"]
    limit = facts.OPENAI_MAX_PROMPT[family]
    if len(prompt) > limit:
        raise invalid_value(
            "prompt", "", detail=f"Invalid 'prompt': string too long. Expected a string with "
            f"maximum length {limit}, but got a string with length {len(prompt)} instead.")
    if family == "dall-e-3" and values.get("n", 1) != 1:
        raise invalid_value("n", values["n"],
                            detail="Invalid 'n': dall-e-3 only supports n=1.")
    quality_options = facts.OPENAI_QUALITIES[family]
    if values.get("quality", "auto") not in quality_options:
        raise invalid_value("quality", values["quality"], quality_options)
    if values.get("background") == "transparent" and values.get("output_format") == "jpeg":
        raise invalid_value("background", "transparent", detail=(
            "Transparent background is not supported with 'jpeg' output; use 'png' or "
            "'webp'."))
    compression = values.get("output_compression")
    if compression is not None and not 0 <= compression <= 100:
        raise invalid_value("output_compression", compression,
                            detail="Invalid 'output_compression': must be between 0 and 100.")


def parse_size(size: str, family: str, sizes: tuple[str, ...]) -> tuple[int, int]:
    """Width and height for ``size`` under ``family``'s rules (``auto`` -> 1024x1024)."""
    if size == "auto" and "auto" in sizes:
        return 1024, 1024
    if family in ("gpt-image-2", "gpt-image-2.5") and size not in sizes:
        m = re.fullmatch(r"(\d+)x(\d+)", size)
        if m:
            w, h = int(m.group(1)), int(m.group(2))
            ok = (w % 16 == 0 and h % 16 == 0 and max(w, h) <= facts.GPT_IMAGE_2_MAX_EDGE
                  and facts.GPT_IMAGE_2_MIN_PIXELS <= w * h <= facts.GPT_IMAGE_2_MAX_PIXELS
                  and max(w, h) <= 3 * min(w, h))
            if ok:
                return w, h
        raise invalid_value("size", size, detail=(
            f"Invalid value: '{size}'. Size must be WIDTHxHEIGHT with both sides multiples "
            "of 16, an aspect ratio between 1:3 and 3:1, at least 256x256 pixels in area and "
            "at most 3840x2160, or 'auto'."))
    if size not in sizes:
        raise invalid_value("size", size, sizes)
    width, _, height = size.partition("x")
    return int(width), int(height)


def _finish(values: dict[str, Any], family: str, sizes: tuple[str, ...],
            default_size: str) -> Checked:
    gpt = family.startswith("gpt-image")
    size = values.get("size", default_size)
    width, height = parse_size(size, family, sizes)
    quality = values.get("quality", "auto")
    if gpt and quality == "auto":
        quality = "medium"  # [EMU] what "auto" resolves to
    return Checked(
        model=values["model"], family=family, prompt=values["prompt"], n=values.get("n", 1),
        width=width, height=height, size=f"{width}x{height}", quality=quality,
        output_format=values.get("output_format", "png") if gpt else "png",
        background=("transparent" if values.get("background") == "transparent" else "opaque"),
        response_format=None if gpt else values.get("response_format", "url"),
        params=values,
    )


def check_generation(body: Any) -> Checked:
    if not isinstance(body, dict):
        raise OpenAIInvalid(
            "We could not parse the JSON body of your request. The OpenAI API expects a JSON "
            "object.", param=None, code=None)
    values = _common(body, GENERATION_FIELDS, "generations")
    family = facts.openai_family(values["model"]) or "gpt-image"
    _family_params(values, family)
    sizes = facts.OPENAI_SIZES["gpt-image" if family.startswith("gpt-image") else family]
    default = "auto" if "auto" in sizes else "1024x1024"
    return _finish(values, family, sizes, default)


def check_edit(fields: dict[str, Any], image_count: int, has_mask: bool) -> Checked:
    """``fields`` are the typed text parts; images and mask are checked by the caller."""
    values = _common(fields, EDIT_FIELDS, "edits")
    family = facts.openai_family(values["model"]) or "gpt-image"
    if family == "dall-e-3":
        raise invalid_value("model", "dall-e-3", detail=(
            "Invalid value: 'dall-e-3'. Image edits support 'dall-e-2' and the GPT image "
            "models."))
    if image_count == 0:
        raise OpenAIInvalid("Missing required parameter: 'image'.", param="image",
                            code=facts.OPENAI_MISSING_PARAM_CODE)
    limit = 16 if family.startswith("gpt-image") else 1
    if image_count > limit:
        raise invalid_value("image", image_count, detail=(
            f"Invalid 'image': too many images ({image_count}); {values['model']} accepts "
            f"at most {limit}."))
    _family_params(values, family)
    sizes = (facts.OPENAI_SIZES["dall-e-2"] if family == "dall-e-2"
             else facts.OPENAI_SIZES["gpt-image"])
    checked = _finish(values, family, sizes, "1024x1024")
    checked.input_images = image_count
    return checked
