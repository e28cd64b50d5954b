"""The per-request log: what the emulator was asked and what it answered.

Tests read it to count attempts from the server's side (``emu.log.count(vendor="openai")``).
It is thread-safe and bounded (oldest entries are dropped past ``max_entries``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class RequestInfo:
    """Filled in while a request is handled; becomes a ``LogEntry`` when it finishes."""

    method: str
    path: str
    vendor: str | None = None
    endpoint: str | None = None
    model: str | None = None
    prompt: str | None = None
    fault: str | None = None
    params: dict[str, Any] | None = None
    status: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    drawn: str | None = None
    input_images: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One request as the server saw it.

    ``status`` is None when no response head was sent (reset, hang). ``params`` holds the
    request's JSON body or form fields (file parts as ``{"filename", "content_type", "size"}``).
    ``fault`` is the kind applied; ``drawn`` the alias it was drawn as (``5xx``, ``malformed``).
    ``input_images`` is the hex SHA-256 of each image the request carried, in the order sent
    (Gemini: every ``inlineData`` part of every turn; OpenAI edits: the ``image`` parts, not
    the mask), so a test can tell which image an edit was given.
    """

    seq: int
    time: float
    vendor: str
    endpoint: str
    method: str
    path: str
    model: str | None
    status: int | None
    fault: str | None
    latency_ms: float
    prompt: str | None
    params: Mapping[str, Any] | None
    drawn: str | None = None
    input_images: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["params"] = dict(self.params) if self.params is not None else None
        out["input_images"] = list(self.input_images)
        return out


class RequestLog:
    """An append-only, bounded, thread-safe list of ``LogEntry``."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._lock = threading.Lock()
        self._seq = 0

    def record(self, info: RequestInfo, *, time: float, latency_ms: float) -> LogEntry:
        with self._lock:
            self._seq += 1
            entry = LogEntry(
                seq=self._seq, time=time, vendor=info.vendor or "unknown",
                endpoint=info.endpoint or "unknown", method=info.method, path=info.path,
                model=info.model, status=info.status, fault=info.fault,
                latency_ms=round(latency_ms, 3), prompt=info.prompt, params=info.params,
                drawn=info.drawn, input_images=info.input_images)
            self._entries.append(entry)
            return entry

    def entries(self, *, vendor: str | None = None, endpoint: str | None = None,
                model: str | None = None, since: int = 0) -> list[LogEntry]:
        """Entries matching every filter given, oldest first; ``since`` is a ``seq``."""
        with self._lock:
            snapshot = list(self._entries)
        return [e for e in snapshot
                if (vendor is None or e.vendor == vendor)
                and (endpoint is None or e.endpoint == endpoint)
                and (model is None or e.model == model) and e.seq > since]

    def count(self, *, vendor: str | None = None, endpoint: str | None = None,
              model: str | None = None) -> int:
        return len(self.entries(vendor=vendor, endpoint=endpoint, model=model))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
