"""OpenAI's Batch API for image generations: one JSONL file uploaded to ``/v1/files``
(``purpose=batch``), one ``/v1/batches`` job for ``/v1/images/generations`` with a 24 h window,
then the output and error files (https://platform.openai.com/docs/guides/batch; the
``Batch``/``CreateBatchRequest`` schemas of OpenAI's OpenAPI spec). Limits of one job: 50,000
requests and a 200 MB input file.

A job carries our label in ``metadata.fallback_chain_job``; :meth:`find` looks it up among the
recent batches, so a run killed right after submitting re-attaches to the job it paid for.
Each output line's ``response.body`` is an Images API answer, read like a synchronous one
(``wire.read_images``; the cost from its ``usage``); an error line becomes the same
``ProviderError`` the synchronous call would have raised.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome
from fallback_chain.provider import ProviderReply

from ..batch_api import BatchClient, ItemResult, JobState, JobStatus
from .wire import error_from_status, read_images, usage_dict

if TYPE_CHECKING:
    from fallback_chain.request import ImageRequest

    from .adapter import OpenAIProvider

ENDPOINT = "/v1/images/generations"
LABEL_KEY = "fallback_chain_job"
#: Pages of 100 batches ``find`` reads (a job is found among the newest 2,000).
FIND_PAGES = 20
_STATES: dict[str, JobState] = {
    "validating": "running", "in_progress": "running", "finalizing": "running",
    "completed": "completed", "failed": "failed", "expired": "expired",
    "cancelling": "cancelling", "cancelled": "cancelled"}
#: Error codes of requests the job did not run.
_NOT_RUN = {"batch_expired": "expired", "batch_cancelled": "cancelled"}


class OpenAIBatch(BatchClient):
    vendor = "openai"
    max_items = 50_000
    max_bytes = 200 * 1024 * 1024

    provider: OpenAIProvider

    def _base_url(self) -> str:
        return self.provider._base_url or "https://api.openai.com/v1"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.provider._api_key}"}

    def line(self, custom_id: str, request: ImageRequest) -> dict[str, Any]:
        params = self.provider._params(request, self.provider._plan(request))
        return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": params}

    async def find(self, label: str) -> str | None:
        """The newest batches first, page by page (``after``), up to ``FIND_PAGES`` pages."""
        params: dict[str, Any] = {"limit": 100}
        for _ in range(FIND_PAGES):
            listing = await self.call("GET", "/batches", params=params)
            data = listing.get("data") or [] if isinstance(listing, dict) else []
            for batch in data:
                if (batch.get("metadata") or {}).get(LABEL_KEY) == label:
                    return str(batch["id"])
            if not data or not listing.get("has_more"):
                return None
            params["after"] = data[-1]["id"]
        return None

    async def submit(self, label: str, lines: list[dict[str, Any]]) -> str:
        data = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        uploaded = await self.call("POST", "/files", data={"purpose": "batch"},
                                   files={"file": (f"{label}.jsonl", data.encode(),
                                                   "application/jsonl")})
        created = await self.call("POST", "/batches", json={
            "input_file_id": uploaded["id"], "endpoint": ENDPOINT, "completion_window": "24h",
            "metadata": {LABEL_KEY: label}})
        return str(created["id"])

    async def status(self, job_id: str) -> JobStatus:
        batch = await self.call("GET", f"/batches/{job_id}")
        state = _STATES.get(str(batch.get("status")), "running")
        errors = (batch.get("errors") or {}).get("data") or []
        error = "; ".join(str(e.get("message") or e.get("code")) for e in errors) or None
        return JobStatus(state, error, batch)

    async def cancel(self, job_id: str) -> None:
        await self.call("POST", f"/batches/{job_id}/cancel")

    async def results(self, job_id: str, status: JobStatus,
                      requests: dict[str, ImageRequest]) -> list[ItemResult]:
        out: list[ItemResult] = []
        for key in ("output_file_id", "error_file_id"):
            file_id = status.raw.get(key)
            if file_id:
                content = await self.call("GET", f"/files/{file_id}/content")
                text = content.decode("utf-8", "replace") if isinstance(content, bytes) \
                    else json.dumps(content)
                for raw in text.splitlines():
                    item = await self._read_line(raw, requests)
                    if item is not None:
                        out.append(item)
        return out

    async def _read_line(self, raw: str, requests: dict[str, ImageRequest]
                         ) -> ItemResult | None:
        """One result line; ``None`` for a line that names no item of ours (torn, garbled):
        its item is then missing, and goes to the real-time chain."""
        try:
            line = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(line, dict) or line.get("custom_id") not in requests:
            return None
        custom_id = str(line["custom_id"])
        error = line.get("error")
        if isinstance(error, dict) and error.get("code") in _NOT_RUN:
            return ItemResult(custom_id, _NOT_RUN[str(error["code"])],  # type: ignore[arg-type]
                              error=ProviderError(Outcome.CANCELLED, str(error.get("message"))))
        answer = line.get("response")
        response: dict[str, Any] = answer if isinstance(answer, dict) else {}
        code = response.get("status_code")
        body = response.get("body")
        if code != 200 or not isinstance(body, dict):
            err = error_from_status(int(code) if isinstance(code, int) else 500,
                                    (body or {}).get("error") if isinstance(body, dict) else
                                    (error or body), {}, response.get("request_id"))
            status = "refused" if err.outcome is Outcome.CONTENT_POLICY else "error"
            return ItemResult(custom_id, status, error=err)  # type: ignore[arg-type]
        try:
            reply = await self._reply(body, requests[custom_id], response.get("request_id"))
        except ProviderError as err:
            return ItemResult(custom_id, "error", error=err)
        return ItemResult(custom_id, "delivered", reply=reply)

    async def _reply(self, body: dict[str, Any], request: ImageRequest,
                     request_id: str | None) -> ProviderReply:
        from types import SimpleNamespace

        from .cost import cost_from_openai_usage

        data = [SimpleNamespace(**d) if isinstance(d, dict) else d
                for d in body.get("data") or []]
        slots, urls, revised = await read_images(data, request.n)
        if urls:
            raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                "a batch answer with image links (expected b64_json)",
                                status_code=200)
        usage = usage_dict(body.get("usage"))
        cost = (cost_from_openai_usage(self.model, usage, images=len(slots),
                                       catalogue=self.provider._catalogue())
                if usage else None)
        return ProviderReply(images=[s for s in slots if s is not None], revised_prompt=revised,
                             usage=usage, cost_usd=cost, model=self.model,
                             vendor_request_id=request_id)
