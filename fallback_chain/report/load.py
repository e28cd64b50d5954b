"""Read a batch output folder (local or any fsspec URL) into :class:`BatchView`: the
manifest's last record per item, each delivered item's sidecar, and the prompts of failed
items from the failures file when it lies in the folder."""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ..batch.manifest import Manifest
from ..batch.storage import Storage

log = logging.getLogger("fallback_chain.report")

#: Failures files looked for in the folder (``batch`` writes one in the input's format).
FAILURES_NAMES = ("failures.csv", "failures.jsonl")


@dataclass
class ReportItem:
    """One item of the batch as the report shows it."""

    id: str
    outcome: str  # delivered | reused | refused | failed
    provider: str | None = None
    model: str | None = None
    tenant: str | None = None
    prompt: str | None = None
    revised_prompt: str | None = None
    files: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    latency_s: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    error: str | None = None
    shared_from: str | None = None
    size: str | None = None


@dataclass
class BatchView:
    """Everything the report needs from one output folder."""

    location: str
    run: dict[str, Any]
    items: list[ReportItem]

    @property
    def delivered(self) -> list[ReportItem]:
        return [i for i in self.items if i.outcome in ("delivered", "reused")]

    @property
    def not_delivered(self) -> list[ReportItem]:
        return [i for i in self.items if i.outcome not in ("delivered", "reused")]


def load_batch(storage: Storage) -> BatchView:
    """Read the folder behind ``storage`` (blocking)."""
    manifest = Manifest(storage)
    run: dict[str, Any] = {}
    latest: dict[str, dict[str, Any]] = {}
    for record in manifest.records():
        if record.get("type") == "run":
            run = run or record
        elif record.get("type") == "item" and isinstance(record.get("id"), str):
            latest.pop(record["id"], None)  # keep the order of the last record of each id
            latest[record["id"]] = record
    prompts = _failure_prompts(storage)
    items = [_item(storage, record, prompts) for record in latest.values()]
    items.sort(key=lambda i: (i.outcome not in ("delivered", "reused"), _line(latest[i.id]),
                              i.id))
    return BatchView(storage.display(), run, items)


def _line(record: dict[str, Any]) -> int:
    line = record.get("line")
    return line if isinstance(line, int) else 1 << 30


def _tenant(*sources: dict[str, Any]) -> str | None:
    for source in sources:
        parts = [str(source[k]) for k in ("user", "project") if source.get(k)]
        if parts:
            return "/".join(parts)
    return None


def _item(storage: Storage, record: dict[str, Any],
          prompts: dict[str, str]) -> ReportItem:
    if record.get("status") == "delivered":
        sidecar = _sidecar(storage, record)
        shared = sidecar.get("shared") or {}
        return ReportItem(
            id=record["id"], outcome="reused" if shared else "delivered",
            provider=sidecar.get("provider", record.get("provider")),
            model=sidecar.get("model", record.get("model")),
            tenant=_tenant(sidecar, record), prompt=sidecar.get("prompt"),
            revised_prompt=sidecar.get("revised_prompt"),
            files=[str(f) for f in record.get("files") or
                   [im.get("file") for im in sidecar.get("images", [])] if f],
            cost_usd=float(sidecar.get("cost_usd", record.get("cost_usd")) or 0.0),
            latency_s=sidecar.get("latency_s"),
            attempts=list(sidecar.get("attempts") or []),
            shared_from=shared.get("from_id") if shared else None,
            size=sidecar.get("size_delivered"))
    moderation = record.get("moderation") or {}
    refused = record.get("reason") == "content_policy"
    attempts = list(record.get("attempts") or [])
    return ReportItem(
        id=record["id"], outcome="refused" if refused else "failed",
        provider=moderation.get("provider") or (attempts[-1].get("provider") if attempts
                                                else None),
        model=attempts[-1].get("model") if attempts else None,
        tenant=_tenant(record), prompt=record.get("prompt") or prompts.get(record["id"]),
        cost_usd=float(record.get("cost_usd") or 0.0), attempts=attempts,
        latency_s=sum(float(a.get("latency_s") or 0.0) for a in attempts) or None,
        reason=(moderation.get("reason") if refused else None) or record.get("reason"),
        error=record.get("error"))


def _sidecar(storage: Storage, record: dict[str, Any]) -> dict[str, Any]:
    name = record.get("sidecar")
    if not isinstance(name, str):
        return {}
    try:
        data = json.loads(storage.read_sync(*name.split("/")))
    except (OSError, ValueError) as exc:
        log.warning("%s: sidecar unreadable (%s)", name, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _failure_prompts(storage: Storage) -> dict[str, str]:
    prompts: dict[str, str] = {}
    for name in FAILURES_NAMES:
        try:
            text = storage.read_sync(name).decode("utf-8", "replace")
        except (OSError, ValueError):
            continue
        rows: Any = (csv.DictReader(io.StringIO(text)) if name.endswith(".csv")
                     else (_json_row(line) for line in text.splitlines() if line.strip()))
        for row in rows:
            if isinstance(row, dict) and row.get("id") and row.get("prompt"):
                prompts[str(row["id"])] = str(row["prompt"])
    return prompts


def _json_row(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None
