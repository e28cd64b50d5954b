"""Vendor facts the emulator reproduces, in one place so they are easy to correct.

Every entry carries a provenance tag (explained with the public sources in
``docs/vendor-facts.md``): ``[SDK]`` read in an official SDK, ``[SPEC]`` an official OpenAPI file,
``[DOC]`` official documentation, ``[2ND]`` second-hand (third-party captures; likely, not
certain) and ``[EMU]`` a choice of this emulator where no source says anything. When a real
response proves one of these wrong, fix it here; the API modules only read these tables.
"""

from __future__ import annotations

import re
from typing import Final

# ============================================================================ OpenAI

#: Sizes accepted by model family.  [SPEC CreateImageRequest.size; SDK 3.52.0]
OPENAI_SIZES: Final[dict[str, tuple[str, ...]]] = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image": ("1024x1024", "1536x1024", "1024x1536", "auto"),
}
#: gpt-image-2 and later take any WxH: multiples of 16, ratio 1:3..3:1, at most 3840x2160.
#: [SPEC size description; SDK 3.52.0]
GPT_IMAGE_2_MAX_EDGE: Final = 3840
GPT_IMAGE_2_MAX_PIXELS: Final = 3840 * 2160
#: [EMU] the spec names "pixel limits" without numbers; kept equal to the smallest size the model
#: catalogue allows (providers/openai/models.json: min_side 256) so the adapter and the emulator
#: agree.
GPT_IMAGE_2_MIN_PIXELS: Final = 256 * 256

#: Qualities by family.  [SPEC CreateImageRequest.quality; SDK 3.52.0 adds xhigh/max for 2.5]
OPENAI_QUALITIES: Final[dict[str, tuple[str, ...]]] = {
    "dall-e-2": ("standard", "auto"),
    "dall-e-3": ("standard", "hd", "auto"),
    "gpt-image": ("low", "medium", "high", "auto"),
    "gpt-image-2": ("low", "medium", "high", "auto"),
    "gpt-image-2.5": ("low", "medium", "high", "xhigh", "max", "auto"),
}
#: Longest prompt by family.  [SPEC]
OPENAI_MAX_PROMPT: Final[dict[str, int]] = {
    "dall-e-2": 1000, "dall-e-3": 4000, "gpt-image": 32000, "gpt-image-2": 32000,
    "gpt-image-2.5": 32000,
}
#: Default model when a request names none.  [SPEC defaults]
OPENAI_DEFAULT_MODEL: Final = {"generations": "dall-e-2", "edits": "gpt-image-1.5"}

#: Parameters only GPT image models take, and only DALL-E models take.  [SPEC descriptions]
GPT_ONLY_PARAMS: Final = frozenset(
    {"background", "output_format", "output_compression", "moderation", "partial_images",
     "input_fidelity", "stream"})
DALLE_ONLY_PARAMS: Final = frozenset({"response_format", "style"})

#: Models the emulator lists on GET /v1/models.  [SDK 3.52.0 types/image_model.py]
OPENAI_LISTED_MODELS: Final = (
    "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2", "gpt-image-2-2026-04-21",
    "gpt-image-2.5-sunburst", "gpt-image-2.5-flare", "gpt-image-2.6-sunburst",
    "gpt-image-2.6-flare", "chatgpt-image-latest", "dall-e-3", "dall-e-2",
)


def openai_family(model: str) -> str | None:
    """The behaviour family of an OpenAI image model id, or None for an unknown model (404).

    A pattern, not a list, so new ``gpt-image-*`` ids work.  [SDK 3.52.0 model names]
    """
    if model in ("dall-e-2", "dall-e-3"):
        return model
    if model.startswith(("gpt-image-1", "chatgpt-image")):
        return "gpt-image"
    m = re.match(r"gpt-image-(\d+)(?:\.(\d+))?", model)
    if m:
        major, minor = int(m.group(1)), int(m.group(2) or 0)
        return "gpt-image-2.5" if (major, minor) >= (2, 5) else "gpt-image-2"
    return None


#: Output image tokens per image for GPT image models before gpt-image-2, by quality and size.
#: [DOC OpenAI image generation guide, https://platform.openai.com/docs/guides/image-generation]
GPT_IMAGE_OUTPUT_TOKENS: Final[dict[str, dict[str, int]]] = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
#: gpt-image-2.5 and later at 1024x1024 (derived from fal/LiteLLM per-image prices at $30/M,
#: docs/vendor-facts.md §7); other sizes are scaled by area.  [2ND]
GPT_IMAGE_2_TOKENS_1024: Final[dict[str, int]] = {
    "low": 196, "medium": 439, "high": 1756, "xhigh": 3122, "max": 7024,
}
#: gpt-image-2 itself at 1024x1024: OpenAI's per-image prices (0.006 / 0.053 / 0.211,
#: https://openai.com/api/pricing/) divided by its $30/M image-out rate, so reported and
#: estimated costs agree.  [DERIVED]
GPT_IMAGE_2_0_TOKENS_1024: Final[dict[str, int]] = {"low": 200, "medium": 1767, "high": 7033}
#: Input image tokens charged per input image on an edit.  [EMU] no published figure used.
OPENAI_EDIT_INPUT_IMAGE_TOKENS: Final = 388

