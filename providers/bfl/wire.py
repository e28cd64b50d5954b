"""Black Forest Labs' API on the wire: the request body, the answers we read, and how every
error answer and task status maps to an :class:`~fallback_chain.outcome.Outcome`.

The API (BFL API reference, https://docs.bfl.ai/api-reference, generated from
https://api.bfl.ai/openapi.json; BFL's own integration notes in the ``black-forest-labs/skills``
repository, ``skills/bfl-api/references/*.md``, commit d0793c8, 2026-02-03):

======================================  ======================================================
``POST {base}/v1/{model}``              submit a task (header ``x-key: <BFL_API_KEY>``);
                                        answers ``{"id", "polling_url"}`` (newer answers also
                                        ``cost`` in credits, ``input_mp``, ``output_mp``)
``GET {polling_url}``                   the task (``GET /v1/get_result?id=…`` when no polling
                                        URL came): ``{"id", "status", "result", "progress",
                                        "details"}``; ``result.sample`` is the image URL
======================================  ======================================================

Task statuses (the ``get_result`` schema: ``Task not found``, ``Pending``, ``Request
Moderated``, ``Content Moderated``, ``Ready``, ``Error``; FLUX.2 clients also see
``Reasoning`` and ``Generating`` while a task runs):

=====================================  =====================================================
``Ready``                              download ``result.sample`` at once: a signed URL
                                       valid for about 10 minutes
``Request Moderated``                  content_policy, the prompt or input was refused
                                       (**stop**)
``Content Moderated``                  content_policy, the generated image was refused
                                       (**stop**)
``Error`` / ``Failed``                 server_error (retried once, then advance)
``Task not found``                     malformed_response (polled through up to
                                       ``max_poll_failures`` times, then retried once)
anything else (``Pending``, …)         still running: poll again until the deadline
=====================================  =====================================================

Error answers (BFL's API is FastAPI: ``{"detail": "..."}`` or a validation list
``{"detail": [{"loc", "msg", "type"}]}``): 402 or "insufficient credits" -> quota_exhausted;
429 -> rate_limited (Retry-After); 401/403 ("Not authenticated") -> auth_error; 404 ->
not_found; other 4xx (422 validation) -> invalid_request; 5xx -> server_error. A 4xx whose
words say moderation / content policy -> content_policy (stop).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome

from ..jobs import ErrorAnswer, status_error

if TYPE_CHECKING:
    from fallback_chain.request import ImageRequest

DEFAULT_BASE_URL = "https://api.bfl.ai"
DEFAULT_MODEL = "flux-pro-1.1"
READY = "Ready"
MODERATED = frozenset({"Request Moderated", "Content Moderated"})
FAILED = frozenset({"Error", "Failed"})
NOT_FOUND = "Task not found"
FINAL = frozenset({READY, NOT_FOUND}) | MODERATED | FAILED
#: USD per BFL credit ("1 credit = $0.01 USD", black-forest-labs/skills, bfl-api/SKILL.md).
USD_PER_CREDIT = 0.01

_QUOTA = re.compile(r"insufficient (credits|funds|balance)|not enough credits|"
                    r"out of credits", re.IGNORECASE)
_MODERATION = re.compile(r"moderat|content policy|content_policy|nsfw", re.IGNORECASE)
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


def request_body(request: ImageRequest, size: tuple[int, int], *, output_format: str,
                 safety_tolerance: int, extra: Mapping[str, Any] | None = None,
                 index: int = 0) -> dict[str, Any]:
    """The JSON of ``POST /v1/{model}`` for a text-to-image model taking width and height.
    ``index``: which of the request's images this task makes (its seed is ``seed + index``,
    so ``n`` tasks with one seed do not make ``n`` copies of one image)."""
    width, height = size
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "width": width,
        "height": height,
        "output_format": output_format,
        "safety_tolerance": safety_tolerance,
    }
    if request.seed is not None:
        body["seed"] = request.seed + index
    if extra:  # vendor fields (prompt_upsampling, steps, ...) never replace the request's own
        body.update({k: v for k, v in extra.items() if k not in body})
    return body


@dataclass(frozen=True, slots=True)
class Submission:
    task_id: str
    polling_url: str
    cost_credits: float | None


@dataclass(frozen=True, slots=True)
class Task:
    status: str
    sample: str | None
    details: dict[str, Any]
    seed: int | None
    prompt: str | None


def parse_submission(data: Any, base_url: str) -> Submission:
    """``{"id", "polling_url", "cost"?}``."""
    tid = data.get("id") if isinstance(data, dict) else None
    if not isinstance(tid, str) or not _ID.match(tid):
        raise _malformed(f"the submit answer has no usable task id: {_short(data)}", "no_id")
    url = data.get("polling_url")
    if not isinstance(url, str) or not url:
        url = f"{base_url}/v1/get_result?id={tid}"
    cost = data.get("cost")
    credits = float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) \
        and cost >= 0 else None
    return Submission(tid, url, credits)


def parse_task(data: Any) -> Task:
    """A ``get_result`` answer; ``Task not found`` is raised (as malformed) for the poll loop
    to poll through."""
    status = data.get("status") if isinstance(data, dict) else None
    if not isinstance(status, str) or not status:
        raise _malformed(f"the poll answer has no status: {_short(data)}", "bad_status")
    if status == NOT_FOUND:
        raise _malformed(f"BFL does not know the task ({_short(data.get('id'))}): "
                         "Task not found", "task_not_found")
    result = data.get("result") if isinstance(data.get("result"), dict) else {}
    sample = result.get("sample") if isinstance(result.get("sample"), str) else None
    details = data.get("details") if isinstance(data.get("details"), dict) else {}
    seed = result.get("seed")
    prompt = result.get("prompt")
    return Task(status, sample, dict(details),
                seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
                prompt if isinstance(prompt, str) else None)


def task_failure(task: Task, task_id: str) -> ProviderError | None:
    """The outcome of a final status other than ``Ready`` (``None`` for ``Ready``)."""
    if task.status == READY:
        if task.sample is None:
            return _malformed(f"BFL task {task_id} is Ready without result.sample",
                              "no_sample")
        return None
    if task.status in MODERATED:
        reasons = _reasons(task.details)
        said = f": {'; '.join(reasons)}" if reasons else ""
        return ProviderError(
            Outcome.CONTENT_POLICY, f"BFL task {task_id} ended {task.status}{said}",
            provider_code=task.status,
            details={"categories": reasons or [task.status], "reason": task.status,
                     "bfl_details": task.details})
    return ProviderError(Outcome.SERVER_ERROR, f"BFL task {task_id} ended {task.status}"
                         + (f" ({_short(task.details)})" if task.details else ""),
                         provider_code=task.status[:40])


def _reasons(details: Mapping[str, Any]) -> list[str]:
    """Moderation reasons in a task's ``details`` (e.g. ``{"Moderation Reasons": [...]}``)."""
    out: list[str] = []
    for key, value in details.items():
        if "reason" in key.lower() or "moderat" in key.lower():
            values = value if isinstance(value, list) else [value]
            out.extend(str(v) for v in values if v)
    return out


