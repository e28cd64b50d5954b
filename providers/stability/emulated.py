"""The emulated Stability AI Stable Image API: ``POST /v2beta/stable-image/generate/{ultra,
core,sd3}``, multipart in, an image (``Accept: image/*``) or base64 JSON
(``Accept: application/json``) out, and its errors ``{"id", "name", "errors": [...]}``.

Imported only when an emulator runs (Starlette is the ``[emulator]`` extra). Shapes from
https://platform.stability.ai/docs/api-reference (tag Generate) and the published answers in
``tests/corpus/stability/``; wording marked [EMU] is the emulator's own where no published
answer was found.

Fault kinds (besides ``fallback_chain.emulator.faults.COMMON_KINDS``):

- ``content_filtered``: 200 with ``finish-reason: CONTENT_FILTERED`` (a blurred image);
- ``moderated`` (also ``policy``): 403 ``content_moderation``;
- ``quota``: 402 ``payment_required``; ``auth``: 401;
- ``bad_image``: 200 whose bytes are not a whole image; ``unknown_finish``: 200 with a
  finish reason the adapter does not know.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fallback_chain.emulator.common import (
    VendorAPI,
    bearer_token,
    fmt_seconds,
    json_response,
    retry_after_headers,
)
from fallback_chain.emulator.faults import Fault, Rule
from fallback_chain.emulator.state import ImageRecipe
from fallback_chain.imaging import seed_for

from .wire import API_PREFIX, ASPECT_RATIOS, MAX_SEED, OUTPUT_FORMATS

ENDPOINT_MODELS = {"ultra": "stable-image-ultra", "core": "stable-image-core"}
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
#: ``(name, message)`` by status. 400 (name), 402, 403, 429, 500: published
#: (tests/corpus/stability/: issues and Stability's OpenAPI examples); 401, 404 [EMU].
ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "invalid request"),
    401: ("unauthorized", "authorization: invalid or missing API key"),
    402: ("payment_required", "You lack sufficient credits to make this request. Please "
          "purchase more credits at https://platform.stability.ai/account/credits and try "
          "again."),
    403: ("content_moderation", "Your request was flagged by our content moderation system, "
          "as a result your request was denied and you were not charged."),
    404: ("not_found", "the requested resource was not found"),
    429: ("rate_limit_exceeded", "You have exceeded the rate limit of 150 requests within a "
          "10 second period, and have been timed out for {seconds} seconds."),
    500: ("internal_error", "An unexpected server error has occurred, please try again "
          "later."),
}
_STATUS_KINDS = {"moderated": 403, "policy": 403, "quota": 402, "auth": 401}


class StabilityInvalid(Exception):
    pass


def size_for_ratio(ratio: str) -> tuple[int, int]:
    """About one megapixel at ``ratio``, sides multiples of 64 (1:1 -> 1024x1024)."""
    w, h = (int(x) for x in ratio.split(":"))
    scale = math.sqrt(1024 * 1024 / (w * h))
    return max(64, round(w * scale / 64) * 64), max(64, round(h * scale / 64) * 64)


def check_form(endpoint: str, form: dict[str, str]) -> tuple[str, str, str, str]:
    """``(model, prompt, aspect_ratio, output_format)`` or ``StabilityInvalid``."""
    prompt = form.get("prompt", "")
    if not prompt.strip():
        raise StabilityInvalid("prompt: cannot be empty")
    if len(prompt) > 10_000:
        raise StabilityInvalid("prompt: must be at most 10000 characters")
    ratio = form.get("aspect_ratio", "1:1")
    if ratio not in ASPECT_RATIOS:
        raise StabilityInvalid(f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}")
    fmt = form.get("output_format", "png")
    if fmt not in OUTPUT_FORMATS:
        raise StabilityInvalid(f"output_format: must be one of {', '.join(OUTPUT_FORMATS)}")
    seed = form.get("seed", "0")
    if not seed.isdigit() or int(seed) > MAX_SEED:
        raise StabilityInvalid(f"seed: must be an integer in [0, {MAX_SEED}]")
    if endpoint == "sd3":
        model = form.get("model", "sd3.5-large")
        if model not in SD3_MODELS:
            raise StabilityInvalid(f"model: must be one of {', '.join(SD3_MODELS)}")
    else:
        model = ENDPOINT_MODELS[endpoint]
    return model, prompt, ratio, fmt


class StabilityAPI(VendorAPI):
    vendor = "stability"
    fault_kinds = frozenset({"content_filtered", "moderated", "bad_image", "unknown_finish"})
    malformed_kinds = ("truncated", "html", "bad_image")
    retry_after_format = "none"  # the docs promise no Retry-After on 429

    def routes(self) -> list[Route]:
        return [Route(f"{API_PREFIX}/{{endpoint}}", self.generate, methods=["POST"]),
                Route("/v1/user/balance", self.balance, methods=["GET"])]

    def error(self, status: int, message: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
        name, default = ERRORS.get(status, ("error", f"request failed with status {status}"))
        return json_response({"errors": [message or default], "id": self.state.ids.hex(16),
                              "name": name}, status, headers)

    def error_for(self, fault: Fault, request: Request, model: str | None,
                  rule: Rule) -> Response | None:
        status = _STATUS_KINDS.get(fault.kind) or fault.status
        if status is None:
            return None
        headers: dict[str, str] = {}
        message = fault.message
        if status == 429:
            seconds = fault.retry_after if fault.retry_after is not None else rule.retry_after
            fmt = fault.retry_after_format or rule.retry_after_format
            headers = retry_after_headers(fmt, seconds, self.state.clock.wall())
            message = message or ERRORS[429][1].format(seconds=fmt_seconds(seconds))
        return self.error(status, message, headers)

    async def generate(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        self.note(request, "generate", ENDPOINT_MODELS.get(endpoint))
        if endpoint not in ("ultra", "core", "sd3"):
            return self.error(404)
        if not self.state.key_ok("stability", bearer_token(request)):
            return self.error(401)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return self.error(400, "content-type: must be multipart/form-data")
        form = await _form(request)
        model = form.get("model") if endpoint == "sd3" else ENDPOINT_MODELS[endpoint]
        accept = request.headers.get("accept", "image/*")

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            try:
                _, prompt, ratio, fmt = check_form(endpoint, form)
            except StabilityInvalid as exc:
                return self.error(400, str(exc))
            seed = int(form.get("seed", "0")) or seed_for(prompt) % MAX_SEED
            width, height = size_for_ratio(ratio)
            kind = fault.kind if fault else None
            recipe = ImageRecipe(width, height, self.state.image_seed("stability", seed), fmt,
                                 corrupt=kind == "bad_image",
                                 blank=kind == "content_filtered")
            finish = {"content_filtered": "CONTENT_FILTERED",
                      "unknown_finish": "ERROR"}.get(kind or "", "SUCCESS")
            return self.image_answer(recipe, finish, seed, accept)

        prompt = form.get("prompt")
        return await self.guarded(request, endpoint="generate", model=model or "sd3.5-large",
                                  prompt=prompt, params=dict(form), handler=handle)

    async def balance(self, request: Request) -> Response:
        """``GET /v1/user/balance``: ``{"credits": <float>}`` (free; the adapter's check)."""
        self.note(request, "meta")
        if not self.state.key_ok("stability", bearer_token(request)):
            return self.error(401)

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            return json_response({"credits": 1000.0})

        return await self.guarded(request, endpoint="meta", model=None, handler=handle)

    def image_answer(self, recipe: ImageRecipe, finish: str, seed: int,
                     accept: str) -> Response:
        data = recipe.render()
        headers = {"x-request-id": self.state.ids.hex(16)}
        if "application/json" in accept:
            body: dict[str, Any] = {"image": base64.b64encode(data).decode(),
                                    "finish_reason": finish, "seed": seed}
            return Response(json.dumps(body), status_code=200, headers=headers,
                            media_type=f"application/json; type={recipe.mime_type}")
        headers.update({"finish-reason": finish, "seed": str(seed)})
        return Response(data, status_code=200, headers=headers, media_type=recipe.mime_type)


async def _form(request: Request) -> dict[str, str]:
    """The text fields of the multipart form (files are not used by text-to-image)."""
    form = await request.form()
    return {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
