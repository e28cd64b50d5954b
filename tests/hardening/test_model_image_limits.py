"""Issue 27, item 2 (remainder): an image declaring a size beyond what the MODEL makes is
refused, from its header, before anything is inflated, as the vendor's fault (a malformed
answer: the chain moves on). The limits come from the model's records (its capabilities: the
largest listed size, times ``SIZE_MARGIN`` a side), not from the fixed 32,768 px / 200 MP cap
that applies to any image.

Before: a 14142x14142 PNG from a model whose largest size is 1536 was inflated in full (0.93 s
of CPU for a 16-bit one, issue 27) and delivered; after: refused from its 24-byte header."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import time
import warnings
import zlib
from types import SimpleNamespace
from typing import Any

import httpx
import httpx2
import pytest
from hostile_helpers import BASE, KEY, PROMPT, attempt, chunk, png
from PIL import Image

from fallback_chain import ImageRequest, Outcome
from fallback_chain.clock import FastForwardClock
from fallback_chain.errors import ProviderError
from fallback_chain.image_limits import SIZE_MARGIN, ImageLimits, declared_size
from fallback_chain.imaging import InvalidImageError
from fallback_chain.providers import OpenAIProvider
from fallback_chain.providers.catalogue import lookup
from fallback_chain.providers.fake import FakeProvider

SIDE = 14_142


def huge_png(side: int = SIDE) -> bytes:
    """A valid 1-bit PNG of ``side``² pixels (200 MP), a few kilobytes on the wire."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    z = zlib.compressobj(1)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(
        b"IEND", b"")


HUGE = huge_png()


@pytest.fixture
def inspected(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the images the full check (``inspect_image``) is run on."""
    from fallback_chain import verify

    seen: list[int] = []
    original = verify.inspect_image

    def counting(data: bytes, **kw: Any) -> Any:
        seen.append(len(data))
        return original(data, **kw)

    monkeypatch.setattr(verify, "inspect_image", counting)
    return seen


def _openai(model: str, data: bytes) -> OpenAIProvider:
    answer = {"created": 1, "data": [{"b64_json": base64.b64encode(data).decode()}],
              "usage": {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110,
                        "input_tokens_details": {"text_tokens": 10, "image_tokens": 0}}}
    api = httpx2.MockTransport(lambda _r: httpx2.Response(200, json=answer))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifecycle notices of the older models
        return OpenAIProvider(model, api_key=KEY, base_url=f"{BASE}/v1",
                              http_client=httpx2.AsyncClient(transport=api))


def test_the_limits_come_from_the_model_records() -> None:
    small = ImageLimits.of(lookup("openai", "gpt-image-1.5").capabilities)  # 1536x1024 at most
    assert (small.max_side, small.max_pixels) == (1536 * SIZE_MARGIN,
                                                  1536 * 1024 * SIZE_MARGIN ** 2)
    free = ImageLimits.of(lookup("openai", "gpt-image-2").capabilities)  # any WxH to 3840
    assert free.max_side == 3840 * SIZE_MARGIN
    leonardo = ImageLimits.of(lookup("leonardo", "lightning-xl").capabilities)
    assert leonardo.max_side == 1536 * SIZE_MARGIN
    assert small.refusal(png(1536, 1024)) is None
    assert "14142x14142" in (small.refusal(HUGE) or "")


def test_a_model_of_1536_px_refuses_a_14142_px_image_from_its_header(
        inspected: list[int]) -> None:
    provider = _openai("gpt-image-1.5", HUGE)
    request = ImageRequest(prompt=PROMPT, size="1536x1024")
    t0 = time.perf_counter()
    with pytest.raises(ProviderError) as caught:
        asyncio.run(provider.generate(request, timeout=10))
    took = time.perf_counter() - t0
    assert caught.value.outcome is Outcome.MALFORMED_RESPONSE
    assert "14142x14142" in caught.value.message and "gpt-image-1.5" in caught.value.message
    assert inspected == []  # refused from the header: nothing was inflated
    assert took < 5  # generous: the refusal itself is microseconds


def test_the_chain_moves_on_to_the_next_provider(inspected: list[int]) -> None:
    request = ImageRequest(prompt=PROMPT, size="1024x1024")
    result, error = asyncio.run(attempt([_openai("gpt-image-2", HUGE), FakeProvider("b")],
                                        request, clock=FastForwardClock()))
    assert error is None and result is not None and result.provider == "b"
    first = result.attempts[0]
    assert first.outcome is Outcome.MALFORMED_RESPONSE
    assert "more than model gpt-image-2 makes" in (first.message or "")
    assert HUGE and len(HUGE) not in inspected


def test_an_image_within_the_model_limits_is_still_delivered() -> None:
    provider = _openai("gpt-image-2", png(1024, 1024))
    reply = asyncio.run(provider.generate(ImageRequest(prompt=PROMPT, size="1024x1024"),
                                          timeout=10))
    assert (reply.images[0].width, reply.images[0].height) == (1024, 1024)


def test_gemini_refuses_it_too() -> None:
    from fallback_chain.providers.gemini.parse import read_response

    inline = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(HUGE).decode()}}
    body = json.dumps({"candidates": [{"content": {"parts": [inline]},
                                       "finishReason": "STOP"}]})
    response = SimpleNamespace(sdk_http_response=SimpleNamespace(body=body))
    limits = ImageLimits.of(lookup("gemini", "gemini-2.5-flash-image").capabilities,
                            "gemini-2.5-flash-image")
    with pytest.raises(ProviderError) as caught:
        asyncio.run(read_response(response, lambda _u: None, limits))
    assert caught.value.outcome is Outcome.MALFORMED_RESPONSE
    assert "14142x14142" in caught.value.message


def test_a_downloaded_image_is_refused_too(inspected: list[int]) -> None:
    from fallback_chain.providers.download import AllowList, fetch_image

    transport = httpx.MockTransport(lambda _r: httpx.Response(200, content=HUGE))
    limits = ImageLimits.of(lookup("leonardo", "lightning-xl").capabilities, "lightning-xl")

    async def go() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await fetch_image(client, "https://cdn.leonardo.ai/x.png",
                              AllowList(hosts=("cdn.leonardo.ai",)), timeout=5, limits=limits)

    with pytest.raises(ProviderError) as caught:
        asyncio.run(go())
    assert caught.value.outcome is Outcome.MALFORMED_RESPONSE and inspected == []


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "GIF", "PNG"])
def test_every_format_is_sized_from_its_header(fmt: str) -> None:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), (10, 20, 30)).save(out, format=fmt)
    assert declared_size(out.getvalue()) == (320, 200)
    refused = ImageLimits(max_side=300, max_pixels=10**6, model="m")
    with pytest.raises(InvalidImageError, match="320x200"):
        refused.check(out.getvalue())
