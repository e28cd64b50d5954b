"""Gemini answers and errors mapped to the core's types (used by
:mod:`fallback_chain.providers.gemini.adapter`).

Pure functions over what google-genai hands back; the SDK itself is imported only inside the
functions that need its exception classes, so importing this module stays light.

**Errors: Google's own codes and words decide first, the HTTP status only after** (first
matching row wins); google-genai raises one ``ClientError`` for every 4xx, so the exception
class says nothing. Precedence, with public examples in ``tests/corpus/gemini/``:

===  ===========================================================  ===========================
 #   answer (``error.status``, ``details``, ``message``)          outcome
===  ===========================================================  ===========================
 1   ``ErrorInfo.reason`` ``API_KEY_INVALID`` (sent as 400)       auth_error
 2   ``FAILED_PRECONDITION`` (billing off, "User location is      auth_error (the account,
     not supported for the API use")                              not the request)
 3   429 with a ``QuotaFailure`` whose ``quotaId`` is per day     quota_exhausted (long
     or whose ``quotaValue`` is 0; or "limit: 0" in the           cooldown: waiting a minute
     message; or only a ``Help`` link (no ``QuotaFailure``, no    does not help)
     ``RetryInfo``: a daily or plan cap)
 4   429 otherwise (``RESOURCE_EXHAUSTED``)                       rate_limited; cooldown =
                                                                  ``RetryInfo.retryDelay``,
                                                                  else Retry-After, else
                                                                  "Please retry in 22.9s"
 5   "contents is not specified" (400)                            invalid_request, **request
                                                                  fault** (stop)
 6   499 (cancelled)                                              connection_error
 7   401/403 auth_error (leaked or suspended keys), 402 quota_exhausted, 404 not_found,
     408 timeout, ≥ 500 server_error (``UNAVAILABLE`` "The model is overloaded"), other 4xx
     invalid_request (unknown fields, modalities a model lacks: advance)
===  ===========================================================  ===========================

**Answers (HTTP 200)** are read from the raw JSON body, not from google-genai's typed object:
google-genai 3.x's converter drops ``candidates[].finishMessage`` (Google's own reason, with
its support code), so the adapter asks the SDK for the raw response
(``should_return_http_response``) and this module reads ``promptFeedback.blockReason`` /
``blockReasonMessage`` (content_policy, stop), a safety ``finishReason`` (``SAFETY``,
``IMAGE_SAFETY``, ``PROHIBITED_CONTENT``, ``IMAGE_PROHIBITED_CONTENT``, ``BLOCKLIST``, ``SPII``,
``RECITATION``…: content_policy, stop) and otherwise a 200 without an image (``NO_IMAGE``,
``IMAGE_OTHER``, ``STOP`` with text only: malformed_response, retry once), always keeping
``finishMessage`` and the model's text in the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fallback_chain.errors import ProviderError
from fallback_chain.image_limits import ImageLimits
from fallback_chain.imaging import InvalidImageError
from fallback_chain.outcome import Outcome, outcome_for_status
from fallback_chain.policy.retry_after import parse_duration, parse_retry_after
from fallback_chain.results import GeneratedImage
from fallback_chain.verify import verified_images

log = logging.getLogger("fallback_chain")

#: ``finishReason`` values that mean the model refused on content grounds (-> content_policy).
SAFETY_FINISH = frozenset({
    "SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST",
    "SPII", "RECITATION", "IMAGE_RECITATION", "MODEL_ARMOR", "JAILBREAK",
})
#: Other ``finishReason`` values with an outcome of their own; anything else without an image
#: (``NO_IMAGE``, ``STOP``, ``IMAGE_OTHER``, ``MAX_TOKENS``, ``OTHER``…) is malformed_response.
FINISH_OUTCOME = {"LANGUAGE": Outcome.INVALID_REQUEST}

#: When parallel calls fail differently, the attempt reports the most telling failure: the one
#: earliest in this list (a refusal decides for the whole request; a server that said why beats
#: one that said nothing).
_RANK = (Outcome.CONTENT_POLICY, Outcome.AUTH_ERROR, Outcome.NOT_FOUND, Outcome.QUOTA_EXHAUSTED,
         Outcome.INVALID_REQUEST, Outcome.RATE_LIMITED, Outcome.SERVER_ERROR,
         Outcome.MALFORMED_RESPONSE, Outcome.CONNECTION_ERROR, Outcome.TIMEOUT)
_CODE = re.compile(r"^[A-Z][A-Z0-9_]+$")
_ZERO_LIMIT = re.compile(r"\blimit:\s*0\b")
_RETRY_IN = re.compile(r"retry in\s+(\d+(?:\.\d+)?(?:ms|s|m|h))", re.IGNORECASE)
_URLSAFE = str.maketrans("-_", "+/")
_NO_CONTENTS = re.compile(r"contents is not specified", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")


@dataclass(slots=True)
class CallResult:
    """One successful ``generateContent`` call."""

    images: list[GeneratedImage]
    usage: dict[str, Any] | None
    cost_usd: float | None
    model_version: str | None = None
    response_id: str | None = None
    texts: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ errors


def error_from_exception(exc: Exception) -> ProviderError:
    """Any exception out of one SDK call as a ``ProviderError``."""
    import httpx2
    from google.genai import errors

    from ..answer_cap import found_in

    capped = found_in(exc)
    if capped is not None:  # the answer cap or the redirect check (``..answer_cap``)
        return ProviderError(Outcome.MALFORMED_RESPONSE, str(capped), status_code=capped.status)
    if isinstance(exc, errors.APIError):
        return error_from_api(exc)
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return ProviderError(Outcome.TIMEOUT, f"Gemini did not answer in time "
                                              f"({type(exc).__name__}: {exc})")
    if isinstance(exc, httpx2.DecodingError):
        return ProviderError(Outcome.MALFORMED_RESPONSE, f"undecodable body: {exc}")
    if isinstance(exc, httpx2.RequestError | OSError):
        return ProviderError(Outcome.CONNECTION_ERROR, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, json.JSONDecodeError):
        return ProviderError(Outcome.MALFORMED_RESPONSE, f"answer is not valid JSON: {exc}",
                             status_code=200)
    if isinstance(exc, ValueError):  # pydantic ValidationError (bad base64…), UnicodeError
        first = str(exc).splitlines()[:3]
        return ProviderError(Outcome.MALFORMED_RESPONSE,
                             f"answer could not be read ({type(exc).__name__}: "
                             f"{' '.join(first)})", status_code=200)
    log.warning("gemini: unexpected %s from the SDK", type(exc).__name__, exc_info=exc)
    return ProviderError(Outcome.MALFORMED_RESPONSE,
                         f"unexpected {type(exc).__name__} from google-genai: {exc}")


def error_from_api(exc: Any) -> ProviderError:
    """A google-genai ``APIError`` (any non-200 answer) by status and reason code."""
    status = exc.code if isinstance(exc.code, int) else None
    body: Mapping[str, Any] = exc.details if isinstance(exc.details, Mapping) else {}
    inner = body.get("error")
    err: Mapping[str, Any] = inner if isinstance(inner, Mapping) else body
    entries = [d for d in err.get("details") or () if isinstance(d, Mapping)]
    reasons = [str(d["reason"]) for d in entries
               if str(d.get("@type", "")).endswith("ErrorInfo") and d.get("reason")]
    quota_ids = [str(v.get("quotaId", "")) for d in entries
                 if str(d.get("@type", "")).endswith("QuotaFailure")
                 for v in d.get("violations") or () if isinstance(v, Mapping)]
    zero_quota = any(str(v.get("quotaValue")) == "0" for d in entries
                     if str(d.get("@type", "")).endswith("QuotaFailure")
                     for v in d.get("violations") or () if isinstance(v, Mapping))
    google_status = exc.status if isinstance(exc.status, str) and _CODE.match(exc.status) else None
    message = _readable(exc.message or err.get("message") or "", status)
    retry_after = _retry_delay(entries)
    if retry_after is None and exc.response is not None:
        headers = getattr(exc.response, "headers", None)
        retry_after = parse_retry_after(dict(headers)) if headers is not None else None

    has_quota_failure = any(str(d.get("@type", "")).endswith("QuotaFailure") for d in entries)
    has_retry_info = any(str(d.get("@type", "")).endswith("RetryInfo") for d in entries)
    only_help = bool(entries) and not has_quota_failure and not has_retry_info and all(
        str(d.get("@type", "")).endswith("Help") for d in entries)
    request_fault = False
    if status is None:
        outcome = Outcome.MALFORMED_RESPONSE
    elif "API_KEY_INVALID" in reasons:
        outcome = Outcome.AUTH_ERROR
    elif google_status == "FAILED_PRECONDITION":
        outcome = Outcome.AUTH_ERROR  # billing off / region not served: the account, not the ask
    elif status == 429:
        daily = any("PerDay" in q for q in quota_ids)
        capped = daily or zero_quota or _ZERO_LIMIT.search(message) is not None or only_help
        outcome = Outcome.QUOTA_EXHAUSTED if capped else Outcome.RATE_LIMITED
        if not capped and retry_after is None:
            # "Please retry in 22.9s" in the words only; for a cap it is the per-minute
            # window and says nothing about when the cap lifts, so it is not used there
            retry_after = _retry_in(message)
    elif 400 <= status < 500 and _NO_CONTENTS.search(message):
        outcome = Outcome.INVALID_REQUEST
        request_fault = True  # nothing to draw: no vendor would take it
    elif status == 499:
        outcome = Outcome.CONNECTION_ERROR
    else:  # 401/403 auth, 402 quota, 404 not_found, 408 timeout, 5xx server, other 4xx invalid
        outcome = outcome_for_status(status)
    if quota_ids:
        message += f" (quota {', '.join(q for q in quota_ids if q)})"
    return ProviderError(outcome, message or f"HTTP {status}", status_code=status,
                         provider_code=(reasons[0] if reasons else google_status),
                         retry_after_s=retry_after, request_fault=request_fault)


def _retry_in(message: str) -> float | None:
    """``"Please retry in 22.991448336s."`` (Google's words when no RetryInfo came along)."""
    m = _RETRY_IN.search(message)
    return parse_duration(m[1]) if m else None


def _retry_delay(entries: Iterable[Mapping[str, Any]]) -> float | None:
    for d in entries:
        if str(d.get("@type", "")).endswith("RetryInfo"):
            delay = d.get("retryDelay")
            if isinstance(delay, Mapping):  # proto Duration as an object
                return float(delay.get("seconds", 0)) + float(delay.get("nanos", 0)) / 1e9
            return parse_duration(str(delay)) if delay is not None else None
    return None


def _readable(text: str, status: int | None) -> str:
    """The vendor's message; an HTML error page reduced to its words."""
    text = str(text)
    if "<" in text and ">" in text and re.search(r"<(!doctype|html|title|body)", text, re.I):
        words = " ".join(_TAGS.sub(" ", text).split())
        return f"HTTP {status} with an HTML page: {words[:300]}"
    return text.strip()


# ------------------------------------------------------------------------------ answers


def raw_answer(response: Any) -> dict[str, Any]:
    """The JSON body of one 200 as a dict, camelCase as Google sends it.

    ``response`` is what the adapter gets from google-genai with ``should_return_http_response``
    (``sdk_http_response.body`` holds the raw text), a dict already, or a typed
    ``GenerateContentResponse`` (dumped by alias; fields the SDK dropped are then missing)."""
    if isinstance(response, Mapping):
        return dict(response)
    http = getattr(response, "sdk_http_response", None)
    body = getattr(http, "body", None) if http is not None else None
    if isinstance(body, str | bytes):
        data = json.loads(body) if body else {}
        if not isinstance(data, dict):
            raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                f"answer is JSON but not an object: {str(data)[:100]!r}",
                                status_code=200)
        return data
    dumped: dict[str, Any] = response.model_dump(mode="json", by_alias=True, exclude_none=True,
                                                 exclude={"sdk_http_response"})
    return dumped


