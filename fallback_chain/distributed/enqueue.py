"""The enqueuer: the input, streamed, becomes task messages; at most ``window`` are waiting.

Each row is validated as in a local batch (a bad row goes to the failures file, never to the
queue); an item whose sidecar and images are already in the output is not enqueued (that is
how a re-run resumes); the others are sent one message each. The enqueuer sends a message only
while fewer than ``window`` items of the job are unfinished, so the broker holds a bounded
number of messages however large the input, and memory stays flat on this side too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..batch.items import BatchItem, RowError
from .app import QUEUE, TASK
from .message import to_message
from .serve import stored_sidecar

if TYPE_CHECKING:
    from celery import Celery

    from ..batch.failures import FailuresWriter
    from ..batch.stats import BatchStats
    from ..batch.storage import Storage
    from .jobs import Jobs


@dataclass
class Enqueued:
    sent: int = 0
    skipped: int = 0


class Enqueuer:
    def __init__(self, app: Celery, jobs: Jobs, job: str, storage: Storage, *,
                 window: int, probe: bool, stats: BatchStats, failures: FailuresWriter,
                 on_wait: Callable[[], None] | None = None, poll_s: float = 0.1) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.app = app
        self.jobs = jobs
        self.job = job
        self.storage = storage
        self.window = window
        self.probe = probe
        self.stats = stats
        self.failures = failures
        self.on_wait = on_wait
        self.poll_s = poll_s
        self.done = Enqueued()
        self.stopping = False

    async def run(self, items: Iterator[BatchItem | RowError]) -> Enqueued:
        for entry in items:
            if self.stopping:
                break
            self.stats.rows += 1
            if isinstance(entry, RowError):
                self.stats.on_invalid()
                self.failures.write(entry.row, entry.id, str(entry), line=entry.line,
                                    raw=entry.raw)
                continue
            if self.probe and await stored_sidecar(self.storage, entry) is not None:
                self.done.skipped += 1
                self.stats.skipped += 1
                continue
            await self._room()
            if self.stopping:
                break
            self._send(entry)
        return self.done

    def _send(self, item: BatchItem) -> None:
        self.app.send_task(TASK, args=[self.job, to_message(item)], queue=QUEUE)
        self.done.sent += 1

    async def _room(self) -> None:
        """Wait while ``window`` sent items are unfinished."""
        while not self.stopping and self.done.sent - self.jobs.done(self.job) >= self.window:
            if self.on_wait is not None:
                self.on_wait()
            await asyncio.sleep(self.poll_s)

