"""Submit → poll → download: the steps the queue/poll vendors share (fal.ai, Black Forest Labs,
Replicate; Leonardo does the same in its own code).

A vendor adapter keeps only what is its own (URLs, headers, its answers' fields, its error
table) and drives one job with these pieces::

    async def generate(self, request, *, timeout):
        return await jobs.run_job(lambda run, deadline: self._job(request, run, deadline),
                                  label="Acme", timeout=timeout, max_wait_s=self.max_wait_s,
                                  clock=self._clock)

    async def _job(self, request, run, deadline):
        client = self._clients.get()
        sub = await jobs.api_json(client, "POST", url, what="POST /jobs", map_error=wire.error,
                                  timeout=jobs.time_left(self._clock, deadline, 30.0),
                                  headers=auth, json=body)
        run.job_id = sub["id"]                  # from here on, a failure names the job
        run.cost_usd = ...                      # and carries what it billed, if known
        done = await jobs.poll(fetch, finished=lambda a: a["status"] != "Pending",
                               schedule=self.schedule, clock=self._clock, deadline=deadline,
                               run=run, status_of=lambda a: a["status"])
        images = await jobs.download_now(client, urls, self.allow, clock=self._clock,
                                         deadline=deadline, timeout_s=60.0)

API (everything public here):

``run_job(body, *, label, timeout, max_wait_s, clock) -> T``
    Runs ``await body(run, deadline)`` within the attempt's budget (:func:`attempt_budget`:
    a little less than the router's ``timeout``, never more than ``max_wait_s``). Running out
    of time is ``ProviderError(TIMEOUT)`` naming the job and its last status (**a submitted job
    is never submitted again by this call**); any ``ProviderError`` gets the job id and billed
    cost from ``run``; any other exception becomes ``malformed_response`` (an answer the
    adapter failed to handle is still a typed outcome).
``JobRun``
    What one call has done so far: ``job_id``, ``status``, ``cost_usd`` (set them as you go).
``api_json(client, method, url, *, what, map_error, timeout, headers=None, json=None,
max_bytes=MAX_API_BYTES, data=None, files=None) -> Any``
    One API call: the answer is read with a cap (``max_bytes`` decoded bytes; a larger 2xx is
    ``malformed_response``, a larger error body is cut), redirects are never followed, a 2xx
    must be JSON (an HTML page or broken JSON is ``malformed_response``), any other status goes
    to ``map_error(ErrorAnswer) -> ProviderError``, the vendor's own table. A transport failure
    is mapped by :func:`transport_error` (timeout / connection_error).
``ErrorAnswer``
    A non-2xx answer: ``status``, ``headers``, ``text``, ``json`` (parsed or ``None``), ``what``;
    ``retry_after_s`` (from the headers, for 429/503) and ``describe(message, code)``.
``status_error(answer, message=None, code=None, **kw) -> ProviderError``
    The default by status, for a vendor table's last row: 429 rate_limited (+ Retry-After),
    402 quota_exhausted, 401/403 auth_error, 404/410 not_found, 408 timeout, other 4xx
    invalid_request, 5xx server_error, a 1xx/3xx malformed_response.
``PollSchedule(initial_s, interval_s, max_interval_s, backoff, max_failures)``
    The waits between polls: ``initial_s`` before the first, then ``interval_s`` growing by
    ``backoff`` up to ``max_interval_s``. ``max_failures`` transient poll failures in a row end
    the job with the last of them.
``poll(fetch, *, finished, schedule, clock, deadline, run=None, status_of=None) -> T``
    Sleeps (on ``clock``) and calls ``fetch()`` until ``finished(answer)``; the last answer is
    returned. A ``ProviderError`` in ``TRANSIENT_POLL`` (5xx, 429, reset, timeout, malformed)
    is polled through, up to ``max_failures`` in a row, waiting at least its Retry-After; others
    are raised. ``TimeoutError`` when ``deadline`` (a ``clock.now()`` value) comes first.
    ``status_of(answer)`` is stored in ``run.status`` after each answer.
``download_now(client, urls, allow, *, clock, deadline, timeout_s, retries=1,
max_bytes=None) -> list[GeneratedImage]``
    Every URL at once with :func:`fallback_chain.providers.download.fetch_all` (allow-list,
    checked redirects, size cap, verified bytes); a transient failure (5xx, reset, timeout) is
    tried again ``retries`` times with the same URLs; an expired link (403/404/410) is not.
``LoopClients(vendor, allow, *, timeout_s, transport=None, client=None)``
    One pooled ``httpx.AsyncClient`` per event loop, built on
    :func:`~fallback_chain.providers.download.guarded_transport` unless a ``transport`` (an
    emulator's) or a ready ``client`` (never closed here) is given. ``get()``, ``aclose()``,
    ``record_with(recorder)`` (the cassette recorder wraps every client).
``base_url(url, vendor) -> str``
    ``url`` checked (http(s), a host, no ``user:password@``) without its trailing slash.
``refuse_api_url(url, allow, what) -> None``
    ``malformed_response`` when a URL an answer gave us (a status or polling URL, which gets
    the API key) is not on ``allow`` (the API's hosts and the configured ``base_url``).
``time_left(clock, deadline, cap) -> float``, ``attempt_budget(timeout, max_wait_s) -> float``,
``read_json(status, headers, text, what)``, ``transport_error(exc, what)``, ``MAX_API_BYTES``,
``TRANSIENT_POLL``, ``TRANSIENT_DOWNLOAD``.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import re
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.outcome import Outcome, outcome_for_status
from fallback_chain.policy.retry_after import parse_retry_after

from .base import refuse_credentials_in_url
from .download import AllowList, fetch_all, guarded_transport

if TYPE_CHECKING:
    import httpx

    from fallback_chain.clock import Clock
    from fallback_chain.image_limits import ImageLimits
    from fallback_chain.results import GeneratedImage

__all__ = [
    "MAX_API_BYTES",
    "TRANSIENT_DOWNLOAD",
    "TRANSIENT_POLL",
    "ErrorAnswer",
    "JobRun",
    "LoopClients",
    "PollSchedule",
    "api_json",
    "attempt_budget",
    "base_url",
    "download_now",
    "poll",
    "read_json",
    "refuse_api_url",
    "run_job",
    "status_error",
    "time_left",
    "transport_error",
]

T = TypeVar("T")

#: The most of an API answer read (decoded): job answers are a few KB.
MAX_API_BYTES = 8 * 1024 * 1024
#: Poll failures worth polling through: the job itself is unaffected by them.
TRANSIENT_POLL = frozenset({Outcome.SERVER_ERROR, Outcome.RATE_LIMITED,
                            Outcome.CONNECTION_ERROR, Outcome.TIMEOUT,
                            Outcome.MALFORMED_RESPONSE})
#: Download failures worth another try with the same URLs (an expired link is not one).
TRANSIENT_DOWNLOAD = frozenset({Outcome.SERVER_ERROR, Outcome.CONNECTION_ERROR,
                                Outcome.TIMEOUT})
_HTML = re.compile(r"^\s*<(?:!doctype|html|head|body|\?xml)", re.IGNORECASE)


# ----------------------------------------------------------------------------- one job


@dataclass(slots=True)
class JobRun:
    """What one ``generate`` call has done so far (read when it fails)."""

    job_id: str | None = None
    status: str | None = None
    cost_usd: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def billed(self, exc: ProviderError) -> ProviderError:
        """``exc`` with the job's id and (unless it says ``billed: False``) its cost."""
        if self.job_id is not None:
            exc.details = {**self.details, **exc.details, "job_id": self.job_id}
            if exc.cost_usd is None and exc.details.get("billed", True):
                exc.cost_usd = self.cost_usd
        return exc

    def timed_out(self, label: str, timeout: float) -> ProviderError:
        if self.job_id is None:
            return ProviderError(Outcome.TIMEOUT,
                                 f"{label} did not answer the submission within {timeout:g}s")
        return ProviderError(
            Outcome.TIMEOUT,
            f"{label} job {self.job_id} was not delivered within {timeout:g}s (last status "
            f"{self.status or 'unknown'}); not resubmitted, it may still complete and bill",
            provider_code=(self.status or "pending")[:40], cost_usd=self.cost_usd,
            details={**self.details, "job_id": self.job_id, "status": self.status})


