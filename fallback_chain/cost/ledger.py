"""``Ledger``: every attempt, appended to a SQLite file, for cost reports and audits.

Subscribe it to a chain (``Chain(..., on_event=ledger)`` or ``chain.events.subscribe(ledger)``).
It is called on the event loop's hot path, so it never commits per row: rows are buffered and
written in one transaction when ``batch_size`` rows are waiting, when a request finishes and
``flush_interval_s`` has passed since the last write, on any query, on ``flush()``/``close()``,
and at interpreter exit. The database runs in WAL mode, so each batch is atomic: after a crash
the file is consistent and holds every batch written before it (rows still in the buffer are
lost; at most ``batch_size`` rows or ``flush_interval_s`` of requests).

Schema (table ``attempts``, ``PRAGMA user_version = 2``)::

    id                 INTEGER PRIMARY KEY
    chain              TEXT    chain name
    request_id         TEXT
    provider           TEXT    provider name in the chain
    model              TEXT
    attempt            INTEGER 1-based, per provider within the request
    outcome            TEXT    an Outcome value ("success", "rate_limited", ...)
    status_code        INTEGER HTTP status, if any
    provider_code      TEXT    the vendor's error code, if any
    latency_s          REAL
    estimated_cost_usd REAL    what was expected before the call (NULL: unknown)
    cost_usd           REAL    the settled cost
    cost_source        TEXT    "reported" | "estimated" | "none"
    started_at         TEXT    UTC, ISO 8601 "YYYY-MM-DDTHH:MM:SS.ffffffZ" (sorts as text)
    metadata           TEXT    the request's metadata as JSON (NULL when empty)
    user               TEXT    the request's user (quotas; NULL when none)       [version 2]
    project            TEXT    the request's project (NULL when none)            [version 2]

A version 1 ledger is migrated when opened for writing or reading: the two tenant columns
are added (NULL for the rows already there), in one transaction.

No API key is written: an ``Attempt`` carries none, messages are not stored, and the metadata
JSON passes through :func:`fallback_chain.secrets.redact`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..events import AttemptFinished, Event, RequestFinished
from ..results import Attempt
from ..secrets import redact

log = logging.getLogger("fallback_chain")

SCHEMA_VERSION = 2
COLUMNS = ("chain", "request_id", "provider", "model", "attempt", "outcome", "status_code",
           "provider_code", "latency_s", "estimated_cost_usd", "cost_usd", "cost_source",
           "started_at", "metadata", "user", "project")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    chain TEXT NOT NULL,
    request_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    status_code INTEGER,
    provider_code TEXT,
    latency_s REAL NOT NULL,
    estimated_cost_usd REAL,
    cost_usd REAL NOT NULL,
    cost_source TEXT NOT NULL,
    started_at TEXT NOT NULL,
    metadata TEXT,
    user TEXT,
    project TEXT
);
CREATE INDEX IF NOT EXISTS attempts_started_at ON attempts (started_at);
CREATE INDEX IF NOT EXISTS attempts_request_id ON attempts (request_id);
"""
#: Version 1 to 2: the tenant columns.
_MIGRATE_1 = """
ALTER TABLE attempts ADD COLUMN user TEXT;
ALTER TABLE attempts ADD COLUMN project TEXT;
"""
_INSERT = (f"INSERT INTO attempts ({', '.join(COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in COLUMNS)})")

Row = tuple[Any, ...]
When = date | datetime | str | None


