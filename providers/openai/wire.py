"""The OpenAI Images API on the wire: request parameters per model dialect, and the mapping of
every way the API (or the SDK on its behalf) can answer to a ``ProviderReply``'s parts or a
``ProviderError``.

Nothing here imports the ``openai`` SDK at module level: ``error_from_exception`` imports it
when it runs (the adapter has already loaded it by then), so ``import providers`` stays light.

Outcome mapping. **The vendor's own code and words decide first; the HTTP status only when
they say nothing** (rows are tried top to bottom; the first that matches wins). OpenAI sends
the same code under different statuses (``billing_hard_limit_reached`` as 400 and as 429), and
some refusals carry no code at all, only their words. Precedence, with public examples in
``tests/corpus/openai/``:

===  ==============================================================  ======================
 #   vendor answer                                                   outcome
===  ==============================================================  ======================
 1   ``code``/``type`` ``content_policy_violation``,                 content_policy (stop;
     ``moderation_blocked``, ``image_content_policy_violation``      + categories)
 2   ``code``/``type`` ``insufficient_quota``,                       quota_exhausted (long
     ``credit_balance_exhausted``, ``billing_hard_limit_reached``    cooldown; no
     (any status: the billing limit arrives as **400**)              Retry-After)
 3   ``code`` ``model_not_found``                                    not_found
 4   message of a 4xx says the safety system / content filters       content_policy
     refused ("rejected as a result of our safety system",
     "blocked by our content filters"), no code needed
 5   message says the quota is gone ("exceeded your current          quota_exhausted
     quota", "billing hard limit") or a rate limit is
     ``Limit: 0/…`` (never passes by waiting)
 6   ``param`` ``prompt`` with ``missing_required_parameter`` /      invalid_request,
     "Missing required parameter: 'prompt'"                          **request fault** (stop)
 7   429 (any other)                                                 rate_limited; cooldown
                                                                     = Retry-After, else
                                                                     "try again in 12s" /
                                                                     "try again after 51.84
                                                                     seconds", else default
 8   401, 403 (incl. ``unsupported_country_region_territory``,       auth_error
     unverified organisation)
 9   402                                                             quota_exhausted
10   404 (e.g. a base_url without ``/v1``), 410                      not_found
11   408                                                             timeout
12   other 4xx (``invalid_value``, ``unknown_parameter``, sizes …)   invalid_request
                                                                     (advance: another
                                                                     vendor may take it)
13   ≥ 500, including a 502 HTML page from the edge                  server_error
--   ``APITimeoutError``, httpx2 ``*Timeout``, ``TimeoutError``      timeout
--   ``APIConnectionError``, httpx2 transport errors, OSError        connection_error
--   200 that is HTML (SDK returns ``str``), truncated JSON,         malformed_response
     invalid base64, not an image, fewer images than ``n``,
     pydantic ``ValidationError``, ``APIResponseValidationError``
===  ==============================================================  ======================

The error's message is always the vendor's own ``message`` (plus the request id).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.image_limits import ImageLimits
from fallback_chain.imaging import InvalidImageError
from fallback_chain.outcome import Outcome, outcome_for_status
from fallback_chain.policy.retry_after import parse_duration, parse_retry_after
from fallback_chain.results import GeneratedImage
from fallback_chain.verify import verified_image

# ------------------------------------------------------------------------------- dialects


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one model family speaks the Images API. Capabilities (sizes, ``max_n``, prompt
    length, whether the prompt is rewritten) come from ``openai/models.json``; this is only
    the wire shape, keyed by the catalogue's family name.

    ``gpt_image``: sends ``output_format``/``background``, answers base64 with ``usage``, and
    rejects ``response_format`` (400 ``unknown_parameter``). ``response_format``: the family
    takes ``response_format`` (DALL-E). ``edit_square_png``: edit inputs must be one square PNG
    under 4 MB (DALL-E 2). ``max_edit_images``: images one edit call accepts.
    """

    gpt_image: bool
    response_format: bool
    edit_square_png: bool
    max_edit_images: int