#: Error bodies: (HTTP status, error.type, error.code, message).  [2ND docs/vendor-facts.md §1]
OPENAI_ERRORS: Final[dict[str, tuple[int, str, str | None, str]]] = {
    "rate_limit_exceeded": (
        429, "requests", "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-emulator on images per minute "
        "(IPM): Limit 5, Used 5, Requested 1. Please try again in {retry_after}s."),
    "insufficient_quota": (
        429, "insufficient_quota", "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors."),
    "credit_balance_exhausted": (
        429, "insufficient_quota", "credit_balance_exhausted", "You have no credits remaining."),
    "content_policy_violation": (
        400, "invalid_request_error", "content_policy_violation",
        "Your request was rejected as a result of our safety system. Your prompt may contain "
        "text that is not allowed by our safety system."),
    "moderation_blocked": (
        400, "image_generation_user_error", "moderation_blocked",
        "Your request was rejected by the safety system. If you believe this is an error, "
        "contact us at help.openai.com and include the request ID {request_id}. "
        "safety_violations=[{categories}]."),
    "invalid_api_key": (
        401, "invalid_request_error", "invalid_api_key",
        "Incorrect API key provided: {masked_key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."),
    "missing_api_key": (
        401, "invalid_request_error", None,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."),
    "organization_not_verified": (
        403, "invalid_request_error", None,
        "Your organization must be verified to use the model `{model}`. Please go to: "
        "https://platform.openai.com/settings/organization/general and click on Verify "
        "Organization."),
    "model_not_found": (
        404, "invalid_request_error", "model_not_found",
        "The model '{model}' does not exist or you do not have access to it."),
    "server_error": (
        500, "server_error", None,
        "The server had an error while processing your request. Sorry about that!"),
    "overloaded": (
        503, "server_error", None,
        "The engine is currently overloaded, please try again later"),
}
#: Codes the emulator uses for validation failures the doc does not show. [EMU]
OPENAI_MISSING_PARAM_CODE: Final = "missing_required_parameter"
OPENAI_INVALID_TYPE_CODE: Final = "invalid_type"

#: Rate-limit 429s carry Retry-After (integer seconds per the spec); quota 429s carry none.
#: [SPEC components.responses.TooManyRequests; SDK also reads retry-after-ms and HTTP-dates]
OPENAI_DEFAULT_RETRY_AFTER_FORMAT: Final = "seconds"

#: An edge proxy's 502 page: HTML, not JSON.  [2ND]
BAD_GATEWAY_HTML: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n")

#: The body an expired signed blob URL answers with (Azure-style).  [2ND docs/vendor-facts.md §6;
#: EMU body]
EXPIRED_URL_XML: Final = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
    "<Message>Server failed to authenticate the request. Signed expiry time has passed."
    "</Message></Error>")

# ============================================================================ Gemini

#: Pixel sizes per aspect ratio at 1K.  [2ND Google image-generation guide tables]
GEMINI_SIZES_1K: Final[dict[str, tuple[int, int]]] = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184),
    "4:3": (1184, 864), "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344),
    "16:9": (1344, 768), "21:9": (1536, 672),
}
#: Scale factor per imageSize.  [SDK docstring: 1K default, 2K, 4K; 2ND: 512 on newer models]
GEMINI_IMAGE_SIZE_SCALE: Final[dict[str, float]] = {"512": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}

#: Output image tokens per image.  [2ND docs/vendor-facts.md §7: 2.5 flash image 1290 at any size;
#: 3.1 flash image 747/1120/1680/2520; 3 pro image 1120/1120/2000]
GEMINI_IMAGE_TOKENS_25: Final = 1290
GEMINI_IMAGE_TOKENS_3_FLASH: Final[dict[str, int]] = {"512": 747, "1K": 1120, "2K": 1680,
                                                      "4K": 2520}
GEMINI_IMAGE_TOKENS_3_PRO: Final[dict[str, int]] = {"512": 1120, "1K": 1120, "2K": 1120,
                                                    "4K": 2000}


def gemini_image_tokens(model: str, image_size: str) -> int:
    """Image tokens billed for one image of ``model`` at ``image_size`` (1K, 2K, ...)."""
    if not _is_gemini_3(model):
        return GEMINI_IMAGE_TOKENS_25
    table = GEMINI_IMAGE_TOKENS_3_PRO if "pro" in model else GEMINI_IMAGE_TOKENS_3_FLASH
    return table.get(image_size, table["1K"])


