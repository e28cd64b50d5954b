"""fal.ai adapter against the emulated queue API (in-process, virtual time): submit → status →
result → download, the faults the chain must tell apart (429, 5xx, refusal, NSFW flags,
timeout with cancel, expired URLs), the error table, and the URL checks."""

from __future__ import annotations

import httpx
import pytest
from job_helpers import Harness, run_chain

from fallback_chain import ImageRequest, Outcome
from fallback_chain.errors import ConfigurationError, ContentPolicyError, ProviderError
from fallback_chain.providers.fake import FakeProvider
from fallback_chain.providers.fal import DEFAULT_MODEL, FalProvider
from fallback_chain.providers.fal.wire import error_from_answer
from fallback_chain.providers.jobs import ErrorAnswer
from fallback_chain.vtime import VirtualClock, run_virtual

KEY = "fal-test-key"
PROMPT = "a lighthouse at dusk"
#: fal answers after 5 ms and completes requests after 3 s (virtual).
FAL = Harness("fal", FalProvider, KEY, "http://emulator.test/fal", job_delay_s=3.0)
emulator, provider, calls = FAL.emulator, FAL.provider, FAL.calls
REQ = ImageRequest(prompt=PROMPT, n=2, size="1024x768")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def backup(clock: VirtualClock) -> FakeProvider:
    return FakeProvider("backup", clock=clock)


def test_submit_poll_result_download_two_images(clock):
    emu = emulator(clock=clock)
    fal = provider(emu, clock)
    result, error = run_chain([fal, backup(clock)], REQ, clock=clock)
    assert error is None and result is not None
    assert result.provider == "fal" and fal.key == "fal/fal-ai/flux/schnell"
    assert [(i.width, i.height, i.mime_type) for i in result.images] == \
        [(1024, 768, "image/jpeg")] * 2
    [attempt] = result.attempts
    assert attempt.outcome is Outcome.SUCCESS
    assert attempt.cost_usd == pytest.approx(2 * 0.003)
    assert attempt.latency_s >= 3.0  # the request took 3 s (virtual) to complete
    [submit] = emu.requests(vendor="fal", endpoint="generate")
    assert submit.path == "/fal/fal-ai/flux/schnell"
    assert submit.params == {"prompt": PROMPT, "image_size": "landscape_4_3", "num_images": 2,
                             "output_format": "jpeg", "enable_safety_checker": True,
                             "sync_mode": False}
    # polled on the app's path (owner/app only), then the result, then two downloads
    polls = [e.path for e in emu.requests(vendor="fal", endpoint="poll")]
    assert polls[-1].startswith("/fal/fal-ai/flux/requests/") and polls[-2].endswith("/status")


def test_authorization_is_key_scheme_and_a_bad_key_is_auth_error(clock):
    emu = emulator(clock=clock)
    fal = provider(emu, clock, api_key="wrong")
    result, _error = run_chain([fal, backup(clock)], REQ, clock=clock)
    assert result is not None and result.provider == "backup"
    assert result.attempts[0].outcome is Outcome.AUTH_ERROR
    assert "Authentication is required" in (result.attempts[0].message or "")


def test_429_advances_with_retry_after_cooldown(clock):
    emu = emulator("429", clock=clock, retry_after=12, retry_after_format="seconds")
    events: list = []
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock,
                          on_event=events.append)
    assert result is not None and result.provider == "backup"
    assert result.attempts[0].outcome is Outcome.RATE_LIMITED
    cooldowns = [e for e in events if type(e).__name__ == "CooldownStarted"]
    assert [c.seconds for c in cooldowns] == [12]
    assert calls(emu) == 1


def test_5xx_is_retried_once_then_advances(clock):
    emu = emulator("500,500", clock=clock)
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock)
    assert result is not None and result.provider == "backup"
    assert [a.outcome for a in result.attempts[:2]] == [Outcome.SERVER_ERROR] * 2
    assert calls(emu) == 2


def test_content_policy_violation_stops_the_chain(clock):
    emu = emulator("policy", clock=clock)
    spare = backup(clock)
    result, error = run_chain([provider(emu, clock), spare], REQ, clock=clock)
    assert result is None and isinstance(error, ContentPolicyError)
    assert "flagged by a content checker" in error.reason
    assert spare.calls == 0 and calls(emu) == 1


