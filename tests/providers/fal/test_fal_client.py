"""The official ``fal-client`` (1.0.3) as a client of the emulated queue API, over a real loopback
server: submit, status, result, cancel and an error answer all parse in fal's own client, so
the emulator speaks fal's wire format, not only the adapter's reading of it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import fal_client
import httpx
import pytest

from fallback_chain.emulator import Emulator, serve_in_thread

KEY = "fal-client-key"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Emulator, str]]:
    emu = Emulator(faults={"fal": {"job_delay_s": 0.2}}, api_keys=KEY)
    with serve_in_thread(emu) as url:
        yield emu, url


@pytest.fixture
def client(server: tuple[Emulator, str], monkeypatch: pytest.MonkeyPatch):
    _, url = server
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    # fal-client builds every queue URL from this module constant (https://queue.fal.run/)
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"{url}/fal/")
    return fal_client.AsyncClient(key=KEY)


def test_submit_status_result_with_the_official_client(client, server):
    emu, url = server

    async def go():
        handle = await client.submit("fal-ai/flux/schnell",
                                     arguments={"prompt": "a red kite", "num_images": 2,
                                                "image_size": "square"})
        first = await handle.status()
        result = await handle.get()  # polls status until COMPLETED, then reads the result
        last = await handle.status(with_logs=True)
        async with httpx.AsyncClient() as http:
            image = await http.get(result["images"][0]["url"])
        return handle, first, result, last, image

    handle, first, result, last, image = asyncio.run(go())
    assert handle.status_url.startswith(f"{url}/fal/fal-ai/flux/requests/")
    assert isinstance(first, fal_client.Queued | fal_client.InProgress)
    assert isinstance(last, fal_client.Completed)
    assert [(i["width"], i["height"]) for i in result["images"]] == [(512, 512)] * 2
    assert result["has_nsfw_concepts"] == [False, False]
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    [submit] = [e for e in emu.requests(vendor="fal", endpoint="generate")
                if e.params and e.params.get("prompt") == "a red kite"]
    assert submit.status == 200


def test_cancel_and_errors_with_the_official_client(client, server):
    emu, _ = server
    emu.set_faults({"fal": {"script": ["job_stuck", "policy"], "job_delay_s": 0.05}})

    async def go():
        stuck = await client.submit("fal-ai/flux/dev", arguments={"prompt": "slow"})
        await stuck.cancel()  # 202 CANCELLATION_REQUESTED: no exception
        flagged = await client.submit("fal-ai/flux/dev", arguments={"prompt": "flagged"})
        with pytest.raises(fal_client.client.FalClientHTTPError) as refused:
            await flagged.get()
        wrong = fal_client.AsyncClient(key="not-the-key")
        with pytest.raises(fal_client.client.FalClientHTTPError) as denied:
            await wrong.submit("fal-ai/flux/dev", arguments={"prompt": "x"})
        return refused.value, denied.value

    try:
        refused, denied = asyncio.run(go())
    finally:
        emu.set_faults({"fal": {"job_delay_s": 0.2}})
    assert refused.status_code == 422
    assert refused.message[0]["type"] == "content_policy_violation"
    assert denied.status_code == 401 and "Authentication is required" in denied.message
