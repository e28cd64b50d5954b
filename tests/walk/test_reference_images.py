"""``ImageRequest.reference_images``: sent (as input images) to providers whose model takes a
reference image, dropped with a recorded note for the others, which still serve."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from fallback_chain import Chain, ImageRequest, Outcome, Policy
from fallback_chain.imaging import placeholder_image
from fallback_chain.providers import FakeProvider
from fallback_chain.walk.reference import DROPPED, fit_reference

DRAFT = placeholder_image(64, 64, seed=5)
FAST = Policy(backoff_initial_s=0.0, backoff_jitter=0.0, wait_for_cooldown=False)


def _no_reference(name: str, *script: object) -> FakeProvider:
    fake = FakeProvider(name, list(script))
    fake.capabilities = replace(fake.capabilities, reference_image=False)
    return fake


def test_a_provider_without_reference_images_still_serves_without_it() -> None:
    takes, takes_not = FakeProvider("takes", ["401"]), _no_reference("plain")
    chain = Chain([takes, takes_not], policy=FAST, log=False)
    request = ImageRequest(prompt="a fox", reference_images=[DRAFT])
    result = asyncio.run(chain.agenerate(request))
    assert result.provider == "plain"
    assert takes.requests[0].images == (DRAFT,)  # as an input image
    assert takes.requests[0].reference_images == ()
    assert takes_not.requests[0].images == takes_not.requests[0].reference_images == ()
    first, last = result.attempts[0], result.attempts[-1]
    assert first.outcome is Outcome.AUTH_ERROR and not (first.message or "").startswith(DROPPED)
    assert last.outcome is Outcome.SUCCESS
    assert last.message == f"{DROPPED}: plain takes no reference image"


def test_fit_reference_leaves_plain_requests_alone() -> None:
    request = ImageRequest(prompt="a fox")
    assert fit_reference(request, FakeProvider("a")) == (request, None)
    fake = FakeProvider("a")
    fake.capabilities = replace(fake.capabilities, edits=False)  # says no to the reference
    sent, note = fit_reference(ImageRequest(prompt="a fox", reference_images=[DRAFT]), fake)
    assert sent.images == sent.reference_images == ()
    assert note == f"{DROPPED}: this provider does not edit images"
