"""The quality gate (validators) and the prompt pre-screen, through a Chain, with OpenAI served
by the emulator in-process through the official ``openai`` SDK."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
from PIL import Image

from fallback_chain import Chain, ImageRequest, Outcome, Policy
from fallback_chain.clock import FastForwardClock
from fallback_chain.emulator import Emulator
from fallback_chain.errors import ChainExhaustedError, ChainStoppedError, ContentPolicyError
from fallback_chain.events import Event, PrescreenFailed
from fallback_chain.imaging import placeholder_image
from fallback_chain.prescreen import Blocklist, OpenAIModeration
from fallback_chain.providers import FakeProvider, OpenAIProvider
from fallback_chain.results import GeneratedImage
from fallback_chain.validators import (
    DecodesFully,
    ImageRejected,
    NotBlank,
    NotDuplicate,
    SizeMatches,
    dhash,
    resolve,
)

#: A date before the catalogue's shutdown of the legacy models these tests still call on the
#: emulator (dall-e-2/-3 on 2026-05-12, gpt-image-1 on 2026-10-23, gpt-image-1.5 and -1-mini
#: on 2026-12-01): a chain skips a model shut down on its clock's date without calling it.
LEGACY = datetime(2026, 5, 1, tzinfo=UTC).timestamp()

pytestmark = pytest.mark.filterwarnings(
    "ignore::fallback_chain.providers.catalogue.ModelLifecycleWarning")

KEY = "test-key"
BASE = "http://emulator.test"
MODERATION = "omni-moderation-latest"


class Harness:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.clients: list[httpx2.AsyncClient] = []
        self.closers: list[Callable[[], Awaitable[None]]] = []

    def http(self) -> httpx2.AsyncClient:
        client = httpx2.AsyncClient(transport=self.emu.httpx2_transport())
        self.clients.append(client)
        return client

    def openai(self) -> OpenAIProvider:
        p = OpenAIProvider("gpt-image-1.5", api_key=KEY, base_url=f"{BASE}/v1",
                           http_client=self.http())
        self.closers.append(p.aclose)
        return p

    def moderation(self, **kw: Any) -> OpenAIModeration:
        m = OpenAIModeration(api_key=KEY, base_url=f"{BASE}/v1", http_client=self.http(), **kw)
        self.closers.append(m.aclose)
        return m

    def image_calls(self) -> int:
        return self.emu.log.count(vendor="openai", endpoint="generate")

    def moderation_calls(self) -> int:
        return self.emu.log.count(vendor="openai", endpoint="moderate")


def run(emu: Emulator, body: Callable[[Harness], Awaitable[None]]) -> None:
    async def main() -> None:
        h = Harness(emu)
        try:
            await body(h)
        finally:
            for close in h.closers:
                await close()
            for c in h.clients:
                await c.aclose()

    asyncio.run(main())


def chain(*providers: Any, **kw: Any) -> Chain:
    kw.setdefault("policy", Policy(backoff_initial_s=0.01, breaker_failures=1))
    return Chain(list(providers), clock=FastForwardClock(LEGACY), log=False, **kw)


@pytest.fixture
def emu() -> Emulator:
    return Emulator(api_keys=KEY)


def flat(width: int = 64, height: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 10, 10)).save(out, format="PNG")
    return out.getvalue()


# ================================================================= the quality gate


def test_a_rejection_of_a_delivers_b_with_a_billed_and_its_breaker_untouched(emu) -> None:
    seen: list[GeneratedImage] = []

    def no_openai(image: GeneratedImage, request: ImageRequest) -> str | None:
        seen.append(image)  # the first image checked is A's: reject it, accept the rest
        return "house style: not this vendor" if len(seen) == 1 else None

    async def body(h: Harness) -> None:
        a, b = h.openai(), FakeProvider("backup")
        c = chain(a, b, validators=[no_openai])
        result = await c.agenerate("a lighthouse")
        assert result.provider == "backup"
        first, second = result.attempts
        assert (first.provider, first.outcome) == ("openai", Outcome.REJECTED)
        assert "house style: not this vendor" in (first.message or "")
        assert first.cost_source == "reported" and first.cost_usd > 0  # A is billed
        assert second.outcome is Outcome.SUCCESS
        assert result.cost_usd == pytest.approx(first.cost_usd + second.cost_usd)
        assert h.image_calls() == 1  # not retried on A (default retries for rejected: 0)
        # breaker_failures=1: a counted failure would have opened A's breaker
        assert c.breaker("openai").state == "closed"
        again = await c.agenerate("a lighthouse")
        assert again.provider == "openai" and h.image_calls() == 2

    run(emu, body)


def test_a_blank_image_from_the_emulator_is_rejected_by_the_built_in(emu) -> None:
    emu.set_faults({"openai": {"script": ["blank_image", "ok"]}})

    async def body(h: Harness) -> None:
        c = chain(h.openai(), FakeProvider("backup"), validators=["not_blank"])
        result = await c.agenerate("a lighthouse")
        assert result.provider == "backup"
        assert result.attempts[0].outcome is Outcome.REJECTED
        assert "blank or near-uniform" in (result.attempts[0].message or "")
        assert result.attempts[0].cost_usd > 0
        ok = await c.agenerate("a lighthouse")  # the emulator's normal image passes
        assert ok.provider == "openai"

    run(emu, body)


def test_retrying_a_rejection_is_a_policy_knob_and_all_rejected_names_each_reason() -> None:
    calls: list[str] = []

    async def reject_all(image: GeneratedImage, request: ImageRequest) -> None:
        calls.append("x")
        raise ImageRejected(f"nope #{len(calls)}")

    async def main() -> None:
        a, b = FakeProvider("a"), FakeProvider("b")
        c = chain(a, b, policy=Policy(retries={"rejected": 1}, backoff_initial_s=0.0))
        with pytest.raises(ChainExhaustedError) as failed:
            await c.agenerate("x", validators=[reject_all])
        assert (a.calls, b.calls) == (2, 2)
        outcomes = [x.outcome for x in failed.value.attempts]
        assert outcomes == [Outcome.REJECTED] * 4
        assert "images rejected" in str(failed.value)
        for n in range(1, 5):
            assert f"nope #{n}" in failed.value.message
        assert failed.value.cost_usd == pytest.approx(4 * 0.01)
        # per-request validators do not stick to the chain
        assert (await c.agenerate("x")).provider == "a"

    asyncio.run(main())


def test_validator_answers_true_false_and_strings() -> None:
    async def main() -> None:
        for answer, rejected in ((True, False), (None, False), (False, True), ("bad", True)):
            c = chain(FakeProvider("a"), FakeProvider("b"),
                      validators=[lambda i, r, ans=answer: ans])
            if rejected:
                with pytest.raises(ChainExhaustedError):
                    await c.agenerate("x")
            else:
                assert (await c.agenerate("x")).provider == "a"

    asyncio.run(main())


def test_size_matches_pixels_and_aspect() -> None:
    img = GeneratedImage.from_bytes(placeholder_image(1024, 1536))
    check = SizeMatches(tolerance=0.05)
    assert check(img, ImageRequest(prompt="x", size="1024x1536")) is None
    assert "not within" in (check(img, ImageRequest(prompt="x", size="1024x1024")) or "")
    assert check(img, ImageRequest(prompt="x", size="2:3")) is None
    assert "aspect" in (check(img, ImageRequest(prompt="x", size="16:9")) or "")
    assert check(img, ImageRequest(prompt="x")) is None  # size="auto"


def test_not_duplicate_of_an_input_or_an_earlier_image() -> None:
    first = placeholder_image(128, 128, seed=1)
    other = placeholder_image(128, 128, seed=2)
    assert dhash(first) != dhash(other)
    check = NotDuplicate()
    edit = ImageRequest(prompt="x", images=(first,))
    assert "input image 1" in (check(GeneratedImage.from_bytes(first), edit) or "")
    plain = ImageRequest(prompt="x")
    assert check(GeneratedImage.from_bytes(first), plain) is None
    assert "earlier image" in (check(GeneratedImage.from_bytes(first), plain) or "")
    assert check(GeneratedImage.from_bytes(other), plain) is None


def test_not_blank_and_decodes() -> None:
    req = ImageRequest(prompt="x")
    assert NotBlank()(GeneratedImage.from_bytes(flat()), req)
    assert NotBlank()(GeneratedImage.from_bytes(placeholder_image(64, 64)), req) is None
    assert DecodesFully()(GeneratedImage.from_bytes(placeholder_image(64, 64)), req) is None
    broken = GeneratedImage.model_construct(data=b"\x89PNG\r\n\x1a\nnot really", width=1,
                                            height=1, mime_type="image/png")
    assert "does not decode" in (DecodesFully()(broken, req) or "")
    assert [type(v).__name__ for v in resolve(["size", "not_blank", "not_duplicate",
                                               "decodes"])] == [
        "SizeMatches", "NotBlank", "NotDuplicate", "DecodesFully"]
    with pytest.raises(Exception, match="unknown validator"):
        resolve(["sharp"])


# ================================================================= the pre-screen


def _flag(categories: list[str]) -> dict[str, Any]:
    return {"openai": {"models": {MODERATION: {
        "applies_to": ["moderate"], "script": [{"fault": "flagged", "categories": categories}]}}}}


def test_a_flagged_prompt_makes_no_image_call_and_costs_nothing(emu) -> None:
    emu.set_faults(_flag(["violence"]))

    async def body(h: Harness) -> None:
        backup = FakeProvider("backup")
        c = chain(h.openai(), backup, prescreen=h.moderation())
        with pytest.raises(ContentPolicyError) as refused:
            await c.agenerate("a lighthouse")
        err = refused.value
        assert err.provider == "moderation" and err.categories == ["violence"]
        assert err.cost_usd == 0
        assert [(a.provider, a.model, a.outcome) for a in err.attempts] == [
            ("moderation", MODERATION, Outcome.CONTENT_POLICY)]
        assert h.image_calls() == 0 and backup.calls == 0  # the emulator's log proves it
        assert h.moderation_calls() == 1
        ok = await c.agenerate("a lighthouse")  # the script flagged only the first prompt
        assert ok.provider == "openai"
        assert [a.provider for a in ok.attempts] == ["moderation", "openai"]
        assert ok.attempts[0].outcome is Outcome.SUCCESS and ok.attempts[0].cost_usd == 0

    run(emu, body)


def test_a_moderation_timeout_with_allow_still_generates(emu) -> None:
    emu.set_faults({"openai": {"models": {MODERATION: {
        "applies_to": ["moderate"], "script": ["hang", "500"], "hang_s": 5}}}})
    events: list[Event] = []

    async def body(h: Harness) -> None:
        c = chain(h.openai(), prescreen=h.moderation(timeout_s=0.3), on_event=events.append)
        result = await c.agenerate("a lighthouse")
        assert result.provider == "openai"
        screen = result.attempts[0]
        assert (screen.provider, screen.outcome) == ("moderation", Outcome.TIMEOUT)
        assert screen.cost_usd == 0
        warned = [e for e in events if isinstance(e, PrescreenFailed)]
        assert len(warned) == 1 and warned[0].outcome == "timeout"
        # a 5xx with on_error="block" stops before any image call
        blocking = chain(h.openai(), prescreen=h.moderation(on_error="block"))
        with pytest.raises(ChainStoppedError, match="on_error='block'") as stopped:
            await blocking.agenerate("a lighthouse")
        assert stopped.value.attempts[0].outcome is Outcome.SERVER_ERROR
        assert h.image_calls() == 1

    run(emu, body)


def test_blocklist_then_moderation_in_order(emu) -> None:
    async def body(h: Harness) -> None:
        screens = [Blocklist(terms=["Gore", "brand x"]), h.moderation()]
        c = chain(h.openai(), prescreen=screens)
        with pytest.raises(ContentPolicyError) as refused:
            await c.agenerate("a poster for BRAND X, no gore")
        assert refused.value.categories == ["blocklist:brand x", "blocklist:gore"]
        assert h.moderation_calls() == 0 and h.image_calls() == 0
        assert (await c.agenerate("gorelike shapes")).provider == "openai"  # whole words
        assert h.moderation_calls() == 1

    run(emu, body)
