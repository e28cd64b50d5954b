"""The manifest of a queued batch, assembled from the sidecars by ``batch --queue`` alone.

No worker writes the manifest (no file is written by many machines): when every item of the
job has an outcome, the enqueuing side reads the input once more and, for each item, the
sidecar in storage (delivered: the sidecar is the truth) or the job's outcome (failed), and
appends one record per item to the manifest (``manifest.jsonl`` locally, a segment under
``manifest/`` on an object store; see :mod:`fallback_chain.batch.manifest`). The same pass
fills the run's statistics (attempts, costs, latencies per provider) and the failures file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..batch.items import BatchItem, RowError
from ..batch.naming import sidecar_name
from ..batch.sidecar import iso
from ..results import Attempt
from .serve import stored_sidecar

if TYPE_CHECKING:
    from ..batch.failures import FailuresWriter
    from ..batch.manifest import Manifest
    from ..batch.stats import BatchStats
    from ..batch.storage import Storage
    from .jobs import Jobs


async def assemble(items: Iterator[BatchItem | RowError], storage: Storage, manifest: Manifest,
                   jobs: Jobs, job: str, stats: BatchStats, failures: FailuresWriter) -> int:
    """Record every item of the input in ``manifest``; returns how many have no outcome yet
    (the run was interrupted before they finished)."""
    unfinished = 0
    for entry in items:
        if isinstance(entry, RowError):
            continue
        outcome = jobs.outcome(job, entry.id)
        sidecar = await stored_sidecar(storage, entry)
        if sidecar is not None:
            _delivered(entry, sidecar, outcome, manifest, stats)
        elif outcome is not None and outcome.get("status") == "failed":
            _failed(entry, outcome, manifest, stats, failures)
        else:
            unfinished += 1
    return unfinished


def _delivered(item: BatchItem, sidecar: dict[str, Any], outcome: dict[str, Any] | None,
               manifest: Manifest, stats: BatchStats) -> None:
    how = "skipped" if outcome is None else str(outcome.get("how", "generated"))
    files = [im["file"] for im in sidecar["images"]]
    manifest.append({
        "type": "item", "id": item.id, "status": "delivered", "how": how, "key": item.key,
        "sidecar": sidecar_name(item.name), "files": files, "provider": sidecar.get("provider"),
        "model": sidecar.get("model"), "cost_usd": sidecar.get("cost_usd", 0.0),
        "line": item.line, "at": sidecar.get("finished_at"), "worker": sidecar.get("worker")})
    if how == "skipped":
        return  # counted by the enqueuer (delivered by an earlier run)
    stats.delivered += 1
    stats.images += len(files)
    if how == "recovered":
        stats.recovered += 1
        return
    stats.generated += 1
    stats.latency.add(float(sidecar.get("latency_s") or 0.0))
    for attempt in sidecar.get("attempts") or []:
        stats.on_attempt(Attempt.model_validate(attempt))


def _failed(item: BatchItem, outcome: dict[str, Any], manifest: Manifest, stats: BatchStats,
            failures: FailuresWriter) -> None:
    reason = str(outcome.get("reason") or "error")
    error = str(outcome.get("error") or reason)
    record = {k: v for k, v in outcome.items() if k not in ("row", "status", "how", "worker")}
    manifest.append({"type": "item", "id": item.id, "status": "failed", "key": item.key,
                     "line": item.line, **record, "reason": reason, "error": error,
                     "at": iso(time.time())})
    stats.on_failed(reason)
    for attempt in outcome.get("attempts") or []:
        stats.on_attempt(Attempt.model_validate(attempt))
    failures.write(item.row, item.id, error)
