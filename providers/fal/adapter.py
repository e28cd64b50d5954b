"""fal.ai adapter: the queue API over ``httpx`` (no SDK), one queue request per ``generate``.

1. **submit** ``POST {base}/{model_id}`` (body: :func:`.wire.request_body`), header
   ``Authorization: Key <key>``; the answer gives the request id and its status, result and
   cancel URLs (checked to be the API's own hosts before the key is sent to them).
2. **poll** the status URL on the injected clock (:func:`fallback_chain.providers.jobs.poll`:
   ``poll_initial_s``, then ``poll_interval_s`` growing to ``poll_max_interval_s``) until the
   request is no longer ``IN_QUEUE`` / ``IN_PROGRESS``; transient poll failures are polled
   through (``max_poll_failures`` in a row).
3. **result** ``GET`` the response URL; images flagged in ``has_nsfw_concepts`` are never
   delivered, and when fewer than ``request.n`` clean images remain the attempt is a
   ``content_policy`` refusal (the chain stops).
4. **download** at once (fal's result URLs are not kept forever) with
   :func:`fallback_chain.providers.jobs.download_now`: allow-listed hosts (``cdn_hosts`` plus
   ``base_url``'s origin), checked redirects, a size cap, verified bytes.

When the attempt's time runs out after submission, the request is **cancelled** (best effort,
``PUT`` on the cancel URL, in the background) and the attempt ends as ``timeout``; it is never
submitted again by this call. Errors: :mod:`.wire`.

Cost: fal reports no price in its answers; the reply's ``cost_usd`` is the catalogue price of
the images delivered (``providers/fal/models.json``, per image at 1 MP), see :mod:`.cost`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from fallback_chain.clock import Clock
from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.outcome import Outcome
from fallback_chain.provider import CheckResult, ProviderReply

from .. import jobs
from ..jobs_provider import JobProvider
from . import wire
from .wire import DEFAULT_BASE_URL, DEFAULT_MODEL

if TYPE_CHECKING:
    import httpx

    from fallback_chain.cost.catalogue import PriceCatalogue
    from fallback_chain.request import ImageRequest

__all__ = ["DEFAULT_MODEL", "FalProvider"]

VENDOR = "fal"
ENV_VARS = ("FAL_KEY",)
#: Where fal's queue answers and result files live.
API_HOSTS = ("queue.fal.run", "*.fal.run")
CDN_HOSTS = ("fal.media", "*.fal.media")


class FalProvider(JobProvider):
    """A fal.ai model behind the chain (``model`` is fal's model id, e.g.
    ``fal-ai/flux/schnell``); the key comes from ``api_key`` or ``FAL_KEY``. ``base_url`` is the
    queue's root (default ``https://queue.fal.run``; an emulator's ``http://127.0.0.1:8000/fal``).
    Several fal models can share one chain: the key is ``fal/<model>`` unless ``name`` is set.
    ``clock`` is used for every wait and deadline; ``transport`` or ``http_client`` replace the
    network (``Emulator().httpx_transport()``)."""

    vendor = VENDOR
    env_vars = ENV_VARS
    default_model = DEFAULT_MODEL
    config_options = (
        "cdn_hosts", "download_timeout_s", "extra_body", "max_download_bytes",
        "max_poll_failures", "max_wait_s", "output_format", "poll_initial_s",
        "poll_interval_s", "poll_max_interval_s", "request_timeout_s", "safety_checker")
    emulator_path = "/fal"
    emulator_api = "fallback_chain.providers.fal.emulated:FalAPI"
    fast_poll_options: ClassVar[Mapping[str, object]] = {"poll_initial_s": 0.05,
                                                         "poll_interval_s": 0.1}
    cost_module = "fallback_chain.providers.fal.cost"

    @classmethod
    def provider_key(cls, model: str, name: str | None = None) -> str:
        """``fal/<model>`` unless named: several fal models can share one chain."""
        return name or f"{cls.vendor}/{model}"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        name: str | None = None,
        output_format: str = "jpeg",
        safety_checker: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        poll_initial_s: float = 0.5,
        poll_interval_s: float = 1.0,
        poll_max_interval_s: float = 5.0,
        max_poll_failures: int = 3,
        max_wait_s: float = 600.0,
        request_timeout_s: float = 30.0,
        download_timeout_s: float = 60.0,
        max_download_bytes: int | None = None,
        cdn_hosts: Sequence[str] = CDN_HOSTS,
        prices: PriceCatalogue | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not model or not isinstance(model, str) or not wire.app_path(model):
            raise ConfigurationError("fal: model must be a fal model id such as "
                                     f"{DEFAULT_MODEL!r}")
        if output_format not in ("jpeg", "png"):
            raise ConfigurationError("fal: output_format must be 'jpeg' or 'png'")
        self._set_up(
            model=model, name=name, api_key=api_key, base_url=base_url or DEFAULT_BASE_URL,
            poll=(poll_initial_s, poll_interval_s, poll_max_interval_s, 1.5, max_poll_failures),
            max_wait_s=max_wait_s, request_timeout_s=request_timeout_s,
            download_timeout_s=download_timeout_s, max_download_bytes=max_download_bytes,
            cdn_hosts=cdn_hosts, api_hosts=API_HOSTS, prices=prices, clock=clock,
            transport=transport, http_client=http_client)
        self.output_format = output_format
        self.safety_checker = safety_checker
        self.extra_body = dict(extra_body or {})

    # ------------------------------------------------------------------ contract

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        self._refuse_unsupported(request)
        submitted: list[wire.Submission] = []
        try:
            return await self._run(
                lambda run, deadline: self._job(request, run, deadline, submitted),
                label="fal", timeout=timeout)
        except ProviderError as exc:
            if exc.outcome is Outcome.TIMEOUT and submitted:
                self._cancel_later(submitted[0])
            raise

    async def check(self) -> CheckResult:
        """A free probe: ``GET`` the status of a request that does not exist. fal documents no
        key-check endpoint; a key it refuses answers 401/403 (with fal's words: a bad key, or
        an account locked for its balance), a key it accepts answers 404 for the unknown
        request. Nothing is queued or billed."""
        probe = (f"{self.base_url}/{wire.app_path(self.model)}/requests/"
                 "00000000-0000-4000-8000-000000000000/status")
        try:
            await self._api("GET", probe, "status probe", self._clock.now()
                            + self.request_timeout_s)
        except ProviderError as exc:
            if exc.status_code == 404:
                return CheckResult(self.name, self.model, True,
                                   "key accepted (fal answered 404 for an unknown request)")
            return CheckResult(self.name, self.model, False, str(exc))
        return CheckResult(self.name, self.model, True, "key accepted")

    # ------------------------------------------------------------------ one request

    async def _job(self, request: ImageRequest, run: jobs.JobRun, deadline: float,
                   submitted: list[wire.Submission]) -> ProviderReply:
        size = self.capabilities.size_for(request)
        body = wire.request_body(request, size, output_format=self.output_format,
                                 safety_checker=self.safety_checker, extra=self.extra_body)
        data = await self._api("POST", f"{self.base_url}/{self.model}",
                               f"POST /{self.model}", deadline, body)
        sub = wire.parse_submission(data, self.base_url, self.model)
        for url in (sub.status_url, sub.response_url, sub.cancel_url):
            jobs.refuse_api_url(url, self.api_allow, f"fal request {sub.request_id}")
        run.job_id = sub.request_id
        submitted.append(sub)
        status = await self._poll(
            lambda: self._api("GET", sub.status_url, f"status of {sub.request_id}", deadline),
            finished=lambda a: wire.status_of(a) not in wire.WAITING,
            status_of=wire.status_of, run=run, deadline=deadline)
        failure = wire.completed_error(status, sub.request_id)
        if failure is not None:
            raise failure
        if run.status != "COMPLETED":
            raise ProviderError(Outcome.SERVER_ERROR, f"fal request {sub.request_id} ended "
                                f"{run.status}", provider_code=(run.status or "?")[:40])
        output = wire.parse_output(await self._api(
            "GET", sub.response_url, f"result of {sub.request_id}", deadline))
        return await self._deliver(request, sub, output, run, deadline)

    async def _deliver(self, request: ImageRequest, sub: wire.Submission, output: wire.Output,
                       run: jobs.JobRun, deadline: float) -> ProviderReply:
        from .cost import cost_from_fal_images

        rid = sub.request_id
        sizes = [(img.width or 0, img.height or 0) for img in output.images]
        with contextlib.suppress(ValueError, TypeError, ArithmeticError):
            run.cost_usd = cost_from_fal_images(self.model, sizes, catalogue=self._prices)
        clean = [img for img in output.images if not img.nsfw]
        flagged = len(output.images) - len(clean)
        if flagged and len(clean) < request.n:
            raise ProviderError(
                Outcome.CONTENT_POLICY,
                f"fal's safety checker flagged {flagged} of {len(output.images)} image(s) "
                "(has_nsfw_concepts)", provider_code="has_nsfw_concepts",
                details={"categories": ["nsfw"], "reason": "has_nsfw_concepts",
                         "request_id": rid})
        if len(clean) < request.n:
            raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                f"fal request {rid} delivered {len(clean)} image(s); asked for "
                                f"{request.n}", status_code=200, provider_code="fewer_images")
        images = await self._download([img.url for img in clean[:request.n]], deadline)
        prompt = output.prompt
        return ProviderReply(
            images=images,
            revised_prompt=prompt if prompt and prompt.strip() != request.prompt.strip()
            else None,
            usage={"request_id": rid, "images": len(output.images)}, cost_usd=run.cost_usd,
            model=self.model, vendor_request_id=rid,
            extra={"request_id": rid, "seed": output.seed, "nsfw_flagged": flagged})

    # ------------------------------------------------------------------ plumbing

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Key {self._api_key}", "accept": "application/json"}

    def _map_error(self, answer: jobs.ErrorAnswer) -> ProviderError:
        return wire.error_from_answer(answer)

    def _cancel_later(self, sub: wire.Submission) -> None:
        """``PUT`` the cancel URL in the background (best effort: fal cancels a request that
        has not started; one already running completes and bills)."""
        async def cancel() -> None:
            with contextlib.suppress(ProviderError):
                await self._api("PUT", sub.cancel_url, f"cancel of {sub.request_id}",
                                self._clock.now() + 5.0)

        with contextlib.suppress(RuntimeError):  # no running loop
            self._in_background(cancel())
