"""Replicate's predictions API on the wire: the request we send, the prediction we read, and
how every error answer and failed prediction maps to an :class:`~fallback_chain.outcome.Outcome`.

Reference: Replicate's HTTP API, https://replicate.com/docs/reference/http
(``models.predictions.create``, ``predictions.create``, ``predictions.get``,
``predictions.cancel``) and "Create a prediction",
https://replicate.com/docs/topics/predictions/create-a-prediction (sync mode, ``Prefer:
wait``), retrieved 2026-12-06; the official client, ``replicate`` 1.0.7 on PyPI
(``replicate/prediction.py``: ``POST /v1/models/{owner}/{name}/predictions``, ``POST
/v1/predictions`` with ``version``, ``GET /v1/predictions/{id}``, ``POST
/v1/predictions/{id}/cancel``, ``Prefer: wait`` / ``wait=N``; ``replicate/exceptions.py``:
errors are RFC 7807 problem details ``{"type", "title", "status", "detail"}``).

A prediction: ``{"id", "model", "version", "status", "input", "output", "error", "logs",
"metrics": {"predict_time"}, "urls": {"get", "cancel", "stream", "web"}}``; ``status`` is
``starting``, ``processing``, ``succeeded``, ``failed`` or ``canceled`` (``aborted`` too in
newer answers). An image model's ``output`` is a list of URLs (``https://replicate.delivery/
...``) or one URL; they expire (an hour for API predictions), so they are downloaded at once.

Outcomes (the prediction's own words first, the status after; first row that matches):

===============================================  ==========================================
answer                                           outcome
===============================================  ==========================================
prediction ``failed`` whose ``error`` names      content_policy (stop): e.g. "All generated
NSFW / safety / sensitive content                images contained NSFW content." (cog-flux)
prediction ``failed`` otherwise                  server_error (retried once: a new
                                                 prediction, a new seed)
prediction ``canceled`` / ``aborted``            server_error
401                                              auth_error
402 ("Insufficient credit")                      quota_exhausted
404; 422 "Invalid version or not permitted"      not_found
429                                              rate_limited (Retry-After header, else the
                                                 body's ``retry_after``)
other 400 / 409 / 413 / 422                      invalid_request
5xx                                              server_error
``succeeded`` without usable output URLs, a      malformed_response
2xx that is HTML or broken JSON
===============================================  ==========================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome

from ..jobs import ErrorAnswer, status_error

if TYPE_CHECKING:
    from fallback_chain.request import ImageRequest

DEFAULT_BASE_URL = "https://api.replicate.com"
DEFAULT_MODEL = "black-forest-labs/flux-schnell"
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
#: ``Prefer: wait=N`` accepts 1-60 seconds (Replicate's "Create a prediction" page).
MAX_WAIT_S = 60

_SAFETY = re.compile(r"nsfw|not safe for work|safety (?:checker|filter|system)|sensitive|"
                     r"flagged|content (?:policy|moderation|filter)|inappropriate",
                     re.IGNORECASE)
_INVALID_VERSION = re.compile(r"invalid version|not permitted|does not exist", re.IGNORECASE)
_QUOTA = re.compile(r"insufficient credit|billing|spend limit|out of credit", re.IGNORECASE)
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


def split_model(model: str) -> tuple[str, str, str | None]:
    """``"owner/name"`` or ``"owner/name:version"`` -> ``(owner, name, version)``."""
    ref, _, version = model.partition(":")
    owner, _, name = ref.partition("/")
    if not owner or not name or "/" in name:
        raise ValueError(f"a Replicate model is 'owner/name' or 'owner/name:version', "
                         f"not {model!r}")
    return owner, name, version or None


def create_path(model: str) -> tuple[str, dict[str, Any]]:
    """``(path, body fields besides input)`` of the create call for ``model``."""
    owner, name, version = split_model(model)
    if version is None:
        return f"/v1/models/{owner}/{name}/predictions", {}
    return "/v1/predictions", {"version": version}


def prediction_input(request: ImageRequest, aspect_ratio: str | None, *, output_format: str,
                     n_field: str | None = "num_outputs",
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``input`` of a FLUX-style image model (prompt, aspect_ratio, num_outputs,
    output_format, seed); ``extra`` adds the model's own fields, never replacing these."""
    data: dict[str, Any] = {"prompt": request.prompt,
                            "output_format": "jpg" if output_format == "jpeg" else output_format}
    if aspect_ratio is not None:
        data["aspect_ratio"] = aspect_ratio
    if n_field is not None:
        data[n_field] = request.n
    if request.seed is not None:
        data["seed"] = request.seed
    if request.negative_prompt:
        data["negative_prompt"] = request.negative_prompt
    for key, value in (extra or {}).items():
        data.setdefault(key, value)
    return data


