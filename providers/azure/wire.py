"""Azure OpenAI's answers mapped to the core's types: the OpenAI table
(:mod:`fallback_chain.providers.openai.wire`) with Azure's own shapes decided first.

Azure serves the same Images API as OpenAI behind its own gateway, so most answers are
OpenAI's (``invalid_value``, ``moderation_blocked``, 5xx pages...) and go through
``openai.wire.error_from_status`` unchanged. What Azure adds, tried first (first row wins;
public examples in ``tests/corpus/azure/``):

===  ================================================================  =====================
 #   Azure answer                                                      outcome
===  ================================================================  =====================
 1   ``code`` ``content_filter`` / ``contentFilter`` /                 content_policy (stop);
     ``content_policy_violation``, or an ``innererror`` /              categories = the
     ``inner_error`` whose ``code`` is                                 ``content_filter_result(s)``
     ``ResponsibleAIPolicyViolation``                                  entries with
                                                                       ``filtered: true``
 2   403 "Your resource has been temporarily blocked because we        auth_error (long
     detected behavior that may violate our content policy"            cooldown): the whole
     (abuse monitoring: every prompt is refused, not this one)         resource, not the prompt
 3   429 whose delay (``retry-after`` header, else "Please retry       quota_exhausted (long,
     after N seconds") is an hour or more (a daily token quota:        alert): waiting a
     "retry after 86400 seconds")                                      minute does not help
 4   429 otherwise                                                     rate_limited; cooldown =
                                                                       the header, else
                                                                       "retry after N seconds"
 5   everything else: OpenAI's table (401 "Access denied due to invalid subscription key",
     404 ``DeploymentNotFound`` / "Resource not found" (no such deployment or api-version) ->
     auth_error / not_found by status)
===  ================================================================  =====================

Row 1 comes before OpenAI's words-only safety rule on purpose: row 2's message also says
"violate our content policy", and stopping the chain there would be wrong (the prompt was not
the reason).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome

from ..openai import wire as openai_wire

#: Error codes of Azure's content filters (chat/completions and images).
FILTER_CODES = frozenset({"content_filter", "contentFilter", "content_policy_violation"})
#: ``innererror.code`` of every Azure content-filter refusal.
RAI_CODE = "ResponsibleAIPolicyViolation"
#: A delay this long on a 429 is a quota for the day, not a per-minute rate limit.
QUOTA_DELAY_S = 3600.0

_RETRY_AFTER = re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
_RESOURCE_BLOCKED = re.compile(r"resource has been (?:temporarily )?blocked", re.IGNORECASE)


def filter_results(error: Mapping[str, Any]) -> dict[str, Any]:
    """The per-category ``content_filter_result(s)`` of an error, wherever Azure put it
    (``innererror`` for chat and gpt-image, ``inner_error`` for DALL-E)."""
    for key in ("innererror", "inner_error"):
        inner = error.get(key)
        if isinstance(inner, Mapping):
            for name in ("content_filter_result", "content_filter_results"):
                found = inner.get(name)
                if isinstance(found, Mapping):
                    return dict(found)
    return {}


def filtered_categories(results: Mapping[str, Any]) -> list[str]:
    """The categories that were filtered (``{"violence": {"filtered": true, ...}}``)."""
    return [str(name) for name, result in results.items()
            if isinstance(result, Mapping) and result.get("filtered") is True]


def _inner_code(error: Mapping[str, Any]) -> str | None:
    for key in ("innererror", "inner_error"):
        inner = error.get(key)
        if isinstance(inner, Mapping) and inner.get("code") is not None:
            return str(inner["code"])
    return None


def _describe(name: str, result: Any) -> str:
    severity = result.get("severity") if isinstance(result, Mapping) else None
    return f"{name} ({severity})" if isinstance(severity, str) else name


def _content_filter(status: int, error: Mapping[str, Any], message: str,
                    request_id: str | None) -> ProviderError:
    results = filter_results(error)
    categories = filtered_categories(results)
    shown = ", ".join(_describe(c, results[c]) for c in categories)
    reason = message or "Azure's content filter refused the request"
    if shown:
        reason += f" [filtered: {shown}]"
    if request_id:
        reason += f" (request {request_id})"
    inner = error.get("innererror") or error.get("inner_error")
    revised = inner.get("revised_prompt") if isinstance(inner, Mapping) else None
    details: dict[str, Any] = {"categories": categories, "content_filter_results": results,
                               "moderation_stage": "prompt" if error.get("param") == "prompt"
                               else None}
    if isinstance(revised, str):
        details["revised_prompt"] = revised
    if request_id:
        details["request_id"] = request_id
    code = error.get("code")
    return ProviderError(Outcome.CONTENT_POLICY, reason, status_code=status,
                         provider_code=str(code) if code is not None else RAI_CODE,
                         details=details)


def error_from_status(status: int, body: object, headers: Mapping[str, str],
                      request_id: str | None = None) -> ProviderError:
    """One non-2xx answer of Azure OpenAI (``body``: the inner ``error`` object, as the openai
    SDK hands it over) -> ``ProviderError`` (the module docstring's table)."""
    error: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    message = str(error.get("message") or "")
    code = str(error.get("code")) if error.get("code") is not None else None
    if code in FILTER_CODES or _inner_code(error) == RAI_CODE:
        return _content_filter(status, error, message, request_id)
    if status == 403 and _RESOURCE_BLOCKED.search(message):
        suffix = f" (request {request_id})" if request_id else ""
        return ProviderError(Outcome.AUTH_ERROR, message + suffix, status_code=status,
                             provider_code=code, details={"resource_blocked": True})
    err = openai_wire.error_from_status(status, body, headers, request_id)
    if err.outcome is Outcome.RATE_LIMITED:
        delay = err.retry_after_s
        if delay is None:
            m = _RETRY_AFTER.search(message)
            delay = float(m[1]) if m else None
        if delay is not None and delay >= QUOTA_DELAY_S:
            return ProviderError(
                Outcome.QUOTA_EXHAUSTED, f"{err.message} (a {delay:g} s wait: a quota for "
                "the day, not a per-minute limit)", status_code=status,
                provider_code=err.provider_code, details=err.details)
        err.retry_after_s = delay
    return err


def error_from_exception(exc: BaseException) -> ProviderError:
    """Whatever the openai SDK (``AsyncAzureOpenAI``) raised -> ``ProviderError``: status
    errors through :func:`error_from_status`, everything else (timeouts, resets, truncated or
    HTML answers) exactly as for OpenAI."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return error_from_status(exc.status_code, exc.body, exc.response.headers,
                                 exc.request_id)
    return openai_wire.error_from_exception(exc)
