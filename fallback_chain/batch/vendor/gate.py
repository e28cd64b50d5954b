"""What a row passes before it goes into a vendor batch job, as a real-time call would:
the chain's prompt pre-screen (``Chain(prescreen=...)``, ``batch --prescreen``; like
``walk/screening.py``), then its ``Budget`` caps and tenant ``Quotas`` (like the
``RequestBudgetCheck``, ``PeriodBudgetCheck`` and ``QuotaCheck`` of ``walk/admission.py``),
with the row's price at the batch rate as its estimate.

A row that does not pass gets the error the real-time chain would have raised
(``ContentPolicyError`` at $0 for a flag, ``ChainStoppedError`` for a failed screen with
``on_error="block"``, ``BudgetExceededError`` / ``QuotaExceededError``); it is reported and
never submitted. A row that passes holds its reservations until its job's answer is
collected: then they are settled with what the item cost (delivered, or a refusal the vendor
billed) or released (the item goes real-time, where the chain reserves again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ...errors import (
    BudgetExceededError,
    ChainError,
    ChainStoppedError,
    ContentPolicyError,
    QuotaExceededError,
)
from ...outcome import Outcome
from ...prescreen import PROVIDER, ScreenError
from ...results import Attempt
from .price import batch_price

if TYPE_CHECKING:
    from ...chain import Chain
    from ...cost.budget import Reservation
    from ...cost.quotas import QuotaHold
    from ...prescreen import Screen
    from ..items import BatchItem

#: Screens asked at once (a moderation API is one call per row).
SCREENS_AT_ONCE = 8


@dataclass(slots=True)
class Hold:
    reservation: Reservation | None
    quota: QuotaHold | None


class Gate:
    """The pre-screen, budget and quota checks of the rows of one vendor batch phase
    (``provider``: the name of the chain's provider whose vendor runs the jobs)."""

    def __init__(self, chain: Chain, vendor: str, provider: str, model: str | None) -> None:
        self.chain = chain
        self.vendor = vendor
        self.provider = provider
        self.model = model
        self.screens: tuple[Screen, ...] = chain.prescreens
        self.budget = chain.budget
        self.quotas = chain.quotas if chain.quotas is not None and chain.quotas.active else None
        self.holds: dict[str, Hold] = {}  # item id -> what it holds (the items of one job)

    async def admit(self, items: Sequence[BatchItem]) -> list[ChainError | None]:
        """Per item, in order: ``None`` (it may go into a job; its reservations are held) or
        the error the real-time chain would raise for it."""
        limit = asyncio.Semaphore(SCREENS_AT_ONCE)

        async def screened(item: BatchItem) -> ChainError | None:
            async with limit:
                return await self._screen(item)

        found = await asyncio.gather(*(screened(i) for i in items)) if self.screens else \
            [None] * len(items)
        out: list[ChainError | None] = []
        for item, error in zip(items, found, strict=True):
            out.append(error if error is not None else await self._reserve(item))
        return out

    # ------------------------------------------------------------------ the pre-screen

    async def _screen(self, item: BatchItem) -> ChainError | None:
        attempts: list[Attempt] = []
        for number, screen in enumerate(self.screens, 1):
            started = datetime.now(UTC)
            try:
                found = await screen.screen(item.request)
            except ScreenError as exc:
                attempts.append(_moderation(screen, number, exc.outcome, started,
                                            f"pre-screen failed: {exc.message}",
                                            exc.status_code))
                if screen.on_error == "block":
                    return ChainStoppedError(
                        f"stopped: the pre-screen {screen.model} failed ({exc.outcome.value}: "
                        f"{exc.message}) and on_error='block'", attempts)
                self._screen_failed(item, screen, exc)
                continue
            if found.flagged:
                categories = list(found.categories)
                reason = (f"flagged by {screen.model}: "
                          f"{', '.join(categories) or 'no category given'}")
                attempts.append(_moderation(screen, number, Outcome.CONTENT_POLICY, started,
                                            reason))
                return ContentPolicyError(f"the pre-screen refused the prompt: {reason}",
                                          attempts, provider=PROVIDER, reason=reason,
                                          categories=categories)
            attempts.append(_moderation(screen, number, Outcome.SUCCESS, started, None))
        return None

    def _screen_failed(self, item: BatchItem, screen: Screen, exc: ScreenError) -> None:
        from ...events import PrescreenFailed

        self.chain.events.emit(PrescreenFailed(self.chain.name, item.name, screen.model,
                                               exc.outcome.value, exc.message))

    # ------------------------------------------------------------------ budget and quotas

    def estimate(self, item: BatchItem) -> float | None:
        """What the item should cost in the job: the batch price, else the standard price."""
        price = batch_price(self.vendor, self.model, item.request)
        per_image = price.per_image_usd if price.per_image_usd is not None else \
            price.standard_per_image_usd
        return None if per_image is None else per_image * item.request.n

    async def _reserve(self, item: BatchItem) -> ChainError | None:
        if self.budget is None and self.quotas is None:
            return None
        estimate = self.estimate(item)
        reservation: Reservation | None = None
        if self.budget is not None:
            why = self.budget.refuse_request(0.0, estimate)
            if why is None:
                reserved = await self.budget.reserve(estimate)
                if isinstance(reserved, str):
                    why = reserved
                else:
                    reservation = reserved
            if why is not None:
                return BudgetExceededError("every provider would exceed the budget",
                                           [self._skip(why, estimate)])
        quota: QuotaHold | None = None
        if self.quotas is not None:
            from ...cost.quotas import QuotaRefused

            request = item.request
            held = await self.quotas.reserve(request.user, request.project, request.n,
                                             estimate)
            if isinstance(held, QuotaRefused):
                if reservation is not None:
                    await self.budget.release(reservation)  # type: ignore[union-attr]
                return QuotaExceededError(held.message, [self._skip(held.message, estimate)],
                                          kind=held.kind, tenant=held.tenant,
                                          limit=held.limit)
            quota = held
        self.holds[item.id] = Hold(reservation, quota)
        return None

    def _skip(self, why: str, estimate: float | None) -> Attempt:
        return Attempt(provider=self.provider, model=self.model or "", attempt=1,
                       outcome=Outcome.BUDGET_EXCEEDED, message=f"vendor batch: {why}",
                       started_at=datetime.now(UTC), estimated_cost_usd=estimate)

    async def settle(self, item: BatchItem, cost: float, images: int) -> None:
        """Book what ``item`` cost in its job. An item of a job an earlier, killed run
        submitted holds nothing here: its cost is booked all the same."""
        hold = self.holds.pop(item.id, None)
        if hold is None:
            hold = await self._unreserved(item)
        if hold.reservation is not None and self.budget is not None:
            await self.budget.settle(hold.reservation, cost)
        if hold.quota is not None and self.quotas is not None:
            await self.quotas.settle(hold.quota, cost, images)

    async def _unreserved(self, item: BatchItem) -> Hold:
        reservation = quota = None
        if self.budget is not None:
            reserved = await self.budget.reserve(None)
            reservation = None if isinstance(reserved, str) else reserved
        if self.quotas is not None:
            from ...cost.quotas import QuotaRefused

            request = item.request
            held = await self.quotas.reserve(request.user, request.project, 0, None)
            quota = None if isinstance(held, QuotaRefused) else held
        return Hold(reservation, quota)

    async def release(self, item_id: str) -> None:
        """Give back what ``item_id`` holds (it goes real-time, or was not sent)."""
        hold = self.holds.pop(item_id, None)
        if hold is None:
            return
        if hold.reservation is not None and self.budget is not None:
            await self.budget.release(hold.reservation)
        if hold.quota is not None and self.quotas is not None:
            await self.quotas.release(hold.quota)

    async def release_all(self) -> None:
        for item_id in list(self.holds):
            await self.release(item_id)


def _moderation(screen: Screen, number: int, outcome: Outcome, started: datetime,
                message: str | None, status: int | None = None) -> Attempt:
    return Attempt(provider=PROVIDER, model=screen.model, attempt=number, outcome=outcome,
                   status_code=status, message=message, started_at=started, cost_usd=0.0,
                   cost_source="none", estimated_cost_usd=0.0)
