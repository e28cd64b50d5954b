"""A recorded exchange as a real-payload corpus file (the format of the project's
``tests/corpus/README.md``), with provenance "recorded on DATE by the user".

The cassette is already scrubbed; the corpus file keeps its status, headers and body, the
request's model/size/n/quality, and adds what the chain is expected to do with the answer
(``action``, ``outcome``, ``cooldown``: the person contributing it says so).
"""

from __future__ import annotations

from typing import Any

from .format import Cassette

ACTIONS = ("stop", "advance", "retry", "success")
COOLDOWNS = ("none", "retry_after", "default", "long")
_REQUEST_FIELDS = ("model", "size", "n", "quality", "output_format", "width", "height",
                   "num_images", "modelId")


def to_corpus(cassette: Cassette, *, action: str, outcome: str, cooldown: str = "none",
              cooldown_s: float | None = None, title: str | None = None,
              reason_contains: str | None = None) -> dict[str, Any]:
    """The corpus document for ``cassette`` (raises ``ValueError`` for a connection failure,
    which has no answer to keep, or an unknown action/cooldown)."""
    from ..outcome import Outcome

    response = cassette.response
    if response is None:
        raise ValueError(f"{cassette.path.name}: a connection failure "
                         f"({cassette.error}) has no vendor answer to keep")
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, not {action!r}")
    if cooldown not in COOLDOWNS:
        raise ValueError(f"cooldown must be one of {COOLDOWNS}, not {cooldown!r}")
    Outcome(outcome)  # ValueError for an unknown outcome
    day = str(cassette.data.get("recorded_at", ""))[:10] or "an unknown date"
    shape = cassette.data["request"].get("shape") or {}
    request = {k: shape[k] for k in _REQUEST_FIELDS if isinstance(shape, dict) and k in shape}
    if "model" not in request and cassette.vendor == "gemini":
        request["model"] = cassette.path_key.rsplit("/", 1)[-1].split(":", 1)[0]
    kept = {k: v for k, v in response.items() if k in ("status", "headers", "body", "body_text")}
    expected: dict[str, Any] = {"action": action, "outcome": outcome, "cooldown": cooldown}
    if cooldown_s is not None:
        expected["cooldown_s"] = cooldown_s
    if reason_contains:
        expected["reason_contains"] = reason_contains
    return {
        "vendor": cassette.vendor,
        "title": title or f"{cassette.vendor} {cassette.endpoint} answered "
                          f"{response.get('status')} (recorded)",
        "source": {"url": None, "where": f"recorded on {day} by the user",
                   "recorded": day, "cassette": cassette.path.name, "quoted": "whole"},
        "endpoint": cassette.endpoint,
        "request": request,
        "response": kept,
        "expected": expected,
    }