async def read_response(response: Any, price: Callable[[dict[str, Any]], float | None],
                        limits: ImageLimits | None = None) -> CallResult:
    """The images of one HTTP-200 answer, or the ``ProviderError`` it amounts to.

    A 200 can still be a refusal (``promptFeedback.blockReason``, a safety ``finishReason``)
    or empty (``NO_IMAGE``, text only); both carry the cost of the tokens the vendor billed.
    Read from the raw JSON (see :func:`raw_answer`), so ``finishMessage`` is kept. An image
    declaring a size beyond ``limits`` (what the model makes) is refused from its header.
    """
    data = raw_answer(response)
    usage = dict(_mapping(data.get("usageMetadata"))) or None
    cost = price(usage) if usage else None
    feedback = _mapping(data.get("promptFeedback"))
    if feedback.get("blockReason") is not None:
        reason = _enum(feedback["blockReason"], "promptFeedback.blockReason", cost)
        said = feedback.get("blockReasonMessage")
        extra = f": {said}" if said else ""
        raise ProviderError(
            Outcome.CONTENT_POLICY, f"Gemini blocked the prompt ({reason}){extra}",
            status_code=200, provider_code=reason, cost_usd=cost,
            details={"categories": flagged(feedback.get("safetyRatings")),
                     "block_reason": reason, "finish_reason": None, "stage": "prompt"})
    raw: list[bytes] = []
    texts: list[str] = []
    candidates = [c for c in _list(data.get("candidates")) if isinstance(c, Mapping)]
    for cand in candidates:
        for part in _list(_mapping(cand.get("content")).get("parts")):
            if not isinstance(part, Mapping) or part.get("thought"):
                continue  # thinking drafts are not the answer
            blob = _mapping(part.get("inlineData") or part.get("inline_data"))
            mime = str(blob.get("mimeType") or blob.get("mime_type") or "image/")
            if blob.get("data") and mime.startswith("image/"):
                raw.append(_b64(blob["data"]))
            elif isinstance(part.get("text"), str) and part["text"]:
                texts.append(part["text"])
    if raw:
        try:
            images = await verified_images(raw, limits)
        except InvalidImageError as exc:
            raise ProviderError(Outcome.MALFORMED_RESPONSE, f"Gemini sent an unusable image: "
                                f"{exc}", status_code=200, cost_usd=cost) from None
        model_version = data.get("modelVersion")
        response_id = data.get("responseId")
        return CallResult(images, usage, cost,
                          model_version if isinstance(model_version, str) else None,
                          response_id if isinstance(response_id, str) else None, texts)
    raise _no_image(candidates, texts, cost)


