"""OpenAI Images API: ``/v1/images/generations``, ``/v1/images/edits``, ``/v1/models``."""

from __future__ import annotations

import base64
import hashlib
import math
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from fallback_chain.imaging import InvalidImageError, inspect_image, seed_for

from . import facts
from . import openai_moderation as moderation
from .common import (
    VendorAPI,
    bearer_token,
    fmt_seconds,
    json_body,
    json_response,
    request_info,
    retry_after_headers,
)
from .faults import Fault, Rule
from .openai_rules import (
    Checked,
    OpenAIInvalid,
    check_edit,
    check_generation,
    coerce_form,
    invalid_value,
)
from .state import ImageRecipe

_CREATED_EPOCH = 1_767_225_600  # models' "created" field (2026-01-01)
#: The API's documented limits on edit inputs: up to 16 images, each less than 50 MB
#: (https://platform.openai.com/docs/api-reference/images/createEdit).
MAX_EDIT_IMAGES = 16
MAX_EDIT_PART_BYTES = 50 * 1024 * 1024


def corrupt_base64(data: str) -> str:
    """Base64 that fails to decode: a bad character and a length of 4k+1 data characters."""
    cut = data[: max(5, (len(data) // 8) * 4 + 1)]
    return cut[:-1] + "%" + cut[-1]


class OpenAIAPI(VendorAPI):
    vendor = "openai"
    #: This vendor's own fault kinds (besides ``faults.COMMON_KINDS``).
    fault_kinds = frozenset({
        "bad_base64", "bad_image", "fewer_images", "moderation_blocked",
        "content_policy_violation", "invalid_value", "unknown_parameter", "model_not_found",
        "credit_balance_exhausted", "permission", "blank_image", "flagged"})
    #: What ``malformed`` picks from (seeded): a 200 the client cannot use.
    malformed_kinds = ("truncated", "html", "bad_base64", "bad_image")
    #: How a 429's Retry-After is given unless the fault configuration says otherwise.
    retry_after_format = "seconds"
    #: The largest image-edit body the emulator reads (refused with 413 before parsing): a
    #: test double needs no more, and each request costs about its size in memory.
    max_edit_body_bytes = 64 * 1024 * 1024

    def claims_models_route(self, request: Request, model: str = "") -> bool:
        return True  # asked after Gemini: every other GET /v1/models[/{m}] is OpenAI's

    def routes(self) -> list[Route]:
        return [
            Route("/v1/images/generations", self.generations, methods=["POST"]),
            Route("/v1/images/edits", self.edits, methods=["POST"]),
            Route("/v1/moderations", self.moderations, methods=["POST"]),
        ]

    # ------------------------------------------------------------------ errors

    def error(self, status: int, type_: str, code: str | None, message: str, *,
              param: str | None = None, headers: dict[str, str] | None = None,
              extra: dict[str, Any] | None = None) -> Response:
        body: dict[str, Any] = {"message": message, "type": type_, "param": param, "code": code}
        body.update(extra or {})
        all_headers = {"x-request-id": self.request_id(), "openai-version": "2020-10-01",
                       **(headers or {})}
        return json_response({"error": body}, status, all_headers)

    def named_error(self, name: str, *, headers: dict[str, str] | None = None,
                    extra: dict[str, Any] | None = None, message: str | None = None,
                    **fmt: Any) -> Response:
        status, type_, code, template = facts.OPENAI_ERRORS[name]
        return self.error(status, type_, code, message or template.format(**fmt),
                          headers=headers, extra=extra)

    def request_id(self) -> str:
        return "req_" + self.state.ids.hex(16)

    def invalid(self, exc: OpenAIInvalid) -> Response:
        return self.error(exc.status, "invalid_request_error", exc.code, exc.message,
                          param=exc.param)

    def auth_error(self, request: Request) -> Response | None:
        key = bearer_token(request)
        if key is None:
            return self.named_error("missing_api_key")
        if not self.state.key_ok("openai", key):
            masked = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
            return self.named_error("invalid_api_key", masked_key=masked)
        return None

    def error_for(self, fault: Fault, request: Request, model: str | None,
                  rule: Rule) -> Response | None:
        kind, status = fault.kind, fault.status
        model = model or "gpt-image-1.5"
        family = facts.openai_family(model) or "gpt-image"
        message = fault.message
        if kind == "policy":
            kind = "moderation_blocked" if family.startswith("gpt-image") else \
                "content_policy_violation"
        if status == 429:
            seconds = fault.retry_after if fault.retry_after is not None else rule.retry_after
            fmt = fault.retry_after_format or rule.retry_after_format
            headers = retry_after_headers(fmt, seconds, self.state.clock.wall())
            return self.named_error("rate_limit_exceeded", headers=headers, message=message,
                                    model=model, retry_after=fmt_seconds(seconds))
        if kind in ("quota", "credit_balance_exhausted"):
            name = "insufficient_quota" if kind == "quota" else kind
            return self.named_error(name, message=message)
        if kind == "moderation_blocked":
            categories = list(fault.categories or ("sexual",))
            rid = self.request_id()
            details = {"moderation_stage": fault.reason or "input", "categories": categories}
            return self.named_error("moderation_blocked", message=message, request_id=rid,
                                    categories=", ".join(categories),
                                    extra={"moderation_details": details})
        if kind == "content_policy_violation":
            return self.named_error(kind, message=message)
        if kind == "invalid_value" or status == 400:
            param = fault.reason or "size"
            return self.error(400, "invalid_request_error", "invalid_value",
                              message or f"Invalid value for '{param}'.", param=param)
        if kind == "unknown_parameter":
            param = fault.reason or "response_format"
            return self.error(400, "invalid_request_error", "unknown_parameter",
                              message or f"Unknown parameter: '{param}'.", param=param)
        if kind == "auth" or status == 401:
            return self.named_error("invalid_api_key", message=message, masked_key="sk-***")
        if kind == "permission" or status == 403:
            return self.named_error("organization_not_verified", message=message, model=model)
        if kind == "model_not_found" or status == 404:
            return self.named_error("model_not_found", message=message, model=model)
        if status == 502:
            return HTMLResponse(facts.BAD_GATEWAY_HTML, status_code=502)
        if status == 503:
            return self.named_error("overloaded", message=message)
        if status is not None and status >= 500:
            _s, type_, code, template = facts.OPENAI_ERRORS["server_error"]
            return self.error(status, type_, code, message or template)
        if status is not None:
            return self.error(status, "invalid_request_error", None,
                              message or f"Request failed with status {status}.")
        return None

    # ------------------------------------------------------------------ endpoints

    async def generations(self, request: Request) -> Response:
        self.note(request, "generate")
        if (denied := self.auth_error(request)) is not None:
            return denied
        body, problem = await json_body(request)
        if problem is not None:
            return self.error(400, "invalid_request_error", None,
                              f"We could not parse the JSON body of your request. ({problem})")
        params = body if isinstance(body, dict) else {"_body": body}
        model = body.get("model") if isinstance(body, dict) else None
        prompt = body.get("prompt") if isinstance(body, dict) else None

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            try:
                checked = check_generation(body)
            except OpenAIInvalid as exc:
                return self.invalid(exc)
            return self.images_response(request, checked, fault, rule)

        return await self.guarded(
            request, endpoint="generate",
            model=model if isinstance(model, str) else None,
            prompt=prompt if isinstance(prompt, str) else None, params=params, handler=handle)

    async def edits(self, request: Request) -> Response:
        self.note(request, "generate")
        if (denied := self.auth_error(request)) is not None:
            return denied
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return self.error(400, "invalid_request_error", None, (
                "The emulator accepts image edits as multipart/form-data (what the Python SDK "
                "sends)."))
        if (refused := self._edit_size_refusal(request)) is not None:
            return refused
        texts: dict[str, str] = {}
        images: list[bytes] = []
        mask: bytes | None = None
        params: dict[str, Any] = {}
        async with request.form(max_files=MAX_EDIT_IMAGES + 1,
                                max_part_size=MAX_EDIT_PART_BYTES) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    params.setdefault(key, []).append(
                        {"filename": value.filename, "content_type": value.content_type,
                         "size": len(data)})
                    if key in ("image", "image[]"):
                        images.append(data)
                    elif key == "mask":
                        mask = data
                    else:
                        texts[key] = ""  # an unknown file part: rejected as unknown below
                else:
                    texts[key] = value
                    params[key] = value
        model = texts.get("model") or facts.OPENAI_DEFAULT_MODEL["edits"]
        request_info(request).input_images = tuple(
            hashlib.sha256(data).hexdigest() for data in images)

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            try:
                checked = check_edit(coerce_form(texts), len(images), mask is not None)
                first = _check_inputs(images, mask, checked)
            except OpenAIInvalid as exc:
                return self.invalid(exc)
            if "size" not in texts and first is not None:
                checked.width, checked.height = first
                checked.size = f"{first[0]}x{first[1]}"
            return self.images_response(request, checked, fault, rule)

        return await self.guarded(request, endpoint="generate", model=model,
                                  prompt=texts.get("prompt"), params=params, handler=handle)

    async def moderations(self, request: Request) -> Response:
        """``POST /v1/moderations`` (see ``openai_moderation``): free, flags only by fault."""
        self.note(request, "moderate")
        if (denied := self.auth_error(request)) is not None:
            return denied
        body, problem = await json_body(request)
        if problem is not None:
            return self.error(400, "invalid_request_error", None,
                              f"We could not parse the JSON body of your request. ({problem})")
        model = body.get("model") if isinstance(body, dict) else None
        model = model if isinstance(model, str) and model else moderation.DEFAULT_MODEL
        texts = moderation.inputs_of(body)

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if texts is None:
                return self.error(400, "invalid_request_error", None,
                                  "'input' must be a string or a list of inputs.",
                                  param="input")
            rid = self.request_id()
            return json_response(moderation.moderation_body(rid, model, texts, fault), 200,
                                 {"x-request-id": rid})

        return await self.guarded(request, endpoint="moderate", model=model,
                                  prompt=texts[0] if texts else None,
                                  params=body if isinstance(body, dict) else None,
                                  handler=handle)

    def _edit_size_refusal(self, request: Request) -> Response | None:
        """A 411/413 for an edit whose body is unbounded or larger than
        ``max_edit_body_bytes``, before a byte of it is parsed."""
        declared = request.headers.get("content-length", "").strip()
        if not declared.isdigit():
            return self.error(411, "invalid_request_error", None, (
                "The emulator needs a Content-Length on image edits (the Python SDK always "
                "sends one)."))
        if int(declared) > self.max_edit_body_bytes:
            return self.error(413, "invalid_request_error", "request_too_large", (
                f"The request body is {int(declared):,} bytes; the emulator accepts image "
                f"edits of up to {self.max_edit_body_bytes:,} bytes."))
        return None

    async def list_models(self, request: Request) -> Response:
        self.note(request, "meta")
        if (denied := self.auth_error(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            data = [_model_object(m) for m in facts.OPENAI_LISTED_MODELS]
            return json_response({"object": "list", "data": data}, 200,
                                 {"x-request-id": self.request_id()})

        return await self.guarded(request, endpoint="meta", model=None, handler=handle)

    async def get_model(self, request: Request, model: str) -> Response:
        """The credentials preflight: costs nothing; 404 for a model that does not exist."""
        self.note(request, "meta", model)
        if (denied := self.auth_error(request)) is not None:
            return denied

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if facts.openai_family(model) is None:
                return self.named_error("model_not_found", model=model)
            return json_response(_model_object(model), 200, {"x-request-id": self.request_id()})

        return await self.guarded(request, endpoint="meta", model=model, handler=handle)

    # ------------------------------------------------------------------ success body

    def images_response(self, request: Request, req: Checked, fault: Fault | None,
                        rule: Rule) -> Response:
        kind = fault.kind if fault else None
        count = req.n
        if kind == "fewer_images":
            count = fault.count if fault and fault.count is not None else req.n - 1
            count = max(0, min(count, req.n - 1))
        base_url = str(request.base_url).rstrip("/")
        data: list[dict[str, Any]] = []
        for i in range(count):
            recipe = ImageRecipe(req.width, req.height,
                                 self.state.image_seed("openai", seed_for(f"{req.prompt}#{i}")),
                                 req.output_format, alpha=req.background == "transparent",
                                 corrupt=kind == "bad_image" or (
                                     kind == "bad_base64" and req.response_format == "url"),
                                 blank=kind == "blank_image")
            item: dict[str, Any] = {}
            if req.response_format == "url":
                token = self.state.files.put(recipe, vendor="openai", model=req.model,
                                             ttl_s=rule.url_ttl_s,
                                             expired_status=rule.expired_status)
                item["url"] = (f"{base_url}/_files/{token}/img-{token}.png"
                               f"?se={int(self.state.clock.wall() + rule.url_ttl_s)}&sp=r"
                               "&sig=emulated")
            else:
                b64 = base64.b64encode(recipe.render()).decode()
                item["b64_json"] = corrupt_base64(b64) if kind == "bad_base64" else b64
            if req.family == "dall-e-3":
                item["revised_prompt"] = f"{req.prompt.strip()}, rendered in rich detail."
            data.append(item)
        body: dict[str, Any] = {"created": int(self.state.clock.wall()), "data": data}
        if req.is_gpt:
            body.update(background=req.background, output_format=req.output_format,
                        quality=req.quality, size=req.size, usage=self.usage(req))
        headers = {"x-request-id": self.request_id(), "openai-version": "2020-10-01",
                   "openai-processing-ms": "1"}
        return json_response(body, 200, headers)

    def usage(self, req: Checked) -> dict[str, Any]:
        text_tokens = max(1, math.ceil(len(req.prompt) / 4))  # [EMU] a rough tokenizer
        image_in = req.input_images * facts.OPENAI_EDIT_INPUT_IMAGE_TOKENS
        per_image = output_tokens(req.family, req.quality, req.width, req.height)
        out = per_image * req.n
        return {"input_tokens": text_tokens + image_in, "output_tokens": out,
                "total_tokens": text_tokens + image_in + out,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_in},
                "output_tokens_details": {"image_tokens": out, "text_tokens": 0}}


def output_tokens(family: str, quality: str, width: int, height: int) -> int:
    """Output image tokens for one image.  [DOC table for gpt-image-1.x; 2ND for 2.x]"""
    if family == "gpt-image":
        table = facts.GPT_IMAGE_OUTPUT_TOKENS.get(quality, facts.GPT_IMAGE_OUTPUT_TOKENS["medium"])
        key = f"{width}x{height}"
        return table.get(key, round(table["1024x1024"] * width * height / 1024**2))
    table = (facts.GPT_IMAGE_2_0_TOKENS_1024 if family == "gpt-image-2"
             else facts.GPT_IMAGE_2_TOKENS_1024)
    base = table.get(quality, table["medium"])
    return max(1, round(base * width * height / 1024**2))


def _check_inputs(images: list[bytes], mask: bytes | None,
                  req: Checked) -> tuple[int, int] | None:
    """Decode every input image and the mask; return the first image's size."""
    first: tuple[int, int] | None = None
    for i, data in enumerate(images, 1):
        try:
            info = inspect_image(data)
        except InvalidImageError:
            raise invalid_value("image", f"image {i}", detail=(
                f"Invalid image file or mode for image {i}, please check your image "
                "file.")) from None
        if req.family == "dall-e-2" and (info.mime_type != "image/png"
                                         or info.width != info.height):
            raise invalid_value("image", f"image {i}", detail=(
                "Invalid input image - format must be a square PNG for dall-e-2."))
        if first is None:
            first = (info.width, info.height)
    if mask is not None and first is not None:
        try:
            minfo = inspect_image(mask)
        except InvalidImageError:
            raise invalid_value("mask", "mask", detail="Invalid mask image file.") from None
        if (minfo.width, minfo.height) != first or minfo.mime_type != "image/png":
            raise invalid_value("mask", "mask", detail=(
                "Invalid mask: the mask must be a PNG with the same dimensions as the image."))
        if not minfo.has_alpha:  # [DOC] "transparent areas ... indicate where to edit"; [EMU]
            raise invalid_value("mask", "mask", detail=(  # the exact wording is ours
                "Invalid mask: the mask must have an alpha channel (transparent = edit)."))
    if first is not None and f"{first[0]}x{first[1]}" in facts.OPENAI_SIZES["gpt-image"]:
        return first
    return None


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": _CREATED_EPOCH, "owned_by": "system"}