def attempt_budget(timeout: float, max_wait_s: float) -> float:
    """The time one job may take: a little less than the router's ``timeout`` (so a job that
    outlives the attempt ends as this adapter's ``ProviderError``, with its cost), never more
    than ``max_wait_s``."""
    margin = min(0.5, max(0.002, 0.01 * timeout))
    return min(max(timeout - margin, timeout / 2), max_wait_s)


def time_left(clock: Clock, deadline: float, cap: float) -> float:
    """Seconds until ``deadline``, at most ``cap``, never below 1 ms (an httpx timeout)."""
    return max(0.001, min(cap, deadline - clock.now()))


async def run_job(body: Callable[[JobRun, float], Awaitable[T]], *, label: str,
                  timeout: float, max_wait_s: float, clock: Clock) -> T:
    """``await body(run, deadline)`` within the attempt's budget (see the module docstring)."""
    budget = attempt_budget(timeout, max_wait_s)
    run = JobRun()
    try:
        async with asyncio.timeout(budget):
            return await body(run, clock.now() + budget)
    except TimeoutError:
        raise run.timed_out(label, timeout) from None
    except ProviderError as exc:
        raise run.billed(exc) from None
    except Exception as exc:
        raise run.billed(ProviderError(
            Outcome.MALFORMED_RESPONSE, f"could not handle {label}'s answer "
            f"({type(exc).__name__}: {exc})", provider_code="unreadable")) from None