def _no_image(cands: Sequence[Mapping[str, Any]], texts: Sequence[str],
              cost: float | None) -> ProviderError:
    cand = next((c for c in cands if c.get("finishReason")), cands[0] if cands else None)
    finish = (_enum(cand["finishReason"], "finishReason", cost)
              if cand is not None and cand.get("finishReason") is not None else None)
    message = cand.get("finishMessage") if cand is not None else None
    said = f": {message}" if isinstance(message, str) and message else ""
    text = " ".join(" ".join(texts).split())
    quote = f'; it said: "{text[:300]}"' if text else ""
    if finish in SAFETY_FINISH:
        return ProviderError(
            Outcome.CONTENT_POLICY, f"Gemini withheld the image ({finish}){said}{quote}",
            status_code=200, provider_code=finish, cost_usd=cost,
            details={"categories": flagged(cand.get("safetyRatings") if cand else None),
                     "block_reason": finish, "finish_reason": finish, "stage": "output",
                     "finish_message": message if said else None})
    what = f"finishReason {finish}" if finish else (
        "no candidates" if not cands else "no finishReason")
    outcome = FINISH_OUTCOME.get(finish or "", Outcome.MALFORMED_RESPONSE)
    return ProviderError(outcome, f"Gemini answered without an image ({what}){said}{quote}",
                         status_code=200, provider_code=finish, cost_usd=cost,
                         details={"finish_reason": finish, "text": text[:2000] or None,
                                  "finish_message": message if said else None})


