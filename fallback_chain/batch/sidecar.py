"""The JSON sidecar written beside each item's images, and the reasons failures are filed under.

A sidecar says what was asked (prompt, size, quality, n, seed...), what was delivered (provider,
model, revised prompt, each image's size and hash), what it cost and how long it took, every
attempt, the moderation outcome, and, for an item served without a call, where its images came
from (``shared``: another item of the batch, or the cache).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import (
    BudgetExceededError,
    ChainError,
    ChainExhaustedError,
    ContentPolicyError,
    DeadlineExceededError,
    RequestValidationError,
)
from ..outcome import Outcome

if TYPE_CHECKING:
    from ..results import Attempt, ChainResult
    from .items import BatchItem

#: 2: ``output_format`` became ``output_format_requested`` beside ``output_format_delivered``
#: (a vendor may deliver another format than asked, e.g. Leonardo's JPEGs; we record it).
SCHEMA = 2

_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "image/gif": "gif"}


def delivered_format(mime_types: list[str]) -> str | None:
    """The format the images were delivered in (``jpeg``...), read from their bytes' MIME
    types; several formats are joined with commas."""
    seen = list(dict.fromkeys(_FORMATS.get(m, m.removeprefix("image/")) for m in mime_types))
    return ",".join(seen) if seen else None


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _asked(item: BatchItem) -> dict[str, Any]:
    r = item.request
    asked: dict[str, Any] = {
        "prompt": r.prompt, "size_requested": r.size, "quality": r.quality, "n": r.n,
        "seed": r.seed, "negative_prompt": r.negative_prompt,
        "output_format_requested": r.output_format, "background": r.background,
        "metadata": r.metadata}
    # the item's own tenant, only when set (another item's never: results are not shared
    # between tenants, see rows.TENANT_FIELDS)
    asked.update({f: getattr(r, f) for f in ("user", "project") if getattr(r, f) is not None})
    return asked


def moderation(attempts: list[Attempt], delivered: bool) -> dict[str, Any]:
    """``passed`` when delivered (listing refusals by providers passed over), else ``refused``
    with the provider's reason, or ``not_checked`` when no provider answered on content."""
    refusals = [{"provider": a.provider, "model": a.model, "reason": a.message}
                for a in attempts if a.outcome is Outcome.CONTENT_POLICY]
    if delivered:
        return {"outcome": "passed", "refusals": refusals}
    return {"outcome": "refused" if refusals else "not_checked", "refusals": refusals}


def result_sidecar(item: BatchItem, result: ChainResult, files: list[str], *, chain: str,
                   source: str, started: float, finished: float) -> dict[str, Any]:
    first = result.images[0]
    return {
        "schema": SCHEMA, "id": item.id, **_asked(item),
        "revised_prompt": result.revised_prompt, "provider": result.provider,
        "model": result.model, "size_delivered": f"{first.width}x{first.height}",
        "output_format_delivered": delivered_format([im.mime_type for im in result.images]),
        "images": [{"file": f, "width": im.width, "height": im.height,
                    "mime_type": im.mime_type, "sha256": im.sha256, "bytes": len(im.data)}
                   for f, im in zip(files, result.images, strict=True)],
        "cost_usd": result.cost_usd, "latency_s": round(result.latency_s, 4),
        "attempts": [a.model_dump(mode="json") for a in result.attempts],
        "usage": result.usage, "moderation": moderation(result.attempts, True),
        "shared": None, "request_id": result.request_id, "chain": chain,
        "input": {"source": source, "line": item.line},
        "started_at": iso(started), "finished_at": iso(finished),
    }


def shared_sidecar(item: BatchItem, original: dict[str, Any], files: list[str], *, kind: str,
                   chain: str, source: str, started: float, finished: float) -> dict[str, Any]:
    """The sidecar of an item whose images were copied from ``original`` (another item's
    sidecar, or a cache entry): it cost nothing and made no attempt itself. When ``original``
    was itself shared, ``shared`` names the item that was generated."""
    images = [{**im, "file": f} for f, im in zip(files, original["images"], strict=True)]
    upstream = original.get("shared") or {}
    return {
        "schema": SCHEMA, "id": item.id, **_asked(item),
        "revised_prompt": original.get("revised_prompt"), "provider": original.get("provider"),
        "model": original.get("model"), "size_delivered": original.get("size_delivered"),
        "output_format_delivered": delivered_format(
            [str(im.get("mime_type", "")) for im in original["images"]]),
        "images": images, "cost_usd": 0.0, "latency_s": round(finished - started, 4),
        "attempts": [], "usage": None,
        "moderation": original.get("moderation") or {"outcome": "passed", "refusals": []},
        "shared": {"source": kind,
                   "from_id": upstream.get("from_id", original.get("id")),
                   "from_files": [im["file"] for im in original["images"]],
                   "original_cost_usd": upstream.get("original_cost_usd",
                                                     original.get("cost_usd")),
                   "original_attempts": upstream.get("original_attempts",
                                                     original.get("attempts", [])),
                   "original_finished_at": upstream.get("original_finished_at",
                                                        original.get("finished_at"))},
        "request_id": None, "chain": chain, "input": {"source": source, "line": item.line},
        "started_at": iso(started), "finished_at": iso(finished),
    }


def failure_reason(error: BaseException) -> str:
    """The category a failed item is counted under in the summary."""
    if isinstance(error, ContentPolicyError):
        return "content_policy"
    if isinstance(error, BudgetExceededError):
        return "budget_exceeded"
    if isinstance(error, DeadlineExceededError):
        return "deadline_exceeded"
    if isinstance(error, RequestValidationError):
        return "invalid_request"
    if isinstance(error, ChainExhaustedError):
        return "exhausted"
    if isinstance(error, ChainError):
        return "stopped"
    return "error"


def failure_details(error: ChainError) -> dict[str, Any]:
    """What the manifest keeps about a failed item."""
    details: dict[str, Any] = {
        "reason": failure_reason(error), "error": str(error), "cost_usd": error.cost_usd,
        "attempts": [a.model_dump(mode="json") for a in error.attempts],
        "moderation": moderation(error.attempts, False)}
    if isinstance(error, ContentPolicyError):
        details["moderation"].update(provider=error.provider, reason=error.reason,
                                     categories=error.categories)
    return details
