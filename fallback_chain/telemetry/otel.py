"""OpenTelemetry traces and metrics of every request and attempt, from the chain's events.

::

    from fallback_chain.telemetry.otel import instrument

    exporter = instrument(chain)            # the globally configured providers
    exporter = instrument(chain, tracer_provider=tp, meter_provider=mp)
    ...
    exporter.close()                        # unsubscribe

The router knows nothing of OpenTelemetry: :class:`OtelExporter` is an ordinary subscriber of
``chain.events``. Spans are created when a request has finished, with the attempts' own start
times and latencies (see :mod:`.spans`); metrics are added as the events arrive (see
:mod:`.meters`). Needs ``pip install 'fallback-chain[otel]'`` (``opentelemetry-api``; the
application brings its SDK set-up and exporters).

Zero cost when unused: nothing here is imported by the library, and :func:`instrument`
subscribes nothing when neither a tracer nor a meter provider is configured (given, or set
globally with ``opentelemetry.trace.set_tracer_provider`` /
``opentelemetry.metrics.set_meter_provider`` before the call), so the router keeps its
no-subscriber fast path.

Prompts are recorded (``gen_ai.input.messages``) only with ``record_prompts=True``; images,
input or output, never (their count only); keys never (messages are redacted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..events import (
    AttemptFinished,
    BreakerStateChanged,
    BudgetAlert,
    CooldownStarted,
    Event,
    QuotaAlert,
    RequestFinished,
)
from ..extras import load
from . import attributes as A
from .meters import Instruments
from .spans import Pending, record_trace, request_bounds, times

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Tracer, TracerProvider

    from ..chain import Chain
    from ..clock import Clock

log = logging.getLogger("fallback_chain")

SCOPE = "fallback_chain"
FEATURE = "OpenTelemetry export"

#: Requests whose attempts are held until they finish. A request cancelled by its caller never
#: finishes (no ``RequestFinished``); past this many, the oldest held ones are dropped.
MAX_PENDING = 10_000


def tracer_provider_configured() -> TracerProvider | None:
    """The global tracer provider, or None while none was set (the API's proxy or no-op)."""
    trace = load("opentelemetry.trace", "otel", FEATURE)
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider  # type: ignore[no-any-return]


def meter_provider_configured() -> MeterProvider | None:
    """The global meter provider, or None while none was set (the API's proxy or no-op)."""
    metrics = load("opentelemetry.metrics", "otel", FEATURE)
    provider = metrics.get_meter_provider()
    if isinstance(provider, metrics.NoOpMeterProvider) or type(provider).__name__.startswith(
            "_Proxy"):
        return None
    return provider  # type: ignore[no-any-return]


class OtelExporter:
    """A subscriber of ``chain.events`` that writes spans to ``tracer_provider`` and metrics to
    ``meter_provider`` (either may be None: that signal is not exported)."""

    def __init__(self, *, tracer_provider: TracerProvider | None = None,
                 meter_provider: MeterProvider | None = None, record_prompts: bool = False,
                 clock: Clock | None = None) -> None:
        self.tracer: Tracer | None = (
            tracer_provider.get_tracer(SCOPE, __version__) if tracer_provider is not None
            else None)
        self.instruments: Instruments | None = (
            Instruments(meter_provider.get_meter(SCOPE, __version__))
            if meter_provider is not None else None)
        self.record_prompts = record_prompts
        self._clock = clock
        #: (chain, request id) -> its attempts so far (only while tracing)
        self._pending: dict[tuple[str, str], list[Pending]] = {}
        #: (chain, provider) -> that provider's latest attempt, for the cooldown that follows
        self._latest: dict[tuple[str, str], Pending] = {}
        #: (chain, provider) -> breaker changes not yet attached to an attempt
        self._breaker: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
        #: (chain, provider) -> breaker state as last reported by the chain
        self._states: dict[tuple[str, str], str] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            AttemptFinished: self._attempt, RequestFinished: self._request,
            BreakerStateChanged: self._breaker_changed, CooldownStarted: self._cooldown,
            QuotaAlert: self._quota, BudgetAlert: self._budget}

    @property
    def active(self) -> bool:
        """Whether anything is exported (a tracer or a meter provider was given)."""
        return self.tracer is not None or self.instruments is not None

    def attach(self, chain: Chain) -> OtelExporter:
        """Subscribe to ``chain.events`` (nothing when inactive); returns self."""
        if self.active:
            if self._clock is None:
                self._clock = chain.clock
            self._unsubscribe.append(chain.events.subscribe(self))
        return self

    def close(self) -> None:
        """Unsubscribe from every chain and drop what is held."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self._pending.clear()
        self._latest.clear()
        self._breaker.clear()
        self._states.clear()

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    # ------------------------------------------------------------------------- handlers

    def _now_ns(self) -> int:
        from time import time

        wall = self._clock.wall() if self._clock is not None else time()
        return int(wall * 1_000_000_000)

    def _attempt(self, event: AttemptFinished) -> None:
        if self.instruments is not None:
            self.instruments.attempt(event)
        if self.tracer is None:
            return
        key = (event.chain, event.request_id)
        held = self._pending.get(key)
        if held is None:
            if len(self._pending) >= MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))
            held = self._pending[key] = []
        provider = (event.chain, event.attempt.provider)
        pending = Pending(event.attempt, breaker=self._breaker.pop(provider, []))
        state = self._states.get(provider)
        if state is not None:
            pending.extra[A.BREAKER_STATE] = state
        held.append(pending)
        self._latest[provider] = pending

    def _request(self, event: RequestFinished) -> None:
        held = self._pending.pop((event.chain, event.request_id), None)
        if held is None:  # subscribed mid-request: what the result or error lists
            done = (event.result.attempts if event.result is not None
                    else event.error.attempts if event.error is not None else [])
            held = [Pending(a) for a in done]
        for pending in held:
            latest = (event.chain, pending.attempt.provider)
            if self._latest.get(latest) is pending:
                del self._latest[latest]
        now = self._now_ns()
        if self.instruments is not None:
            if event.result is not None:
                duration = event.result.latency_s
            else:
                start, end = request_bounds(event, times(held), now)
                duration = (end - start) / 1e9
            self.instruments.request(event, duration)
        if self.tracer is not None:
            held.sort(key=lambda p: p.attempt.started_at)
            record_trace(self.tracer, event, held, now, record_prompts=self.record_prompts)

    def _breaker_changed(self, event: BreakerStateChanged) -> None:
        if self.instruments is not None:
            self.instruments.breaker(event)
        if self.tracer is not None:  # reported while recording the call: attach to it
            self._states[(event.chain, event.provider)] = event.new
            changes = self._breaker.setdefault((event.chain, event.provider), [])
            changes.append((event.old, event.new, self._now_ns()))
            del changes[:-8]

    def _cooldown(self, event: CooldownStarted) -> None:
        if self.instruments is not None:
            self.instruments.cooldown(event)
        latest = self._latest.get((event.chain, event.provider))
        if latest is not None:  # emitted right after the attempt that caused it
            latest.extra[A.COOLDOWN] = event.seconds

    def _quota(self, event: QuotaAlert) -> None:
        if self.instruments is not None:
            self.instruments.quota(event)

    def _budget(self, event: BudgetAlert) -> None:
        if self.instruments is not None:
            self.instruments.budget(event)


def instrument(chain: Chain, tracer_provider: TracerProvider | None = None,
               meter_provider: MeterProvider | None = None, record_prompts: bool = False
               ) -> OtelExporter:
    """Export ``chain``'s requests as spans and metrics; returns the subscribed exporter
    (``exporter.close()`` stops it).

    Providers not given are the global ones if the application configured them before this
    call; with neither, nothing is subscribed and ``exporter.active`` is False. Raises
    :class:`~fallback_chain.extras.MissingExtraError` naming ``[otel]`` without OpenTelemetry.
    """
    if tracer_provider is None:
        tracer_provider = tracer_provider_configured()
    if meter_provider is None:
        meter_provider = meter_provider_configured()
    exporter = OtelExporter(tracer_provider=tracer_provider, meter_provider=meter_provider,
                            record_prompts=record_prompts, clock=chain.clock)
    if not exporter.active:
        log.debug("OpenTelemetry: no tracer or meter provider configured; chain %r not "
                  "instrumented", chain.name)
    return exporter.attach(chain)
