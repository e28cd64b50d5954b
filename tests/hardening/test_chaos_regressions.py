"""Small, focused regressions for defects the chaos run (``test_chaos.py``) found."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest

from fallback_chain import Chain, Policy
from fallback_chain.emulator import Emulator
from fallback_chain.errors import ChainExhaustedError
from fallback_chain.providers import LeonardoProvider
from fallback_chain.vtime import VirtualClock, run_virtual

KEY = "leo-chaos-regression-key"
BASE = "http://emulator.test"


# --- the emulator kept every Leonardo job (and up to 50,000 image files) for ever -----------


def test_emulator_forgets_the_oldest_jobs_and_files_past_its_bounds() -> None:
    emu = Emulator({"leonardo": {"job_delay_s": 0}}, api_keys=KEY, max_jobs=3, max_files=2)
    headers = {"authorization": f"Bearer {KEY}"}

    async def go() -> tuple[list[str], list[Any]]:
        async with httpx.AsyncClient(transport=emu.httpx_transport(), headers=headers,
                                     base_url=f"{BASE}/api/rest/v1") as client:
            ids = []
            for i in range(5):
                made = await client.post("/generations", json={
                    "prompt": f"a red fox {i}", "width": 512, "height": 512, "num_images": 1})
                ids.append(made.json()["sdGenerationJob"]["generationId"])
                await client.get(f"/generations/{ids[-1]}")  # completes: one image file
            polls = [(await client.get(f"/generations/{i}")).json()["generations_by_pk"]
                     for i in ids]
            return ids, polls

    ids, polls = asyncio.run(go())
    assert list(emu.state.jobs) == ids[2:]  # the newest three, in order
    assert polls[:2] == [None, None]  # forgotten: answered like an unknown id
    assert [p["status"] for p in polls[2:]] == ["COMPLETE"] * 3
    assert len(emu.state.files._files) == 2
    with pytest.raises(ValueError, match="max_jobs"):
        Emulator(max_jobs=0)


# --- a client that left mid-upload crashed the emulator's request ("Exception in ASGI app") ---


@pytest.mark.parametrize(("path", "content_type", "vendor"), [
    ("/v1/images/edits", "multipart/form-data; boundary=xyz", "openai"),
    ("/v1beta/models/gemini-2.5-flash-image:generateContent", "application/json", "gemini"),
    ("/api/rest/v1/generations", "application/json", "leonardo"),
])
def test_a_client_that_leaves_while_its_body_is_read_is_logged_not_raised(
        path: str, content_type: str, vendor: str) -> None:
    emu = Emulator(api_keys=None)
    sent: list[MutableMapping[str, Any]] = []
    auth = (b"x-goog-api-key", b"k") if vendor == "gemini" else (b"authorization", b"Bearer k")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("emulator.test", 80),
             "client": ("127.0.0.1", 50000),
             "headers": [(b"content-type", content_type.encode()),
                         (b"content-length", b"5000"), auth]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}  # gone before the first byte of the body

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(emu(scope, receive, send))  # must not raise
    assert sent == []  # nobody to answer
    [entry] = emu.log.entries()
    assert (entry.vendor, entry.endpoint, entry.status, entry.fault) == (vendor, "generate",
                                                                         None, None)


# --- providers/download.py (not ours; reported): after a failed image download, the next -----
# --- timeout of the attempt escaped as CancelledError instead of a typed outcome -------------


def test_a_download_that_fails_then_hangs_ends_as_a_timeout_not_a_cancellation() -> None:
    """Leonardo's first download answers 500, the retry hangs until the attempt's time is up.

    ``fetch_all`` runs the downloads in an ``asyncio.TaskGroup``; on Python 3.11 and 3.12 a
    child that fails while the group is exiting cancels the parent task and never uncancels
    it (fixed in 3.13). The task is left with ``cancelling() == 1``, so the adapter's own
    ``asyncio.timeout`` no longer turns its expiry into ``TimeoutError``, and a bare
    ``CancelledError`` escapes ``Chain.agenerate`` though nobody cancelled anything.
    """
    clock = VirtualClock()
    emu = Emulator({"leonardo": {"applies_to": ["image"], "script": "500,hang",
                                 "job_delay_s": 0}}, api_keys=KEY, clock=clock)
    leonardo = LeonardoProvider(api_key=KEY, base_url=BASE, transport=emu.httpx_transport(),
                                clock=clock)
    chain = Chain([leonardo], policy=Policy(attempt_timeout_s=30), clock=clock, log=False)

    async def go() -> tuple[BaseException | None, int]:
        try:
            await chain.agenerate("a red fox", size="512x512")
        except BaseException as exc:  # what escapes is the point
            return exc, asyncio.current_task().cancelling()  # type: ignore[union-attr]
        finally:
            await chain.aclose()
        return None, 0

    escaped, cancelling = run_virtual(go())
    assert isinstance(escaped, ChainExhaustedError), repr(escaped)
    assert [a.outcome.value for a in escaped.attempts] == ["timeout"]
    assert cancelling == 0
    assert [(e.endpoint, e.fault) for e in emu.log.entries(endpoint="image")] == [
        ("image", "500"), ("image", "hang")]
