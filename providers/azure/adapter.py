"""Azure OpenAI image generation: the OpenAI adapter (:mod:`..openai.adapter`) with Azure's
client, URLs, auth, prices and error table.

    AzureOpenAIProvider(deployment="img", endpoint="https://my-res.openai.azure.com")
        # key from AZURE_OPENAI_API_KEY; model (for capabilities and prices) gpt-image-2
    AzureOpenAIProvider(model="gpt-image-1.5", deployment="gpt-image-1.5",
                        endpoint="https://my-res.openai.azure.com",
                        azure_ad_token_provider=token_provider)   # Microsoft Entra ID

* **Model and deployment.** Azure calls a *deployment* (a name the customer chose) of a model.
  ``model`` is the model behind it (``gpt-image-2``, ``gpt-image-1.5``, ...): it gives the
  capabilities, the lifecycle and the prices (``providers/azure/models.json``). ``deployment``
  defaults to the model id, the name Azure's portal proposes for a new deployment.
* **URLs.** ``openai.AsyncAzureOpenAI(azure_endpoint=..., azure_deployment=...)`` sends
  ``POST {endpoint}/openai/deployments/{deployment}/images/generations?api-version=...``
  (edits: ``.../images/edits``). ``endpoint`` (or ``base_url``, which the emulator and
  config files set; or ``AZURE_OPENAI_ENDPOINT``) is the resource root,
  ``https://<resource>.openai.azure.com``. ``api_version`` defaults to
  ``OPENAI_API_VERSION``, else ``DEFAULT_API_VERSION``.
* **Auth.** An API key (``api_key=``, else ``AZURE_OPENAI_API_KEY``) goes in the ``api-key``
  header. Microsoft Entra ID instead: ``azure_ad_token_provider=`` a callable returning a
  token (sync or async; called before every request, so it refreshes), sent as
  ``Authorization: Bearer``; or ``entra_id=True`` (also from a config file), which builds one
  from ``azure-identity``'s ``DefaultAzureCredential`` (scope
  ``https://cognitiveservices.azure.com/.default``). ``azure-identity`` is optional and
  imported only then: ``pip install azure-identity``.
* **Answers.** GPT Image on Azure answers base64 with ``usage`` like OpenAI; the cost is the
  usage at Azure's rates (``cost.cost_from_azure_usage``). Errors: ``wire.py`` (content
  filters stop the chain with the filtered categories in the reason).
* ``check()`` calls ``GET {endpoint}/openai/models/{model}?api-version=...``: free; proves
  the key (401) and that the resource knows the model, not that the deployment exists (the
  data-plane API has no deployment lookup; a missing deployment shows as 404
  ``DeploymentNotFound`` on the first call).
* **Identity.** ``name`` defaults to ``"azure"``; unless named, the key in a chain is
  ``azure/<model>``, so several Azure deployments of different models can share a chain.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fallback_chain.clock import Clock
from fallback_chain.errors import ConfigurationError, ProviderError

from ..base import refuse_credentials_in_url, resolve_api_key
from ..openai.adapter import OpenAIProvider
from .wire import error_from_exception

if TYPE_CHECKING:
    import httpx2
    import openai

    from fallback_chain.cost.catalogue import PriceCatalogue

VENDOR = "azure"
ENV_VARS = ("AZURE_OPENAI_API_KEY",)
ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
API_VERSION_ENV = "OPENAI_API_VERSION"
#: The data-plane version of Azure's image-generation examples for the GPT Image models
#: (learn.microsoft.com/azure/ai-foundry/openai/how-to/dall-e, REST tab).
DEFAULT_API_VERSION = "2025-04-01-preview"
#: The Entra ID scope of Azure OpenAI (Azure AI services) tokens.
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"

TokenProvider = Callable[[], "str | Awaitable[str]"]


class AzureOpenAIProvider(OpenAIProvider):
    """One Azure OpenAI image deployment behind the provider contract (see the module
    docstring)."""

    vendor = VENDOR
    env_vars = ENV_VARS
    default_model = "gpt-image-2"
    config_options = ("deployment", "endpoint", "api_version", "entra_id", "check_timeout_s",
                      "quality_tiers", "max_answer_bytes")
    emulator_path = ""
    emulator_api = "fallback_chain.providers.azure.emulated:AzureOpenAIAPI"
    cost_module = "fallback_chain.providers.azure.cost"

    def __init__(
        self,
        model: str = default_model,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        deployment: str | None = None,
        endpoint: str | None = None,
        api_version: str | None = None,
        azure_ad_token_provider: TokenProvider | None = None,
        entra_id: bool = False,
        name: str | None = None,
        prices: PriceCatalogue | None = None,
        quality_tiers: Mapping[str, str] | None = None,
        http_client: httpx2.AsyncClient | None = None,
        check_timeout_s: float = 10.0,
        clock: Clock | None = None,
        max_answer_bytes: int | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        who = name or VENDOR
        if base_url and endpoint and base_url.rstrip("/") != endpoint.rstrip("/"):
            raise ConfigurationError(f"{who}: give the resource URL once (endpoint= or "
                                     "base_url=), not two different ones")
        if azure_ad_token_provider is not None and not callable(azure_ad_token_provider):
            raise ConfigurationError(f"{who}: azure_ad_token_provider must be a callable that "
                                     "returns a token (in a config file: entra_id = true)")
        if entra_id and azure_ad_token_provider is None:
            azure_ad_token_provider = entra_token_provider(who)
        if azure_ad_token_provider is not None and api_key:
            raise ConfigurationError(f"{who}: pass an API key or an Entra ID token provider, "
                                     "not both")
        self.deployment = (deployment or model or "").strip()
        self.api_version = (api_version or os.environ.get(API_VERSION_ENV)
                            or DEFAULT_API_VERSION).strip()
        self._token_provider = azure_ad_token_provider
        super().__init__(
            model, api_key, base_url or endpoint, name=name, prices=prices,
            quality_tiers=quality_tiers, http_client=http_client,
            check_timeout_s=check_timeout_s, clock=clock, max_answer_bytes=max_answer_bytes,
            transport=transport)
        if not self.deployment or "/" in self.deployment:
            raise ConfigurationError(f"{self.name}: deployment {self.deployment!r} is not a "
                                     "deployment name")

    @property
    def endpoint(self) -> str:
        """The resource URL the calls go to (``https://<resource>.openai.azure.com``)."""
        return self._base_url or ""

    # ------------------------------------------------------------------------- hooks

    def _resolve_key(self, api_key: str | None) -> str:
        if self._token_provider is not None:
            return ""  # Entra ID: a fresh bearer token per request, no key
        return resolve_api_key(api_key, self.env_vars, self.name)

    def _resolve_base_url(self, base_url: str | None) -> str | None:
        url = (base_url or os.environ.get(ENDPOINT_ENV) or "").strip()
        if not url:
            raise ConfigurationError(
                f"{self.name}: no Azure OpenAI endpoint; pass endpoint="
                f"'https://<resource>.openai.azure.com' or set {ENDPOINT_ENV}")
        refuse_credentials_in_url(url, self.name)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"{self.name}: endpoint {url!r} is not an http(s) URL")
        if parts.path.rstrip("/").endswith(("/openai", "/deployments")) or \
                "/openai/" in parts.path:
            raise ConfigurationError(
                f"{self.name}: endpoint {url!r} should be the resource root "
                f"({parts.scheme}://{parts.netloc}); the adapter adds /openai/deployments/"
                "<deployment>")
        return url.rstrip("/")

    def _sdk_client(self, http_client: httpx2.AsyncClient) -> openai.AsyncOpenAI:
        import openai

        return openai.AsyncAzureOpenAI(
            azure_endpoint=self.endpoint, azure_deployment=self.deployment,
            api_version=self.api_version, api_key=self._api_key or None,
            azure_ad_token_provider=self._token_provider, max_retries=0,
            http_client=http_client)

    def _usage_cost(self, usage: dict[str, object], images: int, prices: PriceCatalogue
                    ) -> float | None:
        from .cost import cost_from_azure_usage

        return cost_from_azure_usage(self.model, usage, images=images, catalogue=prices)

    def _error(self, exc: BaseException) -> ProviderError:
        return error_from_exception(exc)

    def _check_detail(self) -> str:
        return (super()._check_detail().replace("API key accepted", "credentials accepted")
                + f" (deployment {self.deployment!r} is checked by the first call)")


def entra_token_provider(who: str = VENDOR) -> TokenProvider:
    """An async bearer-token provider from ``azure-identity``'s ``DefaultAzureCredential``
    (environment, workload identity, managed identity, Azure CLI, ...), for the scope of Azure
    OpenAI. ``azure-identity`` is imported here, only when asked for."""
    try:
        from azure.identity.aio import (  # type: ignore[import-not-found,unused-ignore]
            DefaultAzureCredential,
            get_bearer_token_provider,
        )
    except ImportError:
        raise ConfigurationError(
            f"{who}: entra_id=True needs the azure-identity package (pip install "
            "azure-identity), or pass azure_ad_token_provider= a callable") from None
    provider: TokenProvider = get_bearer_token_provider(DefaultAzureCredential(), ENTRA_SCOPE)
    return provider