@dataclass(frozen=True, slots=True)
class Prediction:
    """One prediction, reduced to what we use."""

    id: str
    status: str
    output: tuple[str, ...] = ()
    error: str | None = None
    get_url: str | None = None
    cancel_url: str | None = None
    model: str | None = None
    version: str | None = None
    predict_time: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


def parse_prediction(data: Any, what: str) -> Prediction:
    """A prediction object; anything without an id and a status is ``malformed_response``."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or \
            not _ID.match(data["id"]) or not isinstance(data.get("status"), str):
        raise ProviderError(Outcome.MALFORMED_RESPONSE, f"{what}: not a prediction: "
                            f"{_short(data)}", status_code=200, provider_code="bad_prediction")
    urls: dict[str, Any] = data["urls"] if isinstance(data.get("urls"), dict) else {}
    metrics: dict[str, Any] = data["metrics"] if isinstance(data.get("metrics"), dict) else {}
    predict_time = metrics.get("predict_time")
    error = data.get("error")
    return Prediction(
        id=data["id"], status=data["status"].lower(), output=_urls(data.get("output")),
        error=error if isinstance(error, str) else (None if error is None else str(error)),
        get_url=_str(urls.get("get")), cancel_url=_str(urls.get("cancel")),
        model=_str(data.get("model")), version=_str(data.get("version")),
        predict_time=float(predict_time) if isinstance(predict_time, int | float) and
        not isinstance(predict_time, bool) else None, raw=data)


def _urls(output: Any) -> tuple[str, ...]:
    if isinstance(output, str):
        return (output,)
    if isinstance(output, list):
        return tuple(u for u in output if isinstance(u, str))
    return ()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def finished_error(prediction: Prediction) -> ProviderError | None:
    """The error a terminal prediction stands for (``None`` when it succeeded)."""
    if prediction.status == "succeeded":
        return None
    words = prediction.error or ""
    details = {"prediction_id": prediction.id, "status": prediction.status}
    if prediction.status == "failed" and _SAFETY.search(words):
        return ProviderError(
            Outcome.CONTENT_POLICY, f"Replicate prediction {prediction.id} failed: {words}",
            provider_code="nsfw",
            details={**details, "categories": ["nsfw"], "reason": words, "billed": False})
    return ProviderError(
        Outcome.SERVER_ERROR, f"Replicate prediction {prediction.id} ended "
        f"{prediction.status}" + (f": {words[:500]}" if words else ""),
        provider_code=prediction.status, details=details)


# ------------------------------------------------------------------------------- errors


def problem(data: Any) -> tuple[str | None, str | None]:
    """``(detail, title)`` of a problem-details body (``{"title", "detail", "status"}``)."""
    if not isinstance(data, dict):
        return None, None
    detail = data.get("detail") if isinstance(data.get("detail"), str) else None
    title = data.get("title") if isinstance(data.get("title"), str) else None
    return detail, title


def error_from_answer(answer: ErrorAnswer) -> ProviderError:
    """Map a non-2xx Replicate answer (see the table in the module docstring)."""
    detail, title = problem(answer.json)
    message = " - ".join(p for p in (title, detail) if p) or None
    code = _code(title)
    status = answer.status
    words = f"{title or ''} {detail or ''}"
    if status == 429:
        retry = answer.retry_after_s
        if retry is None and isinstance(answer.json, dict):
            body_retry = answer.json.get("retry_after")
            if isinstance(body_retry, int | float) and not isinstance(body_retry, bool):
                retry = float(body_retry)
        return ProviderError(Outcome.RATE_LIMITED, answer.describe(message, code),
                             status_code=429, provider_code=code or "throttled",
                             retry_after_s=retry)
    if 400 <= status < 500 and _SAFETY.search(words) and status != 401:
        return ProviderError(Outcome.CONTENT_POLICY, answer.describe(message, code),
                             status_code=status, provider_code=code or "nsfw",
                             details={"categories": ["nsfw"], "reason": message or ""})
    if status == 402 or (400 <= status < 500 and _QUOTA.search(words)):
        return ProviderError(Outcome.QUOTA_EXHAUSTED, answer.describe(message, code),
                             status_code=status, provider_code=code)
    if status == 422 and _INVALID_VERSION.search(words):
        return ProviderError(Outcome.NOT_FOUND, answer.describe(message, code),
                             status_code=status, provider_code=code)
    if status in (400, 409, 413, 422):
        return ProviderError(Outcome.INVALID_REQUEST, answer.describe(message, code),
                             status_code=status, provider_code=code)
    return status_error(answer, message, code)


def _code(title: str | None) -> str | None:
    """A short code from the problem's title (``"Insufficient credit"`` ->
    ``insufficient_credit``)."""
    if not title:
        return None
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:40] or None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
