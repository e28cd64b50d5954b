"""Leonardo adapter against the emulator: submit → poll → download, every fault the emulator
can produce for Leonardo, what the chain records for each, and how many jobs Leonardo saw.

Most tests run in-process on virtual time (``fallback_chain.vtime``): the emulator's job
delays and the adapter's poll waits cost no real time. One test uses a real loopback server.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import pytest
from leonardo_helpers import (
    BASE,
    KEY,
    PROMPT,
    WrappingTransport,
    emulator,
    provider,
    rehost_images,
    run_chain,
    submissions,
    to_emulator,
    usd,
)

from fallback_chain import ImageRequest, Outcome, Policy
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.errors import (
    ChainExhaustedError,
    ConfigurationError,
    ContentPolicyError,
    ProviderError,
)
from fallback_chain.providers.fake import FakeProvider
from fallback_chain.providers.leonardo.adapter import DEFAULT_MODEL_ID, LeonardoProvider
from fallback_chain.providers.leonardo.wire import (
    error_from_response,
    parse_generation,
    parse_submission,
)
from fallback_chain.vtime import VirtualClock, run_virtual

REQ = ImageRequest(prompt=PROMPT, n=2, size="512x512")
COST = usd(512, 512, 2)  # what the emulator bills for REQ


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def backup(clock: VirtualClock) -> FakeProvider:
    return FakeProvider("backup", clock=clock)


# ------------------------------------------------------------------------- the happy path


def test_pending_then_complete_two_images_downloaded_and_verified(clock):
    emu = emulator(clock=clock)
    leo = provider(emu, clock)
    result, error = run_chain([leo, backup(clock)], REQ, clock=clock)
    assert error is None and result is not None
    assert result.provider == "leonardo" and result.model == DEFAULT_MODEL_ID
    assert len(result.images) == 2
    for img in result.images:
        assert (img.mime_type, img.width, img.height) == ("image/jpeg", 512, 512)
    assert result.images[0].sha256 != result.images[1].sha256
    [attempt] = result.attempts
    assert attempt.outcome is Outcome.SUCCESS
    assert attempt.latency_s > 4.0  # the job took 4 s (virtual) to complete
    assert attempt.cost_usd == pytest.approx(COST) and attempt.cost_source == "reported"
    assert result.usage is not None and result.usage["apiCreditCost"] == 5
    # what Leonardo saw: one job, polled until COMPLETE (the first poll saw PENDING), two images
    log = emu.requests(vendor="leonardo")
    assert [e.endpoint for e in log] == ["generate", "poll", "poll", "image", "image"]
    assert all(e.status == 200 for e in log)


def test_request_body_sends_explicit_values_in_the_mixed_wire_case(clock):
    emu = emulator(clock=clock)
    leo = provider(emu, clock)
    req = ImageRequest(prompt=PROMPT, n=3, size="640x384", negative_prompt="blurry", seed=42)
    result, _ = run_chain([leo], req, clock=clock)
    assert result is not None and len(result.images) == 3
    [submit] = emu.requests(vendor="leonardo", endpoint="generate")
    assert submit.params == {
        "prompt": PROMPT, "modelId": DEFAULT_MODEL_ID, "width": 640, "height": 384,
        "num_images": 3, "alchemy": True, "presetStyle": "DYNAMIC", "public": False,
        "negative_prompt": "blurry", "seed": 42}
    assert {(i.width, i.height) for i in result.images} == {(640, 384)}


def test_options_change_the_body_but_never_the_request_fields(clock):
    emu = emulator(clock=clock)
    leo = provider(emu, clock, model_id="de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3", alchemy=False,
                   preset_style=None, extra_body={"guidance_scale": 7, "num_images": 8})
    result, _ = run_chain([leo], ImageRequest(prompt=PROMPT, size="512x512"), clock=clock)
    assert result is not None and result.model == "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3"
    [submit] = emu.requests(vendor="leonardo", endpoint="generate")
    assert submit.params is not None
    assert submit.params["alchemy"] is False and "presetStyle" not in submit.params
    assert submit.params["guidance_scale"] == 7 and submit.params["num_images"] == 1
    # without Alchemy the emulator bills less, and the reported cost follows
    assert result.attempts[0].cost_usd == pytest.approx(usd(512, 512, 1, alchemy=False))


@pytest.mark.parametrize(("size", "sent"), [
    ("1000x700", (1000, 704)),   # rounded to multiples of 8
    ("2048x2048", (1536, 1536)),  # clamped to 1536
    ("16:9", (1368, 768)),       # a ratio at the default area
    ("auto", (1024, 1024)),
])
def test_size_negotiation_sends_multiples_of_8_within_range(clock, size, sent):
    emu = emulator(clock=clock)
    result, _ = run_chain([provider(emu, clock)], ImageRequest(prompt=PROMPT, size=size),
                          clock=clock)
    assert result is not None
    [submit] = emu.requests(vendor="leonardo", endpoint="generate")
    assert submit.params is not None
    assert (submit.params["width"], submit.params["height"]) == sent
    assert (result.image.width, result.image.height) == sent


def test_poll_schedule_is_a_bounded_backoff(clock):
    emu = emulator(clock=clock, job_delay_s=60.0)
    leo = provider(emu, clock)
    result, _ = run_chain([leo], REQ, clock=clock, attempt_timeout_s=120)
    assert result is not None
    times = [e.time for e in emu.requests(vendor="leonardo") if e.endpoint in ("generate",
                                                                                "poll")]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[0] == pytest.approx(1.5 + 0.005, abs=0.01)   # first poll after ~1.5 s
    assert gaps[1] == pytest.approx(3.0 + 0.005, abs=0.01)   # then every few seconds
    assert all(b >= a - 0.01 for a, b in itertools.pairwise(gaps))  # growing
    assert max(gaps) <= 10.0 + 0.01                            # never more than 10 s apart
    assert times[-1] - times[0] >= 60.0                        # and it did wait for the job


# ------------------------------------------------------------------ the fault table


R, N, E = "reported", "none", "estimated"

# script → (attempts: [(outcome, status, provider_code, cost source)], jobs Leonardo saw,
#           who delivered: "leonardo", "backup", or an exception type)
FAULTS: list[tuple[Any, list[tuple[str, int | None, str | None, str]], int, Any]] = [
    ("ok", [("success", None, None, R)], 1, "leonardo"),
    ("job_failed,job_failed", [("server_error", None, "FAILED", R)] * 2, 2, "backup"),
    ("job_failed,ok", [("server_error", None, "FAILED", R), ("success", None, None, R)], 2,
     "leonardo"),
    ("job_stuck", [("timeout", None, "PENDING", R)], 1, "backup"),
    ("expired,expired", [("malformed_response", 403, None, R)] * 2, 2, "backup"),
    ("bad_image,bad_image", [("malformed_response", None, None, R)] * 2, 2, "backup"),
    ("fewer_images,fewer_images", [("malformed_response", 200, "fewer_images", R)] * 2, 2,
     "backup"),
    ("nsfw", [("content_policy", None, "nsfw", R)], 1, ContentPolicyError),
    ("policy", [("content_policy", None, "nsfw", R)], 1, ContentPolicyError),
    ("moderated", [("content_policy", 400, "content-moderation", N)], 1, ContentPolicyError),
    ("429", [("rate_limited", 429, "rate-limit-exceeded", N)], 1, "backup"),
    ("quota", [("quota_exhausted", 402, "insufficient-credits", N)], 1, "backup"),
    ([{"fault": "400", "message": "Not enough API tokens for this generation"}],
     [("quota_exhausted", 400, "validation-failed", N)], 1, "backup"),
    ("auth", [("auth_error", 401, "invalid-jwt", N)], 1, "backup"),
    ("permission", [("auth_error", 403, "access-denied", N)], 1, "backup"),
    ("400", [("invalid_request", 400, "validation-failed", N)], 1, "backup"),
    ("404", [("not_found", 404, "not-found", N)], 1, "backup"),
    ("500,500", [("server_error", 500, "unexpected", N)] * 2, 2, "backup"),
    ("502,503", [("server_error", 502, "unexpected", N), ("server_error", 503, "unexpected", N)],
     2, "backup"),
    ("overloaded,ok", [("server_error", 503, "unexpected", N), ("success", None, None, R)], 2,
     "leonardo"),
    ("html,html", [("malformed_response", 200, "html_body", N)] * 2, 2, "backup"),
    ("truncated,truncated", [("malformed_response", 200, "invalid_json", N)] * 2, 2, "backup"),
    ("reset,reset", [("connection_error", None, None, N)] * 2, 2, "backup"),
    # a body cut after the job was accepted: the id is lost, so the retry is a second job
    ("cut,cut", [("connection_error", None, None, N)] * 2, 2, "backup"),
    ("hang", [("timeout", None, None, E)], 1, "backup"),
]


@pytest.mark.parametrize(("script", "expected", "jobs", "winner"), FAULTS,
                         ids=[str(f[0]) for f in FAULTS])
def test_fault_through_the_chain(clock, script, expected, jobs, winner):
    emu = emulator(script, clock=clock)
    leo = provider(emu, clock)
    spare = backup(clock)
    result, error = run_chain([leo, spare], REQ, clock=clock)
    attempts = (result or error).attempts  # type: ignore[union-attr]
    mine = [a for a in attempts if a.provider == "leonardo"]
    got = [(a.outcome.value, a.status_code, a.provider_code, a.cost_source) for a in mine]
    assert got == expected
    for a in mine:
        assert a.latency_s > 0
        assert KEY not in (a.message or "")
        assert (a.message is None) == (a.outcome is Outcome.SUCCESS)
        if a.cost_source == R:
            assert a.cost_usd == pytest.approx(COST)
        elif a.cost_source == E:
            assert a.cost_usd == pytest.approx(leo.estimate_cost(REQ))
        else:
            assert a.cost_usd == 0.0
    assert submissions(emu) == jobs
    if winner == "leonardo":
        assert result is not None and result.provider == "leonardo" and len(result.images) == 2
        assert spare.calls == 0
    elif winner == "backup":
        assert result is not None and result.provider == "backup"
    else:
        assert isinstance(error, winner)
        assert spare.calls == 0  # content refusals stop the chain


@pytest.mark.parametrize(("script", "outcome"), [
    ("5xx,5xx", Outcome.SERVER_ERROR),
    ("malformed,malformed", Outcome.MALFORMED_RESPONSE),
])
def test_drawn_fault_kinds(clock, script, outcome):
    emu = emulator(script, clock=clock)
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock)
    assert result is not None and result.provider == "backup"
    mine = [a for a in result.attempts if a.provider == "leonardo"]
    assert [a.outcome for a in mine] == [outcome] * 2
    assert submissions(emu) == 2


def test_random_faults_keep_the_invariants(clock):
    """Under seeded random faults: a success always has the images asked for, Leonardo never
    sees more than two jobs per request, and every attempt whose job was accepted records the
    credits Leonardo reported."""
    emu = Emulator(faults={"seed": 11, "leonardo": {
        "latency": 5, "job_delay_s": 3.0,
        "rates": {"5xx": 0.1, "malformed": 0.1, "job_failed": 0.1, "expired": 0.05,
                  "reset": 0.05, "429": 0.05, "fewer_images": 0.05}}},
        api_keys=KEY, clock=clock)
    leo = provider(emu, clock)
    spare = backup(clock)
    outcomes: set[Outcome] = set()
    for i in range(40):
        before = submissions(emu)
        req = ImageRequest(prompt=f"{PROMPT} {i}", n=2, size="512x512")
        result, error = run_chain([leo, spare], req, clock=clock,
                                  policy=Policy(wait_for_cooldown=False,
                                                cooldowns_s={"rate_limited": 0}))
        assert result is not None, error
        assert len(result.images) >= 2
        assert submissions(emu) - before <= 2
        for a in result.attempts:
            outcomes.add(a.outcome)
            if a.provider != "leonardo":
                continue
            # accepted jobs: delivered, FAILED, too few images, expired URLs, bad bytes
            accepted = a.outcome is Outcome.SUCCESS or a.provider_code in (
                "FAILED", "fewer_images") or (a.outcome is Outcome.MALFORMED_RESPONSE
                                              and a.provider_code is None)
            if accepted:
                assert (a.cost_source, a.cost_usd) == ("reported", pytest.approx(COST))
            else:  # refused or unreadable submissions: no job, nothing billed
                assert (a.cost_source, a.cost_usd) == ("none", 0.0), a
    assert {Outcome.SUCCESS, Outcome.SERVER_ERROR, Outcome.MALFORMED_RESPONSE} <= outcomes


def test_failed_job_is_retried_once_by_the_policy_with_two_jobs_in_the_log(clock):
    emu = emulator("job_failed,job_failed", clock=clock)
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock)
    assert result is not None and result.provider == "backup"
    assert Policy().rule(Outcome.SERVER_ERROR).retries == 1
    jobs = emu.requests(vendor="leonardo", endpoint="generate")
    assert [e.fault for e in jobs] == ["job_failed", "job_failed"]
    assert result.cost_usd == pytest.approx(2 * COST + 0.02)  # two billed jobs + the backup


def test_poll_timeout_never_resubmits_and_records_the_billed_credits(clock):
    """A job that never completes: ONE submission, outcome timeout at the attempt timeout,
    and the cost Leonardo reported at submission recorded on the attempt."""
    assert Policy().rule(Outcome.TIMEOUT).retries == 0  # the default policy advances
    emu = emulator("job_stuck", clock=clock)
    leo = provider(emu, clock)
    spare = backup(clock)
    result, _ = run_chain([leo, spare], REQ, clock=clock, attempt_timeout_s=45)
    assert result is not None and result.provider == "backup"
    [timeout, success] = result.attempts
    assert success.provider == "backup" and success.outcome is Outcome.SUCCESS
    assert timeout.outcome is Outcome.TIMEOUT and timeout.provider == "leonardo"
    assert 42.0 <= timeout.latency_s < 45.0  # gave up just before the router's own timeout
    assert timeout.cost_source == "reported" and timeout.cost_usd == pytest.approx(COST)
    assert "not resubmitted" in (timeout.message or "")
    assert submissions(emu) == 1
    polls = emu.log.count(vendor="leonardo", endpoint="poll")
    assert 5 <= polls <= 12  # polled throughout, not hammered
    assert result.cost_usd == pytest.approx(COST + 0.02)


def test_a_job_that_completes_after_the_attempt_timeout_is_not_resubmitted(clock):
    emu = emulator(clock=clock, job_delay_s=100.0)
    leo = provider(emu, clock)
    result, error = run_chain([leo], REQ, clock=clock, attempt_timeout_s=20)
    assert result is None and isinstance(error, ChainExhaustedError)
    [attempt] = error.attempts
    assert attempt.outcome is Outcome.TIMEOUT and attempt.cost_usd == pytest.approx(COST)
    assert submissions(emu) == 1


def test_max_wait_caps_polling_below_a_long_attempt_timeout(clock):
    emu = emulator("job_stuck", clock=clock)
    leo = provider(emu, clock, max_wait_s=60)
    result, error = run_chain([leo], REQ, clock=clock, attempt_timeout_s=900)
    assert result is None and error is not None
    [attempt] = error.attempts
    assert attempt.outcome is Outcome.TIMEOUT and attempt.latency_s <= 60.0
    assert submissions(emu) == 1


def test_rate_limit_carries_retry_after(clock):
    emu = emulator("429", clock=clock, retry_after=7, retry_after_format="seconds")
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock)
    assert result is not None
    first = result.attempts[0]
    assert (first.outcome, first.retry_after_s) == (Outcome.RATE_LIMITED, 7.0)


def test_content_policy_error_names_the_provider_and_reason(clock):
    emu = emulator("nsfw", clock=clock)
    _, error = run_chain([provider(emu, clock)], REQ, clock=clock)
    assert isinstance(error, ContentPolicyError)
    assert error.provider == "leonardo" and "NSFW" in error.reason
    assert error.categories == ["nsfw"]
    # flagged images are never downloaded
    assert emu.log.count(vendor="leonardo", endpoint="image") == 0


def test_wrong_key_is_auth_error_and_never_leaks(clock):
    secret = "leo-wrong-key-0123456789abcdef"
    emu = emulator(clock=clock)
    leo = provider(emu, clock, api_key=secret)
    assert secret not in repr(leo)
    _, error = run_chain([leo], REQ, clock=clock)
    assert error is not None
    [attempt] = error.attempts
    assert (attempt.outcome, attempt.status_code) == (Outcome.AUTH_ERROR, 401)
    assert secret not in str(error) and secret not in attempt.model_dump_json()


# -------------------------------------------------------------- poll and download faults


@pytest.mark.parametrize("script", ["500,500", "reset,503", "html,truncated", "429,429",
                                    "hang"])
def test_transient_poll_failures_are_polled_through_within_one_job(clock, script):
    emu = emulator(script, clock=clock, applies_to=["poll"])
    leo = provider(emu, clock, request_timeout_s=2.0)
    result, _ = run_chain([leo, backup(clock)], REQ, clock=clock)
    assert result is not None and result.provider == "leonardo"
    assert [a.outcome for a in result.attempts] == [Outcome.SUCCESS]
    assert submissions(emu) == 1


def test_polling_that_keeps_failing_gives_up_with_the_cost_recorded(clock):
    emu = emulator("500*6", clock=clock, applies_to=["poll"])
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock)
    assert result is not None and result.provider == "backup"
    mine = [a for a in result.attempts if a.provider == "leonardo"]
    assert [(a.outcome.value, a.status_code, a.cost_source) for a in mine] == [
        ("server_error", 500, "reported")] * 2
    assert submissions(emu) == 2
    assert emu.log.count(vendor="leonardo", endpoint="poll") == 6  # 3 per job


def test_poll_auth_error_is_not_polled_through(clock):
    emu = emulator("auth", clock=clock, applies_to=["poll"])
    _, error = run_chain([provider(emu, clock)], REQ, clock=clock)
    assert error is not None
    [attempt] = error.attempts
    assert (attempt.outcome, attempt.status_code, attempt.cost_source) == (
        Outcome.AUTH_ERROR, 401, "reported")
    assert emu.log.count(vendor="leonardo", endpoint="poll") == 1


@pytest.mark.parametrize("script", ["500", "reset", "502"])
def test_a_transient_download_failure_is_retried_with_the_same_urls(clock, script):
    emu = emulator(script, clock=clock, applies_to=["image"])
    result, _ = run_chain([provider(emu, clock)], REQ, clock=clock)
    assert result is not None and len(result.images) == 2
    assert submissions(emu) == 1
    assert emu.log.count(vendor="leonardo", endpoint="image") >= 3


@pytest.mark.parametrize("status", [403, 404, 410])
def test_expired_image_urls_are_malformed_response(clock, status):
    emu = emulator("expired,expired", clock=clock, expired_status=status)
    _, error = run_chain([provider(emu, clock)], REQ, clock=clock)
    assert error is not None
    assert [(a.outcome, a.status_code, a.cost_source) for a in error.attempts] == [
        (Outcome.MALFORMED_RESPONSE, status, "reported")] * 2
    assert "expired" in (error.attempts[0].message or "")


def test_generation_unknown_to_leonardo_is_polled_through_then_malformed(clock):
    emu = emulator(clock=clock)
    unknown = "00000000-0000-4000-8000-00000000dead"
    nulls = {"left": 2}

    def reroute(request: httpx.Request) -> httpx.Request:
        if "/generations/" in request.url.path and nulls["left"] > 0:
            nulls["left"] -= 1
            return httpx.Request("GET", f"{BASE}/api/rest/v1/generations/{unknown}",
                                 headers=request.headers)
        return request

    wrapped = WrappingTransport(emu.httpx_transport(), reroute=reroute)
    result, _ = run_chain([provider(emu, clock, transport=wrapped)], REQ, clock=clock)
    assert result is not None and len(result.images) == 2  # two nulls tolerated
    assert submissions(emu) == 1

    nulls["left"] = 10**6  # now Leonardo never knows the job
    emu.reset()
    result, error = run_chain([provider(emu, clock, transport=wrapped)], REQ, clock=clock,
                              policy=Policy(retries={"malformed_response": 0}))
    assert error is not None
    [attempt] = error.attempts
    assert (attempt.outcome, attempt.provider_code, attempt.cost_source) == (
        Outcome.MALFORMED_RESPONSE, "generation_not_found", "reported")
    assert submissions(emu) == 1


# ------------------------------------------------------------------ download allow-list


@pytest.mark.parametrize("prefix", [
    "https://evil.example.com",
    "https://cdn.leonardo.ai.evil.example.com",
    "http://cdn.leonardo.ai",          # plain http to the CDN
    "https://169.254.169.254",         # cloud metadata address
    "http://emulator.test:8080",       # the emulator's host, but another origin
])
def test_image_url_outside_the_allow_list_is_refused_and_never_fetched(clock, prefix):
    emu = emulator(clock=clock)
    wrapped = WrappingTransport(emu.httpx_transport(), rewrite_poll=rehost_images(prefix))
    leo = provider(emu, clock, transport=wrapped)
    _, error = run_chain([leo], REQ, clock=clock)
    assert error is not None
    assert [(a.outcome, a.provider_code, a.cost_source) for a in error.attempts] == [
        (Outcome.MALFORMED_RESPONSE, "url_not_allowed", "reported")] * 2
    assert "refused" in (error.attempts[0].message or "")
    assert not [r for r in wrapped.seen if str(r.url).startswith(prefix)]  # nothing fetched
    assert emu.log.count(vendor="leonardo", endpoint="image") == 0


def test_the_vendor_cdn_is_allowed_and_gets_no_api_key(clock):
    emu = emulator(clock=clock)
    wrapped = WrappingTransport(emu.httpx_transport(), reroute=to_emulator,
                                rewrite_poll=rehost_images("https://cdn.leonardo.ai"))
    leo = provider(emu, clock, transport=wrapped)
    result, _ = run_chain([leo], REQ, clock=clock)
    assert result is not None and len(result.images) == 2
    cdn = [r for r in wrapped.seen if r.url.host == "cdn.leonardo.ai"]
    assert len(cdn) == 2
    assert all("authorization" not in r.headers for r in cdn)
    api = [r for r in wrapped.seen if r.url.host == "emulator.test"]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in api)


def test_downloads_over_the_size_cap_are_refused(clock):
    emu = emulator(clock=clock)
    _, error = run_chain([provider(emu, clock, max_download_bytes=1000)], REQ, clock=clock)
    assert error is not None
    assert error.attempts[0].outcome is Outcome.MALFORMED_RESPONSE
    assert "limit" in (error.attempts[0].message or "")


# ------------------------------------------------------------------ n and capabilities


@pytest.mark.parametrize(("n", "size", "ok"), [
    (4, "1024x1024", True),
    (5, "1024x1024", False),  # more than 4 above 768 px
    (5, "auto", False),       # auto is 1024x1024
    (5, "768x768", True),
    (8, "512x512", True),
    (9, "512x512", False),    # more than Leonardo's 8
    (8, "800x600", False),
])
def test_unsupported_reason_enforces_the_768_px_rule(n, size, ok):
    leo = LeonardoProvider(api_key=KEY)
    reason = leo.unsupported_reason(ImageRequest(prompt=PROMPT, n=n, size=size))
    assert (reason is None) == ok, reason
    if not ok:
        assert str(n) in reason  # type: ignore[operator]


def test_a_request_leonardo_cannot_serve_is_skipped_and_nothing_is_sent(clock):
    emu = emulator(clock=clock)
    req = ImageRequest(prompt=PROMPT, n=6)
    result, _ = run_chain([provider(emu, clock), backup(clock)], req, clock=clock)
    assert result is not None and result.provider == "backup"
    assert result.attempts[0].outcome is Outcome.SKIPPED
    assert "768" in (result.attempts[0].message or "")
    assert len(emu.log) == 0


def test_eight_small_images_in_one_job(clock):
    emu = emulator(clock=clock)
    req = ImageRequest(prompt=PROMPT, n=8, size="256x256")
    result, _ = run_chain([provider(emu, clock)], req, clock=clock)
    assert result is not None and len(result.images) == 8
    assert submissions(emu) == 1


def test_capabilities_come_from_the_catalogue():
    caps = LeonardoProvider(api_key=KEY).capabilities
    assert (caps.max_n, caps.min_side, caps.max_side, caps.size_multiple) == (8, 32, 1536, 8)
    assert caps.negative_prompt and caps.seed and not caps.edits


def test_direct_generate_guards_unsupported_requests(clock):
    emu = emulator(clock=clock)
    leo = provider(emu, clock)
    with pytest.raises(ProviderError) as info:
        run_virtual(leo.generate(ImageRequest(prompt=PROMPT, n=6), timeout=30))
    assert info.value.outcome is Outcome.INVALID_REQUEST
    assert len(emu.log) == 0


# ------------------------------------------------------------------ construction, check, cost


def test_missing_key_names_the_env_var(monkeypatch):
    monkeypatch.delenv("LEONARDO_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="LEONARDO_API_KEY"):
        LeonardoProvider()


def test_key_from_the_environment(monkeypatch, clock):
    monkeypatch.setenv("LEONARDO_API_KEY", KEY)
    emu = emulator(clock=clock)
    leo = LeonardoProvider(base_url=BASE, transport=emu.httpx_transport(), clock=clock)
    assert run_virtual(leo.check()).ok


@pytest.mark.parametrize(("given", "root"), [
    (None, "https://cloud.leonardo.ai"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ("https://cloud.leonardo.ai/api/rest/v1/", "https://cloud.leonardo.ai"),
])
def test_base_url_is_the_api_root(given, root):
    assert LeonardoProvider(api_key=KEY, base_url=given).base_url == root


@pytest.mark.parametrize("kwargs", [
    {"base_url": "ftp://x"}, {"poll_interval_s": 0}, {"max_download_bytes": 0},
    {"poll_backoff": 0.5}, {"max_poll_failures": 0}, {"usd_per_credit": -1.0},
    {"model_id": "a", "model": "b"},
])
def test_bad_options_are_configuration_errors(kwargs):
    with pytest.raises(ConfigurationError):
        LeonardoProvider(api_key=KEY, **kwargs)


def test_model_alias_and_defaults():
    leo = LeonardoProvider(api_key=KEY, model="abc-123")
    assert (leo.name, leo.model) == ("leonardo", "abc-123")
    assert LeonardoProvider(api_key=KEY, name="leo2").key == "leo2"
    assert LeonardoProvider(api_key=KEY).model == DEFAULT_MODEL_ID


def test_check_spends_nothing(clock):
    emu = emulator(clock=clock)
    ok = run_virtual(provider(emu, clock).check())
    assert ok.ok and "100,000 API credits" in ok.detail and "emulator" in ok.detail
    bad = run_virtual(provider(emu, clock, api_key="not-the-key").check())
    assert not bad.ok and "auth_error" in bad.detail
    assert {e.endpoint for e in emu.requests(vendor="leonardo")} == {"meta"}
    assert submissions(emu) == 0


def test_estimate_and_credit_rate(clock):
    leo = LeonardoProvider(api_key=KEY)
    est = leo.estimate_cost(REQ)
    assert est is not None and est > 0
    doubled = LeonardoProvider(api_key=KEY, usd_per_credit=2 * 0.0015).estimate_cost(REQ)
    assert doubled == pytest.approx(2 * est)
    # the reported cost uses the configured rate too
    emu = emulator(clock=clock)
    result, _ = run_chain([provider(emu, clock, usd_per_credit=0.01)], REQ, clock=clock)
    assert result is not None and result.cost_usd == pytest.approx(5 * 0.01)


def test_failed_jobs_can_be_recorded_as_free(clock):
    emu = emulator("job_failed", clock=clock)
    leo = provider(emu, clock, bill_failed_jobs=False)
    _, error = run_chain([leo], REQ, clock=clock, policy=Policy(retries={"server_error": 0}))
    assert error is not None
    assert (error.attempts[0].cost_usd, error.attempts[0].cost_source) == (0.0, "none")


def test_one_pooled_client_per_loop_closed_by_aclose(clock):
    emu = emulator(clock=clock)
    leo = provider(emu, clock)

    async def go() -> None:
        await leo.generate(REQ, timeout=30)
        first = leo._client()
        await leo.generate(REQ, timeout=30)
        assert leo._client() is first
        await leo.aclose()
        assert first.is_closed
        assert leo._client() is not first  # a new pool after aclose
        await leo.aclose()

    run_virtual(go())


def test_a_client_passed_in_is_used_and_not_closed(clock):
    emu = emulator(clock=clock)

    async def go() -> None:
        async with httpx.AsyncClient(transport=emu.httpx_transport()) as client:
            leo = LeonardoProvider(api_key=KEY, base_url=BASE, http_client=client, clock=clock)
            reply = await leo.generate(REQ, timeout=30)
            assert len(reply.images) == 2 and reply.vendor_request_id
            await leo.aclose()
            assert not client.is_closed

    run_virtual(go())


# ------------------------------------------------------------------ a real loopback server


def test_over_a_real_loopback_server():
    emu = Emulator(faults={"leonardo": {"job_delay_s": 0.05, "script": "ok,job_failed,reset"}},
                   api_keys=KEY)
    with serve_in_thread(emu) as base_url:
        leo = LeonardoProvider(api_key=KEY, base_url=base_url, poll_initial_s=0.02,
                               poll_interval_s=0.02, poll_max_interval_s=0.05)

        async def go() -> list[Any]:
            out: list[Any] = [await leo.check()]
            for _ in range(3):
                try:
                    out.append(await leo.generate(REQ, timeout=10))
                except ProviderError as exc:
                    out.append(exc)
            await leo.aclose()
            return out

        check, ok, failed, reset = asyncio.run(go())
    assert check.ok
    assert len(ok.images) == 2 and ok.cost_usd == pytest.approx(COST)
    assert isinstance(failed, ProviderError) and failed.outcome is Outcome.SERVER_ERROR
    assert failed.cost_usd == pytest.approx(COST)
    assert isinstance(reset, ProviderError) and reset.outcome is Outcome.CONNECTION_ERROR
    assert submissions(emu) == 3


# ------------------------------------------------------------------ wire-level mapping


def _response(status: int, body: Any = None, *, text: str | None = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("POST", "https://cloud.leonardo.ai/api/rest/v1/generations")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(("response", "outcome", "code", "retry_after"), [
    (_response(401, {"error": "invalid key", "path": "$", "code": "invalid-jwt"}),
     "auth_error", "invalid-jwt", None),
    (_response(429, {"error": "slow down", "path": "$", "code": "rate-limit-exceeded"},
               headers={"retry-after": "12"}), "rate_limited", "rate-limit-exceeded", 12.0),
    (_response(429, {"error": "slow down"}), "rate_limited", None, None),
    (_response(402, {"error": "pay up", "path": "$", "code": "x"}), "quota_exhausted", "x",
     None),
    (_response(400, {"error": "You do not have enough API credits", "code": "unexpected"}),
     "quota_exhausted", "unexpected", None),
    (_response(400, {"error": "Insufficient token balance", "code": "unexpected"}),
     "quota_exhausted", "unexpected", None),
    (_response(400, {"error": "width must be a multiple of 8", "code": "validation-failed"}),
     "invalid_request", "validation-failed", None),
    (_response(400, [{"extensions": {"code": "bad-request",
                                     "details": {"message": "prompt is too long"}}}]),
     "invalid_request", "bad-request", None),
    (_response(400, {"error": "Content moderation filter triggered", "code": "unexpected"}),
     "content_policy", "unexpected", None),
    (_response(500, {"error": "internal error", "path": "$", "code": "unexpected"}),
     "server_error", "unexpected", None),
    (_response(503, text="<html><body>Service Unavailable</body></html>",
               headers={"content-type": "text/html", "retry-after": "3"}),
     "server_error", None, 3.0),
    (_response(404, {"error": "not found", "code": "not-found"}), "not_found", "not-found",
     None),
    (_response(302, text="", headers={"location": "https://elsewhere"}),
     "malformed_response", None, None),
])
def test_error_mapping(response, outcome, code, retry_after):
    err = error_from_response(response, "POST /generations")
    assert (err.outcome.value, err.provider_code, err.retry_after_s) == (
        outcome, code, retry_after)
    assert err.status_code == response.status_code


def test_hasura_message_reaches_the_attempt_message():
    err = error_from_response(
        _response(500, {"error": "internal error", "path": "$", "code": "unexpected"}), "poll")
    assert "internal error" in err.message and "500" in err.message


def test_an_api_key_echoed_in_an_error_body_is_redacted():
    secret = "leo-echoed-key-abcdef0123456789"
    LeonardoProvider(api_key=secret)  # registers the key for redaction
    err = error_from_response(_response(401, {"error": f"bad key {secret}"}), "POST")
    assert secret not in err.message and secret not in str(err)


@pytest.mark.parametrize(("job", "cost"), [
    ({"generationId": "g1", "apiCreditCost": 11}, 11 * 0.0015),
    ({"generationId": "g1", "apiCreditCost": 11, "cost": {"amount": "0.11",
                                                          "unit": "DOLLARS"}}, 0.11),
    ({"generationId": "g1", "cost": {"amount": "20", "unit": "CREDITS"}}, 20 * 0.0015),
    ({"generationId": "g1"}, None),
])
def test_cost_from_the_submission(job, cost):
    leo = LeonardoProvider(api_key=KEY)
    sub = parse_submission({"sdGenerationJob": job})
    got = leo._cost(sub.job)
    assert got == (pytest.approx(cost) if cost is not None else None)


@pytest.mark.parametrize("data", [
    {}, {"sdGenerationJob": {}}, {"sdGenerationJob": {"generationId": 5}},
    {"sdGenerationJob": {"generationId": "../../me"}}, [], "x",
])
def test_submission_without_a_usable_id_is_malformed(data):
    with pytest.raises(ProviderError) as info:
        parse_submission(data)
    assert info.value.outcome is Outcome.MALFORMED_RESPONSE


@pytest.mark.parametrize("data", [
    {}, {"generations_by_pk": {"id": "x"}}, {"generations_by_pk": "x"},
    {"generations_by_pk": {"status": "COMPLETE", "generated_images": [{"nsfw": False}]}},
    {"generations_by_pk": {"status": "COMPLETE", "generated_images": {"a": 1}}},
])
def test_unusable_poll_answers_are_malformed(data):
    with pytest.raises(ProviderError) as info:
        parse_generation(data)
    assert info.value.outcome is Outcome.MALFORMED_RESPONSE


def test_null_generation_is_none():
    assert parse_generation({"generations_by_pk": None}) is None


def test_html_200_and_truncated_json_via_mock_transport():
    answers = iter([
        httpx.Response(200, text="<!DOCTYPE html><html>Just a moment...</html>",
                       headers={"content-type": "text/html"}),
        httpx.Response(200, text='{"sdGenerationJob": {"generationId": "ab',
                       headers={"content-type": "application/json"}),
    ])
    leo = LeonardoProvider(api_key=KEY, transport=httpx.MockTransport(
        lambda request: next(answers)))
    codes = []
    for _ in range(2):
        with pytest.raises(ProviderError) as info:
            asyncio.run(leo.generate(REQ, timeout=5))
        assert info.value.outcome is Outcome.MALFORMED_RESPONSE
        assert info.value.cost_usd is None  # no job id, nothing known to be billed
        codes.append(info.value.provider_code)
    assert codes == ["html_body", "invalid_json"]


def test_connection_refused_is_connection_error():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    leo = LeonardoProvider(api_key=KEY, transport=httpx.MockTransport(refuse))
    with pytest.raises(ProviderError) as info:
        asyncio.run(leo.generate(REQ, timeout=5))
    assert info.value.outcome is Outcome.CONNECTION_ERROR