def test_nsfw_flags_in_the_result_stop_the_chain_and_nothing_is_downloaded(clock):
    emu = emulator("nsfw", clock=clock)
    spare = backup(clock)
    _result, error = run_chain([provider(emu, clock), spare], REQ, clock=clock)
    assert isinstance(error, ContentPolicyError) and spare.calls == 0
    assert error.categories == ["nsfw"]
    assert emu.log.count(endpoint="image") == 0


def test_a_stuck_request_times_out_is_cancelled_and_never_resubmitted(clock):
    emu = emulator("job_stuck", clock=clock)
    fal = provider(emu, clock)
    result, _ = run_chain([fal, backup(clock)], REQ, clock=clock, attempt_timeout_s=20.0)
    assert result is not None and result.provider == "backup"
    [attempt] = [a for a in result.attempts if a.provider == "fal"]
    assert attempt.outcome is Outcome.TIMEOUT
    assert "not resubmitted" in (attempt.message or "")
    assert calls(emu) == 1
    [cancel] = emu.requests(vendor="fal", endpoint="meta")
    assert cancel.method == "PUT" and cancel.path.endswith("/cancel")


def test_an_expired_result_url_is_malformed_and_retried_once(clock):
    emu = emulator("expired,expired", clock=clock)
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock)
    assert result is not None and result.provider == "backup"
    assert [a.outcome for a in result.attempts[:2]] == [Outcome.MALFORMED_RESPONSE] * 2


def test_status_urls_outside_the_api_are_refused_before_the_key_goes_there(clock):
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={
            "request_id": "abc", "status_url": "https://evil.example/status",
            "response_url": "https://evil.example/r", "cancel_url": "https://evil.example/c"})

    fal = FalProvider(api_key=KEY, clock=clock, transport=httpx.MockTransport(handler))
    with pytest.raises(ProviderError) as info:
        run_virtual(fal.generate(ImageRequest(prompt=PROMPT), timeout=30))
    assert info.value.provider_code == "url_not_allowed"
    assert [r.url.host for r in sent] == ["queue.fal.run"]
    assert sent[0].headers["authorization"] == f"Key {KEY}"


@pytest.mark.parametrize(("status", "body", "outcome"), [
    (403, {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at "
                     "fal.ai/dashboard/billing."}, Outcome.QUOTA_EXHAUSTED),
    (403, {"detail": "User is locked. Reason: Admin lock. Please contact support@fal.ai"},
     Outcome.AUTH_ERROR),
    (422, {"detail": [{"loc": ["body", "num_images"], "msg": "too many", "type": "x"}]},
     Outcome.INVALID_REQUEST),
    (422, {"detail": [{"loc": ["body", "prompt"], "type": "content_policy_violation",
                       "msg": "The content was flagged by a content checker.",
                       "categories": ["sexual"]}]}, Outcome.CONTENT_POLICY),
    (404, {"detail": "Application 'nope' not found"}, Outcome.NOT_FOUND),
    (502, None, Outcome.SERVER_ERROR),
])
def test_error_table(status, body, outcome):
    exc = error_from_answer(ErrorAnswer(status, {}, "" if body is None else str(body), body,
                                        "POST /x"))
    assert exc.outcome is outcome
    if outcome is Outcome.CONTENT_POLICY:
        assert exc.details["categories"] == ["sexual"]


def test_constructor_checks_and_defaults(monkeypatch):
    monkeypatch.setenv("FAL_KEY", "from-env")
    fal = FalProvider()
    assert (fal.model, fal.base_url, fal.key) == (DEFAULT_MODEL, "https://queue.fal.run",
                                                  "fal/fal-ai/flux/schnell")
    assert FalProvider(name="mine").key == "mine"
    with pytest.raises(ConfigurationError):
        FalProvider(output_format="gif")
    with pytest.raises(ConfigurationError):
        FalProvider(base_url="ftp://x")
    with pytest.raises(ConfigurationError):
        FalProvider(poll_interval_s=0)
    assert FalProvider().unsupported_reason(ImageRequest(prompt="x", n=5)) is not None


def test_check_is_a_free_probe_that_tells_a_bad_key(clock):
    emu = emulator(clock=clock)
    good = run_virtual(provider(emu, clock).check())
    bad = run_virtual(provider(emu, clock, api_key="wrong").check())
    assert good.ok and "404" in good.detail
    assert not bad.ok and "Authentication is required" in bad.detail
    assert emu.log.count(vendor="fal", endpoint="generate") == 0
