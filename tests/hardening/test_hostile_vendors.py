"""Issue 27 (hardening, round 2): what a hostile vendor can send after the money is spent.

Surplus images are dropped (finding 4), answers are capped while they stream (finding 1),
``compare`` survives images it cannot draw (finding 3), a cache entry is verified when it is
read (finding 8), and the smaller ones: cross-origin redirects of API calls, credentials in a
``base_url``, and the emulator's multipart edits (finding 12)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hostile_helpers import BASE, KEY, PROMPT, attempt, chunk, png

from fallback_chain import Chain, ImageRequest
from fallback_chain.batch.engine import BatchOptions, run_batch
from fallback_chain.batch.stats import BatchSummary
from fallback_chain.clock import FastForwardClock
from fallback_chain.provider import ProviderReply
from fallback_chain.providers import GeminiProvider, OpenAIProvider
from fallback_chain.providers.fake import FakeProvider
from fallback_chain.results import GeneratedImage

# ------------------------------------------------------------------ finding 4: surplus images


class _Flood(FakeProvider):
    """Answers every request with ``count`` images, whatever ``n`` was."""

    def __init__(self, count: int) -> None:
        super().__init__("flood")
        self.count = count

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        image = GeneratedImage.from_bytes(png(16, 16))
        return ProviderReply(images=[image] * self.count, cost_usd=0.01)


def test_an_answer_with_more_images_than_asked_delivers_n_and_records_the_surplus() -> None:
    result, error = asyncio.run(attempt([_Flood(3000)], ImageRequest(prompt=PROMPT, n=1),
                                        clock=FastForwardClock()))
    assert error is None and result is not None
    assert len(result.images) == 1
    assert len(result.origins) == 1
    message = result.attempts[-1].message or ""
    assert "3000" in message and "dropped 2999" in message


def test_openai_decodes_only_the_images_asked_for() -> None:
    """50 images for n=2: two are read, the rest are neither decoded nor delivered."""
    b64 = base64.b64encode(png(16, 16)).decode()
    decoded: list[int] = []
    api = httpx2.MockTransport(lambda _r: httpx2.Response(200, json={
        "created": 1, "data": [{"b64_json": b64}] * 50,
        "usage": {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110,
                  "input_tokens_details": {"text_tokens": 10, "image_tokens": 0}}}))
    provider = OpenAIProvider("gpt-image-2", api_key=KEY, base_url=f"{BASE}/v1",
                              http_client=httpx2.AsyncClient(transport=api))
    from fallback_chain.providers.openai import wire

    original = wire.verified_image

    async def counting(data: bytes, limits: Any = None) -> GeneratedImage:
        decoded.append(len(data))
        return await original(data, limits)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wire, "verified_image", counting)
        result, error = asyncio.run(attempt(
            [provider], ImageRequest(prompt=PROMPT, n=2, size="1024x1024"),
            clock=FastForwardClock()))
    assert error is None and result is not None
    assert len(result.images) == 2
    assert len(decoded) == 2
    assert "dropped 48" in (result.attempts[-1].message or "")


# ------------------------------------------------------------- finding 8: cache hits verified


def _batch(provider: FakeProvider, source: Path, out: Path, cache: Path) -> BatchSummary:
    chain = Chain([provider], log=False)
    options = BatchOptions(cache=str(cache), handle_signals=False, fsync=False)
    return asyncio.run(run_batch(chain, str(source), str(out), options))


@pytest.mark.parametrize("damage", ["html", "other_image", "truncated", "entry_sha"])
def test_a_damaged_cache_entry_is_a_miss_and_never_delivered(tmp_path: Path,
                                                             damage: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "c1", "prompt": PROMPT}) + "\n", encoding="utf-8")
    cache = tmp_path / "cache"
    first = FakeProvider("p", image_size=(32, 32))
    _batch(first, source, tmp_path / "out1", cache)
    [image] = [p for p in cache.rglob("*") if p.suffix == ".png"]
    [entry] = list(cache.rglob("*.json"))
    if damage == "html":
        image.write_bytes(b"<html><body>pwned</body></html>")
    elif damage == "other_image":
        image.write_bytes(png(32, 32, seed=99))  # a whole image, but not the one recorded
    elif damage == "truncated":
        image.write_bytes(image.read_bytes()[:100])
    else:  # the entry's own record rewritten to match nothing
        data = json.loads(entry.read_text())
        data["images"][0]["sha256"] = "0" * 64
        entry.write_text(json.dumps(data))
    second = FakeProvider("p", image_size=(32, 32))
    summary = _batch(second, source, tmp_path / "out2", cache)
    assert second.calls == 1 and summary.from_cache == 0 and summary.generated == 1
    delivered = (tmp_path / "out2" / "c1.png").read_bytes()
    car = json.loads((tmp_path / "out2" / "c1.json").read_text())
    assert hashlib.sha256(delivered).hexdigest() == car["images"][0]["sha256"]
    assert "shared" not in car or car["shared"] is None


def test_a_sound_cache_entry_is_still_a_hit(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "c1", "prompt": PROMPT}) + "\n", encoding="utf-8")
    cache = tmp_path / "cache"
    _batch(FakeProvider("p", image_size=(32, 32)), source, tmp_path / "out1", cache)
    second = FakeProvider("p", image_size=(32, 32))
    summary = _batch(second, source, tmp_path / "out2", cache)
    assert second.calls == 0 and summary.from_cache == 1
    assert ((tmp_path / "out2" / "c1.png").read_bytes()
            == (tmp_path / "out1" / "c1.png").read_bytes())


# --------------------------------------------------------- finding 3: compare never crashes


def bomb_png(side: int = 14_000) -> bytes:
    """A valid 1-bit greyscale PNG of ``side``² pixels (196 MP: Pillow refuses to open it with
    ``DecompressionBombError``), a few kilobytes on the wire."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(
        b"IEND", b"")