# ----------------------------------------------------------------------------- API calls


def base_url(url: str, vendor: str) -> str:
    """``url`` checked and without its trailing slash (``ConfigurationError`` if unusable)."""
    from urllib.parse import urlsplit

    refuse_credentials_in_url(url, vendor)
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{vendor}: base_url must be an http(s) URL, not {url!r}")
    return url


def refuse_api_url(url: str, allow: AllowList, what: str) -> None:
    """Refuse to send the key to a URL from an answer that is not the API's."""
    why = allow.refuse(url)
    if why:
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"{what}: not followed, the API key would be sent there ({why})",
                            status_code=200, provider_code="url_not_allowed")


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """A non-2xx API answer, for a vendor's error table."""

    status: int
    headers: Mapping[str, str]
    text: str
    json: Any
    what: str

    @property
    def retry_after_s(self) -> float | None:
        return parse_retry_after(self.headers) if self.status in (429, 503) else None

    @property
    def is_html(self) -> bool:
        return _HTML.match(self.text or "") is not None

    def describe(self, message: str | None, code: str | None = None) -> str:
        """``"<what>: HTTP <status> <code>: <message>"`` for the error's message."""
        text = message or (f"HTML error page ({len(self.text)} bytes)" if self.is_html
                           else (self.text.strip()[:300] or "no body"))
        return f"{self.what}: HTTP {self.status}" + (f" {code}" if code else "") + f": {text}"


ErrorMapper = Callable[[ErrorAnswer], ProviderError]


def status_error(answer: ErrorAnswer, message: str | None = None, code: str | None = None,
                 **kw: Any) -> ProviderError:
    """The outcome the status alone implies (the last row of a vendor's table)."""
    status = answer.status
    outcome = outcome_for_status(status)
    if status < 200 or 300 <= status < 400:
        outcome = Outcome.MALFORMED_RESPONSE  # a 1xx/3xx where JSON was expected
    kw.setdefault("retry_after_s", answer.retry_after_s)
    return ProviderError(outcome, answer.describe(message, code), status_code=status,
                         provider_code=code, **kw)


