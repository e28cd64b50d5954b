"""The vendor batch phase of a run (``BatchOptions.vendor_batch``): plan, journal, submit,
poll, collect; then the real-time pool serves whatever the batch did not settle.

Returns the ids of the items the phase settled (delivered, refused by the vendor or the
pre-screen, over the budget or a quota: reported, never re-sent); the pool skips them. Items
the phase leaves (ineligible, errors, expired, cancelled, a missed deadline, lines the vendor
garbled) go through the chain as usual.

The input is streamed: rows are parsed :data:`CHUNK` at a time and at most one job's worth
(the vendor's limit, or ``VendorBatchOptions.max_items``) is held while that job is planned,
submitted, polled and collected; then the next. Jobs an earlier, killed run left are picked
up first, each with only its own rows. Memory stays flat whatever the size of the input
(only item ids are kept: the journal's, and the set of settled items).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from ...errors import ChainError, ProviderError
from ..index import BatchIndex
from ..items import BatchItem, RowError
from ..items_stream import iter_items
from ..reader import open_input
from ..sidecar import failure_details
from .collect import Collector
from .gate import Gate
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

#: Rows parsed at a time.
CHUNK = 256


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
        gate = Gate(self.chain, client.vendor, provider.name, client.model)
        collector = Collector(self.server, provider, self.source, gate)
        try:
            await self._settled_before(journal)
            for job in list(journal.jobs):  # an earlier run's jobs first: re-attach
                if job.state != "collected" and job.provider == provider.name:
                    items = await self._select(set(job.items.values()))
                    await self._run_job(job, journal, client, collector, items)
            await self._fresh(journal, client, collector, gate, provider.name)
        finally:
            await gate.release_all()  # a stopped run holds no reservation
            await client.aclose()
        return self.settled

    # ------------------------------------------------------------------ items

    async def _chunks(self) -> AsyncGenerator[list[BatchItem], None]:
        """The input's valid items, :data:`CHUNK` rows at a time (a scratch index: the pool
        parses again)."""
        options = self.options
        with BatchIndex(options.index_dir) as scratch, \
                open_input(self.source, options.input_options) as fh:
            _, entries = iter_items(fh, self.fmt, self.source, scratch,
                                    {"user": options.user, "project": options.project},
                                    options.rewrite)
            while True:
                chunk = await asyncio.to_thread(_take, entries, CHUNK)
                if not chunk:
                    return
                yield [e for e in chunk if isinstance(e, BatchItem)]

    async def _select(self, ids: set[str]) -> dict[str, BatchItem]:
        """The items of one job, by id."""
        found: dict[str, BatchItem] = {}
        async with aclosing(self._chunks()) as chunks:
            async for chunk in chunks:
                found.update((item.id, item) for item in chunk if item.id in ids)
        return found

    async def _settled_before(self, journal: Journal) -> None:
        """Refusals of earlier runs: reported again (in this run's failures file), not
        re-sent. Deliveries of earlier runs are the pool's to skip (the manifest has them)."""
        refused = {item_id: outcome.get("error") for job in journal.jobs
                   for item_id, outcome in job.outcomes.items()
                   if outcome.get("status") == "refused"}
        if not refused:
            return
        async with aclosing(self._chunks()) as chunks:
            async for chunk in chunks:
                for item in chunk:
                    if item.id not in refused or self.server.is_delivered(item.id):
                        continue
                    self.server.record_failure(
                        item, "content_policy", f"{refused[item.id]} (refused in the vendor "
                        "batch of an earlier run; not re-sent)", {}, manifest=False)
                    self.settled.add(item.id)

    # ------------------------------------------------------------------ new jobs

    async def _fresh(self, journal: Journal, client: BatchClient, collector: Collector,
                     gate: Gate, provider: str) -> None:
        """The eligible items no job holds, a job's worth at a time: each admitted (the
        pre-screen, the budget, the quotas), planned, saved, then submitted and collected
        before the next rows are read."""
        taken = journal.item_ids()
        cap = min(self.vendor.max_items or client.max_items, client.max_items)
        batch: list[BatchItem] = []
        async with aclosing(self._chunks()) as chunks:
            async for chunk in chunks:
                fresh = [item for item in chunk if self._eligible(item, taken, client)]
                for item, error in zip(fresh, await gate.admit(fresh), strict=True):
                    if error is not None:
                        self._refuse(item, error)
                        continue
                    batch.append(item)
                    if len(batch) >= cap:
                        await self._send(batch, journal, client, collector, provider)
                        batch = []
        if batch:
            await self._send(batch, journal, client, collector, provider)

    def _eligible(self, item: BatchItem, taken: set[str], client: BatchClient) -> bool:
        if item.id in taken or item.id in self.settled or self.server.is_delivered(item.id):
            return False
        if not self.server.retry_failed and self.server.index.state(item.id) is not None:
            return False  # failed in an earlier run, not retried: the pool reports it
        why = ineligible_reason(item, client)
        if why is not None:
            log.info("item %s stays real-time: %s", item.id, why)
            return False
        return True

    def _refuse(self, item: BatchItem, error: ChainError) -> None:
        """Reported as the real-time chain reports it; never submitted, not re-tried now."""
        details = failure_details(error)
        self.server.record_failure(item, details["reason"], str(error), details)
        if details["reason"] == "content_policy":
            self.server.index.add_refused(item.key, item.id, "content_policy", str(error))
        self.settled.add(item.id)

    async def _send(self, batch: list[BatchItem], journal: Journal, client: BatchClient,
                    collector: Collector, provider: str) -> None:
        """Plan ``batch`` as job(s) within the vendor's limits, save them before any is
        submitted, then run each."""
        base = sum(len(job.items) for job in journal.jobs)
        entries = ((f"r{base + i}", item) for i, item in enumerate(batch))
        planned = [JobRecord.new(client.vendor, provider, client.model, job.items)
                   for job in split(entries, client, self.vendor.max_items)]
        journal.jobs.extend(planned)
        await journal.save()
        self.say(f"vendor batch: {len(batch)} item(s) in {len(planned)} "
                 f"{client.vendor} job(s)")
        items = {item.id: item for item in batch}
        for job in planned:
            await self._run_job(job, journal, client, collector, items)

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


def _take(entries: Iterator[BatchItem | RowError], count: int) -> list[BatchItem | RowError]:
    return list(itertools.islice(entries, count))
