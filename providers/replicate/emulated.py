"""The emulated Replicate predictions API: create (an official model's path, or
``/v1/predictions`` with a version), ``Prefer: wait``, get, cancel, models, versions and the
account; outputs served as expiring URLs; errors as problem details.

Imported only when an emulator runs (Starlette is the ``[emulator]`` extra). Shapes from
https://replicate.com/docs/reference/http and the official client ``replicate`` 1.0.7; the
published answers are in ``tests/corpus/replicate/``; wording marked [EMU] is the emulator's
own where no published answer was found.

A prediction is ``starting`` until ``job_delay_s`` (fault configuration, default 0.5 s) has
passed, then ends. Fault kinds (besides ``fallback_chain.emulator.faults.COMMON_KINDS``),
chosen on the create call:

- ``nsfw`` (also ``policy``): the prediction fails with the safety checker's words;
- ``job_failed``: it fails with another error; ``job_stuck``: it never ends (until canceled);
- ``expired``: its output URLs have expired; ``bad_image``: they serve broken bytes;
  ``fewer_images``: fewer outputs than ``num_outputs``;
- ``invalid_version``: 422 "Invalid version or not permitted"; ``quota``: 402; ``auth``: 401.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fallback_chain.emulator.common import bearer_token, json_body, json_response
from fallback_chain.emulator.faults import Fault, Rule
from fallback_chain.emulator.jobs import JobsAPI, fate_of, images_left, prompt_of, url_ttl
from fallback_chain.emulator.state import ImageRecipe
from fallback_chain.imaging import seed_for

#: The safety checker's words, as replicate/cog-flux raises them (tests/corpus/replicate/).
NSFW_ERROR = ("All generated images contained NSFW content. Try running it again with a "
              "different prompt.")
FAILED_ERROR = "Prediction failed: CUDA out of memory. [EMU]"
#: Problem details by status: ``(title, detail)``. 401, 402: published
#: (tests/corpus/replicate/), as is ``INVALID_VERSION`` (422); others [EMU].
PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The request body is not valid JSON."),
    401: ("Unauthenticated", "You did not pass a valid authentication token"),
    402: ("Insufficient credit", "You have insufficient credit to run this model. Go to "
          "https://replicate.com/account/billing#billing to purchase credit. Once you "
          "purchase credit, please wait a few minutes before trying again."),
    404: ("Not found", "The requested resource could not be found."),
    422: ("Input validation failed", "- input: the input does not match the model's "
          "schema [EMU]"),
    429: ("Too many requests", "Request was throttled. Expected available in 1 second."),
    500: ("Internal server error", "An unexpected error occurred."),
}
_FATES = {"nsfw": "nsfw", "policy": "nsfw", "job_failed": "failed", "job_stuck": "stuck",
          "expired": "expired", "bad_image": "bad_image", "fewer_images": "fewer"}
_STATUS_KINDS = {"quota": 402, "auth": 401, "invalid_version": 422}
INVALID_VERSION = ("Invalid version or not permitted", "The specified version does not exist "
                   "(or perhaps you don't have permission to use it?)")
_RATIOS = {"1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"}
_FORMATS = {"webp": "webp", "jpg": "jpeg", "png": "png"}
DEFAULT_VERSION = "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637"


@dataclass
class Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    created_wall: float
    ready_at: float
    fate: str
    fault_count: int | None
    rule: Rule
    canceled: bool = False
    output: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ReplicateInvalid(Exception):
    pass


def check_input(data: Any) -> tuple[str, int, str, str]:
    """``(prompt, num_outputs, aspect_ratio, output_format)`` or ``ReplicateInvalid``."""
    if not isinstance(data, dict):
        raise ReplicateInvalid("input: Invalid type. Expected: object")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise ReplicateInvalid("input: prompt is required")
    num = data.get("num_outputs", 1)
    if not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= 4:
        raise ReplicateInvalid("input.num_outputs: Must be less than or equal to 4")
    ratio = data.get("aspect_ratio", "1:1")
    if ratio not in _RATIOS:
        raise ReplicateInvalid(f"input.aspect_ratio: aspect_ratio must be one of the "
                               f"following: {', '.join(sorted(_RATIOS))}")
    fmt = data.get("output_format", "webp")
    if fmt not in _FORMATS:
        raise ReplicateInvalid("input.output_format: output_format must be one of the "
                               "following: webp, jpg, png")
    return prompt, num, ratio, fmt


def size_for_ratio(ratio: str) -> tuple[int, int]:
    """About one megapixel at ``ratio``, sides multiples of 16 (FLUX's grid)."""
    w, h = (int(x) for x in ratio.split(":"))
    scale = (1024 * 1024 / (w * h)) ** 0.5
    return round(w * scale / 16) * 16, round(h * scale / 16) * 16


class ReplicateAPI(JobsAPI):
    vendor = "replicate"
    fault_kinds = frozenset({"nsfw", "job_failed", "job_stuck", "expired", "bad_image",
                             "fewer_images", "invalid_version"})
    malformed_kinds = ("truncated", "html", "bad_image")
    retry_after_format = "seconds"

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models/{owner}/{name}/predictions", self.create_for_model,
                  methods=["POST"]),
            Route("/v1/predictions", self.create_for_version, methods=["POST"]),
            Route("/v1/predictions/{id}", self.get, methods=["GET"]),
            Route("/v1/predictions/{id}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/models/{owner}/{name}", self.model, methods=["GET"]),
            Route("/v1/models/{owner}/{name}/versions/{version}", self.version,
                  methods=["GET"]),
            Route("/v1/account", self.account, methods=["GET"]),
        ]

    # ------------------------------------------------------------------ errors

    def error(self, status: int, detail: str | None = None,
              headers: dict[str, str] | None = None, **extra: Any) -> Response:
        title, default = PROBLEMS.get(status, ("Error", f"request failed with status {status}"))
        return json_response({"title": title, "detail": detail or default, "status": status,
                              **extra}, status, headers)

    def error_for(self, fault: Fault, request: Request, model: str | None,
                  rule: Rule) -> Response | None:
        status = _STATUS_KINDS.get(fault.kind) or fault.status
        if status is None:
            return None
        if fault.kind == "invalid_version":
            title, detail = INVALID_VERSION
            return json_response({"title": title, "detail": fault.message or detail,
                                  "status": 422}, 422)
        if status != 429:
            return self.error(status, fault.message)
        return self.error(429, fault.message, self.retry_headers(fault, rule, 429),
                          retry_after=round(self.retry_seconds(fault, rule)))

    def denied(self, request: Request) -> Response | None:
        token = bearer_token(request)
        if token is None:
            return self.error(401, "You did not pass an authentication token")
        if not self.state.key_ok("replicate", token):
            return self.error(401)
        return None

    # ------------------------------------------------------------------ endpoints

    async def create_for_model(self, request: Request) -> Response:
        owner, name = request.path_params["owner"], request.path_params["name"]
        return await self._create(request, f"{owner}/{name}", DEFAULT_VERSION)

    async def create_for_version(self, request: Request) -> Response:
        self.note(request, "generate")
        body, _ = await json_body(request)
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str) or not version:
            return self.error(422, "version is required")
        owner_name, _, vid = version.rpartition(":")
        return await self._create(request, owner_name or "emulator/community-model",
                                  vid or version)

    async def _create(self, request: Request, model: str, version: str) -> Response:
        self.note(request, "generate", model)
        if (denied := self.denied(request)) is not None:
            return denied
        body, problem = await json_body(request)
        if problem is not None or not isinstance(body, dict):
            return self.error(400)
        data = body.get("input")
        wait_s = _prefer_wait(request.headers.get("prefer", ""))

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            try:
                check_input(data)
            except ReplicateInvalid as exc:
                return json_response({"title": "Input validation failed", "detail":
                                      f"- {exc}", "status": 422,
                                      "invalid_fields": [{"type": "invalid", "field": "input",
                                                          "description": str(exc)}]}, 422)
            now = self.state.clock.now()
            pred = Prediction(
                id=self.state.ids.hex(13)[:26], model=model, version=version,
                input=dict(data or {}), created_wall=self.state.clock.wall(),
                ready_at=now + rule.job_delay_s,
                fate=fate_of(fault, _FATES, "ok"),
                fault_count=fault.count if fault else None, rule=rule)
            self.state.add_job(f"replicate/{pred.id}", pred)
            if wait_s:
                await self.state.clock.sleep(max(0.0, min(wait_s, pred.ready_at - now)))
            return json_response(self.body(request, pred), 201)

        return await self.guarded(request, endpoint="generate", model=model,
                                  prompt=prompt_of(data),
                                  params=body, handler=handle)

    def _find(self, request: Request) -> Prediction | None:
        return self.find_job(f"replicate/{request.path_params['id']}", Prediction)

    async def get(self, request: Request) -> Response:
        pred = self._find(request)
        self.note(request, "poll", pred.model if pred else None)
        if (denied := self.denied(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if pred is None:
                return self.error(404)
            return json_response(self.body(request, pred))

        return await self.guarded(request, endpoint="poll", model=pred.model if pred else None,
                                  handler=handle)

    async def cancel(self, request: Request) -> Response:
        pred = self._find(request)
        self.note(request, "meta", pred.model if pred else None)
        if (denied := self.denied(request)) is not None:
            return denied
        if pred is None:
            return self.error(404)
        if self.status_of(pred) in ("starting", "processing"):
            pred.canceled = True
        return json_response(self.body(request, pred))

    async def model(self, request: Request) -> Response:
        self.note(request, "meta")
        if (denied := self.denied(request)) is not None:
            return denied
        owner, name = request.path_params["owner"], request.path_params["name"]
        return json_response({
            "url": f"https://replicate.com/{owner}/{name}", "owner": owner, "name": name,
            "description": "emulated model", "visibility": "public", "run_count": 0,
            "latest_version": self.version_body(DEFAULT_VERSION)})

    async def version(self, request: Request) -> Response:
        self.note(request, "meta")
        if (denied := self.denied(request)) is not None:
            return denied
        return json_response(self.version_body(request.path_params["version"]))

    def version_body(self, version: str) -> dict[str, Any]:
        return {"id": version, "created_at": "2024-08-01T00:00:00.000000Z",
                "cog_version": "0.9.13", "openapi_schema": {
                    "components": {"schemas": {"Output": {
                        "type": "array", "items": {"type": "string", "format": "uri"}}}}}}

    async def account(self, request: Request) -> Response:
        self.note(request, "meta")
        if (denied := self.denied(request)) is not None:
            return denied
        return json_response({"type": "user", "username": "emulator", "name": "Emulator",
                              "github_url": None})

    # ------------------------------------------------------------------ predictions

    def status_of(self, pred: Prediction) -> str:
        if pred.canceled:
            return "canceled"
        if pred.fate == "stuck" or self.state.clock.now() < pred.ready_at:
            return "starting"
        return {"nsfw": "failed", "failed": "failed"}.get(pred.fate, "succeeded")

    def body(self, request: Request, pred: Prediction) -> dict[str, Any]:
        status = self.status_of(pred)
        base = str(request.base_url).rstrip("/")
        output = self.outputs(request, pred) if status == "succeeded" else None
        error = {"nsfw": NSFW_ERROR, "failed": FAILED_ERROR}.get(pred.fate) \
            if status == "failed" else None
        created = datetime.fromtimestamp(pred.created_wall, UTC).isoformat().replace(
            "+00:00", "Z")
        done = status in ("succeeded", "failed", "canceled")
        return {
            "id": pred.id, "model": pred.model, "version": pred.version, "input": pred.input,
            "logs": "", "output": output, "data_removed": False, "error": error,
            "status": status, "source": "api", "created_at": created,
            "started_at": created if done else None, "completed_at": created if done else None,
            "urls": {"get": f"{base}/v1/predictions/{pred.id}",
                     "cancel": f"{base}/v1/predictions/{pred.id}/cancel",
                     "stream": f"{base}/v1/predictions/{pred.id}/stream",
                     "web": f"https://replicate.com/p/{pred.id}"},
            "metrics": {"predict_time": round(pred.rule.job_delay_s, 3),
                        "image_count": len(output or [])} if done else {},
        }

    def outputs(self, request: Request, pred: Prediction) -> list[str]:
        with self.state.jobs_lock:
            if pred.output is not None:
                return pred.output
            prompt, num, ratio, fmt = check_input(pred.input)
            count = images_left(num, pred.fate, pred.fault_count)
            width, height = size_for_ratio(ratio)
            seed = pred.input.get("seed")
            base = str(request.base_url).rstrip("/")
            ttl = url_ttl(pred.fate, pred.rule)
            urls = []
            for i in range(count):
                image_seed = seed_for(f"{prompt}#{seed}#{i}")
                recipe = ImageRecipe(width, height,
                                     self.state.image_seed("replicate", image_seed),
                                     _FORMATS[fmt], corrupt=pred.fate == "bad_image")
                token = self.state.files.put(recipe, vendor="replicate", model=pred.model,
                                             ttl_s=ttl,
                                             expired_status=pred.rule.expired_status)
                urls.append(f"{base}/_files/{token}/xezq/{pred.id}/out-{i}.{fmt}")
            pred.output = urls
            return urls


def _prefer_wait(header: str) -> float:
    """Seconds of ``Prefer: wait`` (``wait`` alone: 60; ``wait=N``: N, 1..60); 0 if absent."""
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "wait":
            try:
                return float(min(60, max(1, int(value)))) if value else 60.0
            except ValueError:
                return 60.0
    return 0.0
