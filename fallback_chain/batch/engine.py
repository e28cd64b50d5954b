"""The job pool: a reader streams items into a bounded queue, ``concurrency`` workers take them
and serve each through one shared ``Chain``. Memory does not grow with the number of items:
the queue holds at most ``queue_size`` items, the run's index lives in a temporary SQLite
file, and statistics are counters and histograms.

Per-provider concurrency and images-per-minute limits are the chain's business (``Policy``
fields ``max_concurrency`` and ``images_per_minute``); the pool only bounds the total.

Stopping: Ctrl-C (SIGINT) or SIGTERM stops taking items, lets those in flight finish for up to
``grace_s`` seconds, then cancels them (the router records a ``cancelled`` attempt and releases
budget reservations); results that arrived are still written. The manifest is flushed and the
summary says ``interrupted``. A second Ctrl-C cancels at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..events import AttemptFinished, Event
from ..secrets import redact
from .delivery import FatalStorageError, ItemServer
from .failures import FailuresWriter
from .index import BatchIndex
from .items import BatchItem, RowError
from .items_stream import RowRewrite, iter_items
from .lock import OutputLock
from .manifest import Manifest
from .progress import NullReporter, Reporter
from .reader import Format, InputError, count_records, format_for, open_input
from .stats import BatchStats, BatchSummary
from .storage import Storage, StorageError

if TYPE_CHECKING:
    from ..chain import Chain
    from .cache import ResultCache
    from .vendor import VendorBatchOptions

log = logging.getLogger("fallback_chain.batch")

_CHUNK = 64


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs (every field has a sensible default).

    * ``concurrency``: items in flight at once (the global limit).
    * ``queue_size``: items read ahead of the workers (default ``2 * concurrency``).
    * ``cache``: a folder or URL for the content-addressed cache across runs (off by default).
    * ``failures``: where the failures file goes (default ``OUT/failures.csv`` or ``.jsonl``).
    * ``input_format``: ``csv`` or ``jsonl`` when the file name does not say.
    * ``retry_failed``: on a re-run, try items that failed before again (default) or list them
      as failed without a call.
    * ``fsync``: flush each file to disk before renaming it into place (local output).
    * ``grace_s``: after Ctrl-C, how long items in flight may take to finish.
    * ``storage_options``: fsspec options for the output (and the cache and failures file),
      e.g. ``{"client_kwargs": {"endpoint_url": ...}}``; ``input_options`` for the input.
    * ``handle_signals``: install the SIGINT/SIGTERM handlers (main thread only).
    * ``user``, ``project``: the tenant of rows without ``user`` / ``project`` columns (quotas,
      see docs/cost.md).
    * ``rewrite``: a function rewriting each row before it is parsed (``--draft``).
    * ``vendor_batch``: send eligible items to the vendor's batch API first (about half
      price), the chain serving the rest (``--vendor-batch``; ``fallback_chain.batch.vendor``).
    """

    concurrency: int = 8
    queue_size: int | None = None
    cache: str | None = None
    failures: str | None = None
    input_format: str | None = None
    retry_failed: bool = True
    fsync: bool = True
    grace_s: float = 3.0
    storage_options: dict[str, Any] = field(default_factory=dict)
    input_options: dict[str, Any] = field(default_factory=dict)
    handle_signals: bool = True
    index_dir: str | None = None
    user: str | None = None
    project: str | None = None
    rewrite: RowRewrite | None = None  # rows rewritten before parsing (``drafts.draft_row``)
    vendor_batch: VendorBatchOptions | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1 (got {self.concurrency})")
        if self.queue_size is not None and self.queue_size < 1:
            raise ValueError(f"queue_size must be at least 1 (got {self.queue_size})")
        if self.grace_s < 0:
            raise ValueError("grace_s must be >= 0")


def detect_format(source: str, explicit: str | None,
                  options: dict[str, Any] | None = None) -> Format:
    """The input format from ``explicit``, the file name, or the first non-blank byte."""
    fmt = format_for(source, explicit)
    if fmt is not None:
        return fmt
    with open_input(source, options) as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


async def run_batch(chain: Chain, source: str, out: str, options: BatchOptions | None = None,
                    *, reporter: Reporter | None = None) -> BatchSummary:
    """Generate every row of ``source`` (CSV or JSONL, path or URL) into ``out`` (a folder or
    an fsspec URL) with ``chain``; see :class:`BatchOptions`. Re-running with the same
    ``out`` resumes. Raises ``InputError`` (bad input file as a whole) or ``StorageError``
    (unusable output) before anything is generated."""
    return await BatchRun(chain, source, out, options or BatchOptions(),
                          reporter or NullReporter()).run()


