"""One named test per finding of issue 16 ("Why"), each replaying the real vendor answer that
showed it (``tests/corpus``) through the real adapter inside ``Chain([adapter, next])``, plus
the unit behind it; and the request-fault policy row with its knob."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
import pytest
from google.genai import types
from replay_helpers import CORPUS, FrozenClock, Replay, load, replay

from fallback_chain import Chain, ImageRequest, Outcome, Policy
from fallback_chain.errors import ChainError, ConfigurationError, ContentPolicyError, ProviderError
from fallback_chain.providers.fake import FakeProvider
from fallback_chain.providers.gemini.adapter import DEFAULT_API_VERSION, GeminiProvider
from fallback_chain.providers.gemini.parse import read_response
from fallback_chain.providers.openai.wire import error_from_status, retry_after_from_message
from fallback_chain.routing import ChainStoppedError


def run_file(name: str, loopback: Any) -> tuple[dict[str, Any], Replay]:
    case = load(CORPUS / f"{name}.json")
    server, base = loopback
    return case, replay(case, server, base)


def vendor_attempts(run: Replay) -> list[Any]:
    attempts = (run.result or run.error).attempts  # type: ignore[union-attr]
    return [a for a in attempts if a.provider != "next"]


def test_leonardo_moderation_sent_as_403_stops_and_is_not_auth_error(loopback):
    for name in ("leonardo/moderation-403-inappropriate-prompt",
                 "leonardo/moderation-403-filter-naked"):
        case, run = run_file(name, loopback)
        assert isinstance(run.error, ContentPolicyError), run.error
        assert [a.outcome for a in vendor_attempts(run)] == [Outcome.CONTENT_POLICY]
        assert run.error.reason and case["expected"]["reason_contains"] in run.error.reason
        assert run.cooldowns == []  # Leonardo is not kept out for everyone for an hour


def test_openai_billing_hard_limit_sent_as_400_is_quota_exhausted_with_long_cooldown(loopback):
    for name in ("openai/billing-hard-limit-400-powershellai",
                 "openai/billing-hard-limit-400-aiwallpaper"):
        _, run = run_file(name, loopback)
        assert [a.outcome for a in vendor_attempts(run)] == [Outcome.QUOTA_EXHAUSTED]
        assert run.result is not None and run.result.provider == "next"
        assert [c.seconds for c in run.cooldowns] == [3600.0]
    err = error_from_status(400, {"message": "Billing hard limit has been reached",
                                  "type": "invalid_request_error",
                                  "code": "billing_hard_limit_reached"}, {})
    assert err.outcome is Outcome.QUOTA_EXHAUSTED and err.retry_after_s is None


def test_openai_try_again_after_seconds_sets_the_cooldown(loopback):
    _, run = run_file("openai/rate-limit-429-try-again-after-51s", loopback)
    [attempt] = vendor_attempts(run)
    assert attempt.outcome is Outcome.RATE_LIMITED and attempt.retry_after_s == 51.84
    assert [c.seconds for c in run.cooldowns] == [pytest.approx(51.84)]
    assert retry_after_from_message("please slow down and try again after 51.84 seconds.") \
        == 51.84
    assert retry_after_from_message("Please try again in 1m30s.") == 90.0
    assert retry_after_from_message("Please try again in 250ms.") == 0.25


def test_gemini_finish_message_is_kept_though_the_sdk_drops_it(loopback):
    case, run = run_file("gemini/image-prohibited-content-finishmessage-support-code", loopback)
    assert isinstance(run.error, ContentPolicyError)
    assert "Support code: 42876398" in run.error.reason
    case, run = run_file("gemini/image-other-finishmessage", loopback)
    attempts = vendor_attempts(run)
    assert [a.outcome for a in attempts] == [Outcome.MALFORMED_RESPONSE] * 2  # retried once
    assert all("Unable to show the generated image" in (a.message or "") for a in attempts)
    # why the adapter reads the raw body: google-genai's own converter (the path every
    # non-raw call takes) leaves Candidate.finish_message empty
    from google.genai.models import _GenerateContentResponse_from_mldev

    body = case["response"]["body"]
    converted = types.GenerateContentResponse._from_response(
        response=_GenerateContentResponse_from_mldev(body, None, None), kwargs={})
    assert converted.candidates and converted.candidates[0].finish_message is None
    with pytest.raises(ProviderError) as info:
        asyncio.run(read_response(body, lambda usage: None))
    assert "Unable to show the generated image" in info.value.message


def test_leonardo_authorization_hook_500_is_auth_error_and_not_retried(loopback):
    _, run = run_file("leonardo/auth-hook-invalid-key-500", loopback)
    assert [a.outcome for a in vendor_attempts(run)] == [Outcome.AUTH_ERROR]  # one call only
    assert sum(1 for e, _, _ in run.script.seen if e == "submit") == 1
    assert [c.seconds for c in run.cooldowns] == [3600.0]
    assert run.result is not None and run.result.provider == "next"


def test_gemini_429_with_only_a_help_link_is_a_daily_cap_not_a_rate_limit(loopback):
    for name in ("gemini/daily-cap-429-help-link-only",
                 "gemini/free-tier-limit-0-429-message-only",
                 "gemini/free-tier-limit-0-with-retry-in"):
        _, run = run_file(name, loopback)
        assert [a.outcome for a in vendor_attempts(run)] == [Outcome.QUOTA_EXHAUSTED], name
        assert [c.seconds for c in run.cooldowns] == [3600.0], name
    # a 429 with nothing at all still is an ordinary rate limit (default cooldown)
    _, run = run_file("gemini/resource-exhausted-429-no-details-image", loopback)
    assert [a.outcome for a in vendor_attempts(run)] == [Outcome.RATE_LIMITED]
    assert [c.seconds for c in run.cooldowns] == [30.0]


def test_gemini_api_version_defaults_to_v1beta_and_is_an_option(loopback, write, monkeypatch):
    from fallback_chain.config import load_config

    monkeypatch.setenv("GEMINI_API_KEY", "k" * 8)
    assert DEFAULT_API_VERSION == "v1beta"
    assert GeminiProvider(api_key="k" * 8).api_version == "v1beta"
    assert GeminiProvider(api_key="k" * 8, api_version="v1").api_version == "v1"
    assert GeminiProvider(api_key="k" * 8, base_url="http://h/v1").api_version == "v1"
    with pytest.raises(ConfigurationError):
        GeminiProvider(api_key="k" * 8, api_version="beta")
    _, run = run_file("gemini/prompt-blocked-prohibited-content-vercel", loopback)
    assert run.script.seen[0][2].startswith("/v1beta/models/")
    path = write("""
        [[chains.main.providers]]
        vendor = "gemini"
        options = { api_version = "v1" }
    """)
    [provider] = load_config(path).providers()
    assert isinstance(provider, GeminiProvider) and provider.api_version == "v1"


def test_v1_rejecting_response_modalities_is_an_invalid_request_that_advances(loopback):
    _, run = run_file("gemini/v1-rejects-responsemodalities-400", loopback)
    assert [a.outcome for a in vendor_attempts(run)] == [Outcome.INVALID_REQUEST]
    assert run.result is not None and run.result.provider == "next"


def test_emulator_serves_gemini_on_v1_and_v1beta() -> None:
    from fallback_chain.emulator import Emulator

    emu = Emulator(api_keys="k" * 8)

    async def go(version: str) -> int:
        async with httpx2.AsyncClient(transport=emu.httpx2_transport(),
                                      base_url="http://emulator.test") as client:
            r = await client.post(f"/{version}/models/gemini-2.5-flash-image:generateContent",
                                  headers={"x-goog-api-key": "k" * 8},
                                  json={"contents": [{"parts": [{"text": "x"}]}],
                                        "generationConfig": {"responseModalities": ["IMAGE"]}})
            return r.status_code

    assert asyncio.run(go("v1beta")) == 200
    assert asyncio.run(go("v1")) == 200


# --------------------------------------------------------------- the request-fault policy row


def _run(chain: Chain) -> tuple[Any, ChainError | None]:
    async def go() -> tuple[Any, ChainError | None]:
        try:
            return await chain.agenerate(ImageRequest(prompt="x")), None
        except ChainError as exc:
            return None, exc
        finally:
            await chain.aclose()

    return asyncio.run(go())


class _Refuses(FakeProvider):
    """A provider whose every call ends in one ``ProviderError``."""

    def __init__(self, name: str, error: ProviderError, clock: FrozenClock) -> None:
        super().__init__(name, clock=clock)
        self._error = error

    async def generate(self, request: ImageRequest, *, timeout: float) -> Any:
        self.calls += 1
        raise self._error


def test_request_fault_stops_by_default_and_advances_when_configured():
    fault = ProviderError(Outcome.INVALID_REQUEST, 'expecting a value for non-nullable '
                          'variable: "prompt"', status_code=400, request_fault=True)
    vendor_only = ProviderError(Outcome.INVALID_REQUEST, "invalid dimensions", status_code=400)
    for error, policy, stops in ((fault, Policy(), True),
                                 (fault, Policy(on_request_fault="advance"), False),
                                 (vendor_only, Policy(), False)):
        clock = FrozenClock()
        first, nxt = _Refuses("first", error, clock), FakeProvider("next", clock=clock)
        result, err = _run(Chain([first, nxt], policy=policy, clock=clock, log=False))
        if stops:
            assert isinstance(err, ChainStoppedError) and "non-nullable" in str(err)
            assert nxt.calls == 0
        else:
            assert result is not None and result.provider == "next" and nxt.calls == 1
        assert first.calls == 1


def test_request_fault_flag_only_marks_invalid_request_and_policy_validates_the_knob():
    assert not ProviderError(Outcome.SERVER_ERROR, "x", request_fault=True).request_fault
    with pytest.raises(ConfigurationError):
        Policy(on_request_fault="maybe")  # type: ignore[arg-type]
    assert Policy().rule(Outcome.INVALID_REQUEST, request_fault=True).stop
    assert not Policy(on_request_fault="advance").rule(
        Outcome.INVALID_REQUEST, request_fault=True).stop
    assert not Policy().rule(Outcome.INVALID_REQUEST).stop


def test_request_fault_knob_in_a_config_file(write):
    from fallback_chain.config import load_config

    path = write("""
        [chains.main]
        policy = { on_request_fault = "advance" }

        [[chains.main.providers]]
        vendor = "gemini"
    """)
    assert load_config(path).policy().on_request_fault == "advance"


@pytest.mark.parametrize("name", ["leonardo/prompt-missing-validation-failed"])
def test_corpus_request_fault_stops_the_chain(name: str, loopback):
    case, run = run_file(name, loopback)
    assert case["expected"].get("request_fault") is True
    assert isinstance(run.error, ChainStoppedError)
    assert [a.outcome for a in vendor_attempts(run)] == [Outcome.INVALID_REQUEST]


def test_every_why_file_exists() -> None:
    for name in ("leonardo/moderation-403-inappropriate-prompt",
                 "openai/billing-hard-limit-400-powershellai",
                 "openai/rate-limit-429-try-again-after-51s",
                 "gemini/image-other-finishmessage",
                 "leonardo/auth-hook-invalid-key-500",
                 "gemini/daily-cap-429-help-link-only",
                 "gemini/v1-rejects-responsemodalities-400"):
        assert Path(CORPUS / f"{name}.json").is_file(), name
