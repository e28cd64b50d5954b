"""Leonardo REST API v1: asynchronous generations, polling, ``/me`` and the pricing calculator."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fallback_chain.imaging import seed_for

from . import facts
from .common import bearer_token, json_body, json_response
from .faults import Fault, Rule
from .jobs import JobsAPI, fate_of, images_left, prompt_of, seed_of, url_ttl
from .state import ImageRecipe

PREFIX = "/api/rest/v1"
#: Job fates chosen on the create POST by a fault.
_FATES = {"job_failed": "failed", "job_stuck": "stuck", "nsfw": "nsfw", "policy": "nsfw",
          "expired": "expired", "fewer_images": "fewer", "bad_image": "bad_image"}


@dataclass
class Job:
    id: str
    model: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    num_images: int
    created_wall: float
    ready_at: float
    fate: str
    fault_count: int | None
    rule: Rule
    seed: int
    preset_style: str | None
    images: list[dict[str, Any]] | None = None


class LeonardoInvalid(Exception):
    pass


def credits_for(width: int, height: int, num_images: int, alchemy: bool) -> int:
    """API credits for a generation.  [2ND Leonardo pricing calculator, docs/vendor-facts.md §7,
    scaled by area; EMU formula]"""
    rate = facts.LEONARDO_CREDITS_PER_MEGAPIXEL["alchemy" if alchemy else "plain"]
    return max(1, math.ceil(rate * num_images * width * height / 1024**2))


def _check(body: dict[str, Any]) -> tuple[str, int, int, int]:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise LeonardoInvalid("prompt is required and must be a non-empty string")
    out = []
    for key in ("width", "height", "num_images"):
        value = body.get(key, facts.LEONARDO_DEFAULTS[key])
        if value is None:
            value = facts.LEONARDO_DEFAULTS[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise LeonardoInvalid(f"{key} must be an integer")
        out.append(value)
    width, height, num = out
    low, high = facts.LEONARDO_DIM_RANGE
    for name, value in (("width", width), ("height", height)):
        if not low <= value <= high or value % 8:
            raise LeonardoInvalid(f"{name} must be between {low} and {high} and a multiple "
                                  "of 8")
    limit = 4 if max(width, height) > 768 else facts.LEONARDO_MAX_IMAGES
    if not 1 <= num <= limit:
        raise LeonardoInvalid(f"num_images must be between 1 and {limit} for {width}x{height}")
    return prompt, width, height, num


class LeonardoAPI(JobsAPI):
    vendor = "leonardo"
    #: This vendor's own fault kinds (besides ``faults.COMMON_KINDS``).
    fault_kinds = frozenset({
        "bad_image", "fewer_images", "job_failed", "job_stuck", "nsfw", "moderated",
        "expired", "permission"})
    #: What ``malformed`` picks from (seeded): a 200 the client cannot use.
    malformed_kinds = ("truncated", "html", "bad_image")
    #: How a 429's Retry-After is given unless the fault configuration says otherwise.
    retry_after_format = "none"

    def routes(self) -> list[Route]:
        return [
            Route(f"{PREFIX}/generations", self.create, methods=["POST"]),
            Route(f"{PREFIX}/generations/{{id}}", self.get_generation, methods=["GET"]),
            Route(f"{PREFIX}/me", self.me, methods=["GET"]),
            Route(f"{PREFIX}/pricing-calculator", self.pricing, methods=["POST"]),
        ]

    def error(self, status: int, message: str | None = None, code: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
        default_code, default_message = facts.LEONARDO_ERRORS.get(
            status, ("unexpected", f"request failed with status {status}"))
        return json_response({"error": message or default_message, "path": "$",
                              "code": code or default_code}, status, headers)

    def auth_error(self, request: Request) -> Response | None:
        if not self.state.key_ok("leonardo", bearer_token(request)):
            return self.error(401)
        return None

    def error_for(self, fault: Fault, request: Request, model: str | None,
                  rule: Rule) -> Response | None:
        kind, status = fault.kind, fault.status
        if kind == "moderated":
            code_status, code, message = facts.LEONARDO_MODERATION_ERROR
            return self.error(code_status, fault.message or message, code)
        if kind == "quota":
            return self.error(402, fault.message)
        if kind == "auth":
            return self.error(401, fault.message)
        if kind == "permission":
            return self.error(403, fault.message)
        if status is not None:
            return self.error(status, fault.message,
                              headers=self.retry_headers(fault, rule, status))
        return None

    # ------------------------------------------------------------------ endpoints

    async def create(self, request: Request) -> Response:
        self.note(request, "generate")
        if (denied := self.auth_error(request)) is not None:
            return denied
        body, problem = await json_body(request)
        if problem is not None or not isinstance(body, dict):
            return self.error(400, f"invalid JSON body: {problem or 'not an object'}",
                              "invalid-json")
        model = body.get("modelId") or facts.LEONARDO_DEFAULT_MODEL
        model = model if isinstance(model, str) else str(model)

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            try:
                prompt, width, height, num = _check(body)
            except LeonardoInvalid as exc:
                return self.error(400, str(exc))
            fate = fate_of(fault, _FATES, "complete")
            job = Job(
                id=self.state.ids.uuid(), model=model, prompt=prompt,
                negative_prompt=str(body.get("negative_prompt") or ""), width=width,
                height=height, num_images=num, created_wall=self.state.clock.wall(),
                ready_at=self.state.clock.now() + rule.job_delay_s, fate=fate,
                fault_count=fault.count if fault else None, rule=rule,
                seed=seed_of(body.get("seed"), prompt),
                preset_style=body.get("presetStyle"))
            self.state.add_job(job.id, job)
            cost = credits_for(width, height, num, body.get("alchemy", True) is not False)
            return json_response({"sdGenerationJob": {
                "generationId": job.id, "apiCreditCost": cost,
                "cost": {"amount": str(cost), "unit": "CREDITS"}}})

        return await self.guarded(request, endpoint="generate", model=model,
                                  prompt=prompt_of(body),
                                  params=body, handler=handle)

    async def get_generation(self, request: Request) -> Response:
        job = self.find_job(request.path_params["id"], Job)
        model = job.model if job else None
        self.note(request, "poll", model)
        if (denied := self.auth_error(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if job is None:
                return json_response({"generations_by_pk": None})  # Hasura *_by_pk [2ND]
            return json_response({"generations_by_pk": self.generation_body(request, job)})

        return await self.guarded(request, endpoint="poll", model=model, handler=handle)

    def generation_body(self, request: Request, job: Job) -> dict[str, Any]:
        ready = job.fate != "stuck" and self.state.clock.now() >= job.ready_at
        status = "PENDING" if not ready else ("FAILED" if job.fate == "failed" else "COMPLETE")
        images: list[dict[str, Any]] = []
        if status == "COMPLETE":
            with self.state.jobs_lock:
                if job.images is None:
                    job.images = self.make_images(request, job)
                images = job.images
        return {
            "id": job.id, "status": status,
            "createdAt": datetime.fromtimestamp(job.created_wall, UTC)
            .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "prompt": job.prompt, "negativePrompt": job.negative_prompt,
            "modelId": job.model, "presetStyle": job.preset_style,
            "imageWidth": job.width, "imageHeight": job.height, "inferenceSteps": 15,
            "guidanceScale": 7, "seed": job.seed, "scheduler": "EULER_DISCRETE",
            "sdVersion": "PHOENIX", "public": False, "photoReal": False, "promptMagic": False,
            "ultra": None, "initStrength": None, "generated_images": images,
            "generation_elements": [],
        }

    def make_images(self, request: Request, job: Job) -> list[dict[str, Any]]:
        count = images_left(job.num_images, job.fate, job.fault_count)
        ttl = url_ttl(job.fate, job.rule)
        base_url = str(request.base_url).rstrip("/")
        out = []
        for i in range(count):
            recipe = ImageRecipe(job.width, job.height,
                                 self.state.image_seed("leonardo", seed_for(f"{job.prompt}#{i}")),
                                 "jpeg",
                                 corrupt=job.fate == "bad_image")
            token = self.state.files.put(recipe, vendor="leonardo", model=job.model,
                                         ttl_s=ttl, expired_status=job.rule.expired_status)
            out.append({
                "id": self.state.ids.uuid(),
                "url": f"{base_url}/_files/{token}/users/emulator/generations/{job.id}/"
                       f"Leonardo_Phoenix_{i}.jpg",
                "nsfw": job.fate == "nsfw", "likeCount": 0, "motionMP4URL": None,
                "fantasyAvatar": None, "imageToVideo": None, "motion": None,
                "motionModel": None, "motionStrength": None,
                "generated_image_variation_generics": []})
        return out

    async def me(self, request: Request) -> Response:
        self.note(request, "meta")
        if (denied := self.auth_error(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            return json_response({"user_details": [{
                "user": {"id": "00000000-0000-4000-8000-000000000001", "username": "emulator"},
                "apiConcurrencySlots": 10, "apiPaidTokens": 100000,
                "apiSubscriptionTokens": 0, "apiPlanTokenRenewalDate": None,
                "paidTokens": 0, "subscriptionTokens": 0, "subscriptionGptTokens": 0,
                "subscriptionModelTokens": 0, "tokenRenewalDate": None}]})

        return await self.guarded(request, endpoint="meta", model=None, handler=handle)

    async def pricing(self, request: Request) -> Response:
        self.note(request, "meta")
        if (denied := self.auth_error(request)) is not None:
            return denied
        body, problem = await json_body(request)

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if problem is not None or not isinstance(body, dict):
                return self.error(400, "invalid JSON body", "invalid-json")
            service = body.get("service")
            params = (body.get("serviceParams") or {}).get(service or "", {})
            if service != "IMAGE_GENERATION" or not isinstance(params, dict):
                return self.error(400, f"the emulator prices IMAGE_GENERATION only, not "
                                  f"{service!r}")
            cost = credits_for(int(params.get("imageWidth", 1024)),
                               int(params.get("imageHeight", 1024)),
                               int(params.get("numImages", 1)),
                               bool(params.get("alchemyMode", True)))
            return json_response({"calculateProductionApiServiceCost": {"cost": cost}})

        return await self.guarded(request, endpoint="meta", model=None,
                                  params=body if isinstance(body, dict) else None,
                                  handler=handle)
