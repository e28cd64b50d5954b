"""The prompt pre-screen step of a request, before admission and any image call.

Each screen (``fallback_chain.prescreen``) is asked in order and recorded as an attempt of
provider ``moderation`` costing $0; a flag raises ``ContentPolicyError``; a screen's own failure
lets the request through (``on_error="allow"``, with a ``PrescreenFailed`` event) or stops it
(``"block"``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..errors import ChainStoppedError, ContentPolicyError
from ..outcome import Outcome
from ..prescreen import PROVIDER, PrescreenFailed, ScreenError
from ..results import Attempt, trusted
from .accounting import record

if TYPE_CHECKING:
    from ..prescreen import Screen
    from .run import RequestRun


async def prescreen(run: RequestRun) -> None:
    """Run the chain's screens over the request; raise if the request must not go ahead."""
    for number, screen in enumerate(run.r.screens, 1):
        await _one(run, screen, number)


async def _one(run: RequestRun, screen: Screen, number: int) -> None:
    clock = run.r.clock
    started, t0 = clock.wall(), clock.now()
    try:
        found = await screen.screen(run.request)
    except ScreenError as exc:
        _record(run, screen, number, exc.outcome, started, clock.now() - t0,
                f"pre-screen failed: {exc.message}", exc.status_code)
        _failed(run, screen, exc.outcome, exc.message)
        return
    if not found.flagged:
        _record(run, screen, number, Outcome.SUCCESS, started, clock.now() - t0, None)
        return
    categories = list(found.categories)
    reason = f"flagged by {screen.model}: {', '.join(categories) or 'no category given'}"
    _record(run, screen, number, Outcome.CONTENT_POLICY, started, clock.now() - t0, reason)
    raise ContentPolicyError(f"the pre-screen refused the prompt: {reason}", run.attempts,
                             provider=PROVIDER, reason=reason, categories=categories)


def _failed(run: RequestRun, screen: Screen, outcome: Outcome, message: str) -> None:
    if screen.on_error == "block":
        raise ChainStoppedError(
            f"stopped: the pre-screen {screen.model} failed ({outcome.value}: {message}) and "
            "on_error='block'", run.attempts)
    if run.r.events:
        run.r.events.emit(PrescreenFailed(run.r.name, run.request_id, screen.model,
                                          outcome.value, message))


def _record(run: RequestRun, screen: Screen, number: int, outcome: Outcome, started: float,
            latency: float, message: str | None, status: int | None = None) -> None:
    record(run, trusted(
        Attempt, provider=PROVIDER, model=screen.model, attempt=number, outcome=outcome,
        status_code=status, provider_code=None, message=message,
        started_at=datetime.fromtimestamp(started, UTC), latency_s=latency, cost_usd=0.0,
        cost_source="none", retry_after_s=None, estimated_cost_usd=0.0))
