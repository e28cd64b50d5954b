"""Vendor batch jobs of the emulator (OpenAI Batches, Gemini Batch Mode), with their faults.

A job holds its requests as submitted; it finishes once it has been looked at ``polls`` times
and ``delay_s`` seconds of the emulator's clock have passed (so a test decides how slow a job
is without waiting: ``polls=10**9`` is a job that never finishes by itself). Then every item
gets its answer, decided by :class:`BatchFaults`:

* ``refuse_words``: an item whose prompt contains one of these words is refused on content
  grounds (the demo's "a prompt that the safety system refuses");
* ``error_rate``: the share of items that fail with a server error (seeded by the item's id);
* ``expire``: the job ends ``expired``; only ``done_fraction`` of its items were done;
* ``fail``: the whole job fails (nothing is done, nothing billed);
* ``malformed_lines``: the first N result lines are garbled (not JSON);
* ``cancel``: a job cancelled before it finished keeps ``done_fraction`` of its items done.

``emu.batches.configure(polls=3, error_rate=0.2)`` sets them; ``emu.batches.jobs`` lists the
jobs; every batch request is in the emulator's log (endpoints ``batch_create``,
``batch_get``, ``batch_cancel``, ``batch_list``, ``file_upload``, ``file_content``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .state import EmulatorState

#: Terminal states (the vendors' own names are mapped onto these).
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True)
class BatchFaults:
    """How the emulated batch jobs behave (see the module docstring)."""

    polls: int = 1
    delay_s: float = 0.0
    refuse_words: tuple[str, ...] = ("refuses",)
    error_rate: float = 0.0
    expire: bool = False
    fail: bool = False
    malformed_lines: int = 0
    done_fraction: float = 0.5
    seed: int = 0


@dataclass
class ItemAnswer:
    """What became of one item: ``ok`` (its answer), ``refused``, ``error``, or not done
    (``expired`` / ``cancelled``)."""

    custom_id: str
    kind: str
    body: dict[str, Any] | None = None


@dataclass
class EmulatedJob:
    id: str
    vendor: str
    model: str | None
    label: str  # OpenAI metadata / Gemini displayName
    requests: list[tuple[str, dict[str, Any]]]  # (custom id, request body)
    created: float
    faults: BatchFaults
    extra: dict[str, Any] = field(default_factory=dict)
    state: str = "running"
    looks: int = 0
    finished_at: float | None = None
    answers: list[ItemAnswer] = field(default_factory=list)


class BatchJobs:
    """The batch jobs of one emulator, shared by the OpenAI and Gemini batch APIs."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.faults = BatchFaults()
        self._jobs: dict[str, EmulatedJob] = {}
        #: Called on reset, after the jobs are forgotten (the OpenAI files forget theirs).
        self.on_reset: list[Callable[[], None]] = []
        state.resets.append(self.reset)  # the admin API's reset forgets the jobs too
        self._lock = threading.Lock()
        #: Called with the job when one is created (``"create"``) or looked at (``"look"``),
        #: before the answer is sent: a test can kill its client at that moment.
        self.hooks: dict[str, Callable[[EmulatedJob], None]] = {}

    def configure(self, faults: BatchFaults | None = None, **changes: Any) -> BatchFaults:
        """Set the faults of jobs created from now on (``configure(polls=5)``)."""
        self.faults = replace(faults or BatchFaults(), **changes)
        return self.faults

    @property
    def jobs(self) -> list[EmulatedJob]:
        with self._lock:
            return list(self._jobs.values())

    def reset(self) -> None:
        """Forget every job (and, through ``on_reset``, the files uploaded for them)."""
        with self._lock:
            self._jobs.clear()
        for forget in self.on_reset:
            forget()

    def create(self, vendor: str, model: str | None, label: str,
               requests: list[tuple[str, dict[str, Any]]], **extra: Any) -> EmulatedJob:
        prefix = "batch_" if vendor == "openai" else "batches/"
        job = EmulatedJob(prefix + self.state.ids.hex(12), vendor, model, label, requests,
                          self.state.clock.now(), self.faults, dict(extra))
        if job.faults.fail:
            job.state = "failed"
            job.finished_at = self.state.clock.wall()
        with self._lock:
            self._jobs[job.id] = job
        self._hook("create", job)
        return job

    def get(self, job_id: str) -> EmulatedJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def look(self, job: EmulatedJob, answer: Any) -> EmulatedJob:
        """One more look at ``job`` (a poll): it finishes when it has been slow enough.
        ``answer(body)`` answers one request: ``("ok" | "refused" | "error", body)``."""
        with self._lock:
            job.looks += 1
            if job.state != "running":
                return job  # no hook: the job was over before this look
            waited = self.state.clock.now() - job.created
            if job.looks >= job.faults.polls and waited >= job.faults.delay_s:
                self._finish(job, "expired" if job.faults.expire else "completed", answer)
        self._hook("look", job)
        return job

    def _hook(self, event: str, job: EmulatedJob) -> None:
        hook = self.hooks.get(event)
        if hook is not None:
            hook(job)

    def cancel(self, job: EmulatedJob, answer: Any) -> EmulatedJob:
        with self._lock:
            if job.state == "running":
                self._finish(job, "cancelled", answer)
        return job

    def _finish(self, job: EmulatedJob, state: str, answer: Any) -> None:
        faults = job.faults
        done = len(job.requests)
        if state != "completed":
            done = int(len(job.requests) * faults.done_fraction)
        for i, (custom_id, body) in enumerate(job.requests):
            if i >= done:
                job.answers.append(ItemAnswer(custom_id, state))
                continue
            rng = random.Random(f"{faults.seed}/{job.id}/{custom_id}")
            refuse = refused(body, faults)  # about the prompt: refused whatever else happens
            if not refuse and faults.error_rate and rng.random() < faults.error_rate:
                job.answers.append(ItemAnswer(custom_id, "error"))
                continue
            kind, result = answer(body, refuse)
            job.answers.append(ItemAnswer(custom_id, kind, result))
        job.state = state
        job.finished_at = self.state.clock.wall()



def refused(body: dict[str, Any], faults: BatchFaults) -> bool:
    """Whether the request's prompt has one of the words ``faults`` refuses."""
    text = _text_of(body).lower()
    return any(word.lower() in text for word in faults.refuse_words)


def _text_of(body: Any) -> str:
    """Every string in a request body (the prompt, wherever the vendor puts it)."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        return " ".join(_text_of(v) for v in body.values())
    if isinstance(body, list):
        return " ".join(_text_of(v) for v in body)
    return ""
