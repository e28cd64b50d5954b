"""Replicate adapter against the emulated predictions API: create with ``Prefer: wait``,
polling, cancel on timeout, versions, output downloads, every fault the emulator produces for
Replicate and what the chain does with it; and the official ``replicate`` client used as a
client of the same emulated API.

In-process on virtual time (``fallback_chain.vtime``), except the tests over a real loopback
server (the adapter's ``check`` and the official client)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from job_helpers import Harness, run_chain

from fallback_chain import ImageRequest, Outcome
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.errors import ConfigurationError, ContentPolicyError
from fallback_chain.providers.fake import FakeProvider
from fallback_chain.providers.jobs import ErrorAnswer
from fallback_chain.providers.replicate import ReplicateProvider
from fallback_chain.providers.replicate.cost import (
    cost_from_replicate_outputs,
    cost_from_replicate_predict_time,
)
from fallback_chain.providers.replicate.emulated import DEFAULT_VERSION, NSFW_ERROR
from fallback_chain.providers.replicate.wire import error_from_answer, parse_prediction
from fallback_chain.vtime import VirtualClock

KEY = "r8_test-key"
BASE = "http://emulator.test"
REQ = ImageRequest(prompt="a lighthouse at dusk", size="16:9", n=2)
SCHNELL = "black-forest-labs/flux-schnell"
REPLICATE = Harness("replicate", ReplicateProvider, KEY, BASE, job_delay_s=2.0)
emulator, provider = REPLICATE.emulator, REPLICATE.provider


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def calls(emu: Emulator) -> list[tuple[str, str, int | None]]:
    return [(e.endpoint, e.path, e.status) for e in emu.requests(vendor="replicate")]


# ------------------------------------------------------------------------- the happy path


def test_prefer_wait_returns_the_finished_prediction_and_outputs_are_downloaded(clock):
    emu = emulator(clock=clock)
    result, error = run_chain([provider(emu, clock)], REQ, clock=clock)
    assert error is None and result is not None
    assert result.provider == "replicate" and result.model == SCHNELL
    assert len(result.images) == 2 and result.images[0].sha256 != result.images[1].sha256
    assert {(i.mime_type, i.width, i.height) for i in result.images} == {
        ("image/png", 1360, 768)}
    [attempt] = result.attempts
    assert attempt.outcome is Outcome.SUCCESS and attempt.cost_source == "reported"
    assert attempt.cost_usd == pytest.approx(2 * 0.003)  # $3 per 1,000 output images
    # one create (held by Prefer: wait until done), no poll, two downloads
    assert [c[0] for c in calls(emu)] == ["generate", "image", "image"]
    [create] = emu.requests(vendor="replicate", endpoint="generate")
    assert create.path == f"/v1/models/{SCHNELL}/predictions"
    assert create.params == {"input": {"prompt": REQ.prompt, "output_format": "png",
                                       "aspect_ratio": "16:9", "num_outputs": 2}}


def test_a_slow_prediction_is_polled_on_urls_get_with_backoff(clock):
    emu = emulator(clock=clock, job_delay_s=40.0)
    rep = provider(emu, clock, prefer_wait_s=5)
    result, _ = run_chain([rep], REQ, clock=clock, attempt_timeout_s=120)
    assert result is not None and len(result.images) == 2
    log = [e for e in emu.requests(vendor="replicate") if e.endpoint in ("generate", "poll")]
    assert log[0].endpoint == "generate" and {e.endpoint for e in log[1:]} == {"poll"}
    assert all(e.path.startswith("/v1/predictions/") for e in log[1:])
    gaps = [round(b.time - a.time, 2) for a, b in itertools.pairwise(log[1:])]
    assert 4 <= len(gaps) <= 20  # bounded backoff: polled, but not hammered
    assert max(gaps) <= 5.0 + 0.1 and log[-1].time - log[0].time >= 40.0 - 5.0


def test_a_model_version_goes_to_v1_predictions(clock):
    emu = emulator(clock=clock)
    rep = provider(emu, clock, model=f"acme/sdxl-lite:{'a' * 64}",
                   extra_input={"go_fast": True, "prompt": "not this"})
    result, _ = run_chain([rep], ImageRequest(prompt="a fox", seed=3), clock=clock)
    assert result is not None
    [create] = emu.requests(vendor="replicate", endpoint="generate")
    assert create.path == "/v1/predictions"
    assert create.params is not None and create.params["version"] == "a" * 64
    assert create.params["input"]["prompt"] == "a fox"
    assert create.params["input"]["seed"] == 3 and create.params["input"]["go_fast"] is True
    assert result.attempts[0].cost_source == "none"  # not a per-image-priced model


def test_time_billed_models_use_predict_time_and_the_given_rate(clock):
    emu = emulator(clock=clock, job_delay_s=4.0)
    rep = provider(emu, clock, model=f"acme/sdxl-lite:{'a' * 64}", usd_per_second=0.001)
    result, _ = run_chain([rep], ImageRequest(prompt="a fox"), clock=clock)
    assert result is not None and result.attempts[0].cost_usd == pytest.approx(0.004)
    assert cost_from_replicate_predict_time(2.5, 0.002) == pytest.approx(0.005)
    assert cost_from_replicate_outputs("black-forest-labs/flux-dev", 3) == pytest.approx(0.075)


def test_timeout_cancels_the_prediction_and_never_creates_a_second(clock):
    emu = emulator("job_stuck", clock=clock)
    result, _ = run_chain([provider(emu, clock), FakeProvider("b", clock=clock)], REQ,
                          clock=clock)
    assert result is not None and result.provider == "b"
    first = result.attempts[0]
    assert (first.outcome, first.provider_code) == (Outcome.TIMEOUT, "starting")
    endpoints = [c[0] for c in calls(emu)]
    assert endpoints.count("generate") == 1 and endpoints[-1] == "meta"
    assert calls(emu)[-1][1].endswith("/cancel")


# ------------------------------------------------------------------ the fault table

R, N, E = "reported", "none", "estimated"
FAULTS: list[tuple[Any, list[tuple[str, int | None, str | None, str]], int, Any]] = [
    ("ok", [("success", None, None, R)], 1, "replicate"),
    ("nsfw", [("content_policy", None, "nsfw", N)], 1, ContentPolicyError),
    ("policy", [("content_policy", None, "nsfw", N)], 1, ContentPolicyError),
    ("job_failed,job_failed", [("server_error", None, "failed", N)] * 2, 2, "backup"),
    ("job_failed,ok", [("server_error", None, "failed", N), ("success", None, None, R)], 2,
     "replicate"),
    ("quota", [("quota_exhausted", 402, "insufficient_credit", N)], 1, "backup"),
    ("auth", [("auth_error", 401, "unauthenticated", N)], 1, "backup"),
    ("invalid_version", [("not_found", 422, "invalid_version_or_not_permitted", N)], 1,
     "backup"),
    ("429", [("rate_limited", 429, "too_many_requests", N)], 1, "backup"),
    ("500,500", [("server_error", 500, "internal_server_error", N)] * 2, 2, "backup"),
    ("502,ok", [("server_error", 502, "error", N), ("success", None, None, R)], 2, "replicate"),
    ("expired,expired", [("malformed_response", 403, None, R)] * 2, 2, "backup"),
    ("bad_image,bad_image", [("malformed_response", None, None, R)] * 2, 2, "backup"),
    ("fewer_images,fewer_images", [("malformed_response", 200, "fewer_images", R)] * 2, 2,
     "backup"),
    ("html,html", [("malformed_response", 200, "html_body", N)] * 2, 2, "backup"),
    ("truncated,truncated", [("malformed_response", 201, "invalid_json", N)] * 2, 2,
     "backup"),
    ("reset,reset", [("connection_error", None, None, N)] * 2, 2, "backup"),
    ("cut,cut", [("connection_error", None, None, N)] * 2, 2, "backup"),
    ("overloaded,ok", [("server_error", 503, "error", N), ("success", None, None, R)], 2,
     "replicate"),
    ("job_stuck", [("timeout", None, "starting", E)], 1, "backup"),
    ("hang", [("timeout", None, None, E)], 1, "backup"),
]


@pytest.mark.parametrize(("script", "expected", "creates", "winner"), FAULTS,
                         ids=[str(f[0]) for f in FAULTS])
def test_fault_through_the_chain(clock, script, expected, creates, winner):
    emu = emulator(script, clock=clock)
    result, error = run_chain([provider(emu, clock), FakeProvider("backup", clock=clock)],
                              REQ, clock=clock)
    attempts = (result or error).attempts  # type: ignore[union-attr]
    mine = [a for a in attempts if a.provider == "replicate"]
    assert [(a.outcome.value, a.status_code, a.provider_code, a.cost_source)
            for a in mine] == expected
    assert emu.log.count(vendor="replicate", endpoint="generate") == creates
    for a in mine:
        assert KEY not in (a.message or "")
    if isinstance(winner, str):
        assert result is not None and result.provider == winner
    else:
        assert isinstance(error, winner)
        assert not [a for a in attempts if a.provider == "backup"]


def test_nsfw_failure_keeps_replicates_words_and_downloads_nothing(clock):
    emu = emulator("nsfw", clock=clock)
    _, error = run_chain([provider(emu, clock)], REQ, clock=clock)
    assert isinstance(error, ContentPolicyError)
    assert NSFW_ERROR in error.reason and error.categories == ["nsfw"]
    assert emu.log.count(vendor="replicate", endpoint="image") == 0


def test_rate_limit_honours_retry_after(clock):
    emu = emulator("429", clock=clock, retry_after=9)
    result, _ = run_chain([provider(emu, clock), FakeProvider("b", clock=clock)], REQ,
                          clock=clock)
    assert result is not None and result.attempts[0].retry_after_s == 9.0


# ---------------------------------------------------------------- the wire, directly


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> ErrorAnswer:
    import json

    return ErrorAnswer(status, headers or {}, json.dumps(body), body, "POST")


def test_error_mapping_reads_the_problem_details():
    throttled = error_from_answer(answer(429, {"detail": "Request was throttled.",
                                               "status": 429, "retry_after": 5}))
    assert (throttled.outcome, throttled.retry_after_s) == (Outcome.RATE_LIMITED, 5.0)
    header = error_from_answer(answer(429, {"detail": "x"}, {"retry-after": "3"}))
    assert header.retry_after_s == 3.0
    assert error_from_answer(answer(422, {"title": "Input validation failed",
                                          "detail": "- input: prompt is required"})
                             ).outcome is Outcome.INVALID_REQUEST
    assert error_from_answer(answer(404, {"title": "Not found"})).outcome is Outcome.NOT_FOUND
    with pytest.raises(Exception, match="not a prediction"):
        parse_prediction({"status": "starting"}, "create")


def test_constructor_checks(monkeypatch):
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="REPLICATE_API_TOKEN"):
        ReplicateProvider()
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env")
    assert ReplicateProvider()._api_key == "r8_env"
    with pytest.raises(ConfigurationError, match="owner/name"):
        ReplicateProvider(model="flux")
    with pytest.raises(ConfigurationError, match="prefer_wait_s"):
        ReplicateProvider(prefer_wait_s=61)
    assert ReplicateProvider(base_url="http://h:9/v1/").base_url == "http://h:9"


# ------------------------------------------------------------------ over real loopback


def test_check_over_a_real_loopback_server():
    emu = Emulator(api_keys=KEY)
    with serve_in_thread(emu) as base_url:
        good = ReplicateProvider(api_key=KEY, base_url=base_url)
        bad = ReplicateProvider(api_key="r8_wrong", base_url=base_url)

        async def go() -> tuple[Any, Any]:
            out = (await good.check(), await bad.check())
            await good.aclose()
            await bad.aclose()
            return out

        ok, denied = asyncio.run(go())
    assert ok.ok and "emulator" in ok.detail and SCHNELL in ok.detail
    assert not denied.ok and "401" in denied.detail


def test_the_official_replicate_client_against_the_emulated_api():
    replicate = pytest.importorskip("replicate")
    emu = Emulator(api_keys=KEY, faults={"replicate": {"job_delay_s": 0.2,
                                                       "script": "ok,ok,nsfw,quota"}})
    with serve_in_thread(emu) as base_url:
        client = replicate.Client(api_token=KEY, base_url=base_url)
        client.poll_interval = 0.02
        # run(): POST /v1/models/{owner}/{name}/predictions with Prefer: wait
        urls = client.run(SCHNELL, input={"prompt": "a fox", "num_outputs": 2},
                          use_file_output=False)
        assert len(urls) == 2 and all("/out-" in u for u in urls)
        # a version's prediction, polled by the client until it succeeds
        pred = client.predictions.create(version=DEFAULT_VERSION, input={"prompt": "a cat"})
        assert pred.status == "starting" and pred.urls["get"].startswith(base_url)
        pred.wait()
        assert pred.status == "succeeded" and len(pred.output) == 1
        # the safety checker's failure, as the client reports it
        with pytest.raises(replicate.exceptions.ModelError, match="NSFW content"):
            client.run(SCHNELL, input={"prompt": "x"})
        # problem details, as the client parses them
        with pytest.raises(replicate.exceptions.ReplicateError) as info:
            client.run(SCHNELL, input={"prompt": "x"})
        assert (info.value.status, info.value.title) == (402, "Insufficient credit")
        model = client.models.get(SCHNELL)
        assert model.latest_version is not None and model.latest_version.id == DEFAULT_VERSION
        created = client.predictions.create(model=SCHNELL, input={"prompt": "slow"})
        assert client.predictions.cancel(created.id).status in ("canceled", "succeeded")
    sent = [e for e in emu.requests(vendor="replicate") if e.endpoint == "generate"]
    assert sent[0].path == f"/v1/models/{SCHNELL}/predictions"
    assert sent[1].path == "/v1/predictions"


def test_every_fault_kind_of_the_emulated_api_is_in_the_table():
    from fallback_chain.emulator.faults import STATUS_ALIASES, VENDOR_KINDS

    covered = {k.strip() for f in FAULTS for k in str(f[0]).split(",")}
    assert VENDOR_KINDS["replicate"] - set(STATUS_ALIASES) - covered == set()