def read_json(status: int, headers: Mapping[str, str], text: str, what: str) -> Any:
    """The JSON of a 2xx answer; an HTML page or broken JSON is ``malformed_response``."""
    ctype = headers.get("content-type", "").lower()
    if "html" in ctype or _HTML.match(text):
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"{what}: HTTP {status} with an HTML page instead of JSON",
                            status_code=status, provider_code="html_body")
    try:
        return jsonlib.loads(text)
    except ValueError as exc:
        raise ProviderError(Outcome.MALFORMED_RESPONSE,
                            f"{what}: invalid JSON ({type(exc).__name__}: {exc})",
                            status_code=status, provider_code="invalid_json") from None


def transport_error(exc: BaseException, what: str) -> ProviderError:
    """An exception raised by httpx (or the OS) while talking to the API, as an outcome."""
    import httpx

    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(Outcome.TIMEOUT, f"{what}: no answer in time ({name})")
    if isinstance(exc, httpx.DecodingError):
        return ProviderError(Outcome.MALFORMED_RESPONSE, f"{what}: undecodable body ({name})")
    if isinstance(exc, httpx.TransportError | httpx.HTTPError | OSError):
        return ProviderError(Outcome.CONNECTION_ERROR, f"{what}: {name}: {exc}")
    return ProviderError(Outcome.MALFORMED_RESPONSE, f"{what}: {name}: {exc}")


async def api_json(client: httpx.AsyncClient, method: str, url: str, *, what: str,
                   map_error: ErrorMapper, timeout: float,
                   headers: Mapping[str, str] | None = None, json: Any = None,
                   data: Mapping[str, Any] | None = None, files: Any = None,
                   max_bytes: int = MAX_API_BYTES) -> Any:
    """One API call; the parsed JSON of a 2xx, else the vendor's ``ProviderError``."""
    try:
        async with client.stream(method, url, json=json, data=data, files=files,
                                 headers=dict(headers or {}), timeout=timeout,
                                 follow_redirects=False) as streamed:
            status, got, body = await _capped(streamed, what, max_bytes)
    except ProviderError:
        raise
    except Exception as exc:
        raise transport_error(exc, what) from None
    text = body.decode("utf-8", "replace")
    if 200 <= status < 300:
        return read_json(status, got, text, what)
    try:
        parsed: Any = jsonlib.loads(text)
    except ValueError:
        parsed = None
    raise map_error(ErrorAnswer(status, got, text, parsed, what))


