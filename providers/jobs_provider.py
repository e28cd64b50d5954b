"""What the submit -> poll -> download adapters (fal, BFL, Replicate) share: the set-up of a
poll schedule, the model's catalogue record, the key, the clock, the allow lists and the
pooled clients, and the plumbing built on them (:mod:`fallback_chain.providers.jobs`).

Each adapter keeps its own ``__init__`` with its explicit keywords (the registry reads them
from the signature), checks its own options, then calls :meth:`JobProvider._set_up`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from fallback_chain.clock import SYSTEM_CLOCK, Clock
from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.image_limits import ImageLimits
from fallback_chain.outcome import Outcome
from fallback_chain.provider import Provider

from . import catalogue, jobs
from .base import resolve_api_key
from .download import AllowList

if TYPE_CHECKING:
    import httpx

    from fallback_chain.cost.catalogue import PriceCatalogue
    from fallback_chain.request import ImageRequest
    from fallback_chain.results import GeneratedImage

__all__ = ["JobProvider"]

T = TypeVar("T")


class JobProvider(Provider):
    """Base of the queue/poll adapters. Subclasses set :meth:`_headers` and
    :meth:`_map_error` (the vendor's error table) and may override
    :meth:`_normalise_base_url`."""

    schedule: jobs.PollSchedule
    base_url: str
    max_wait_s: float
    request_timeout_s: float
    download_timeout_s: float
    max_download_bytes: int | None
    allow: AllowList
    api_allow: AllowList

    def _set_up(self, *, model: str, name: str | None, api_key: str | None,
                base_url: str, catalogue_model: str | None = None,
                poll: tuple[float, float, float, float, int],
                max_wait_s: float, request_timeout_s: float, download_timeout_s: float,
                max_download_bytes: int | None, cdn_hosts: Sequence[str],
                api_hosts: Sequence[str] = (), prices: PriceCatalogue | None,
                clock: Clock | None, transport: httpx.AsyncBaseTransport | None,
                http_client: httpx.AsyncClient | None) -> None:
        """The shared part of the constructor, after the subclass has checked its own options.
        ``poll``: ``(initial_s, interval_s, max_interval_s, backoff, max_failures)``."""
        vendor = self.vendor
        if not (max_wait_s > 0 and request_timeout_s > 0 and download_timeout_s > 0):
            raise ConfigurationError(f"{vendor}: max_wait_s, request_timeout_s and "
                                     "download_timeout_s must be > 0")
        try:
            self.schedule = jobs.PollSchedule(*poll)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{vendor}: {exc}") from None
        self.model = model
        self.name = name or vendor
        self._key = self.provider_key(model, name)
        self._clock: Clock = clock or SYSTEM_CLOCK
        info = catalogue.lookup(vendor, catalogue_model or model)
        catalogue.warn_if_retired(info, clock=self._clock)
        self.capabilities = info.capabilities
        self._api_key = resolve_api_key(api_key, self.env_vars, self.name)
        self.base_url = self._normalise_base_url(base_url)
        self.max_wait_s = max_wait_s
        self.request_timeout_s = request_timeout_s
        self.download_timeout_s = download_timeout_s
        self.max_download_bytes = max_download_bytes
        self.allow = AllowList.of(cdn_hosts, [self.base_url])
        self.api_allow = AllowList.of(api_hosts, [self.base_url])
        self._prices = prices
        self._clients = jobs.LoopClients(vendor, self.allow, timeout_s=request_timeout_s,
                                         transport=transport, client=http_client)
        self._cancels: set[asyncio.Future[None]] = set()

    def _normalise_base_url(self, url: str) -> str:
        return jobs.base_url(url, self.vendor)

    @property
    def key(self) -> str:
        return self._key

    # ------------------------------------------------------------------ contract

    def estimate_cost(self, request: ImageRequest) -> float | None:
        from fallback_chain.cost.estimate import estimate

        return estimate(self.vendor, self.model, size=self.capabilities.size_for(request),
                        quality=request.quality, n=request.n, catalogue=self._prices)

    def _refuse_unsupported(self, request: ImageRequest) -> None:
        """The router skips an unsupported request first; this guards direct callers."""
        reason = self.unsupported_reason(request)
        if reason is not None:
            raise ProviderError(Outcome.INVALID_REQUEST, reason)

    def record_with(self, recorder: Any) -> None:
        """Record every exchange through ``recorder`` (``Chain(recorder=...)`` calls this)."""
        self._clients.record_with(recorder)

    async def aclose(self) -> None:
        if self._cancels:
            await asyncio.gather(*self._cancels, return_exceptions=True)
        await self._clients.aclose()

    # ------------------------------------------------------------------ plumbing

    def _headers(self) -> dict[str, str]:
        """The headers of an API call (the key, ``accept``)."""
        raise NotImplementedError

    def _map_error(self, answer: jobs.ErrorAnswer) -> ProviderError:
        """The vendor's error table: a non-2xx answer as a ``ProviderError``."""
        raise NotImplementedError

    async def _run(self, body: Callable[[jobs.JobRun, float], Awaitable[T]], *, label: str,
                   timeout: float) -> T:
        return await jobs.run_job(body, label=label, timeout=timeout,
                                  max_wait_s=self.max_wait_s, clock=self._clock)

    async def _api(self, method: str, url: str, what: str, deadline: float,
                   body: dict[str, Any] | None = None) -> Any:
        """One API call within ``request_timeout_s`` and what is left before ``deadline``."""
        return await jobs.api_json(
            self._clients.get(), method, url, what=what, map_error=self._map_error,
            timeout=jobs.time_left(self._clock, deadline, self.request_timeout_s),
            headers=self._headers(), json=body)

    async def _poll(self, fetch: Callable[[], Awaitable[T]], *,
                    finished: Callable[[T], bool], status_of: Callable[[T], str | None],
                    run: jobs.JobRun, deadline: float) -> T:
        return await jobs.poll(fetch, finished=finished, schedule=self.schedule,
                               clock=self._clock, deadline=deadline, run=run,
                               status_of=status_of)

    async def _download(self, urls: Sequence[str], deadline: float, *,
                        retries: int = 1) -> list[GeneratedImage]:
        """Every URL at once (see :func:`fallback_chain.providers.jobs.download_now`)."""
        return await jobs.download_now(
            self._clients.get(), urls, self.allow, clock=self._clock, deadline=deadline,
            timeout_s=self.download_timeout_s, retries=retries,
            max_bytes=self.max_download_bytes,
            limits=ImageLimits.of(self.capabilities, self.model))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        """Run ``work`` as a task that :meth:`aclose` waits for (``RuntimeError`` without a
        running loop)."""
        task = asyncio.ensure_future(work)
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)
        return task
