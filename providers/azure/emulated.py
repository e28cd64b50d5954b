"""The emulated Azure OpenAI API: OpenAI's Images API (``fallback_chain.emulator.openai_api``,
whose validation, images and usage it reuses) behind Azure's deployment URLs, ``api-key`` /
Entra ID auth, ``api-version`` and Azure's own error bodies.

Routes (``{endpoint}`` is the emulator's root)::

    POST /openai/deployments/{deployment}/images/generations?api-version=...
    POST /openai/deployments/{deployment}/images/edits?api-version=...
    GET  /openai/models/{model}?api-version=...                 (the adapter's check)

The model is the request's ``model`` field (the adapter sends the model behind the
deployment), else the deployment name. Fault kinds: the common ones, OpenAI's, and
``content_filter`` (400 ``content_filter`` + ``innererror`` ``ResponsibleAIPolicyViolation``
with per-category ``content_filter_result``; ``categories = [...]`` in the fault picks the
filtered ones), ``deployment_not_found`` (404 ``DeploymentNotFound``), ``resource_blocked``
(403 abuse-monitoring block). ``policy`` means ``content_filter``; ``quota`` is Azure's daily
token quota (429 "Please retry after 86400 seconds").

Bodies marked [PUB] are quoted from public reports (``tests/corpus/azure/``); [EMU] wording is
the emulator's own where no public example was found.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fallback_chain.emulator import facts
from fallback_chain.emulator.common import (
    bearer_token,
    fmt_seconds,
    json_response,
    retry_after_headers,
)
from fallback_chain.emulator.faults import Fault, Rule
from fallback_chain.emulator.openai_api import OpenAIAPI, _model_object

#: Azure's content-filter categories, in the order its answers list them.
CATEGORIES = ("hate", "jailbreak", "self_harm", "sexual", "violence")
#: [PUB] openai/openai-python#331, UniversityOfHelsinkiCS/gptwrapper#285.
FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766")
#: [PUB] for chat (jasonacox/TinyLLM#17: "ChatCompletions_Create ... token rate limit");
#: [EMU] the operation name of the images endpoint.
RATE_MESSAGE = (
    "Requests to the Images_Generations_Create Operation under Azure OpenAI API version "
    "{version} have exceeded {what} rate limit of your current OpenAI S0 pricing tier. Please "
    "retry after {seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you "
    "would like to further increase the default rate limit.")
#: The well-known 401 of a wrong key or endpoint.
ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource.")
DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment "
    "within the last 5 minutes, please wait a moment and try again.")
#: [PUB] pollinations/pollinations#9707.
RESOURCE_BLOCKED = (
    "Your resource has been temporarily blocked because we detected behavior that may violate "
    "our content policy. For more details on Azure OpenAI service content policy, please "
    "visit https://aka.ms/aoaicodeofconduct")
#: Seconds of Azure's daily token quota ("retry after 86400 seconds").
DAY_S = 86400.0


class AzureOpenAIAPI(OpenAIAPI):
    vendor = "azure"
    fault_kinds = OpenAIAPI.fault_kinds | {"content_filter", "deployment_not_found",
                                           "resource_blocked"}
    malformed_kinds = OpenAIAPI.malformed_kinds
    retry_after_format = "seconds"

    def claims_models_route(self, request: Request, model: str = "") -> bool:
        return False  # Azure's models route is its own: /openai/models/{model}

    def routes(self) -> list[Route]:
        base = "/openai/deployments/{deployment}/images"
        return [Route(f"{base}/generations", self.azure_generations, methods=["POST"]),
                Route(f"{base}/edits", self.azure_edits, methods=["POST"]),
                Route("/openai/models/{model}", self.azure_model, methods=["GET"])]

    # ------------------------------------------------------------------ auth and versions

    def auth_error(self, request: Request) -> Response | None:
        """``api-key`` header, or an Entra ID bearer token; both checked against the
        emulator's key for ``azure``."""
        presented = request.headers.get("api-key") or bearer_token(request)
        if not self.state.key_ok(self.vendor, presented):
            return self.azure_error(401, "401", ACCESS_DENIED)
        return None

    def version_error(self, request: Request) -> Response | None:
        """Azure answers a data-plane call without ``api-version`` with 404."""
        if request.query_params.get("api-version"):
            return None
        return self.azure_error(404, "404", "Resource not found")

    def azure_error(self, status: int, code: str | None, message: str, *,
                    headers: dict[str, str] | None = None,
                    extra: dict[str, Any] | None = None) -> Response:
        body: dict[str, Any] = {"code": code, "message": message, **(extra or {})}
        return json_response({"error": body}, status,
                             {"apim-request-id": self.request_id().removeprefix("req_"),
                              **(headers or {})})

    # ------------------------------------------------------------------ endpoints

    async def azure_generations(self, request: Request) -> Response:
        self.note(request, "generate")
        refused = self.version_error(request) or self.auth_error(request)
        if refused is not None:
            return refused
        return await self.generations(request)

    async def azure_edits(self, request: Request) -> Response:
        self.note(request, "generate")
        refused = self.version_error(request) or self.auth_error(request)
        if refused is not None:
            return refused
        return await self.edits(request)

    async def azure_model(self, request: Request) -> Response:
        model = request.path_params["model"]
        self.note(request, "meta", model)
        refused = self.version_error(request) or self.auth_error(request)
        if refused is not None:
            return refused

        async def handle(fault: Fault | None, rule: Rule) -> Response:
            if facts.openai_family(model) is None:
                return self.azure_error(404, "model_not_found",
                                        f"The model '{model}' does not exist.")
            return json_response(_model_object(model))

        return await self.guarded(request, endpoint="meta", model=model, handler=handle)

    # ------------------------------------------------------------------ faults

    def error_for(self, fault: Fault, request: Request, model: str | None,
                  rule: Rule) -> Response | None:
        kind, status, message = fault.kind, fault.status, fault.message
        version = request.query_params.get("api-version", "")
        if kind in ("policy", "content_filter"):
            return self.content_filter(fault)
        if status == 429 or kind == "quota":
            daily = kind == "quota"
            seconds = DAY_S if daily else (
                fault.retry_after if fault.retry_after is not None else rule.retry_after)
            fmt = fault.retry_after_format or rule.retry_after_format
            text = message or RATE_MESSAGE.format(version=version, seconds=fmt_seconds(seconds),
                                                  what="token" if daily else "call")
            headers = retry_after_headers(fmt, seconds, self.state.clock.wall())
            return self.azure_error(429, "429", text, headers=headers)
        if kind == "auth" or status == 401:
            return self.azure_error(401, "401", message or ACCESS_DENIED)
        if kind == "resource_blocked" or status == 403:
            return self.azure_error(403, "Forbidden", message or RESOURCE_BLOCKED)
        if kind == "deployment_not_found" or status == 404:
            return self.azure_error(404, "DeploymentNotFound", message or DEPLOYMENT_NOT_FOUND)
        return super().error_for(fault, request, model, rule)

    def content_filter(self, fault: Fault) -> Response:
        """400 ``content_filter``, the shape Azure gives a filtered prompt [PUB]."""
        flagged = set(fault.categories or ("violence",))
        result: dict[str, Any] = {}
        for name in sorted({*CATEGORIES, *flagged}):
            if name == "jailbreak":
                hit = name in flagged
                result[name] = {"filtered": hit, "detected": hit}
            else:
                result[name] = {"filtered": name in flagged,
                                "severity": "high" if name in flagged else "safe"}
        return self.azure_error(
            400, "content_filter", fault.message or FILTER_MESSAGE,
            extra={"type": None, "param": "prompt", "status": 400,
                   "innererror": {"code": "ResponsibleAIPolicyViolation",
                                  "content_filter_result": result}})
