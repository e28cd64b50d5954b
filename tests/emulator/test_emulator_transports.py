"""The two ways to use the emulator: in-process transports (httpx and httpx2, sync and async)
and a real uvicorn server (``serve_in_thread`` and the ``fallback-chain emulate`` command)."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors, types

from fallback_chain.emulator import Emulator
from fallback_chain.imaging import inspect_image

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-key"
GEN = {"model": "gpt-image-1.5", "prompt": "x", "quality": "low"}
AUTH = {"authorization": f"Bearer {KEY}"}


# ------------------------------------------------------------------ in-process


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_async_transports_and_connection_faults(lib: Any) -> None:
    emu = Emulator()
    transport = emu.httpx_transport() if lib is httpx else emu.httpx2_transport()

    async def go() -> None:
        async with lib.AsyncClient(transport=transport, base_url="http://emulator.test",
                                   headers=AUTH, timeout=0.2) as client:
            ok = await client.post("/v1/images/generations", json=GEN)
            assert ok.status_code == 200 and ok.headers["x-request-id"].startswith("req_")
            emu.script("openai", "reset,hang,cut")
            with pytest.raises(lib.ReadError):
                await client.post("/v1/images/generations", json=GEN)
            started = time.perf_counter()
            with pytest.raises(lib.ReadTimeout):
                await client.post("/v1/images/generations", json=GEN)
            assert 0.15 < time.perf_counter() - started < 2
            with pytest.raises(lib.RemoteProtocolError):
                await client.post("/v1/images/generations", json=GEN)

    asyncio.run(go())
    assert [(e.status, e.fault) for e in emu.requests()] == \
        [(200, None), (None, "reset"), (None, "hang"), (200, "cut")]


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_sync_transports(lib: Any) -> None:
    emu = Emulator()
    transport = emu.httpx_sync_transport() if lib is httpx else emu.httpx2_sync_transport()
    with lib.Client(transport=transport, base_url="http://emulator.test", headers=AUTH) as c:
        assert c.post("/v1/images/generations", json=GEN).status_code == 200
        emu.script("openai", "reset")
        with pytest.raises(lib.ReadError):
            c.post("/v1/images/generations", json=GEN)


def test_async_sdks_in_process() -> None:
    emu = Emulator()

    async def go() -> None:
        async with httpx2.AsyncClient(transport=emu.httpx2_transport()) as http:
            oai = openai.AsyncOpenAI(api_key=KEY, base_url="http://emulator.test/v1",
                                     http_client=http, max_retries=0)
            result = await oai.images.generate(model="gpt-image-1.5", prompt="a cat", n=2)
            assert len(result.data) == 2
            emu.script("openai", "quota")
            with pytest.raises(openai.RateLimitError) as err:
                await oai.images.generate(model="gpt-image-1.5", prompt="a cat")
            assert err.value.code == "insufficient_quota"
            gem = genai.Client(api_key=KEY, http_options=types.HttpOptions(
                base_url="http://emulator.test", httpx_async_client=http))
            resp = await gem.aio.models.generate_content(model="gemini-3-pro-image",
                                                         contents="a cat")
            assert resp.parts and any(p.inline_data for p in resp.parts)

    asyncio.run(go())


# ------------------------------------------------------------------ real server


def test_real_server_success_for_each_vendor(server: tuple[Emulator, str]) -> None:
    emu, base = server
    oai = openai.OpenAI(api_key=KEY, base_url=f"{base}/v1", max_retries=0, timeout=5)
    result = oai.images.generate(model="dall-e-3", prompt="a fox")
    assert result.data[0].url and result.data[0].url.startswith(base)
    assert inspect_image(httpx.get(result.data[0].url).content).width == 1024
    gem = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=base,
                                                                   timeout=5000))
    resp = gem.models.generate_content(model="gemini-2.5-flash-image", contents="a fox")
    assert resp.parts and resp.parts[-1].inline_data
    emu.set_faults({"leonardo": {"job_delay_s": 0.05}})
    with httpx.Client(base_url=f"{base}/api/rest/v1", headers=AUTH, timeout=5) as leo:
        job = leo.post("/generations", json={"prompt": "a fox", "num_images": 1}).json()
        job_id = job["sdGenerationJob"]["generationId"]
        deadline = time.monotonic() + 5
        while (body := leo.get(f"/generations/{job_id}").json()["generations_by_pk"])[
                "status"] == "PENDING":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert body["status"] == "COMPLETE"
        image = leo.get(body["generated_images"][0]["url"])
        assert inspect_image(image.content).mime_type == "image/jpeg"
    assert {e.vendor for e in emu.requests()} == {"openai", "gemini", "leonardo"}


@pytest.mark.parametrize(("token", "openai_exc", "gemini_exc"), [
    ("reset", openai.APIConnectionError, httpx2.ReadError),
    ("hang", openai.APITimeoutError, httpx2.ReadTimeout),
    ("cut", openai.APIConnectionError, httpx2.RemoteProtocolError),
])
def test_real_server_connection_faults(server: tuple[Emulator, str], token: str,
                                       openai_exc: type[Exception],
                                       gemini_exc: type[Exception]) -> None:
    emu, base = server
    emu.set_faults({"openai": {"script": token}, "gemini": {"script": token}})
    oai = openai.OpenAI(api_key=KEY, base_url=f"{base}/v1", max_retries=0, timeout=0.3)
    with pytest.raises(openai_exc) as err:
        oai.images.generate(model="gpt-image-1.5", prompt="x")
    if token == "reset":
        assert isinstance(err.value.__cause__, httpx2.ReadError)  # a real TCP reset
    gem = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=base, timeout=300))
    with pytest.raises(gemini_exc):
        gem.models.generate_content(model="gemini-2.5-flash-image", contents="x")
    assert oai.images.generate(model="gpt-image-1.5", prompt="x").data  # server still fine
    faults = [e.fault for e in emu.requests()]
    assert faults == [token, token, None]


def test_real_server_admin_and_gemini_error(server: tuple[Emulator, str]) -> None:
    emu, base = server
    with httpx.Client(base_url=base, timeout=5) as http:
        assert http.post("/_emulator/faults", json={"gemini": {"script": "429"}}).is_success
        gem = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=base))
        with pytest.raises(errors.ClientError) as err:
            gem.models.generate_content(model="gemini-2.5-flash-image", contents="x")
        assert err.value.code == 429
        log = http.get("/_emulator/log").json()
        assert [(e["vendor"], e["status"]) for e in log["entries"]] == [("gemini", 429)]
    assert emu.log.count(vendor="gemini") == 1  # the same log, in-process


# ------------------------------------------------------------------ the CLI


def test_cli_emulate_serves_a_plain_http_client(tmp_path: Path) -> None:
    faults = tmp_path / "faults.toml"
    faults.write_text('seed = 5\n[openai]\nscript = "503"\n')
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fallback_chain.cli", "emulate", "--port", str(port),
         "--faults", str(faults), "--api-key", "cli-key", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/_emulator/health", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "emulator did not start"
            time.sleep(0.05)
        headers = {"authorization": "Bearer cli-key"}
        first = httpx.post(f"{base}/v1/images/generations", json=GEN, headers=headers)
        assert first.status_code == 503 and first.json()["error"]["type"] == "server_error"
        second = httpx.post(f"{base}/v1/images/generations", json=GEN, headers=headers)
        assert second.status_code == 200
        assert inspect_image(base64.b64decode(second.json()["data"][0]["b64_json"]))
        assert httpx.get(f"{base}/_emulator/faults").json()["seed"] == 5
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert proc.returncode is not None
