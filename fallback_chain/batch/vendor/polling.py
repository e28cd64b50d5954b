"""Waiting for a vendor job: polls with exponential backoff on the injected clock, until the
job is over or its deadline passes; then it is cancelled and polled until the vendor says it
stopped (its partial results are kept)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...errors import ProviderError

if TYPE_CHECKING:
    from ...providers.batch_api import BatchClient, JobStatus
    from .options import VendorBatchOptions

log = logging.getLogger("fallback_chain.batch")

#: Polls after a cancel before giving up on the vendor confirming it.
CANCEL_POLLS = 20
#: Failed polls in a row (connection errors, 5xx) before the job is given up.
MAX_POLL_ERRORS = 8


class PollFailed(Exception):
    """The vendor's job could not be read (its items go real-time)."""


async def wait_for(client: BatchClient, job_id: str, deadline_at: float,
                   options: VendorBatchOptions) -> tuple[JobStatus, bool]:
    """The job's final status and whether it was cancelled for missing its deadline
    (``deadline_at``: wall-clock seconds of ``options.clock``)."""
    clock = options.clock
    delay = options.poll_initial_s
    status = await _poll(client, job_id, options)
    while not status.done:
        left = deadline_at - clock.wall()
        if left <= 0:
            return await _cancel(client, job_id, options), True
        await clock.sleep(min(delay, left))
        delay = min(options.poll_max_s, max(delay * options.poll_factor, 0.001))
        status = await _poll(client, job_id, options)
    return status, False


async def _poll(client: BatchClient, job_id: str, options: VendorBatchOptions) -> JobStatus:
    errors = 0
    delay = max(options.poll_initial_s, 0.001)
    while True:
        try:
            return await client.status(job_id)
        except ProviderError as exc:
            errors += 1
            if errors >= MAX_POLL_ERRORS or exc.status_code in (401, 403, 404):
                raise PollFailed(f"reading job {job_id} failed: {exc}") from None
            log.warning("polling %s failed (%s); trying again", job_id, exc)
            await options.clock.sleep(delay)
            delay = min(options.poll_max_s, delay * options.poll_factor)


async def _cancel(client: BatchClient, job_id: str, options: VendorBatchOptions) -> JobStatus:
    log.info("job %s missed its deadline: cancelling it", job_id)
    try:
        await client.cancel(job_id)
    except ProviderError as exc:
        log.warning("cancelling %s failed: %s", job_id, exc)
    status = await _poll(client, job_id, options)
    for _ in range(CANCEL_POLLS):
        if status.done:
            break
        await options.clock.sleep(max(options.poll_initial_s, 0.001))
        status = await _poll(client, job_id, options)
    return status
