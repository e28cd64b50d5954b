"""Retry-After parsing, image inspection, secret redaction, sizing."""

from __future__ import annotations

import email.utils

import pytest

from fallback_chain import ImageRequest
from fallback_chain.imaging import InvalidImageError, inspect_image, placeholder_image
from fallback_chain.policy import parse_duration, parse_retry_after
from fallback_chain.provider import Capabilities
from fallback_chain.results import GeneratedImage
from fallback_chain.secrets import redact, register_secret

NOW = 1_767_225_600.0


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "12"}, 12.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "250", "retry-after": "30"}, 0.25),
    ({"Retry-After": email.utils.formatdate(NOW + 42, usegmt=True)}, 42.0),
    ({"Retry-After": email.utils.formatdate(NOW - 5, usegmt=True)}, 0.0),
    ({"Retry-After": "soon"}, None),
    ({}, None),
])
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers, now=NOW) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("19s", 19.0), ("3.700s", 3.7), ("250ms", 0.25), ("12", 12.0), ("x", None), (None, None)])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_placeholder_images_are_real_images(fmt):
    data = placeholder_image(320, 200, seed=5, fmt=fmt)
    info = inspect_image(data)
    assert (info.mime_type, info.width, info.height) == (f"image/{fmt}", 320, 200)
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(data)) as img:
        img.load()
        assert img.size == (320, 200)


def test_placeholder_varies_with_seed_and_alpha_is_flagged():
    assert placeholder_image(64, 64, seed=1) != placeholder_image(64, 64, seed=2)
    assert inspect_image(placeholder_image(64, 64, alpha=True)).has_alpha
    assert not inspect_image(placeholder_image(64, 64)).has_alpha


@pytest.mark.parametrize("mangle", [
    lambda d: d[:-12],  # truncated: no IEND
    lambda d: d[:40] + bytes([d[40] ^ 0xFF]) + d[41:],  # corrupt chunk: bad CRC
    lambda d: b"<html>502 Bad Gateway</html>",
    lambda d: b"",
])
def test_corrupt_images_are_rejected(mangle):
    with pytest.raises(InvalidImageError):
        inspect_image(mangle(placeholder_image(64, 64)))


def test_generated_image_save_is_atomic_and_adds_suffix(tmp_path):
    img = GeneratedImage.from_bytes(placeholder_image(64, 32))
    path = img.save(tmp_path / "sub" / "hero")
    assert path.name == "hero.png"
    assert path.read_bytes() == img.data
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    assert "bytes" in repr(img) and str(len(img.data)) in repr(img)
    again = GeneratedImage(data=img.data)
    assert again.sha256 == img.sha256 and (again.width, again.height) == (64, 32)


def test_redaction_masks_registered_and_key_shaped_secrets():
    register_secret("my-very-secret-token-123")
    text = "bad key my-very-secret-token-123 and sk-abcdefghijklmnopqrstuvwx here"
    assert redact(text) == "bad key *** and *** here"


@pytest.mark.parametrize(("size", "expected"), [
    ("auto", (1024, 1024)),
    ("1920x1080", (1536, 1024)),
    ("1080x1920", (1024, 1536)),
    ("16:9", (1536, 1024)),
    ("1:1", (1024, 1024)),
])
def test_nearest_fixed_size(size, expected):
    caps = Capabilities(sizes=((1024, 1024), (1536, 1024), (1024, 1536)))
    assert caps.size_for(ImageRequest(prompt="x", size=size)) == expected


@pytest.mark.parametrize(("size", "expected"), [
    ("1000x1000", (992, 992)),
    ("16:9", (1360, 768)),
    ("6000x2000", (3840, 1280)),
])
def test_nearest_free_size(size, expected):
    caps = Capabilities(size_multiple=16, max_side=3840, max_pixels=3840 * 2160, max_ratio=3.0)
    assert caps.size_for(ImageRequest(prompt="x", size=size)) == expected


def test_nearest_aspect_ratio():
    caps = Capabilities(aspect_ratios=((1, 1), (16, 9), (9, 16), (4, 3)))
    assert caps.aspect_ratio_for(ImageRequest(prompt="x", size="1920x1080")) == (16, 9)
    assert caps.aspect_ratio_for(ImageRequest(prompt="x", size="5:4")) == (4, 3)
    assert caps.aspect_ratio_for(ImageRequest(prompt="x")) is None


def test_trusted_construction_equals_validated_construction():
    from datetime import UTC, datetime

    from fallback_chain.outcome import Outcome
    from fallback_chain.results import Attempt, trusted

    values = dict(provider="a", model="m", attempt=2, outcome=Outcome.RATE_LIMITED,
                  status_code=429, provider_code="rate_limit_exceeded", message="slow",
                  started_at=datetime(2026, 1, 1, tzinfo=UTC), latency_s=0.5, cost_usd=0.0,
                  cost_source="none", retry_after_s=3.0, estimated_cost_usd=0.04)
    fast = trusted(Attempt, **values)
    slow = Attempt(**values)
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_dump_json() == slow.model_dump_json()
    assert Attempt.model_validate_json(fast.model_dump_json()) == slow


def test_the_fast_forward_clock_skips_waits_but_keeps_real_time() -> None:
    import asyncio
    import time

    from fallback_chain.clock import FastForwardClock

    clock = FastForwardClock()
    before, wall = clock.now(), clock.wall()
    started = time.monotonic()
    asyncio.run(clock.sleep(3600))
    assert time.monotonic() - started < 1.0  # nothing really slept
    assert clock.now() - before >= 3600 and clock.wall() - wall >= 3600
