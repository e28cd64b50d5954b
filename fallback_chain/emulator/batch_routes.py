"""The routes of the emulated vendor batch APIs (OpenAI Files + Batches, Gemini Batch Mode)."""

from __future__ import annotations

from starlette.routing import Route

from .batch_jobs import BatchJobs
from .state import EmulatorState


def batch_routes(state: EmulatorState, jobs: BatchJobs) -> list[Route]:
    """Routes of every emulated batch API, sharing ``jobs``."""
    from .gemini_batch_api import GeminiBatchAPI
    from .openai_batch_api import OpenAIBatchAPI

    return [*GeminiBatchAPI(state, jobs).routes(), *OpenAIBatchAPI(state, jobs).routes()]
