"""Gemini API: ``/{v1,v1beta}/models/{model}:generateContent`` and the models preflight."""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from fallback_chain.imaging import FORMAT_BY_MIME, seed_for

from . import facts
from .common import (
    VendorAPI,
    fmt_seconds,
    json_body,
    json_response,
    request_info,
    retry_after_headers,
)
from .faults import Fault, Rule
from .openai_api import corrupt_base64
from .state import ImageRecipe

_DETAILS = "type.googleapis.com/google.rpc."
#: Fault kinds answered with HTTP 200 and a safety/empty body: kind -> (where, reason).
_SAFETY_200 = {
    "blocked_prompt": ("prompt", "PROHIBITED_CONTENT"),
    "image_safety": ("finish", "IMAGE_SAFETY"),
    "policy": ("finish", "IMAGE_SAFETY"),
    "prohibited_content": ("finish", "PROHIBITED_CONTENT"),
    "no_image": ("finish", "NO_IMAGE"),
    "text_only": ("text", "STOP"),
    "fewer_images": ("empty", "STOP"),
}


class GeminiInvalid(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _get(mapping: Any, camel: str) -> Any:
    """A field by its camelCase or snake_case name (proto JSON accepts both)."""
    if not isinstance(mapping, dict):
        return None
    if camel in mapping:
        return mapping[camel]
    return mapping.get(re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower())


def image_dims(model: str, aspect_ratio: str | None, image_size: str | None) -> tuple[int, int]:
    """Pixel size for an aspect ratio and imageSize (unknown ratios are computed)."""
    ratio = aspect_ratio or "1:1"
    m = re.fullmatch(r"(\d+):(\d+)", ratio)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise GeminiInvalid(f"Invalid value at 'generation_config.image_config.aspect_ratio' "
                            f"(TYPE_STRING), \"{ratio}\"")
    size = image_size or "1K"
    if size not in facts.GEMINI_IMAGE_SIZE_SCALE:
        raise GeminiInvalid(f"Invalid value at 'generation_config.image_config.image_size' "
                            f"(TYPE_STRING), \"{size}\"; expected one of "
                            f"{', '.join(facts.GEMINI_IMAGE_SIZE_SCALE)}")
    if ratio in facts.GEMINI_SIZES_1K:
        w, h = facts.GEMINI_SIZES_1K[ratio]
    else:  # [EMU] about one megapixel, multiples of 16
        a, b = int(m.group(1)), int(m.group(2))
        w = round(math.sqrt(1024 * 1024 * a / b) / 16) * 16
        h = round(math.sqrt(1024 * 1024 * b / a) / 16) * 16
    scale = facts.GEMINI_IMAGE_SIZE_SCALE[size] if facts.gemini_supports_image_size(model) else 1
    return max(16, int(w * scale)), max(16, int(h * scale))


class GeminiAPI(VendorAPI):
    vendor = "gemini"
    #: This vendor's own fault kinds (besides ``faults.COMMON_KINDS``).
    fault_kinds = frozenset({
        "bad_base64", "fewer_images", "blocked_prompt", "image_safety", "prohibited_content",
        "no_image", "text_only", "invalid_argument", "not_found", "prepaid", "permission"})
    #: What ``malformed`` picks from (seeded): a 200 the client cannot use.
    malformed_kinds = ("truncated", "html", "bad_base64")
    #: How a 429's Retry-After is given unless the fault configuration says otherwise.
    retry_after_format = "body"
    route_order = -1  # its "models/{model}:generateContent" before OpenAI's /v1/models/{model}

    def claims_models_route(self, request: Request, model: str = "") -> bool:
        """``GET /v1/models[/{m}]`` exists at both OpenAI and Google: tell them apart by the
        credentials (``x-goog-api-key``/``?key=`` versus a Bearer token)."""
        headers = request.headers
        if "x-goog-api-key" in headers or "key" in request.query_params \
                or "x-goog-api-client" in headers:
            return True
        if "authorization" in headers:
            return False
        return model.startswith(("gemini", "imagen", "models/"))

    def routes(self) -> list[Route]:
        routes = []
        for version in ("v1", "v1beta"):
            routes.append(Route(f"/{version}/models/{{model}}:generateContent",
                                self.generate_content, methods=["POST"]))
        routes.append(Route("/v1beta/models", self.list_models, methods=["GET"]))
        routes.append(Route("/v1beta/models/{model}", self.route_get_model, methods=["GET"]))
        return routes

    # ------------------------------------------------------------------ errors

    def error(self, status: int, message: str, details: list[dict[str, Any]] | None = None,
              headers: dict[str, str] | None = None) -> Response:
        err: dict[str, Any] = {"code": status, "message": message,
                               "status": facts.GEMINI_ERROR_STATUS.get(status, "UNKNOWN")}
        if details:
            err["details"] = details
        return json_response({"error": err}, status, headers)

    def auth_error(self, request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            return self.error(403, facts.GEMINI_MESSAGES["missing_key"], [
                {"@type": _DETAILS + "ErrorInfo", "reason": "CONSUMER_INVALID",
                 "domain": "googleapis.com",
                 "metadata": {"service": "generativelanguage.googleapis.com"}}])
        if not self.state.key_ok("gemini", key):
            return self.api_key_invalid()
        return None

    def api_key_invalid(self) -> Response:
        message = facts.GEMINI_MESSAGES["api_key_invalid"]
        return self.error(400, message, [
            {"@type": _DETAILS + "ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": _DETAILS + "LocalizedMessage", "locale": "en-US", "message": message}])

    def error_for(self, fault: Fault, request: Request, model: str | None,
                  rule: Rule) -> Response | None:
        kind, status, message = fault.kind, fault.status, fault.message
        model = model or "gemini"
        fmt = fault.retry_after_format or rule.retry_after_format
        if status == 429 or kind == "quota":
            daily = kind == "quota"
            seconds = fault.retry_after if fault.retry_after is not None else (
                52758.0 if daily else rule.retry_after)
            quota_id = ("GenerateRequestsPerDayPerProjectPerModel-FreeTier" if daily
                        else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier")
            details: list[dict[str, Any]] = [
                {"@type": _DETAILS + "QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/"
                                   "generate_content_free_tier_requests",
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": "0" if daily else "10"}]},
                {"@type": _DETAILS + "Help", "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
                {"@type": _DETAILS + "RetryInfo", "retryDelay": f"{fmt_seconds(seconds)}s"}]
            text = message or facts.GEMINI_MESSAGES["quota" if daily else "rate_limit"].format(
                retry_after=fmt_seconds(seconds))
            headers = retry_after_headers(fmt, seconds, self.state.clock.wall())
            return self.error(429, text, details, headers)
        if kind == "prepaid" or status == 402:
            return self.error(402, message or facts.GEMINI_MESSAGES["prepaid"])
        if kind == "auth":
            return self.api_key_invalid()
        if kind == "permission" or status == 403:
            return self.error(403, message or "Permission denied: the API key has no access "
                              f"to models/{model}.")
        if kind == "not_found" or status == 404:
            version = request.url.path.split("/")[1]
            return self.error(404, message or facts.GEMINI_MESSAGES["not_found"].format(
                model=model, version=version))
        if kind == "invalid_argument" or status == 400:
            return self.error(400, message or "Request contains an invalid argument.")
        if status == 502:
            return HTMLResponse(facts.GEMINI_BAD_GATEWAY_HTML, status_code=502)
        if status is not None:
            default = {500: "internal", 503: "unavailable", 504: "deadline"}.get(status)
            text = message or (facts.GEMINI_MESSAGES[default] if default else
                               f"Request failed with status {status}.")
            return self.error(status, text)
        return None

    # ------------------------------------------------------------------ endpoints

    async def generate_content(self, request: Request) -> Response:
        model = request.path_params["model"].removeprefix("models/")
        self.note(request, "generate", model)
        if (denied := self.auth_error(request)) is not None:
            return denied
        body, problem = await json_body(request)
        if problem is not None or not isinstance(body, dict):
            return self.error(400, f"Invalid JSON payload received. {problem or 'Not an object.'}")
        prompt, images_in = _prompt_of(body)
        request_info(request).input_images = _input_hashes(body)

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            try:
                return self.answer(model, body, prompt, images_in, fault)
            except GeminiInvalid as exc:
                return self.error(exc.status, exc.message)

        return await self.guarded(request, endpoint="generate", model=model, prompt=prompt,
                                  params=body, handler=handle)

    def answer(self, model: str, body: dict[str, Any], prompt: str, images_in: int,
               fault: Fault | None) -> Response:
        unknown = [k for k in body if _snake_to_camel(k) not in facts.GEMINI_REQUEST_FIELDS]
        if unknown:
            raise GeminiInvalid(f'Invalid JSON payload received. Unknown name "{unknown[0]}": '
                                "Cannot find field.")
        contents = _get(body, "contents")
        if not isinstance(contents, list) or not contents:
            raise GeminiInvalid("* GenerateContentRequest.contents: contents is not specified")
        gen = _get(body, "generationConfig") or {}
        image_config = _get(gen, "imageConfig") or {}
        width, height = image_dims(model, _get(image_config, "aspectRatio"),
                                   _get(image_config, "imageSize"))
        image_size = _get(image_config, "imageSize") or "1K"
        modalities = [str(m).upper() for m in (_get(gen, "responseModalities") or [])]
        prompt_tokens = max(1, math.ceil(len(prompt) / 4)) + 258 * images_in  # [EMU]
        kind = fault.kind if fault else None
        usage: dict[str, Any] = {"promptTokenCount": prompt_tokens,
                                 "promptTokensDetails": [{"modality": "TEXT",
                                                          "tokenCount": prompt_tokens}]}
        out: dict[str, Any] = {"modelVersion": model, "responseId": self.state.ids.hex(12)}
        safety = _SAFETY_200.get(kind or "")
        ratings = _safety_ratings(fault)
        if safety is not None and safety[0] == "prompt":
            out["promptFeedback"] = {"blockReason": (fault.reason if fault and fault.reason
                                                     else safety[1])}
            if ratings:
                out["promptFeedback"]["safetyRatings"] = ratings
            usage["totalTokenCount"] = prompt_tokens
            return json_response({**out, "usageMetadata": usage})
        candidate: dict[str, Any] = {"index": 0}
        parts: list[dict[str, Any]] = []
        image_tokens = text_tokens = 0
        if safety is not None and safety[0] == "finish":
            candidate["finishReason"] = fault.reason if fault and fault.reason else safety[1]
            if ratings:
                candidate["safetyRatings"] = ratings
        elif safety is not None and safety[0] in ("text", "empty"):
            candidate["finishReason"] = "STOP"
            if safety[0] == "text":
                parts.append({"text": fault.message if fault and fault.message
                              else facts.GEMINI_TEXT_REFUSAL})
            candidate["content"] = {"role": "model", "parts": parts}
        else:
            candidate["finishReason"] = "STOP"
            if "TEXT" in modalities or ("IMAGE" not in modalities and modalities):
                parts.append({"text": f"Here is the image you asked for: {prompt[:60]}"})
            if not modalities or "IMAGE" in modalities:
                mime = facts.gemini_image_mime(model)
                seed = _get(gen, "seed")
                base = (seed_for(prompt) + seed if isinstance(seed, int)
                        else self.state.image_seed("gemini", seed_for(prompt)))
                recipe = ImageRecipe(width, height, base, FORMAT_BY_MIME[mime])
                data = base64.b64encode(recipe.render()).decode()
                if kind == "bad_base64":
                    data = corrupt_base64(data)
                parts.append({"inlineData": {"mimeType": mime, "data": data}})
                image_tokens = facts.gemini_image_tokens(model, image_size)
            candidate["content"] = {"role": "model", "parts": parts}
        text_tokens = sum(max(1, len(p["text"]) // 4) for p in parts if "text" in p)
        details = []
        if text_tokens:
            details.append({"modality": "TEXT", "tokenCount": text_tokens})
        if image_tokens:
            details.append({"modality": "IMAGE", "tokenCount": image_tokens})
        usage.update(candidatesTokenCount=text_tokens + image_tokens,
                     totalTokenCount=prompt_tokens + text_tokens + image_tokens)
        if details:
            usage["candidatesTokensDetails"] = details
        return json_response({"candidates": [candidate], "usageMetadata": usage, **out})

    async def list_models(self, request: Request) -> Response:
        self.note(request, "meta")
        if (denied := self.auth_error(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            names = ("gemini-2.5-flash-image", "gemini-3-pro-image", "gemini-3.1-flash-image")
            return json_response({"models": [_model_resource(m) for m in names]})

        return await self.guarded(request, endpoint="meta", model=None, handler=handle)

    async def route_get_model(self, request: Request) -> Response:
        return await self.get_model(request, request.path_params["model"])

    async def get_model(self, request: Request, model: str) -> Response:
        """The credentials preflight. Any model id exists (the emulator keeps no list)."""
        model = model.removeprefix("models/")
        self.note(request, "meta", model)
        if (denied := self.auth_error(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            return json_response(_model_resource(model))

        return await self.guarded(request, endpoint="meta", model=model, handler=handle)


def _safety_ratings(fault: Fault | None) -> list[dict[str, Any]]:
    """``safetyRatings`` for a safety fault that names categories (e.g. ``categories =
    ["HARM_CATEGORY_DANGEROUS_CONTENT"]`` in the fault file)."""
    if fault is None or not fault.categories:
        return []
    return [{"category": c, "probability": "HIGH", "blocked": True} for c in fault.categories]


def _snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


_URLSAFE_TO_STD = str.maketrans("-_", "+/")


def _prompt_of(body: dict[str, Any]) -> tuple[str, int]:
    """The text of the user's parts and the number of input images."""
    texts: list[str] = []
    images = 0
    contents = _get(body, "contents")
    for content in contents if isinstance(contents, list) else []:
        for part in _get(content, "parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            inline = _get(part, "inlineData")
            if isinstance(inline, dict):
                data = str(_get(inline, "data") or "").translate(_URLSAFE_TO_STD)
                try:  # google-genai sends URL-safe base64; the REST docs show the standard one
                    base64.b64decode(data, validate=True)
                except (binascii.Error, ValueError):
                    continue
                images += 1
    return " ".join(texts), images


def _input_hashes(body: dict[str, Any]) -> tuple[str, ...]:
    """The hex SHA-256 of every decodable ``inlineData`` image, turn by turn, in order."""
    hashes: list[str] = []
    contents = _get(body, "contents")
    for content in contents if isinstance(contents, list) else []:
        for part in (_get(content, "parts") if isinstance(content, dict) else None) or []:
            inline = _get(part, "inlineData") if isinstance(part, dict) else None
            if isinstance(inline, dict):
                data = str(_get(inline, "data") or "").translate(_URLSAFE_TO_STD)
                try:
                    hashes.append(hashlib.sha256(base64.b64decode(data, validate=True))
                                  .hexdigest())
                except (binascii.Error, ValueError):
                    continue
    return tuple(hashes)


def _model_resource(model: str) -> dict[str, Any]:
    return {"name": f"models/{model}", "version": "001", "displayName": model,
            "description": "Emulated Gemini image model", "inputTokenLimit": 32768,
            "outputTokenLimit": 32768,
            "supportedGenerationMethods": ["generateContent", "countTokens"]}
