"""OpenAIProvider through the official ``openai`` SDK against the emulator.

Most tests run the emulator in-process (``httpx2`` transport for the SDK, ``httpx`` transport for
DALL-E link downloads); a few go over a real loopback server. Each fault the emulator can
produce for OpenAI is run through a ``Chain`` and checked on the recorded ``Attempt`` and on the
emulator's request log (how many calls the vendor saw).
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import subprocess
import sys
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import httpx2
import pytest
from PIL import Image

from fallback_chain import Chain, ImageRequest, Outcome, Policy
from fallback_chain.clock import FastForwardClock
from fallback_chain.cost.usage import cost_from_openai_usage
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.emulator import faults as emulator_faults
from fallback_chain.errors import (
    ChainExhaustedError,
    ConfigurationError,
    ContentPolicyError,
    ProviderError,
    RequestValidationError,
)
from fallback_chain.imaging import inspect_image, placeholder_image
from fallback_chain.providers import FakeProvider, OpenAIProvider, catalogue
from fallback_chain.providers.catalogue import ModelLifecycleWarning
from fallback_chain.providers.openai.masks import mask_to_png
from fallback_chain.providers.openai.wire import error_from_status, retry_after_from_message

#: A date before the catalogue's shutdown of the legacy models these tests still call on the
#: emulator (dall-e-2/-3 on 2026-05-12, gpt-image-1 on 2026-10-23, gpt-image-1.5 and -1-mini
#: on 2026-12-01): a chain skips a model shut down on its clock's date without calling it.
LEGACY = datetime(2026, 5, 1, tzinfo=UTC).timestamp()

pytestmark = pytest.mark.filterwarnings(
    "ignore::fallback_chain.providers.catalogue.ModelLifecycleWarning")

KEY = "test-key"
BASE = "http://emulator.test"
PROMPT = "a lighthouse at dusk"

#: Token prices from providers/openai/models.json (USD per 1M tokens).
RATES = {"gpt-image-1.5": {"text_in": 5.0, "image_in": 8.0, "image_out": 32.0},
         "gpt-image-2": {"text_in": 5.0, "image_in": 8.0, "image_out": 30.0}}


def text_tokens(prompt: str) -> int:
    """The emulator's tokenizer: one token per four characters."""
    return max(1, math.ceil(len(prompt) / 4))


def usage_cost(model: str, prompt: str, out_tokens: int, image_in: int = 0) -> float:
    r = RATES[model]
    return (text_tokens(prompt) * r["text_in"] + image_in * r["image_in"]
            + out_tokens * r["image_out"]) / 1e6


class Harness:
    """Providers wired to one emulator in-process; closes every client it made."""

    def __init__(self, emu: Emulator, base: str = BASE, in_process: bool = True) -> None:
        self.emu = emu
        self.base = base
        self.in_process = in_process
        self.providers: list[OpenAIProvider] = []
        self.clients: list[httpx.AsyncClient | httpx2.AsyncClient] = []

    def provider(self, model: str = "gpt-image-1.5", **kw: Any) -> OpenAIProvider:
        kw.setdefault("api_key", KEY)
        kw.setdefault("base_url", f"{self.base}/v1")
        if self.in_process:
            sdk_http = httpx2.AsyncClient(transport=self.emu.httpx2_transport())
            download = httpx.AsyncClient(transport=self.emu.httpx_transport())
            self.clients += [sdk_http, download]
            kw.setdefault("http_client", sdk_http)
            kw.setdefault("download_client", download)
        p = OpenAIProvider(model=model, **kw)
        self.providers.append(p)
        return p

    @staticmethod
    def chain(*providers: Any, **policy: Any) -> Chain:
        policy.setdefault("backoff_initial_s", 0.01)
        return Chain(list(providers), policy=Policy(**policy), clock=FastForwardClock(LEGACY),
                     log=False)

    def calls(self, endpoint: str = "generate") -> int:
        return self.emu.log.count(vendor="openai", endpoint=endpoint)

    async def close(self) -> None:
        for p in self.providers:
            await p.aclose()
        for c in self.clients:
            await c.aclose()


def run(emu: Emulator, body: Callable[[Harness], Awaitable[None]], **kw: Any) -> None:
    async def main() -> None:
        h = Harness(emu, **kw)
        try:
            await body(h)
        finally:
            await h.close()

    asyncio.run(main())


