"""Stability AI adapter: the Stable Image API (v2beta) over ``httpx``, one call per image.

Each image is one ``POST {base}/v2beta/stable-image/generate/{ultra|core|sd3}`` with a
multipart form (built by :mod:`.wire`); a request for ``n`` images makes ``n`` calls at once
(a given seed is offset by the image's index). When some fail, the images delivered are a
partial reply (the chain asks the next provider only for the rest); a refusal of any call
is the answer. The answer is the image itself (``accept="image"``, the default:
``Accept: image/*``, the finish reason and seed in headers) or base64 JSON
(``accept="json"``). No job, no polling, nothing to download: the bytes are verified as an
image (off the event loop, :func:`fallback_chain.verify.verified_image`) and returned.

Refusals stop the chain: a 200 whose ``finish-reason`` is ``CONTENT_FILTERED`` (Stability
returns a blurred image) and a 403 ``content_moderation``; both are ``content_policy`` with
Stability's reason. The full table is in :mod:`.wire`.

Cost: Stability bills a fixed number of credits per image and model (Core 3, Ultra 8,
SD 3.5 Large 6.5, Large Turbo 4, Medium 3.5) at $0.01 per credit
(https://platform.stability.ai/pricing); the answer does not report it, so each success
records the catalogue's figure (``providers/stability/models.json``, ``usage["credits"]``).
A refused or failed call records none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from fallback_chain.clock import SYSTEM_CLOCK, Clock
from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.image_limits import ImageLimits
from fallback_chain.imaging import InvalidImageError
from fallback_chain.outcome import Outcome
from fallback_chain.provider import CheckResult, Provider, ProviderReply

from .. import catalogue, jobs
from ..base import refuse_credentials_in_url, resolve_api_key
from ..download import AllowList
from .wire import (
    API_PREFIX,
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    MAX_ANSWER_BYTES,
    OUTPUT_FORMATS,
    endpoint_for,
    error_from_answer,
    form_fields,
    ratio_text,
    read_answer,
)

if TYPE_CHECKING:
    import httpx

    from fallback_chain.cost.catalogue import PriceCatalogue
    from fallback_chain.request import ImageRequest

__all__ = ["DEFAULT_MODEL", "StabilityProvider"]

ENV_VARS = ("STABILITY_API_KEY", "STABILITY_KEY")
_ACCEPT = {"image": "image/*", "json": "application/json"}


class StabilityProvider(Provider):
    """Stability AI's Stable Image models (Core, Ultra, SD 3.5) behind the chain.

    ``model``: ``stable-image-core`` (default), ``stable-image-ultra``, ``sd3.5-large``,
    ``sd3.5-large-turbo``, ``sd3.5-medium``. The key comes from ``api_key`` or
    ``STABILITY_API_KEY`` (``STABILITY_KEY``, the old SDK's name, also works). ``base_url``
    is the API root (default ``https://api.stability.ai``; an emulator's
    ``http://127.0.0.1:8700``).

    ``accept``: ``"image"`` (raw bytes) or ``"json"`` (base64). ``output_format``: ``None``
    follows the request's (``png``, ``jpeg``, ``webp``). ``style_preset`` (Core) and
    ``extra_fields`` (other form fields, e.g. ``{"cfg_scale": 5}``) go in the form; they never
    replace the request's own fields. ``usd_per_credit`` overrides the catalogue's rate.
    ``transport`` (e.g. ``Emulator().httpx_transport()``) or ``http_client`` replace the
    network; ``clock`` times the call.
    """

    vendor = "stability"
    env_vars = ENV_VARS
    default_model = DEFAULT_MODEL
    config_options = ("accept", "output_format", "style_preset", "extra_fields",
                      "request_timeout_s", "check_timeout_s", "max_answer_bytes",
                      "usd_per_credit")
    emulator_api = "fallback_chain.providers.stability.emulated:StabilityAPI"
    fast_poll_options: ClassVar[Mapping[str, object]] = {}
    cost_module = "fallback_chain.providers.stability.cost"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        name: str = "stability",
        accept: str = "image",
        output_format: str | None = None,
        style_preset: str | None = None,
        extra_fields: Mapping[str, Any] | None = None,
        request_timeout_s: float = 90.0,
        check_timeout_s: float = 10.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        usd_per_credit: float | None = None,
        prices: PriceCatalogue | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ConfigurationError("stability: model must be a non-empty string")
        if accept not in _ACCEPT:
            raise ConfigurationError(f"stability: accept must be one of {sorted(_ACCEPT)}")
        if output_format is not None and output_format not in OUTPUT_FORMATS:
            raise ConfigurationError(f"stability: output_format must be one of "
                                     f"{', '.join(OUTPUT_FORMATS)}")
        if not (request_timeout_s > 0 and check_timeout_s > 0 and max_answer_bytes > 0):
            raise ConfigurationError("stability: request_timeout_s, check_timeout_s and "
                                     "max_answer_bytes must be > 0")
        if usd_per_credit is not None and usd_per_credit < 0:
            raise ConfigurationError("stability: usd_per_credit must be >= 0")
        self.name = name
        self.model = model
        self._clock: Clock = clock or SYSTEM_CLOCK
        info = catalogue.lookup(self.vendor, model)
        catalogue.warn_if_retired(info, clock=self._clock)
        self.capabilities = info.capabilities
        self._key = resolve_api_key(api_key, ENV_VARS, name)
        self.base_url = _normalise_base_url(base_url or DEFAULT_BASE_URL)
        self.endpoint, _ = endpoint_for(model)
        self.accept = accept
        self.output_format = output_format
        self.style_preset = style_preset
        self.extra_fields = dict(extra_fields or {})
        self.request_timeout_s = request_timeout_s
        self.check_timeout_s = check_timeout_s
        self.max_answer_bytes = max_answer_bytes
        self.usd_per_credit = usd_per_credit
        self._prices = prices
        self._clients = jobs.LoopClients(self.vendor, AllowList.of((), [self.base_url]),
                                         timeout_s=request_timeout_s, transport=transport,
                                         client=http_client)

    # ------------------------------------------------------------------ contract

    def estimate_cost(self, request: ImageRequest) -> float | None:
        from .cost import cost_from_stability_image

        return _times(cost_from_stability_image(self.model, self.usd_per_credit,
                                                catalogue=self._prices), request.n)

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        reason = self.unsupported_reason(request)
        if reason is not None:  # the router skips first; this guards direct callers
            raise ProviderError(Outcome.INVALID_REQUEST, reason)
        budget = jobs.attempt_budget(timeout, self.request_timeout_s)
        try:
            async with asyncio.timeout(budget):
                return await self._generate(request, budget)
        except TimeoutError:
            raise ProviderError(Outcome.TIMEOUT, f"Stability did not answer within "
                                f"{timeout:g}s") from None

    async def check(self) -> CheckResult:
        """``GET /v1/user/balance``: verifies the key and reads the credits left (free)."""
        what = "GET /v1/user/balance"
        try:
            data = await jobs.api_json(
                self._clients.get(), "GET", f"{self.base_url}/v1/user/balance", what=what,
                map_error=_map_error, timeout=self.check_timeout_s, headers=self._headers())
        except ProviderError as exc:
            return CheckResult(self.name, self.model, False, str(exc))
        credits = data.get("credits") if isinstance(data, dict) else None
        if not isinstance(credits, int | float) or isinstance(credits, bool):
            return CheckResult(self.name, self.model, False, f"{what} answered without credits")
        return CheckResult(self.name, self.model, True,
                           f"authenticated; {credits:,.2f} credits left")

    def record_with(self, recorder: Any) -> None:
        """Record every exchange through ``recorder`` (``Chain(recorder=...)`` calls this)."""
        self._clients.record_with(recorder)

    async def aclose(self) -> None:
        await self._clients.aclose()

    # ------------------------------------------------------------------ one call

    async def _generate(self, request: ImageRequest, budget: float) -> ProviderReply:
        """``request.n`` calls at once (one image each); see :meth:`_gathered`."""
        fmt = self.output_format or request.output_format
        ratio = ratio_text(self.capabilities.aspect_ratio_for(request))
        calls = [self._one(form_fields(request, self.model, ratio, output_format=fmt,
                                       style_preset=self.style_preset,
                                       extra=self.extra_fields, index=i), budget)
                 for i in range(request.n)]
        if len(calls) == 1:
            return await calls[0]
        return _gathered(await asyncio.gather(*calls, return_exceptions=True))

    async def _one(self, fields: Mapping[str, str], budget: float) -> ProviderReply:
        """One call, one verified image."""
        what = f"POST {API_PREFIX}/{self.endpoint}"
        status, headers, body = await self._post(fields, what, budget)
        if not 200 <= status < 300:
            raise error_from_answer(status, headers, body.decode("utf-8", "replace"), what)
        generated = read_answer(status, headers, body)
        from fallback_chain.verify import verified_image

        try:
            image = await verified_image(generated.data,
                                         ImageLimits.of(self.capabilities, self.model))
        except InvalidImageError as exc:
            raise ProviderError(Outcome.MALFORMED_RESPONSE, f"{what}: the answer is not a "
                                f"whole image ({exc})", status_code=status,
                                provider_code="bad_image") from None
        return ProviderReply(
            images=[image], usage={"credits": self._credits(),
                                   "finish_reason": generated.finish_reason,
                                   "seed": generated.seed},
            cost_usd=self._cost(), model=self.model, vendor_request_id=generated.request_id,
            extra={"seed": generated.seed, "aspect_ratio": fields["aspect_ratio"]})

    async def _post(self, fields: Mapping[str, str], what: str,
                    budget: float) -> tuple[int, dict[str, str], bytes]:
        """The answer's status, headers and at most ``max_answer_bytes`` of its body (a
        larger 2xx is ``malformed_response``; a larger error body is cut)."""
        client = self._clients.get()
        headers = {**self._headers(), "accept": _ACCEPT[self.accept]}
        # (None, value) parts: a multipart form without files, as the API requires
        files = {key: (None, value) for key, value in fields.items()}
        try:
            async with client.stream("POST", f"{self.base_url}{API_PREFIX}/{self.endpoint}",
                                     files=files, headers=headers, timeout=budget,
                                     follow_redirects=False) as streamed:
                return await _capped(streamed, what, self.max_answer_bytes)
        except ProviderError:
            raise
        except Exception as exc:
            raise jobs.transport_error(exc, what) from None

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._key}"}

    def _credits(self) -> float | None:
        from .cost import stability_model_credits

        return stability_model_credits(self.model, catalogue=self._prices)

    def _cost(self) -> float | None:
        from .cost import cost_from_stability_image

        with contextlib.suppress(ValueError, TypeError, ArithmeticError):
            return cost_from_stability_image(self.model, self.usd_per_credit,
                                             catalogue=self._prices)
        return None


def _gathered(results: list[ProviderReply | BaseException]) -> ProviderReply:
    """Several calls' results as one reply. A refusal of any call is the answer (the chain
    stops); another failure keeps the delivered images as a partial reply (the chain asks
    the next provider only for the rest); every delivered image's cost is kept."""
    replies = [r for r in results if isinstance(r, ProviderReply)]
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures:
        if not isinstance(failure, ProviderError):
            raise failure
    errors = [f for f in failures if isinstance(f, ProviderError)]
    costs = [r.cost_usd for r in replies if r.cost_usd is not None]
    merged = ProviderReply(
        images=[img for r in replies for img in r.images],
        usage={"credits": sum(float(r.usage.get("credits") or 0) for r in replies if r.usage),
               "calls": len(results), "seeds": [r.usage.get("seed") for r in replies
                                                if r.usage]},
        cost_usd=sum(costs) if costs else None, model=replies[0].model if replies else None,
        vendor_request_id=replies[0].vendor_request_id if replies else None,
        extra={"seeds": [r.extra.get("seed") for r in replies]})
    if not errors:
        return merged
    refusal = next((e for e in errors if e.outcome is Outcome.CONTENT_POLICY), None)
    error = refusal or errors[0]
    if replies and refusal is None:
        error.partial = merged
        error.cost_usd = merged.cost_usd
    raise error


def _map_error(answer: jobs.ErrorAnswer) -> ProviderError:
    return error_from_answer(answer.status, answer.headers, answer.text, answer.what)


async def _capped(streamed: httpx.Response, what: str, limit: int
                  ) -> tuple[int, dict[str, str], bytes]:
    ok = 200 <= streamed.status_code < 300
    body = bytearray()
    async for chunk in streamed.aiter_bytes():
        body += chunk
        if len(body) > limit:
            if ok:
                raise ProviderError(Outcome.MALFORMED_RESPONSE, f"{what}: the answer is over "
                                    f"{limit:,} bytes", status_code=streamed.status_code,
                                    provider_code="oversized")
            del body[limit:]
            break
    return (streamed.status_code, {k.lower(): v for k, v in streamed.headers.items()},
            bytes(body))


def _times(usd: float | None, n: int) -> float | None:
    return None if usd is None else usd * n


def _normalise_base_url(url: str) -> str:
    refuse_credentials_in_url(url, "stability")
    url = url.strip().rstrip("/").removesuffix(API_PREFIX).removesuffix("/v2beta").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"stability: base_url must be an http(s) URL, not {url!r}")
    return url
