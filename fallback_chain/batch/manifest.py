"""The manifest: one JSON line per finished item (delivered or failed), in the output target,
so that running the same command again resumes.

* Local output: ``manifest.jsonl``, opened in append mode. Each record is one ``write`` of one
  whole line, so it is in the kernel's hands the moment the call returns: a SIGKILL cannot
  lose it or tear it (an fsync every second, and at the end, guards against power loss). A
  line torn by a crash of the machine is skipped when read.
* Object stores (no append): segments ``manifest/<run>-<seq>.jsonl``, one PUT each, written
  every ``flush_s`` seconds or ``flush_records`` records and at the end. A SIGKILL loses at
  most the last segment's records; the items they describe still have their sidecars, which is
  what resume checks for an item the manifest does not list.

Records: ``{"type": "run", ...}`` once per run, then ``{"type": "item", "id", "status":
"delivered" | "failed", ...}``. The last record of an id wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

from .storage import Storage, StorageError

log = logging.getLogger("fallback_chain.batch")

LOCAL_NAME = "manifest.jsonl"
SEGMENT_DIR = "manifest"
#: The longest record read back (ids are at most 1,000 characters; records are small).
MAX_RECORD_BYTES = 1 << 20


class Manifest:
    """Append-only record of finished items (see the module docstring)."""

    def __init__(self, storage: Storage, *, flush_s: float = 2.0, flush_records: int = 1000,
                 fsync_s: float = 1.0) -> None:
        self.storage = storage
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        self.flush_s = flush_s
        self.flush_records = flush_records
        self.fsync_s = fsync_s
        self._fd: int | None = None
        self._buffer: list[bytes] = []
        self._unwritten: list[bytes] = []
        self._buffer_since = 0.0
        self._seq = 0
        self._last_sync = time.monotonic()
        self._dirty = False
        self._flushing: asyncio.Future[None] | None = None
        self.torn_lines = 0

    @property
    def location(self) -> str:
        return self.storage.display(LOCAL_NAME if self.storage.local else SEGMENT_DIR)

    # ------------------------------------------------------------------ reading

    def records(self) -> Iterator[dict[str, Any]]:
        """Every readable record, oldest first (blocking; call before the run starts)."""
        if self.storage.local:
            path = self.storage.path(LOCAL_NAME)
            if os.path.lexists(path):
                with os.fdopen(_open_nofollow(path, os.O_RDONLY), "rb") as fh:
                    yield from self._parse(fh, path)
            return
        for name in self.storage.list_sync(SEGMENT_DIR):
            if name.endswith(".jsonl"):
                with self.storage.fs.open(self.storage.path(SEGMENT_DIR, name), "rb") as fh:
                    yield from self._parse(fh, name)

    def _parse(self, fh: Any, where: str) -> Iterator[dict[str, Any]]:
        for n, raw in enumerate(_lines(fh), start=1):
            if raw is not None and not raw.strip():
                continue
            try:
                record = None if raw is None else json.loads(raw)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                self.torn_lines += 1
                log.warning("%s, line %d: unreadable manifest record skipped", where, n)
                continue
            yield record

    # ------------------------------------------------------------------ writing

    def open(self) -> None:
        """Start appending (local: open the file, ending a torn last line first)."""
        if not self.storage.local:
            return
        path = self.storage.path(LOCAL_NAME)
        fd = _open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    os.write(fd, b"\n")
        self._fd = fd

    def append(self, record: dict[str, Any]) -> None:
        """Record one finished item (or the run header)."""
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":"),
                           default=str) + "\n").encode("utf-8", "surrogatepass")
        if self._fd is not None:
            view = memoryview(line)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._dirty = True
            if time.monotonic() - self._last_sync >= self.fsync_s:
                self._schedule_sync()
            return
        if not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.append(line)
        if (len(self._buffer) >= self.flush_records
                or time.monotonic() - self._buffer_since >= self.flush_s):
            self._schedule_segment()

    def tick(self) -> None:
        """Called periodically: flush a segment (or fsync) that has waited long enough."""
        now = time.monotonic()
        if self._fd is not None:
            if self._dirty and now - self._last_sync >= self.fsync_s:
                self._schedule_sync()
        elif self._buffer and now - self._buffer_since >= self.flush_s:
            self._schedule_segment()

    def _busy(self) -> bool:
        # one background flush at a time; the next tick or append catches up
        return self._flushing is not None and not self._flushing.done()

    def _schedule_sync(self) -> None:
        if self._busy():
            return
        self._last_sync = time.monotonic()
        self._dirty = False
        self._flushing = self.storage.run_in_pool(self._sync)
        self._flushing.add_done_callback(_report)

    def _schedule_segment(self) -> None:
        if self._busy():
            return
        batch, self._buffer = self._buffer, []
        self._flushing = self.storage.run_in_pool(self._write_segment, batch)
        self._flushing.add_done_callback(_report)

    def _sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def _write_segment(self, lines: list[bytes]) -> None:
        lines = self._unwritten + lines
        self._unwritten = []
        if not lines:
            return
        self._seq += 1
        name = f"{self.run_id}-{self._seq:06d}.jsonl"
        try:
            self.storage.write_sync(b"".join(lines), SEGMENT_DIR, name)
        except BaseException:
            self._unwritten = lines  # tried again with the next segment
            raise

    async def flush(self) -> None:
        """Make everything appended so far durable."""
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flushing)
        if self._fd is not None:
            self._dirty = False
            self._last_sync = time.monotonic()
            await self.storage.run_in_pool(self._sync)
        elif self._buffer or self._unwritten:
            batch, self._buffer = self._buffer, []
            await self.storage.run_in_pool(self._write_segment, batch)

    async def close(self) -> None:
        await self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _lines(fh: Any) -> Iterator[bytes | None]:
    """The lines of a binary file, read in bounded pieces (any file with ``read``: local or
    fsspec): a line longer than ``MAX_RECORD_BYTES`` (no record of ours is) comes out as
    ``None`` and is skipped, so a hostile 1 GiB line costs no more memory than a normal one."""
    pending = b""
    too_long = False
    while chunk := fh.read(_PIECE):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            line = pending + chunk[start:end + 1]
            pending = b""
            yield None if too_long or len(line) > MAX_RECORD_BYTES else line
            too_long = False
            start = end + 1
        pending += chunk[start:]
        if len(pending) > MAX_RECORD_BYTES:
            pending, too_long = b"", True
    if pending or too_long:
        yield None if too_long else pending


#: How much of a manifest is read at a time.
_PIECE = 1 << 16


def _open_nofollow(path: str, flags: int) -> int:
    """Open the local manifest, refusing a symbolic link (records appended through a link
    would land in whatever file it points to)."""
    try:
        return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        if os.path.islink(path):
            raise StorageError(f"{path} is a symbolic link; refusing to follow it (remove it, "
                               "or pass another --out)") from None
        raise StorageError(f"{path}: cannot open the manifest ({exc.strerror or exc})"
                           ) from None


def _report(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("writing the manifest failed: %s", future.exception())