@pytest.fixture(autouse=True)
def _clean_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads these; a developer's own settings must not change the tests."""
    for var in ("OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
                "OPENAI_CUSTOM_HEADERS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def emu() -> Emulator:
    return Emulator(api_keys=KEY)


def png(width: int, height: int, *, seed: int = 1, fmt: str = "png", alpha: bool = False) -> bytes:
    return placeholder_image(width, height, seed=seed, fmt=fmt, alpha=alpha)


def rgba_mask(width: int, height: int) -> bytes:
    img = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    img.paste((0, 0, 0, 0), (0, 0, width // 2, height // 2))  # transparent quarter: edit it
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


# ================================================================================ success


@pytest.mark.parametrize(("model", "out_tokens_per_image"), [
    ("gpt-image-1.5", 1056),  # medium, 1024x1024 (OpenAI's table)
    ("gpt-image-2", 1767),    # medium, 1024x1024 (the emulator's gpt-image-2 table)
])
def test_gpt_image_success_reports_cost_from_usage(emu, model, out_tokens_per_image):
    async def body(h: Harness) -> None:
        chain = h.chain(h.provider(model))
        result = await chain.agenerate(PROMPT, n=2, size="1024x1024")
        assert len(result.images) == 2
        assert all((i.width, i.height, i.mime_type) == (1024, 1024, "image/png")
                   for i in result.images)
        (attempt,) = result.attempts
        assert attempt.outcome is Outcome.SUCCESS
        assert attempt.latency_s > 0
        assert attempt.cost_source == "reported"
        expected = usage_cost(model, PROMPT, 2 * out_tokens_per_image)
        assert attempt.cost_usd == pytest.approx(expected)
        assert result.cost_usd == pytest.approx(expected)
        assert result.usage is not None
        assert cost_from_openai_usage(model, result.usage) == pytest.approx(expected)
        assert result.revised_prompt is None
        assert h.calls() == 1
        sent = emu.requests(vendor="openai")[0].params
        assert sent is not None
        assert "response_format" not in sent  # GPT Image rejects it (400 unknown_parameter)
        assert sent == {"model": model, "prompt": PROMPT, "n": 2, "size": "1024x1024",
                        "quality": "medium", "output_format": "png", "background": "auto"}

    run(emu, body)


@pytest.mark.parametrize(("model", "tier", "sent"), [
    ("gpt-image-1.5", "draft", "low"),
    ("gpt-image-1.5", "standard", "medium"),
    ("gpt-image-1.5", "final", "high"),
    ("gpt-image-2.5-flare", "final", "high"),  # xhigh/max are never chosen by default
    ("dall-e-3", "draft", "standard"),
    ("dall-e-3", "final", "hd"),
])
def test_quality_tier_maps_through_the_price_catalogue(emu, model, tier, sent):
    async def body(h: Harness) -> None:
        p = h.provider(model)
        await p.generate(ImageRequest(prompt=PROMPT, quality=tier), timeout=5)
        params = emu.requests(vendor="openai")[-1].params
        assert params is not None
        assert params["quality"] == sent

    run(emu, body)


def test_quality_tiers_can_be_overridden_and_priced_consistently(emu):
    async def body(h: Harness) -> None:
        p = h.provider("gpt-image-2.5-flare", quality_tiers={"final": "xhigh"})
        req = ImageRequest(prompt=PROMPT, quality="final", size="1024x1024")
        assert p.estimate_cost(req) == pytest.approx(0.09366)  # the catalogue's xhigh price
        await p.generate(req, timeout=5)
        params = emu.requests(vendor="openai")[-1].params
        assert params is not None
        assert params["quality"] == "xhigh"

    run(emu, body)


@pytest.mark.parametrize(("model", "asked", "sent"), [
    ("gpt-image-1.5", "1600x900", "1536x1024"),
    ("gpt-image-1.5", "2:3", "1024x1536"),
    ("gpt-image-2", "1600x900", "1600x896"),  # free size, multiples of 16
    ("dall-e-3", "16:9", "1792x1024"),
])
def test_nearest_supported_size_is_requested_and_delivered(emu, model, asked, sent):
    async def body(h: Harness) -> None:
        result = await h.chain(h.provider(model)).agenerate(PROMPT, size=asked)
        params = emu.requests(vendor="openai", endpoint="generate")[-1].params
        assert params is not None
        assert params["size"] == sent
        assert f"{result.image.width}x{result.image.height}" == sent

    run(emu, body)


def test_output_format_and_background_are_passed_to_gpt_image(emu):
    async def body(h: Harness) -> None:
        p = h.provider("gpt-image-2")
        reply = await p.generate(ImageRequest(prompt=PROMPT, output_format="webp",
                                              background="transparent"), timeout=5)
        params = emu.requests(vendor="openai")[-1].params
        assert params is not None
        assert (params["output_format"], params["background"]) == ("webp", "transparent")
        assert reply.images[0].mime_type == "image/webp"
        assert reply.extra["background"] == "transparent"

    run(emu, body)


def test_dalle3_b64_by_default_with_revised_prompt_and_estimated_cost(emu):
    async def body(h: Harness) -> None:
        result = await h.chain(h.provider("dall-e-3")).agenerate(PROMPT)
        assert result.revised_prompt == f"{PROMPT}, rendered in rich detail."
        (attempt,) = result.attempts
        assert (attempt.outcome, attempt.cost_source) == (Outcome.SUCCESS, "estimated")
        assert attempt.cost_usd == pytest.approx(0.04)  # no usage from DALL-E: the catalogue
        params = emu.requests(vendor="openai")[0].params
        assert params == {"model": "dall-e-3", "prompt": PROMPT, "n": 1, "size": "1024x1024",
                          "quality": "standard", "response_format": "b64_json"}
        assert h.calls("image") == 0

    run(emu, body)


def test_dalle3_url_answer_is_downloaded_at_once(emu):
    async def body(h: Harness) -> None:
        p = h.provider("dall-e-3", dalle_response_format="url")
        result = await h.chain(p).agenerate(PROMPT, size="1024x1792", quality="final")
        assert result.revised_prompt == f"{PROMPT}, rendered in rich detail."
        assert (result.image.width, result.image.height) == (1024, 1792)
        assert result.attempts[0].cost_usd == pytest.approx(0.12)  # hd 1024x1792
        log = emu.requests(vendor="openai")
        assert [e.endpoint for e in log] == ["generate", "image"]
        assert log[0].params is not None
        assert log[0].params["response_format"] == "url"
        assert log[1].path.startswith("/_files/")

    run(emu, body)


def test_dalle3_n_above_one_is_refused_before_any_call(emu):
    async def body(h: Harness) -> None:
        p = h.provider("dall-e-3")
        reason = p.unsupported_reason(ImageRequest(prompt=PROMPT, n=3))
        assert reason is not None
        assert "one image per request" in reason
        assert "n=3" in reason
        fake = FakeProvider("backup")
        result = await h.chain(p, fake).agenerate(PROMPT, n=3)
        assert result.provider == "backup"
        assert result.attempts[0].outcome is Outcome.SKIPPED
        assert h.calls() == 0

    run(emu, body)


def test_dalle3_is_skipped_for_exact_prompt_and_transparency(emu):
    async def body(h: Harness) -> None:
        p = h.provider("dall-e-3")
        assert p.unsupported_reason(ImageRequest(prompt=PROMPT, exact_prompt=True))
        assert p.unsupported_reason(ImageRequest(prompt=PROMPT, background="transparent"))
        assert p.unsupported_reason(ImageRequest(prompt="x" * 4001))
        assert h.provider("gpt-image-2").unsupported_reason(
            ImageRequest(prompt="x" * 4001, exact_prompt=True)) is None

    run(emu, body)


# ================================================================================ faults


@dataclass(frozen=True)
class Case:
    fault: str | dict[str, Any]
    outcome: Outcome
    status: int | set[int] | None
    code: str | None
    calls: int  # generation calls the vendor saw (the default policy retries some outcomes)
    cost_source: str = "none"
    retry_after: float | None = None
    n: int = 1
    model: str = "gpt-image-1.5"
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.fault if isinstance(self.fault, str) else self.fault["fault"]


def _case_id(c: Case) -> str:
    return f"{c.kind}-{c.model}"


R = Outcome
CASES = [
    Case("ok", R.SUCCESS, None, None, 1, "reported"),
    Case({"fault": "rate_limit", "retry_after": 7}, R.RATE_LIMITED, 429, "rate_limit_exceeded",
         1, retry_after=7.0),
    Case("429", R.RATE_LIMITED, 429, "rate_limit_exceeded", 1, retry_after=1.0),
    Case("quota", R.QUOTA_EXHAUSTED, 429, "insufficient_quota", 1),
    Case("credit_balance_exhausted", R.QUOTA_EXHAUSTED, 429, "credit_balance_exhausted", 1),
    Case("content_policy_violation", R.CONTENT_POLICY, 400, "content_policy_violation", 1),
    Case("moderation_blocked", R.CONTENT_POLICY, 400, "moderation_blocked", 1),
    Case("policy", R.CONTENT_POLICY, 400, "moderation_blocked", 1),
    Case("policy", R.CONTENT_POLICY, 400, "content_policy_violation", 1, model="dall-e-3"),
    Case("invalid_value", R.INVALID_REQUEST, 400, "invalid_value", 1),
    Case("400", R.INVALID_REQUEST, 400, "invalid_value", 1),
    Case("unknown_parameter", R.INVALID_REQUEST, 400, "unknown_parameter", 1),
    Case("422", R.INVALID_REQUEST, 422, "invalid_request_error", 1),
    Case("409", R.INVALID_REQUEST, 409, "invalid_request_error", 1),
    Case("auth", R.AUTH_ERROR, 401, "invalid_api_key", 1),
    Case("401", R.AUTH_ERROR, 401, "invalid_api_key", 1),
    Case("permission", R.AUTH_ERROR, 403, "invalid_request_error", 1),
    Case("403", R.AUTH_ERROR, 403, "invalid_request_error", 1),
    Case("model_not_found", R.NOT_FOUND, 404, "model_not_found", 1),
    Case("404", R.NOT_FOUND, 404, "model_not_found", 1),
    Case("408", R.TIMEOUT, 408, "invalid_request_error", 1, "estimated"),
    Case("server_error", R.SERVER_ERROR, 500, "server_error", 2),
    Case("500", R.SERVER_ERROR, 500, "server_error", 2),
    Case("overloaded", R.SERVER_ERROR, 503, "server_error", 2),
    Case("503", R.SERVER_ERROR, 503, "server_error", 2),
    Case("504", R.SERVER_ERROR, 504, "server_error", 2),
    Case("bad_gateway", R.SERVER_ERROR, 502, None, 2),  # an HTML page, not JSON
    Case("502", R.SERVER_ERROR, 502, None, 2),
    Case("5xx", R.SERVER_ERROR, {500, 502, 503}, None, 2),
    Case("reset", R.CONNECTION_ERROR, None, None, 2),
    Case("cut", R.CONNECTION_ERROR, None, None, 2),
    Case("hang", R.TIMEOUT, None, None, 1, "estimated"),
    Case("truncated", R.MALFORMED_RESPONSE, 200, None, 2),
    Case("html", R.MALFORMED_RESPONSE, 200, None, 2),  # the SDK hands back a str
    Case("bad_base64", R.MALFORMED_RESPONSE, 200, None, 2, "reported"),
    Case("bad_image", R.MALFORMED_RESPONSE, 200, None, 2, "reported"),
    Case("fewer_images", R.MALFORMED_RESPONSE, 200, None, 2, "reported", n=3),
    Case("malformed", R.MALFORMED_RESPONSE, 200, None, 2, "any"),  # one of the four above
    # a flat image is a success to the chain (a validator may reject it: tests/test_quality.py)
    Case("blank_image", R.SUCCESS, None, None, 1, "reported"),
    # flags moderation requests only (POST /v1/moderations); an image call is unaffected
    Case("flagged", R.SUCCESS, None, None, 1, "reported"),
]


#: Every fault token the emulator accepts for OpenAI (plus its seeded aliases).
OPENAI_KINDS = (set(emulator_faults.VENDOR_KINDS["openai"])
                | set(getattr(emulator_faults, "ALIAS_KINDS", ())))


def test_the_table_covers_every_openai_fault_of_the_emulator():
    covered = {c.kind for c in CASES}
    assert covered >= OPENAI_KINDS, OPENAI_KINDS - covered


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_fault_through_the_chain(emu, case):
    emu.set_faults({"openai": {"script": [case.fault, case.fault], "hang_s": 5,
                               **case.settings}})

    async def body(h: Harness) -> None:
        p = h.provider(case.model)
        backup = FakeProvider("backup")
        chain = h.chain(p, backup, attempt_timeout_s=0.3)
        if case.outcome is Outcome.CONTENT_POLICY:
            with pytest.raises(ContentPolicyError) as refused:
                await chain.agenerate(PROMPT, n=case.n)
            assert refused.value.provider == "openai"
            assert backup.calls == 0  # the chain stops on a refusal
            attempts = refused.value.attempts
        else:
            result = await chain.agenerate(PROMPT, n=case.n)
            attempts = result.attempts
            expected_provider = "openai" if case.outcome is Outcome.SUCCESS else "backup"
            assert result.provider == expected_provider
        mine = [a for a in attempts if a.provider == "openai"]
        assert len(mine) == case.calls
        assert h.calls() == case.calls
        for a in mine:
            assert a.outcome is case.outcome, a
            if isinstance(case.status, set):
                assert a.status_code in case.status
            else:
                assert a.status_code == case.status
            if not isinstance(case.status, set):
                assert a.provider_code == case.code
            assert a.latency_s > 0
            assert case.cost_source == "any" or a.cost_source == case.cost_source
            assert a.retry_after_s == case.retry_after
            assert KEY not in (a.message or "")
            if case.cost_source == "any":
                assert a.cost_source in ("reported", "none")
            elif case.cost_source == "none":
                assert a.cost_usd == 0
            else:
                assert a.cost_usd > 0
        if case.cost_source == "reported":
            # billed from the usage the 200 carried: n images at medium 1024x1024
            expected = usage_cost(case.model, PROMPT, 1056 * case.n)
            assert mine[0].cost_usd == pytest.approx(expected)
        if case.cost_source == "estimated":
            assert mine[0].cost_usd == pytest.approx(0.034)  # the catalogue: medium 1024²

    run(emu, body)


def test_content_policy_carries_categories_and_stage(emu):
    emu.set_faults({"openai": {"script": [{"fault": "moderation_blocked", "reason": "output",
                                           "categories": ["violence", "self-harm"]}]}})

    async def body(h: Harness) -> None:
        p = h.provider("gpt-image-2")
        with pytest.raises(ContentPolicyError) as info:
            await h.chain(p, FakeProvider("backup")).agenerate(PROMPT)
        assert info.value.categories == ["violence", "self-harm"]
        assert "safety system" in info.value.reason
        emu.set_faults({"openai": {"script": [{"fault": "moderation_blocked", "reason": "input",
                                               "categories": ["sexual"]}]}})
        with pytest.raises(ProviderError) as err:
            await p.generate(ImageRequest(prompt=PROMPT), timeout=5)
        assert err.value.outcome is Outcome.CONTENT_POLICY
        assert err.value.details["categories"] == ["sexual"]
        assert err.value.details["moderation_stage"] == "input"
        assert str(err.value.details["request_id"]).startswith("req_")

    run(emu, body)


@pytest.mark.parametrize(("fmt", "expected"), [
    ("seconds", 3.0), ("ms", 2.5), ("both", 2.5), ("http-date", None), ("none", 2.5),
])
def test_retry_after_in_every_format(emu, fmt, expected):
    emu.set_faults({"openai": {"script": ["429"], "retry_after": 2.5,
                               "retry_after_format": fmt}})

    async def body(h: Harness) -> None:
        with pytest.raises(ProviderError) as err:
            await h.provider().generate(ImageRequest(prompt=PROMPT), timeout=5)
        assert err.value.outcome is Outcome.RATE_LIMITED
        got = err.value.retry_after_s
        if expected is None:  # an HTTP-date: whole seconds from now
            assert got is not None
            assert 0 <= got <= 3
        else:
            assert got == pytest.approx(expected)

    run(emu, body)


def test_retry_after_read_from_message_and_error_shapes():
    assert retry_after_from_message("Please try again in 12s.") == 12.0
    assert retry_after_from_message("Please try again in 1m30s") == 90.0
    assert retry_after_from_message("try again in 250ms") == 0.25
    assert retry_after_from_message("no hint") is None
    # body is the INNER error object (docs/vendor-facts.md §1); an HTML body is a str
    err = error_from_status(429, {"message": "x", "type": "insufficient_quota",
                                  "code": None}, {"retry-after": "5"})
    assert (err.outcome, err.retry_after_s) == (Outcome.QUOTA_EXHAUSTED, None)
    err = error_from_status(400, {"message": "Rejected. safety_violations=[sexual, violence].",
                                  "type": "image_generation_user_error",
                                  "code": "moderation_blocked"}, {})
    assert err.details["categories"] == ["sexual", "violence"]
    err = error_from_status(502, "<html><title>502 Bad Gateway</title></html>", {})
    assert (err.outcome, err.provider_code) == (Outcome.SERVER_ERROR, None)
    assert "502 Bad Gateway" in err.message
    err = error_from_status(404, {"message": "Invalid URL (POST /images/generations)",
                                  "type": "invalid_request_error", "code": None}, {})
    assert err.outcome is Outcome.NOT_FOUND


def test_fewer_images_than_asked_is_malformed_and_billed(emu):
    emu.set_faults({"openai": {"script": [{"fault": "fewer_images", "count": 1}]}})

    async def body(h: Harness) -> None:
        with pytest.raises(ProviderError) as err:
            await h.provider("gpt-image-2").generate(ImageRequest(prompt=PROMPT, n=4),
                                                     timeout=5)
        assert err.value.outcome is Outcome.MALFORMED_RESPONSE
        assert "asked for 4 image(s), the answer has 1" in err.value.message
        assert err.value.cost_usd == pytest.approx(usage_cost("gpt-image-2", PROMPT, 4 * 1767))

    run(emu, body)


def test_every_failure_is_a_provider_error_never_a_vendor_exception(emu):
    # blank_image and flagged answer with images (the quality gate and the moderation
    # endpoint use them), so they are no failure of the provider
    kinds = sorted(OPENAI_KINDS - {"ok", "hang", "blank_image", "flagged"})

    async def body(h: Harness) -> None:
        p = h.provider("gpt-image-2")
        for kind in kinds:
            emu.set_faults({"openai": {"script": [kind]}})
            with pytest.raises(ProviderError):
                await p.generate(ImageRequest(prompt=PROMPT, n=2), timeout=5)
        assert h.calls() == len(kinds)

    run(emu, body)


GOOD_B64 = base64.b64encode(placeholder_image(64, 64)).decode()


@pytest.mark.parametrize(("body", "outcome", "fragment"), [
    ({"created": 1}, Outcome.MALFORMED_RESPONSE, "the answer has 0"),
    ({"created": 1, "data": None}, Outcome.MALFORMED_RESPONSE, "the answer has 0"),
    ({"created": 1, "data": [{}]}, Outcome.MALFORMED_RESPONSE, "neither b64_json nor url"),
    ({"created": 1, "data": [{"url": "https://evil.example.com/a.png"}]},
     Outcome.MALFORMED_RESPONSE, "refused"),
    ({"created": 1, "data": [{"b64_json": GOOD_B64}], "usage": {"input_tokens": "lots"}},
     Outcome.SUCCESS, ""),
    ([1, 2, 3], Outcome.MALFORMED_RESPONSE, "not JSON"),
])
def test_odd_200_bodies(body, outcome, fragment):
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=body)

    async def main() -> None:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as http:
            p = OpenAIProvider(model="gpt-image-2", api_key=KEY, base_url=f"{BASE}/v1",
                               http_client=http)
            if outcome is Outcome.SUCCESS:
                reply = await p.generate(ImageRequest(prompt=PROMPT), timeout=5)
                assert reply.cost_usd is None  # unreadable usage: the estimate will stand
                assert len(reply.images) == 1
            else:
                with pytest.raises(ProviderError) as err:
                    await p.generate(ImageRequest(prompt=PROMPT), timeout=5)
                assert err.value.outcome is outcome
                assert fragment in err.value.message
            await p.aclose()

    asyncio.run(main())


# ============================================================================ downloads


@pytest.mark.parametrize(("settings", "outcome", "status"), [
    ({"url_ttl_s": 0}, Outcome.MALFORMED_RESPONSE, 403),             # the link expired
    ({"url_ttl_s": 0, "expired_status": 404}, Outcome.MALFORMED_RESPONSE, 404),
    ({"applies_to": ["image"], "script": ["500"]}, Outcome.SERVER_ERROR, 500),
    ({"applies_to": ["image"], "script": ["reset"]}, Outcome.CONNECTION_ERROR, None),
    ({"applies_to": ["image"], "script": ["truncated"]}, Outcome.MALFORMED_RESPONSE, None),
])
def test_dalle_url_download_failures(emu, settings, outcome, status):
    emu.set_faults({"openai": settings})

    async def body(h: Harness) -> None:
        p = h.provider("dall-e-3", dalle_response_format="url")
        with pytest.raises(ProviderError) as err:
            await p.generate(ImageRequest(prompt=PROMPT), timeout=5)
        assert err.value.outcome is outcome
        assert err.value.status_code == status
        assert (h.calls("generate"), h.calls("image")) == (1, 1)

    run(emu, body)


def test_links_outside_the_allow_list_are_never_fetched(emu):
    async def body(h: Harness) -> None:
        p = h.provider("dall-e-3")
        deadline = asyncio.get_running_loop().time() + 5
        for url in ("https://evil.example.com/img.png", "http://169.254.169.254/latest",
                    "http://oaidalleapiprodscus.blob.core.windows.net/x.png"):
            with pytest.raises(ProviderError) as err:
                await p._download([url], deadline)
            assert err.value.outcome is Outcome.MALFORMED_RESPONSE
            assert "refused" in err.value.message
        assert len(emu.log) == 0

    run(emu, body)


# ================================================================================ edits


def test_edit_with_two_images_and_a_mask_goes_multipart(emu):
    first, second = png(256, 256, seed=1), png(256, 256, seed=2, fmt="jpeg")
    mask = rgba_mask(256, 256)

    async def body(h: Harness) -> None:
        p = h.provider("gpt-image-1.5")
        result = await h.chain(p).agenerate("add a boat", images=[first, second], mask=mask)
        (entry,) = emu.requests(vendor="openai")
        assert entry.path == "/v1/images/edits"
        params = entry.params
        assert params is not None
        assert [f["content_type"] for f in params["image[]"]] == ["image/png", "image/jpeg"]
        assert [f["size"] for f in params["image[]"]] == [len(first), len(second)]
        assert params["mask"] == [{"filename": "mask.png", "content_type": "image/png",
                                   "size": len(mask)}]  # an RGBA PNG is sent unchanged
        assert "size" not in params  # size="auto": the vendor follows the input
        assert (params["model"], params["n"], params["quality"]) == ("gpt-image-1.5", "1",
                                                                     "medium")
        (attempt,) = result.attempts
        assert attempt.cost_source == "reported"
        expected = usage_cost("gpt-image-1.5", "add a boat", 1056, image_in=2 * 388)
        assert attempt.cost_usd == pytest.approx(expected)

    run(emu, body)


def test_edit_with_one_image_sends_the_plain_image_field(emu):
    async def body(h: Harness) -> None:
        p = h.provider("gpt-image-2")
        await p.generate(ImageRequest(prompt="add a boat", images=[png(512, 512)],
                                      size="1024x1024"), timeout=5)
        params = emu.requests(vendor="openai")[0].params
        assert params is not None
        assert "image" in params
        assert "image[]" not in params
        assert params["size"] == "1024x1024"

    run(emu, body)


@pytest.mark.parametrize("mask_kind", ["rgb_png", "greyscale_png", "jpeg", "webp_alpha"])
def test_masks_without_alpha_or_not_png_are_converted(emu, mask_kind):
    size = (128, 96)
    grey = Image.new("L", size, 0)
    grey.paste(255, (0, 0, 64, 48))  # white = the area to edit
    masks = {
        "rgb_png": encoded(grey.convert("RGB"), "PNG"),
        "greyscale_png": encoded(grey, "PNG"),
        "jpeg": encoded(grey.convert("RGB"), "JPEG"),
        "webp_alpha": encoded(Image.merge("RGBA", (grey, grey, grey,
                                                   Image.eval(grey, lambda v: 255 - v))),
                              "WEBP"),
    }
    mask = masks[mask_kind]

    converted = mask_to_png(mask)
    info = inspect_image(converted)
    assert (info.mime_type, info.has_alpha, info.width, info.height) == ("image/png", True,
                                                                         *size)
    with Image.open(io.BytesIO(converted)) as out:
        alpha = out.getchannel("A")
        assert alpha.getpixel((10, 10)) < 10    # white corner → transparent → edited
        assert alpha.getpixel((100, 80)) > 245  # black elsewhere → opaque → kept

    async def body(h: Harness) -> None:
        p = h.provider("gpt-image-1.5")
        request = ImageRequest(prompt="add a boat", images=[png(*size)], mask=mask)
        assert p.unsupported_reason(request) is None
        await p.generate(request, timeout=5)
        params = emu.requests(vendor="openai")[0].params
        assert params is not None
        assert params["mask"][0]["content_type"] == "image/png"
        assert params["mask"][0]["size"] == len(converted)

    run(emu, body)


def test_mask_of_the_wrong_size_never_reaches_a_provider(emu):
    async def body(h: Harness) -> None:
        chain = h.chain(h.provider("gpt-image-1.5"))
        with pytest.raises(RequestValidationError) as err:
            await chain.agenerate("add a boat", images=[png(256, 256)],
                                  mask=rgba_mask(128, 128))
        assert "mask is 128x128 but the image is 256x256" in str(err.value)
        # a request built without validation is still refused, as a recorded skip
        request = ImageRequest.model_construct(
            prompt="add a boat", images=(png(256, 256),), mask=rgba_mask(128, 128))
        reason = h.providers[0].unsupported_reason(request)
        assert reason is not None
        assert "same size" in reason
        with pytest.raises(ChainExhaustedError) as exhausted:
            await chain.agenerate(request)
        assert [a.outcome for a in exhausted.value.attempts] == [Outcome.SKIPPED]
        assert len(emu.log) == 0

    run(emu, body)


def test_dalle2_edits_need_square_pngs_and_jpeg_is_converted(emu):
    async def body(h: Harness) -> None:
        p = h.provider("dall-e-2")
        assert "square" in (p.unsupported_reason(
            ImageRequest(prompt="x", images=[png(256, 128)])) or "")
        assert "at most 1" in (p.unsupported_reason(
            ImageRequest(prompt="x", images=[png(64, 64), png(64, 64)])) or "")
        request = ImageRequest(prompt="add a boat", images=[png(256, 256, fmt="jpeg")],
                               size="256x256")
        reply = await p.generate(request, timeout=5)
        assert (reply.images[0].width, reply.images[0].height) == (256, 256)
        params = emu.requests(vendor="openai")[0].params
        assert params is not None
        assert params["image"][0]["content_type"] == "image/png"  # converted, else a 400
        assert params["response_format"] == "b64_json"
        assert "background" not in params

    run(emu, body)


def test_dalle3_does_not_edit(emu):
    async def body(h: Harness) -> None:
        reason = h.provider("dall-e-3").unsupported_reason(
            ImageRequest(prompt="x", images=[png(64, 64)]))
        assert reason == "this provider does not edit images"

    run(emu, body)


# ===================================================================== construction, check


def test_retired_model_warns_once_naming_the_replacement(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    catalogue._warned.discard(("openai", "gpt-image-1"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        OpenAIProvider(model="gpt-image-1")
        OpenAIProvider(model="gpt-image-1")
    lifecycle = [w for w in caught if issubclass(w.category, ModelLifecycleWarning)]
    assert len(lifecycle) == 1
    text = str(lifecycle[0].message)
    assert "'gpt-image-1' was shut down on 2026-10-23" in text
    assert "'gpt-image-2.5-sunburst'" in text
    assert lifecycle[0].filename == __file__  # points at the caller, not the adapter


def test_active_model_does_not_warn(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OpenAIProvider(model="gpt-image-2")


def test_missing_key_fails_at_construction_naming_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIProvider(model="gpt-image-2")
    monkeypatch.setenv("OPENAI_API_KEY", "from-the-environment")
    assert OpenAIProvider(model="gpt-image-2")._api_key == "from-the-environment"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://127.0.0.1:8000/",
                                 "127.0.0.1:8000/v1", "ftp://host/v1"])
def test_base_url_must_be_http_and_include_the_version(url):
    with pytest.raises(ConfigurationError, match="base_url"):
        OpenAIProvider(api_key=KEY, base_url=url)


def test_names_keys_and_repr():
    a = OpenAIProvider(model="gpt-image-2", api_key="sk-secret-0123456789abcdefXYZ")
    b = OpenAIProvider(model="dall-e-3", api_key=KEY)
    c = OpenAIProvider(model="gpt-image-2", api_key=KEY, name="primary")
    assert (a.name, a.key) == ("openai", "openai/gpt-image-2")
    assert (b.name, b.key) == ("openai", "openai/dall-e-3")
    assert (c.name, c.key) == ("primary", "primary")
    Chain([a, b, c])  # two unnamed OpenAI models share a chain (each keyed openai/MODEL)
    assert "secret" not in repr(a)
    assert repr(a) == "OpenAIProvider(name='openai', model='gpt-image-2')"


def test_sdk_is_the_real_one_loaded_lazily_without_retries(emu):
    code = ("import sys; from fallback_chain.providers.openai import adapter, wire, masks; "
            "assert 'openai' not in sys.modules, 'SDK imported eagerly'; "
            "assert not {'PIL', 'httpx', 'httpx2'} & set(sys.modules); "
            "p = adapter.OpenAIProvider(api_key='k'); c = p._new_sdk(); "
            "import openai; assert type(c) is openai.AsyncOpenAI, type(c); "
            "assert sys.modules['openai'].__file__.endswith('openai/__init__.py'); "
            "assert c.max_retries == 0")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_organization_and_project_headers_through_the_sdk(emu, monkeypatch):
    seen: list[httpx2.Headers] = []
    inner = emu.httpx2_transport()

    class Recording(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            seen.append(request.headers)
            return await inner.handle_async_request(request)

    monkeypatch.setenv("OPENAI_ORG_ID", "org-from-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-from-env")

    async def body(h: Harness) -> None:
        async with httpx2.AsyncClient(transport=Recording()) as http:
            from_env = h.provider(http_client=http)
            await from_env.generate(ImageRequest(prompt=PROMPT), timeout=5)
            explicit = h.provider(http_client=http, organization="org-x", project="proj-y")
            await explicit.check()
        assert (seen[0]["openai-organization"], seen[0]["openai-project"]) == (
            "org-from-env", "proj-from-env")
        assert (seen[1]["openai-organization"], seen[1]["openai-project"]) == ("org-x",
                                                                              "proj-y")
        assert seen[0]["authorization"] == f"Bearer {KEY}"
        assert seen[0]["x-stainless-retry-count"] == "0"

    run(emu, body)


class _DateClock:
    """A clock whose wall time is noon UTC of one date (the lifecycle reads only ``wall``)."""

    def __init__(self, day: date) -> None:
        self._wall = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()

    def now(self) -> float:
        return 0.0

    def wall(self) -> float:
        return self._wall

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def test_check_spends_nothing_and_reports_401_and_404(emu):
    # gpt-image-1.5 is deprecated with a shutdown on 2026-12-01: the clock says which side of
    # that date we are on (never the calendar of the machine running the test)
    before, after = _DateClock(date(2026, 11, 21)), _DateClock(date(2026, 12, 6))

    async def body(h: Harness) -> None:
        ok = await h.provider("gpt-image-2", clock=after).check()
        assert ok.ok
        assert "available" in ok.detail
        deprecated = await h.provider("gpt-image-1.5", clock=before).check()
        assert deprecated.ok
        assert "is available" in deprecated.detail
        assert "shuts down on 2026-12-01" in deprecated.detail
        retired = await h.provider("gpt-image-1.5", clock=after).check()
        assert retired.ok  # the key works and the API still lists it
        assert "was shut down on 2026-12-01" in retired.detail
        assert "available" not in retired.detail
        assert "gpt-image-2.5-sunburst" in retired.detail
        bad_key = await h.provider("gpt-image-2", api_key="wrong-key-0123456789").check()
        assert not bad_key.ok
        assert bad_key.detail.startswith("credentials rejected (401 invalid_api_key)")
        assert "wrong-key-0123456789" not in bad_key.detail
        missing = await h.provider("no-such-model").check()
        assert not missing.ok
        assert missing.detail.startswith("model 'no-such-model' not found (404 model_not_found)")
        assert h.calls("generate") == 0
        assert h.calls("meta") == 5

    run(emu, body)


def test_check_over_an_unreachable_server_reports_the_connection_error():
    async def main() -> None:
        p = OpenAIProvider(api_key=KEY, base_url="http://127.0.0.1:9/v1", check_timeout_s=2)
        try:
            result = await p.check()
        finally:
            await p.aclose()
        assert not result.ok
        assert "connection_error" in result.detail

    asyncio.run(main())


def test_the_key_never_appears_in_errors(emu):
    secret = "sk-proj-THISISASECRETKEY0123456789"
    emu.set_faults({"openai": {"script": [{"fault": "500", "message": f"echo {secret}"}]}})

    async def body(h: Harness) -> None:
        p = h.provider(api_key=secret)
        with pytest.raises(ProviderError) as err:
            await p.generate(ImageRequest(prompt=PROMPT), timeout=5)
        assert secret not in str(err.value)
        assert secret not in repr(err.value)
        assert "***" in err.value.message

    run(Emulator(api_keys=None, faults=emu.faults), body)


def test_one_pooled_client_per_provider_reused_and_closed(emu):
    async def body(h: Harness) -> None:
        p = h.provider("gpt-image-2")
        replies = await asyncio.gather(*(p.generate(ImageRequest(prompt=f"{PROMPT} {i}"),
                                                    timeout=5) for i in range(5)))
        assert len(replies) == 5
        client = p._clients.peek()
        assert client is not None and len(p._clients) == 1
        await p.generate(ImageRequest(prompt=PROMPT), timeout=5)
        assert p._clients.peek() is client
        await p.aclose()
        assert p._clients.peek() is None
        assert not h.clients[0].is_closed  # a client passed in is the caller's to close

    run(emu, body)


# ======================================================================= real loopback


def test_over_a_real_loopback_server():
    emulator = Emulator(api_keys=KEY)
    with serve_in_thread(emulator) as base:
        async def body(h: Harness) -> None:
            gpt = h.provider("gpt-image-2")
            dalle = h.provider("dall-e-3", dalle_response_format="url")
            result = await h.chain(gpt).agenerate(PROMPT, n=2)
            assert result.attempts[0].cost_source == "reported"
            result = await h.chain(dalle).agenerate(PROMPT)
            assert result.revised_prompt is not None
            assert emulator.log.count(vendor="openai", endpoint="image") == 1

            emulator.set_faults({"openai": {"script": ["reset", "reset", "hang"],
                                            "hang_s": 2}})
            backup = FakeProvider("backup")
            result = await h.chain(gpt, backup, attempt_timeout_s=0.3).agenerate(PROMPT)
            assert [a.outcome for a in result.attempts] == [
                Outcome.CONNECTION_ERROR, Outcome.CONNECTION_ERROR, Outcome.SUCCESS]
            with pytest.raises(ProviderError) as err:
                await gpt.generate(ImageRequest(prompt=PROMPT), timeout=0.3)
            assert err.value.outcome is Outcome.TIMEOUT
            assert (await gpt.check()).ok
            await gpt.aclose()  # owned clients: closed; a later call opens a new one
            await gpt.generate(ImageRequest(prompt=PROMPT), timeout=5)

        run(emulator, body, base=base, in_process=False)