GPT_IMAGE = Dialect(gpt_image=True, response_format=False, edit_square_png=False,
                    max_edit_images=16)
DIALECTS: Mapping[str, Dialect] = {
    "dall-e-2": Dialect(gpt_image=False, response_format=True, edit_square_png=True,
                        max_edit_images=1),
    "dall-e-3": Dialect(gpt_image=False, response_format=True, edit_square_png=False,
                        max_edit_images=0),
    "gpt-image-1": GPT_IMAGE,
    "gpt-image-2": GPT_IMAGE,
}


def dialect_for(family: str) -> Dialect:
    """The dialect of a catalogue family; unknown families are new GPT Image models."""
    return DIALECTS.get(family, GPT_IMAGE)


#: Mask and DALL-E 2 input limit.  [SPEC CreateImageEditRequest]
MAX_MASK_BYTES = 4 * 1024 * 1024

# ------------------------------------------------------------------------------- responses

QUOTA_CODES = frozenset({"insufficient_quota", "credit_balance_exhausted",
                         "billing_hard_limit_reached"})
POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked",
                          "image_content_policy_violation"})
NOT_FOUND_CODES = frozenset({"model_not_found"})

#: "try again in 12s" / "in 1m30s" / "in 250ms" / "try again after 51.84 seconds".
_TRY_AGAIN = re.compile(
    r"try again (?:in|after)\s+((?:\d+(?:\.\d+)?\s*(?:ms|milliseconds?|s|secs?|seconds?|m|mins?|"
    r"minutes?|h|hours?)(?![a-z])\s*)+)", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|"
                            r"minutes?|h|hours?)(?![a-z])", re.IGNORECASE)
_UNIT = {"ms": "ms", "millisecond": "ms", "milliseconds": "ms", "s": "s", "sec": "s",
         "secs": "s", "second": "s", "seconds": "s", "m": "m", "min": "m", "mins": "m",
         "minute": "m", "minutes": "m", "h": "h", "hour": "h", "hours": "h"}
#: Refusals that carry only words, no code.
_SAFETY_WORDS = re.compile(
    r"(?:rejected|blocked) (?:as a result of|by) (?:our|the) safety system|"
    r"not allowed by our safety system|blocked by our content filters|"
    r"violates? (?:our )?content polic", re.IGNORECASE)
