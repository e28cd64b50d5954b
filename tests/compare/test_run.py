"""``compare()``: every run of every provider is a cell; failures are cells, not errors."""

from __future__ import annotations

import json

import pytest

from fallback_chain import ImageRequest, Policy
from fallback_chain.chain import Chain
from fallback_chain.compare import compare
from fallback_chain.compare.run import default_labels
from fallback_chain.errors import ConfigurationError, RequestValidationError
from fallback_chain.providers import FakeProvider, Step
from fallback_chain.vtime import VirtualClock, run_virtual

REQ = ImageRequest(prompt="a lighthouse at dusk", size="512x512")


def _run(providers, runs, **kw):
    clock = kw.pop("clock", None) or VirtualClock()
    for p in providers:
        p.clock = clock
    return run_virtual(compare(providers, kw.pop("request", REQ), runs, clock=clock, **kw))


def test_failures_are_recorded_per_cell_and_never_raise():
    good = FakeProvider("good", latency_s=0.5, price_usd=0.04)
    flaky = FakeProvider("flaky", script=[500, 500, "ok", "content_policy", 429],
                         latency_s=0.25, price_usd=0.02)
    comparison = _run([good, flaky], 5, concurrency=1,
                      policy=Policy(cooldowns_s={"rate_limited": 0}, wait_for_cooldown=False))

    assert [r.label for r in comparison.rows] == ["good", "flaky"]
    assert [(c.row, c.run) for c in comparison.rows[1].cells] == [(1, k) for k in range(1, 6)]
    assert [c.outcome for c in comparison.rows[0].cells] == ["success"] * 5
    # run 1: 500, retried once, 500 again; run 2 ok; run 3 refused; run 4 rate-limited
    assert [c.outcome for c in comparison.rows[1].cells] == [
        "server_error", "success", "content_policy", "rate_limited", "success"]
    first = comparison.rows[1].cells[0]
    assert first.calls == 2 and not first.delivered and first.image is None
    assert first.message and first.cost_usd == 0.0
    assert [a.outcome.value for a in first.attempts] == ["server_error", "server_error"]
    delivered = comparison.rows[1].cells[1]
    assert delivered.delivered and delivered.cost_usd == pytest.approx(0.02)
    assert delivered.latency_s == pytest.approx(0.25)
    assert delivered.image is not None and (delivered.image.width, delivered.image.height) \
        == (512, 512)
    assert comparison.cost_usd == pytest.approx(5 * 0.04 + 2 * 0.02)


def test_stats_per_provider():
    fast = FakeProvider("fast", script=[Step(latency_s=s) for s in (1, 2, 3, 4, 10)],
                        price_usd=0.05)
    broken = FakeProvider("broken", script=[500] * 10)
    comparison = _run([fast, broken], 5, concurrency=2, policy=Policy(breaker_failures=100))
    s_fast, s_broken = comparison.stats()

    assert (s_fast.delivered, s_fast.failed, s_fast.calls) == (5, 0, 5)
    assert s_fast.latency_mean_s == pytest.approx(4.0)
    assert s_fast.latency_p50_s == pytest.approx(3.0)
    assert s_fast.latency_p95_s == pytest.approx(4 + 0.8 * 6)  # between the two largest
    assert s_fast.cost_usd == pytest.approx(0.25)
    assert s_fast.cost_per_image_usd == pytest.approx(0.05)
    assert s_fast.spread == 0.0 and s_fast.distinct_images == 1  # a fake draws per prompt
    assert (s_broken.delivered, s_broken.failed, s_broken.calls) == (0, 5, 10)
    assert s_broken.failures == {"server_error": 5}
    assert s_broken.latency_p50_s is None and s_broken.cost_per_image_usd is None
    assert s_broken.spread is None


def test_breaker_opening_mid_comparison_shows_as_a_cell_outcome():
    sick = FakeProvider("sick", script=[500] * 20)
    comparison = _run([sick], 5, concurrency=1, policy=Policy(breaker_failures=4))
    assert [c.outcome for c in comparison.rows[0].cells] == [
        "server_error", "server_error", "breaker_open", "breaker_open", "breaker_open"]
    assert [c.calls for c in comparison.rows[0].cells] == [2, 2, 0, 0, 0]


