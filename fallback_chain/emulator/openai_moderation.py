"""OpenAI's moderation endpoint, ``POST /v1/moderations`` (free; used as a prompt pre-screen).

Answers like the real endpoint (https://platform.openai.com/docs/api-reference/moderations):
one result per input, every category with a boolean and a score. Nothing is flagged unless a
fault says so: the ``flagged`` fault (``{fault = "flagged", categories = ["violence"]}``)
flags the input with those categories; the usual fault kinds (``hang``, ``500``, ``429``, ...)
apply too. Faults reach this endpoint only where ``applies_to`` includes ``"moderate"``::

    [openai.models."omni-moderation-latest"]
    applies_to = ["moderate"]
    script = [{fault = "flagged", categories = ["violence"]}, "hang", "ok"]
"""

from __future__ import annotations

from typing import Any

from .faults import Fault

#: The categories of ``omni-moderation-latest`` (SDK ``openai.types.moderation.Categories``).
CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent", "sexual",
    "sexual/minors", "violence", "violence/graphic")

DEFAULT_MODEL = "omni-moderation-latest"


def inputs_of(body: Any) -> list[str] | None:
    """The texts to moderate (``input`` is a string, a list of strings, or a list of typed
    parts); ``None`` if there is no usable input."""
    value = body.get("input") if isinstance(body, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        texts = [v if isinstance(v, str) else str(v.get("text", "")) if isinstance(v, dict)
                 else None for v in value]
        if all(t is not None for t in texts):
            return [t for t in texts if t is not None]
    return None


def moderation_body(request_id: str, model: str, texts: list[str],
                    fault: Fault | None) -> dict[str, Any]:
    flagged_as = set(fault.categories or ("violence",)) if fault and fault.kind == "flagged" \
        else set()
    results = []
    for _text in texts:
        hits = {c: c in flagged_as for c in CATEGORIES}
        results.append({
            "flagged": bool(flagged_as),
            "categories": hits,
            "category_scores": {c: (0.97 if hit else 0.0004) for c, hit in hits.items()},
            "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
        })
    return {"id": f"modr-{request_id}", "model": model, "results": results}
