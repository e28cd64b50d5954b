"""Stability AI's Stable Image API (v2beta) on the wire: the multipart form we send, the two
answer shapes we read, and how every error answer maps to an
:class:`~fallback_chain.outcome.Outcome`.

Reference: Stability's API reference, https://platform.stability.ai/docs/api-reference
(tag "Generate": ``POST /v2beta/stable-image/generate/ultra``, ``/core``, ``/sd3``), read from
public copies of it (its OpenAPI document as vendored by tryAGI/StabilityAI, commit 016c91b;
the Core page as copied in gambithunt/imagen); also ``docs/vendor-facts.md``, "Stability AI".

Request: ``multipart/form-data`` (the API refuses anything else: ``400 bad_request
"content-type: must be multipart/form-data"``), ``Authorization: Bearer <key>``, and
``Accept: image/*`` (the image's bytes, with ``finish-reason`` and ``seed`` headers) or
``Accept: application/json`` (``{"image": <base64>, "finish_reason", "seed"}``). Fields:
``prompt`` (1-10,000 characters), ``aspect_ratio`` (``16:9 1:1 21:9 2:3 3:2 4:5 5:4 9:16
9:21``), ``negative_prompt``, ``seed`` (0-4294967294; 0 or absent is random),
``output_format`` (``png`` ``jpeg`` ``webp``), ``style_preset`` (Core), and on ``/sd3`` the
``model`` (``sd3.5-large``, ``sd3.5-large-turbo``, ``sd3.5-medium``...). One image per call.

``finish_reason`` / ``finish-reason``: ``SUCCESS``, or ``CONTENT_FILTERED`` ("successful
generation, but output violated content policy": the image is blurred). Errors are
``{"id", "name", "errors": [...]}``: 400 invalid parameters, 403 ``content_moderation``, 413,
422, 429, 500 (documented); 401 and 402 ``payment_required`` are seen in practice
(``tests/corpus/stability/``).

Outcomes (Stability's ``name`` and words first, the status after; first row that matches):

==================================================  =========================================
answer                                              outcome
==================================================  =========================================
200 with ``finish-reason: CONTENT_FILTERED``        content_policy (stop; the image is blurred)
any 4xx named ``content_moderation`` or whose       content_policy (stop)
words say moderation / flagged content
402, ``payment_required``, "lack sufficient         quota_exhausted
credits"
401, ``unauthorized``; 403 otherwise                auth_error
429                                                 rate_limited (Retry-After when sent,
                                                    else "timed out for N seconds")
404                                                 not_found
400 / 413 / 422                                     invalid_request
5xx                                                 server_error
200 that is HTML, not an image, broken JSON, no     malformed_response
image, an unknown finish reason
==================================================  =========================================
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome, outcome_for_status
from fallback_chain.policy.retry_after import parse_retry_after

if TYPE_CHECKING:
    from fallback_chain.request import ImageRequest

DEFAULT_BASE_URL = "https://api.stability.ai"
API_PREFIX = "/v2beta/stable-image/generate"
DEFAULT_MODEL = "stable-image-core"
#: The documented aspect ratios (all three endpoints).
ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
MAX_SEED = 4_294_967_294
#: The largest answer read: an Ultra image is about 1 MP, a few MB as PNG, 4/3 more as base64.
MAX_ANSWER_BYTES = 32 * 1024 * 1024

#: Model id -> the endpoint that serves it (the sd3 models share ``/sd3`` and name themselves).
ENDPOINTS = {
    "stable-image-ultra": "ultra",
    "stable-image-core": "core",
}
SD3_PREFIXES = ("sd3",)

_MODERATION = re.compile(r"moderat|flagged|content[ _]?(?:policy|filter)|nsfw|inappropriate",
                         re.IGNORECASE)
_QUOTA = re.compile(r"payment[ _]required|(?:lack|insufficient|not enough)\W+(?:\w+\W+){0,2}"
                    r"(?:credit|balance)", re.IGNORECASE)
_HTML = re.compile(r"^\s*<(?:!doctype|html|head|body|\?xml)", re.IGNORECASE)
#: Stability's 429 says how long the key is timed out ("... and have been timed out for 60
#: seconds.", the OpenAPI document's example); used when no Retry-After header came.
_TIMED_OUT = re.compile(r"timed out for (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


def endpoint_for(model: str) -> tuple[str, str | None]:
    """``(endpoint, model field)``: ``("core", None)``, ``("sd3", "sd3.5-large")``..."""
    if model in ENDPOINTS:
        return ENDPOINTS[model], None
    if model.startswith(SD3_PREFIXES):
        return "sd3", model
    return model.rsplit("/", 1)[-1], None  # a future endpoint named by its path


def form_fields(request: ImageRequest, model: str, aspect_ratio: str, *,
                output_format: str, style_preset: str | None = None,
                extra: Mapping[str, Any] | None = None, index: int = 0) -> dict[str, str]:
    """The multipart form of one generation (strings, as a form carries them). ``index``:
    which of the request's ``n`` images this call makes (a given seed is offset by it, so
    the images differ)."""
    fields = {"prompt": request.prompt, "aspect_ratio": aspect_ratio,
              "output_format": output_format}
    _, sd3_model = endpoint_for(model)
    if sd3_model is not None:
        fields["model"] = sd3_model
    if request.negative_prompt:
        fields["negative_prompt"] = request.negative_prompt
    if request.seed is not None:
        fields["seed"] = str((request.seed + index) % (MAX_SEED + 1))
    if style_preset:
        fields["style_preset"] = style_preset
    for key, value in (extra or {}).items():
        if key not in _OWNED:  # vendor fields (cfg_scale...) never replace the request's own
            fields[key] = str(value)
    return fields


_OWNED = frozenset({"prompt", "aspect_ratio", "output_format", "model", "negative_prompt",
                    "seed"})


def ratio_text(ratio: tuple[int, int] | None) -> str:
    """``(16, 9)`` -> ``"16:9"``; ``None`` (auto) -> ``"1:1"``, the API's default."""
    return "1:1" if ratio is None else f"{ratio[0]}:{ratio[1]}"


