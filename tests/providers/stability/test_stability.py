"""Stability AI adapter against the emulated Stable Image API: the form it sends, both answer
shapes, every fault the emulator produces for Stability and what the chain does with it.

In-process on virtual time (``fallback_chain.vtime``), except one test over a real loopback
server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from job_helpers import Harness, run_chain

from fallback_chain import ImageRequest, Outcome
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.errors import ConfigurationError, ContentPolicyError
from fallback_chain.providers.fake import FakeProvider
from fallback_chain.providers.stability import StabilityProvider
from fallback_chain.providers.stability.cost import (
    cost_from_stability_credits,
    stability_model_credits,
)
from fallback_chain.providers.stability.wire import error_from_answer, read_answer
from fallback_chain.vtime import VirtualClock

KEY = "st-test-key"
BASE = "http://emulator.test"
REQ = ImageRequest(prompt="a lighthouse at dusk", size="16:9")
STABILITY = Harness("stability", StabilityProvider, KEY, BASE)
emulator, provider = STABILITY.emulator, STABILITY.provider


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


# ------------------------------------------------------------------------- the happy path


@pytest.mark.parametrize("accept", ["image", "json"])
def test_one_multipart_call_one_verified_image_and_its_credit_cost(clock, accept):
    emu = emulator(clock=clock)
    result, error = run_chain([provider(emu, clock, accept=accept)], REQ, clock=clock)
    assert error is None and result is not None
    assert (result.provider, result.model) == ("stability", "stable-image-core")
    assert (result.image.mime_type, result.image.width, result.image.height) == (
        "image/png", 1344, 768)  # 16:9 at about one megapixel
    [attempt] = result.attempts
    assert attempt.outcome is Outcome.SUCCESS and attempt.cost_source == "reported"
    assert attempt.cost_usd == pytest.approx(0.03)  # Core: 3 credits at $0.01
    assert result.usage is not None and result.usage["credits"] == 3
    [call] = emu.requests(vendor="stability")
    assert call.path == "/v2beta/stable-image/generate/core"
    assert call.params == {"prompt": REQ.prompt, "aspect_ratio": "16:9",
                           "output_format": "png"}


def test_sd3_models_name_themselves_on_the_sd3_endpoint_and_options_fill_the_form(clock):
    emu = emulator(clock=clock)
    st = provider(emu, clock, model="sd3.5-large", extra_fields={"cfg_scale": 5, "prompt": "x"})
    req = ImageRequest(prompt="a fox", size="1024x1536", negative_prompt="blur", seed=7,
                       output_format="jpeg")
    result, _ = run_chain([st], req, clock=clock)
    assert result is not None and result.image.mime_type == "image/jpeg"
    assert result.attempts[0].cost_usd == pytest.approx(0.065)
    [call] = emu.requests(vendor="stability")
    assert call.path == "/v2beta/stable-image/generate/sd3"
    assert call.params == {"prompt": "a fox", "aspect_ratio": "2:3", "output_format": "jpeg",
                           "model": "sd3.5-large", "negative_prompt": "blur", "seed": "7",
                           "cfg_scale": "5"}
    assert result.usage is not None and result.usage["seed"] == 7


def test_estimate_and_reported_cost_agree_with_the_catalogue(clock):
    emu = emulator(clock=clock)
    ultra = provider(emu, clock, model="stable-image-ultra")
    assert ultra.estimate_cost(REQ) == pytest.approx(0.08)
    assert stability_model_credits("stable-image-ultra") == 8
    assert cost_from_stability_credits(6.5) == pytest.approx(0.065)
    assert cost_from_stability_credits(10, usd_per_credit=0.02) == pytest.approx(0.2)


# ------------------------------------------------------------------ the fault table

R, N, E = "reported", "none", "estimated"
# script -> (attempts [(outcome, status, provider_code, cost source)], calls, winner)
FAULTS: list[tuple[Any, list[tuple[str, int | None, str | None, str]], int, Any]] = [
    ("content_filtered", [("content_policy", 200, "CONTENT_FILTERED", N)], 1,
     ContentPolicyError),
    ("moderated", [("content_policy", 403, "content_moderation", N)], 1, ContentPolicyError),
    ("policy", [("content_policy", 403, "content_moderation", N)], 1, ContentPolicyError),
    ("quota", [("quota_exhausted", 402, "payment_required", N)], 1, "backup"),
    ("auth", [("auth_error", 401, "unauthorized", N)], 1, "backup"),
    ("400", [("invalid_request", 400, "bad_request", N)], 1, "backup"),
    ("429", [("rate_limited", 429, "rate_limit_exceeded", N)], 1, "backup"),
    ("500,500", [("server_error", 500, "internal_error", N)] * 2, 2, "backup"),
    ("503,ok", [("server_error", 503, "error", N), ("success", None, None, R)], 2,
     "stability"),
    ("html,html", [("malformed_response", 200, "html_body", N)] * 2, 2, "backup"),
    ("bad_image,bad_image", [("malformed_response", 200, "bad_image", N)] * 2, 2, "backup"),
    ("unknown_finish,unknown_finish", [("malformed_response", 200, "ERROR", N)] * 2, 2,
     "backup"),
    ("reset,reset", [("connection_error", None, None, N)] * 2, 2, "backup"),
    ("cut,cut", [("connection_error", None, None, N)] * 2, 2, "backup"),
    ("truncated,truncated", [("malformed_response", 200, "bad_image", N)] * 2, 2, "backup"),
    ("overloaded,ok", [("server_error", 503, "error", N), ("success", None, None, R)], 2,
     "stability"),
    ("hang", [("timeout", None, None, E)], 1, "backup"),
]


@pytest.mark.parametrize(("script", "expected", "calls", "winner"), FAULTS,
                         ids=[str(f[0]) for f in FAULTS])
def test_fault_through_the_chain(clock, script, expected, calls, winner):
    emu = emulator(script, clock=clock)
    spare = FakeProvider("backup", clock=clock)
    result, error = run_chain([provider(emu, clock), spare], REQ, clock=clock)
    attempts = (result or error).attempts  # type: ignore[union-attr]
    mine = [a for a in attempts if a.provider == "stability"]
    got = [(a.outcome.value, a.status_code, a.provider_code, a.cost_source) for a in mine]
    assert got == expected
    assert emu.log.count(vendor="stability", endpoint="generate") == calls
    for a in mine:
        assert KEY not in (a.message or "")
    if isinstance(winner, str):
        assert result is not None and result.provider == winner
    else:
        assert isinstance(error, winner)
        assert not [a for a in attempts if a.provider == "backup"]  # the prompt stopped here


def test_truncated_json_answer_is_malformed(clock):
    emu = emulator("truncated", clock=clock)
    result, _ = run_chain([provider(emu, clock, accept="json"), FakeProvider("b", clock=clock)],
                          REQ, clock=clock)
    assert result is not None
    assert result.attempts[0].provider_code == "invalid_json"


def test_rate_limit_honours_retry_after_when_sent(clock):
    emu = emulator("429", clock=clock, retry_after=12, retry_after_format="seconds")
    result, _ = run_chain([provider(emu, clock), FakeProvider("b", clock=clock)], REQ,
                          clock=clock)
    assert result is not None
    assert (result.attempts[0].outcome, result.attempts[0].retry_after_s) == (
        Outcome.RATE_LIMITED, 12.0)


def test_refusal_keeps_stabilitys_reason(clock):
    emu = emulator("moderated", clock=clock)
    _, error = run_chain([provider(emu, clock)], REQ, clock=clock)
    assert isinstance(error, ContentPolicyError)
    assert "flagged by our content moderation system" in error.reason
    assert error.categories == ["moderation"]


# ---------------------------------------------------------------- the wire, directly


@pytest.mark.parametrize(("status", "body", "outcome", "code"), [
    (403, {"errors": ["x"], "id": "1", "name": "content_moderation"}, "content_policy",
     "content_moderation"),
    (400, {"errors": ["Your prompt was flagged"], "id": "1", "name": "bad_request"},
     "content_policy", "bad_request"),
    (402, {"errors": ["You lack sufficient credits"], "id": "1", "name": "payment_required"},
     "quota_exhausted", "payment_required"),
    (401, {"errors": ["missing authorization header"], "id": "1", "name": "unauthorized"},
     "auth_error", "unauthorized"),
    (404, {"errors": ["not found"], "id": "1", "name": "not_found"}, "not_found", "not_found"),
    (413, {"errors": ["too big"], "id": "1", "name": "payload_too_large"}, "invalid_request",
     "payload_too_large"),
    (502, "<html><body>Bad gateway</body></html>", "server_error", None),
])
def test_error_mapping(status, body, outcome, code):
    import json

    text = body if isinstance(body, str) else json.dumps(body)
    err = error_from_answer(status, {}, text, "POST")
    assert (err.outcome.value, err.provider_code) == (outcome, code)


def test_a_200_that_is_neither_image_nor_json_is_malformed():
    with pytest.raises(Exception, match="neither an image nor JSON") as info:
        read_answer(200, {"content-type": "text/plain"}, b"hello")
    assert info.value.outcome is Outcome.MALFORMED_RESPONSE  # type: ignore[attr-defined]


def test_constructor_checks_and_key_from_the_environment(monkeypatch):
    monkeypatch.delenv("STABILITY_API_KEY", raising=False)
    monkeypatch.delenv("STABILITY_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="STABILITY_API_KEY or STABILITY_KEY"):
        StabilityProvider()
    monkeypatch.setenv("STABILITY_KEY", "from-env")
    assert StabilityProvider()._key == "from-env"
    with pytest.raises(ConfigurationError, match="accept"):
        StabilityProvider(api_key="k", accept="xml")
    with pytest.raises(ConfigurationError, match="credentials"):
        StabilityProvider(api_key="k", base_url="https://u:p@api.stability.ai")
    st = StabilityProvider(api_key="k", base_url="http://h:1/v2beta/stable-image/generate/")
    assert st.base_url == "http://h:1"


# ------------------------------------------------------------------ over real loopback


def test_over_a_real_loopback_server_check_then_generate():
    emu = Emulator(api_keys=KEY, faults={"stability": {"script": "ok,moderated"}})
    with serve_in_thread(emu) as base_url:
        st = StabilityProvider(api_key=KEY, base_url=base_url, model="stable-image-ultra")

        async def go() -> list[Any]:
            out: list[Any] = [await st.check()]
            out.append(await st.generate(REQ, timeout=10))
            try:
                await st.generate(REQ, timeout=10)
            except Exception as exc:  # the refusal
                out.append(exc)
            bad = StabilityProvider(api_key="wrong", base_url=base_url)
            out.append(await bad.check())
            await st.aclose()
            await bad.aclose()
            return out

        import asyncio

        check, reply, refused, bad_check = asyncio.run(go())
    assert check.ok and "1,000.00 credits" in check.detail
    assert reply.cost_usd == pytest.approx(0.08) and reply.images[0].width == 1344
    assert refused.outcome is Outcome.CONTENT_POLICY
    assert not bad_check.ok and "401" in bad_check.detail
    # the form really went as multipart
    posts = [e for e in emu.requests(vendor="stability") if e.endpoint == "generate"]
    assert posts[0].path.endswith("/ultra") and posts[0].params["aspect_ratio"] == "16:9"


def test_the_api_refuses_a_form_that_is_not_multipart():
    emu = Emulator(api_keys=KEY)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=emu.httpx_transport(), base_url=BASE) as c:
            return await c.post("/v2beta/stable-image/generate/core", data={"prompt": "x"},
                                headers={"authorization": f"Bearer {KEY}"})

    import asyncio

    answer = asyncio.run(go())
    assert answer.status_code == 400
    assert answer.json()["errors"] == ["content-type: must be multipart/form-data"]


def test_every_fault_kind_of_the_emulated_api_is_in_the_table():
    from fallback_chain.emulator.faults import STATUS_ALIASES, VENDOR_KINDS

    covered = {k.strip() for f in FAULTS for k in str(f[0]).split(",")}
    assert VENDOR_KINDS["stability"] - set(STATUS_ALIASES) - covered == set()


# ------------------------------------------------------------------ n images, n calls


def test_n_images_are_n_calls_at_once_with_seeds_offset(clock):
    emu = emulator(clock=clock)
    req = ImageRequest(prompt="a fox", n=3, seed=40)
    result, _ = run_chain([provider(emu, clock)], req, clock=clock)
    assert result is not None and len(result.images) == 3
    assert len({i.sha256 for i in result.images}) == 3
    assert result.attempts[0].cost_usd == pytest.approx(3 * 0.03)
    calls = emu.requests(vendor="stability", endpoint="generate")
    assert sorted(c.params["seed"] for c in calls if c.params) == ["40", "41", "42"]
    assert len({round(c.time, 3) for c in calls}) == 1  # at once, not one after another


def test_a_failed_call_among_n_keeps_the_delivered_images(clock):
    emu = emulator("ok,500", clock=clock)
    spare = FakeProvider("backup", clock=clock)
    result, _ = run_chain([provider(emu, clock), spare], ImageRequest(prompt="a fox", n=2),
                          clock=clock)
    assert result is not None and len(result.images) == 2
    first = result.attempts[0]
    assert (first.provider, first.outcome) == ("stability", Outcome.SERVER_ERROR)
    assert first.cost_usd == pytest.approx(0.03)  # the delivered image was paid for
    assert [o.provider for o in result.origins].count("stability") >= 1


def test_a_refusal_of_one_call_among_n_stops_the_chain(clock):
    emu = emulator("ok,moderated", clock=clock)
    spare = FakeProvider("backup", clock=clock)
    _, error = run_chain([provider(emu, clock), spare], ImageRequest(prompt="x", n=2),
                         clock=clock)
    assert isinstance(error, ContentPolicyError)
    assert not [a for a in error.attempts if a.provider == "backup"]
