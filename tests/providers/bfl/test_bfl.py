"""Black Forest Labs adapter against the emulated API (in-process, virtual time): submit →
poll ``get_result`` → download, one task per image, the statuses and faults the chain must tell
apart (429, 5xx, Request/Content Moderated, Error, Task not found, timeout, expired URLs), the
error table and the polling-URL check."""

from __future__ import annotations

import httpx
import pytest
from job_helpers import Harness, run_chain

from fallback_chain import ImageRequest, Outcome
from fallback_chain.errors import ConfigurationError, ContentPolicyError, ProviderError
from fallback_chain.providers.bfl import DEFAULT_MODEL, BFLProvider
from fallback_chain.providers.bfl.wire import error_from_answer
from fallback_chain.providers.fake import FakeProvider
from fallback_chain.providers.jobs import ErrorAnswer
from fallback_chain.vtime import VirtualClock, run_virtual

KEY = "bfl-test-key"
PROMPT = "a lighthouse at dusk"
#: BFL answers after 5 ms and finishes tasks after 3 s (virtual).
BFL = Harness("bfl", BFLProvider, KEY, "http://emulator.test/bfl", job_delay_s=3.0)
emulator, provider, calls = BFL.emulator, BFL.provider, BFL.calls
REQ = ImageRequest(prompt=PROMPT, size="1024x768")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def backup(clock: VirtualClock) -> FakeProvider:
    return FakeProvider("backup", clock=clock)


def test_submit_poll_download_with_the_reported_cost(clock):
    emu = emulator(clock=clock)
    bfl = provider(emu, clock)
    result, error = run_chain([bfl, backup(clock)], REQ, clock=clock)
    assert error is None and result is not None
    assert result.provider == "bfl" and bfl.key == "bfl/flux-pro-1.1"
    assert (result.image.width, result.image.height, result.image.mime_type) == \
        (1024, 768, "image/jpeg")
    [attempt] = result.attempts
    assert attempt.outcome is Outcome.SUCCESS and attempt.latency_s >= 3.0
    assert attempt.cost_usd == pytest.approx(0.04)  # 4 credits reported at $0.01
    [submit] = emu.requests(vendor="bfl", endpoint="generate")
    assert submit.path == "/bfl/v1/flux-pro-1.1"
    assert submit.params == {"prompt": PROMPT, "width": 1024, "height": 768,
                             "output_format": "jpeg", "safety_tolerance": 2}
    polls = emu.requests(vendor="bfl", endpoint="poll")
    assert len(polls) >= 2 and all(p.path == "/bfl/v1/get_result" for p in polls)


def test_two_images_are_two_tasks_at_once_and_flux_2_sizes_are_multiples_of_16(clock):
    emu = emulator(clock=clock)
    bfl = provider(emu, clock, model="flux-2-pro")
    req = ImageRequest(prompt=PROMPT, n=2, size="1000x600", seed=7)
    result, _ = run_chain([bfl], req, clock=clock)
    assert result is not None and len(result.images) == 2
    subs = emu.requests(vendor="bfl", endpoint="generate")
    assert len(subs) == 2
    sent = sorted((s.params["width"], s.params["height"], s.params["seed"]) for s in subs)
    assert sent == [(992, 608, 7), (992, 608, 8)]  # multiples of 16; one seed per image
    assert result.images[0].sha256 != result.images[1].sha256
    assert result.attempts[0].cost_usd == pytest.approx(2 * 0.03)
    assert result.attempts[0].latency_s < 6.0  # in parallel, not one after the other


def test_429_advances_with_retry_after_cooldown(clock):
    emu = emulator("429", clock=clock, retry_after=7)
    events: list = []
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock,
                          on_event=events.append)
    assert result is not None and result.provider == "backup"
    assert result.attempts[0].outcome is Outcome.RATE_LIMITED
    assert [e.seconds for e in events if type(e).__name__ == "CooldownStarted"] == [7]


def test_5xx_is_retried_once_then_advances(clock):
    emu = emulator("502,503", clock=clock)
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock)
    assert result is not None and result.provider == "backup"
    assert [a.outcome for a in result.attempts[:2]] == [Outcome.SERVER_ERROR] * 2
    assert calls(emu) == 2


@pytest.mark.parametrize(("fault", "status"), [("policy", "Request Moderated"),
                                               ("moderated", "Content Moderated")])
def test_moderated_statuses_stop_the_chain(clock, fault, status):
    emu = emulator(fault, clock=clock)
    spare = backup(clock)
    result, error = run_chain([provider(emu, clock), spare], REQ, clock=clock)
    assert result is None and isinstance(error, ContentPolicyError)
    assert status in str(error) and spare.calls == 0
    assert error.categories == ["emulated moderation"]
    assert emu.log.count(endpoint="image") == 0


