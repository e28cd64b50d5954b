"""Spans of a request and its attempts, created from the chain's events with explicit times."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from otel_helpers import Otel, run

from fallback_chain import Chain, Policy
from fallback_chain.errors import ChainError
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.fake import Step
from fallback_chain.secrets import register_secret
from fallback_chain.vtime import VirtualClock


def _tree(otel: Otel) -> tuple[ReadableSpan, list[ReadableSpan]]:
    spans = otel.spans()
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1, [s.name for s in spans]
    root = roots[0]
    children = [s for s in spans if s is not root]
    for child in children:
        assert child.parent is not None
        assert child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
    return root, sorted(children, key=lambda s: s.start_time or 0)


def test_429_then_500_500_then_ok_gives_one_request_span_and_four_attempt_spans(otel):
    clock = VirtualClock()
    chain = Chain([FakeProvider("a", script=[429], clock=clock),
                   FakeProvider("b", script=[500, 500], clock=clock),
                   FakeProvider("c", clock=clock)], clock=clock, log=False)
    otel.instrument(chain)
    result = run(chain)
    assert not isinstance(result, ChainError)

    root, attempts = _tree(otel)
    assert root.name == "fallback_chain.generate default"
    assert root.kind is SpanKind.INTERNAL and root.status.status_code is StatusCode.UNSET
    assert root.attributes["gen_ai.operation.name"] == "generate_content"
    assert root.attributes["fallback_chain.request_id"] == result.request_id
    assert root.attributes["fallback_chain.status"] == "delivered"
    assert root.attributes["fallback_chain.provider"] == "c"
    assert root.attributes["gen_ai.response.model"] == result.model
    assert root.attributes["fallback_chain.attempts"] == 4
    assert root.attributes["fallback_chain.cost_usd"] == pytest.approx(result.cost_usd)
    assert not root.events  # nothing was skipped

    got = [(s.attributes["fallback_chain.provider"], s.attributes["fallback_chain.attempt"],
            s.attributes["fallback_chain.outcome"], s.attributes.get("http.response.status_code"),
            s.status.status_code) for s in attempts]
    assert got == [("a", 1, "rate_limited", 429, StatusCode.ERROR),
                   ("b", 1, "server_error", 500, StatusCode.ERROR),
                   ("b", 2, "server_error", 500, StatusCode.ERROR),
                   ("c", 1, "success", None, StatusCode.UNSET)]
    # costs as the result records them, attempt by attempt
    assert [(s.attributes["fallback_chain.cost_usd"], s.attributes["fallback_chain.cost_source"])
            for s in attempts] == [(a.cost_usd, a.cost_source) for a in result.attempts]
    assert sum(s.attributes["fallback_chain.cost_usd"] for s in attempts) == pytest.approx(
        result.cost_usd)
    for span, attempt in zip(attempts, result.attempts, strict=True):
        assert span.kind is SpanKind.CLIENT
        assert span.name == f"generate_content {attempt.model}"
        assert span.attributes["gen_ai.request.model"] == attempt.model
        assert span.attributes["gen_ai.provider.name"] == attempt.provider
        assert span.attributes["gen_ai.system"] == attempt.provider
        assert span.start_time == int(attempt.started_at.timestamp() * 1e9)
        assert span.end_time - span.start_time == pytest.approx(attempt.latency_s * 1e9, abs=2)
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time
        assert "fallback_chain.hedged" not in span.attributes
    assert attempts[0].attributes["fallback_chain.provider_code"] == "rate_limit_exceeded"
    assert attempts[0].attributes["error.type"] == "rate_limited"
    assert attempts[0].attributes["fallback_chain.cooldown_s"] > 0  # the 429 cooled `a` down
    assert "error.type" not in attempts[3].attributes
    assert attempts[3].attributes["gen_ai.response.model"] == result.model
    # the backoff between b's two tries is inside the request span
    assert attempts[2].start_time > attempts[1].end_time
    assert (root.end_time - root.start_time) / 1e9 == pytest.approx(result.latency_s, abs=1e-6)


def test_a_failed_request_sets_error_status_and_skips_are_events(otel):
    clock = VirtualClock()
    a = FakeProvider("a", script=[429, 429], clock=clock)
    b = FakeProvider("b", script=["auth_error", "auth_error"], clock=clock)
    chain = Chain([a, b], clock=clock, log=False,
                  policy=Policy(cooldowns_s={"rate_limited": 600, "auth_error": 600},
                                max_wait_s=0))
    otel.instrument(chain)
    first = run(chain)
    assert isinstance(first, ChainError)
    root, attempts = _tree(otel)
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes["fallback_chain.status"] == "failed"
    assert root.attributes["error.type"] == type(first).__name__
    assert [s.attributes["fallback_chain.outcome"] for s in attempts] == [
        "rate_limited", "auth_error"]
    assert all(s.status.status_code is StatusCode.ERROR for s in attempts)

    otel.spans_out.clear()
    second = run(chain)  # both providers are cooling down: nobody is called
    assert isinstance(second, ChainError)
    assert all(not x.outcome.was_called for x in second.attempts)
    root, attempts = _tree(otel)
    assert attempts == []
    assert [(e.name, e.attributes["fallback_chain.provider"],
             e.attributes["fallback_chain.outcome"]) for e in root.events] == [
        ("fallback_chain.skip", x.provider, x.outcome.value) for x in second.attempts]
    assert {x.outcome.value for x in second.attempts} == {"cooling_down"}


def test_hedged_branches_are_overlapping_sibling_spans(otel):
    clock = VirtualClock()
    a = FakeProvider("a", clock=clock, latency_s=10.0, price_usd=0.04)
    b = FakeProvider("b", clock=clock, latency_s=1.0, price_usd=0.02)
    chain = Chain([a, b], clock=clock, policy=Policy(hedge_delay_s=2.0), log=False)
    otel.instrument(chain)
    result = run(chain)
    assert not isinstance(result, ChainError) and result.provider == "b"
    root, attempts = _tree(otel)
    assert [(s.attributes["fallback_chain.provider"], s.attributes["fallback_chain.outcome"])
            for s in attempts] == [("a", "cancelled"), ("b", "success")]
    assert attempts[1].start_time < attempts[0].end_time  # they overlap in time
    assert all(s.attributes["fallback_chain.hedged"] is True for s in attempts)
    # the loser was cancelled, not failed; it may still bill, and the span says so
    assert attempts[0].status.status_code is StatusCode.UNSET
    assert attempts[0].attributes["fallback_chain.cost_usd"] == pytest.approx(0.04)
    assert root.attributes["fallback_chain.cost_usd"] == pytest.approx(0.06)


def test_breaker_state_changes_are_on_the_attempt_that_caused_them(otel):
    clock = VirtualClock()
    a = FakeProvider("a", script=[500, 500, 500], clock=clock)
    chain = Chain([a, FakeProvider("b", clock=clock)], clock=clock, log=False,
                  policy=Policy(breaker_failures=2, retries={"server_error": 0}))
    otel.instrument(chain)
    run(chain)
    run(chain)
    spans = [s for s in otel.spans() if s.attributes.get("fallback_chain.provider") == "a"
             and s.kind is SpanKind.CLIENT]
    assert [s.attributes.get("fallback_chain.breaker.state") for s in spans] == [None, "open"]
    assert [(e.attributes["fallback_chain.breaker.old_state"],
             e.attributes["fallback_chain.breaker.new_state"]) for e in spans[1].events] == [
        ("closed", "open")]
    assert otel.points("fallback_chain.breaker.transitions")[0][0][
        "fallback_chain.breaker.new_state"] == "open"
    assert otel.points("fallback_chain.breaker.state") == [
        ({"fallback_chain.chain": "default", "fallback_chain.provider": "a"}, 2)]


def test_prompts_only_when_opted_in_and_keys_never(otel):
    secret = "sk-otel-test-0123456789abcdef"
    register_secret(secret)
    clock = VirtualClock()
    leaky = FakeProvider("a", script=[Step(500, message=f"upstream said key={secret}")],
                         clock=clock)
    chain = Chain([leaky, FakeProvider("b", clock=clock)], clock=clock, log=False,
                  policy=Policy(retries={"server_error": 0}))
    otel.instrument(chain)
    run(chain, "a secret recipe", negative_prompt="no onions")
    dumped = json.dumps([dict(s.attributes) for s in otel.spans()]
                        + [dict(e.attributes) for s in otel.spans() for e in s.events]
                        + [s.status.description for s in otel.spans()])
    assert "secret recipe" not in dumped and "onions" not in dumped
    assert secret not in dumped and "upstream said" in dumped

    otel.spans_out.clear()
    chain2 = Chain([FakeProvider("b", clock=clock)], clock=clock, log=False)
    otel.instrument(chain2, record_prompts=True)
    run(chain2, "a secret recipe", negative_prompt="no onions")
    root, _ = _tree(otel)
    messages = json.loads(root.attributes["gen_ai.input.messages"])
    assert messages == [{"role": "user", "parts": [{"type": "text",
                                                    "content": "a secret recipe"}]}]
    assert root.attributes["fallback_chain.request.negative_prompt"] == "no onions"


def test_the_request_span_nests_under_the_applications_span(otel):
    clock = VirtualClock()
    chain = Chain([FakeProvider("a", clock=clock)], clock=clock, log=False)
    otel.instrument(chain)
    tracer = otel.tracer_provider.get_tracer("app")

    async def go():
        with tracer.start_as_current_span("handle job"):
            return await chain.agenerate("x")

    from fallback_chain.vtime import run_virtual

    run_virtual(go())
    by_name = {s.name: s for s in otel.spans()}
    outer, request = by_name["handle job"], by_name["fallback_chain.generate default"]
    assert request.parent is not None and request.parent.span_id == outer.context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_close_unsubscribes(otel):
    clock = VirtualClock()
    chain = Chain([FakeProvider("a", clock=clock)], clock=clock, log=False)
    exporter = otel.instrument(chain)
    assert exporter.active and chain.events
    exporter.close()
    assert not chain.events
    run(chain)
    assert otel.spans() == ()
