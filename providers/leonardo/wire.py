"""Leonardo REST v1 on the wire: the request body we send, the answers we read, and how every
error answer maps to an :class:`~fallback_chain.outcome.Outcome`.

Kept apart from :mod:`.adapter` (which drives submit → poll → download) so the one
place that knows Leonardo's field names and error shapes is small and testable on its own.
Reference: Leonardo's API reference, https://docs.leonardo.ai/reference, and its "API Error
Messages" page, https://docs.leonardo.ai/docs/api-error-messages; ``docs/vendor-facts.md`` §5
(Leonardo's REST API: fields, job polling, errors) and §6 (proxy pages, expired image URLs).

Request body (``POST /api/rest/v1/generations``), camelCase and snake_case mixed as the API
wants them. We always send explicit values rather than relying on server defaults, because the
official SDKs (leonardo-ai-sdk 7.0.0) always send the spec defaults and a raw-HTTP client that
omits them gets different server-side defaults (e.g. 4 images):

=================  ===============================================================
``prompt``         the request's prompt
``modelId``        the provider's model id (spec default: Phoenix ``b24e16ff-…``)
``width/height``   ``capabilities.size_for(request)``: multiples of 8 in 32–1536
``num_images``     ``request.n`` (1–8; 1–4 above 768 px, checked before sending)
``alchemy``        ``True`` by default, as the SDKs send it and as the price catalogue
                   prices v1 models ("+ Alchemy"); constructor option
``presetStyle``    ``"DYNAMIC"`` by default (the spec default); constructor option,
                   ``None`` leaves it out
``public``         ``False``: API output is not published to the community feed
``negative_prompt``, ``seed``  only when the request sets them
=================  ===============================================================

Error answers. **Leonardo's own words and code decide first; the HTTP status only when they
say nothing** (first matching row wins). Leonardo sends a moderation refusal as 400 or 403 and
a bad key as 401 or as a 500 "Invalid response from authorization hook", so the status alone
misleads. Precedence, with public examples in ``tests/corpus/leonardo/``:

===  ===========================================================  ===========================
 #   answer                                                       outcome
===  ===========================================================  ===========================
 1   any 4xx whose code/message names moderation, NSFW, content   content_policy (stop)
     filter/policy, inappropriate or prohibited content (e.g.
     403 "Your prompt appears to contain inappropriate content")
 2   "Invalid response from authorization hook" (any status,      auth_error (long cooldown,
     Leonardo documents it as a bad key; it comes as 500),        not retried)
     "Authentication hook unauthorized this request"
 3   402, a credits code (``insufficient-credits``…) or words     quota_exhausted
     "not enough / insufficient / out of … credits|tokens"
 4   "… is not supported within the Production API"               not_found (this model never
                                                                  runs on this key)
 5   validation "expecting a value for non-nullable variable:     invalid_request, **request
     prompt"                                                      fault** (stop)
 6   429                                                          rate_limited (+ Retry-After)
 7   401, 403                                                     auth_error
 8   other 400, 409, 413, 422 (dimensions, unknown variables…)    invalid_request (advance)
 9   404 not_found, 408 timeout, ≥ 500 server_error
--   job ``FAILED`` (poll)                                        server_error (retry once)
--   job ``COMPLETE`` with every image ``nsfw: true``             content_policy (stop)
===  ===========================================================  ===========================
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome, outcome_for_status
from fallback_chain.policy.retry_after import parse_retry_after

if TYPE_CHECKING:
    import httpx

    from fallback_chain.request import ImageRequest

#: The OpenAPI spec's default ``modelId`` (Leonardo Phoenix), also the SDKs' default.
DEFAULT_MODEL_ID = "b24e16ff-06e3-43eb-8d33-4416c2d75876"
DEFAULT_BASE_URL = "https://cloud.leonardo.ai"
API_PREFIX = "/api/rest/v1"
#: The most of an API answer we read: job answers are a few KB (a job's JSON lists its images).
MAX_API_BYTES = 8 * 1024 * 1024
#: Leonardo's documented limits (spec / TS SDK 2026): images per job, and the 768 px rule.
MAX_IMAGES = 8
MAX_IMAGES_LARGE = 4
LARGE_SIDE = 768

_QUOTA = re.compile(
    r"((?:not|n't)\s+(?:have\s+)?enough|insufficient|out\s+of|exceed(?:s|ed)?)\W+"
    r"(?:\w+\W+){0,3}(credit|token|balance)", re.IGNORECASE)
_QUOTA_CODES = frozenset({"insufficient-credits", "insufficient_credits", "not-enough-credits",
                          "payment-required", "insufficient-balance"})
_MODERATION = re.compile(
    r"moderat|nsfw|not safe for work|content (?:policy|filter)|inappropriate|"
    r"prohibited content", re.IGNORECASE)
_HTML = re.compile(r"^\s*<(?:!doctype|html|head|body|\?xml)", re.IGNORECASE)
#: Leonardo's gateway (Hasura) answers these when the key is missing, wrong or badly sent;
#: "Invalid response from authorization hook" comes with HTTP 500 (Leonardo's "API Error
#: Messages" page: https://docs.leonardo.ai/docs/api-error-messages).
_AUTH_HOOK = re.compile(r"invalid response from authori[sz]ation hook|"
                        r"authentication hook unauthori[sz]ed", re.IGNORECASE)
_NOT_IN_API = re.compile(r"not supported within the production api", re.IGNORECASE)
_MISSING_PROMPT = re.compile(r"non-nullable variable:?\s*\W*prompt\b", re.IGNORECASE)


def max_images_for(width: int, height: int) -> int:
    """How many images one Leonardo job may produce at ``width`` x ``height``."""
    return MAX_IMAGES_LARGE if max(width, height) > LARGE_SIDE else MAX_IMAGES


def generation_body(request: ImageRequest, model_id: str, size: tuple[int, int], *,
                    alchemy: bool, preset_style: str | None,
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of ``POST /generations`` for ``request`` (see the module docstring)."""
    width, height = size
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "modelId": model_id,
        "width": width,
        "height": height,
        "num_images": request.n,
        "alchemy": alchemy,
        "public": False,
    }
    if preset_style is not None:
        body["presetStyle"] = preset_style
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if request.seed is not None:
        body["seed"] = request.seed
    if extra:
        # caller-supplied vendor fields (guidance_scale, contrast, ...) never override the
        # fields that carry the request itself
        body.update({k: v for k, v in extra.items() if k not in _OWNED})
    return body