def gemini_image_mime(model: str) -> str:
    """2.5 models answer PNG, 3.x models JPEG.  [2ND]"""
    return "image/jpeg" if _is_gemini_3(model) else "image/png"


def gemini_supports_image_size(model: str) -> bool:
    """imageSize is honoured only by 3.x image models; 2.5 always draws 1K.  [2ND]"""
    return _is_gemini_3(model)


def _is_gemini_3(model: str) -> bool:
    return bool(re.search(r"gemini-(?:[3-9]|nano-banana)", model))


#: Top-level request fields the emulator accepts (camelCase or snake_case).  [SDK 3.4.0]
GEMINI_REQUEST_FIELDS: Final = frozenset({
    "contents", "generationConfig", "safetySettings", "systemInstruction", "tools",
    "toolConfig", "cachedContent", "labels", "model",
})

GEMINI_ERROR_STATUS: Final[dict[int, str]] = {  # [DOC api-errors page]
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "RESOURCE_EXHAUSTED",
    403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
GEMINI_MESSAGES: Final[dict[str, str]] = {
    # [2ND docs/vendor-facts.md §4]
    "api_key_invalid": "API key not valid. Please pass a valid API key.",
    "missing_key": "Method doesn't allow unregistered callers (callers without established "
                   "identity). Please use API Key or other form of API consumer identity to "
                   "call this API.",
    "rate_limit": "You exceeded your current quota, please check your plan and billing "
                  "details. For more information on this error, head to: "
                  "https://ai.google.dev/gemini-api/docs/rate-limits. Please retry in "
                  "{retry_after}s.",
    "quota": "You exceeded your current quota, please check your plan and billing details. "
             "For more information on this error, head to: "
             "https://ai.google.dev/gemini-api/docs/rate-limits.",
    "prepaid": "Your prepayment credits are depleted. Please go to AI Studio to manage your "
               "project and billing.",  # [EMU wording] 402 status is [DOC]
    "internal": "An internal error has occurred. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting",
    "unavailable": "The model is overloaded. Please try again later.",
    "deadline": "Deadline expired before operation could complete.",
    "not_found": "models/{model} is not found for API version {version}, or is not supported "
                 "for generateContent.",
}
#: A polite text refusal (finishReason STOP, no image).  [2ND fixtures; EMU wording]
GEMINI_TEXT_REFUSAL: Final = ("I'm unable to create that image. I can't generate content "
                              "that goes against my safety guidelines.")
GEMINI_BAD_GATEWAY_HTML: Final = (
    "<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>Error 502 (Server Error)!!1"
    "</title><p><b>502.</b> <ins>That's an error.</ins><p>The server encountered a temporary "
    "error and could not complete your request.<p>Please try again in 30 seconds. "
    "<ins>That's all we know.</ins></html>\n")  # [2ND Google front-end page; EMU text]

# ============================================================================ Leonardo

#: Spec defaults the SDK sends.  [SPEC; SDK PROBE]
LEONARDO_DEFAULTS: Final = {"width": 1024, "height": 768, "num_images": 4}
LEONARDO_DEFAULT_MODEL: Final = "b24e16ff-06e3-43eb-8d33-4416c2d75876"  # Phoenix [SPEC]
LEONARDO_DIM_RANGE: Final = (32, 1536)  # multiple of 8 [SDK TS 2026]
LEONARDO_MAX_IMAGES: Final = 8          # 4 when width or height > 768 [SPEC]
#: Credits per image at 1024x1024 with Alchemy / without.  [2ND docs/vendor-facts.md §7,
#: Lightning XL]
LEONARDO_CREDITS_PER_MEGAPIXEL: Final = {"alchemy": 10.0, "plain": 3.0}

#: Hasura-style error bodies: status -> (code, message).  Only the 500 body is seen in a
#: capture [2ND]; the other codes are [EMU] choices in the same shape.
LEONARDO_ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: ("validation-failed", "invalid request"),
    401: ("invalid-jwt", "Could not verify JWT: invalid API key"),
    402: ("insufficient-credits", "You do not have enough API credits for this request"),
    403: ("access-denied", "access denied"),
    404: ("not-found", "not found"),
    429: ("rate-limit-exceeded", "Too many requests, please slow down"),
    500: ("unexpected", "internal error"),
    502: ("unexpected", "bad gateway"),
    503: ("unexpected", "service unavailable"),
    504: ("unexpected", "gateway timeout"),
}
#: Moderation: the emulator offers two shapes.  [EMU]
#:  * ``nsfw``: the job COMPLETEs and every ``generated_images[].nsfw`` is true (the documented
#:    flag [SPEC]);
#:  * ``moderated``: the create POST is refused with HTTP 400 and this Hasura body.
LEONARDO_MODERATION_ERROR: Final = (
    400, "content-moderation",
    "Your prompt was flagged by content moderation and cannot be generated.")
