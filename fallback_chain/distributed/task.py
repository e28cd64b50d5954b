"""The Celery task: one item of a queued batch, served by :class:`~.serve.ItemRunner`.

Registered on a worker's app with :func:`register` (the ``batch --queue`` side only sends
messages by name, :data:`~.app.TASK`). While another worker holds the item's claim the task
asks Celery to retry it after the lease's remaining time (``self.retry``: a new message is
published, the old one acknowledged); it retries as long as it takes (the claim always ends:
its holder finishes, or its lease expires).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .app import TASK
from .serve import Busy

if TYPE_CHECKING:
    from celery import Celery

    from .serve import ItemRunner


def register(app: Celery, runner: ItemRunner) -> Any:
    """Register the item task on ``app``, served by ``runner``; returns the task."""

    @app.task(name=TASK, bind=True, acks_late=True,  # type: ignore[untyped-decorator]
              max_retries=None, ignore_result=True)
    def generate_item(self: Any, job: str, message: dict[str, Any]) -> str:
        try:
            return runner.run(job, message)
        except Busy as busy:
            raise self.retry(countdown=busy.retry_in_s, max_retries=None) from None

    return generate_item