_OWNED = frozenset({"prompt", "modelId", "width", "height", "num_images", "negative_prompt",
                    "seed"})


# ------------------------------------------------------------------------------ answers


@dataclass(frozen=True, slots=True)
class Submission:
    """What ``POST /generations`` answered: the job id and what it costs."""

    generation_id: str
    job: dict[str, Any]  # the raw ``sdGenerationJob`` (apiCreditCost, cost)


@dataclass(frozen=True, slots=True)
class GeneratedImageRef:
    url: str
    nsfw: bool
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    """One ``generations_by_pk`` object, reduced to what we use."""

    id: str
    status: str  # PENDING | COMPLETE | FAILED (anything else is passed through)
    images: tuple[GeneratedImageRef, ...] = ()
    model_id: str | None = None
    prompt: str | None = None
    seed: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def read_json(response: httpx.Response, what: str) -> Any:
    """The JSON body of a 2xx answer; an HTML page or broken JSON is ``malformed_response``
    (a 200 can be a proxy's HTML page or a truncated body: docs/vendor-facts.md §3, §6)."""
    text = response.text
    ctype = response.headers.get("content-type", "").lower()
    if "html" in ctype or _HTML.match(text):
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"{what}: HTTP {response.status_code} with an HTML page instead of "
                            "JSON", status_code=response.status_code, provider_code="html_body")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"{what}: invalid JSON ({exc.__class__.__name__}: {exc})",
                            status_code=response.status_code,
                            provider_code="invalid_json") from None


def parse_submission(data: Any) -> Submission:
    """``{"sdGenerationJob": {"generationId", "apiCreditCost", "cost"}}`` (v1); the v2 shape
    ``{"generate": {...}}`` is accepted too."""
    job = None
    if isinstance(data, dict):
        job = data.get("sdGenerationJob") or data.get("generate")
    gid = job.get("generationId") if isinstance(job, dict) else None
    if not isinstance(job, dict) or not isinstance(gid, str) or not _ID.match(gid):
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"generation submitted but the answer has no usable generationId: "
                            f"{_short(data)}", status_code=200, provider_code="no_generation_id")
    return Submission(gid, dict(job))


_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


def parse_generation(data: Any) -> Generation | None:
    """A ``GET /generations/{id}`` answer; ``None`` when ``generations_by_pk`` is ``null``
    (Hasura's answer for an id it does not know)."""
    if not isinstance(data, dict) or "generations_by_pk" not in data:
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"poll answer has no generations_by_pk: {_short(data)}",
                            status_code=200, provider_code="bad_generation")
    gen = data["generations_by_pk"]
    if gen is None:
        return None
    if not isinstance(gen, dict) or not isinstance(gen.get("status"), str):
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"poll answer has no generation status: {_short(gen)}",
                            status_code=200, provider_code="bad_generation")
    images = []
    raw_images = gen.get("generated_images") or []
    if not isinstance(raw_images, list):
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            "generated_images is not a list", status_code=200,
                            provider_code="bad_generation")
    for item in raw_images:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                f"a generated image has no url: {_short(item)}",
                                status_code=200, provider_code="bad_generation")
        nsfw = item.get("nsfw")
        if nsfw is not None and not isinstance(nsfw, bool):  # "false" would read as true
            raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                f"a generated image has an nsfw flag that is not a boolean: "
                                f"{_short(nsfw)}", status_code=200,
                                provider_code="bad_generation")
        image_id = item.get("id")
        images.append(GeneratedImageRef(item["url"], nsfw is True,
                                        image_id if isinstance(image_id, str) else None))
    seed = gen.get("seed")
    model_id = gen.get("modelId")
    prompt = gen.get("prompt")
    return Generation(
        id=str(gen.get("id") or ""), status=gen["status"].upper(), images=tuple(images),
        model_id=model_id if isinstance(model_id, str) else None,
        prompt=prompt if isinstance(prompt, str) else None,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None, raw=gen)


