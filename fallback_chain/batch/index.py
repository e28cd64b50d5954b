"""The run's working index, in a temporary SQLite file so that memory does not grow with the
number of items: ids already seen in the input (duplicates), what the manifest says about each
item, and which request (by generation key) was delivered as which item (for sharing).

It is rebuilt from the manifest at every start; losing it loses nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_SCHEMA = """
CREATE TABLE seen (id TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE state (id TEXT PRIMARY KEY, status TEXT NOT NULL, reason TEXT, error TEXT)
    WITHOUT ROWID;
CREATE TABLE delivered (key TEXT PRIMARY KEY, id TEXT NOT NULL, sidecar TEXT NOT NULL)
    WITHOUT ROWID;
CREATE TABLE keys (key TEXT PRIMARY KEY, id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE refused (key TEXT PRIMARY KEY, id TEXT NOT NULL, reason TEXT NOT NULL,
    error TEXT NOT NULL) WITHOUT ROWID;
"""
_COMMIT_EVERY = 2000
log = logging.getLogger("fallback_chain.batch")


@dataclass(frozen=True, slots=True)
class ItemState:
    status: str  # "delivered" or "failed"
    reason: str | None = None
    error: str | None = None


class BatchIndex:
    """Every call is a few microseconds. Thread-safe: the reader claims ids in a worker
    thread while the event loop looks up states."""

    def __init__(self, directory: str | None = None) -> None:
        self._dir = tempfile.mkdtemp(prefix="fallback-chain-batch-", dir=directory)
        self._db = sqlite3.connect(os.path.join(self._dir, "index.sqlite3"),
                                   isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE",
                       "cache_size=-4096"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN")
        self._pending = 0
        self._lock = threading.RLock()
        self.loaded_items = 0  # item records taken from the manifest (see ``load``)
        self.loaded_delivered = 0
        self.refusals = 0  # requests refused in this run (see ``add_refused``)

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        with self._lock:
            self._db.execute(sql, args)
            self._pending += 1
            if self._pending >= _COMMIT_EVERY:
                self._db.execute("COMMIT")
                self._db.execute("BEGIN")
                self._pending = 0

    def _insert(self, sql: str, args: tuple[object, ...]) -> bool:
        """Run an ``INSERT OR IGNORE``; True when it inserted."""
        with self._lock:
            inserted = self._db.execute(sql, args).rowcount > 0
            self._pending += 1
            if self._pending >= _COMMIT_EVERY:
                self._db.execute("COMMIT")
                self._db.execute("BEGIN")
                self._pending = 0
            return inserted

    def _one(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        with self._lock:
            row: tuple[object, ...] | None = self._db.execute(sql, args).fetchone()
            return row

    # ------------------------------------------------------------------ ids in the input

    def claim(self, item_id: str, line: int) -> int | None:
        """Take ``item_id`` for the row on ``line``: ``None`` if it was free, else the line of
        the row that has it."""
        try:
            self._write("INSERT INTO seen VALUES (?, ?)", (item_id, line))
        except sqlite3.IntegrityError:
            row = self._one("SELECT line FROM seen WHERE id = ?", (item_id,))
            return int(row[0]) if row else 0  # type: ignore[call-overload]
        return None

    def claim_derived(self, base: str, line: int) -> str:
        """Take ``base``, or ``base-2``, ``base-3``... for identical rows without an id."""
        if self.claim(base, line) is None:
            return base
        k = 2
        while self.claim(f"{base}-{k}", line) is not None:
            k += 1
        return f"{base}-{k}"

    def claim_key(self, key: str, item_id: str) -> bool:
        """Note generation ``key`` in the input: True for its first row, False for the rows
        after it (identical requests, which may share the first one's images)."""
        return self._insert("INSERT OR IGNORE INTO keys VALUES (?, ?)", (key, item_id))

    def first_with_key(self, key: str) -> str | None:
        """The id of the input's first row with generation ``key``."""
        row = self._one("SELECT id FROM keys WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ item states

    def set_state(self, item_id: str, state: ItemState) -> None:
        self._write("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?)",
                    (item_id, state.status, state.reason, state.error))

    def state(self, item_id: str) -> ItemState | None:
        row = self._one("SELECT status, reason, error FROM state WHERE id = ?", (item_id,))
        return None if row is None else ItemState(*row)  # type: ignore[arg-type]

    def load(self, records: Iterable[dict[str, Any]]) -> int:
        """Take in the manifest's records (the last record of an id wins); sets
        ``loaded_items`` and ``loaded_delivered`` and returns the number of item records."""
        count = delivered = 0
        for record in records:
            item_id = record.get("id")
            if record.get("type") != "item" or not isinstance(item_id, str):
                continue
            if not _storable(record):  # a lone surrogate: SQLite takes UTF-8 text only
                log.warning("manifest record %.80r skipped: not valid Unicode", item_id)
                continue
            count += 1
            if record.get("status") == "delivered":
                delivered += 1
                self.set_state(item_id, ItemState("delivered"))
                key, sidecar = record.get("key"), record.get("sidecar")
                if isinstance(key, str) and isinstance(sidecar, str):
                    self.add_delivered(key, item_id, sidecar)
            else:
                self.set_state(item_id, ItemState("failed", _text(record.get("reason")),
                                                  _text(record.get("error"))))
        self.loaded_items += count
        self.loaded_delivered += delivered
        return count

    # ------------------------------------------------------------------ sharing

    def add_delivered(self, key: str, item_id: str, sidecar: str) -> None:
        self._write("INSERT OR IGNORE INTO delivered VALUES (?, ?, ?)", (key, item_id, sidecar))

    def forget_delivered(self, key: str) -> None:
        self._write("DELETE FROM delivered WHERE key = ?", (key,))

    def delivered(self, key: str) -> tuple[str, str] | None:
        """``(item id, sidecar name)`` of an item already delivered for generation ``key``."""
        row = self._one("SELECT id, sidecar FROM delivered WHERE key = ?", (key,))
        return None if row is None else (str(row[0]), str(row[1]))

    def add_refused(self, key: str, item_id: str, reason: str, error: str) -> None:
        """Generation ``key`` was refused in this run (never loaded from the manifest, so a
        re-run tries a refused request again once)."""
        self._write("INSERT OR IGNORE INTO refused VALUES (?, ?, ?, ?)",
                    (key, item_id, reason, error))
        self.refusals += 1

    def refused(self, key: str) -> tuple[str, str, str] | None:
        """``(item id, reason, error)`` of an item refused for generation ``key`` this run."""
        row = self._one("SELECT id, reason, error FROM refused WHERE key = ?", (key,))
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def close(self) -> None:
        try:
            with self._lock:
                self._db.close()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> BatchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _storable(record: dict[str, Any]) -> bool:
    """Whether the record's strings encode to UTF-8 (a hand-edited manifest may hold
    ``"\\ud800"``, which decodes to a lone surrogate)."""
    try:
        for name in ("id", "key", "sidecar", "reason", "error"):
            value = record.get(name)
            if isinstance(value, str):
                value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: object) -> str | None:
    return None if value is None else str(value)
