"""The vendor batch journal: ``OUT/.fallback-chain-vendor-batch.json``, rewritten atomically
at every step, so what was planned, submitted and collected survives a SIGKILL at any point.

Order of a job's life, each step saved before the next begins:

1. ``planned``: its label (a fresh random token), its provider and items (custom id -> item
   id) are saved *before* anything is sent. A run killed now finds the job by its label at
   the vendor (``BatchClient.find``) if the submission got through, else submits it.
2. ``submitted``: the vendor's job id and the time (the deadline counts from it).
3. ``finished``: the vendor says the job is over (completed, failed, expired, cancelled).
4. ``collected``: every answer was written (delivered and refused items are in the manifest;
   the others were left to the real-time chain). A later run does nothing more with it.

``outcomes`` keeps, per item id, ``delivered``, ``refused`` (with the vendor's words) or
``realtime`` (left to the chain), so a re-run reports refusals again without re-sending them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from ..storage import Storage

NAME = ".fallback-chain-vendor-batch.json"
VERSION = 1


@dataclass
class JobRecord:
    label: str
    vendor: str
    provider: str
    model: str
    items: dict[str, str]  # custom id -> item id
    state: str = "planned"  # planned | submitted | finished | collected
    job_id: str | None = None
    submitted_at: float | None = None  # wall clock
    final_state: str | None = None  # the vendor's: completed | failed | expired | cancelled
    error: str | None = None
    outcomes: dict[str, Any] = field(default_factory=dict)  # item id -> outcome

    @classmethod
    def new(cls, vendor: str, provider: str, model: str, items: dict[str, str]) -> JobRecord:
        return cls("fcb-" + secrets.token_hex(8), vendor, provider, model, items)


class Journal:
    """The jobs of one output (see the module docstring)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.jobs: list[JobRecord] = []

    def load(self) -> Journal:
        if not self.storage.exists_sync(NAME):
            return self
        data = json.loads(self.storage.read_sync(NAME))
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"{self.storage.display(NAME)}: not a vendor batch journal")
        self.jobs = [JobRecord(**job) for job in data.get("jobs") or []]
        return self

    async def save(self) -> None:
        doc = {"version": VERSION, "jobs": [asdict(job) for job in self.jobs]}
        await self.storage.write(json.dumps(doc, indent=1).encode(), NAME)

    def item_ids(self) -> set[str]:
        """Every item some job holds."""
        return {item for job in self.jobs for item in job.items.values()}

    def outcome(self, item_id: str) -> dict[str, Any] | None:
        """The last recorded outcome of ``item_id`` (``None``: none yet)."""
        for job in reversed(self.jobs):
            found = job.outcomes.get(item_id)
            if found is not None:
                return dict(found)
        return None
