"""The emulated Vertex AI API: Gemini's ``generateContent`` (``fallback_chain.emulator.
gemini_api``, whose answers, safety bodies and usage it reuses) on Vertex's project/location
URLs, with OAuth bearer tokens or an express-mode API key and Vertex's own error bodies.

Routes (``{v}``: ``v1`` or ``v1beta1``)::

    POST /{v}/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent
    POST /{v}/publishers/google/models/{model}:generateContent            (express mode)
    GET  /{v}/projects/{p}/locations/{l}/publishers/google/models/{model}
    GET  /{v}/publishers/google/models/{model}                             (the check)

Credentials: ``Authorization: Bearer <token>`` or ``x-goog-api-key`` / ``?key=``, either
compared with the emulator's key for ``vertex`` (so a test passes the emulator's key as a
static OAuth token, e.g. ``google.oauth2.credentials.Credentials(token=key)``).

Fault kinds: the common ones and Gemini's 200-with-a-refusal kinds (``image_safety``,
``blocked_prompt``, ``prohibited_content``, ``no_image``, ``text_only``...), plus
``quota_per_day`` (429 per-day quota), ``permission`` (403 ``PERMISSION_DENIED``),
``not_found`` (404 publisher model), ``precondition`` (400 ``FAILED_PRECONDITION``, billing).
A ``429`` is Vertex's bare "Resource exhausted" with no delay (Vertex sends none), unless the
fault configuration asks for a Retry-After header.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fallback_chain.emulator.common import bearer_token, json_response, retry_after_headers
from fallback_chain.emulator.facts import GEMINI_ERROR_STATUS as _STATUS
from fallback_chain.emulator.faults import Fault, Rule
from fallback_chain.emulator.gemini_api import GeminiAPI

#: [PUB] Vertex's 429 (tests/corpus/vertex/).
RESOURCE_EXHAUSTED = ("Resource exhausted. Please try again later. Please refer to "
                      "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for "
                      "more details.")
#: [PUB] the wording of Vertex's quota errors, for a per-day quota.
QUOTA_PER_DAY = (
    "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_day_per_project"
    "_per_base_model with base model: {model}. Please submit a quota increase request. "
    "https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.")
#: Google's standard answer to a request without valid OAuth credentials.
UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.")
PERMISSION = ("Permission 'aiplatform.endpoints.predict' denied on resource "
              "'//aiplatform.googleapis.com/{resource}' (or it may not exist).")
NOT_FOUND = "Publisher Model `{resource}` was not found or your project does not have access " \
            "to it."
PRECONDITION = ("Billing is disabled for project {project}. Enable billing and retry.")

_MODEL = "publishers/google/models/{model}"
_PROJECT = "projects/{project}/locations/{location}/"


class VertexAPI(GeminiAPI):
    vendor = "vertex"
    fault_kinds = GeminiAPI.fault_kinds | {"quota_per_day", "precondition"}
    malformed_kinds = GeminiAPI.malformed_kinds
    retry_after_format = "none"
    route_order = 0

    def claims_models_route(self, request: Request, model: str = "") -> bool:
        return False  # its model routes are its own (publishers/google/models/...)

    def routes(self) -> list[Route]:
        routes = []
        for version in ("v1", "v1beta1"):
            for scope in (_PROJECT, ""):
                path = f"/{version}/{scope}{_MODEL}"
                routes.append(Route(path + ":generateContent", self.generate_content,
                                    methods=["POST"]))
                routes.append(Route(path, self.route_get_model, methods=["GET"]))
        return routes

    # ------------------------------------------------------------------ errors

    def error(self, status: int, message: str, details: list[dict[str, Any]] | None = None,
              headers: dict[str, str] | None = None, *, google_status: str | None = None
              ) -> Response:
        """Google's error envelope; ``google_status`` overrides the status name the HTTP
        status implies (``FAILED_PRECONDITION`` is a 400)."""
        err: dict[str, Any] = {"code": status, "message": message,
                               "status": google_status or _STATUS.get(status, "UNKNOWN")}
        if details:
            err["details"] = details
        return json_response({"error": err}, status, headers)

    def auth_error(self, request: Request) -> Response | None:
        presented = (bearer_token(request) or request.headers.get("x-goog-api-key")
                     or request.query_params.get("key"))
        if not self.state.key_ok(self.vendor, presented):
            return self.error(401, UNAUTHENTICATED)
        return None

    def error_for(self, fault: Fault, request: Request, model: str | None,
                  rule: Rule) -> Response | None:
        kind, status, message = fault.kind, fault.status, fault.message
        model = model or "gemini"
        params = request.path_params
        resource = (_PROJECT.format(**params) if "project" in params else "") + \
            _MODEL.format(model=model)
        if kind == "quota_per_day" or kind == "quota":
            return self.error(429, message or QUOTA_PER_DAY.format(model=model))
        if status == 429:
            fmt = fault.retry_after_format or rule.retry_after_format
            seconds = fault.retry_after if fault.retry_after is not None else rule.retry_after
            headers = retry_after_headers(fmt, seconds, self.state.clock.wall())
            return self.error(429, message or RESOURCE_EXHAUSTED, headers=headers)
        if kind == "auth" or status == 401:
            return self.error(401, message or UNAUTHENTICATED)
        if kind == "permission" or status == 403:
            return self.error(403, message or PERMISSION.format(resource=resource))
        if kind == "not_found" or status == 404:
            return self.error(404, message or NOT_FOUND.format(resource=resource))
        if kind in ("precondition", "prepaid"):
            return self.error(400, message or PRECONDITION.format(
                project=params.get("project", "express")), google_status="FAILED_PRECONDITION")
        return super().error_for(fault, request, model, rule)