async def _capped(streamed: httpx.Response, what: str, limit: int
                  ) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and at most ``limit`` decoded bytes of the answer; a larger 2xx is
    ``malformed_response`` (never held whole), a larger error body is cut."""
    ok = 200 <= streamed.status_code < 300
    declared = streamed.headers.get("content-length", "").strip()
    if ok and declared.isdigit() and int(declared) > limit and \
            streamed.headers.get("content-encoding", "identity") == "identity":
        raise _oversized(what, int(declared), limit)
    body = bytearray()
    async for chunk in streamed.aiter_bytes():
        body += chunk
        if len(body) > limit:
            if ok:
                raise _oversized(what, len(body), limit)
            del body[limit:]
            break
    headers = {k.lower(): v for k, v in streamed.headers.items()}
    return streamed.status_code, headers, bytes(body)


def _oversized(what: str, size: int, limit: int) -> ProviderError:
    return ProviderError(Outcome.MALFORMED_RESPONSE,
                         f"{what}: the answer is over {size:,} bytes; an API answer is never "
                         f"more than {limit:,}", status_code=200, provider_code="oversized")


# ----------------------------------------------------------------------------- polling


@dataclass(frozen=True, slots=True)
class PollSchedule:
    """Waits between polls (seconds) and how many transient failures in a row are tolerated."""

    initial_s: float = 1.0
    interval_s: float = 1.5
    max_interval_s: float = 10.0
    backoff: float = 1.5
    max_failures: int = 3

    def __post_init__(self) -> None:
        if self.initial_s < 0 or self.interval_s <= 0 or self.backoff < 1 or \
                self.max_failures < 1:
            raise ConfigurationError("poll schedule: initial_s must be >= 0, interval_s > 0, "
                             "backoff >= 1, max_failures >= 1")

    def delays(self) -> Iterator[float]:
        """The waits before each poll: ``initial_s``, ``interval_s``, then growing."""
        yield self.initial_s
        delay, cap = self.interval_s, max(self.max_interval_s, self.interval_s)
        while True:
            yield delay
            delay = min(delay * self.backoff, cap)


async def poll(fetch: Callable[[], Awaitable[T]], *, finished: Callable[[T], bool],
               schedule: PollSchedule, clock: Clock, deadline: float,
               run: JobRun | None = None,
               status_of: Callable[[T], str | None] | None = None) -> T:
    """Poll until ``finished(answer)``; ``TimeoutError`` at ``deadline`` (module docstring)."""
    reserve = min(1.0, 0.05 * max(0.0, deadline - clock.now()))  # kept for the last round trip
    failures, retry_after = 0, 0.0
    for delay in schedule.delays():
        wait, retry_after = max(delay, retry_after), 0.0
        remaining = deadline - clock.now()
        if remaining <= reserve:
            raise TimeoutError
        await clock.sleep(min(wait, remaining - reserve))
        try:
            answer = await fetch()
        except ProviderError as exc:
            failures += 1
            if exc.outcome not in TRANSIENT_POLL or failures >= schedule.max_failures:
                raise
            retry_after = exc.retry_after_s or 0.0  # honoured on the next wait
            continue
        failures = 0
        if run is not None and status_of is not None:
            run.status = status_of(answer)
        if finished(answer):
            return answer
    raise AssertionError("unreachable: delays() never ends")


# ----------------------------------------------------------------------------- download


async def download_now(client: httpx.AsyncClient, urls: Sequence[str], allow: AllowList, *,
                       clock: Clock, deadline: float, timeout_s: float, retries: int = 1,
                       max_bytes: int | None = None,
                       limits: ImageLimits | None = None) -> list[GeneratedImage]:
    """Every URL at once (vendor links expire), retried ``retries`` times when transient;
    ``limits`` (``ImageLimits.of(capabilities, model)``) refuses sizes the model cannot make."""
    for attempt in range(retries + 1):
        remaining = deadline - clock.now()
        if remaining <= 0:
            raise TimeoutError
        try:
            return await fetch_all(client, urls, allow, timeout=min(timeout_s, remaining),
                                   max_bytes=max_bytes, limits=limits)
        except ProviderError as exc:
            if exc.outcome not in TRANSIENT_DOWNLOAD or attempt == retries:
                raise
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- clients


class LoopClients:
    """One pooled ``httpx.AsyncClient`` per event loop (created lazily, closed by ``aclose``)."""

    def __init__(self, vendor: str, allow: AllowList, *, timeout_s: float,
                 transport: httpx.AsyncBaseTransport | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        self.vendor = vendor
        self.allow = allow
        self.timeout_s = timeout_s
        self._transport = transport
        self._given = client
        self._recorder: Any = None
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                                 httpx.AsyncClient] = weakref.WeakKeyDictionary()

    def record_with(self, recorder: Any) -> None:
        """Record every exchange through ``recorder`` (a ``fallback_chain.cassette.Recorder``)."""
        self._recorder = recorder
        if self._given is not None:
            recorder.wrap_client(self._given, self.vendor)

    def get(self) -> httpx.AsyncClient:
        """The client for the running event loop."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            import httpx

            limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
            # on the real network, never connect to a private address (but base_url's)
            transport = self._transport or guarded_transport(self.allow, limits=limits)
            client = httpx.AsyncClient(
                transport=transport, timeout=self.timeout_s, follow_redirects=False,
                headers={"user-agent": f"fallback-chain ({self.vendor})"}, limits=limits)
            if self._recorder is not None:
                self._recorder.wrap_client(client, self.vendor)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the clients opened here (never a client passed in)."""
        clients, self._clients = dict(self._clients), weakref.WeakKeyDictionary()
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop, client in clients.items():
            if loop is here:
                await client.aclose()
            elif not loop.is_closed() and loop.is_running():
                asyncio.run_coroutine_threadsafe(client.aclose(), loop)