def flagged(ratings: Any) -> list[str]:
    """Harm categories a list of ``safetyRatings`` flags: blocked ones, else MEDIUM/HIGH ones.
    Takes raw dicts (``{"category", "probability", "blocked"}``) or SDK ``SafetyRating``s."""
    rows = [r if isinstance(r, Mapping) else
            {"category": _name(r.category) if r.category is not None else None,
             "probability": _name(r.probability) if r.probability is not None else None,
             "blocked": r.blocked}
            for r in (ratings or ()) if r is not None]
    blocked = [str(r["category"]) for r in rows if r.get("blocked") and r.get("category")]
    if blocked:
        return blocked
    return [str(r["category"]) for r in rows if r.get("category")
            and str(r.get("probability")) in ("MEDIUM", "HIGH")]


def _enum(value: Any, what: str, cost: float | None) -> str:
    """An enum value of the raw answer (``"SAFETY"``); anything but a name is malformed."""
    if isinstance(value, str) and _CODE.match(value):
        return value
    raise ProviderError(Outcome.MALFORMED_RESPONSE,
                        f"Gemini's answer has a {what} that is not an enum name: {value!r:.60}",
                        status_code=200, cost_usd=cost)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _b64(value: Any) -> bytes:
    """``inlineData.data``: base64 text in the raw JSON (bytes when it came from the SDK).
    Both alphabets are accepted, as protobuf's JSON mapping does (standard and URL-safe)."""
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(str(value).translate(_URLSAFE), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"Gemini sent an image whose base64 is invalid ({exc})",
                            status_code=200) from None


