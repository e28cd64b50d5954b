"""Gemini image models on Vertex AI: the Gemini adapter (:mod:`..gemini.adapter`: request,
answers, refusals, ``n`` parallel calls) with Vertex's client, URLs, credentials, prices and
error table.

    VertexProvider(project="my-project", location="us-central1")          # ADC
    VertexProvider(model="gemini-3-pro-image", project="my-project",
                   credentials="service-account.json")                    # a key file
    VertexProvider(api_key="...")                                         # express mode

* **Client.** ``genai.Client(vertexai=True, project=..., location=..., credentials=...)``,
  on the adapter's own ``httpx2`` client (as for Gemini: the answer cap, no aiohttp, SDK
  retries off).
* **URLs.** ``POST {base}/v1beta1/projects/{project}/locations/{location}/publishers/google/
  models/{model}:generateContent`` (``base``: ``https://{location}-aiplatform.googleapis.com``,
  ``https://aiplatform.googleapis.com`` for ``global``; ``base_url=`` replaces it, e.g. the
  emulator). Express mode (an API key, no project) calls
  ``{base}/v1beta1/publishers/google/models/{model}:generateContent``. ``api_version``
  defaults to ``v1beta1``, google-genai's own Vertex default.
* **Credentials**, first that applies: ``credentials=`` (a ``google.auth`` credentials object,
  or the path of a service-account key file, whose ``project_id`` is then the default
  project); an API key (``api_key=``, else ``GOOGLE_CLOUD_API_KEY``: Vertex AI express mode,
  sent as ``x-goog-api-key``); otherwise Application Default Credentials, found by google-auth
  on first use (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default login``,
  the metadata server). Nothing is looked up at construction, and nothing at all when a key
  or credentials are given. In a config file, setting ``GOOGLE_APPLICATION_CREDENTIALS`` is
  enough (it is the vendor's second "key" variable).
* ``project`` defaults to ``GOOGLE_CLOUD_PROJECT``, ``location`` to ``GOOGLE_CLOUD_LOCATION``,
  else ``global`` (where Google serves the Gemini image models).
* **Prices** are Vertex's (``providers/vertex/models.json``); ``usageMetadata`` is priced with
  ``cost.cost_from_vertex_usage``. Errors: ``errors.py``.
* ``check()`` calls ``GET .../publishers/google/models/{model}``: free; proves the
  credentials, the project's access and the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fallback_chain.clock import Clock
from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.secrets import register_secret

from ..base import CheckResult
from ..gemini.adapter import DEFAULT_MODEL, GeminiProvider
from .errors import error_from_exception

if TYPE_CHECKING:
    import httpx2
    from google import genai
    from google.auth.credentials import Credentials
    from google.genai import types

    from fallback_chain.cost.catalogue import PriceCatalogue

VENDOR = "vertex"
#: The express-mode key, then the service-account file ADC reads (so a config file naming
#: ``vertex`` needs only one of them).
ENV_VARS = ("GOOGLE_CLOUD_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS")
KEY_ENV = "GOOGLE_CLOUD_API_KEY"
PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"
LOCATION_ENV = "GOOGLE_CLOUD_LOCATION"
DEFAULT_LOCATION = "global"
#: The OAuth scope of Vertex AI calls.
SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class VertexProvider(GeminiProvider):
    """Gemini image generation on Vertex AI; see the module docstring."""

    vendor = VENDOR
    env_vars = ENV_VARS
    default_model = DEFAULT_MODEL
    config_options = ("project", "location", "credentials", "api_version", "check_timeout_s",
                      "image_size", "response_modalities", "max_answer_bytes")
    default_api_version = "v1beta1"
    emulator_api = "fallback_chain.providers.vertex.emulated:VertexAPI"
    cost_module = "fallback_chain.providers.vertex.cost"

    def __init__(self, model: str = DEFAULT_MODEL, api_key: str | None = None,
                 base_url: str | None = None, *, project: str | None = None,
                 location: str | None = None, credentials: Credentials | str | None = None,
                 name: str = VENDOR, api_version: str | None = None,
                 image_size: str | None = None, prices: PriceCatalogue | None = None,
                 response_modalities: Sequence[str] = ("IMAGE",),
                 transport: httpx2.AsyncBaseTransport | None = None,
                 http_client: httpx2.AsyncClient | None = None,
                 check_timeout_s: float = 10.0, clock: Clock | None = None,
                 max_answer_bytes: int | None = None) -> None:
        if api_key and credentials is None and os.path.isfile(os.path.expanduser(api_key)):
            # GOOGLE_APPLICATION_CREDENTIALS, passed as the "key" by a config's secrets file:
            # a path to a service-account file (an API key is never one)
            credentials, api_key = api_key, None
        if credentials is not None and api_key:
            raise ConfigurationError(f"{name}: pass credentials or an API key, not both")
        self.credentials, file_project = _load_credentials(credentials, name)
        self.project = (project or os.environ.get(PROJECT_ENV) or file_project or None)
        self.location = (location or os.environ.get(LOCATION_ENV) or DEFAULT_LOCATION).strip()
        super().__init__(model, api_key, base_url, name=name, api_version=api_version,
                         image_size=image_size, prices=prices,
                         response_modalities=response_modalities, transport=transport,
                         http_client=http_client, check_timeout_s=check_timeout_s,
                         clock=clock, max_answer_bytes=max_answer_bytes)
        if self.project is None and self.base_url is not None and self.auth_mode != "api_key":
            # google-genai would drop the project/location path for a custom base URL
            raise ConfigurationError(f"{name}: no Google Cloud project; pass project= or set "
                                     f"{PROJECT_ENV}")

    @property
    def auth_mode(self) -> str:
        """``"credentials"``, ``"api_key"`` (express mode) or ``"adc"``."""
        if self.credentials is not None:
            return "credentials"
        return "api_key" if self._api_key else "adc"

    # ------------------------------------------------------------------------ hooks

    def _resolve_key(self, api_key: str | None) -> str | None:
        if self.credentials is not None:
            return None
        key = api_key or os.environ.get(KEY_ENV) or None
        if key:
            register_secret(key)
        return key

    def _sdk_client(self, options: types.HttpOptions) -> genai.Client:
        from google import genai

        if self.auth_mode == "api_key" and not self.project:  # express mode
            return genai.Client(vertexai=True, api_key=self._api_key, http_options=options)
        return genai.Client(vertexai=True, api_key=self._api_key, project=self.project,
                            location=self.location, credentials=self.credentials,
                            http_options=options)

    def _error(self, exc: Exception) -> ProviderError:
        return error_from_exception(exc)

    async def check(self) -> CheckResult:
        found = await super().check()
        detail = found.detail.replace("key accepted", "credentials accepted", 1)
        return CheckResult(found.provider, found.model, found.ok,
                           f"{detail} ({self.auth_mode}, project {self.project or '-'}, "
                           f"location {self.location})")

    def _price(self, usage: dict[str, Any]) -> float | None:
        from .cost import cost_from_vertex_usage

        return cost_from_vertex_usage(self.model, usage, catalogue=self._prices)


def _load_credentials(credentials: Credentials | str | None, who: str
                      ) -> tuple[Credentials | None, str | None]:
    """A credentials object as given, or one read from a service-account key file (with the
    file's ``project_id``). Reading the file contacts nothing."""
    if credentials is None or not isinstance(credentials, str):
        return credentials, None
    path = os.path.expanduser(credentials)
    try:
        from google.oauth2 import service_account

        loaded = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            path, scopes=[SCOPE])
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{who}: cannot read the service-account key file {path!r} "
                                 f"({type(exc).__name__}: {exc})") from None
    project = loaded.project_id if isinstance(loaded.project_id, str) else None
    return loaded, project