class _Sends(FakeProvider):
    """Answers with the given image bytes (already accepted by ``inspect_image``)."""

    def __init__(self, name: str, data: bytes) -> None:
        super().__init__(name)
        self.data = data

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        return ProviderReply(images=[GeneratedImage.from_bytes(self.data)], cost_usd=0.04)


def test_compare_writes_the_comparison_when_an_image_cannot_be_decoded(tmp_path: Path) -> None:
    from fallback_chain.compare import compare
    from fallback_chain.compare.output import write_outputs
    from fallback_chain.compare.tables import cross_table, summary_table

    bomb = bomb_png()
    providers = [_Sends("bomb", bomb), _Sends("fine", png(64, 64)), _Sends("fine2", png(64, 64))]
    comparison = asyncio.run(compare(providers, ImageRequest(prompt=PROMPT), runs=2,
                                     concurrency=1))
    outputs = write_outputs(comparison, tmp_path / "out", thumb_px=64)
    doc = json.loads(outputs.json.read_text())
    bombs = [c for c in doc["cells"] if c["label"] == "bomb"]
    # whatever else happens to such an image, the paid run is in the comparison, marked
    assert len(bombs) == 2 and all(c["decodable"] is False or not c["delivered"] for c in bombs)
    assert all(c["decodable"] is True for c in doc["cells"] if c["label"] != "bomb")
    assert outputs.sheet.exists() and outputs.sheet.stat().st_size > 0
    assert doc["cost_usd"] > 0
    assert cross_table(comparison) is not None and summary_table(comparison) is not None


# ---------------------------------------------------- finding 1: answers capped as they stream


