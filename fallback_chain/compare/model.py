"""What a comparison holds: one ``Row`` per provider, one ``Cell`` per run of the prompt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..request import ImageRequest
    from ..results import Attempt, ChainResult, GeneratedImage
    from .stats import ProviderStats

SUCCESS = "success"


@dataclass(slots=True)
class Cell:
    """One run of the prompt on one provider: delivered (``result``) or failed (``outcome``).

    ``outcome`` is ``"success"`` or why the run delivered nothing: the outcome of its last
    attempt (``server_error``, ``rate_limited``, ``breaker_open``...), ``content_policy``
    for a refusal, ``deadline_exceeded`` or ``budget_exceeded`` when the policy's deadline or
    the budget ended the run, or ``error`` for an unexpected exception (``message`` says
    which). ``cost_usd`` is everything the run's attempts cost, failed ones included;
    ``latency_s`` is the run's wall time from its first attempt to its end.
    """

    row: int
    run: int
    label: str
    provider: str
    model: str
    outcome: str
    cost_usd: float
    latency_s: float
    attempts: list[Attempt] = field(default_factory=list)
    result: ChainResult | None = None
    message: str | None = None

    @property
    def delivered(self) -> bool:
        return self.result is not None

    @property
    def image(self) -> GeneratedImage | None:
        """The run's first image, or ``None`` when it failed."""
        return self.result.images[0] if self.result is not None else None

    @property
    def revised_prompt(self) -> str | None:
        return self.result.revised_prompt if self.result is not None else None

    @property
    def calls(self) -> int:
        """Attempts that actually called the provider (skips are not calls)."""
        return sum(1 for a in self.attempts if a.outcome.was_called)

    def to_dict(self, files: Sequence[str] = ()) -> dict[str, Any]:
        """JSON-ready; image bytes are left out (``files`` names the saved images).
        ``decodable`` is false for a delivered image the sheet and the spreads could not
        decode (it is still saved: it was paid for)."""
        from .stats import signature

        image = self.image
        return {
            "label": self.label, "provider": self.provider, "model": self.model,
            "run": self.run, "outcome": self.outcome, "delivered": self.delivered,
            "message": self.message, "revised_prompt": self.revised_prompt,
            "cost_usd": self.cost_usd, "latency_s": self.latency_s, "calls": self.calls,
            "images": len(self.result.images) if self.result is not None else 0,
            "files": list(files),
            "width": image.width if image else None,
            "height": image.height if image else None,
            "mime_type": image.mime_type if image else None,
            "sha256": image.sha256 if image else None,
            "decodable": signature(image.data) is not None if image else None,
            "request_id": self.result.request_id if self.result is not None else None,
            "attempts": [a.model_dump(mode="json") for a in self.attempts],
        }


@dataclass(slots=True)
class Row:
    """One provider of the comparison and its runs, in run order."""

    index: int
    label: str
    provider: str
    model: str
    cells: list[Cell] = field(default_factory=list)

    @property
    def delivered(self) -> list[Cell]:
        return [c for c in self.cells if c.delivered]


@dataclass(slots=True)
class Comparison:
    """The same ``request`` run ``runs`` times on each provider (one ``Row`` each).

    ``started_at`` is when the first run started (UTC); ``elapsed_s`` the wall time of all.
    """

    request: ImageRequest
    runs: int
    rows: list[Row]
    started_at: datetime
    elapsed_s: float = 0.0

    @property
    def prompt(self) -> str:
        return self.request.prompt

    @property
    def cells(self) -> list[Cell]:
        return [c for r in self.rows for c in r.cells]

    @property
    def cost_usd(self) -> float:
        return sum(c.cost_usd for c in self.cells)

    def stats(self) -> list[ProviderStats]:
        """Per-provider summary (see :class:`~fallback_chain.compare.stats.ProviderStats`)."""
        from .stats import provider_stats

        return [provider_stats(r) for r in self.rows]

    def cross_spread(self) -> dict[tuple[int, int], float | None]:
        """Mean image difference between every pair of rows ``(i, j)``, ``i < j`` (0 = the
        providers drew the same thing, 1 = black against white; ``None`` when one of the two
        delivered nothing). Same measure as ``ProviderStats.spread``, across providers."""
        from .stats import cross_spread

        return cross_spread(self.rows)

    def to_dict(self, files: Mapping[tuple[int, int], Sequence[str]] | None = None
                ) -> dict[str, Any]:
        """JSON-ready summary; ``files`` maps ``(row index, run)`` to the saved images."""
        paths = files or {}
        labels = [r.label for r in self.rows]
        return {
            "prompt": self.prompt,
            "request": self.request.model_dump(
                mode="json", exclude={"images", "reference_images", "mask", "prompt"}),
            "runs": self.runs,
            "started_at": self.started_at.isoformat(),
            "elapsed_s": self.elapsed_s,
            "cost_usd": self.cost_usd,
            "providers": [s.to_dict() for s in self.stats()],
            "cross_spread": [
                {"a": labels[i], "b": labels[j], "spread": v}
                for (i, j), v in sorted(self.cross_spread().items())],
            "cells": [c.to_dict(paths.get((c.row, c.run), ())) for c in self.cells],
        }