class BatchRun:
    def __init__(self, chain: Chain, source: str, out: str, options: BatchOptions,
                 reporter: Reporter) -> None:
        self.chain = chain
        self.source = str(source)
        self.out = str(out)
        self.options = options
        self.reporter = reporter
        self.stats = BatchStats()
        self.stopping = False
        self.error: str | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._server: ItemServer | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._lock: OutputLock | None = None
        self._cache: ResultCache | None = None
        self._phase: asyncio.Task[set[str]] | None = None  # the vendor batch phase
        self._settled: set[str] = set()  # items the vendor batch settled: the pool skips them

    # ------------------------------------------------------------------ stopping

    def request_stop(self, why: str = "interrupted") -> None:
        """Stop taking items; in-flight ones get ``grace_s`` seconds (a second call: none)."""
        loop = asyncio.get_running_loop()
        if self.stopping:
            self._cancel_busy()
            return
        self.stopping = True
        if self._phase is not None:
            self._phase.cancel()  # its jobs are in the journal: the next run re-attaches
        if self._reader is not None:
            self._reader.cancel()
        for task in self._workers:
            if task not in self._busy:
                task.cancel()
        if self._busy:
            self.reporter.message(
                f"{why}: taking no new items; {len(self._busy)} in flight get "
                f"{self.options.grace_s:g}s to finish (press Ctrl-C again to cancel them)")
        self._grace = loop.call_later(self.options.grace_s, self._cancel_busy)

    def _fatal(self, exc: FatalStorageError) -> None:
        if self.error is None:
            self.error = redact(str(exc))
            self.reporter.message(f"stopping: {exc}")
        self.request_stop("storage error")

    def _cancel_busy(self) -> None:
        for task in list(self._busy):
            task.cancel()

    def _on_event(self, event: Event) -> None:
        if (isinstance(event, AttemptFinished) and self._server is not None
                and event.request_id in self._server.live):
            self.stats.on_attempt(event.attempt)
            self.reporter.update(self.stats)

    # ------------------------------------------------------------------ the run

    async def run(self) -> BatchSummary:
        started = time.monotonic()
        options = self.options
        fmt = detect_format(self.source, options.input_format, options.input_options)
        # local disks: few threads (more only fight the loop for the GIL); object stores are
        # network-bound: a thread per item in flight, up to 32
        remote = "://" in self.out and not self.out.startswith("file://")
        storage = Storage(self.out, options.storage_options, fsync=options.fsync,
                          threads=min(32, max(4, options.concurrency)) if remote else 4)
        index = BatchIndex(options.index_dir)
        manifest = Manifest(storage)
        lock = self._lock = OutputLock(storage, manifest.run_id)
        failures_url = options.failures or storage.display(f"failures.{fmt}")
        interrupted = False
        try:
            # the input first: a missing or unreadable input writes nothing at all
            with open_input(self.source, options.input_options):
                pass
            try:
                cache, probe = await self._setup(storage, lock, index, manifest)
            except OSError as exc:  # a disk already full, no permission...: nothing generated
                if isinstance(exc, StorageError):
                    raise
                raise StorageError(f"{self.out}: cannot write the output "
                                   f"({exc.strerror or exc})") from None
            self.stats.total = count_records(self.source, fmt)
            with open_input(self.source, options.input_options) as fh:
                header, items = iter_items(fh, fmt, self.source, index,
                                           {"user": options.user, "project": options.project},
                                           options.rewrite)
                failures = FailuresWriter(failures_url, fmt, header,
                                          storage_options=options.storage_options)
                await asyncio.to_thread(failures.remove_stale)
                self._server = ItemServer(self.chain, storage, manifest, index, self.stats,
                                          failures, cache, source=self.source,
                                          retry_failed=options.retry_failed,
                                          on_failure=self.reporter.message,
                                          on_fatal=self._fatal,
                                          max_writes=options.concurrency)
                self._server.probe = probe
                unsubscribe = self.chain.events.subscribe(self._on_event)
                self.reporter.start(self.stats)
                try:
                    with self._signals():
                        await self._vendor_phase(fmt)
                        await self._pool(items, manifest)
                finally:
                    unsubscribe()
                    await self._server.drain()
                    failures.close()
            # a stop for an error (disk full, unreadable input) is a failure (exit 1), even
            # though the items in flight were cancelled: not an interruption (exit 130)
            interrupted = self.error is None and (self.stopping or self.stats.interrupted > 0)
        finally:
            if self._grace is not None:
                self._grace.cancel()
            try:
                await manifest.close()
            except OSError as exc:  # the last fsync on a full disk: an error, not a traceback
                self.error = self.error or redact(f"writing the manifest failed: {exc}")
            finally:
                with contextlib.suppress(OSError):
                    await storage.run_in_pool(lock.release)
                storage.close()
                if self._cache is not None:
                    self._cache.close()
                index.close()
        failures_file = failures_url if self.stats.failed + self.stats.invalid_rows else None
        self.reporter.stop(self.stats)
        return BatchSummary.from_stats(
            self.stats, input=self.source, output=self.out, manifest=manifest.location,
            failures_file=failures_file, elapsed_s=time.monotonic() - started,
            interrupted=interrupted, error=self.error)

    async def _setup(self, storage: Storage, lock: OutputLock, index: BatchIndex,
                     manifest: Manifest) -> tuple[ResultCache | None, bool]:
        """Prepare the output: its lock, the cache, the index from the manifest, the run
        record. Raises ``StorageError`` or ``OSError`` before anything is generated."""
        options = self.options
        await storage.prepare()
        await storage.run_in_pool(lock.acquire)  # one run per output at a time
        cache: ResultCache | None = None
        if options.cache:
            from .cache import ResultCache

            cache = self._cache = ResultCache(options.cache, options.storage_options,
                                              fsync=options.fsync)
            await cache.prepare()
        await storage.run_in_pool(lambda: index.load(manifest.records()))
        probe = await storage.run_in_pool(storage.may_hold_outputs)
        manifest.open()
        manifest.append({"type": "run", "run": manifest.run_id, "input": self.source,
                         "chain": self.chain.name, "started_at": time.time(),
                         "concurrency": options.concurrency})
        return cache, probe

    async def _vendor_phase(self, fmt: Format) -> None:
        if self.options.vendor_batch is None or self.stopping:
            return
        from .vendor.phase import VendorPhase

        assert self._server is not None
        phase = VendorPhase(self.chain, self.source, fmt, self.options,
                            self.options.vendor_batch, self._server, self.reporter.message)
        self._phase = asyncio.create_task(phase.run())
        try:
            self._settled = await self._phase
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            self._settled = phase.settled
        finally:
            self._phase = None

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if self.options.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self.request_stop,
                                            "interrupted" if sig == signal.SIGINT else "SIGTERM")
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def _pool(self, items: Iterator[BatchItem | RowError], manifest: Manifest) -> None:
        size = self.options.queue_size or 2 * self.options.concurrency
        queue: asyncio.Queue[BatchItem | None] = asyncio.Queue(maxsize=size)
        self._reader = asyncio.create_task(self._read(items, queue))
        self._workers = [asyncio.create_task(self._work(queue))
                         for _ in range(self.options.concurrency)]
        ticker = asyncio.create_task(self._tick(manifest))
        try:
            results = await asyncio.gather(self._reader, *self._workers,
                                           return_exceptions=True)
        finally:
            ticker.cancel()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError):
                raise result

    async def _read(self, items: Iterator[BatchItem | RowError],
                    queue: asyncio.Queue[BatchItem | None]) -> None:
        """Feed the queue. A local file is parsed on the loop in small chunks (cheaper than a
        thread, which would fight the loop for the GIL); a remote one in a thread, so a slow
        network read never blocks the loop."""
        loop = asyncio.get_running_loop()
        server = self._server
        assert server is not None
        local = "://" not in self.source or self.source.startswith("file://")
        try:
            while not self.stopping:
                if local:
                    chunk = _take(items, 16)
                    await asyncio.sleep(0)
                else:
                    pending = loop.run_in_executor(None, _take, items, _CHUNK)
                    try:
                        chunk = await asyncio.shield(pending)
                    except asyncio.CancelledError:
                        with contextlib.suppress(Exception):
                            await pending  # the file and index stay open until it is done
                        raise
                if not chunk:
                    break
                for entry in chunk:
                    self.stats.rows += 1
                    if not isinstance(entry, RowError) and entry.id in self._settled:
                        continue  # delivered or refused by the vendor batch
                    if isinstance(entry, RowError):
                        self.stats.on_invalid()
                        server.failures.write(entry.row, entry.id, str(entry), line=entry.line,
                                              raw=entry.raw)
                        self.reporter.message(f"skipped: {entry}")
                        continue
                    await queue.put(entry)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a reader crash ends the run, never hangs it
            why = exc if isinstance(exc, InputError | OSError) else (
                f"{type(exc).__name__}: {exc}")
            self.error = redact(f"reading {self.source} failed: {why}")
            self.reporter.message(self.error)
            self.request_stop("input error")
            return
        for _ in self._workers:
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[BatchItem | None]) -> None:
        server = self._server
        assert server is not None
        task = asyncio.current_task()
        assert task is not None
        while not self.stopping:
            item = await queue.get()
            if item is None:
                return
            self._busy.add(task)
            try:
                await server.serve(item)
            except asyncio.CancelledError:
                self.stats.interrupted += 1
                raise
            except FatalStorageError as exc:
                self._fatal(exc)
            except OSError as exc:  # the manifest or failures file cannot be written
                self._fatal(FatalStorageError(str(exc)))
            except Exception as exc:  # a bug on one item: record, go on
                log.exception("item %s failed unexpectedly", item.id)
                try:
                    server.fail_unexpectedly(item, exc)
                except OSError as again:
                    self._fatal(FatalStorageError(str(again)))
            finally:
                self._busy.discard(task)
            self.reporter.update(self.stats)
            await server.room_to_write()

    def _renew(self, lock: OutputLock) -> None:
        assert self._server is not None
        self._server.storage.run_in_pool(lock.renew).add_done_callback(_renewed)

    async def _tick(self, manifest: Manifest) -> None:
        while True:
            await asyncio.sleep(0.25)
            manifest.tick()
            if self._lock is not None and self._lock.renew_due():
                self._renew(self._lock)
            self.reporter.update(self.stats)


def _renewed(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("renewing the output lock failed: %s", future.exception())


def _take(items: Iterator[BatchItem | RowError], count: int) -> list[BatchItem | RowError]:
    return list(itertools.islice(items, count))