_QUOTA_WORDS = re.compile(r"exceeded your current quota|billing hard limit", re.IGNORECASE)
_ZERO_LIMIT = re.compile(r"\blimit:\s*0\s*/", re.IGNORECASE)
_MISSING_PROMPT = re.compile(r"missing required parameter:?\s*'?prompt'?", re.IGNORECASE)
_SAFETY = re.compile(r"safety_violations=\[([^\]]*)\]")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def decode_b64(text: str, index: int) -> bytes:
    """Strict base64 (``validate=True``): a corrupt payload is malformed, never silently cut."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"image {index} has invalid base64 ({exc})", status_code=200
                            ) from None


def retry_after_from_message(message: str) -> float | None:
    """``"Please try again in 12s"`` / ``"in 1m30s"`` / ``"in 250ms"`` → seconds (a fallback for
    429s that carry no Retry-After header)."""
    m = _TRY_AGAIN.search(message)
    if not m:
        return None
    total = 0.0
    for number, unit in _DURATION_PART.findall(m[1]):
        total += parse_duration(number + _UNIT[unit.lower()]) or 0.0
    return total


def _categories(error: Mapping[str, Any], message: str) -> tuple[list[str], str | None]:
    details = error.get("moderation_details")
    if isinstance(details, Mapping):
        cats = details.get("categories")
        stage = details.get("moderation_stage")
        return ([str(c) for c in cats] if isinstance(cats, list) else [],
                str(stage) if stage is not None else None)
    m = _SAFETY.search(message)
    if m:
        return [c.strip().strip("'\"") for c in m[1].split(",") if c.strip()], None
    return [], None


def _text_of(body: object) -> str:
    """A short, readable version of a non-JSON error body (an HTML page from a proxy)."""
    text = body if isinstance(body, str) else repr(body)
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    text = title[1] if title else _TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()[:200]


def error_from_status(status: int, body: object, headers: Mapping[str, str],
                      request_id: str | None = None) -> ProviderError:
    """One non-2xx answer → ``ProviderError``. ``body`` is what ``APIStatusError.body`` holds:
    the INNER ``error`` object for JSON errors (openai-python 3.x; docs/vendor-facts.md §1), the
    raw text otherwise."""
    error: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    code = error.get("code")
    code = str(code) if code is not None else None
    type_ = error.get("type")
    type_ = str(type_) if type_ is not None else None
    message = str(error.get("message") or "") if error else ""
    if not message:
        message = (f"HTTP {status} with a non-JSON body: {_text_of(body)!r}"
                   if body not in (None, "") else f"HTTP {status} with an empty body")
    retry_after = parse_retry_after(headers)
    details: dict[str, Any] = {}
    if request_id:
        details["request_id"] = request_id
    codes = {c for c in (code, type_) if c}
    client_error = 400 <= status < 500
    request_fault = False
    if codes & POLICY_CODES or (client_error and _SAFETY_WORDS.search(message)):
        outcome = Outcome.CONTENT_POLICY
        categories, stage = _categories(error, message)
        details.update(categories=categories, moderation_stage=stage)
    elif codes & QUOTA_CODES or (client_error and (
            _QUOTA_WORDS.search(message) or _ZERO_LIMIT.search(message))):
        outcome = Outcome.QUOTA_EXHAUSTED
        retry_after = None  # out of money (or a limit of 0): waiting does not help
        # (docs/vendor-facts.md §2)
    elif code in NOT_FOUND_CODES:
        outcome = Outcome.NOT_FOUND
    elif client_error and status not in (401, 403, 429) and (
            (error.get("param") == "prompt" and code == "missing_required_parameter")
            or _MISSING_PROMPT.search(message)):
        outcome = Outcome.INVALID_REQUEST
        request_fault = True  # no vendor draws without a prompt
    elif status == 429:
        outcome = Outcome.RATE_LIMITED
        if retry_after is None:
            retry_after = retry_after_from_message(message)
    else:
        outcome = outcome_for_status(status)
    suffix = f" (request {request_id})" if request_id else ""
    return ProviderError(outcome, message + suffix, status_code=status,
                         provider_code=code or type_, retry_after_s=retry_after,
                         details=details, request_fault=request_fault)


def _transport_error(exc: BaseException) -> ProviderError | None:
    """Raw httpx/httpx2 transport exceptions, by class name (the SDK normally wraps them)."""
    name = type(exc).__name__
    module = type(exc).__module__.split(".")[0]
    if module not in ("httpx", "httpx2", "httpcore"):
        return None
    if "Timeout" in name:
        return ProviderError(Outcome.TIMEOUT, f"no answer in time ({name})")
    return ProviderError(Outcome.CONNECTION_ERROR, f"connection failed: {name}: {exc}")


def error_from_exception(exc: BaseException) -> ProviderError:
    """Whatever the SDK call raised → ``ProviderError`` (never lets a vendor exception out)."""
    import openai
    import pydantic

    from ..answer_cap import found_in

    if isinstance(exc, ProviderError):
        return exc
    capped = found_in(exc)
    if capped is not None:  # the answer cap or the redirect check (``..answer_cap``)
        return ProviderError(Outcome.MALFORMED_RESPONSE, str(capped), status_code=capped.status)
    if isinstance(exc, openai.APIStatusError):
        return error_from_status(exc.status_code, exc.body, exc.response.headers,
                                 exc.request_id)
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(Outcome.TIMEOUT, "no answer in time (the request timed out)")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        why = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
        return ProviderError(Outcome.CONNECTION_ERROR, f"connection failed: {why}")
    if isinstance(exc, openai.APIResponseValidationError):
        return ProviderError(Outcome.MALFORMED_RESPONSE,
                             f"200 that does not match the Images API schema: {exc}",
                             status_code=exc.status_code)
    if isinstance(exc, json.JSONDecodeError):
        return ProviderError(Outcome.MALFORMED_RESPONSE,
                             f"200 whose body is not valid JSON (truncated?): {exc}",
                             status_code=200)
    if isinstance(exc, pydantic.ValidationError):
        return ProviderError(Outcome.MALFORMED_RESPONSE,
                             f"200 that does not match the Images API schema: {exc}",
                             status_code=200)
    if isinstance(exc, TimeoutError):
        return ProviderError(Outcome.TIMEOUT, "no answer in time")
    mapped = _transport_error(exc)
    if mapped is not None:
        return mapped
    if isinstance(exc, OSError):
        return ProviderError(Outcome.CONNECTION_ERROR, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
        return ProviderError(Outcome.SERVER_ERROR, f"API error: {exc.message}")
    return ProviderError(Outcome.MALFORMED_RESPONSE,
                         f"unexpected {type(exc).__name__} while reading the answer: {exc}")


def describe_non_json(value: object) -> str:
    """Message for a 200 the SDK could not parse as JSON (it hands back the raw text)."""
    snippet = _text_of(value)
    return f"200 whose body is not JSON (an HTML page?): {snippet!r}"


async def read_images(data: object, n: int, limits: ImageLimits | None = None
                ) -> tuple[list[GeneratedImage | None], list[tuple[int, str]], str | None]:
    """The ``data`` list of a 200: verified images from ``b64_json`` (``None`` in the slots of
    ``url`` items, which are returned with their index for download) and the first
    ``revised_prompt``. Fewer than ``n`` items, or an item without either, is malformed. Items
    beyond the first ``n`` are neither decoded nor downloaded (the caller records the
    surplus). An image declaring a size beyond ``limits`` (what the model makes) is malformed,
    refused from its header."""
    if not isinstance(data, list) or len(data) < n:
        got = len(data) if isinstance(data, list) else 0
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"asked for {n} image(s), the answer has {got}", status_code=200)
    slots: list[GeneratedImage | None] = []
    urls: list[tuple[int, str]] = []
    revised: str | None = None
    for i, item in enumerate(data[:n]):
        text = getattr(item, "revised_prompt", None)
        revised = revised or (text if isinstance(text, str) else None)
        b64 = getattr(item, "b64_json", None)
        url = getattr(item, "url", None)
        if isinstance(b64, str) and b64:
            try:
                slots.append(await verified_image(decode_b64(b64, i), limits))
            except InvalidImageError as exc:
                raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                    f"image {i} is not a valid image: {exc}",
                                    status_code=200) from None
        elif isinstance(url, str) and url:
            urls.append((i, url))
            slots.append(None)
        else:
            raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                f"image {i} has neither b64_json nor url", status_code=200)
    return slots, urls, revised


def usage_dict(usage: object) -> dict[str, Any] | None:
    """The ``usage`` object as a plain dict (``None`` when absent or not an object)."""
    from pydantic import BaseModel

    if isinstance(usage, BaseModel):
        return usage.model_dump(exclude_none=True, warnings=False)
    if isinstance(usage, Mapping):
        return dict(usage)
    return None


def check_base_url(base_url: str | None) -> str | None:
    """``base_url`` if it is an http(s) URL with a path (the API root includes ``/v1``)."""
    if base_url is None:
        return None
    from ..base import refuse_credentials_in_url

    refuse_credentials_in_url(base_url, "openai")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"openai: base_url {base_url!r} is not an http(s) URL")
    if not parts.path.strip("/"):
        raise ConfigurationError(
            f"openai: base_url {base_url!r} has no path; it must include the API version, "
            f"e.g. {base_url.rstrip('/')}/v1")
    return base_url