class Ledger:
    """An append-only SQLite record of attempts; an event subscriber. See the module docstring.

    ``create=False`` opens an existing ledger only (``FileNotFoundError`` otherwise), e.g. for
    reports. ``max_buffer`` bounds memory if the disk refuses writes: beyond it the oldest
    buffered rows are dropped with a warning.
    """

    def __init__(self, path: str | os.PathLike[str], *, batch_size: int = 100,
                 flush_interval_s: float = 1.0, create: bool = True,
                 max_buffer: int = 100_000) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise FileNotFoundError(f"no ledger at {self.path}")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max(max_buffer, batch_size)
        self._buffer: list[Row] = []
        self._lock = threading.RLock()
        self._last_flush = time.monotonic()
        self._conn: sqlite3.Connection | None = self._connect()
        _LIVE.add(self)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=10.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} has ledger schema {version}; this version of "
                                   f"fallback-chain reads up to {SCHEMA_VERSION}")
            if version == 1:
                conn.executescript(f"BEGIN IMMEDIATE;{_MIGRATE_1}"
                                   f"PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
            elif version < SCHEMA_VERSION:
                conn.executescript(f"BEGIN;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
        except BaseException:
            conn.close()
            raise
        return conn

    # --------------------------------------------------------------------------- writing

    def __call__(self, event: Event) -> None:
        """The event subscriber: records ``AttemptFinished``; ``RequestFinished`` may flush."""
        if isinstance(event, AttemptFinished):
            self.record(event.chain, event.request_id, event.attempt, event.metadata,
                        user=event.user, project=event.project)
        elif isinstance(event, RequestFinished) and self._buffer and (
                time.monotonic() - self._last_flush >= self.flush_interval_s):
            self.flush()

    def record(self, chain: str, request_id: str, attempt: Attempt,
               metadata: Mapping[str, Any] | None = None, *, user: str | None = None,
               project: str | None = None) -> None:
        """Buffer one attempt (flushes when ``batch_size`` rows are waiting)."""
        row = _row(chain, request_id, attempt, metadata, user, project)
        with self._lock:
            if self._conn is None:
                raise RuntimeError(f"ledger {self.path} is closed")
            self._buffer.append(row)
            if len(self._buffer) >= self.batch_size:
                self.flush()

    def flush(self) -> int:
        """Write buffered rows in one transaction; returns how many were written."""
        with self._lock:
            if not self._buffer or self._conn is None:
                return 0
            rows = self._buffer
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if len(rows) > self.max_buffer:
                    log.warning("ledger %s: dropping %d unwritten rows", self.path,
                                len(rows) - self.max_buffer)
                    del rows[:len(rows) - self.max_buffer]
                raise
            self._buffer = []
            self._last_flush = time.monotonic()
            return len(rows)

    @property
    def pending(self) -> int:
        """Rows buffered but not yet written."""
        return len(self._buffer)

    def close(self) -> None:
        """Write what is buffered and close the file. Idempotent."""
        with self._lock:
            if self._conn is None:
                return
            try:
                self.flush()
            finally:
                self._conn.close()
                self._conn = None
                _LIVE.discard(self)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------------------- reading

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            if self._conn is None:
                raise RuntimeError(f"ledger {self.path} is closed")
            self.flush()
            return self._conn.execute(sql, params)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only SQL statement over the ledger (after flushing the buffer)."""
        return self._read(sql, params).fetchall()

    def rows(self, *, since: When = None, until: When = None, request_id: str | None = None,
             provider: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Attempts as dicts (``metadata`` decoded), oldest first; ``until`` is exclusive."""
        return list(self._iter_rows(since=since, until=until, request_id=request_id,
                                    provider=provider, limit=limit))

    def _iter_rows(self, *, since: When = None, until: When = None,
                   request_id: str | None = None, provider: str | None = None,
                   limit: int | None = None) -> Iterator[dict[str, Any]]:
        where, params = where_clause(since=since, until=until)
        if request_id is not None:
            where.append("request_id = ?")
            params.append(request_id)
        if provider is not None:
            where.append("provider = ?")
            params.append(provider)
        sql = f"SELECT id, {', '.join(COLUMNS)} FROM attempts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cursor = self._read(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else {}
            yield row

    def total_usd(self, *, since: When = None, until: When = None) -> float:
        """Settled cost of every attempt in the window."""
        where, params = where_clause(since=since, until=until)
        sql = "SELECT COALESCE(SUM(cost_usd), 0) FROM attempts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return float(self._read(sql, tuple(params)).fetchone()[0])

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM attempts").fetchone()[0])

    def export_jsonl(self, path: str | os.PathLike[str], *, since: When = None,
                     until: When = None) -> int:
        """Write the attempts as JSON Lines (one object per attempt); returns the row count."""
        n = 0
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for row in self._iter_rows(since=since, until=until):
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                n += 1
        os.replace(tmp, target)
        return n

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"{self.pending} pending"
        return f"Ledger({str(self.path)!r}, {state})"


# ----------------------------------------------------------------------------- helpers

def format_time(when: datetime) -> str:
    """UTC ISO 8601 with microseconds and ``Z``: the ledger's sortable time format."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_bound(when: date | datetime | str) -> str:
    """A ``started_at`` bound: a date (``2026-01-31``) or a datetime (naive means UTC)."""
    if isinstance(when, datetime):
        return format_time(when)
    if isinstance(when, date):
        return when.isoformat()
    text = when.strip()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        return format_time(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"{when!r} is not a date (YYYY-MM-DD) or ISO datetime") from None


def where_clause(*, since: When = None, until: When = None) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``started_at`` for ``since`` (inclusive) and ``until`` (exclusive)."""
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append("started_at >= ?")
        params.append(time_bound(since))
    if until is not None:
        where.append("started_at < ?")
        params.append(time_bound(until))
    return where, params


def _row(chain: str, request_id: str, a: Attempt, metadata: Mapping[str, Any] | None,
         user: str | None = None, project: str | None = None) -> Row:
    meta = redact(json.dumps(metadata, sort_keys=True, default=str)) if metadata else None
    return (chain, request_id, a.provider, a.model, a.attempt, str(a.outcome.value),
            a.status_code, a.provider_code, float(a.latency_s), a.estimated_cost_usd,
            float(a.cost_usd), a.cost_source, format_time(a.started_at), meta, user, project)


#: Open ledgers, flushed and closed at interpreter exit (a ledger leaves it on ``close()``).
_LIVE: set[Ledger] = set()


@atexit.register
def _close_all() -> None:  # pragma: no cover - runs at interpreter exit
    for ledger in list(_LIVE):
        try:
            ledger.close()
        except Exception:
            log.exception("ledger %s: final flush failed", ledger.path)
