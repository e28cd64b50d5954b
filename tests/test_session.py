"""Edit sessions (``chain.session()``) through the emulator with the official SDKs as clients:
generate, edit on Gemini as a conversation, fall back mid-session to OpenAI's edits, and what
each request carried (the emulator's log keeps the SHA-256 of every input image); history,
undo, costs, save and load, the blocking forms."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from fallback_chain import Chain, Outcome, Policy
from fallback_chain.emulator import Emulator
from fallback_chain.errors import ChainExhaustedError
from fallback_chain.imaging import placeholder_image
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.gemini.adapter import GeminiProvider
from fallback_chain.providers.leonardo.adapter import LeonardoProvider
from fallback_chain.providers.openai.adapter import OpenAIProvider
from fallback_chain.request import ImageRequest, Turn
from fallback_chain.session import Session

KEY = "test-key"
BASE = "http://emulator.test"
FAST = Policy(backoff_initial_s=0.001, backoff_max_s=0.001, backoff_jitter=0.0,
              wait_for_cooldown=False, attempt_timeout_s=5.0)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def emu() -> Emulator:
    return Emulator(api_keys=KEY)


@pytest.fixture
def chain(emu: Emulator) -> Iterator[Chain]:
    gemini = GeminiProvider("gemini-2.5-flash-image", api_key=KEY, base_url=BASE,
                            transport=emu.httpx2_transport())
    openai = OpenAIProvider("gpt-image-2", api_key=KEY, base_url=f"{BASE}/v1",
                            http_client=httpx2.AsyncClient(transport=emu.httpx2_transport()))
    built = Chain([gemini, openai], policy=FAST, log=False)
    yield built
    built.close()


def generates(emu: Emulator, vendor: str) -> list:
    return emu.requests(vendor=vendor, endpoint="generate")


def test_generate_then_two_edits_the_second_falling_back(emu: Emulator, chain: Chain) -> None:
    """The issue's acceptance run: generate, edit on Gemini (a conversation), then Gemini is
    rate-limited and the second edit continues from the current image on OpenAI."""
    emu.script("gemini", "ok,ok,429")
    session = chain.session()

    async def go() -> None:
        first = await session.agenerate("a lighthouse at dusk", size="1024x1024")
        second = await session.aedit("make the sky purple")
        third = await session.aedit("same scene at night")
        assert [s.provider for s in (first, second, third)] == ["gemini", "gemini", "openai"]
        await chain.aclose()

    asyncio.run(go())
    steps = session.history
    images = [s.image for s in steps]
    assert len({i.sha256 for i in images}) == 3  # each step made a new image
    gemini_calls, openai_calls = generates(emu, "gemini"), generates(emu, "openai")
    assert len(gemini_calls) == 3 and len(openai_calls) == 1
    # the generation carried no image
    assert gemini_calls[0].input_images == ()
    # edit 1 was a conversation: the first prompt, the model's image (step 0), the instruction
    body = gemini_calls[1].params
    assert body is not None
    roles = [c["role"] for c in body["contents"]]
    assert roles == ["user", "model", "user"]
    assert gemini_calls[1].input_images == (images[0].sha256,)
    assert body["contents"][0]["parts"] == [{"text": "a lighthouse at dusk"}]
    assert body["contents"][2]["parts"] == [{"text": "make the sky purple"}]
    # edit 2 was first tried on Gemini with the whole conversation, then on OpenAI with the
    # current image (step 1) as the image to edit
    assert gemini_calls[2].status == 429
    assert gemini_calls[2].input_images == (images[0].sha256, images[1].sha256)
    assert openai_calls[0].input_images == (images[1].sha256,)
    assert openai_calls[0].params is not None
    assert openai_calls[0].params["prompt"] == "same scene at night"
    # the result says which provider made it, and how it got there
    outcomes = [(a.provider, a.outcome) for a in steps[2].result.attempts]  # type: ignore[union-attr]
    assert outcomes == [("gemini", Outcome.RATE_LIMITED), ("openai", Outcome.SUCCESS)]
    assert steps[2].vendor == "openai" and steps[2].model.startswith("gpt-image")
    # costs: each step's is its result's, and the session's is their sum
    assert all(s.cost_usd > 0 for s in steps)
    assert [s.cost_usd for s in steps] == [s.result.cost_usd for s in steps]  # type: ignore[union-attr]
    assert session.cost_usd == pytest.approx(sum(s.cost_usd for s in steps))


def test_after_a_fallback_gemini_is_given_the_image_not_the_old_conversation(
        emu: Emulator) -> None:
    """Back on Gemini after an OpenAI step: a fresh conversation that starts from the current
    image (the OpenAI image as the user's input), not the turns before it."""
    gemini = GeminiProvider("gemini-2.5-flash-image", api_key=KEY, base_url=BASE,
                            transport=emu.httpx2_transport())
    openai = OpenAIProvider("gpt-image-2", api_key=KEY, base_url=f"{BASE}/v1",
                            http_client=httpx2.AsyncClient(transport=emu.httpx2_transport()))
    no_cooldown = FAST.replace(cooldowns_s={"rate_limited": 0})
    chain = Chain([gemini, openai], policy=no_cooldown, log=False)
    # a 429 without a wait, and no cooldown: Gemini is back for the next step
    emu.script("gemini", [{"fault": "rate_limit", "retry_after": 0}, "ok", "ok"])
    session = chain.session()

    async def go() -> None:
        await session.agenerate("a red boat")          # gemini 429 -> openai
        await session.aedit("paint it blue")           # gemini: image given as input
        await session.aedit("add a seagull")           # gemini: conversation of 1 step
        await chain.aclose()

    asyncio.run(go())
    steps = session.history
    assert [s.provider for s in steps] == ["openai", "gemini", "gemini"]
    calls = [c for c in generates(emu, "gemini") if c.status == 200]
    first, second = calls[0], calls[1]
    assert [c["role"] for c in first.params["contents"]] == ["user"]  # type: ignore[index]
    assert first.input_images == (steps[0].image.sha256,)
    assert [c["role"] for c in second.params["contents"]] == ["user", "model", "user"]  # type: ignore[index]
    assert second.input_images == (steps[0].image.sha256, steps[1].image.sha256)


def test_a_masked_edit_skips_gemini_and_sends_image_and_mask(emu: Emulator,
                                                            chain: Chain) -> None:
    session = chain.session()
    step0 = session.generate("a lighthouse", size="1024x1024")
    mask = placeholder_image(step0.image.width, step0.image.height, seed=3)
    step1 = session.edit("remove the boat", mask=mask)
    assert step1.provider == "openai" and step1.masked
    skipped = step1.result.attempts[0]  # type: ignore[union-attr]
    assert skipped.provider == "gemini" and skipped.outcome is Outcome.SKIPPED
    call = generates(emu, "openai")[-1]
    assert call.input_images == (step0.image.sha256,)
    # the adapter turns the mask into OpenAI's form (alpha channel), so only its presence shows
    assert call.params is not None and len(call.params["mask"]) == 1


def test_leonardo_cannot_edit_and_is_skipped(emu: Emulator) -> None:
    leo = LeonardoProvider(api_key=KEY, base_url=f"{BASE}/api/rest/v1",
                           transport=emu.httpx_transport())
    assert leo.capabilities.edits is False
    reason = leo.unsupported_reason(ImageRequest(prompt="x", images=[placeholder_image(64, 64)]))
    assert reason is not None and "edit" in reason


def test_history_undo_and_costs_with_a_fake_provider() -> None:
    fake = FakeProvider(name="fake", price_usd=0.01)
    chain = Chain([fake], log=False)
    start = placeholder_image(64, 64, seed=9)
    session = chain.session(image=start)
    assert session.image is not None and session.image.data == start
    assert session.history[0].kind == "input" and session.cost_usd == 0
    with pytest.raises(ValueError, match="nothing to undo"):
        session.undo()
    a = session.edit("make it warmer")
    b = session.edit("make it cooler")
    assert [s.kind for s in session.history] == ["input", "edit", "edit"]
    assert [s.instruction for s in session.history] == ["", "make it warmer", "make it cooler"]
    assert session.image == b.image
    assert session.undo() is b
    assert session.image == a.image and len(session.history) == 2
    # what the undone step cost was spent all the same
    assert session.cost_usd == pytest.approx(a.cost_usd + b.cost_usd)
    assert a.cost_usd == pytest.approx(0.01)
    chain.close()


def test_a_failed_step_adds_what_it_cost_and_changes_nothing() -> None:
    fake = FakeProvider(name="fake", price_usd=0.02, script=["ok", "server_error"])
    chain = Chain([fake], policy=Policy(retries={"server_error": 0}), log=False)
    session = chain.session()
    session.generate("a cat")
    before = session.history
    with pytest.raises(ChainExhaustedError) as err:
        session.edit("a dog instead")
    assert session.history == before
    failed = sum(a.cost_usd for a in err.value.attempts)
    assert session.cost_usd == pytest.approx(before[0].cost_usd + failed)
    chain.close()


def test_edit_needs_an_image_and_blocking_forms_refuse_a_running_loop() -> None:
    chain = Chain([FakeProvider(name="fake")], log=False)
    session = chain.session()
    with pytest.raises(ValueError, match="no image yet"):
        asyncio.run(session.aedit("x"))

    async def inside() -> None:
        with pytest.raises(RuntimeError, match=r"await session\.agenerate"):
            session.generate("x")

    asyncio.run(inside())
    chain.close()


def test_save_and_load_round_trip_and_resume(emu: Emulator, chain: Chain,
                                             tmp_path: Path) -> None:
    session = chain.session()
    session.generate("a lighthouse at dusk")
    session.edit("make the sky purple")
    path = session.save(tmp_path / "work")
    doc = json.loads(path.read_text())
    assert [s["image"] for s in doc["steps"]] == ["step-000.png", "step-001.png"]
    assert KEY not in path.read_text()
    loaded = Session.load(tmp_path / "work", chain)
    assert [(s.kind, s.instruction, s.provider, s.model, s.cost_usd, s.image.sha256)
            for s in loaded.history] == \
        [(s.kind, s.instruction, s.provider, s.model, s.cost_usd, s.image.sha256)
         for s in session.history]
    assert loaded.cost_usd == pytest.approx(session.cost_usd)
    assert loaded.history[1].result is not None
    assert loaded.history[1].result.attempts == session.history[1].result.attempts  # type: ignore[union-attr]
    # resumed: the Gemini conversation continues from the saved steps
    step = loaded.edit("add stars")
    assert step.provider == "gemini"
    call = generates(emu, "gemini")[-1]
    assert call.input_images == (session.history[0].image.sha256,
                                 session.history[1].image.sha256)
    # a changed image file is refused
    (tmp_path / "work" / "step-001.png").write_bytes(placeholder_image(64, 64, seed=4))
    with pytest.raises(ValueError, match="SHA-256"):
        Session.load(tmp_path / "work", chain)


def test_only_gemini_reads_the_history(emu: Emulator) -> None:
    """A request with a history sent to OpenAI is an ordinary edit of ``images``."""
    openai = OpenAIProvider("gpt-image-2", api_key=KEY, base_url=f"{BASE}/v1",
                            http_client=httpx2.AsyncClient(transport=emu.httpx2_transport()))
    chain = Chain([openai], policy=FAST, log=False)
    old, current = placeholder_image(64, 64, seed=1), placeholder_image(64, 64, seed=2)
    request = ImageRequest(prompt="now at night", images=[current],
                           history=[Turn(role="user", text="a boat"),
                                    Turn(role="model", images=(old,))])
    chain.generate(request)
    assert generates(emu, "openai")[-1].input_images == (sha(current),)
    assert "2 turn(s)" in repr(request)
    chain.close()
