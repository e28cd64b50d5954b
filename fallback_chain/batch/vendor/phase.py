"""The vendor batch phase of a run (``BatchOptions.vendor_batch``): plan, journal, submit,
poll, collect; then the real-time pool serves whatever the batch did not settle.

Returns the ids of the items the phase settled (delivered, or refused: reported, never
re-sent); the pool skips them. Items the phase leaves (ineligible, errors, expired, cancelled,
a missed deadline, lines the vendor garbled) go through the chain as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...errors import ProviderError
from ..index import BatchIndex
from ..items import BatchItem
from ..items_stream import iter_items
from ..reader import open_input
from .collect import Collector
from .journal import JobRecord, Journal
from .planning import batch_provider, ineligible_reason, split
from .polling import PollFailed, wait_for

if TYPE_CHECKING:
    from ...chain import Chain
    from ...providers.batch_api import BatchClient
    from ..delivery import ItemServer
    from ..engine import BatchOptions
    from ..reader import Format
    from .options import VendorBatchOptions

log = logging.getLogger("fallback_chain.batch")


class VendorPhase:
    def __init__(self, chain: Chain, source: str, fmt: Format, options: BatchOptions,
                 vendor: VendorBatchOptions, server: ItemServer,
                 say: Callable[[str], None]) -> None:
        self.chain = chain
        self.source = source
        self.fmt = fmt
        self.options = options
        self.vendor = vendor
        self.server = server
        self.say = say
        self.settled: set[str] = set()

    async def run(self) -> set[str]:
        provider = batch_provider(self.chain)
        if provider is None:
            self.say("vendor batch: no provider of the chain has a batch API; every item "
                     "runs real-time")
            return self.settled
        from ...providers.batch_api import client_for

        client = client_for(provider)
        assert client is not None
        journal = await asyncio.to_thread(Journal(self.server.storage).load)
        items = await asyncio.to_thread(self._items)
        self._settled_before(journal, items)
        try:
            await self._plan(journal, client, items, provider.name)
            collector = Collector(self.server, provider, self.source)
            for job in journal.jobs:
                if job.state != "collected" and job.provider == provider.name:
                    await self._run_job(job, journal, client, collector, items)
        finally:
            await client.aclose()
        return self.settled

    # ------------------------------------------------------------------ items

    def _items(self) -> dict[str, BatchItem]:
        """Every valid item of the input, by id (a scratch index: the pool parses again)."""
        options = self.options
        found: dict[str, BatchItem] = {}
        with BatchIndex(options.index_dir) as scratch, \
                open_input(self.source, options.input_options) as fh:
            _, entries = iter_items(fh, self.fmt, self.source, scratch,
                                    {"user": options.user, "project": options.project},
                                    options.rewrite)
            for entry in entries:
                if isinstance(entry, BatchItem):
                    found[entry.id] = entry
        return found

    def _delivered(self, item_id: str) -> bool:
        state = self.server.index.state(item_id)
        return state is not None and state.status == "delivered"

    def _settled_before(self, journal: Journal, items: dict[str, BatchItem]) -> None:
        """Refusals of earlier runs: reported again (in this run's failures file), not
        re-sent. Deliveries of earlier runs are the pool's to skip (the manifest has them)."""
        for item_id in journal.item_ids():
            outcome = journal.outcome(item_id)
            item = items.get(item_id)
            if item is None or outcome is None:
                continue
            if outcome.get("status") == "refused" and not self._delivered(item_id):
                self.server._record_failure(
                    item, "content_policy", f"{outcome.get('error')} (refused in the vendor "
                    "batch of an earlier run; not re-sent)", {}, manifest=False)
                self.settled.add(item_id)

    # ------------------------------------------------------------------ planning

    async def _plan(self, journal: Journal, client: BatchClient, items: dict[str, BatchItem],
                    provider: str) -> None:
        """New jobs for the eligible items no job holds, saved before any is submitted."""
        taken = journal.item_ids()
        fresh: list[BatchItem] = []
        for item in items.values():
            if item.id in taken or self._delivered(item.id):
                continue
            why = ineligible_reason(item, client)
            if why is not None:
                log.info("item %s stays real-time: %s", item.id, why)
                continue
            fresh.append(item)
        base = sum(len(job.items) for job in journal.jobs)
        entries = ((f"r{base + i}", item) for i, item in enumerate(fresh))
        planned = [JobRecord.new(client.vendor, provider, client.model, job.items)
                   for job in split(entries, client, self.vendor.max_items)]
        if planned:
            journal.jobs.extend(planned)
            await journal.save()
            self.say(f"vendor batch: {len(fresh)} item(s) in {len(planned)} "
                     f"{client.vendor} job(s)")

    # ------------------------------------------------------------------ one job

    async def _run_job(self, job: JobRecord, journal: Journal, client: BatchClient,
                       collector: Collector, items: dict[str, BatchItem]) -> None:
        requests = {cid: items[iid].request for cid, iid in job.items.items() if iid in items}
        if job.state == "planned":
            await self._submit(job, journal, client, requests)
        if job.job_id is None:  # the vendor refused the job: every item goes real-time
            await self._close(job, journal, [], collector, items)
            return
        clock = self.vendor.clock
        deadline_at = (job.submitted_at or clock.wall()) + self.vendor.deadline_s
        try:
            status, missed = await wait_for(client, job.job_id, deadline_at, self.vendor)
        except PollFailed as exc:
            job.error = str(exc)
            self.say(f"vendor batch: {exc}; its items go real-time")
            await self._close(job, journal, [], collector, items)
            return
        if missed:
            self.say(f"vendor batch: job {job.job_id} missed its deadline; cancelled, what "
                     "remains goes real-time")
        job.state, job.final_state, job.error = "finished", status.state, status.error
        await journal.save()
        results: list[Any] = []
        if status.state != "failed":
            try:
                results = await client.results(job.job_id, status, requests)
            except ProviderError as exc:
                job.error = f"reading the results failed: {exc}"
        elif status.error:
            self.say(f"vendor batch: job {job.job_id} failed ({status.error}); its items go "
                     "real-time")
        await self._close(job, journal, results, collector, items)

    async def _submit(self, job: JobRecord, journal: Journal, client: BatchClient,
                      requests: dict[str, Any]) -> None:
        """Submit ``job`` unless the vendor already has it (a run killed after submitting)."""
        try:
            found = await client.find(job.label)
            if found is None:
                lines = [client.line(cid, request) for cid, request in requests.items()]
                found = await client.submit(job.label, lines)
        except ProviderError as exc:
            try:
                found = await client.find(job.label)  # it may have got through
            except ProviderError:
                found = None
            if found is None:
                job.error = f"submitting failed: {exc}"
                self.say(f"vendor batch: {job.error}; its items go real-time")
        job.job_id = found
        job.state = "submitted"
        job.submitted_at = self.vendor.clock.wall()
        await journal.save()

    async def _close(self, job: JobRecord, journal: Journal, results: list[Any],
                     collector: Collector, items: dict[str, BatchItem]) -> None:
        try:
            self.settled |= await collector.collect(job, results, items)
        finally:
            await journal.save()  # what was written is recorded even if a write failed
        job.state = "collected"
        await journal.save()
        counts: dict[str, int] = {}
        for outcome in job.outcomes.values():
            counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        self.say(f"vendor batch: job {job.job_id or job.label} "
                 f"({job.final_state or 'not submitted'}): {summary or 'nothing'}")
