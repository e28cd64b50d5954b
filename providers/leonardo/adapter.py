"""Leonardo.Ai adapter: REST v1 over ``httpx`` (no SDK), asynchronous jobs.

One :meth:`LeonardoProvider.generate` call is one Leonardo job:

1. **submit** ``POST {base}/api/rest/v1/generations`` (body: :mod:`.wire`).
   The answer carries the ``generationId`` and what the job costs (``apiCreditCost`` or
   ``cost {amount, unit}``); Leonardo bills it from here on.
2. **poll** ``GET {base}/api/rest/v1/generations/{id}`` with bounded backoff: the first poll
   after ``poll_initial_s`` (1.5 s), then every ``poll_interval_s`` (3 s) growing by
   ``poll_backoff`` (x1.5) up to ``poll_max_interval_s`` (10 s), until the job is no longer
   ``PENDING`` or the attempt's time is up (the ``timeout`` the router passes, and never more
   than ``max_wait_s``, 10 minutes). A transient poll failure (5xx, 429, reset, HTML or broken
   JSON, ``generations_by_pk: null``) is polled through, up to ``max_poll_failures`` in a row.
3. **download** every image at once (the URLs expire) with ``..download.fetch_all`` (through
   :func:`fallback_chain.providers.jobs.download_now`, shared with the other job vendors):
   allow-listed hosts only (``cdn_hosts`` plus the origin of ``base_url``, so an emulator
   works), redirects checked, never a private address (on the real network the client
   resolves each host itself and refuses loopback, RFC 1918, link-local...: see
   :func:`fallback_chain.providers.download.guarded_transport`), a size cap (``max_download_bytes``,
   default ``download.MAX_IMAGE_BYTES``), a timeout, and the bytes verified as an image. A
   transient download failure (5xx, reset, timeout) is retried once with the same URLs.

**A job is never submitted twice by one call.** When the attempt's time runs out after the job
was submitted, the adapter stops polling and raises ``ProviderError(Outcome.TIMEOUT, ...,
cost_usd=<the credits already billed>)`` a little before the router's own timeout fires, so
the attempt records what Leonardo charged. The default policy for ``timeout`` is *advance* (no
retry; see ``fallback_chain.policy.rules``), so a slow job is never resubmitted to Leonardo by
the chain either. Every failure after submission carries the billed cost.

**The router's retry on ``server_error`` / ``malformed_response`` / ``connection_error``**
(one more ``generate``) does create a second job, and that is acceptable by design: it only
happens when the first job can no longer deliver (it ended ``FAILED``, or it completed with
unusable output: expired URLs, bad bytes, fewer images), or when the submission itself failed
(a 5xx or a dropped connection, where normally no job exists). Each job's cost is recorded on
its own attempt, and transient failures of *polling* and *downloading* are absorbed here, inside
the one job, precisely so that they do not turn into a second job. The one ambiguous case is a
connection dropped after Leonardo accepted the POST (the job exists but its id never arrived);
nothing can recover that id, and the retry is the only way to still get images. Callers who
prefer never to pay twice set ``Policy(providers={"leonardo": {"retries":
{"server_error": 0, "malformed_response": 0, "connection_error": 0}}})``.

Outcomes (Leonardo's own words and code first, the HTTP status only after, never the
exception class; the full precedence is in
:mod:`fallback_chain.providers.leonardo.wire` and ``docs/errors.md``):

=============================================  ==========================================
Leonardo's answer                              outcome
=============================================  ==========================================
a 4xx whose body names content moderation      content_policy (chain stops)
(sent as 400 and as 403); job COMPLETE with
images flagged ``nsfw``
"Invalid response from authorization hook"     auth_error (not retried)
(sent as 500); 401, 403
402, or a 4xx whose body says the credits /    quota_exhausted
tokens ran out
"… not supported within the Production API"    not_found
429                                            rate_limited (Retry-After when sent)
"non-nullable variable: prompt"                invalid_request, request fault (stops)
other 400 / 409 / 413 / 422                    invalid_request
404                                            not_found
5xx (Hasura ``{"error","path","code"}``)       server_error
job ``FAILED``                                 server_error (billed credits recorded)
job still ``PENDING`` at the attempt timeout   timeout (billed credits recorded)
200 that is HTML / not JSON / no id            malformed_response
``generations_by_pk: null`` (repeatedly)       malformed_response
fewer images than asked, bytes not an image,   malformed_response
expired image URL (403/404/410), a URL
outside the allow-list or a host resolving to
a private address (nothing fetched), a poll
answer about another job, an unreadable answer
connection refused / reset / cut               connection_error
no answer within the request timeout           timeout
=============================================  ==========================================
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from fallback_chain.clock import SYSTEM_CLOCK, Clock
from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.image_limits import ImageLimits
from fallback_chain.outcome import Outcome
from fallback_chain.provider import CheckResult, Provider, ProviderReply

from .. import catalogue, jobs
from ..base import refuse_credentials_in_url, resolve_api_key
from ..download import AllowList
from .wire import (
    API_PREFIX,
    DEFAULT_BASE_URL,
    DEFAULT_MODEL_ID,
    MAX_API_BYTES,
    Generation,
    Submission,
    error_from_response,
    generation_body,
    max_images_for,
    parse_generation,
    parse_submission,
    read_json,
    transport_error,
)

if TYPE_CHECKING:
    import httpx

    from fallback_chain.cost.catalogue import PriceCatalogue
    from fallback_chain.request import ImageRequest
    from fallback_chain.results import GeneratedImage

__all__ = ["DEFAULT_MODEL_ID", "LeonardoProvider"]

ENV_VARS = ("LEONARDO_API_KEY",)
#: Poll failures worth polling through: the job itself is unaffected by them.
_TRANSIENT_POLL = frozenset({Outcome.SERVER_ERROR, Outcome.RATE_LIMITED,
                             Outcome.CONNECTION_ERROR, Outcome.TIMEOUT,
                             Outcome.MALFORMED_RESPONSE})


@dataclass(slots=True)
class _Run:
    """What one ``generate`` call has done so far (read when it fails)."""

    submission: Submission | None = None
    cost_usd: float | None = None
    status: str | None = None


class LeonardoProvider(catalogue.CatalogueLifecycle, Provider):
    """Leonardo.Ai image generation (REST v1, legacy platform models) behind the chain.

    ``model_id`` is Leonardo's ``modelId`` (default: the spec's default, Leonardo Lightning XL);
    ``model=`` is accepted as an alias. The key comes from ``api_key`` or ``LEONARDO_API_KEY``.
    ``base_url`` is the API root (default ``https://cloud.leonardo.ai``; an emulator's
    ``http://127.0.0.1:8000``; a trailing ``/api/rest/v1`` is tolerated).

    Cost: the job's reported ``cost``/``apiCreditCost`` times ``usd_per_credit`` (default: the
    price catalogue's rate, ``PriceCatalogue.default().usd_per_credit("leonardo")``, or that
    of ``prices``). ``bill_failed_jobs`` records a ``FAILED`` job's credits as spent (Leonardo
    debits them at submission and does not document a refund; the figure errs high).

    Polling and timing: see the module docstring. ``clock`` (default ``SYSTEM_CLOCK``) is used
    for every poll wait and deadline, so tests run on virtual time. ``transport`` (an
    ``httpx.AsyncBaseTransport``) or ``http_client`` (used as is, never closed by us) replace
    the network, e.g. ``Emulator().httpx_transport()``.
    """

    vendor = "leonardo"
    env_vars = ENV_VARS
    default_model = DEFAULT_MODEL_ID
    model_param = "model_id"
    config_options = (
        "alchemy", "bill_failed_jobs", "cdn_hosts", "download_retries", "download_timeout_s",
        "extra_body", "max_download_bytes", "max_poll_failures", "max_wait_s", "poll_backoff",
        "poll_initial_s", "poll_interval_s", "poll_max_interval_s", "preset_style",
        "request_timeout_s", "usd_per_credit")
    emulator_api = "fallback_chain.emulator.leonardo_api:LeonardoAPI"
    fast_poll_options: ClassVar[Mapping[str, object]] = {"poll_initial_s": 0.1,
                                                         "poll_interval_s": 0.1}
    cost_module = "fallback_chain.providers.leonardo.cost"

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        name: str = "leonardo",
        model: str | None = None,
        usd_per_credit: float | None = None,
        poll_initial_s: float = 1.5,
        poll_interval_s: float = 3.0,
        poll_max_interval_s: float = 10.0,
        poll_backoff: float = 1.5,
        max_wait_s: float = 600.0,
        max_poll_failures: int = 3,
        request_timeout_s: float = 30.0,
        download_timeout_s: float = 60.0,
        download_retries: int = 1,
        max_download_bytes: int | None = None,
        cdn_hosts: Sequence[str] = ("cdn.leonardo.ai", "*.leonardo.ai"),
        alchemy: bool = True,
        preset_style: str | None = "DYNAMIC",
        extra_body: Mapping[str, Any] | None = None,
        bill_failed_jobs: bool = True,
        prices: PriceCatalogue | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if model is not None:
            if model_id not in (DEFAULT_MODEL_ID, model):
                raise ConfigurationError("leonardo: pass model_id= or model=, not both")
            model_id = model
        if not model_id or not isinstance(model_id, str):
            raise ConfigurationError("leonardo: model_id must be a non-empty string")
        _check_positive(poll_interval_s=poll_interval_s, poll_max_interval_s=poll_max_interval_s,
                        max_wait_s=max_wait_s, request_timeout_s=request_timeout_s,
                        download_timeout_s=download_timeout_s,
                        max_download_bytes=1 if max_download_bytes is None
                        else max_download_bytes)
        if poll_initial_s < 0 or poll_backoff < 1 or max_poll_failures < 1 or \
                download_retries < 0:
            raise ConfigurationError("leonardo: poll_initial_s must be >= 0, poll_backoff >= 1, "
                                     "max_poll_failures >= 1, download_retries >= 0")
        if usd_per_credit is not None and usd_per_credit < 0:
            raise ConfigurationError("leonardo: usd_per_credit must be >= 0")
        self.name = name
        self.model = model_id
        info = catalogue.lookup("leonardo", model_id)
        catalogue.warn_if_retired(info, clock=clock)
        self._retirement = catalogue.retirement(info)  # skipped once shut down
        self.capabilities = info.capabilities
        self._key = resolve_api_key(api_key, ENV_VARS, name)
        self.base_url = _normalise_base_url(base_url or DEFAULT_BASE_URL)
        self._api_root = self.base_url + API_PREFIX
        self.usd_per_credit = usd_per_credit
        self.poll_initial_s = poll_initial_s
        self.poll_interval_s = poll_interval_s
        self.poll_max_interval_s = max(poll_max_interval_s, poll_interval_s)
        self.poll_backoff = poll_backoff
        self.max_wait_s = max_wait_s
        self.max_poll_failures = max_poll_failures
        self.request_timeout_s = request_timeout_s
        self.download_timeout_s = download_timeout_s
        self.download_retries = download_retries
        self.max_download_bytes = max_download_bytes
        self.alchemy = alchemy
        self.preset_style = preset_style
        self.extra_body = dict(extra_body or {})
        self.bill_failed_jobs = bill_failed_jobs
        self.allow = AllowList.of(cdn_hosts, [self.base_url])
        self._prices = prices
        self._clock: Clock = clock or SYSTEM_CLOCK
        # one pooled client per event loop, on the guarded transport unless one is given
        self._clients = jobs.LoopClients("leonardo", self.allow, timeout_s=request_timeout_s,
                                         transport=transport, client=http_client)

    # ------------------------------------------------------------------ contract

    def unsupported_reason(self, request: ImageRequest) -> str | None:
        reason = super().unsupported_reason(request)
        if reason is not None:
            return reason
        width, height = self.capabilities.size_for(request)
        limit = max_images_for(width, height)
        if request.n > limit:
            return (f"n={request.n} at {width}x{height}: Leonardo makes at most {limit} images "
                    f"per job when a side is over 768 px (ask for 768x768 or smaller, or n<=4)")
        return None

    def estimate_cost(self, request: ImageRequest) -> float | None:
        from fallback_chain.cost.estimate import estimate

        cat = self._catalogue()
        usd = estimate("leonardo", self.model, size=self.capabilities.size_for(request),
                       quality=request.quality, n=request.n, catalogue=cat)
        if usd is None or self.usd_per_credit is None:
            return usd
        rate = cat.usd_per_credit("leonardo")
        return usd * self.usd_per_credit / rate if rate else usd

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        reason = self.unsupported_reason(request)
        if reason is not None:  # the router skips first; this guards direct callers
            raise ProviderError(Outcome.INVALID_REQUEST, reason)
        # Finish a little before the router's own asyncio.timeout, so that a job that outlives
        # the attempt ends here, as a ProviderError carrying the billed cost.
        margin = min(0.5, max(0.002, 0.01 * timeout))
        budget = min(max(timeout - margin, timeout / 2), self.max_wait_s)
        run = _Run()
        try:
            async with asyncio.timeout(budget):
                return await self._generate(request, run, self._clock.now() + budget, budget)
        except TimeoutError:
            raise self._timed_out(run, timeout) from None
        except ProviderError as exc:
            raise self._billed(exc, run) from None
        except Exception as exc:  # an answer we failed to handle is still a typed outcome,
            raise self._billed(ProviderError(  # and a submitted job still bills
                Outcome.MALFORMED_RESPONSE, f"could not handle Leonardo's answer "
                f"({type(exc).__name__}: {exc})", provider_code="unreadable"), run) from None

    async def check(self) -> CheckResult:
        """``GET /api/rest/v1/me``: verifies the key and reads the credit balance (free)."""
        try:
            data = await self._api("GET", "/me", "GET /me", self._clock.now()
                                   + self.request_timeout_s)
        except ProviderError as exc:
            return CheckResult(self.name, self.model, False, str(exc))
        details = data.get("user_details") if isinstance(data, dict) else None
        if not isinstance(details, list) or not details or not isinstance(details[0], dict):
            return CheckResult(self.name, self.model, False,
                               "GET /me answered without user_details")
        me = details[0]
        raw_user = me.get("user")
        user: dict[str, Any] = raw_user if isinstance(raw_user, dict) else {}
        credits = sum(v for k in ("apiPaidTokens", "apiSubscriptionTokens")
                      if isinstance(v := me.get(k), int | float))
        return CheckResult(self.name, self.model, True,
                           f"authenticated as {user.get('username') or user.get('id') or '?'}; "
                           f"{credits:,.0f} API credits")

    def record_with(self, recorder: Any) -> None:
        """Record every exchange with the API and its CDN through ``recorder`` (a
        ``fallback_chain.cassette.Recorder``; ``Chain(recorder=...)`` calls this)."""
        self._clients.record_with(recorder)

    async def aclose(self) -> None:
        """Close the connection pools this provider opened (never a client passed in)."""
        await self._clients.aclose()

    # ------------------------------------------------------------------ one job

    async def _generate(self, request: ImageRequest, run: _Run, deadline: float,
                        budget: float) -> ProviderReply:
        size = self.capabilities.size_for(request)
        body = generation_body(request, self.model, size, alchemy=self.alchemy,
                               preset_style=self.preset_style, extra=self.extra_body)
        data = await self._api("POST", "/generations", "POST /generations", deadline, body)
        submission = parse_submission(data)
        run.submission = submission
        run.cost_usd = self._cost(submission.job)
        generation = await self._wait(submission.generation_id, run, deadline, budget)
        return await self._deliver(request, submission, generation, run, deadline)

    async def _wait(self, generation_id: str, run: _Run, deadline: float,
                    budget: float) -> Generation:
        """Poll until the job leaves PENDING; ``TimeoutError`` when the time is up."""
        path = f"/generations/{quote(generation_id, safe='')}"
        reserve = min(1.0, 0.05 * budget)  # time kept for the last poll's round trip
        delay, failures, first = self.poll_initial_s, 0, True
        while True:
            remaining = deadline - self._clock.now()
            if remaining <= reserve:
                raise TimeoutError
            await self._clock.sleep(min(delay, remaining - reserve))
            delay = self.poll_interval_s if first else min(delay * self.poll_backoff,
                                                           self.poll_max_interval_s)
            first = False
            try:
                generation = parse_generation(
                    await self._api("GET", path, f"poll of job {generation_id}", deadline))
                if generation is None:
                    raise ProviderError(
                        Outcome.MALFORMED_RESPONSE,
                        f"Leonardo does not know job {generation_id} (generations_by_pk is "
                        "null)", status_code=200, provider_code="generation_not_found")
            except ProviderError as exc:
                failures += 1
                if exc.outcome not in _TRANSIENT_POLL or failures >= self.max_poll_failures:
                    raise
                if exc.retry_after_s:
                    delay = max(delay, exc.retry_after_s)
                continue
            if generation.id and generation.id != generation_id:
                failures += 1  # a confused cache or proxy: never take another job's images
                if failures >= self.max_poll_failures:
                    raise ProviderError(
                        Outcome.MALFORMED_RESPONSE, f"the poll of job {generation_id} answered "
                        f"with job {generation.id[:80]!r}", status_code=200,
                        provider_code="wrong_generation")
                continue
            failures = 0
            run.status = generation.status
            if generation.status not in ("PENDING", "IN_PROGRESS", "PROCESSING", "QUEUED"):
                return generation

    async def _deliver(self, request: ImageRequest, submission: Submission,
                       generation: Generation, run: _Run, deadline: float) -> ProviderReply:
        gid = submission.generation_id
        if generation.status == "FAILED":
            raise ProviderError(Outcome.SERVER_ERROR, f"Leonardo job {gid} ended FAILED",
                                provider_code="FAILED",
                                details={"generation_id": gid, "billed": self.bill_failed_jobs})
        if generation.status != "COMPLETE":
            raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                f"Leonardo job {gid} ended with unknown status "
                                f"{generation.status!r}", provider_code=generation.status[:40])
        clean = [img for img in generation.images if not img.nsfw]
        flagged = len(generation.images) - len(clean)
        if flagged and len(clean) < request.n:
            raise ProviderError(
                Outcome.CONTENT_POLICY,
                f"Leonardo's moderation flagged {flagged} of {len(generation.images)} image(s) "
                "as NSFW", provider_code="nsfw",
                details={"categories": ["nsfw"], "reason": "nsfw", "generation_id": gid})
        if len(clean) < request.n:
            raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                f"Leonardo job {gid} completed with {len(clean)} image(s); "
                                f"asked for {request.n}", status_code=200,
                                provider_code="fewer_images")
        # never more than asked: a hostile answer listing thousands of URLs fetches n
        images = await self._download([img.url for img in clean[:request.n]], deadline)
        prompt = generation.prompt
        return ProviderReply(
            images=images,
            revised_prompt=prompt if prompt and prompt.strip() != request.prompt.strip()
            else None,
            usage={**submission.job, "generationId": gid}, cost_usd=run.cost_usd,
            model=generation.model_id or self.model, vendor_request_id=gid,
            extra={"generation_id": gid, "seed": generation.seed, "nsfw_flagged": flagged})

    async def _download(self, urls: list[str], deadline: float) -> list[GeneratedImage]:
        return await jobs.download_now(self._client(), urls, self.allow, clock=self._clock,
                                       deadline=deadline, timeout_s=self.download_timeout_s,
                                       retries=self.download_retries,
                                       max_bytes=self.max_download_bytes,
                                       limits=ImageLimits.of(self.capabilities, self.model))

    # ------------------------------------------------------------------ plumbing

    async def _api(self, method: str, path: str, what: str, deadline: float,
                   body: dict[str, Any] | None = None) -> Any:
        """One call to the Leonardo API; the parsed JSON of a 2xx, else ``ProviderError``."""
        client = self._client()
        timeout = max(0.001, min(self.request_timeout_s, deadline - self._clock.now()))
        try:
            async with client.stream(
                    method, self._api_root + path, json=body, timeout=timeout,
                    headers={"authorization": f"Bearer {self._key}",
                             "accept": "application/json"},
                    follow_redirects=False) as streamed:
                response = await _buffered(streamed, what)
        except ProviderError:
            raise
        except Exception as exc:
            raise transport_error(exc, what) from None
        if 200 <= response.status_code < 300:
            return read_json(response, what)
        raise error_from_response(response, what)

    def _client(self) -> httpx.AsyncClient:
        """The pooled client for the running event loop (one per loop, created lazily)."""
        return self._clients.get()

    def _catalogue(self) -> PriceCatalogue:
        if self._prices is not None:
            return self._prices
        from fallback_chain.cost.catalogue import PriceCatalogue

        return PriceCatalogue.default()

    def _cost(self, job: Mapping[str, Any]) -> float | None:
        """USD for a submitted job, from what Leonardo reported (``None`` if it said nothing
        usable; a negative, infinite or NaN figure is dropped by ``settle_cost``, and the chain
        estimates)."""
        from .cost import cost_from_leonardo_job

        with contextlib.suppress(ValueError, TypeError, ArithmeticError):
            return cost_from_leonardo_job(job, self.usd_per_credit, catalogue=self._catalogue())
        return None

    def _billed(self, exc: ProviderError, run: _Run) -> ProviderError:
        """``exc`` with the cost of the job it happened to (once a job was submitted)."""
        if run.submission is not None:
            exc.details = {**exc.details, "generation_id": run.submission.generation_id}
            if exc.cost_usd is None and exc.details.get("billed", True):
                exc.cost_usd = run.cost_usd
        return exc

    def _timed_out(self, run: _Run, timeout: float) -> ProviderError:
        if run.submission is None:
            return ProviderError(Outcome.TIMEOUT,
                                 f"Leonardo did not answer the submission within {timeout:g}s")
        gid = run.submission.generation_id
        return ProviderError(
            Outcome.TIMEOUT,
            f"Leonardo job {gid} was not delivered within {timeout:g}s (last status "
            f"{run.status or 'unknown'}); not resubmitted, it may still complete and bill",
            provider_code=run.status or "PENDING", cost_usd=run.cost_usd,
            details={"generation_id": gid, "status": run.status})


async def _buffered(streamed: httpx.Response, what: str) -> httpx.Response:
    """The answer read into memory, at most ``MAX_API_BYTES`` of it (decoded): an API answer
    is a few KB, so a larger 2xx is ``malformed_response`` and never held whole; the body of an
    error answer is cut there (it is only read for its message)."""
    import httpx

    ok = 200 <= streamed.status_code < 300
    declared = streamed.headers.get("content-length", "").strip()
    if ok and declared.isdigit() and int(declared) > MAX_API_BYTES:
        raise _oversized(what, int(declared))
    body = bytearray()
    async for chunk in streamed.aiter_bytes():
        body += chunk
        if len(body) > MAX_API_BYTES:
            if ok:
                raise _oversized(what, len(body))
            del body[MAX_API_BYTES:]
            break
    headers = [(k, v) for k, v in streamed.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(streamed.status_code, headers=headers, content=bytes(body),
                          request=streamed.request)


def _oversized(what: str, size: int) -> ProviderError:
    return ProviderError(Outcome.MALFORMED_RESPONSE,
                         f"{what}: the answer is over {size:,} bytes; an API answer is never "
                         f"more than {MAX_API_BYTES:,}", status_code=200,
                         provider_code="oversized")


def _normalise_base_url(url: str) -> str:
    refuse_credentials_in_url(url, "leonardo")
    url = url.strip().rstrip("/")
    url = url.removesuffix(API_PREFIX).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"leonardo: base_url must be an http(s) URL, not {url!r}")
    return url


def _check_positive(**values: float) -> None:
    bad = [k for k, v in values.items() if not v > 0]
    if bad:
        raise ConfigurationError(f"leonardo: {', '.join(bad)} must be > 0")
