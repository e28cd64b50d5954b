"""The span tree of one finished request, built after the fact with explicit times.

One ``INTERNAL`` request span; under it one ``CLIENT`` span per call to a provider (retries
numbered by ``fallback_chain.attempt``; hedged calls, which overlap in time, are siblings marked
``fallback_chain.hedged``); skips (breaker open, cooling down, over budget, skipped) did not
call anyone and are span events on the request span. Errors set the span status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..secrets import redact
from . import attributes as A

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from ..events import RequestFinished
    from ..results import Attempt

_NS = 1_000_000_000


@dataclass(slots=True)
class Pending:
    """One attempt of a request still running, with what later events add to it."""

    attempt: Attempt
    extra: dict[str, Any] = field(default_factory=dict)
    #: breaker changes seen during the attempt: (old, new, time in ns)
    breaker: list[tuple[str, str, int]] = field(default_factory=list)


def _ns(seconds: float) -> int:
    return int(seconds * _NS)


def times(attempts: list[Pending]) -> list[tuple[int, int]]:
    """(start, end) in ns since the epoch of each attempt."""
    out = []
    for p in attempts:
        start = _ns(p.attempt.started_at.timestamp())
        out.append((start, start + _ns(p.attempt.latency_s)))
    return out


def request_bounds(event: RequestFinished, spans: list[tuple[int, int]], now_ns: int
                   ) -> tuple[int, int]:
    """Start and end of the request: around its attempts, and as long as the result says."""
    start = min((s for s, _ in spans), default=now_ns)
    end = max((e for _, e in spans), default=now_ns)
    if event.result is not None:
        start = min(start, end - _ns(event.result.latency_s))
    return start, end


def _overlapping(spans: list[tuple[int, int]]) -> set[int]:
    """Indexes of the intervals that overlap another one (hedged calls)."""
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    hedged: set[int] = set()
    longest = -1  # the interval, among those seen, that ends last
    for i in order:
        if longest >= 0 and spans[i][0] < spans[longest][1]:
            hedged.update((i, longest))
        if longest < 0 or spans[i][1] > spans[longest][1]:
            longest = i
    return hedged


def _attempt_attributes(chain: str, p: Pending) -> dict[str, Any]:
    a = p.attempt
    attrs: dict[str, Any] = {
        A.OPERATION_NAME: A.OPERATION, A.PROVIDER_NAME: A.genai_provider(a.provider),
        A.SYSTEM: A.genai_provider(a.provider), A.REQUEST_MODEL: a.model,
        A.OUTPUT_TYPE: "image", A.CHAIN: chain, A.PROVIDER: a.provider, A.ATTEMPT: a.attempt,
        A.OUTCOME: a.outcome.value, A.COST: a.cost_usd, A.COST_SOURCE: a.cost_source}
    if a.status_code is not None:
        attrs[A.HTTP_STATUS] = attrs[A.STATUS_CODE] = a.status_code
    if a.provider_code is not None:
        attrs[A.PROVIDER_CODE] = a.provider_code
    if a.message:
        attrs[A.MESSAGE] = redact(a.message)
    if a.retry_after_s is not None:
        attrs[A.RETRY_AFTER] = a.retry_after_s
    if a.estimated_cost_usd is not None:
        attrs[A.ESTIMATED_COST] = a.estimated_cost_usd
    if a.outcome.value == "success":
        attrs[A.RESPONSE_MODEL] = a.model
    elif a.outcome.value != "cancelled":
        attrs[A.ERROR_TYPE] = a.outcome.value
    attrs.update(p.extra)
    return attrs


def _request_attributes(event: RequestFinished, record_prompts: bool,
                        attempts: int) -> dict[str, Any]:
    req, result = event.request, event.result
    attrs: dict[str, Any] = {
        A.OPERATION_NAME: A.OPERATION, A.OUTPUT_TYPE: "image", A.CHAIN: event.chain,
        A.REQUEST_ID: event.request_id, A.N: req.n, A.SIZE: req.size, A.QUALITY: req.quality,
        A.FORMAT: req.output_format, A.ATTEMPTS: attempts}
    if req.seed is not None:
        attrs[A.REQUEST_SEED] = req.seed
    if req.images:
        attrs[A.INPUT_IMAGES] = len(req.images)  # how many, never their bytes
    if record_prompts:
        attrs[A.INPUT_MESSAGES] = json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": req.prompt}]}],
            ensure_ascii=False)
        if req.negative_prompt:
            attrs[A.NEGATIVE_PROMPT] = req.negative_prompt
        if result is not None and result.revised_prompt:
            attrs[A.REVISED_PROMPT] = result.revised_prompt
    if result is not None:
        attrs.update({A.STATUS: "delivered", A.PROVIDER: result.provider,
                      A.PROVIDER_NAME: A.genai_provider(result.provider),
                      A.RESPONSE_MODEL: result.model, A.COST: result.cost_usd,
                      A.IMAGES: len(result.images), A.LATENCY: result.latency_s})
    else:
        error = event.error
        attrs.update({A.STATUS: "failed", A.ERROR_TYPE: type(error).__name__,
                      A.COST: error.cost_usd if error is not None else 0.0})
    return attrs


def record_trace(tracer: Tracer, event: RequestFinished, attempts: list[Pending], now_ns: int,
                 *, record_prompts: bool = False) -> Span:
    """Create and end the request span and its attempt spans; returns the request span.

    The request span's parent is the span current where the request ran (``RequestFinished``
    is emitted inside ``agenerate``), so an application's own span encloses it."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    spans = times(attempts)
    start, end = request_bounds(event, spans, now_ns)
    root = tracer.start_span(
        f"fallback_chain.generate {event.chain}", kind=SpanKind.INTERNAL, start_time=start,
        attributes=_request_attributes(event, record_prompts, len(attempts)))
    context = trace.set_span_in_context(root)
    hedged = _overlapping([s for p, s in zip(attempts, spans, strict=True)
                           if p.attempt.outcome.was_called])
    called = 0
    for p, (s, e) in zip(attempts, spans, strict=True):
        a = p.attempt
        attrs = _attempt_attributes(event.chain, p)
        if not a.outcome.was_called:
            root.add_event("fallback_chain.skip", attrs, timestamp=s)
            continue
        if called in hedged:
            attrs[A.HEDGED] = True
        called += 1
        span = tracer.start_span(f"{A.OPERATION} {a.model}", context=context,
                                 kind=SpanKind.CLIENT, start_time=s, attributes=attrs)
        for old, new, at in p.breaker:
            span.add_event("fallback_chain.breaker_state_changed",
                           {A.BREAKER_OLD: old, A.BREAKER_NEW: new}, timestamp=min(max(at, s), e))
        if a.outcome.value not in ("success", "cancelled"):
            span.set_status(Status(StatusCode.ERROR, attrs.get(A.MESSAGE) or a.outcome.value))
        span.end(end_time=e)
    if event.error is not None:
        root.set_status(Status(StatusCode.ERROR, redact(event.error.message)))
    root.end(end_time=end)
    return root
