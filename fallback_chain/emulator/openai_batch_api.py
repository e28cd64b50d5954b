"""OpenAI Files and Batches: ``/v1/files`` (upload, content) and ``/v1/batches`` (create,
list, retrieve, cancel) for ``/v1/images/generations`` batches; jobs and their faults are in
:mod:`.batch_jobs`.

The shapes follow OpenAI's OpenAPI spec (``Batch``, ``OpenAIFile``, ``CreateBatchRequest``) and
the batch guide (https://platform.openai.com/docs/guides/batch): an input file of JSONL lines
``{"custom_id", "method": "POST", "url": "/v1/images/generations", "body"}``; an output file of
``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error": null}``
lines, and an error file with the items that failed (``status_code`` 4xx/5xx) or were not
done (``error.code`` ``batch_expired`` / ``batch_cancelled``).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .batch_jobs import TERMINAL, BatchJobs, EmulatedJob
from .common import json_body, json_response
from .faults import Fault, Rule
from .openai_api import OpenAIAPI
from .openai_rules import OpenAIInvalid, check_generation

ENDPOINT = "/v1/images/generations"
#: The documented limits of one batch (CreateBatchRequest.input_file_id).
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
_STATUS = {"running": "in_progress", "completed": "completed", "failed": "failed",
           "expired": "expired", "cancelled": "cancelled"}


class OpenAIBatchAPI(OpenAIAPI):
    """The Files and Batches endpoints (on top of the Images API's errors and answers)."""

    def __init__(self, state: Any, jobs: BatchJobs) -> None:
        super().__init__(state)
        self.jobs = jobs
        self.files: dict[str, tuple[str, bytes]] = {}
        self._files_lock = threading.Lock()
        jobs.on_reset.append(self._forget_files)

    def _forget_files(self) -> None:
        with self._files_lock:
            self.files.clear()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/files", self.upload, methods=["POST"]),
            Route("/v1/files/{file_id}/content", self.content, methods=["GET"]),
            Route("/v1/batches", self.create, methods=["POST"]),
            Route("/v1/batches", self.list_batches, methods=["GET"]),
            Route("/v1/batches/{batch_id}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/batches/{batch_id}", self.retrieve, methods=["GET"]),
        ]

    # ------------------------------------------------------------------ files

    def _store(self, name: str, data: bytes) -> str:
        file_id = "file-" + self.state.ids.hex(12)
        with self._files_lock:
            self.files[file_id] = (name, data)
        return file_id

    def _file_object(self, file_id: str, purpose: str) -> dict[str, Any]:
        name, data = self.files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(data),
                "created_at": int(self.state.clock.wall()), "filename": name,
                "purpose": purpose, "status": "processed"}

    async def upload(self, request: Request) -> Response:
        self.note(request, "file_upload")
        if (denied := self.auth_error(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            form = await request.form()
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or form.get("purpose") != "batch":
                return self.error(400, "invalid_request_error", None,
                                  "Expected a 'file' part and purpose 'batch'.")
            data = await upload.read()
            if len(data) > MAX_FILE_BYTES:
                return self.error(400, "invalid_request_error", "file_too_large",
                                  "The batch input file can be up to 200 MB.")
            file_id = self._store(upload.filename or "input.jsonl", data)
            return json_response(self._file_object(file_id, "batch"))

        return await self.guarded(request, endpoint="file_upload", model=None, handler=handle)

    async def content(self, request: Request) -> Response:
        self.note(request, "file_content")
        if (denied := self.auth_error(request)) is not None:
            return denied
        file_id = request.path_params["file_id"]

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            found = self.files.get(file_id)
            if found is None:
                return self.error(404, "invalid_request_error", None,
                                  f"No such File object: {file_id}")
            return Response(found[1], media_type="application/octet-stream")

        return await self.guarded(request, endpoint="file_content", model=None, handler=handle)

    # ------------------------------------------------------------------ batches

    async def create(self, request: Request) -> Response:
        self.note(request, "batch_create")
        if (denied := self.auth_error(request)) is not None:
            return denied
        body, problem = await json_body(request)

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if problem is not None or not isinstance(body, dict):
                return self.error(400, "invalid_request_error", None, "Invalid JSON body.")
            if body.get("endpoint") != ENDPOINT or body.get("completion_window") != "24h":
                return self.error(400, "invalid_request_error", None,
                                  f"The emulator batches {ENDPOINT} with a 24h window only.")
            found = self.files.get(str(body.get("input_file_id")))
            if found is None:
                return self.error(400, "invalid_request_error", None, "Unknown input_file_id.")
            try:
                requests = _lines(found[1])
            except ValueError as exc:
                return self.error(400, "invalid_request_error", None, str(exc))
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
            model = requests[0][1].get("model") if requests else None
            job = self.jobs.create("openai", model if isinstance(model, str) else None,
                                   json.dumps(metadata), requests, metadata=metadata,
                                   input_file_id=body["input_file_id"])
            return json_response(self._batch(job))

        return await self.guarded(request, endpoint="batch_create", model=None, handler=handle,
                                  params=body if isinstance(body, dict) else None)

    async def list_batches(self, request: Request) -> Response:
        self.note(request, "batch_list")
        if (denied := self.auth_error(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            jobs = [j for j in reversed(self.jobs.jobs) if j.vendor == "openai"]
            return json_response({"object": "list", "data": [self._batch(j) for j in jobs],
                                  "has_more": False})

        return await self.guarded(request, endpoint="batch_list", model=None, handler=handle)

    async def retrieve(self, request: Request) -> Response:
        return await self._one(request, "batch_get", cancel=False)

    async def cancel(self, request: Request) -> Response:
        return await self._one(request, "batch_cancel", cancel=True)

    async def _one(self, request: Request, endpoint: str, *, cancel: bool) -> Response:
        self.note(request, endpoint)
        if (denied := self.auth_error(request)) is not None:
            return denied
        job = self.jobs.get(request.path_params["batch_id"])

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if job is None or job.vendor != "openai":
                return self.error(404, "invalid_request_error", None,
                                  f"No batch found with id '{request.path_params['batch_id']}'.")
            answer = self._answerer(request)
            if cancel:
                self.jobs.cancel(job, answer)
            else:
                self.jobs.look(job, answer)
            return json_response(self._batch(job))

        return await self.guarded(request, endpoint=endpoint, model=None, handler=handle)

    # ------------------------------------------------------------------ answers

    def _answerer(self, request: Request) -> Any:
        def answer(body: dict[str, Any], refused: bool) -> tuple[str, dict[str, Any]]:
            if refused:
                status, type_, code, template = ("400", "image_generation_user_error",
                                                 "moderation_blocked",
                                                 "Your request was rejected by the safety "
                                                 "system. safety_violations=[sexual].")
                return "refused", {"status_code": int(status), "body": {"error": {
                    "message": template, "type": type_, "param": None, "code": code}}}
            try:
                checked = check_generation(body)
            except OpenAIInvalid as exc:
                return "error", {"status_code": exc.status, "body": {"error": {
                    "message": exc.message, "type": "invalid_request_error",
                    "param": exc.param, "code": exc.code}}}
            response = self.images_response(request, checked, None, Rule())
            return "ok", {"status_code": 200, "body": json.loads(bytes(response.body))}

        return answer

    def _batch(self, job: EmulatedJob) -> dict[str, Any]:
        counts = {"total": len(job.requests),
                  "completed": sum(a.kind == "ok" for a in job.answers),
                  "failed": sum(a.kind != "ok" for a in job.answers)}
        out: dict[str, Any] = {
            "id": job.id, "object": "batch", "endpoint": ENDPOINT, "model": job.model,
            "errors": None, "input_file_id": job.extra.get("input_file_id"),
            "completion_window": "24h", "status": _STATUS[job.state],
            "output_file_id": None, "error_file_id": None,
            "created_at": int(job.created), "request_counts": counts,
            "metadata": job.extra.get("metadata") or {}}
        if job.state == "failed":
            out["errors"] = {"object": "list", "data": [{
                "code": "batch_failed", "message": "The batch failed (emulated fault).",
                "param": None, "line": None}]}
        if job.state in TERMINAL and job.state != "failed":
            self._result_files(job)
            out["output_file_id"] = job.extra.get("output_file_id")
            out["error_file_id"] = job.extra.get("error_file_id")
        return out

    def _result_files(self, job: EmulatedJob) -> None:
        if "output_file_id" in job.extra:
            return
        good: list[str] = []
        bad: list[str] = []
        for answer in job.answers:
            line: dict[str, Any] = {"id": "batch_req_" + self.state.ids.hex(8),
                                    "custom_id": answer.custom_id, "response": None,
                                    "error": None}
            if answer.kind in ("expired", "cancelled"):
                line["error"] = {"code": f"batch_{answer.kind}",
                                 "message": f"This request could not be executed before the "
                                            f"batch was {answer.kind}."}
                bad.append(json.dumps(line))
                continue
            if answer.kind == "error":
                answer.body = {"status_code": 500, "body": {"error": {
                    "message": "The server had an error processing your request.",
                    "type": "server_error", "param": None, "code": None}}}
            assert answer.body is not None
            line["response"] = {"request_id": "req_" + self.state.ids.hex(8), **answer.body}
            (good if answer.kind == "ok" else bad).append(json.dumps(line))
        for i in range(min(job.faults.malformed_lines, len(good))):
            good[i] = good[i][: len(good[i]) // 3]  # a torn line: not JSON
        if good:
            job.extra["output_file_id"] = self._store(f"{job.id}_output.jsonl",
                                                      ("\n".join(good) + "\n").encode())
        if bad:
            job.extra["error_file_id"] = self._store(f"{job.id}_error.jsonl",
                                                     ("\n".join(bad) + "\n").encode())
        job.extra.setdefault("output_file_id", None)


def _lines(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    requests: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for n, raw in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        line = json.loads(raw)
        if not isinstance(line, dict) or line.get("url") != ENDPOINT:
            raise ValueError(f"line {n}: expected a request to {ENDPOINT}")
        custom_id = str(line.get("custom_id") or "")
        if not custom_id or custom_id in seen:
            raise ValueError(f"line {n}: custom_id missing or not unique")
        seen.add(custom_id)
        requests.append((custom_id, dict(line.get("body") or {})))
    if not requests or len(requests) > MAX_REQUESTS:
        raise ValueError(f"a batch holds 1 to {MAX_REQUESTS} requests")
    return requests