# ------------------------------------------------------------------------------ answers


@dataclass(frozen=True, slots=True)
class Generated:
    """One successful answer: the image's bytes and what came with them."""

    data: bytes
    finish_reason: str
    seed: int | None
    request_id: str | None


def read_answer(status: int, headers: Mapping[str, str], body: bytes) -> Generated:
    """A 200 answer, raw image (``Accept: image/*``) or JSON (``Accept: application/json``).

    ``CONTENT_FILTERED`` is a refusal (``content_policy``): the bytes are a blurred image."""
    ctype = headers.get("content-type", "").lower()
    request_id = headers.get("x-request-id")
    if ctype.startswith("image/"):
        generated = Generated(body, (headers.get("finish-reason") or "SUCCESS").upper(),
                              _int(headers.get("seed")), request_id)
    elif "json" in ctype:
        generated = _from_json(status, body, request_id)
    else:
        raise _malformed(status, "html_body" if "html" in ctype or _HTML.match(
            body[:200].decode("latin-1")) else "not_an_image",
            f"a {status} whose content-type is {ctype or 'missing'!r}, neither an image nor "
            "JSON")
    if generated.finish_reason == "CONTENT_FILTERED":
        raise ProviderError(
            Outcome.CONTENT_POLICY, "Stability's content filter flagged the output "
            "(finish_reason CONTENT_FILTERED; the image returned is blurred)",
            status_code=status, provider_code="CONTENT_FILTERED",
            details={"categories": ["content_filtered"], "reason": "CONTENT_FILTERED",
                     "seed": generated.seed})
    if generated.finish_reason != "SUCCESS":
        raise _malformed(status, generated.finish_reason[:40],
                         f"unknown finish_reason {generated.finish_reason[:80]!r}")
    return generated


def _from_json(status: int, body: bytes, request_id: str | None) -> Generated:
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        raise _malformed(status, "invalid_json", f"invalid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("image"), str):
        raise _malformed(status, "no_image", "a JSON answer without an image")
    try:
        image = base64.b64decode(data["image"], validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(status, "bad_base64", "the image is not valid base64") from None
    reason = data.get("finish_reason")
    return Generated(image, str(reason or "SUCCESS").upper(), _int(data.get("seed")),
                     request_id)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _malformed(status: int, code: str, text: str) -> ProviderError:
    return ProviderError(Outcome.MALFORMED_RESPONSE, f"Stability answered {text}",
                         status_code=status, provider_code=code)


# ------------------------------------------------------------------------------- errors


def error_body(text: str) -> tuple[str | None, str | None]:
    """``(message, name)`` of ``{"id", "name", "errors": [...]}`` (or plain text)."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        name = data.get("name") if isinstance(data.get("name"), str) else None
        errors = data.get("errors")
        if isinstance(errors, list):
            message = "; ".join(str(e) for e in errors if e) or None
        else:
            message = next((data[k] for k in ("message", "error", "detail")
                            if isinstance(data.get(k), str)), None)
        return message, name
    stripped = text.strip()
    if not stripped or _HTML.match(stripped):
        return None, None
    return stripped[:300], None


def error_from_answer(status: int, headers: Mapping[str, str], text: str,
                      what: str) -> ProviderError:
    """Map a non-2xx Stability answer (see the table in the module docstring)."""
    message, name = error_body(text)
    shown = message or (f"HTML error page ({len(text)} bytes)" if _HTML.match(text or "")
                        else "no body")
    full = f"{what}: HTTP {status}" + (f" {name}" if name else "") + f": {shown}"
    haystack = f"{name or ''} {message or ''}"
    retry_after = parse_retry_after(headers) if status in (429, 503) else None
    if status == 429 and retry_after is None and (hint := _TIMED_OUT.search(message or "")):
        retry_after = float(hint.group(1))
    if 400 <= status < 500 and (name == "content_moderation" or _MODERATION.search(haystack)):
        return ProviderError(Outcome.CONTENT_POLICY, full, status_code=status,
                             provider_code=name or "content_moderation",
                             details={"categories": ["moderation"], "reason": shown})
    if 400 <= status < 500 and (status == 402 or _QUOTA.search(haystack)):
        outcome = Outcome.QUOTA_EXHAUSTED
    elif status in (400, 413, 422):
        outcome = Outcome.INVALID_REQUEST
    else:
        outcome = outcome_for_status(status)
        if status < 400:
            outcome = Outcome.MALFORMED_RESPONSE
    return ProviderError(outcome, full, status_code=status, provider_code=name,
                         retry_after_s=retry_after)
