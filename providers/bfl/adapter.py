"""Black Forest Labs adapter: BFL's API over ``httpx`` (no SDK), one task per image.

1. **submit** ``POST {base}/v1/{model}`` (body: :func:`.wire.request_body`), header
   ``x-key``; the answer gives the task id, its ``polling_url`` (checked to be a BFL host, or
   ``base_url``'s origin, before the key is sent there) and, in newer answers, its ``cost`` in
   credits.
2. **poll** the polling URL on the injected clock (:func:`fallback_chain.providers.jobs.poll`)
   until the status is final (:mod:`.wire`): ``Ready``, ``Request Moderated`` / ``Content
   Moderated`` (a refusal: the chain stops), ``Error``; ``Task not found`` is polled through a
   few times.
3. **download** ``result.sample`` at once (a signed URL valid for minutes) with
   :func:`fallback_chain.providers.jobs.download_now` (allow-listed hosts, checked redirects,
   a size cap, verified bytes).

A BFL task makes one image: a request for ``n`` images submits ``n`` tasks at once (up to
``max_n`` of the model's family, 4), and the attempt fails as a whole when any task fails (the
chain's retry and fallback take over; the tasks that did finish are billed and recorded in the
error's cost). A task that outlives the attempt ends it as ``timeout``, never resubmitted by
this call.

Cost: the credits BFL reports at submission (``cost``) at $0.01 a credit; without them, the
catalogue's price of the model (``providers/bfl/models.json``), see :mod:`.cost`.
"""

from __future__ import annotations

import asyncio
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
    from fallback_chain.results import GeneratedImage

__all__ = ["DEFAULT_MODEL", "BFLProvider"]

VENDOR = "bfl"
ENV_VARS = ("BFL_API_KEY",)
#: BFL's API hosts (global, regional: api.eu1.bfl.ai, api.us1.bfl.ai, ...) and result hosts.
API_HOSTS = ("api.bfl.ai", "*.bfl.ai", "api.bfl.ml", "*.bfl.ml")
CDN_HOSTS = ("*.bfl.ai", "*.bfl.ml")


