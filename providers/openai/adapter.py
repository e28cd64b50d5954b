"""OpenAI Images API adapter: GPT Image (``gpt-image-1``, ``-1-mini``, ``-1.5``, ``-2``,
``-2.5-*``, ``-2.6-*``, …) and DALL-E 3 (DALL-E 2 for generations and edits), through the official
``openai`` SDK (``AsyncOpenAI(max_retries=0)``: the chain decides about retries).

    OpenAIProvider(model="gpt-image-2")                       # key from OPENAI_API_KEY
    OpenAIProvider(model="dall-e-3", api_key="sk-…", base_url="http://127.0.0.1:8000/v1")

Behaviour, per model, comes from data: capabilities (sizes, ``max_n``, prompt length, whether
the prompt is rewritten, edits, formats) from ``providers/openai/models.json`` via
``fallback_chain.providers.catalogue.lookup``; quality from the price catalogue's tier mapping
(``draft``/``standard``/``final`` → ``low``/``medium``/``high`` for GPT Image, ``standard``/``hd``
for DALL-E 3; ``xhigh``/``max`` are never chosen by default, pass ``quality_tiers=`` to use
them); the wire dialect (what a family sends and answers) from ``openai_wire.DIALECTS``.

Decisions worth knowing:

* **GPT Image** never gets ``response_format`` (the API answers 400 ``unknown_parameter``); it
  gets ``output_format`` and ``background``. Its ``usage`` tokens are priced with
  ``fallback_chain.providers.openai.cost.cost_from_openai_usage``: that is the reported cost
  (``cost_source="reported"``). A 200 the adapter cannot use (bad base64, fewer images) still
  carries that cost on the ``ProviderError``, since the call was billed.
* **DALL-E** is asked for ``response_format="b64_json"`` by default (one round trip, no link
  that expires after 60 minutes, no extra host to trust). Any ``url`` in an answer is still
  downloaded at once through ``..download`` with an allow-list: OpenAI's blob hosts
  (``allow_url_hosts``) plus the origin of ``base_url``. ``dalle_response_format="url"`` asks
  for links instead. DALL-E answers carry no usage, so their cost is the catalogue estimate.
* **DALL-E 3 and ``n > 1``**: refused, not fanned out. The API takes ``n=1`` only; the catalogue
  says ``max_n=1``, so ``unsupported_reason`` explains the skip and the router moves on to a
  provider that can make several images in one call. (Fanning out would multiply cost and
  partial failures for a retired model.) ``revised_prompt`` is surfaced on the result.
* **DALL-E 2** is retired, like DALL-E 3 (2026-05-12); generations and edits still work against
  a server that serves it (an emulator). The legacy variations endpoint is not supported: it
  takes no prompt, so it does not fit ``ImageRequest``.
* **Edits** (``request.images``, optional ``mask``) go to ``POST /v1/images/edits`` as multipart:
  one image is sent as ``image``, several as ``image[]``. Checks that refuse a request happen
  in ``unsupported_reason`` (a recorded skip, nothing sent); safe conversions (a mask without
  alpha → alpha, GIF → PNG, …) happen in ``generate``. See ``providers/openai_masks.py``.
* **Size**: ``capabilities.size_for(request)`` (nearest supported size); for an edit with
  ``size="auto"`` no size is sent, so the result follows the input image.
* **Identity**: ``name`` defaults to ``"openai"``; unless a name is given, the provider's key
  in a chain is ``"openai/<model>"``, so several OpenAI models can share one chain (each with
  its own breaker and cooldown, as OpenAI's rate limits are per model).
* **Clients**: one ``AsyncOpenAI`` per provider and event loop (a connection pool belongs to
  the loop that opened it), created on first use and closed by ``aclose()``; likewise one
  ``httpx.AsyncClient`` for URL downloads. The SDK's client reads every answer through
  ``providers/answer_cap.py``: at most ``max_answer_bytes`` (by default ``n`` images of the
  largest size the model makes, as base64 of uncompressed RGBA), streamed, so a huge answer is
  cut off before it is held in memory; and a redirect to another origin is refused.
  ``transport=`` (an ``httpx2.AsyncBaseTransport``) is wrapped the same way. Clients passed in
  (``http_client=`` an ``httpx2.AsyncClient`` for the SDK, ``download_client=`` an
  ``httpx.AsyncClient``) are used as they are and left for the caller to close.
* ``check()`` calls ``GET /v1/models/{model}``: free; reports a rejected key (401/403) or an
  unknown model (404) clearly.
* **Errors**: every answer becomes a ``ProviderReply`` or a ``ProviderError``, classified by
  status and vendor code; the table is in ``providers/openai_wire.py``.

The key comes from ``api_key=`` or ``OPENAI_API_KEY`` (``ConfigurationError`` at construction
when neither is set); ``OPENAI_BASE_URL`` stands in for ``base_url``; ``OPENAI_ORG_ID`` and
``OPENAI_PROJECT_ID`` are read by the SDK as usual. ``base_url`` is the API root *including*
``/v1``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fallback_chain.clock import SYSTEM_CLOCK, Clock
from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.image_limits import ImageLimits
from fallback_chain.outcome import Outcome
from fallback_chain.perloop import PerLoop
from fallback_chain.provider import CheckResult, Provider, ProviderReply
from fallback_chain.results import GeneratedImage

from .. import catalogue
from ..base import resolve_api_key
from ..download import AllowList, fetch_all, guarded_transport
from .masks import edit_problem, prepare_edit
from .wire import (
    check_base_url,
    describe_non_json,
    dialect_for,
    error_from_exception,
    read_images,
    usage_dict,
)

if TYPE_CHECKING:
    import httpx
    import httpx2
    import openai
    from openai.types import ImagesResponse

    from fallback_chain.cost.catalogue import PriceCatalogue
    from fallback_chain.request import ImageRequest

VENDOR = "openai"
ENV_VARS = ("OPENAI_API_KEY",)
#: Where DALL-E ``url`` answers point (Azure blob storage).
DEFAULT_URL_HOSTS = ("oaidalleapiprodscus.blob.core.windows.net", "*.blob.core.windows.net")
#: Plans (size, quality, estimate) one provider remembers, one per distinct (size, quality, n).
PLAN_CACHE_SIZE = 64


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a request becomes for this model: the size and ``quality`` sent, the estimate, and
    the price catalogue they came from (which also prices the reported usage)."""

    size: tuple[int, int]
    quality: str | None
    estimate: float | None
    prices: PriceCatalogue


