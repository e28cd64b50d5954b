"""What the emulated job APIs share (submit, then poll, then fetch expiring files: Leonardo,
fal, Black Forest Labs, Replicate): a job's fate chosen by the fault on its submission, its
seed, how many images a ``fewer_images`` fault leaves, how long its URLs live, the job
store's lookups and the ``Retry-After`` of a fault's 429.

Vendor modules subclass :class:`JobsAPI` instead of :class:`~.common.VendorAPI`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fallback_chain.imaging import seed_for

from .common import VendorAPI, retry_after_headers
from .faults import Fault, Rule

__all__ = ["JobsAPI", "fate_of", "images_left", "prompt_of", "seed_of", "url_ttl"]

J = TypeVar("J")


def fate_of(fault: Fault | None, fates: Mapping[str, str], default: str) -> str:
    """The job's fate: what ``fates`` maps the submission's fault kind to, else ``default``."""
    return fates.get(fault.kind, default) if fault else default


def seed_of(seed: Any, prompt: str) -> int:
    """The seed asked for, else one derived from the prompt (as the vendors draw one)."""
    return seed if isinstance(seed, int) else seed_for(prompt) % 2_147_483_637


def images_left(asked: int, fate: str, fault_count: int | None) -> int:
    """How many images a job delivers: all it was asked for, or fewer under ``fewer_images``
    (the fault's ``count``, default one less)."""
    if fate != "fewer":
        return asked
    wanted = fault_count if fault_count is not None else asked - 1
    return max(0, min(wanted, asked - 1))


def url_ttl(fate: str, rule: Rule) -> float:
    """How long a job's file URLs live (none under ``expired``)."""
    return 0.0 if fate == "expired" else rule.url_ttl_s


def prompt_of(data: Any) -> str | None:
    """The ``prompt`` field of a JSON object, if it is a string."""
    prompt = data.get("prompt") if isinstance(data, dict) else None
    return prompt if isinstance(prompt, str) else None


class JobsAPI(VendorAPI):
    """A :class:`~.common.VendorAPI` whose requests create jobs in the emulator's store."""

    def find_job(self, key: str, kind: type[J]) -> J | None:
        """The stored job under ``key`` if it is one of this API's (``kind``)."""
        with self.state.jobs_lock:
            job = self.state.jobs.get(key)
        return job if isinstance(job, kind) else None

    def retry_seconds(self, fault: Fault, rule: Rule) -> float:
        return fault.retry_after if fault.retry_after is not None else rule.retry_after

    def retry_headers(self, fault: Fault, rule: Rule, status: int) -> dict[str, str]:
        """The ``Retry-After`` headers of a fault's answer with ``status`` (none but on 429)."""
        if status != 429:
            return {}
        fmt = fault.retry_after_format or rule.retry_after_format
        return retry_after_headers(fmt, self.retry_seconds(fault, rule),
                                   self.state.clock.wall())
