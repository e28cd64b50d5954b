"""fal.ai's queue API on the wire: the request body, the answers we read, and how every error
answer maps to an :class:`~fallback_chain.outcome.Outcome`.

The queue (https://fal.ai/docs/documentation/model-apis/inference/queue, the Queue API's OpenAPI
document https://fal.ai/api/openapi/queue/openapi.json, and the official client ``fal-client``
1.0.3, ``fal_client/client.py``):

==========================================================  =================================
``POST https://queue.fal.run/{model_id}``                   submit; answers ``request_id``,
                                                            ``status_url``, ``response_url``,
                                                            ``cancel_url`` (status IN_QUEUE)
``GET  …/{owner}/{app}/requests/{id}/status``               ``{"status": "IN_QUEUE" |
                                                            "IN_PROGRESS" | "COMPLETED", …}``
                                                            (202 until complete, then 200)
``GET  …/{owner}/{app}/requests/{id}``                      the model's output
``PUT  …/{owner}/{app}/requests/{id}/cancel``               cancel a request not yet started
==========================================================  =================================

Every call carries ``Authorization: Key <FAL_KEY>``. The status, result and cancel URLs use
only the owner and app of the model id (``fal-ai/flux`` for ``fal-ai/flux/schnell``); fal says
to use the URLs of the submit answer rather than build them, and so do we, after checking they
point at the API's own hosts (the key is sent to them).

The FLUX output (https://fal.ai/models/fal-ai/flux/schnell/api): ``images`` (``url``, ``width``,
``height``, ``content_type``), ``seed``, ``prompt``, ``timings`` and ``has_nsfw_concepts``, one
boolean per image: fal's safety checker (``enable_safety_checker``, on by default) flags an
image and returns it blacked out.

Error answers, first matching row wins (fal's own words and types before the status; public
examples in ``tests/corpus/fal/``):

===  ==========================================================  ===========================
 #   answer                                                      outcome
===  ==========================================================  ===========================
 1   a ``detail`` item of type ``content_policy_violation``       content_policy (stop), with
     (422, https://fal.ai/docs/model-apis/errors) or whose        its ``categories``
     ``msg`` says "flagged by a content checker", or an
     ``error_type`` / ``X-Fal-Error-Type`` saying so
 2   "User is locked. Reason: Exhausted balance" / "TOP_UP"       quota_exhausted
     (sent as 403), 402
 3   "User is locked. Reason: Admin lock", 401, 403               auth_error
 4   429                                                          rate_limited (Retry-After)
 5   other 4xx with a ``detail`` list (validation)                invalid_request
 6   404 (unknown app), ≥ 500                                      not_found, server_error
--   result with every image flagged in ``has_nsfw_concepts``    content_policy (stop)
--   ``COMPLETED`` status with an ``error``                      by its ``error_type``, else
                                                                 server_error
===  ==========================================================  ===========================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome

from ..jobs import ErrorAnswer, status_error

if TYPE_CHECKING:
    from fallback_chain.request import ImageRequest

DEFAULT_BASE_URL = "https://queue.fal.run"
DEFAULT_MODEL = "fal-ai/flux/schnell"
#: fal's named image sizes (the FLUX endpoints' ``image_size`` enum) and their pixels.
IMAGE_SIZES = {
    (1024, 1024): "square_hd", (512, 512): "square", (768, 1024): "portrait_4_3",
    (576, 1024): "portrait_16_9", (1024, 768): "landscape_4_3", (1024, 576): "landscape_16_9"}
#: Statuses of a request still on its way (anything else is final).
WAITING = frozenset({"IN_QUEUE", "IN_PROGRESS"})
POLICY_TYPES = frozenset({"content_policy_violation"})

_LOCKED_BALANCE = re.compile(r"user is locked.*(exhausted balance|top[_ ]?up|balance)",
                             re.IGNORECASE | re.DOTALL)
_LOCKED = re.compile(r"user is locked", re.IGNORECASE)
_FLAGGED = re.compile(r"flagged by a content checker|content policy", re.IGNORECASE)


def request_body(request: ImageRequest, size: tuple[int, int], *, output_format: str,
                 safety_checker: bool, extra: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The JSON of ``POST /{model_id}`` for a FLUX-style text-to-image endpoint."""
    width, height = size
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "image_size": IMAGE_SIZES.get((width, height)) or {"width": width, "height": height},
        "num_images": request.n,
        "output_format": output_format,
        "enable_safety_checker": safety_checker,
        "sync_mode": False,  # URLs, never data URIs in the answer
    }
    if request.seed is not None:
        body["seed"] = request.seed
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if extra:  # vendor fields (num_inference_steps, ...) never replace the request's own
        body.update({k: v for k, v in extra.items() if k not in body})
    return body


def app_path(model: str) -> str:
    """``owner/app`` of a model id (``fal-ai/flux`` for ``fal-ai/flux/schnell``)."""
    parts = [p for p in model.split("/") if p]
    return "/".join(quote(p, safe="") for p in parts[:2])


# ------------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class Submission:
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