class OpenAIProvider(catalogue.CatalogueLifecycle, Provider):
    """One OpenAI image model behind the provider contract (see the module docstring)."""

    vendor = VENDOR
    env_vars = ENV_VARS
    default_model = "gpt-image-2"
    config_options: ClassVar[tuple[str, ...]] = (
        "allow_url_hosts", "check_timeout_s", "dalle_response_format", "organization", "project",
        "quality_tiers", "max_answer_bytes")
    emulator_path = "/v1"
    emulator_api = "fallback_chain.emulator.openai_api:OpenAIAPI"
    cost_module = "fallback_chain.providers.openai.cost"
    batch_api = "fallback_chain.providers.openai.batch:OpenAIBatch"

    @classmethod
    def provider_key(cls, model: str, name: str | None = None) -> str:
        """``openai/<model>`` unless named: several OpenAI models can share one chain."""
        return name or f"{cls.vendor}/{model}"

    def __init__(
        self,
        model: str = default_model,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        name: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        prices: PriceCatalogue | None = None,
        allow_url_hosts: Iterable[str] = DEFAULT_URL_HOSTS,
        dalle_response_format: Literal["b64_json", "url"] = "b64_json",
        quality_tiers: Mapping[str, str] | None = None,
        http_client: httpx2.AsyncClient | None = None,
        download_client: httpx.AsyncClient | None = None,
        check_timeout_s: float = 10.0,
        clock: Clock | None = None,
        max_answer_bytes: int | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        if not model or not model.strip():
            raise ConfigurationError("openai: model must be a non-empty model id")
        if dalle_response_format not in ("b64_json", "url"):
            raise ConfigurationError(
                f"openai: dalle_response_format must be 'b64_json' or 'url', not "
                f"{dalle_response_format!r}")
        self.model = model
        self.name = name or self.vendor
        self._key = self.provider_key(model, name)
        self._clock: Clock = clock or SYSTEM_CLOCK  # dates of the model's lifecycle
        self._info = catalogue.lookup(self.vendor, model)
        catalogue.warn_if_retired(self._info, clock=self._clock)
        self._retirement = catalogue.retirement(self._info)  # skipped once shut down
        self.capabilities = self._info.capabilities
        self._dialect = dialect_for(self._info.family)
        self._api_key = self._resolve_key(api_key)
        self._base_url = self._resolve_base_url(base_url)
        self._organization = organization
        self._project = project
        self._prices = prices
        self._allow = AllowList.of(allow_url_hosts, [self._base_url])
        self._response_format = dalle_response_format
        self._quality_tiers = dict(quality_tiers or {})
        self._http_client = http_client
        self._download_client = download_client
        self._check_timeout_s = check_timeout_s
        if max_answer_bytes is not None and max_answer_bytes <= 0:
            raise ConfigurationError("openai: max_answer_bytes must be a positive byte count")
        self._max_answer_bytes = max_answer_bytes
        self._transport = transport
        # one SDK client and one download pool per event loop (their sockets are bound to it)
        self._clients: PerLoop[openai.AsyncOpenAI] = PerLoop(self._new_sdk)
        self._downloaders: PerLoop[httpx.AsyncClient] = PerLoop(self._new_downloader)
        self._plans: dict[tuple[str, str, int], _Plan] = {}
        self._plans_prices: PriceCatalogue | None = None
        self._recorder: Any = None

    @property
    def key(self) -> str:
        return self._key

    # ------------------------------------------------------------------------- contract

    def unsupported_reason(self, request: ImageRequest) -> str | None:
        caps = self.capabilities
        if caps.max_n == 1 and request.n > 1:
            return (f"{self.model} makes one image per request and this adapter does not fan "
                    f"n={request.n} out into several calls; ask for n=1 or add a GPT Image "
                    "model to the chain")
        reason = caps.unsupported_reason(request)
        if reason is None and request.images:
            reason = edit_problem(request, self._dialect, self.model)
        return reason

    def estimate_cost(self, request: ImageRequest) -> float | None:
        return self._plan(request).estimate

    def vendor_quality(self, request: ImageRequest, size: tuple[int, int]) -> str | None:
        """The ``quality`` value sent for ``request`` (and priced by ``estimate_cost``)."""
        return self._vendor_quality(self._catalogue(), request.quality, size)

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        deadline = asyncio.get_running_loop().time() + timeout
        plan = self._plan(request)
        params = self._params(request, plan)
        if request.images:
            try:
                images, mask = await asyncio.to_thread(prepare_edit, request, self._dialect)
            except ProviderError:
                raise
            except Exception as exc:  # Pillow could not read or write an input
                raise ProviderError(Outcome.INVALID_REQUEST,
                                    f"could not prepare the edit inputs: {exc}") from None
            params["image"] = images[0] if len(images) == 1 else images
            if mask is not None:
                params["mask"] = mask
        from ..answer_cap import answer_budget, answer_limit

        client = self._sdk()
        cap = self._max_answer_bytes or answer_budget(self.capabilities, request.n)
        try:
            with answer_limit(cap):
                if request.images:
                    response: object = await client.images.edit(**params, timeout=timeout)
                else:
                    response = await client.images.generate(**params, timeout=timeout)
        except Exception as exc:  # every vendor/SDK/transport failure becomes a ProviderError
            raise self._error(exc) from None
        return await self._reply(response, request, deadline, plan.prices)

    async def check(self) -> CheckResult:
        import openai

        try:
            found = await self._sdk().models.retrieve(self.model, timeout=self._check_timeout_s)
        except Exception as exc:
            err = self._error(exc)
            where = " ".join(str(x) for x in (err.status_code, err.provider_code) if x)
            if err.outcome is Outcome.AUTH_ERROR:
                detail = f"credentials rejected ({where}): {err.message}"
            elif err.outcome is Outcome.NOT_FOUND:
                detail = f"model {self.model!r} not found ({where}): {err.message}"
            else:
                detail = f"preflight failed: {err}"
            return CheckResult(self.name, self.model, False, detail)
        if not isinstance(found, openai.types.Model):
            return CheckResult(self.name, self.model, False,
                               f"preflight failed: {describe_non_json(found)}")
        return CheckResult(self.name, self.model, True, self._check_detail())

    def record_with(self, recorder: Any) -> None:
        """Record every exchange with the API through ``recorder`` (a
        ``fallback_chain.cassette.Recorder``; ``Chain(recorder=...)`` calls this)."""
        self._recorder = recorder

    async def aclose(self) -> None:
        if self._http_client is None:
            await self._clients.aclose(lambda client: client.close())
        else:  # the pool is the caller's: forget our wrappers, leave it open
            await self._clients.aclose(_nothing)
        if self._download_client is None:
            await self._downloaders.aclose(lambda client: client.aclose())
        else:
            await self._downloaders.aclose(_nothing)

    # ------------------------------------------------------------------------- internals

    def _check_detail(self) -> str:
        """What ``check`` says when the API knows the model: available, or (when the catalogue
        says so on the clock's date) deprecated, or shut down. Never both "available" and
        "shut down" about one model."""
        note = catalogue.warn_if_retired(self._info, clock=self._clock)
        if note is None:
            return f"API key accepted; model {self.model!r} is available"
        if self._info.is_retired(clock=self._clock):
            return f"API key accepted; the API still lists model {self.model!r}, but {note}"
        return f"API key accepted; model {self.model!r} is available. {note}"

    def _catalogue(self) -> PriceCatalogue:
        if self._prices is not None:
            return self._prices
        from fallback_chain.cost.catalogue import PriceCatalogue

        return PriceCatalogue.default()  # cheap; notices a changed $FALLBACK_CHAIN_PRICES

    def _vendor_quality(self, prices: PriceCatalogue, tier: str, size: tuple[int, int]
                        ) -> str | None:
        if tier in self._quality_tiers:
            return self._quality_tiers[tier]
        return prices.vendor_quality(self.vendor, self.model, tier, size)

    def _plan(self, request: ImageRequest) -> _Plan:
        """Size, ``quality`` and estimate for ``request``, computed once per distinct
        ``(size, quality, n)`` and price catalogue (the router asks for the estimate before
        every attempt, and ``generate`` needs the same size and quality again).

        Only those three fields of the request enter: ``Capabilities.size_for`` reads the
        requested size (pixels or ratio), the quality follows the tier and that size, and the
        estimate those and ``n``. A changed catalogue (``$FALLBACK_CHAIN_PRICES`` edited)
        starts the cache afresh, and so does a full one (``PLAN_CACHE_SIZE`` plans).
        """
        prices = self._catalogue()
        if prices is not self._plans_prices:
            self._plans = {}
            self._plans_prices = prices
        key = (request.size, request.quality, request.n)
        plan = self._plans.get(key)
        if plan is None or plan.prices is not prices:
            from fallback_chain.cost.estimate import estimate

            size = self.capabilities.size_for(request)
            quality = self._vendor_quality(prices, request.quality, size)
            plan = _Plan(size, quality,
                         estimate(self.vendor, self.model, size=size, quality=quality, n=request.n,
                                  catalogue=prices),
                         prices)
            if len(self._plans) >= PLAN_CACHE_SIZE:
                self._plans = {}  # many request shapes: start afresh (stays bounded)
            self._plans[key] = plan
        return plan

    def _sdk(self) -> openai.AsyncOpenAI:
        """The SDK client of the running event loop."""
        return self._clients.get()

    def _new_sdk(self) -> openai.AsyncOpenAI:
        import openai  # the SDK, not this module: absolute import inside a package

        http_client = self._http_client
        if http_client is None:  # ours: answers capped, no redirect to another origin
            import httpx2

            from ..answer_cap import CappedTransport

            # the SDK's own pool limits (a transport passed in ignores the client's ``limits``)
            inner = self._transport or httpx2.AsyncHTTPTransport(limits=httpx2.Limits(
                max_connections=1000, max_keepalive_connections=100))
            http_client = openai.DefaultAsyncHttpxClient(transport=CappedTransport(inner))
        client = self._sdk_client(http_client)
        if self._recorder is not None:  # the SDK's own httpx2 client (or the lent one)
            self._recorder.wrap_client(client._client, self.vendor)
        return client

    # hooks for an adapter of another service that speaks this API (Azure OpenAI)

    def _resolve_key(self, api_key: str | None) -> str:
        return resolve_api_key(api_key, self.env_vars, self.name)

    def _resolve_base_url(self, base_url: str | None) -> str | None:
        return check_base_url(base_url or os.environ.get("OPENAI_BASE_URL") or None)

    def _sdk_client(self, http_client: httpx2.AsyncClient) -> openai.AsyncOpenAI:
        """The SDK client over ``http_client`` (retries off: the chain decides)."""
        import openai

        return openai.AsyncOpenAI(
            api_key=self._api_key, base_url=self._base_url,
            organization=self._organization, project=self._project,
            max_retries=0, http_client=http_client)

    def _usage_cost(self, usage: dict[str, Any], images: int, prices: PriceCatalogue
                    ) -> float | None:
        from .cost import cost_from_openai_usage

        return cost_from_openai_usage(self.model, usage, images=images, catalogue=prices,
                                      vendor=self.vendor)

    def _error(self, exc: BaseException) -> ProviderError:
        """Whatever the SDK call raised, as a ``ProviderError`` (``wire.py``'s table)."""
        return error_from_exception(exc)

    def _new_downloader(self) -> httpx.AsyncClient:
        client = self._download_client
        if client is None:
            import httpx

            client = httpx.AsyncClient(follow_redirects=False,
                                       transport=guarded_transport(self._allow))
        if self._recorder is not None:  # image downloads of response_format="url"
            self._recorder.wrap_client(client, self.vendor)
        return client

    def _params(self, request: ImageRequest, plan: _Plan) -> dict[str, Any]:
        """Keyword arguments for ``images.generate``/``images.edit`` (files added later)."""
        params: dict[str, Any] = {"model": self.model, "prompt": request.prompt, "n": request.n}
        if not (request.images and request.size == "auto"):
            params["size"] = f"{plan.size[0]}x{plan.size[1]}"
        if plan.quality is not None:
            params["quality"] = plan.quality
        if self._dialect.gpt_image:
            formats = self.capabilities.output_formats
            params["output_format"] = (request.output_format
                                       if request.output_format in formats else "png")
            params["background"] = request.background
        elif self._dialect.response_format:
            params["response_format"] = self._response_format
        return params

    async def _reply(self, response: object, request: ImageRequest, deadline: float,
                     prices: PriceCatalogue) -> ProviderReply:
        from openai.types import ImagesResponse

        # openai 3.x returns an HTML 200 as a plain str (docs/vendor-facts.md §3)
        if not isinstance(response, ImagesResponse):
            raise ProviderError(Outcome.MALFORMED_RESPONSE, describe_non_json(response),
                                status_code=200)
        usage = usage_dict(response.usage)
        try:
            cost = (self._usage_cost(usage, len(response.data or ()), prices)
                    if usage else None)
        except (TypeError, ValueError, AttributeError):  # unreadable usage: fall back to
            cost = None                                     # the estimate, keep the images
        request_id = response._request_id
        try:
            images, revised = await self._images(response, request, deadline)
        except ProviderError as err:
            if err.cost_usd is None:
                err.cost_usd = cost  # a 200 with usage was billed even if we cannot use it
            raise
        extra: dict[str, Any] = {
            k: v for k, v in (("size", response.size), ("quality", response.quality),
                              ("output_format", response.output_format),
                              ("background", response.background)) if v is not None}
        if len(response.data or ()) > request.n:  # never decoded: the walk records them
            extra["surplus_images"] = len(response.data or ()) - request.n
        return ProviderReply(images=images, revised_prompt=revised, usage=usage, cost_usd=cost,
                             model=self.model, vendor_request_id=request_id, extra=extra)

    async def _images(self, response: ImagesResponse, request: ImageRequest,
                      deadline: float) -> tuple[list[GeneratedImage], str | None]:
        limits = ImageLimits.of(self.capabilities, self.model)
        slots, urls, revised = await read_images(response.data, request.n, limits)
        if urls:
            fetched = await self._download([u for _, u in urls], deadline, limits)
            for (i, _), image in zip(urls, fetched, strict=True):
                slots[i] = image
        return [s for s in slots if s is not None], revised

    async def _download(self, urls: list[str], deadline: float,
                        limits: ImageLimits | None = None) -> list[GeneratedImage]:
        """Fetch DALL-E links at once (they expire), within what is left of the attempt."""
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise ProviderError(Outcome.TIMEOUT, "no time left to download the image links")
        downloader = self._downloaders.get()
        try:
            async with asyncio.timeout(remaining):
                return await fetch_all(downloader, urls, self._allow, timeout=remaining,
                                       limits=limits)
        except TimeoutError:
            raise ProviderError(Outcome.TIMEOUT,
                                "downloading the image links outlasted the attempt") from None


async def _nothing(_: object) -> None:
    """Close nothing: a client lent by the caller stays the caller's to close."""
