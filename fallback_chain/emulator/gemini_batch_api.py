"""Gemini Batch Mode with inline requests: ``models/{model}:batchGenerateContent`` (create),
``batches`` (list), ``batches/{id}`` (get), ``batches/{id}:cancel``; jobs and their faults are
in :mod:`.batch_jobs`.

Shapes (https://ai.google.dev/api/batch-mode): the request body is ``{"batch": {"displayName",
"inputConfig": {"requests": {"requests": [{"request": GenerateContentRequest, "metadata":
{"key": ...}}]}}}}``; the answer is a long-running ``Operation`` whose ``metadata`` is the
``GenerateContentBatch`` (``state`` ``BATCH_STATE_PENDING`` / ``_RUNNING`` / ``_SUCCEEDED`` /
``_FAILED`` / ``_CANCELLED`` / ``_EXPIRED``) and, once done, whose ``response`` holds
``inlinedResponses.inlinedResponses``: one ``{"response": GenerateContentResponse}`` or
``{"error": Status}`` per request, in input order, with the request's ``metadata``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .batch_jobs import TERMINAL, BatchJobs, EmulatedJob
from .common import json_body, json_response
from .faults import Fault, Rule, parse_fault
from .gemini_api import GeminiAPI, GeminiInvalid, _prompt_of

#: Inline requests of one batch: at most 20 MB in all (the batch-mode guide).
MAX_INLINE_BYTES = 20 * 1024 * 1024
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main."
_STATE = {"running": "BATCH_STATE_RUNNING", "completed": "BATCH_STATE_SUCCEEDED",
          "failed": "BATCH_STATE_FAILED", "expired": "BATCH_STATE_EXPIRED",
          "cancelled": "BATCH_STATE_CANCELLED"}


class GeminiBatchAPI(GeminiAPI):
    """Batch Mode endpoints (on top of ``generateContent``'s errors and answers)."""

    def __init__(self, state: Any, jobs: BatchJobs) -> None:
        super().__init__(state)
        self.jobs = jobs

    def routes(self) -> list[Route]:
        return [
            Route("/v1beta/models/{model}:batchGenerateContent", self.create, methods=["POST"]),
            Route("/v1beta/batches", self.list_batches, methods=["GET"]),
            Route("/v1beta/batches/{batch_id}:cancel", self.cancel, methods=["POST"]),
            Route("/v1beta/batches/{batch_id}", self.get, methods=["GET"]),
        ]

    async def create(self, request: Request) -> Response:
        model = request.path_params["model"].removeprefix("models/")
        self.note(request, "batch_create", model)
        if (denied := self.auth_error(request)) is not None:
            return denied
        raw = await request.body()
        body, problem = await json_body(request)

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            batch = body.get("batch") if isinstance(body, dict) else None
            if problem is not None or not isinstance(batch, dict):
                return self.error(400, "Invalid JSON payload: expected a 'batch' object.")
            if len(raw) > MAX_INLINE_BYTES:
                return self.error(400, "Inline batch requests are limited to 20 MB.")
            entries = (((batch.get("inputConfig") or {}).get("requests") or {})
                       .get("requests") or [])
            if not entries or not all(isinstance(e, dict) and isinstance(e.get("request"), dict)
                                      for e in entries):
                return self.error(400, "batch.inputConfig.requests.requests is empty or "
                                       "malformed.")
            requests = [(str((e.get("metadata") or {}).get("key", i)), e["request"])
                        for i, e in enumerate(entries)]
            metadata = [e.get("metadata") or {} for e in entries]
            job = self.jobs.create("gemini", model, str(batch.get("displayName") or ""),
                                   requests, metadata=metadata)
            return json_response(self._operation(job))

        return await self.guarded(request, endpoint="batch_create", model=model,
                                  handler=handle, params={"displayName": (
                                      body.get("batch") or {}).get("displayName")
                                      if isinstance(body, dict) else None})

    async def list_batches(self, request: Request) -> Response:
        self.note(request, "batch_list")
        if (denied := self.auth_error(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            jobs = [j for j in reversed(self.jobs.jobs) if j.vendor == "gemini"]
            return json_response({"operations": [self._operation(j, full=False)
                                                 for j in jobs]})

        return await self.guarded(request, endpoint="batch_list", model=None, handler=handle)

    async def get(self, request: Request) -> Response:
        return await self._one(request, "batch_get", cancel=False)

    async def cancel(self, request: Request) -> Response:
        return await self._one(request, "batch_cancel", cancel=True)

    async def _one(self, request: Request, endpoint: str, *, cancel: bool) -> Response:
        self.note(request, endpoint)
        if (denied := self.auth_error(request)) is not None:
            return denied
        job = self.jobs.get("batches/" + request.path_params["batch_id"])

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if job is None or job.vendor != "gemini":
                return self.error(404, "Requested entity was not found.")
            if cancel:
                self.jobs.cancel(job, self._answerer(job))
                return json_response({})
            self.jobs.look(job, self._answerer(job))
            return json_response(self._operation(job))

        return await self.guarded(request, endpoint=endpoint,
                                  model=job.model if job else None, handler=handle)

    def _answerer(self, job: EmulatedJob) -> Any:
        model = job.model or "gemini-2.5-flash-image"

        def answer(body: dict[str, Any], refused: bool) -> tuple[str, dict[str, Any]]:
            prompt, images_in = _prompt_of(body)
            fault = parse_fault("image_safety", "gemini") if refused else None
            try:
                response = self.answer(model, body, prompt, images_in, fault)
            except GeminiInvalid as exc:
                return "error", {"error": {"code": exc.status, "message": exc.message,
                                           "status": "INVALID_ARGUMENT"}}
            return ("refused" if refused else "ok"), {
                "response": json.loads(bytes(response.body))}

        return answer

    def _operation(self, job: EmulatedJob, *, full: bool = True) -> dict[str, Any]:
        total = len(job.requests)
        ok = sum(a.kind in ("ok", "refused") for a in job.answers)
        meta: dict[str, Any] = {
            "@type": _TYPE + "GenerateContentBatch", "name": job.id, "displayName": job.label,
            "model": f"models/{job.model}", "state": _STATE[job.state],
            "batchStats": {"requestCount": str(total), "successfulRequestCount": str(ok),
                           "failedRequestCount": str(len(job.answers) - ok),
                           "pendingRequestCount": str(total - len(job.answers))}}
        op: dict[str, Any] = {"name": job.id, "metadata": meta,
                              "done": job.state in TERMINAL}
        if job.state == "failed":
            op["error"] = {"code": 13, "message": "The batch failed (emulated fault)."}
        elif job.state in TERMINAL and full:
            op["response"] = {"@type": _TYPE + "GenerateContentBatchOutput",
                              "inlinedResponses": {"inlinedResponses": self._inlined(job)}}
        return op

    def _inlined(self, job: EmulatedJob) -> list[Any]:
        metadata = job.extra.get("metadata") or [{}] * len(job.requests)
        out: list[Any] = []
        for i, (answer, meta) in enumerate(zip(job.answers, metadata, strict=False)):
            entry: dict[str, Any] = {"metadata": meta}
            if answer.kind in ("ok", "refused"):
                entry.update(answer.body or {})
            elif answer.kind == "error":
                entry["error"] = (answer.body or {}).get("error") or {
                    "code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}
            else:
                entry["error"] = {"code": 4 if answer.kind == "expired" else 1,
                                  "message": f"The request was not run: the batch was "
                                             f"{answer.kind}.",
                                  "status": "DEADLINE_EXCEEDED" if answer.kind == "expired"
                                  else "CANCELLED"}
            out.append(json.dumps(entry)[:40] if i < job.faults.malformed_lines else entry)
        return out
