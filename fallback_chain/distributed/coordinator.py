"""``batch INPUT --out DIR_OR_S3 --queue redis://...``: a batch served by Celery workers.

This side generates nothing. It records the job (:mod:`.jobs`), streams the input into task
messages (:mod:`.enqueue`), shows progress from the job's counters (every worker's outcomes),
waits for every item, then assembles the manifest from the sidecars and writes the failures
file (:mod:`.assemble`), and returns the same ``BatchSummary`` as a local batch.

Ctrl-C (or SIGTERM) stops enqueuing and waiting: the workers finish what was sent; the
manifest records what is done. Running the same command again resumes: items whose sidecar is
in the output are not enqueued again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..batch.engine import detect_format
from ..batch.failures import FailuresWriter
from ..batch.index import BatchIndex
from ..batch.items_stream import iter_items
from ..batch.manifest import Manifest
from ..batch.progress import NullReporter, Reporter
from ..batch.reader import count_records, open_input
from ..batch.stats import BatchStats, BatchSummary
from ..batch.storage import Storage, StorageError
from .app import make_app
from .assemble import assemble
from .enqueue import Enqueuer
from .jobs import Jobs, JobSpec, new_job_id

if TYPE_CHECKING:
    from ..batch.reader import Format


@dataclass(frozen=True)
class QueueOptions:
    """How a queued batch runs: ``window`` messages at most waiting in the broker; the
    chain's name in the workers' config (default: theirs); fsspec options of the output
    (passed to the workers through the job: no credentials here, workers read their own from
    their environment)."""

    chain: str | None = None
    window: int = 1000
    failures: str | None = None
    input_format: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    input_options: dict[str, Any] = field(default_factory=dict)
    fsync: bool = True
    handle_signals: bool = True
    poll_s: float = 0.2


@dataclass(frozen=True)
class QueuedRun:
    summary: BatchSummary
    job: str
    sent: int
    windows_s: list[float]  # the pay-twice windows the workers measured


async def run_queued_batch(queue: str, source: str, out: str,
                           options: QueueOptions | None = None, *,
                           reporter: Reporter | None = None) -> QueuedRun:
    return await _Run(queue, source, out, options or QueueOptions(),
                      reporter or NullReporter()).run()


class _Run:
    def __init__(self, queue: str, source: str, out: str, options: QueueOptions,
                 reporter: Reporter) -> None:
        from redis import Redis

        self.queue = queue
        self.source = source
        self.out = out
        self.options = options
        self.reporter = reporter
        self.stats = BatchStats()
        self.redis = Redis.from_url(queue)
        self.jobs = Jobs(self.redis)
        self.stopping = False
        self.job: str | None = None

    def stop(self) -> None:
        if not self.stopping:
            self.reporter.message("interrupted: sending no more items; the workers finish "
                                  "those sent (run the same command again to resume)")
        self.stopping = True

    async def run(self) -> QueuedRun:
        started = time.monotonic()
        opts = self.options
        fmt = detect_format(self.source, opts.input_format, opts.input_options)
        with open_input(self.source, opts.input_options):
            pass  # a missing input writes nothing
        storage = Storage(self.out, opts.storage_options, fsync=opts.fsync, threads=16)
        try:
            await _prepare(storage)
            return await self._run(storage, fmt, started)
        finally:
            storage.close()
            self.redis.close()

    async def _run(self, storage: Storage, fmt: Format, started: float) -> QueuedRun:
        opts = self.options
        # a local folder by its absolute path: the workers do not share this process's cwd
        out = storage.root if storage.local else self.out
        spec = JobSpec(new_job_id(), out, self.source, opts.chain,
                       public_options(opts.storage_options), opts.fsync, time.time())
        self.jobs.create(spec)
        self.job = spec.job
        failures_url = opts.failures or storage.display(f"failures.{fmt}")
        self.stats.total = count_records(self.source, fmt)
        probe = await storage.run_in_pool(storage.may_hold_outputs)
        app = make_app(self.queue)
        self.reporter.start(self.stats)
        with self._signals(), BatchIndex() as index, \
                open_input(self.source, opts.input_options) as fh:
            header, items = iter_items(fh, fmt, self.source, index)
            failures = FailuresWriter(failures_url, fmt, header,
                                      storage_options=opts.storage_options)
            await asyncio.to_thread(failures.remove_stale)
            enqueuer = Enqueuer(app, self.jobs, spec.job, storage, window=opts.window,
                                probe=probe, stats=self.stats, failures=failures,
                                on_wait=self._progress)
            try:
                sent = (await self._enqueue(enqueuer, items)).sent
                finished = await self._wait(spec.job, sent)
            finally:
                app.close()
            manifest, unfinished = await self._assemble(storage, fmt, spec, failures)
            failures.close()
        interrupted = self.stopping or not finished or unfinished > 0
        self.stats.interrupted = unfinished
        failures_file = failures_url if self.stats.failed + self.stats.invalid_rows else None
        self.reporter.stop(self.stats)
        summary = BatchSummary.from_stats(
            self.stats, input=self.source, output=self.out, manifest=manifest.location,
            failures_file=failures_file, elapsed_s=time.monotonic() - started,
            interrupted=interrupted)
        return QueuedRun(summary, spec.job, sent, self.jobs.windows(spec.job))

    async def _enqueue(self, enqueuer: Enqueuer, items: Iterator[Any]) -> Any:
        task = asyncio.ensure_future(enqueuer.run(items))
        while not task.done():
            if self.stopping:
                enqueuer.stopping = True
            await asyncio.wait([task], timeout=0.1)
        return task.result()

    async def _wait(self, job: str, sent: int) -> bool:
        while True:
            self._progress()
            if self.jobs.done(job) >= sent:
                return True
            if self.stopping:
                return False
            await asyncio.sleep(self.options.poll_s)

    def _progress(self) -> None:
        """Progress across every worker, from the job's counters."""
        counts = self.jobs.counts(self.job) if self.job is not None else {}
        self.stats.delivered = counts.get("delivered", 0)
        self.stats.failed = counts.get("failed", 0)
        self.reporter.update(self.stats)

    async def _assemble(self, storage: Storage, fmt: Format, spec: JobSpec,
                        failures: FailuresWriter) -> tuple[Manifest, int]:
        live = self.stats
        self.stats = BatchStats(total=live.total, rows=live.rows,
                                invalid_rows=live.invalid_rows, skipped=live.skipped)
        manifest = Manifest(storage)
        await storage.run_in_pool(manifest.open)
        manifest.append({"type": "run", "run": manifest.run_id, "input": self.source,
                         "queue": True, "job": spec.job, "chain": spec.chain,
                         "started_at": spec.created_at})
        try:
            with BatchIndex() as index, open_input(self.source,
                                                   self.options.input_options) as fh:
                _, items = iter_items(fh, fmt, self.source, index)
                unfinished = await assemble(items, storage, manifest, self.jobs, spec.job,
                                            self.stats, failures)
        finally:
            await manifest.close()
        return manifest, unfinished

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if (self.options.handle_signals
                and threading.current_thread() is threading.main_thread()):
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self.stop)
                    installed.append(sig)
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)


async def _prepare(storage: Storage) -> None:
    """The output exists and is writable (a folder is created). Temporary files are not
    swept here: on a folder shared by several machines, a writer's process id means nothing
    on this one."""
    if not storage.local:
        await storage.prepare()
        return
    await asyncio.to_thread(_make_folder, storage)


def _make_folder(storage: Storage) -> None:
    try:
        os.makedirs(storage.root, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"{storage.url}: cannot create the output folder "
                           f"({exc.strerror or exc})") from None
    if not os.path.isdir(storage.root) or not os.access(storage.root, os.W_OK):
        raise StorageError(f"{storage.root}: not a writable folder")


_SECRET = re.compile(r"key|secret|token|password|passwd|credential|auth", re.I)
#: Options that name no credential although their name says "key" (s3fs, fsspec).
_NOT_SECRET = frozenset({"requester_pays", "default_fill_cache", "sse_kms_key_id"})


def public_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without credentials (at any depth): what goes to the workers with the job.
    Workers read their own credentials from their environment."""
    out: dict[str, Any] = {}
    for name, value in options.items():
        if _SECRET.search(name) and name not in _NOT_SECRET:
            continue
        out[name] = public_options(value) if isinstance(value, dict) else value
    return out