def test_at_most_concurrency_runs_in_flight():
    in_flight = [0]
    peak = [0]

    class Counting(FakeProvider):
        async def generate(self, request, *, timeout):
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            try:
                return await super().generate(request, timeout=timeout)
            finally:
                in_flight[0] -= 1

    providers = [Counting("a", latency_s=1.0), Counting("b", latency_s=1.0)]
    comparison = _run(providers, 5, concurrency=3)
    assert peak[0] == 3
    assert comparison.elapsed_s == pytest.approx(4.0)  # ceil(10 / 3) rounds of 1 s
    assert all(c.delivered for c in comparison.cells)


def test_runs_start_in_run_order_across_providers():
    order = []

    class Recording(FakeProvider):
        async def generate(self, request, *, timeout):
            order.append(self.name)
            return await super().generate(request, timeout=timeout)

    _run([Recording("a"), Recording("b"), Recording("c")], 2, concurrency=1)
    assert order == ["a", "b", "c", "a", "b", "c"]


def test_each_run_is_its_own_request():
    request = ImageRequest(prompt="a fox", idempotency_key="same-key")
    comparison = _run([FakeProvider("a")], 3, request=request)
    ids = {c.result.request_id for c in comparison.cells if c.result is not None}
    assert len(ids) == 3 and "same-key" not in ids
    assert comparison.request.prompt == "a fox"


def test_policy_overrides_are_picked_per_provider():
    a = FakeProvider("a", script=[500, 500])
    b = FakeProvider("b", script=[500, 500])
    policy = Policy(providers={"a": {"retries": {"server_error": 0}}})
    comparison = _run([a, b], 1, policy=policy)
    assert (a.calls, b.calls) == (1, 2)
    assert [c.outcome for c in comparison.cells] == ["server_error", "server_error"]


def test_an_unexpected_error_is_a_cell(monkeypatch):
    async def boom(self, request=None, /, **fields):
        raise RuntimeError("router exploded")

    monkeypatch.setattr(Chain, "agenerate", boom)
    comparison = _run([FakeProvider("a")], 2)
    assert [c.outcome for c in comparison.cells] == ["error", "error"]
    assert comparison.cells[0].message == "RuntimeError: router exploded"


def test_labels_and_defaults():
    twins = [FakeProvider("x", model="m1"), FakeProvider("x", model="m2")]
    assert default_labels(twins) == ["x:m1", "x:m2"]
    same = [FakeProvider("x"), FakeProvider("x"), FakeProvider("y")]
    assert default_labels(same) == ["x:fake-image-1#1", "x:fake-image-1#2", "y"]
    comparison = _run(same, 1)
    assert [r.label for r in comparison.rows] == ["x:fake-image-1#1", "x:fake-image-1#2", "y"]
    named = _run([FakeProvider("a"), FakeProvider("b")], 1, labels=["first", "second"])
    assert [c.label for c in named.cells] == ["first", "second"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"runs": 0}, "runs must be between 1 and 100"),
    ({"runs": 101}, "runs must be between 1 and 100"),
    ({"concurrency": 0}, "concurrency must be at least 1"),
    ({"labels": ["only-one", "two", "three"]}, "3 label(s) for 1 provider(s)"),
])
def test_bad_arguments(kwargs, message):
    runs = kwargs.pop("runs", 1)
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _run([FakeProvider("a")], runs, **kwargs)


def test_no_providers_and_bad_prompt():
    with pytest.raises(ConfigurationError, match="at least one provider"):
        _run([], 1)
    with pytest.raises(RequestValidationError):
        _run([FakeProvider("a")], 1, request="   ")


def test_to_dict_is_json_and_leaves_bytes_out():
    comparison = _run([FakeProvider("a"), FakeProvider("b", script=[500, 500])], 2,
                      concurrency=1)
    doc = json.loads(json.dumps(comparison.to_dict({(0, 1): ["images/a-run1.png"]})))
    assert doc["prompt"] == REQ.prompt and doc["runs"] == 2
    assert doc["request"]["size"] == "512x512" and "images" not in doc["request"]
    assert [p["label"] for p in doc["providers"]] == ["a", "b"]
    assert doc["providers"][1]["failures"] == {"server_error": 1}
    cells = doc["cells"]
    assert [(c["label"], c["run"], c["outcome"]) for c in cells] == [
        ("a", 1, "success"), ("a", 2, "success"), ("b", 1, "server_error"), ("b", 2, "success")]
    assert cells[0]["files"] == ["images/a-run1.png"] and cells[1]["files"] == []
    assert cells[0]["width"] == 512 and len(cells[0]["sha256"]) == 64
    assert cells[2]["attempts"][0]["outcome"] == "server_error"
    assert doc["cross_spread"] == [{"a": "a", "b": "b", "spread": 0.0}]