@dataclass(frozen=True, slots=True)
class ImageRef:
    url: str
    nsfw: bool
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Output:
    images: tuple[ImageRef, ...]
    seed: int | None
    prompt: str | None


_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


def parse_submission(data: Any, base_url: str, model: str) -> Submission:
    """The submit answer; URLs it leaves out are built as fal-client builds them."""
    rid = data.get("request_id") if isinstance(data, dict) else None
    if not isinstance(rid, str) or not _ID.match(rid):
        raise _malformed(f"the submit answer has no usable request_id: {_short(data)}",
                         "no_request_id")
    built = f"{base_url}/{app_path(model)}/requests/{rid}"

    def url(key: str, default: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) and value else default

    return Submission(rid, url("status_url", built + "/status"), url("response_url", built),
                      url("cancel_url", built + "/cancel"))


def status_of(data: Any) -> str:
    status = data.get("status") if isinstance(data, dict) else None
    if not isinstance(status, str) or not status:
        raise _malformed(f"the status answer has no status: {_short(data)}", "bad_status")
    return status.upper()


def completed_error(data: dict[str, Any], rid: str) -> ProviderError | None:
    """The failure a ``COMPLETED`` status reports (``error`` / ``error_type``), if any."""
    error, kind = data.get("error"), data.get("error_type")
    if not error and not kind:
        return None
    message = f"fal request {rid} completed with an error: {error or kind}"
    if kind in POLICY_TYPES or (isinstance(error, str) and _FLAGGED.search(error)):
        return _refusal(message, [], str(error or kind), 200)
    return ProviderError(Outcome.SERVER_ERROR, message, provider_code=str(kind or "error")[:40])


def parse_output(data: Any) -> Output:
    """The model's output: ``images`` with their ``has_nsfw_concepts`` flags."""
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise _malformed(f"the result has no images list: {_short(data)}", "no_images")
    flags = data.get("has_nsfw_concepts") or []
    if not isinstance(flags, list) or not all(isinstance(f, bool) for f in flags):
        raise _malformed(f"has_nsfw_concepts is not a list of booleans: {_short(flags)}",
                         "bad_nsfw_flags")
    refs = []
    for i, item in enumerate(images):
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise _malformed(f"an image has no url: {_short(item)}", "no_image_url")
        w, h = item.get("width"), item.get("height")
        refs.append(ImageRef(item["url"], i < len(flags) and flags[i],
                             w if isinstance(w, int) else None,
                             h if isinstance(h, int) else None))
    seed, prompt = data.get("seed"), data.get("prompt")
    return Output(tuple(refs),
                  seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
                  prompt if isinstance(prompt, str) else None)


# -------------------------------------------------------------------------------- errors


def _messages(answer: ErrorAnswer) -> tuple[str | None, list[dict[str, Any]]]:
    """``(message, detail items)`` of a fal error body: ``{"detail": "..."}`` or
    ``{"detail": [{"loc", "msg", "type", ...}]}`` (a bare list is accepted too)."""
    body = answer.json
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail, []
    if isinstance(detail, list):
        items = [d for d in detail if isinstance(d, dict)]
        msgs = [str(d.get("msg")) for d in items if d.get("msg")]
        return ("; ".join(msgs) or None), items
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"], []
    return None, []


def error_from_answer(answer: ErrorAnswer) -> ProviderError:
    """Map a non-2xx fal answer (see the table in the module docstring)."""
    message, items = _messages(answer)
    body = answer.json if isinstance(answer.json, dict) else {}
    kind = body.get("error_type") or answer.headers.get("x-fal-error-type")
    policy = [d for d in items if d.get("type") in POLICY_TYPES
              or _FLAGGED.search(str(d.get("msg") or ""))]
    if policy or kind in POLICY_TYPES or (answer.status == 422 and message
                                          and _FLAGGED.search(message)):
        categories = sorted({str(c) for d in policy for c in (d.get("categories") or [])})
        return _refusal(answer.describe(message, "content_policy_violation"), categories,
                        message or "content_policy_violation", answer.status)
    text = message or ""
    if _LOCKED_BALANCE.search(text) or answer.status == 402:
        return ProviderError(Outcome.QUOTA_EXHAUSTED, answer.describe(message),
                             status_code=answer.status, provider_code="exhausted_balance")
    if _LOCKED.search(text):
        return ProviderError(Outcome.AUTH_ERROR, answer.describe(message),
                             status_code=answer.status, provider_code="user_locked")
    code = items[0].get("type") if items and isinstance(items[0].get("type"), str) else None
    return status_error(answer, message, code or (kind if isinstance(kind, str) else None))


def _refusal(message: str, categories: list[str], reason: str, status: int) -> ProviderError:
    return ProviderError(Outcome.CONTENT_POLICY, message, status_code=status,
                         provider_code="content_policy_violation",
                         details={"categories": categories or ["content_policy_violation"],
                                  "reason": reason})


def _malformed(message: str, code: str) -> ProviderError:
    return ProviderError(Outcome.MALFORMED_RESPONSE, message, status_code=200,
                         provider_code=code)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
