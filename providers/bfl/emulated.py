"""The emulated Black Forest Labs API (served by ``fallback_chain.emulator`` under ``/bfl``).

Routes, as on ``https://api.bfl.ai`` (https://docs.bfl.ai/api-reference):

- ``POST /bfl/v1/{model}``: submit a task; ``{"id", "polling_url", "cost", "input_mp",
  "output_mp"}`` (``cost`` in credits, from BFL's price table [DOC SKILL.md], 1 MP = 10^6
  pixels [EMU]).
- ``GET /bfl/v1/credits``: ``{"credits": 1000.0}`` [EMU: the balance].
- ``GET /bfl/v1/get_result?id=…``: ``{"id", "status", "result", "progress", "details",
  "preview"}``; ``Pending`` until the task is done, then ``Ready`` with ``result.sample`` (a
  URL valid for ``url_ttl_s``), or the status a fault chose.

Auth: header ``x-key``; a missing or wrong key gets 403 ``{"detail": "Not authenticated"}``
[EMU: BFL's notes say "Not authenticated" errors; the status is this emulator's choice].
Errors are FastAPI's ``{"detail": ...}``: a string, or the 422 validation list.

Faults (besides the common ones, ``docs/emulator.md``): ``policy`` (``Request Moderated``),
``moderated`` / ``nsfw`` (``Content Moderated``), ``job_failed`` (``Error``), ``job_stuck``
(``Pending`` forever), ``task_not_found`` (``Task not found``), ``expired`` (the sample URL is
already gone), ``bad_image``; ``quota`` is a 402.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fallback_chain.emulator.common import json_body, json_response
from fallback_chain.emulator.faults import Fault, Rule
from fallback_chain.emulator.jobs import DetailJobsAPI, fate_of, prompt_of, seed_of, url_ttl
from fallback_chain.emulator.state import ImageRecipe
from fallback_chain.imaging import seed_for

PREFIX = "/bfl"
#: Credits: (first megapixel, each further megapixel).  [DOC black-forest-labs/skills SKILL.md]
CREDITS = {"flux-pro-1.1": (4.0, 0.0), "flux-dev": (2.5, 0.0), "flux-2-pro": (3.0, 1.5),
           "flux-2-max": (7.0, 3.0), "flux-2-klein-4b": (1.4, 0.1),
           "flux-2-klein-9b": (1.5, 0.2), "flux-2-flex": (5.0, 5.0)}
_FATES = {"policy": "Request Moderated", "moderated": "Content Moderated",
          "nsfw": "Content Moderated", "job_failed": "Error", "job_stuck": "stuck",
          "task_not_found": "Task not found", "expired": "expired", "bad_image": "bad_image"}


@dataclass
class BFLTask:
    id: str
    model: str
    prompt: str
    width: int
    height: int
    ready_at: float
    fate: str
    rule: Rule
    seed: int
    output_format: str
    sample: str | None = None


def credits_for(model: str, width: int, height: int) -> float:
    first, further = CREDITS.get(model, (4.0, 0.0))
    megapixels = max(1, math.ceil(width * height / 1_000_000))
    return first + (megapixels - 1) * further


class BFLAPI(DetailJobsAPI):
    vendor = "bfl"
    fault_kinds = frozenset({"bad_image", "job_failed", "job_stuck", "nsfw", "moderated",
                             "expired", "task_not_found"})
    malformed_kinds = ("truncated", "html", "bad_image")
    retry_after_format = "seconds"
    quota_answer = (402, "Insufficient credits")
    auth_answer = (403, "Not authenticated")
    throttled_message = "Too many active tasks"

    def routes(self) -> list[Route]:
        return [
            Route(PREFIX + "/v1/get_result", self.get_result, methods=["GET"]),
            Route(PREFIX + "/v1/credits", self.credits, methods=["GET"]),
            Route(PREFIX + "/v1/{model}", self.submit, methods=["POST"]),
        ]

    def denied(self, request: Request) -> Response | None:
        if not self.state.key_ok("bfl", request.headers.get("x-key")):
            return self.error(403, "Not authenticated")
        return None

    async def submit(self, request: Request) -> Response:
        model = request.path_params["model"]
        self.note(request, "generate", model)
        if (denied := self.denied(request)) is not None:
            return denied
        body, problem = await json_body(request)

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if (invalid := self.invalid_submission(body, problem)) is not None:
                return invalid
            prompt = body["prompt"]
            width, height = body.get("width", 1024), body.get("height", 768)
            if not isinstance(width, int) or not isinstance(height, int) or \
                    not 64 <= width <= 4096 or not 64 <= height <= 4096:
                return self.error(422, [{"loc": ["body", "width"],
                                         "msg": "width and height must be 64-4096",
                                         "type": "value_error"}])
            seed = body.get("seed")
            task = BFLTask(
                id=self.state.ids.uuid(), model=model, prompt=prompt, width=width,
                height=height, ready_at=self.state.clock.now() + rule.job_delay_s,
                fate=fate_of(fault, _FATES, "Ready"), rule=rule, seed=seed_of(seed, prompt),
                output_format="png" if body.get("output_format") == "png" else "jpeg")
            self.state.add_job(task.id, task)
            root = str(request.base_url).rstrip("/")
            return json_response({
                "id": task.id, "polling_url": f"{root}{PREFIX}/v1/get_result?id={task.id}",
                "cost": credits_for(model, width, height), "input_mp": 0,
                "output_mp": round(width * height / 1_000_000, 2)})

        return await self.guarded(request, endpoint="generate", model=model,
                                  prompt=prompt_of(body),
                                  params=body if isinstance(body, dict) else None,
                                  handler=handle)

    async def credits(self, request: Request) -> Response:
        self.note(request, "meta")
        if (denied := self.denied(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            return json_response({"credits": 1000.0})

        return await self.guarded(request, endpoint="meta", model=None, handler=handle)

    async def get_result(self, request: Request) -> Response:
        task_id = request.query_params.get("id", "")
        task = self.find_job(task_id, BFLTask)
        self.note(request, "poll", task.model if task else None)
        if (denied := self.denied(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if task is None or task.fate == "Task not found":
                return json_response({"id": task_id, "status": "Task not found"})
            done = task.fate != "stuck" and self.state.clock.now() >= task.ready_at
            if not done:
                return json_response({"id": task.id, "status": "Pending", "result": None,
                                      "progress": None, "details": None, "preview": None})
            if task.fate in ("Request Moderated", "Content Moderated", "Error"):
                details = {"Moderation Reasons": ["emulated moderation"]} \
                    if task.fate != "Error" else None
                return json_response({"id": task.id, "status": task.fate, "result": None,
                                      "progress": None, "details": details, "preview": None})
            with self.state.jobs_lock:
                if task.sample is None:
                    task.sample = self.sample_url(request, task)
            return json_response({
                "id": task.id, "status": "Ready", "progress": None, "details": None,
                "preview": None,
                "result": {"sample": task.sample, "prompt": task.prompt, "seed": task.seed,
                           "start_time": None, "end_time": None, "duration": None}})

        return await self.guarded(request, endpoint="poll", model=task.model if task else None,
                                  handler=handle)

    def sample_url(self, request: Request, task: BFLTask) -> str:
        ttl = url_ttl(task.fate, task.rule)
        recipe = ImageRecipe(task.width, task.height,
                             self.state.image_seed("bfl", seed_for(f"{task.prompt}#{task.seed}")),
                             task.output_format, corrupt=task.fate == "bad_image")
        token = self.state.files.put(recipe, vendor="bfl", model=task.model, ttl_s=ttl,
                                     expired_status=task.rule.expired_status)
        ext = "png" if task.output_format == "png" else "jpg"
        return f"{str(request.base_url).rstrip('/')}/_files/{token}/results/{task.id}/sample.{ext}"