class HugeAnswer:
    """A loopback HTTP server whose every answer is ``size`` bytes of (the start of) a JSON
    image answer, streamed without a length; it counts what it managed to send before the
    client hung up."""

    def __init__(self, size: int, *, status: int = 200, gzip_body: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        self.size = size
        self.status = status
        self.gzip_body = gzip_body
        self.headers = headers or {}
        self.sent = 0
        self.requests: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> HugeAnswer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head.decode("latin-1"))
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            encoding = "Content-Encoding: gzip\r\n" if self.gzip_body else ""
            writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\n"
                         f"{encoding}{extra}Connection: close\r\n\r\n".encode())
            for piece in self._body():
                writer.write(piece)
                await writer.drain()
                self.sent += len(piece)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def _body(self) -> Iterator[bytes]:
        block = b"A" * (1024 * 1024)
        if self.gzip_body:  # a compression bomb: ``size`` bytes once inflated
            z = zlib.compressobj(9, zlib.DEFLATED, 31)
            yield z.compress(b'{"created":1,"data":[{"b64_json":"')
            for _ in range(self.size // len(block)):
                out = z.compress(block)
                if out:
                    yield out
            yield z.flush()
            return
        yield b'{"created":1,"data":[{"b64_json":"'
        for _ in range(self.size // len(block)):
            yield block


def _openai(port: int, **kw: Any) -> OpenAIProvider:
    return OpenAIProvider("gpt-image-2", api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1",
                          **kw)


def _gemini(port: int, **kw: Any) -> GeminiProvider:
    return GeminiProvider("gemini-2.5-flash-image", api_key=KEY,
                          base_url=f"http://127.0.0.1:{port}", **kw)


async def _against(server: HugeAnswer, make: Any, **kw: Any) -> tuple[Any, Any, float]:
    async with server:
        loop = asyncio.get_running_loop()
        started = loop.time()
        result, error = await attempt([make(server.port, **kw)],
                                      ImageRequest(prompt=PROMPT, size="1024x1024"),
                                      clock=FastForwardClock(), timeout=30)
        return result, error, loop.time() - started


MiB = 1024 * 1024


@pytest.mark.parametrize("make", [_openai, _gemini], ids=["openai", "gemini"])
def test_a_huge_answer_is_cut_off_at_the_cap_while_it_streams(make: Any) -> None:
    server = HugeAnswer(128 * MiB)
    result, error, _ = asyncio.run(_against(server, make, max_answer_bytes=4 * MiB))
    assert result is None and error is not None
    last = error.attempts[-1]
    assert last.outcome.value == "malformed_response"
    assert "cap for this call is 4,194,304 bytes" in (last.message or "")
    assert server.sent < 32 * MiB  # the client hung up soon after the cap, not at the end


def test_the_default_cap_cuts_off_a_huge_answer() -> None:
    """No option set: gpt-image-2, n=1 reads at most its budget (about 43 MiB) of 160 MiB."""
    server = HugeAnswer(160 * MiB)
    result, error, _ = asyncio.run(_against(server, _openai))
    assert result is None and error is not None
    assert "cap for this call" in (error.attempts[-1].message or "")
    assert server.sent < 100 * MiB


@pytest.mark.parametrize("make", [_openai, _gemini], ids=["openai", "gemini"])
def test_a_compression_bomb_is_capped_on_its_decoded_size(make: Any) -> None:
    server = HugeAnswer(256 * MiB, gzip_body=True)
    result, error, _ = asyncio.run(_against(server, make, max_answer_bytes=4 * MiB))
    assert result is None and error is not None
    assert "cap for this call" in (error.attempts[-1].message or "")
    assert "accept-encoding: gzip, deflate" in server.requests[0].lower()


@pytest.mark.parametrize("make", [_openai, _gemini], ids=["openai", "gemini"])
def test_a_declared_length_over_the_cap_is_refused_before_reading(make: Any) -> None:
    server = HugeAnswer(64 * MiB, headers={"Content-Length": str(64 * MiB + 34)})
    result, error, _ = asyncio.run(_against(server, make, max_answer_bytes=4 * MiB))
    assert result is None and error is not None
    assert "declares 67,108,898 bytes" in (error.attempts[-1].message or "")


def test_the_default_cap_fits_the_largest_legitimate_answer() -> None:
    """n images of the model's largest size, as base64 of an uncompressed RGBA PNG, fit."""
    from fallback_chain.providers.answer_cap import answer_budget

    for provider in (_openai(1), _gemini(1)):
        caps = provider.capabilities
        sizes = caps.sizes or ((caps.max_side, caps.max_pixels // caps.max_side),)
        w, h = max(sizes, key=lambda s: s[0] * s[1])
        largest_png = w * h * 4 + h + 1024  # raw RGBA rows with filter bytes, stored
        for n in (1, 4):
            assert answer_budget(caps, n) >= n * (largest_png * 4 // 3) + 64 * 1024
        assert answer_budget(caps, 1) < 256 * MiB  # and a 1 GiB answer is still refused


# ------------------------------------------------ finding 12: redirects and credentials in URLs


class Redirects(HugeAnswer):
    """Answers every request with a 307 to ``target`` (a path on another origin, or this
    one's): the SDKs follow redirects, and a 307 re-sends the body."""

    def __init__(self, target: str) -> None:
        super().__init__(0, status=307)
        self.target = target

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head.decode("latin-1"))
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        location = self.target.replace("{port}", str(self.port))
        writer.write(f"HTTP/1.1 307 Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


async def _redirected(make: Any) -> tuple[Any, HugeAnswer]:
    elsewhere = HugeAnswer(0)
    async with elsewhere:
        server = Redirects(f"http://127.0.0.1:{elsewhere.port}/collect")
        result, error, _ = await _against(server, make)
    assert result is None
    return error, elsewhere


@pytest.mark.parametrize("make", [_openai, _gemini], ids=["openai", "gemini"])
def test_an_api_call_never_follows_a_redirect_to_another_origin(make: Any) -> None:
    error, elsewhere = asyncio.run(_redirected(make))
    assert elsewhere.requests == []  # the prompt was never re-sent to the other origin
    message = error.attempts[-1].message or ""
    assert "redirect to another origin" in message


def test_a_redirect_within_the_origin_is_still_followed() -> None:
    async def go() -> tuple[Any, Redirects]:
        server = Redirects("http://127.0.0.1:{port}/v1/images/other")
        async with server:  # it redirects to itself forever: the client gives up
            _result, error = await attempt([_openai(server.port)],
                                          ImageRequest(prompt=PROMPT, size="1024x1024"),
                                          clock=FastForwardClock(), timeout=30)
        return error, server

    error, server = asyncio.run(go())
    assert len(server.requests) > 1  # followed (until the client's redirect limit)
    assert "another origin" not in (error.attempts[-1].message or "")


@pytest.mark.parametrize("vendor", ["openai", "gemini", "leonardo"])
def test_credentials_in_base_url_are_refused_and_never_repeated(vendor: str) -> None:
    from fallback_chain.errors import ConfigurationError
    from fallback_chain.providers import LeonardoProvider

    url = "http://alice:hunter2-very-secret@127.0.0.1:9/v1"
    make = {"openai": lambda: OpenAIProvider("gpt-image-2", api_key=KEY, base_url=url),
            "gemini": lambda: GeminiProvider(api_key=KEY, base_url=url),
            "leonardo": lambda: LeonardoProvider(api_key=KEY, base_url=url)}[vendor]
    with pytest.raises(ConfigurationError) as info:
        make()
    assert "hunter2" not in str(info.value) and "alice" not in str(info.value)
    assert "carries credentials" in str(info.value)


def _edit_body(size: int, parts: int = 1) -> tuple[bytes, str]:
    boundary = "b0undary"
    body = f"--{boundary}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx\r\n"
    image = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image[]\"; "
             f"filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n").encode()
    return (body.encode() + (image + b"\0" * size + b"\r\n") * parts
            + f"--{boundary}--\r\n".encode()), boundary


def test_the_emulator_refuses_an_oversized_edit_before_reading_it() -> None:
    from fallback_chain.emulator import Emulator

    emu = Emulator()
    # two 33 MiB images: each under the API's 50 MB limit, together more than the emulator
    # reads (it used to read up to 64 parts of 64 MiB, each costing its size in memory)
    body, boundary = _edit_body(33 * MiB, parts=2)
    with httpx2.Client(transport=emu.httpx2_sync_transport(),
                       base_url="http://emulator.test") as http:
        response = http.post("/v1/images/edits", content=body, headers={
            "authorization": f"Bearer {KEY}",
            "content-type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"
        small, boundary = _edit_body(1024)  # a small (bad) image is still read and judged
        response = http.post("/v1/images/edits", content=small, headers={
            "authorization": f"Bearer {KEY}",
            "content-type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 400
