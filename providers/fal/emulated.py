"""The emulated fal.ai queue API (served by ``fallback_chain.emulator`` under ``/fal``).

Routes, as on ``https://queue.fal.run`` (https://fal.ai/docs/documentation/model-apis/inference/queue;
fal-client 1.0.3 reads the same fields):

- ``POST /fal/{model_id}``: submit; ``{"request_id", "status_url", "response_url",
  "cancel_url", "queue_position"}``; the URLs use the model's ``owner/app`` only.
- ``GET /fal/{owner}/{app}/requests/{id}/status``: ``{"status": "IN_QUEUE" | "IN_PROGRESS" |
  "COMPLETED", "queue_position", "response_url", "logs", "metrics"}``, HTTP 202 until the
  request completes, then 200.
- ``GET /fal/{owner}/{app}/requests/{id}``: the FLUX output (``images``, ``seed``, ``prompt``,
  ``timings``, ``has_nsfw_concepts``); before completion 400 ``"Request is still in progress"``
  [EMU].
- ``PUT /fal/{owner}/{app}/requests/{id}/cancel``: 202 ``{"status": "CANCELLATION_REQUESTED"}``,
  or 400 ``{"status": "ALREADY_COMPLETED"}``.

Auth: ``Authorization: Key <key>``. Errors carry ``{"detail": ...}``: a string, or the
validation list ``[{"loc", "msg", "type", ...}]`` (https://fal.ai/docs/model-apis/errors).

Faults (besides the common ones, ``docs/emulator.md``): ``nsfw`` (every image flagged in
``has_nsfw_concepts`` and blacked out, as fal's safety checker does), ``policy`` / ``moderated``
(the result answers 422 ``content_policy_violation``), ``job_failed`` (the result answers 500),
``job_stuck`` (never completes), ``expired`` (image URLs already gone), ``fewer_images``,
``bad_image``; ``quota`` is fal's 403 "User is locked. Reason: Exhausted balance".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fallback_chain.emulator.common import json_body, json_response
from fallback_chain.emulator.faults import Fault, Rule
from fallback_chain.emulator.jobs import (
    DetailJobsAPI,
    fate_of,
    images_left,
    prompt_of,
    seed_of,
    url_ttl,
)
from fallback_chain.emulator.state import ImageRecipe
from fallback_chain.imaging import seed_for

PREFIX = "/fal"
SIZES = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
         "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768),
         "landscape_16_9": (1024, 576)}
#: What a bad key gets (the words of fal's gateway, tests/corpus/fal/).
AUTH_MESSAGE = ("Cannot access application '{app}'. Authentication is required to access "
                "this application.")
#: fal's answer for an account out of balance (public reports quote it, tests/corpus/fal/).
LOCKED_MESSAGE = ("User is locked. Reason: Exhausted balance. Top up your balance at "
                  "fal.ai/dashboard/billing.")
POLICY_ITEM = {"loc": ["body", "prompt"], "msg": "The content was flagged by a content checker.",
               "type": "content_policy_violation",
               "url": "https://docs.fal.ai/errors#content_policy_violation"}
_FATES = {"job_failed": "failed", "job_stuck": "stuck", "nsfw": "nsfw", "policy": "moderated",
          "moderated": "moderated", "expired": "expired", "fewer_images": "fewer",
          "bad_image": "bad_image"}


@dataclass
class FalJob:
    id: str
    model: str
    app: str
    prompt: str
    width: int
    height: int
    num_images: int
    ready_at: float
    fate: str
    fault_count: int | None
    rule: Rule
    seed: int
    output_format: str
    cancelled: bool = False
    output: dict[str, Any] | None = None


def app_of(model: str) -> str:
    return "/".join(model.split("/")[:2])


class FalAPI(DetailJobsAPI):
    vendor = "fal"
    fault_kinds = frozenset({"bad_image", "fewer_images", "job_failed", "job_stuck", "nsfw",
                             "moderated", "expired"})
    malformed_kinds = ("truncated", "html", "bad_image")
    retry_after_format = "none"
    quota_answer = (403, LOCKED_MESSAGE)
    auth_answer = (401, AUTH_MESSAGE)

    def routes(self) -> list[Route]:
        return [
            Route(PREFIX + "/{app:path}/requests/{id}/status", self.status, methods=["GET"]),
            Route(PREFIX + "/{app:path}/requests/{id}/cancel", self.cancel, methods=["PUT"]),
            Route(PREFIX + "/{app:path}/requests/{id}", self.result, methods=["GET"]),
            Route(PREFIX + "/{model:path}", self.submit, methods=["POST"]),
        ]

    # ------------------------------------------------------------------ errors

    def denied(self, request: Request, app: str) -> Response | None:
        auth = request.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "key" or not self.state.key_ok("fal", key.strip()):
            return self.error(401, AUTH_MESSAGE.format(app=app))
        return None

    def auth_message(self, model: str | None) -> str:
        return AUTH_MESSAGE.format(app=model or "?")

    # ------------------------------------------------------------------ endpoints

    async def submit(self, request: Request) -> Response:
        model = request.path_params["model"].strip("/")
        self.note(request, "generate", model)
        if (denied := self.denied(request, app_of(model))) is not None:
            return denied
        body, problem = await json_body(request)

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if (invalid := self.invalid_submission(body, problem)) is not None:
                return invalid
            prompt = body["prompt"]
            size = body.get("image_size", "landscape_4_3")
            if isinstance(size, dict):
                width, height = int(size.get("width", 1024)), int(size.get("height", 768))
            elif size in SIZES:
                width, height = SIZES[size]
            else:
                return self.error(422, [{"loc": ["body", "image_size"],
                                         "msg": f"unknown image size {size!r}",
                                         "type": "enum"}])
            num = body.get("num_images", 1)
            if not isinstance(num, int) or not 1 <= num <= 4:
                return self.error(422, [{"loc": ["body", "num_images"],
                                         "msg": "Input should be between 1 and 4",
                                         "type": "less_than_equal"}])
            seed = body.get("seed")
            job = FalJob(
                id=self.state.ids.uuid(), model=model, app=app_of(model), prompt=prompt,
                width=width, height=height, num_images=num,
                ready_at=self.state.clock.now() + rule.job_delay_s,
                fate=fate_of(fault, _FATES, "complete"),
                fault_count=fault.count if fault else None, rule=rule, seed=seed_of(seed, prompt),
                output_format="png" if body.get("output_format") == "png" else "jpeg")
            self.state.add_job(job.id, job)
            urls = self.urls(request, job)
            return json_response({"request_id": job.id, **urls, "queue_position": 0})

        return await self.guarded(request, endpoint="generate", model=model,
                                  prompt=prompt_of(body),
                                  params=body if isinstance(body, dict) else None,
                                  handler=handle)

    def urls(self, request: Request, job: FalJob) -> dict[str, str]:
        base = f"{str(request.base_url).rstrip('/')}{PREFIX}/{job.app}/requests/{job.id}"
        return {"response_url": base, "status_url": base + "/status",
                "cancel_url": base + "/cancel"}

    def job(self, request: Request) -> FalJob | None:
        return self.find_job(request.path_params["id"], FalJob)

    async def on_job(self, request: Request, endpoint: str,
                     answer: Callable[[Request, FalJob], Response]) -> Response:
        """The answer about the request's job: 404 for an unknown one; faults and auth as
        on every route."""
        job = self.job(request)
        self.note(request, endpoint, job.model if job else None)
        if (denied := self.denied(request, request.path_params["app"])) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if job is None:
                return self.error(404, "Request not found")
            return answer(request, job)

        return await self.guarded(request, endpoint=endpoint,
                                  model=job.model if job else None, handler=handle)

    def done(self, job: FalJob) -> bool:
        return job.fate != "stuck" and not job.cancelled and \
            self.state.clock.now() >= job.ready_at

    async def status(self, request: Request) -> Response:
        return await self.on_job(request, "poll", self.status_answer)

    def status_answer(self, request: Request, job: FalJob) -> Response:
        urls = self.urls(request, job)
        if not self.done(job):
            started = self.state.clock.now() >= job.ready_at - job.rule.job_delay_s / 2
            return json_response({
                "status": "IN_PROGRESS" if started else "IN_QUEUE",
                "queue_position": 0, "response_url": urls["response_url"], "logs": None},
                202)
        return json_response({"status": "COMPLETED", "response_url": urls["response_url"],
                              "logs": None, "metrics": {"inference_time": 0.4}})

    async def result(self, request: Request) -> Response:
        return await self.on_job(request, "poll", self.result_answer)

    def result_answer(self, request: Request, job: FalJob) -> Response:
        if not self.done(job):
            return self.error(400, "Request is still in progress")
        if job.fate == "failed":
            return self.error(500, "Internal Server Error")
        if job.fate == "moderated":
            return self.error(422, [{**POLICY_ITEM, "input": job.prompt}])
        with self.state.jobs_lock:
            if job.output is None:
                job.output = self.output(request, job)
        return json_response(job.output)

    def output(self, request: Request, job: FalJob) -> dict[str, Any]:
        count = images_left(job.num_images, job.fate, job.fault_count)
        ttl = url_ttl(job.fate, job.rule)
        root = str(request.base_url).rstrip("/")
        ext = "png" if job.output_format == "png" else "jpg"
        images = []
        for i in range(count):
            recipe = ImageRecipe(job.width, job.height,
                                 self.state.image_seed("fal", seed_for(f"{job.prompt}#{i}")),
                                 job.output_format, corrupt=job.fate == "bad_image",
                                 blank=job.fate == "nsfw")
            token = self.state.files.put(recipe, vendor="fal", model=job.model, ttl_s=ttl,
                                         expired_status=job.rule.expired_status)
            images.append({"url": f"{root}/_files/{token}/files/{job.id}_{i}.{ext}",
                           "width": job.width, "height": job.height,
                           "content_type": f"image/{job.output_format}"})
        return {"images": images, "timings": {"inference": 0.4}, "seed": job.seed,
                "has_nsfw_concepts": [job.fate == "nsfw"] * count, "prompt": job.prompt}

    async def cancel(self, request: Request) -> Response:
        return await self.on_job(request, "meta", self.cancel_answer)

    def cancel_answer(self, request: Request, job: FalJob) -> Response:
        if self.done(job):
            return json_response({"status": "ALREADY_COMPLETED"}, 400)
        job.cancelled = True
        job.fate = "stuck"
        return json_response({"status": "CANCELLATION_REQUESTED"}, 202)
