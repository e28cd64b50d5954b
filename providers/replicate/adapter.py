"""Replicate adapter: predictions over ``httpx``, built on the shared submit -> poll ->
download steps (:mod:`fallback_chain.providers.jobs`).

One :meth:`ReplicateProvider.generate` call is one prediction:

1. **create** ``POST {base}/v1/models/{owner}/{name}/predictions`` (an official model, e.g.
   ``black-forest-labs/flux-schnell``) or ``POST {base}/v1/predictions`` with ``version``
   (a model id ``owner/name:<version>``), body ``{"input": {...}}`` (:mod:`.wire`), with
   ``Prefer: wait=N`` (``prefer_wait_s``, at most 60 s and never past the attempt's time):
   Replicate holds the request until the prediction is done or ``N`` seconds have passed.
2. **poll** the prediction's ``urls.get`` (only on the API's own origin: the key is never sent
   elsewhere) until it is ``succeeded``, ``failed`` or ``canceled``, with bounded backoff;
   transient poll failures are polled through (``jobs.poll``).
3. **download** every output URL at once (they expire), allow-listed (``cdn_hosts``, default
   ``replicate.delivery``, plus the API's origin), capped, verified (``jobs.download_now``).

When the attempt's time runs out after the prediction was created, the adapter **cancels it**
(``POST urls.cancel``, best effort, within what is left of the attempt) and raises ``timeout``;
it never creates a second prediction in one call. A prediction that ``failed`` because of the
model's safety checker ("All generated images contained NSFW content...") is
``content_policy``: the chain stops. See :mod:`.wire` for the full table.

Cost: official models are billed per output image (``models.json``); the cost of a
succeeded prediction is the price times the outputs it produced. A model priced by hardware
time takes ``usd_per_second`` (the hardware's rate) and is billed ``metrics.predict_time``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from fallback_chain.clock import Clock
from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.outcome import Outcome
from fallback_chain.provider import CheckResult, ProviderReply

from .. import jobs
from ..base import refuse_credentials_in_url
from ..jobs_provider import JobProvider
from .wire import (
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    MAX_WAIT_S,
    Prediction,
    create_path,
    error_from_answer,
    finished_error,
    parse_prediction,
    prediction_input,
    split_model,
)

if TYPE_CHECKING:
    import httpx

    from fallback_chain.cost.catalogue import PriceCatalogue
    from fallback_chain.request import ImageRequest

__all__ = ["DEFAULT_MODEL", "ReplicateProvider"]

ENV_VARS = ("REPLICATE_API_TOKEN",)
_FORMATS = ("webp", "jpeg", "png")


class ReplicateProvider(JobProvider):
    """Image models on Replicate (FLUX schnell/dev/pro and any other) behind the chain.

    ``model``: ``owner/name`` (an official model, e.g. ``black-forest-labs/flux-schnell``, the
    default) or ``owner/name:<version id>`` (a community model's version). The key comes from
    ``api_key`` or ``REPLICATE_API_TOKEN``. ``base_url``: the API root (default
    ``https://api.replicate.com``; an emulator's ``http://127.0.0.1:8700``).

    ``extra_input`` adds model fields to ``input`` (``{"go_fast": true}``); it never replaces
    the request's own. ``output_format``: ``None`` follows the request's. Polling and timing:
    ``prefer_wait_s``, ``poll_*``, ``max_poll_failures``, ``max_wait_s``; ``cancel_on_timeout``.
    ``clock`` times every wait; ``transport`` / ``http_client`` replace the network.
    """

    vendor = "replicate"
    env_vars = ENV_VARS
    default_model = DEFAULT_MODEL
    config_options = (
        "cancel_on_timeout", "cdn_hosts", "check_timeout_s", "download_retries",
        "download_timeout_s", "extra_input", "max_download_bytes", "max_poll_failures",
        "max_wait_s", "output_format", "poll_backoff", "poll_initial_s", "poll_interval_s",
        "poll_max_interval_s", "prefer_wait_s", "request_timeout_s", "usd_per_second")
    emulator_api = "fallback_chain.providers.replicate.emulated:ReplicateAPI"
    fast_poll_options: ClassVar[Mapping[str, object]] = {"poll_initial_s": 0.05,
                                                         "poll_interval_s": 0.05}
    cost_module = "fallback_chain.providers.replicate.cost"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        name: str = "replicate",
        extra_input: Mapping[str, Any] | None = None,
        output_format: str | None = None,
        prefer_wait_s: int = MAX_WAIT_S,
        poll_initial_s: float = 0.5,
        poll_interval_s: float = 1.0,
        poll_max_interval_s: float = 5.0,
        poll_backoff: float = 1.5,
        max_poll_failures: int = 3,
        max_wait_s: float = 600.0,
        request_timeout_s: float = 30.0,
        check_timeout_s: float = 10.0,
        download_timeout_s: float = 60.0,
        download_retries: int = 1,
        max_download_bytes: int | None = None,
        cdn_hosts: Sequence[str] = ("replicate.delivery", "*.replicate.delivery"),
        cancel_on_timeout: bool = True,
        usd_per_second: float | None = None,
        prices: PriceCatalogue | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        try:
            split_model(model)
        except (ValueError, AttributeError) as exc:
            raise ConfigurationError(f"replicate: {exc}") from None
        if output_format is not None and output_format not in _FORMATS:
            raise ConfigurationError(f"replicate: output_format must be one of "
                                     f"{', '.join(_FORMATS)}")
        if not 0 <= prefer_wait_s <= MAX_WAIT_S:
            raise ConfigurationError(f"replicate: prefer_wait_s must be 0..{MAX_WAIT_S} "
                                     "(0: no Prefer: wait)")
        if not (max_wait_s > 0 and request_timeout_s > 0 and check_timeout_s > 0
                and download_timeout_s > 0 and download_retries >= 0):
            raise ConfigurationError("replicate: timeouts must be > 0, download_retries >= 0")
        if usd_per_second is not None and usd_per_second < 0:
            raise ConfigurationError("replicate: usd_per_second must be >= 0")
        self._set_up(
            model=model, name=name, api_key=api_key, base_url=base_url or DEFAULT_BASE_URL,
            catalogue_model=model.partition(":")[0],
            poll=(poll_initial_s, poll_interval_s, poll_max_interval_s, poll_backoff,
                  max_poll_failures),
            max_wait_s=max_wait_s, request_timeout_s=request_timeout_s,
            download_timeout_s=download_timeout_s, max_download_bytes=max_download_bytes,
            cdn_hosts=cdn_hosts, prices=prices, clock=clock, transport=transport,
            http_client=http_client)
        self.extra_input = dict(extra_input or {})
        self.output_format = output_format
        self.prefer_wait_s = prefer_wait_s
        self.check_timeout_s = check_timeout_s
        self.download_retries = download_retries
        self.cancel_on_timeout = cancel_on_timeout
        self.usd_per_second = usd_per_second

    # ------------------------------------------------------------------ contract

    def estimate_cost(self, request: ImageRequest) -> float | None:
        from .cost import cost_from_replicate_outputs

        return cost_from_replicate_outputs(self.model, request.n, catalogue=self._prices)

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        self._refuse_unsupported(request)
        ends = self._clock.now() + timeout
        try:
            return await self._run(lambda run, deadline: self._job(request, run, deadline),
                                   label="Replicate", timeout=timeout)
        except ProviderError as exc:
            if exc.outcome is Outcome.TIMEOUT and self.cancel_on_timeout:
                await self._cancel_after_timeout(exc, ends)
            raise

    async def check(self) -> CheckResult:
        """``GET /v1/account`` (the key) then ``GET /v1/models/{owner}/{name}`` (the model);
        both free."""
        owner, name, _ = split_model(self.model)
        try:
            account = await self._get("/v1/account", "GET /v1/account", self.check_timeout_s)
            await self._get(f"/v1/models/{quote(owner)}/{quote(name)}",
                            f"GET /v1/models/{owner}/{name}", self.check_timeout_s)
        except ProviderError as exc:
            return CheckResult(self.name, self.model, False, str(exc))
        who = account.get("username") if isinstance(account, dict) else None
        return CheckResult(self.name, self.model, True,
                           f"authenticated as {who or '?'}; model {owner}/{name} found")

    # ------------------------------------------------------------------ one prediction

    async def _job(self, request: ImageRequest, run: jobs.JobRun,
                   deadline: float) -> ProviderReply:
        prediction = await self._create(request, run, deadline)
        if not prediction.done:
            prediction = await self._poll(
                lambda: self._fetch(prediction, deadline), finished=lambda p: p.done,
                status_of=lambda p: p.status, run=run, deadline=deadline)
        failure = finished_error(prediction)
        if failure is not None:
            raise failure
        outputs = prediction.output
        run.cost_usd = self._cost(prediction, len(outputs))
        if len(outputs) < request.n:
            raise ProviderError(Outcome.MALFORMED_RESPONSE, f"Replicate prediction "
                                f"{prediction.id} succeeded with {len(outputs)} output(s); "
                                f"asked for {request.n}", status_code=200,
                                provider_code="fewer_images")
        images = await self._download(list(outputs[:request.n]), deadline,
                                      retries=self.download_retries)
        return ProviderReply(
            images=images,
            usage={"prediction_id": prediction.id, "outputs": len(outputs),
                   "predict_time": prediction.predict_time},
            cost_usd=run.cost_usd, model=self._used_model(prediction),
            vendor_request_id=prediction.id,
            extra={"prediction_id": prediction.id, "status": prediction.status})

    async def _create(self, request: ImageRequest, run: jobs.JobRun,
                      deadline: float) -> Prediction:
        path, fields = create_path(self.model)
        fmt = self.output_format or request.output_format
        ratio = self.capabilities.aspect_ratio_for(request)
        body = {**fields, "input": prediction_input(
            request, f"{ratio[0]}:{ratio[1]}" if ratio else None, output_format=fmt,
            n_field="num_outputs" if self.capabilities.max_n > 1 else None,
            extra=self.extra_input)}
        headers = self._headers()
        wait = min(self.prefer_wait_s, math.floor(deadline - self._clock.now() - 1.0))
        if wait >= 1:
            headers["prefer"] = f"wait={wait}"
        what = f"POST {path}"
        data = await jobs.api_json(
            self._clients.get(), "POST", self.base_url + path, what=what,
            map_error=error_from_answer, headers=headers, json=body,
            timeout=jobs.time_left(self._clock, deadline, max(wait, 0) + self.request_timeout_s))
        prediction = parse_prediction(data, what)
        run.job_id, run.status = prediction.id, prediction.status
        run.details["cancel_url"] = self._own(prediction.cancel_url) or \
            f"{self.base_url}/v1/predictions/{quote(prediction.id, safe='')}/cancel"
        return prediction

    async def _fetch(self, prediction: Prediction, deadline: float) -> Prediction:
        url = self._own(prediction.get_url) or \
            f"{self.base_url}/v1/predictions/{quote(prediction.id, safe='')}"
        what = f"poll of prediction {prediction.id}"
        data = await self._api("GET", url, what, deadline)
        got = parse_prediction(data, what)
        if got.id != prediction.id:  # a confused cache or proxy: never take another's output
            raise ProviderError(Outcome.MALFORMED_RESPONSE, f"{what} answered with "
                                f"prediction {got.id[:80]!r}", status_code=200,
                                provider_code="wrong_prediction")
        return got

    async def _cancel_after_timeout(self, exc: ProviderError, ends: float) -> None:
        """Cancel the prediction a timed-out attempt leaves behind (best effort, within the
        attempt's remaining time; the request goes on if the chain moves on first)."""
        url = exc.details.get("cancel_url") if exc.details else None
        if not isinstance(url, str) or exc.details.get("status") in ("succeeded", "failed",
                                                                       "canceled"):
            return
        task = self._in_background(self._cancel(url))
        left = max(0.0, ends - self._clock.now() - 0.001)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(left):
                await asyncio.shield(task)
        exc.details = {**exc.details, "cancel_requested": True,
                       "canceled": task.done() and not task.cancelled()
                       and task.exception() is None}

    async def _cancel(self, url: str) -> None:
        await jobs.api_json(self._clients.get(), "POST", url, what="POST cancel",
                            map_error=error_from_answer, headers=self._headers(),
                            timeout=self.request_timeout_s)

    # ------------------------------------------------------------------ plumbing

    async def _get(self, path: str, what: str, timeout: float) -> Any:
        return await jobs.api_json(self._clients.get(), "GET", self.base_url + path,
                                   what=what, map_error=error_from_answer,
                                   headers=self._headers(), timeout=timeout)

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._api_key}", "accept": "application/json"}

    def _map_error(self, answer: jobs.ErrorAnswer) -> ProviderError:
        return error_from_answer(answer)

    def _normalise_base_url(self, url: str) -> str:
        return _normalise_base_url(url)

    def _used_model(self, prediction: Prediction) -> str:
        """``owner/name:version`` as the prediction reports it (else the model asked for)."""
        name = prediction.model or self.model.partition(":")[0]
        return f"{name}:{prediction.version}" if prediction.version else name

    def _own(self, url: str | None) -> str | None:
        """``url`` when it is on the API's own origin (scheme, host, port), else ``None``."""
        if not url:
            return None
        mine, theirs = urlsplit(self.base_url), urlsplit(url)
        same = (mine.scheme, mine.hostname, mine.port) == (theirs.scheme, theirs.hostname,
                                                           theirs.port)
        return url if same else None

    def _cost(self, prediction: Prediction, outputs: int) -> float | None:
        from .cost import cost_from_replicate_outputs, cost_from_replicate_predict_time

        with contextlib.suppress(ValueError, TypeError, ArithmeticError):
            if self.usd_per_second is not None and prediction.predict_time is not None:
                return cost_from_replicate_predict_time(prediction.predict_time,
                                                        self.usd_per_second)
            return cost_from_replicate_outputs(self.model, outputs, catalogue=self._prices)
        return None


def _normalise_base_url(url: str) -> str:
    refuse_credentials_in_url(url, "replicate")
    url = url.strip().rstrip("/").removesuffix("/v1").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"replicate: base_url must be an http(s) URL, not {url!r}")
    return url