class BFLProvider(JobProvider):
    """A Black Forest Labs model behind the chain (``model`` is the endpoint's name, e.g.
    ``flux-pro-1.1``, ``flux-2-pro``); the key comes from ``api_key`` or ``BFL_API_KEY``.
    ``base_url`` is the API root (default ``https://api.bfl.ai``; regional roots such as
    ``https://api.eu.bfl.ai`` work; an emulator's ``http://127.0.0.1:8000/bfl``). Several BFL
    models can share one chain: the key is ``bfl/<model>`` unless ``name`` is set."""

    vendor = VENDOR
    env_vars = ENV_VARS
    default_model = DEFAULT_MODEL
    config_options = (
        "cdn_hosts", "download_timeout_s", "extra_body", "max_download_bytes",
        "max_poll_failures", "max_wait_s", "output_format", "poll_initial_s",
        "poll_interval_s", "poll_max_interval_s", "request_timeout_s", "safety_tolerance")
    emulator_path = "/bfl"
    emulator_api = "fallback_chain.providers.bfl.emulated:BFLAPI"
    fast_poll_options: ClassVar[Mapping[str, object]] = {"poll_initial_s": 0.05,
                                                         "poll_interval_s": 0.1}
    cost_module = "fallback_chain.providers.bfl.cost"

    @classmethod
    def provider_key(cls, model: str, name: str | None = None) -> str:
        """``bfl/<model>`` unless named: several BFL models can share one chain."""
        return name or f"{cls.vendor}/{model}"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        name: str | None = None,
        output_format: str = "jpeg",
        safety_tolerance: int = 2,
        extra_body: Mapping[str, Any] | None = None,
        poll_initial_s: float = 0.5,
        poll_interval_s: float = 0.5,
        poll_max_interval_s: float = 3.0,
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
        if not model or not isinstance(model, str) or "/" in model or not model.strip():
            raise ConfigurationError("bfl: model must be a BFL endpoint name such as "
                                     f"{DEFAULT_MODEL!r}")
        if output_format not in ("jpeg", "png"):
            raise ConfigurationError("bfl: output_format must be 'jpeg' or 'png'")
        if not isinstance(safety_tolerance, int) or not 0 <= safety_tolerance <= 6:
            raise ConfigurationError("bfl: safety_tolerance must be an integer from 0 "
                                     "(strictest) to 6")
        self._set_up(
            model=model, name=name, api_key=api_key, base_url=base_url or DEFAULT_BASE_URL,
            poll=(poll_initial_s, poll_interval_s, poll_max_interval_s, 1.5, max_poll_failures),
            max_wait_s=max_wait_s, request_timeout_s=request_timeout_s,
            download_timeout_s=download_timeout_s, max_download_bytes=max_download_bytes,
            cdn_hosts=cdn_hosts, api_hosts=API_HOSTS, prices=prices, clock=clock,
            transport=transport, http_client=http_client)
        self.output_format = output_format
        self.safety_tolerance = safety_tolerance
        self.extra_body = dict(extra_body or {})

    # ------------------------------------------------------------------ contract

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        self._refuse_unsupported(request)
        return await self._run(lambda run, deadline: self._tasks(request, run, deadline),
                               label="BFL", timeout=timeout)

    async def check(self) -> CheckResult:
        """``GET /v1/credits`` (free): verifies the key and reads the credit balance."""
        try:
            data = await self._api("GET", f"{self.base_url}/v1/credits", "GET /v1/credits",
                                   self._clock.now() + self.request_timeout_s)
        except ProviderError as exc:
            return CheckResult(self.name, self.model, False, str(exc))
        credits = data.get("credits") if isinstance(data, dict) else None
        if not isinstance(credits, int | float) or isinstance(credits, bool):
            return CheckResult(self.name, self.model, False,
                               "GET /v1/credits answered without a credits balance")
        return CheckResult(self.name, self.model, True,
                           f"key accepted; {credits:,.2f} credits (about "
                           f"${credits * wire.USD_PER_CREDIT:,.2f})")

    # ------------------------------------------------------------------ tasks

    async def _tasks(self, request: ImageRequest, run: jobs.JobRun, deadline: float
                     ) -> ProviderReply:
        """``request.n`` tasks at once; the reply (or the first failure) of them all."""
        runs = [jobs.JobRun() for _ in range(request.n)]
        results = await asyncio.gather(
            *(self._task(request, r, deadline, i) for i, r in enumerate(runs)),
            return_exceptions=True)
        ids = [r.job_id for r in runs if r.job_id]
        costs = [r.cost_usd for r in runs if r.cost_usd is not None]
        run.job_id = ",".join(ids) or None  # errors name the tasks and carry what they billed
        run.status = next((r.status for r in runs if r.status and r.status != wire.READY),
                          runs[0].status)
        run.cost_usd = sum(costs) if costs else None
        delivered = [(r, res) for r, res in zip(runs, results, strict=True)
                     if not isinstance(res, BaseException)]
        reply = self._reply(request, delivered, ids)
        failures = [r for r in results if isinstance(r, BaseException)]
        if not failures:
            return reply
        errors = [f for f in failures if isinstance(f, ProviderError)]
        refusal = next((e for e in errors if e.outcome is Outcome.CONTENT_POLICY), None)
        if refusal is not None:  # a refusal decides, whatever the other tasks did
            raise refusal
        if not errors:
            raise failures[0]  # TimeoutError or an unexpected exception: run_job maps it
        if delivered:  # the chain keeps these and asks the next provider for the rest
            errors[0].partial = reply
        raise errors[0]

    def _reply(self, request: ImageRequest,
               delivered: list[tuple[jobs.JobRun, tuple[GeneratedImage, wire.Task]]],
               ids: list[str]) -> ProviderReply:
        """The reply of the tasks that delivered (all of them, or a partial reply)."""
        costs = [r.cost_usd for r, _ in delivered if r.cost_usd is not None]
        tasks = [task for _, (_, task) in delivered]
        prompt = tasks[0].prompt if tasks else None
        return ProviderReply(
            images=[img for _, (img, _) in delivered],
            revised_prompt=prompt if prompt and prompt.strip() != request.prompt.strip()
            else None,
            usage={"task_ids": ids,
                   "cost_credits": [r.details.get("credits") for r, _ in delivered]},
            cost_usd=sum(costs) if costs else None, model=self.model,
            vendor_request_id=",".join(ids) or None,
            extra={"task_ids": ids, "seeds": [t.seed for t in tasks]})

    async def _task(self, request: ImageRequest, run: jobs.JobRun, deadline: float,
                    index: int) -> tuple[GeneratedImage, wire.Task]:
        from .cost import cost_from_bfl_credits, cost_from_bfl_image

        size = self.capabilities.size_for(request)
        body = wire.request_body(request, size, output_format=self.output_format,
                                 safety_tolerance=self.safety_tolerance, extra=self.extra_body,
                                 index=index)
        data = await self._api("POST", f"{self.base_url}/v1/{self.model}",
                               f"POST /v1/{self.model}", deadline, body)
        sub = wire.parse_submission(data, self.base_url)
        run.job_id = sub.task_id
        run.details["credits"] = sub.cost_credits
        with contextlib.suppress(ValueError, TypeError, ArithmeticError):
            run.cost_usd = (cost_from_bfl_credits(sub.cost_credits)
                            if sub.cost_credits is not None
                            else cost_from_bfl_image(self.model, size, catalogue=self._prices))
        jobs.refuse_api_url(sub.polling_url, self.api_allow, f"BFL task {sub.task_id}")
        task = await self._poll(
            lambda: self._fetch(sub, deadline), finished=lambda t: t.status in wire.FINAL,
            status_of=lambda t: t.status, run=run, deadline=deadline)
        failure = wire.task_failure(task, sub.task_id)
        if failure is not None:
            raise failure
        assert task.sample is not None
        [image] = await self._download([task.sample], deadline)
        return image, task

    async def _fetch(self, sub: wire.Submission, deadline: float) -> wire.Task:
        return wire.parse_task(await self._api("GET", sub.polling_url,
                                               f"poll of task {sub.task_id}", deadline))

    def _headers(self) -> dict[str, str]:
        return {"x-key": self._api_key, "accept": "application/json"}

    def _map_error(self, answer: jobs.ErrorAnswer) -> ProviderError:
        return wire.error_from_answer(answer)
