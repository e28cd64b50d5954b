"""Gemini Batch Mode with inline requests (https://ai.google.dev/gemini-api/docs/batch-mode,
https://ai.google.dev/api/batch-mode): ``POST models/{model}:batchGenerateContent`` with
``batch.inputConfig.requests.requests`` (each a ``GenerateContentRequest`` and ``metadata.key``),
``GET batches/{id}`` (a long-running operation: ``metadata.state`` ``BATCH_STATE_*``; once
done, ``response.inlinedResponses.inlinedResponses`` in input order), ``POST
batches/{id}:cancel``, ``GET batches`` (to find a job by its ``displayName``). Inline requests
are limited to 20 MB per job.

Each request is what the synchronous adapter sends for ``n=1`` (aspect ratio, image size class,
seed); each answer is read by the adapter's own ``parse.read_response``, so a refusal in a
batch is the same ``content_policy`` error as in a call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.outcome import Outcome, outcome_for_status
from fallback_chain.provider import ProviderReply

from ..batch_api import BatchClient, ItemResult, JobState, JobStatus
from .parse import read_response

if TYPE_CHECKING:
    from fallback_chain.request import ImageRequest

    from .adapter import GeminiProvider

#: Pages of 100 batches ``find`` reads.
FIND_PAGES = 20
_STATES: dict[str, JobState] = {
    "BATCH_STATE_PENDING": "running", "BATCH_STATE_RUNNING": "running",
    "BATCH_STATE_SUCCEEDED": "completed", "BATCH_STATE_FAILED": "failed",
    "BATCH_STATE_CANCELLED": "cancelled", "BATCH_STATE_EXPIRED": "expired",
    # the SDK's names, in case a server answers with them
    "JOB_STATE_PENDING": "running", "JOB_STATE_RUNNING": "running",
    "JOB_STATE_SUCCEEDED": "completed", "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled", "JOB_STATE_EXPIRED": "expired"}


class GeminiBatch(BatchClient):
    vendor = "gemini"
    max_items = 10_000
    max_bytes = 20 * 1024 * 1024
    max_n = 1  # one image per request, as the adapter's own calls

    provider: GeminiProvider

    def _base_url(self) -> str:
        root = self.provider.base_url or "https://generativelanguage.googleapis.com"
        return f"{root}/{self.provider.api_version}"

    def _headers(self) -> dict[str, str]:
        key = self.provider._api_key
        if key is None:  # Vertex-style credentials: Batch Mode here is the Gemini API's
            raise ConfigurationError("Gemini Batch Mode needs an API key")
        return {"x-goog-api-key": key}

    def line(self, custom_id: str, request: ImageRequest) -> dict[str, Any]:
        p = self.provider
        config: dict[str, Any] = {"responseModalities": p.response_modalities}
        ratio = p.capabilities.aspect_ratio_for(request)
        size = p._size_class_for(request) if p._sends_image_size() else None
        image: dict[str, Any] = {}
        if ratio is not None:
            image["aspectRatio"] = f"{ratio[0]}:{ratio[1]}"
        if size is not None:
            image["imageSize"] = size
        if image:
            config["imageConfig"] = image
        if request.seed is not None:
            seed = request.seed % 2**32
            config["seed"] = seed - 2**32 if seed >= 2**31 else seed
        body = {"contents": [{"role": "user", "parts": [{"text": request.prompt}]}],
                "generationConfig": config}
        return {"request": body, "metadata": {"key": custom_id}}

    async def find(self, label: str) -> str | None:
        """Page by page (``pageToken``), up to ``FIND_PAGES`` pages of 100."""
        params: dict[str, Any] = {"pageSize": 100}
        for _ in range(FIND_PAGES):
            listing = await self.call("GET", "/batches", params=params)
            if not isinstance(listing, dict):
                return None
            for op in listing.get("operations") or []:
                if (op.get("metadata") or {}).get("displayName") == label:
                    return str(op["name"])
            if not listing.get("nextPageToken"):
                return None
            params["pageToken"] = listing["nextPageToken"]
        return None

    async def submit(self, label: str, lines: list[dict[str, Any]]) -> str:
        op = await self.call("POST", f"/models/{self.model}:batchGenerateContent", json={
            "batch": {"displayName": label,
                      "inputConfig": {"requests": {"requests": lines}}}})
        return str(op["name"])

    async def status(self, job_id: str) -> JobStatus:
        op = await self.call("GET", f"/{job_id}")
        state = _STATES.get(str((op.get("metadata") or {}).get("state")), "running")
        error = op.get("error")
        if isinstance(error, dict) and state == "running" and op.get("done"):
            state = "failed"
        return JobStatus(state, str(error.get("message")) if isinstance(error, dict) else None,
                         op)

    async def cancel(self, job_id: str) -> None:
        await self.call("POST", f"/{job_id}:cancel")

    async def results(self, job_id: str, status: JobStatus,
                      requests: dict[str, ImageRequest]) -> list[ItemResult]:
        op = status.raw
        if not op.get("response") and status.done:
            op = await self.call("GET", f"/{job_id}")
        inlined = ((op.get("response") or {}).get("inlinedResponses") or {}).get(
            "inlinedResponses") or []
        order = list(requests)
        out: list[ItemResult] = []
        for i, entry in enumerate(inlined):
            if not isinstance(entry, dict):
                continue  # garbled: the item is missing, and goes to the real-time chain
            key = (entry.get("metadata") or {}).get("key")
            custom_id = key if key in requests else (order[i] if i < len(order) else None)
            if custom_id is not None:
                out.append(await self._item(str(custom_id), entry))
        return out

    async def _item(self, custom_id: str, entry: dict[str, Any]) -> ItemResult:
        error = entry.get("error")
        if isinstance(error, dict):
            status = str(error.get("status") or "")
            if status in ("CANCELLED", "DEADLINE_EXCEEDED"):
                return ItemResult(custom_id, "cancelled" if status == "CANCELLED" else "expired",
                                  error=ProviderError(Outcome.CANCELLED,
                                                      str(error.get("message"))))
            code = error.get("code")
            http = code if isinstance(code, int) and code >= 400 else 500
            return ItemResult(custom_id, "error", error=ProviderError(
                outcome_for_status(http), str(error.get("message") or status),
                status_code=http, provider_code=status or None))
        try:
            done = await read_response(entry.get("response") or {}, self.provider._price)
        except ProviderError as err:
            kind = "refused" if err.outcome is Outcome.CONTENT_POLICY else "error"
            return ItemResult(custom_id, kind, error=err)  # type: ignore[arg-type]
        return ItemResult(custom_id, "delivered", reply=ProviderReply(
            images=done.images, usage=done.usage, cost_usd=done.cost_usd,
            model=done.model_version or self.model, vendor_request_id=done.response_id))
