"""Batch generation: a CSV or JSONL file of requests into a folder or bucket of images, through
one shared ``Chain``, resumably. See ``docs/batch.md``.

* ``run_batch(chain, source, out, BatchOptions(...))`` runs a batch and returns a
  ``BatchSummary``; re-running with the same ``out`` resumes.
* ``dry_run(chain_steps(chain), source, out=...)`` validates and prices a batch, calling no
  provider.
* ``safe_name(id)`` is the output name of an id (never outside the output folder).

Names load on first use, so importing this package costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .engine import BatchOptions, run_batch
    from .items import BatchItem, RowError
    from .naming import safe_name
    from .pricing import DryRunReport, chain_steps, dry_run
    from .progress import Reporter, make_reporter
    from .reader import InputError
    from .stats import BatchSummary
    from .storage import StorageError

__all__ = ["BatchItem", "BatchOptions", "BatchSummary", "DryRunReport", "InputError",
           "Reporter", "RowError", "StorageError", "chain_steps", "dry_run", "make_reporter",
           "run_batch", "safe_name"]

_WHERE = {
    "BatchOptions": ".engine", "run_batch": ".engine",
    "BatchItem": ".items", "RowError": ".items",
    "safe_name": ".naming",
    "DryRunReport": ".pricing", "chain_steps": ".pricing", "dry_run": ".pricing",
    "Reporter": ".progress", "make_reporter": ".progress",
    "InputError": ".reader",
    "BatchSummary": ".stats",
    "StorageError": ".storage",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
