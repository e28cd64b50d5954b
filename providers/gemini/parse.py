"""Gemini answers and errors mapped to the core's types (used by
:mod:`fallback_chain.providers.gemini.adapter`).

Pure functions over what google-genai hands back; the SDK itself is imported only inside the
functions that need its exception classes, so importing this module stays light.

Classification is by HTTP status and Google's reason codes (``error.status``, the
``ErrorInfo.reason`` and ``QuotaFailure`` entries of ``error.details``), never by exception
class alone: google-genai raises one ``ClientError`` for every 4xx.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fallback_chain.errors import ProviderError
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

    if status is None:
        outcome = Outcome.MALFORMED_RESPONSE
    elif status == 400 and "API_KEY_INVALID" in reasons:
        outcome = Outcome.AUTH_ERROR
    elif status == 400 and google_status == "FAILED_PRECONDITION":
        outcome = Outcome.AUTH_ERROR  # billing off / region not served: the account, not the ask
    elif status == 429:
        daily = any("PerDay" in q for q in quota_ids)
        outcome = Outcome.QUOTA_EXHAUSTED if daily or zero_quota else Outcome.RATE_LIMITED
    elif status == 499:
        outcome = Outcome.CONNECTION_ERROR
    else:  # 401/403 auth, 402 quota, 404 not_found, 408 timeout, 5xx server, other 4xx invalid
        outcome = outcome_for_status(status)
    if quota_ids:
        message += f" (quota {', '.join(q for q in quota_ids if q)})"
    return ProviderError(outcome, message or f"HTTP {status}", status_code=status,
                         provider_code=(reasons[0] if reasons else google_status),
                         retry_after_s=retry_after)


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


async def read_response(response: Any, price: Callable[[dict[str, Any]], float | None]
                        ) -> CallResult:
    """The images of one HTTP-200 answer, or the ``ProviderError`` it amounts to.

    A 200 can still be a refusal (``promptFeedback.blockReason``, a safety ``finishReason``)
    or empty (``NO_IMAGE``, text only); both carry the cost of the tokens the vendor billed.
    """
    usage = _dump(response.usage_metadata)
    cost = price(usage) if usage else None
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reason = _name(feedback.block_reason)
        extra = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
        raise ProviderError(
            Outcome.CONTENT_POLICY, f"Gemini blocked the prompt ({reason}){extra}",
            status_code=200, provider_code=reason, cost_usd=cost,
            details={"categories": flagged(feedback.safety_ratings), "block_reason": reason,
                     "finish_reason": None, "stage": "prompt"})
    raw: list[bytes] = []
    texts: list[str] = []
    for cand in response.candidates or ():
        for part in (cand.content.parts if cand.content is not None else None) or ():
            if part.thought:  # thinking drafts are not the answer
                continue
            blob = part.inline_data
            if blob is not None and blob.data and (blob.mime_type or "image/").startswith("image/"):
                raw.append(blob.data)
            elif part.text:
                texts.append(part.text)
    if raw:
        try:
            images = await verified_images(raw)
        except InvalidImageError as exc:
            raise ProviderError(Outcome.MALFORMED_RESPONSE, f"Gemini sent an unusable image: "
                                f"{exc}", status_code=200, cost_usd=cost) from None
        return CallResult(images, usage, cost, response.model_version, response.response_id,
                          texts)
    raise _no_image(response, texts, cost)


def _no_image(response: Any, texts: Sequence[str], cost: float | None) -> ProviderError:
    cands = list(response.candidates or ())
    cand = next((c for c in cands if c.finish_reason is not None), cands[0] if cands else None)
    finish = _name(cand.finish_reason) if cand is not None and cand.finish_reason else None
    said = f" {cand.finish_message}" if cand is not None and cand.finish_message else ""
    text = " ".join(" ".join(texts).split())
    quote = f'; it said: "{text[:300]}"' if text else ""
    if finish in SAFETY_FINISH:
        return ProviderError(
            Outcome.CONTENT_POLICY, f"Gemini withheld the image ({finish}){said}{quote}",
            status_code=200, provider_code=finish, cost_usd=cost,
            details={"categories": flagged(cand.safety_ratings if cand else None),
                     "block_reason": finish, "finish_reason": finish, "stage": "output"})
    what = f"finishReason {finish}" if finish else (
        "no candidates" if not cands else "no finishReason")
    outcome = FINISH_OUTCOME.get(finish or "", Outcome.MALFORMED_RESPONSE)
    return ProviderError(outcome, f"Gemini answered without an image ({what}){said}{quote}",
                         status_code=200, provider_code=finish, cost_usd=cost,
                         details={"finish_reason": finish, "text": text[:2000] or None})


def flagged(ratings: Iterable[Any] | None) -> list[str]:
    """Harm categories a list of ``SafetyRating`` flags: blocked ones, else MEDIUM/HIGH ones."""
    ratings = list(ratings or ())
    blocked = [_name(r.category) for r in ratings if r.blocked and r.category is not None]
    if blocked:
        return blocked
    return [_name(r.category) for r in ratings if r.category is not None
            and r.probability is not None and _name(r.probability) in ("MEDIUM", "HIGH")]


def _name(value: Any) -> str:
    return str(getattr(value, "value", value))


def _dump(usage: Any) -> dict[str, Any] | None:
    if usage is None:
        return None
    dumped: dict[str, Any] = usage.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped or None


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