def test_error_status_is_a_server_error_with_the_billed_credits(clock):
    emu = emulator("job_failed,job_failed", clock=clock)
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock)
    assert result is not None and result.provider == "backup"
    failed = [a for a in result.attempts if a.provider == "bfl"]
    assert [a.outcome for a in failed] == [Outcome.SERVER_ERROR] * 2
    assert failed[0].cost_usd == pytest.approx(0.04)


def test_task_not_found_is_polled_through_then_malformed(clock):
    emu = emulator("task_not_found,task_not_found", clock=clock)
    result, _ = run_chain([provider(emu, clock, max_poll_failures=2), backup(clock)], REQ,
                          clock=clock)
    assert result is not None and result.provider == "backup"
    assert result.attempts[0].outcome is Outcome.MALFORMED_RESPONSE
    assert "Task not found" in (result.attempts[0].message or "")


def test_a_pending_task_times_out_and_is_not_resubmitted(clock):
    emu = emulator("job_stuck", clock=clock)
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock,
                          attempt_timeout_s=15.0)
    assert result is not None and result.provider == "backup"
    [attempt] = [a for a in result.attempts if a.provider == "bfl"]
    assert attempt.outcome is Outcome.TIMEOUT and "Pending" in (attempt.message or "")
    assert calls(emu) == 1


def test_an_expired_sample_url_is_malformed_and_retried_once(clock):
    emu = emulator("expired,expired", clock=clock)
    result, _ = run_chain([provider(emu, clock), backup(clock)], REQ, clock=clock)
    assert result is not None and result.provider == "backup"
    assert [a.outcome for a in result.attempts[:2]] == [Outcome.MALFORMED_RESPONSE] * 2


def test_a_failed_task_of_two_keeps_the_delivered_image(clock):
    emu = emulator("ok,job_failed,job_failed", clock=clock)
    spare = backup(clock)
    result, _ = run_chain([provider(emu, clock), spare],
                          ImageRequest(prompt=PROMPT, n=2, size="512x512"), clock=clock)
    assert result is not None and len(result.images) == 2
    assert spare.calls == 1  # asked only for the image BFL did not deliver
    assert sum(1 for a in result.attempts if a.provider == "bfl") == 2  # retried once


def test_polling_urls_outside_bfl_are_refused_before_the_key_goes_there(clock):
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"id": "t1",
                                         "polling_url": "https://evil.example/v1/get_result"})

    bfl = BFLProvider(api_key=KEY, clock=clock, transport=httpx.MockTransport(handler))
    with pytest.raises(ProviderError) as info:
        run_virtual(bfl.generate(ImageRequest(prompt=PROMPT), timeout=30))
    assert info.value.provider_code == "url_not_allowed"
    assert [str(r.url) for r in sent] == ["https://api.bfl.ai/v1/flux-pro-1.1"]
    assert sent[0].headers["x-key"] == KEY


@pytest.mark.parametrize(("status", "body", "outcome"), [
    (402, {"detail": "Insufficient credits"}, Outcome.QUOTA_EXHAUSTED),
    (403, {"detail": "Not authenticated - Invalid Authentication"}, Outcome.AUTH_ERROR),
    (422, {"detail": [{"loc": ["body", "width"], "msg": "must be a multiple of 32",
                       "type": "value_error"}]}, Outcome.INVALID_REQUEST),
    (400, {"detail": "Request was moderated"}, Outcome.CONTENT_POLICY),
    (429, {"detail": "Too many active tasks"}, Outcome.RATE_LIMITED),
    (500, None, Outcome.SERVER_ERROR),
])
def test_error_table(status, body, outcome):
    exc = error_from_answer(ErrorAnswer(status, {}, "" if body is None else str(body), body,
                                        "POST /v1/flux-pro-1.1"))
    assert exc.outcome is outcome


def test_constructor_checks_and_defaults(monkeypatch):
    monkeypatch.setenv("BFL_API_KEY", "from-env")
    bfl = BFLProvider()
    assert (bfl.model, bfl.base_url, bfl.key) == (DEFAULT_MODEL, "https://api.bfl.ai",
                                                  "bfl/flux-pro-1.1")
    for bad in ({"safety_tolerance": 9}, {"output_format": "webp"}, {"model": "a/b"},
                {"base_url": "https://u:p@api.bfl.ai"}):
        with pytest.raises(ConfigurationError):
            BFLProvider(**bad)


def test_check_reads_the_credit_balance_and_tells_a_bad_key(clock):
    emu = emulator(clock=clock)
    good = run_virtual(provider(emu, clock).check())
    bad = run_virtual(provider(emu, clock, api_key="wrong").check())
    assert good.ok and "1,000.00 credits" in good.detail
    assert not bad.ok and "Not authenticated" in bad.detail
    assert emu.log.count(vendor="bfl", endpoint="generate") == 0
