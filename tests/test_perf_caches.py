"""The per-request caches and fast paths added for issue 9 give the same answers as the code
they replaced: price lookups remembered by the catalogue, the OpenAI adapter's plan (size,
quality, estimate) per request shape, the lazily computed ``GeneratedImage.sha256``, and the
copy-free PNG check, which must still reject every corrupt or truncated image.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import ValidationError

from benchmarks import bench_overhead
from benchmarks.__main__ import select
from fallback_chain import ImageRequest
from fallback_chain.cost import catalogue as catalogue_module
from fallback_chain.cost.catalogue import ENV_VAR, PriceCatalogue
from fallback_chain.cost.estimate import estimate
from fallback_chain.cost.usage import cost_from_gemini_usage, cost_from_openai_usage
from fallback_chain.emulator import Emulator
from fallback_chain.imaging import InvalidImageError, inspect_image, placeholder_image
from fallback_chain.providers import OpenAIProvider
from fallback_chain.providers.openai import adapter as openai_module
from fallback_chain.results import GeneratedImage, trusted

pytestmark = pytest.mark.filterwarnings(
    "ignore::fallback_chain.providers.catalogue.ModelLifecycleWarning")

KEY = "test-key"
BASE = "http://emulator.test/v1"
USAGE = {"input_tokens": 10, "output_tokens": 272, "total_tokens": 282,
         "input_tokens_details": {"image_tokens": 0, "text_tokens": 10},
         "output_tokens_details": {"image_tokens": 272, "text_tokens": 0}}
SIZES = ("auto", "512x512", "1024x1024", "1536x1024", "1024x1536", "1920x1080", "16:9",
         "3:4", "777x333")
QUALITIES = ("draft", "standard", "final")


@pytest.fixture(autouse=True)
def _fresh_prices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_VAR, raising=False)
    PriceCatalogue.clear_cache()
    yield
    PriceCatalogue.clear_cache()


def provider(model: str = "gpt-image-2", **kw: Any) -> OpenAIProvider:
    return OpenAIProvider(model=model, api_key=KEY, base_url=BASE, **kw)


def fresh_builtin() -> PriceCatalogue:
    """The built-in prices in a catalogue no lookup has touched yet."""
    return PriceCatalogue(PriceCatalogue.builtin().to_dict())


# ----------------------------------------------------------------------------- catalogue


def test_remembered_lookups_equal_a_fresh_catalogues_answers() -> None:
    used = PriceCatalogue.builtin()
    grid = [(v, m, q, s) for v, m, _ in used.entries()
            for q in (None, *QUALITIES, "high", "4K") for s in (None, "1024x1024", "2048x2048")]
    first = [used.vendor_quality(*args) for args in grid]
    again = [used.vendor_quality(*args) for args in grid]  # from the memo now
    fresh = fresh_builtin()
    assert first == again == [fresh.vendor_quality(*args) for args in grid]
    for vendor, model, _ in used.entries():
        assert used.model(vendor, model) == fresh.model(vendor, model)
        assert used.price_factor(vendor, model) == fresh.price_factor(vendor, model)
        assert used.unit(vendor, model) == fresh.unit(vendor, model)
        assert used.quality_tiers(vendor, model) == fresh.quality_tiers(vendor, model)
    assert used.model("openai", "no-such-model") is None


def test_quality_tiers_hands_out_a_copy() -> None:
    cat = PriceCatalogue.builtin()
    tiers = cat.quality_tiers("openai", "gpt-image-2")
    tiers["draft"] = "tampered"
    assert cat.quality_tiers("openai", "gpt-image-2")["draft"] == "low"
    assert cat.vendor_quality("openai", "gpt-image-2", "draft") == "low"


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue_module, "MEMO_SIZE", 8)
    cat = fresh_builtin()
    for i in range(50):
        assert cat.vendor_quality("openai", "gpt-image-2", "draft", f"{64 + i}x64") == "low"
        assert len(cat._memo) <= 8


def test_negotiated_prices_apply_through_every_cache() -> None:
    base = PriceCatalogue.builtin()
    flat = base.with_overrides({"vendors": {"openai": {"models": {
        "gpt-image-2": {"flat_usd_per_image": 0.01}}}}})
    discount = base.with_overrides({"vendors": {"openai": {"price_factor": 0.5}}})
    listed = cost_from_openai_usage("gpt-image-2", USAGE, catalogue=base)
    assert listed is not None and listed > 0
    # the same model and usage, asked of each catalogue in turn: nothing leaks between them
    for _ in range(2):
        assert cost_from_openai_usage("gpt-image-2", USAGE, images=3, catalogue=flat) == (
            pytest.approx(0.03))
        assert cost_from_openai_usage("gpt-image-2", USAGE, catalogue=discount) == (
            pytest.approx(listed * 0.5))
        assert cost_from_openai_usage("gpt-image-2", USAGE, catalogue=base) == listed
    assert cost_from_openai_usage("no-such-model", USAGE, catalogue=base) is None
    gemini_flat = base.with_overrides({"vendors": {"gemini": {"price_factor": 2.0, "models": {
        "gemini-2.5-flash-image": {"flat_usd_per_image": 0.03}}}}})
    produced = {"candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}]}
    assert cost_from_gemini_usage("gemini-2.5-flash-image", produced,
                                  catalogue=gemini_flat) == pytest.approx(0.06)

    request = ImageRequest(prompt="x", size="1024x1024", quality="final")
    plain, cheap, fixed = provider(), provider(prices=discount), provider(prices=flat)
    for _ in range(2):
        assert plain.estimate_cost(request) == estimate(
            "openai", "gpt-image-2", size="1024x1024", quality="high", catalogue=base)
        assert cheap.estimate_cost(request) == pytest.approx(plain.estimate_cost(request) * 0.5)
        assert fixed.estimate_cost(request) == pytest.approx(0.01)


def test_a_changed_price_file_reaches_a_provider_built_before_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = provider()
    request = ImageRequest(prompt="x", size="1024x1024", quality="standard")
    listed = p.estimate_cost(request)
    assert listed is not None
    assert cost_from_openai_usage("gpt-image-2", USAGE) is not None

    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"vendors": {"openai": {"models": {"gpt-image-2": {
        "flat_usd_per_image": 0.02}}}}}))
    monkeypatch.setenv(ENV_VAR, str(path))
    assert p.estimate_cost(request) == pytest.approx(0.02)
    assert cost_from_openai_usage("gpt-image-2", USAGE, images=2) == pytest.approx(0.04)

    path.write_text(json.dumps({"vendors": {"openai": {"models": {"gpt-image-2": {
        "flat_usd_per_image": 0.05}}}}}))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert p.estimate_cost(request) == pytest.approx(0.05)
    assert cost_from_openai_usage("gpt-image-2", USAGE) == pytest.approx(0.05)

    monkeypatch.delenv(ENV_VAR)
    assert p.estimate_cost(request) == listed


# ----------------------------------------------------------------------------- provider plans


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-1.5", "dall-e-3"])
def test_every_request_shape_gets_its_own_plan(model: str) -> None:
    p = provider(model)
    prices = PriceCatalogue.default()
    requests = [ImageRequest(prompt="x", size=s, quality=q, n=n)
                for s in SIZES for q in QUALITIES for n in (1, 2)]
    for _ in range(2):  # the second pass is served from the cache
        for r in requests:
            size = p.capabilities.size_for(r)
            quality = prices.vendor_quality("openai", model, r.quality, size)
            want = estimate("openai", model, size=size, quality=quality, n=r.n,
                            catalogue=fresh_builtin())
            assert p.estimate_cost(r) == want
            plan = p._plan(r)
            assert (plan.size, plan.quality) == (size, quality)
            assert p.vendor_quality(r, size) == quality
    estimates = {p.estimate_cost(r) for r in requests}
    assert len(estimates) > 3  # sizes and tiers really are priced differently


def test_the_plan_cache_is_bounded_and_stays_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_module, "PLAN_CACHE_SIZE", 4)
    p = provider()
    requests = [ImageRequest(prompt="x", size=f"{512 + 16 * i}x512") for i in range(20)]
    first = [p.estimate_cost(r) for r in requests]
    assert len(p._plans) <= 4
    assert [p.estimate_cost(r) for r in reversed(requests)] == first[::-1]
    assert len(p._plans) <= 4


def test_generate_sends_each_requests_own_size_and_quality() -> None:
    emu = Emulator(api_keys=KEY)

    async def main() -> None:
        http = httpx2.AsyncClient(transport=emu.httpx2_transport())
        p = provider("gpt-image-2", http_client=http)
        asks = [("1024x1024", "draft", "1024x1024", "low"),
                ("1536x1024", "final", "1536x1024", "high"),
                ("1024x1024", "draft", "1024x1024", "low"),
                ("1024x1536", "standard", "1024x1536", "medium")]
        try:
            for size, tier, sent_size, sent_quality in asks:
                request = ImageRequest(prompt="a lighthouse", size=size, quality=tier)
                assert p.estimate_cost(request) is not None
                reply = await p.generate(request, timeout=5)
                params = emu.requests(vendor="openai")[-1].params
                assert params is not None
                assert (params["size"], params["quality"]) == (sent_size, sent_quality)
                assert reply.usage is not None
                assert reply.cost_usd == cost_from_openai_usage("gpt-image-2", reply.usage)
                assert (reply.images[0].width, reply.images[0].height) == tuple(
                    int(x) for x in sent_size.split("x"))
        finally:
            await p.aclose()
            await http.aclose()

    asyncio.run(main())


# ----------------------------------------------------------------------------- sha256


def test_sha256_is_computed_on_first_use_and_is_the_digest_of_the_bytes() -> None:
    data = placeholder_image(64, 32, seed=7)
    image = GeneratedImage.from_bytes(data)
    assert "sha256" not in image.__dict__  # not hashed while nobody asks
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.__dict__["sha256"] == image.sha256  # and kept
    assert image.sha256 in repr(image) or image.sha256[:12] in repr(image)


def test_a_lazily_hashed_image_equals_a_validated_one() -> None:
    data = placeholder_image(48, 48, seed=3, alpha=True)
    fast = GeneratedImage.from_bytes(data)
    slow = GeneratedImage(data=data)
    built = trusted(GeneratedImage, data=data, mime_type="image/png", width=48, height=48)
    assert fast == slow == built and hash(fast) == hash(slow)
    assert fast.model_dump() == slow.model_dump() == {
        "data": data, "mime_type": "image/png", "width": 48, "height": 48,
        "sha256": hashlib.sha256(data).hexdigest()}
    assert fast == slow  # one hashed, one not: still equal
    assert fast.model_dump_json() == slow.model_dump_json()
    again = GeneratedImage.model_validate_json(fast.model_dump_json())
    assert again == fast and again.sha256 == fast.sha256
    assert pickle.loads(pickle.dumps(fast)).sha256 == fast.sha256
    assert fast.model_fields_set == slow.model_fields_set


def test_sha256_cannot_be_set_and_follows_copied_bytes() -> None:
    image = GeneratedImage.from_bytes(placeholder_image(16, 16, seed=1))
    with pytest.raises((AttributeError, ValidationError, TypeError)):
        image.sha256 = "0" * 64  # type: ignore[misc]
    assert image.sha256 == hashlib.sha256(image.data).hexdigest()
    other = placeholder_image(16, 16, seed=2)
    copied = image.model_copy(update={"data": other})
    assert copied.sha256 == hashlib.sha256(other).hexdigest() != image.sha256


def test_a_forged_sha256_in_serialised_input_is_not_believed() -> None:
    data = placeholder_image(16, 16, seed=5)
    forged = GeneratedImage.model_validate({"data": data, "mime_type": "image/png",
                                            "width": 16, "height": 16, "sha256": "0" * 64})
    assert forged.sha256 == hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- PNG checks


def _reference_inspect_png(data: bytes) -> tuple[int, int, bool]:
    """The check as it was before the copy-free rewrite (a CRC over copied chunk bytes)."""
    pos, width, height, color_type = 8, 0, 0, -1
    seen_idat = seen_iend = has_trns = False
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        ctype = data[pos + 4: pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise InvalidImageError("truncated")
        body = data[pos + 8: pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        if zlib.crc32(ctype + body) != crc:
            raise InvalidImageError("crc")
        if ctype == b"IHDR":
            if length != 13:
                raise InvalidImageError("ihdr")
            width, height, _depth, color_type = struct.unpack_from(">IIBB", body)
        elif ctype == b"IDAT":
            seen_idat = True
        elif ctype == b"tRNS":
            has_trns = True
        elif ctype == b"IEND":
            seen_iend = True
            break
        pos = end
    if not (width and height and seen_idat and seen_iend):
        raise InvalidImageError("incomplete")
    return width, height, color_type in (4, 6) or has_trns


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def multi_idat_png(width: int = 40, height: int = 30, parts: int = 4) -> bytes:
    """A PNG whose image data is split over several IDAT chunks, as encoders write them."""
    raw = b"".join(b"\x00" + bytes((x * 7 + y * 13) % 256 for x in range(width * 3))
                   for y in range(height))
    stream = zlib.compress(raw, 9)
    step = -(-len(stream) // parts)
    idats = b"".join(_chunk(b"IDAT", stream[i:i + step]) for i in range(0, len(stream), step))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"tEXt", b"k\x00v")
            + idats + _chunk(b"IEND", b""))


def _verdict(check: Any, data: bytes) -> tuple[int, int, bool] | None:
    try:
        info = check(data)
    except InvalidImageError:
        return None
    return info if isinstance(info, tuple) else (info.width, info.height, info.has_alpha)


@pytest.mark.parametrize("data", [
    placeholder_image(16, 12, seed=1),
    placeholder_image(9, 9, seed=2, alpha=True),
    multi_idat_png(),
], ids=["rgb", "rgba", "multi-idat"])
def test_every_single_byte_corruption_and_every_truncation_is_rejected(data: bytes) -> None:
    assert _verdict(inspect_image, data) == _verdict(_reference_inspect_png, data) is not None
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            mangled = data[:i] + bytes([data[i] ^ flip]) + data[i + 1:]
            assert _verdict(inspect_image, mangled) is None, (i, flip)
    for cut in range(len(data)):
        assert _verdict(inspect_image, data[:cut]) is None, cut


def test_corruption_inside_image_data_is_caught_without_decoding() -> None:
    data = multi_idat_png(parts=5)
    idats = [i for i in range(len(data) - 3) if data[i:i + 4] == b"IDAT"]
    assert len(idats) == 5
    for start in idats:  # a bit flipped in the middle of each IDAT's data
        (length,) = struct.unpack_from(">I", data, start - 4)
        at = start + 4 + length // 2
        mangled = data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]
        with pytest.raises(InvalidImageError, match="bad CRC"):
            inspect_image(mangled)
    # cut off after any IDAT chunk: no IEND, so incomplete
    for start in idats:
        (length,) = struct.unpack_from(">I", data, start - 4)
        with pytest.raises(InvalidImageError, match="incomplete"):
            inspect_image(data[:start + 4 + length + 4])


def test_a_header_chunk_of_the_wrong_length_is_an_invalid_image() -> None:
    good = placeholder_image(8, 8)
    short_ihdr = _chunk(b"IHDR", good[16:16 + 8])  # 8 bytes with a valid CRC
    bad = good[:8] + short_ihdr + good[8 + 25:]
    with pytest.raises(InvalidImageError, match="13"):
        inspect_image(bad)
    with pytest.raises(InvalidImageError):
        GeneratedImage.from_bytes(bad)


def test_large_images_pass_the_same_check() -> None:
    big = placeholder_image(2048, 1536, seed=9)
    assert _verdict(inspect_image, big) == _verdict(_reference_inspect_png, big) == (
        2048, 1536, False)
    at = len(big) // 2
    assert _verdict(inspect_image, big[:at] + bytes([big[at] ^ 1]) + big[at + 1:]) is None


# ----------------------------------------------------------------------------- benchmark CLI


def test_case_letters_select_benchmarks_and_overhead_cases() -> None:
    assert select(["c", "d"]) == (["overhead"], ["c", "d"])
    assert select(["e", "f", "g"]) == (["router", "import", "memory"], [])
    assert select(["overhead", "c"]) == (["overhead"], [])  # by name: every case
    assert select(["d", "router", "a"]) == (["overhead", "router"], ["a", "d"])


def test_the_overhead_benchmark_runs_only_the_cases_asked_for() -> None:
    calls: dict[str, Any] = {k: None for k in ("a", "b", "c", "d", "c+verify", "d+verify")}
    groups = bench_overhead._groups(calls, calls, None, ["c", "d"])
    assert [g.name for g in groups] == ["c", "d"]
    assert [g.name for g in bench_overhead._groups(calls, calls, None, ["b"])] == ["a/b"]
    with pytest.raises(ValueError, match="cases"):
        bench_overhead.run(quick=True, litellm=False, cases=["x"])
