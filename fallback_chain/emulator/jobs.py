"""What the emulated job APIs share (submit, then poll, then fetch expiring files: Leonardo,
fal, Black Forest Labs, Replicate): a job's fate chosen by the fault on its submission, its
seed, how many images a ``fewer_images`` fault leaves, how long its URLs live, the job
store's lookups and the ``Retry-After`` of a fault's 429.

Vendor modules subclass :class:`JobsAPI` instead of :class:`~.common.VendorAPI`
(:class:`DetailJobsAPI` when their errors are FastAPI's ``{"detail": ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from fallback_chain.imaging import seed_for

from .common import VendorAPI, json_response, retry_after_headers
from .faults import Fault, Rule

__all__ = ["DetailJobsAPI", "JobsAPI", "fate_of", "images_left", "prompt_of", "seed_of", "url_ttl"]

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


class DetailJobsAPI(JobsAPI):
    """A job API whose errors are FastAPI's ``{"detail": ...}`` (a string, or the 422
    validation list), as fal's and BFL's are: its quota and auth faults answer
    ``quota_answer`` / ``auth_answer`` (status, message), a fault's status answers with
    ``throttled_message`` on 429 and ``Internal Server Error`` otherwise."""

    quota_answer: ClassVar[tuple[int, str]]
    auth_answer: ClassVar[tuple[int, str]]
    throttled_message: ClassVar[str] = "Too many requests"

    def error(self, status: int, detail: Any, headers: dict[str, str] | None = None
              ) -> Response:
        return json_response({"detail": detail}, status, headers)

    def auth_message(self, model: str | None) -> str:
        return self.auth_answer[1]

    def error_for(self, fault: Fault, request: Request, model: str | None,
                  rule: Rule) -> Response | None:
        kind, status = fault.kind, fault.status
        if kind == "quota":
            return self.error(self.quota_answer[0], fault.message or self.quota_answer[1])
        if kind == "auth":
            return self.error(self.auth_answer[0], fault.message or self.auth_message(model))
        if status is not None:
            message = fault.message or (self.throttled_message if status == 429
                                        else "Internal Server Error")
            return self.error(status, message, self.retry_headers(fault, rule, status))
        return None

    def invalid_submission(self, body: Any, problem: str | None) -> Response | None:
        """The 422 for a body that is not a JSON object with a non-empty ``prompt``."""
        if problem is not None or not isinstance(body, dict):
            return self.error(422, [{"loc": ["body"], "msg": f"invalid JSON: {problem}",
                                     "type": "json_invalid"}])
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return self.error(422, [{"loc": ["body", "prompt"], "msg": "Field required",
                                     "type": "missing"}])
        return None