def _name(value: Any) -> str:
    return str(getattr(value, "value", value))


# ------------------------------------------------------------------------------ n calls


def merge_usage(usages: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """One ``usageMetadata`` for several calls: counts added, per-modality details added."""
    if len(usages) <= 1:
        return usages[0] if usages else None
    total: dict[str, Any] = {"calls": len(usages)}
    for usage in usages:
        for key, value in usage.items():
            if isinstance(value, int) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
            elif isinstance(value, list) and key.endswith("TokensDetails"):
                by: dict[str, int] = {d["modality"]: d.get("tokenCount", 0)
                                      for d in total.get(key, [])}
                for d in value:
                    if isinstance(d, Mapping) and "modality" in d:
                        by[d["modality"]] = by.get(d["modality"], 0) + int(
                            d.get("tokenCount", 0))
                total[key] = [{"modality": m, "tokenCount": t} for m, t in by.items()]
    return total


def worst_failure(failures: Sequence[ProviderError], *, calls: int,
                  billed: float | None) -> ProviderError:
    """The one error an attempt of ``calls`` parallel calls reports when ``failures`` failed.

    ``billed`` is what the calls that answered cost (successes included: their images are
    paid for even though the attempt fails); it becomes the error's ``cost_usd``.
    """
    if calls == 1 and len(failures) == 1:
        return failures[0]

    def key(e: ProviderError) -> tuple[int, float]:
        rank = _RANK.index(e.outcome) if e.outcome in _RANK else len(_RANK)
        return rank, -(e.retry_after_s or 0.0)

    worst = min(failures, key=key)
    outcomes = [e.outcome.value for e in failures]
    return ProviderError(
        worst.outcome, f"{len(failures)} of {calls} parallel calls failed ({', '.join(outcomes)});"
        f" {worst.message}", status_code=worst.status_code, provider_code=worst.provider_code,
        retry_after_s=worst.retry_after_s, cost_usd=billed,
        details={**worst.details, "calls": calls, "failed": len(failures),
                 "outcomes": outcomes})
