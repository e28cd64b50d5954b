"""Building the router's own result models: ``results.trusted`` (writes the instance dict and
pydantic's ``__pydantic_fields_set__`` directly) against pydantic's ``model_construct`` and a
validated construction, for the models the router builds on every request (``Attempt``,
``ImageOrigin``, ``ChainResult``). The figure decides whether ``trusted`` stays (see its
docstring).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fallback_chain.imaging import placeholder_image
from fallback_chain.outcome import Outcome
from fallback_chain.results import Attempt, ChainResult, GeneratedImage, ImageOrigin, trusted


def _values() -> dict[str, dict[str, Any]]:
    attempt = dict(provider="a", model="m", attempt=1, outcome=Outcome.SUCCESS,
                   status_code=None, provider_code=None, message=None,
                   started_at=datetime(2026, 1, 1, tzinfo=UTC), latency_s=0.5, cost_usd=0.01,
                   cost_source="reported", retry_after_s=None, estimated_cost_usd=0.01)
    image = GeneratedImage.from_bytes(placeholder_image(64, 64))
    origin = dict(provider="a", model="m")
    result = dict(images=[image], provider="a", model="m", revised_prompt=None,
                  attempts=[Attempt(**attempt)], cost_usd=0.01, latency_s=0.5, request_id="r",
                  usage=None, origins=[ImageOrigin(**origin)])
    return {"Attempt": attempt, "ImageOrigin": origin, "ChainResult": result}


_MODELS: dict[str, Any] = {"Attempt": Attempt, "ImageOrigin": ImageOrigin,
                           "ChainResult": ChainResult}


def _time(build: Callable[[], object], n: int, reps: int) -> float:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            build()
        out.append(time.perf_counter() - t0)
    return statistics.median(out) / n * 1e6


def run(quick: bool = False) -> dict[str, Any]:
    n, reps = (20_000, 5) if quick else (200_000, 7)
    rows = []
    for name, values in _values().items():
        cls = _MODELS[name]
        fast = _time(lambda cls=cls, v=values: trusted(cls, **v), n, reps)
        construct = _time(lambda cls=cls, v=values: cls.model_construct(**v), n, reps)
        validated = _time(lambda cls=cls, v=values: cls(**v), n, reps)
        rows.append({"model": name, "trusted µs": fast, "model_construct µs": construct,
                     "validated µs": validated, "saved per build µs": construct - fast})
    return {"title": "Building result models: trusted() vs model_construct() vs validation",
            "rows": rows,
            "notes": (f"{n} builds per repetition, median of {reps}. A successful one-attempt "
                      "request builds one Attempt, one ChainResult (and one ImageOrigin per "
                      "provider, once per chain).")}


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
