"""Partial delivery: images a failed call delivered (and paid for) are kept, and the next
provider is asked only for the missing count."""

from __future__ import annotations

import asyncio

import pytest

from fallback_chain import Chain, ImageRequest, Outcome, Policy
from fallback_chain.emulator import Emulator
from fallback_chain.errors import ChainExhaustedError, ProviderError
from fallback_chain.events import Event, RequestFinished
from fallback_chain.provider import ProviderReply
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.gemini.adapter import GeminiProvider
from fallback_chain.results import ImageOrigin

FAST = Policy(backoff_initial_s=0.0, backoff_jitter=0.0, wait_for_cooldown=False,
              attempt_timeout_s=5.0)


class HalfFake(FakeProvider):
    """Delivers ``deliver`` of the images asked for, then fails the rest with a 429, like an
    adapter that makes one call per image."""

    def __init__(self, name: str, deliver: int, *, report_cost: bool = True,
                 **kw: object) -> None:
        super().__init__(name, **kw)  # type: ignore[arg-type]
        self.deliver = deliver
        self.report_cost = report_cost

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        if self.deliver >= request.n:
            return await super().generate(request, timeout=timeout)
        got = await super().generate(request.model_copy(update={"n": self.deliver}),
                                     timeout=timeout)
        self.requests[-1] = request
        cost = got.cost_usd if self.report_cost else None
        raise ProviderError(Outcome.RATE_LIMITED, "1 of 2 calls was rate limited",
                            status_code=429, cost_usd=cost,
                            partial=ProviderReply(images=got.images, cost_usd=cost))


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def generate(chain: Chain, **fields: object):  # type: ignore[no-untyped-def]
    try:
        return await chain.agenerate("two foxes", size="64x64", **fields)
    finally:
        await chain.aclose()


def test_kept_images_and_the_next_provider_makes_only_the_rest() -> None:
    first = HalfFake("first", deliver=1, price_usd=0.04)
    second = FakeProvider("second", price_usd=0.01)
    events: list[Event] = []
    chain = Chain([first, second], policy=FAST, log=False, on_event=events.append)
    result = run(generate(chain, n=2))
    assert len(result.images) == 2
    assert [r.n for r in second.requests] == [1]  # asked only for the missing image
    assert result.origins == [ImageOrigin(provider="first", model="fake-image-1"),
                              ImageOrigin(provider="second", model="fake-image-1")]
    assert result.provider == "second"
    first_attempt, second_attempt = result.attempts
    assert first_attempt.outcome is Outcome.RATE_LIMITED
    assert first_attempt.cost_usd == pytest.approx(0.04) and \
        first_attempt.cost_source == "reported"
    assert second_attempt.cost_usd == pytest.approx(0.01)
    assert result.cost_usd == pytest.approx(0.05)  # exactly what was billed
    finished = [e for e in events if isinstance(e, RequestFinished)]
    assert finished[0].request.n == 2  # the request as asked, not the remainder


def test_a_full_delivery_names_one_origin_per_image() -> None:
    result = run(generate(Chain([FakeProvider("only")], policy=FAST, log=False), n=3))
    assert result.origins == [ImageOrigin(provider="only", model="fake-image-1")] * 3


def test_partial_without_a_reported_cost_bills_the_delivered_share_of_the_estimate() -> None:
    first = HalfFake("first", deliver=1, price_usd=0.04, report_cost=False)
    chain = Chain([first, FakeProvider("second")], policy=FAST, log=False)
    result = run(generate(chain, n=4))
    attempt = result.attempts[0]
    estimate = attempt.estimated_cost_usd
    assert estimate == pytest.approx(0.16)
    assert attempt.cost_source == "estimated"
    assert attempt.cost_usd == pytest.approx(estimate / 4)  # one image of four delivered


def test_when_nobody_delivers_the_rest_the_error_keeps_the_paid_images() -> None:
    first = HalfFake("first", deliver=1)
    chain = Chain([first, FakeProvider("second", script=[500] * 5)], policy=FAST, log=False)
    with pytest.raises(ChainExhaustedError) as info:
        run(generate(chain, n=2))
    assert len(info.value.images) == 1
    assert info.value.cost_usd == pytest.approx(0.01)


def test_partials_from_two_providers_add_up_to_n() -> None:
    a = HalfFake("a", deliver=1)
    b = HalfFake("b", deliver=1)
    c = FakeProvider("c")
    result = run(generate(Chain([a, b, c], policy=FAST, log=False), n=3))
    assert [o.provider for o in result.origins] == ["a", "b", "c"]
    assert [r.n for r in b.requests] == [2] and [r.n for r in c.requests] == [1]


# ----------------------------------------------------------------- Gemini + the emulator

KEY = "test-key-gemini-123"


def test_gemini_n2_one_paid_image_and_one_429_keeps_the_image() -> None:
    emu = Emulator(faults={"gemini": {"script": ["ok", {"fault": "rate_limit"}]}},
                   api_keys=KEY)
    gemini = GeminiProvider("gemini-2.5-flash-image", api_key=KEY,
                            base_url="http://emulator.test", transport=emu.httpx2_transport())
    backup = FakeProvider("backup", price_usd=0.01)
    chain = Chain([gemini, backup], policy=FAST, log=False)
    result = run(chain.agenerate(ImageRequest(prompt="two foxes", n=2)))
    run(chain.aclose())
    assert len(result.images) == 2
    assert [o.provider for o in result.origins] == ["gemini", "backup"]
    assert [r.n for r in backup.requests] == [1]
    paid = result.attempts[0]
    assert paid.outcome is Outcome.RATE_LIMITED
    assert paid.cost_source == "reported" and paid.cost_usd > 0  # the delivered call's bill
    assert result.cost_usd == pytest.approx(paid.cost_usd + 0.01)