# ------------------------------------------------------------------------------- errors


def error_body(text: str) -> tuple[str | None, str | None]:
    """``(message, code)`` from a Leonardo error body: Hasura REST ``{"error", "path",
    "code"}``, the GraphQL shape ``{"extensions": {"code", "details": {"message"}}}`` (seen
    from v2, sometimes wrapped in a list), or plain text."""
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        data = None
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict):
        message = data.get("error") if isinstance(data.get("error"), str) else None
        if message is None and isinstance(data.get("message"), str):
            message = data["message"]
        code = data.get("code") if isinstance(data.get("code"), str) else None
        ext = data.get("extensions")
        if isinstance(ext, dict):
            code = code or (ext.get("code") if isinstance(ext.get("code"), str) else None)
            details = ext.get("details")
            if message is None and isinstance(details, dict) and isinstance(
                    details.get("message"), str):
                message = details["message"]
        if isinstance(data.get("error"), dict):  # {"error": {"message", "code"}} variants
            inner = data["error"]
            message = message or (inner.get("message") if isinstance(
                inner.get("message"), str) else None)
            code = code or (inner.get("code") if isinstance(inner.get("code"), str) else None)
        return message, code
    stripped = text.strip()
    if not stripped or _HTML.match(stripped):
        return None, None
    return stripped[:300], None


def error_from_response(response: httpx.Response, what: str) -> ProviderError:
    """Map a non-2xx Leonardo answer to a ``ProviderError``: Leonardo's own words and code
    first, the HTTP status only after (see the precedence table in the module docstring)."""
    status = response.status_code
    message, code = error_body(response.text)
    html = _HTML.match(response.text or "") is not None
    text = message or (f"HTML error page ({len(response.text)} bytes)" if html else "no body")
    full = f"{what}: HTTP {status}" + (f" {code}" if code else "") + f": {text}"
    retry_after = parse_retry_after(response.headers) if status in (429, 503) else None
    haystack = f"{code or ''} {message or ''}"
    request_fault = False
    if 400 <= status < 500 and _MODERATION.search(haystack):
        # Leonardo sends moderation refusals as 400 *and* as 403: the words decide
        return ProviderError(Outcome.CONTENT_POLICY, full, status_code=status,
                             provider_code=code or "moderation",
                             details={"categories": ["moderation"], "reason": text})
    if _AUTH_HOOK.search(haystack):
        outcome = Outcome.AUTH_ERROR  # a bad or badly sent key, even when the status is 500
    elif 400 <= status < 500 and (status == 402 or (code or "").lower() in _QUOTA_CODES
                                  or _QUOTA.search(haystack)):
        outcome = Outcome.QUOTA_EXHAUSTED
    elif 400 <= status < 500 and _NOT_IN_API.search(haystack):
        outcome = Outcome.NOT_FOUND  # this model never runs on this key
    elif status in (400, 409, 413, 422) and _MISSING_PROMPT.search(haystack):
        outcome = Outcome.INVALID_REQUEST
        request_fault = True  # no vendor draws without a prompt
    elif status == 429:
        outcome = Outcome.RATE_LIMITED
    elif status in (401, 403):
        outcome = Outcome.AUTH_ERROR
    elif status in (400, 409, 413, 422):
        outcome = Outcome.INVALID_REQUEST
    else:
        outcome = outcome_for_status(status)
        if 200 <= status < 400:  # a 1xx/3xx where JSON was expected
            outcome = Outcome.MALFORMED_RESPONSE
    return ProviderError(outcome, full, status_code=status, provider_code=code,
                         retry_after_s=retry_after, request_fault=request_fault)


def transport_error(exc: BaseException, what: str) -> ProviderError:
    """Map an exception raised by httpx (or the OS) while talking to Leonardo."""
    import httpx

    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(Outcome.TIMEOUT, f"{what}: no answer in time ({name})")
    if isinstance(exc, httpx.DecodingError):
        return ProviderError(Outcome.MALFORMED_RESPONSE, f"{what}: undecodable body ({name})")
    if isinstance(exc, httpx.TransportError | httpx.HTTPError | OSError):
        return ProviderError(Outcome.CONNECTION_ERROR, f"{what}: {name}: {exc}")
    return ProviderError(Outcome.MALFORMED_RESPONSE, f"{what}: {name}: {exc}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
