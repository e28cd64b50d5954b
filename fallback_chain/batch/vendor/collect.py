"""Writing a finished job's answers: a delivered item exactly like a generated one (images,
then its sidecar, then its manifest line), with ``vendor_batch`` in the sidecar (the job id,
the price per image and its source); a refusal reported (manifest and failures file) and
never re-sent; every other item left to the real-time chain."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...outcome import Outcome
from ...results import Attempt, ChainResult
from ..naming import image_name, sidecar_name
from ..sidecar import moderation, result_sidecar
from .price import batch_price, item_cost, refusal_cost

if TYPE_CHECKING:
    from ...provider import Provider
    from ...providers.batch_api import ItemResult
    from ..delivery import ItemServer
    from ..items import BatchItem
    from .gate import Gate
    from .journal import JobRecord


class Collector:
    def __init__(self, server: ItemServer, provider: Provider, source: str,
                 gate: Gate | None = None) -> None:
        self.server = server
        self.provider = provider
        self.source = source
        self.gate = gate  # the budget and quotas the item's cost is booked against
        self.vendor = str(getattr(type(provider), "vendor", "") or provider.name)

    async def collect(self, job: JobRecord, results: list[ItemResult],
                      items: dict[str, BatchItem]) -> set[str]:
        """Write every answer of ``job`` not written yet; record each item's outcome in
        ``job.outcomes`` (items without an answer: ``realtime``). Returns the items settled
        now (delivered or refused); those an earlier, killed run delivered are the pool's to
        skip (the manifest has them)."""
        settled: set[str] = set()
        by_custom = {r.custom_id: r for r in results}
        for custom_id, item_id in job.items.items():
            if item_id in job.outcomes:
                continue  # written by an earlier (killed) run
            item = items.get(item_id)
            result = by_custom.get(custom_id)
            if item is None:  # no longer in the input: nothing to write
                continue
            if self.server.is_delivered(item_id):
                job.outcomes[item_id] = {"status": "delivered"}
                await self._release(item_id)
                continue
            if await self.server.recover(item):  # written by a killed run, not recorded
                job.outcomes[item_id] = {"status": "delivered"}
                await self._release(item_id)
                settled.add(item_id)
            elif result is not None and result.status == "delivered" and result.reply:
                await self._deliver(job, item, result)
                job.outcomes[item_id] = {"status": "delivered"}
                settled.add(item_id)
            elif result is not None and result.status == "refused" and result.error:
                message = str(result.error)
                await self._refuse(job, item, result, message)
                job.outcomes[item_id] = {"status": "refused", "error": message}
                settled.add(item_id)
            else:
                why = result.status if result is not None else "missing"
                job.outcomes[item_id] = {"status": "realtime", "why": why}
                await self._release(item_id)  # the chain reserves again
        return settled

    async def _release(self, item_id: str) -> None:
        if self.gate is not None:
            await self.gate.release(item_id)

    async def _deliver(self, job: JobRecord, item: BatchItem, result: ItemResult) -> None:
        reply = result.reply
        assert reply is not None
        price = batch_price(self.vendor, job.model, item.request)
        cost, how = item_cost(price, len(reply.images), reply.cost_usd)
        now = time.time()
        attempt = Attempt(provider=self.provider.name, model=reply.model or job.model,
                          attempt=1, outcome=Outcome.SUCCESS,
                          started_at=datetime.fromtimestamp(now, UTC), cost_usd=cost,
                          cost_source="reported" if how == "reported" else "estimated",
                          message=f"vendor batch {job.job_id}")
        chain_result = ChainResult(
            images=reply.images, provider=self.provider.name, model=reply.model or job.model,
            revised_prompt=reply.revised_prompt, attempts=[attempt], cost_usd=cost,
            latency_s=0.0, request_id=reply.vendor_request_id or "", usage=reply.usage)
        n = len(reply.images)
        files = [image_name(item.name, i, n, im.extension) for i, im in enumerate(reply.images)]
        sidecar = result_sidecar(item, chain_result, files, chain=self.server.chain.name,
                                 source=self.source, started=job.submitted_at or now,
                                 finished=now)
        sidecar["vendor_batch"] = self._details(job, result, price.to_dict(), how,
                                                reply.cost_usd)
        writes = [(im.data, f) for f, im in zip(files, reply.images, strict=True)]
        writes.append((_json(sidecar), sidecar_name(item.name)))
        await self.server.storage.write_all(writes)
        self.server.record_delivery(item, sidecar, "vendor_batch")
        self.server.stats.generated += 1
        if self.gate is not None:
            await self.gate.settle(item, cost, n)
        self._account(item, attempt)

    def _account(self, item: BatchItem, attempt: Attempt) -> None:
        """The summary, and the chain's subscribers (the cost ledger), see the batch's
        attempt under ``<provider> (vendor batch)``, apart from the chain's own calls."""
        from ...events import AttemptFinished

        shown = attempt.model_copy(update={"provider": f"{self.provider.name} (vendor batch)"})
        self.server.stats.on_attempt(shown)
        request = item.request
        chain = self.server.chain
        chain.events.emit(AttemptFinished(
            chain=chain.name, request_id=item.name, attempt=shown, metadata=dict(request.metadata),
            user=request.user, project=request.project))

    async def _refuse(self, job: JobRecord, item: BatchItem, result: ItemResult,
                      message: str) -> None:
        """A refusal costs what the vendor's answer reports (Gemini bills the prompt tokens
        of a refused request: ``usageMetadata``), at the batch price; $0 without a report."""
        error = result.error
        assert error is not None
        price = batch_price(self.vendor, job.model, item.request)
        cost, how = refusal_cost(price, error.cost_usd)
        attempt = Attempt(provider=self.provider.name, model=job.model, attempt=1,
                          outcome=Outcome.CONTENT_POLICY, status_code=error.status_code,
                          provider_code=error.provider_code, message=error.message,
                          started_at=datetime.now(UTC), cost_usd=cost,
                          cost_source="reported" if how == "reported" else "none")
        details = {"cost_usd": cost, "attempts": [attempt.model_dump(mode="json")],
                   "moderation": moderation([attempt], False),
                   "vendor_batch": self._details(job, result, price.to_dict(), how,
                                                 error.cost_usd)}
        self.server.record_failure(item, "content_policy",
                                   f"{message} (refused in vendor batch {job.job_id}; "
                                   "not re-sent)", details)
        self.server.index.add_refused(item.key, item.id, "content_policy", message)
        if self.gate is not None:
            await self.gate.settle(item, cost, 0)
        if cost:
            self._account(item, attempt)

    def _details(self, job: JobRecord, result: ItemResult, price: dict[str, Any] | None,
                 how: str, standard_cost: float | None) -> dict[str, Any]:
        return {"vendor": self.vendor, "provider": self.provider.name, "model": job.model,
                "batch_id": job.job_id, "label": job.label, "custom_id": result.custom_id,
                "price": price, "cost_basis": how,
                "cost_at_standard_price_usd": standard_cost}


def _json(value: dict[str, Any]) -> bytes:
    import json

    return (json.dumps(value, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