def error_from_answer(answer: ErrorAnswer) -> ProviderError:
    """Map a non-2xx BFL answer (see the module docstring)."""
    body = answer.json if isinstance(answer.json, dict) else {}
    detail = body.get("detail")
    if isinstance(detail, list):
        message: str | None = "; ".join(str(d.get("msg")) for d in detail
                                        if isinstance(d, dict) and d.get("msg")) or None
    elif isinstance(detail, str):
        message = detail
    else:
        message = next((body[k] for k in ("message", "error") if isinstance(body.get(k), str)),
                       None)
    text = message or ""
    if 400 <= answer.status < 500 and answer.status != 429 and _MODERATION.search(text):
        return ProviderError(Outcome.CONTENT_POLICY, answer.describe(message),
                             status_code=answer.status, provider_code="moderated",
                             details={"categories": ["moderation"], "reason": text})
    if answer.status == 402 or (400 <= answer.status < 500 and _QUOTA.search(text)):
        return ProviderError(Outcome.QUOTA_EXHAUSTED, answer.describe(message),
                             status_code=answer.status, provider_code="insufficient_credits")
    return status_error(answer, message)


def _malformed(message: str, code: str) -> ProviderError:
    return ProviderError(Outcome.MALFORMED_RESPONSE, message, status_code=200,
                         provider_code=code)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
