"""Google Gemini image models (``generateContent``) through google-genai's async client.

    GeminiProvider(model="gemini-3.1-flash-image")           # key from GEMINI_API_KEY
    GeminiProvider(api_key="...", base_url="http://127.0.0.1:8000")  # an emulator

* **Key**: ``api_key=``, else ``GEMINI_API_KEY``, else ``GOOGLE_API_KEY``. The order differs
  from google-genai's own (which prefers ``GOOGLE_API_KEY``) on purpose: ``GOOGLE_API_KEY`` is
  often a key for some other Google API, while ``GEMINI_API_KEY`` can only mean this one. The
  key is always passed to the SDK explicitly, so the SDK's order never applies.
* **Transport**: the adapter hands the SDK its own ``httpx2.AsyncClient``
  (``HttpOptions(httpx_async_client=...)``). That pins the httpx2 path: the SDK never switches
  to aiohttp (whose hidden 1-10 s retry of connection errors would run even with retries off)
  and its own retries stay off (``retry_options`` is never set). One pooled client per provider
  and event loop, created on first use, closed by ``aclose``. ``transport=`` plugs in any
  httpx2 transport (the emulator's in-process one in tests); ``http_client=`` lends a client
  the caller owns. The client the adapter makes reads every answer through
  ``providers/answer_cap.py``: at most ``max_answer_bytes`` per call (by default one image of
  the largest size the model makes, plus ``THOUGHT_IMAGES`` drafts for a Gemini 3 model, as
  base64 of uncompressed RGBA), streamed, so a huge answer is cut off before it is held in
  memory; a redirect to another origin is refused.
* **URL and API version**: ``base_url`` is the API root (``http://127.0.0.1:8000``); calls go
  to ``{base_url}/{api_version}/models/{model}:generateContent``. ``api_version`` defaults to
  ``"v1beta"``, the surface Google documents for image generation (every ``generateContent``
  example of the Gemini API reference uses it, and ``v1``'s feature table has no image output;
  a public report shows ``v1`` rejecting ``responseModalities`` with a 400), whereas
  google-genai 3.x would otherwise call ``v1``. Pass ``api_version="v1"`` (or
  ``options = {api_version = "v1"}`` in a config file) once Google serves image output there;
  a ``base_url`` ending in ``/v1`` or ``/v1beta`` is split into root and version. Evidence:
  ``docs/errors.md``, "Gemini API version".
* **Answers** are read from the raw JSON body (the SDK is asked for it with
  ``should_return_http_response``): google-genai's converter drops ``finishMessage``, Google's
  own reason for a withheld image, which the error message must keep.
* **Request**: the request's size becomes ``imageConfig.aspectRatio`` (nearest supported
  ratio; ``auto`` lets the model choose) and the quality tier becomes ``imageSize``
  (``512``/``1K``/``2K``/``4K``, via the price catalogue's ``vendor_quality``, sent only to
  models that offer more than one size class, or always when ``image_size=`` is given). Edit
  images are ``inlineData`` parts after the text. A request with a ``history`` (an edit
  session whose previous step ran on Gemini) is sent as Gemini's multi-turn conversation: the
  earlier turns (the user's text and images, the model's images) come before the new
  instruction, and the image being edited is not sent twice. Gemini takes no mask and no
  negative prompt.
  ``seed`` goes to ``generationConfig.seed`` (as a signed 32-bit value; call ``i`` of ``n`` uses
  ``seed + i`` so the images differ).
* **n > 1**: the model draws one image per call, so ``n`` calls run in parallel. All must
  succeed; otherwise the attempt fails with the most telling of the failures (see
  :func:`fallback_chain.providers.gemini.parse.worst_failure`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from fallback_chain.clock import SYSTEM_CLOCK, Clock
from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.image_limits import ImageLimits
from fallback_chain.imaging import inspect_image
from fallback_chain.outcome import Outcome
from fallback_chain.perloop import PerLoop

from ..base import (
    CheckResult,
    Provider,
    ProviderReply,
    refuse_credentials_in_url,
    resolve_api_key,
)
from ..catalogue import CatalogueLifecycle, lookup, retirement, warn_if_retired
from .parse import (
    CallResult,
    error_from_exception,
    merge_usage,
    read_response,
    worst_failure,
)

if TYPE_CHECKING:
    import httpx2
    from google import genai
    from google.genai import types

    from fallback_chain.cost.catalogue import PriceCatalogue
    from fallback_chain.request import ImageRequest

ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
DEFAULT_MODEL = "gemini-2.5-flash-image"
#: Interim "thought" images a Gemini 3 image model may send before its answer (the cap
#: makes room for them).
THOUGHT_IMAGES = 2
#: The Gemini API surface documented for image generation (see the module docstring).
DEFAULT_API_VERSION = "v1beta"
_VERSION = re.compile(r"^v\d+(?:alpha|beta)?\d*$")
_VERSION_SUFFIX = re.compile(r"^(?P<root>.*?)/(?P<version>v\d+(?:alpha|beta)?\d*)/?$")


class GeminiProvider(CatalogueLifecycle, Provider):
    """Gemini image generation; see the module docstring."""

    vendor = "gemini"
    env_vars = ENV_VARS
    default_model = DEFAULT_MODEL
    config_options: ClassVar[tuple[str, ...]] = (
        "api_version", "check_timeout_s", "image_size", "response_modalities", "max_answer_bytes")
    #: The API version called unless ``api_version=`` says otherwise.
    default_api_version = DEFAULT_API_VERSION
    emulator_api = "fallback_chain.emulator.gemini_api:GeminiAPI"
    cost_module = "fallback_chain.providers.gemini.cost"
    batch_api = "fallback_chain.providers.gemini.batch:GeminiBatch"

    def __init__(self, model: str = DEFAULT_MODEL, api_key: str | None = None,
                 base_url: str | None = None, *, name: str = "gemini",
                 api_version: str | None = None, image_size: str | None = None,
                 prices: PriceCatalogue | None = None,
                 response_modalities: Sequence[str] = ("IMAGE",),
                 transport: httpx2.AsyncBaseTransport | None = None,
                 http_client: httpx2.AsyncClient | None = None,
                 check_timeout_s: float = 10.0, clock: Clock | None = None,
                 max_answer_bytes: int | None = None) -> None:
        if not model or not model.strip():
            raise ConfigurationError(f"{name}: model must not be empty")
        self.name = name
        self.model = model.strip()
        self._api_key = self._resolve_key(api_key)
        refuse_credentials_in_url(base_url, name)
        if base_url:
            base_url = base_url.rstrip("/")
            m = _VERSION_SUFFIX.match(base_url)
            if m and api_version is None:
                base_url, api_version = m["root"], m["version"]
        self.base_url = base_url or None
        api_version = (api_version or self.default_api_version).strip()
        if not _VERSION.match(api_version):
            raise ConfigurationError(
                f"{name}: api_version {api_version!r} is not a Gemini API version "
                f"(e.g. 'v1beta' or 'v1')")
        self.api_version = api_version
        self.image_size = _size_class(image_size) if image_size else None
        self.response_modalities = [str(m).upper() for m in response_modalities]
        self.check_timeout_s = check_timeout_s
        self._prices = prices
        self._transport = transport
        if max_answer_bytes is not None and max_answer_bytes <= 0:
            raise ConfigurationError(f"{name}: max_answer_bytes must be a positive byte count")
        self._max_answer_bytes = max_answer_bytes
        self._lent_client = http_client
        self._recorder: Any = None
        # per event loop (a connection pool belongs to the loop that opened it): the SDK
        # client and the pool we made for it (None when the caller lent one)
        self._clients: PerLoop[tuple[genai.Client, httpx2.AsyncClient | None]] = \
            PerLoop(self._new_client)
        _load_sdk()  # here, not inside the first (timed) attempt
        self.info = lookup(self.vendor, self.model.removeprefix("models/"))
        self._clock: Clock = clock or SYSTEM_CLOCK  # dates of the model's lifecycle
        warn_if_retired(self.info, clock=self._clock)
        self._retirement = retirement(self.info)  # skipped once shut down
        self.capabilities = self.info.capabilities

    # ------------------------------------------------------------------------ contract

    def unsupported_reason(self, request: ImageRequest) -> str | None:
        if request.mask is not None:
            return "Gemini takes no mask (it edits from the prompt and the images alone)"
        return super().unsupported_reason(request)

    def estimate_cost(self, request: ImageRequest) -> float | None:
        from fallback_chain.cost.estimate import estimate

        size = None if request.size == "auto" else request.size
        return estimate(self.vendor, self.model, size=size, quality=self._size_class_for(request),
                        n=request.n, catalogue=self._prices)

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        reason = self.unsupported_reason(request)
        if reason is not None:
            raise ProviderError(Outcome.INVALID_REQUEST, reason)
        client = self._client()
        contents = self._contents(request)
        calls = [self._call(client, contents, self._config(request, i, timeout), timeout)
                 for i in range(request.n)]
        results = await asyncio.gather(*calls)
        done = [r for r in results if isinstance(r, CallResult)]
        failures = [r for r in results if isinstance(r, ProviderError)]
        if failures:
            # The calls that did succeed were billed (their images are paid for even though
            # the attempt fails); their reported cost, plus any failed call's, is the error's
            # cost_usd. Calls that never answered (timeouts, resets) add nothing: no report.
            known = [c for c in (*(r.cost_usd for r in done), *(e.cost_usd for e in failures))
                     if c is not None]
            error = worst_failure(failures, calls=request.n, billed=sum(known) if known else None)
            if done:  # images delivered (and paid for) are kept: the chain asks for the rest
                costs = [r.cost_usd for r in done]
                error.partial = ProviderReply(
                    images=[img for r in done for img in r.images],
                    cost_usd=None if None in costs else sum(c for c in costs if c is not None),
                    model=done[0].model_version or self.model)
            raise error
        costs = [r.cost_usd for r in done]
        texts = [t for r in done for t in r.texts]
        return ProviderReply(
            images=[img for r in done for img in r.images],
            usage=merge_usage([r.usage for r in done if r.usage]),
            cost_usd=None if None in costs else sum(c for c in costs if c is not None),
            model=done[0].model_version or self.model,
            vendor_request_id=done[0].response_id,
            extra={"response_ids": [r.response_id for r in done], "calls": len(done),
                   **({"text": "\n".join(texts)} if texts else {})})

    async def check(self) -> CheckResult:
        """``GET models/{model}``: proves the key and the model without spending anything."""
        from google.genai import types

        try:
            client = self._client()
            ms = max(1, int(self.check_timeout_s * 1000))
            async with asyncio.timeout(self.check_timeout_s):
                found = await client.aio.models.get(
                    model=self.model,
                    config=types.GetModelConfig(http_options=types.HttpOptions(timeout=ms)))
        except Exception as exc:
            err = self._error(exc)
            what = {Outcome.AUTH_ERROR: "the API key was refused",
                    Outcome.NOT_FOUND: f"model {self.model!r} does not exist"}.get(
                        err.outcome, "the preflight failed")
            return CheckResult(self.name, self.model, False, f"{what}: {err}")
        return CheckResult(self.name, self.model, True,
                           f"key accepted; {found.name or self.model} is available")

    def record_with(self, recorder: Any) -> None:
        """Record every exchange with the API through ``recorder`` (a
        ``fallback_chain.cassette.Recorder``; ``Chain(recorder=...)`` calls this)."""
        self._recorder = recorder

    async def aclose(self) -> None:
        await self._clients.aclose(_close_client)

    # ------------------------------------------------------------------------ internals

    def _client(self) -> genai.Client:
        """The SDK client of the running event loop."""
        return self._clients.get()[0]

    def _new_client(self) -> tuple[genai.Client, httpx2.AsyncClient | None]:
        import httpx2
        from google.genai import types

        from ..answer_cap import CappedTransport

        own = None if self._lent_client is not None else httpx2.AsyncClient(
            transport=CappedTransport(self._transport))
        if self._recorder is not None:
            self._recorder.wrap_client(own or self._lent_client, self.vendor)
        options = types.HttpOptions(base_url=self.base_url, api_version=self.api_version,
                                    httpx_async_client=own or self._lent_client)
        return self._sdk_client(options), own

    # hooks for an adapter of another service that serves these models (Vertex AI)

    def _resolve_key(self, api_key: str | None) -> str | None:
        return resolve_api_key(api_key, self.env_vars, self.name)

    def _sdk_client(self, options: types.HttpOptions) -> genai.Client:
        """The SDK client for the Gemini Developer API, with ``options`` (base URL, version,
        the adapter's httpx2 client)."""
        from google import genai

        return genai.Client(api_key=self._api_key, vertexai=False, http_options=options)

    def _error(self, exc: Exception) -> ProviderError:
        """Any exception out of one SDK call, as a ``ProviderError`` (``parse.py``'s table)."""
        return error_from_exception(exc)

    def _contents(self, request: ImageRequest) -> list[types.Content]:
        from google.genai import types

        history = [types.Content(role=turn.role, parts=_parts(turn.text, turn.images))
                   for turn in request.history]
        # the image being edited is usually the model's last answer, already in the history
        shown = request.history[-1].images if request.history and \
            request.history[-1].role == "model" else ()
        images = [data for data in request.images if data not in shown]
        return [*history, types.Content(role="user", parts=_parts(request.prompt, images))]

    def _config(self, request: ImageRequest, index: int, timeout: float
                ) -> types.GenerateContentConfig:
        from google.genai import types

        ratio = self.capabilities.aspect_ratio_for(request)
        size = self._size_class_for(request) if self._sends_image_size() else None
        image = None
        if ratio is not None or size is not None:
            image = types.ImageConfig(aspect_ratio=f"{ratio[0]}:{ratio[1]}" if ratio else None,
                                      image_size=size)
        seed = None
        if request.seed is not None:
            seed = (request.seed + index) % 2**32
            seed = seed - 2**32 if seed >= 2**31 else seed  # the API's seed is an int32
        return types.GenerateContentConfig(
            response_modalities=self.response_modalities, image_config=image, seed=seed,
            should_return_http_response=True,  # the raw body: the SDK drops finishMessage
            http_options=types.HttpOptions(timeout=max(1, int(timeout * 1000))))

    async def _call(self, client: genai.Client, contents: list[types.Content],
                    config: types.GenerateContentConfig, timeout: float
                    ) -> CallResult | ProviderError:
        from ..answer_cap import answer_budget, answer_limit

        # one image per call, and room for the thought drafts a Gemini 3 model may send
        drafts = THOUGHT_IMAGES if self.info.family == "gemini-3-image" else 0
        cap = self._max_answer_bytes or answer_budget(self.capabilities, 1 + drafts)
        try:
            async with asyncio.timeout(timeout):
                with answer_limit(cap):
                    response = await client.aio.models.generate_content(
                        model=self.model, contents=contents, config=config)
        except TimeoutError:
            return ProviderError(Outcome.TIMEOUT, f"Gemini gave no answer within {timeout:g}s")
        except Exception as exc:
            return self._error(exc)
        try:
            return await read_response(response, self._price,
                                       ImageLimits.of(self.capabilities, self.model))
        except ProviderError as err:
            return err
        except Exception as exc:  # never let one call's surprise orphan its siblings
            return self._error(exc)

    def _price(self, usage: dict[str, Any]) -> float | None:
        from .cost import cost_from_gemini_usage

        return cost_from_gemini_usage(self.model, usage, catalogue=self._prices,
                                      vendor=self.vendor)

    def _catalogue(self) -> PriceCatalogue:
        from fallback_chain.cost.catalogue import PriceCatalogue

        return self._prices or PriceCatalogue.default()

    def _size_class_for(self, request: ImageRequest) -> str | None:
        """The ``imageSize`` class for the request (also what ``estimate_cost`` prices)."""
        if self.image_size:
            return self.image_size
        size = None if request.size == "auto" else request.size
        return self._catalogue().vendor_quality(self.vendor, self.model, request.quality, size)

    def _sends_image_size(self) -> bool:
        """Whether the model takes ``imageSize``: it offers more than one size class in the
        price catalogue (unknown to the catalogue: a Gemini 3 family model), or it was set."""
        if self.image_size:
            return True
        entry = self._catalogue().model(self.vendor, self.model)
        if entry is None:
            return self.info.family == "gemini-3-image"
        rows: list[dict[str, Any]] = [*entry.per_image.values(), *entry.output_tokens.values()]
        offered = {q for row in rows for q in row}
        return len(offered - {"*"}) > 1


def _parts(text: str | None, images: Sequence[bytes]) -> list[types.Part]:
    """A turn's parts: its text, then its images as ``inlineData``."""
    from google.genai import types

    parts = [types.Part(text=text)] if text else []
    for data in images:
        mime = inspect_image(data).mime_type
        parts.append(types.Part(inline_data=types.Blob(mime_type=mime, data=data)))
    return parts


def _load_sdk() -> None:
    """Import google-genai and httpx2 (a second or so, once per process)."""
    import httpx2  # noqa: F401
    from google.genai import errors, types  # noqa: F401


def _size_class(value: str) -> str:
    text = value.strip()
    if re.fullmatch(r"\d+[kK]", text):
        return text.upper()
    if re.fullmatch(r"\d+", text):
        return text
    raise ConfigurationError(f"image_size {value!r}: use a size class such as '1K', '2K' or '4K'")


async def _close_client(pair: tuple[genai.Client, httpx2.AsyncClient | None]) -> None:
    client, own = pair
    client.close()  # the idle sync pool the SDK builds for itself; ours stays open
    if own is not None:  # the pool this provider created (a lent client is the caller's)
        await own.aclose()
