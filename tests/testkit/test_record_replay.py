"""Record a chain's vendor traffic against the emulator with faults (standing in for real
vendors), replay it offline, and check nothing secret or heavy reached the cassettes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

from fallback_chain import Chain, Policy
from fallback_chain.cassette import Recorder, load_cassettes
from fallback_chain.clock import FastForwardClock
from fallback_chain.emulator import Emulator
from fallback_chain.providers.gemini import GeminiProvider
from fallback_chain.providers.openai import OpenAIProvider
from fallback_chain.results import ChainResult

#: A date before the catalogue's shutdown of the legacy models these tests still call on the
#: emulator (dall-e-2/-3 on 2026-05-12, gpt-image-1 on 2026-10-23, gpt-image-1.5 and -1-mini
#: on 2026-12-01): a chain skips a model shut down on its clock's date without calling it.
LEGACY = datetime(2026, 5, 1, tzinfo=UTC).timestamp()

PLANTED_KEY = "sk-planted-" + "Zq7Xw3Rk" * 6  # a key as long as a real one
FAST = Policy(backoff_initial_s=0.0, backoff_jitter=0.0, wait_for_cooldown=False,
              attempt_timeout_s=30.0)
FAULTS = {"openai": {"script": "429,ok", "retry_after": 7},
          "gemini": {"script": "500,ok"}}


def _chain(emu: Emulator, key: str, recorder: Recorder | None = None) -> Chain:
    openai = OpenAIProvider("gpt-image-2", api_key=key, base_url="http://emulator.test/v1",
                            http_client=httpx2.AsyncClient(transport=emu.httpx2_transport()))
    gemini = GeminiProvider("gemini-2.5-flash-image", api_key=key,
                            base_url="http://emulator.test", transport=emu.httpx2_transport())
    return Chain([gemini, openai], policy=FAST, log=False,
                 recorder=recorder)


def _run(chain: Chain, prompts: list[str]) -> list[ChainResult]:
    async def main() -> list[ChainResult]:
        try:
            return [await chain.agenerate(p, size="1024x1024") for p in prompts]
        finally:
            await chain.aclose()
    return asyncio.run(main())


def _summary(results: list[ChainResult]) -> list[Any]:
    return [(r.provider, r.cost_usd, [(a.provider, a.outcome.value, a.status_code, a.cost_usd,
                                        a.cost_source, a.retry_after_s) for a in r.attempts],
             [(i.mime_type, i.width, i.height) for i in r.images]) for r in results]


PROMPTS = ["a lighthouse at dusk", "a red kite", "a paper boat"]


def test_a_recording_replays_to_the_same_attempts_outcomes_and_costs(tmp_path: Path) -> None:
    live = Emulator(FAULTS, api_keys=PLANTED_KEY)
    recorded = _run(_chain(live, PLANTED_KEY, Recorder(tmp_path)), PROMPTS)
    outcomes = [a.outcome.value for r in recorded for a in r.attempts]
    assert "server_error" in outcomes and "success" in outcomes
    cassettes = load_cassettes(tmp_path)
    assert len(cassettes) == live.log.count()  # one file per vendor exchange

    offline = Emulator(replay=tmp_path, api_keys=None)
    replayed = _run(_chain(offline, "any-key-will-do"), PROMPTS)
    assert _summary(replayed) == _summary(recorded)
    assert offline.log.count() == len(cassettes)


def test_cassettes_keep_status_headers_and_shape_but_no_image_or_prompt(tmp_path: Path) -> None:
    live = Emulator({"openai": {"script": "429,ok", "retry_after": 7}}, api_keys=PLANTED_KEY)
    providers = [OpenAIProvider("gpt-image-2", name=name, api_key=PLANTED_KEY,
                                base_url="http://emulator.test/v1",
                                http_client=httpx2.AsyncClient(transport=live.httpx2_transport()))
                 for name in ("first", "second")]
    chain = Chain(providers, policy=FAST, log=False,
                  recorder=Recorder(tmp_path))
    _run(chain, ["a secret launch poster"])
    first, second = (c.data for c in load_cassettes(tmp_path))
    assert first["vendor"] == "openai" and first["endpoint"] == "generate"
    assert first["response"]["status"] == 429
    assert first["response"]["headers"]["retry-after"] == "7"
    assert first["request"]["shape"]["model"] == "gpt-image-2"
    assert first["request"]["shape"]["size"] == "1024x1024"
    assert "prompt" not in first["request"]["shape"]
    assert second["response"]["status"] == 200
    image = second["response"]["body"]["data"][0]["b64_json"]
    assert image == "fallback-chain:image;image/png;1024x1024"
    text = "".join(p.read_text() for p in tmp_path.iterdir())
    assert "secret launch" not in text and len(text) < 20_000


def test_the_prompt_is_kept_only_when_asked(tmp_path: Path) -> None:
    live = Emulator(api_keys=PLANTED_KEY)
    _run(_chain(live, PLANTED_KEY, Recorder(tmp_path, include_prompt=True)), ["a blue heron"])
    shape = load_cassettes(tmp_path)[0].data["request"]["shape"]
    assert "a blue heron" in json.dumps(shape)


class _Spy(httpx2.AsyncBaseTransport):
    def __init__(self, emu: Emulator, seen: list[bytes]) -> None:
        self.inner, self.seen = emu.httpx2_transport(), seen

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        self.seen.append(await response.aread())
        return response


@pytest.mark.filterwarnings("ignore::fallback_chain.providers.catalogue.ModelLifecycleWarning")
def test_a_planted_key_and_a_planted_signed_url_never_reach_a_cassette(tmp_path: Path) -> None:
    signed = "https://cdn.example.test/img/abc.png?X-Amz-Signature=deadbeefcafe0123&X-Amz-Expires=600"
    # OpenAI answers with a signed URL (dall-e-3, response_format=url); the vendor also echoes
    # the key in a 401 message, as real vendors do with a wrong key.
    live = Emulator({"openai": {"script": [
        {"fault": "auth", "message": f"Incorrect API key provided: {PLANTED_KEY}. See {signed}"},
        "ok"]}}, api_keys=PLANTED_KEY)
    download = httpx.AsyncClient(transport=live.httpx_transport())
    seen: list[bytes] = []  # what the vendor really sent, under the recorder
    openai = OpenAIProvider("dall-e-3", api_key=PLANTED_KEY, base_url="http://emulator.test/v1",
                            dalle_response_format="url", download_client=download,
                            http_client=httpx2.AsyncClient(transport=_Spy(live, seen)))
    backup = OpenAIProvider("dall-e-3", name="again", api_key=PLANTED_KEY,
                            base_url="http://emulator.test/v1", dalle_response_format="url",
                            download_client=download,
                            http_client=httpx2.AsyncClient(transport=_Spy(live, seen)))
    chain = Chain([openai, backup], policy=FAST, log=False, clock=FastForwardClock(LEGACY),
                  recorder=Recorder(tmp_path))
    results = _run(chain, ["a harbour"])
    assert results[0].images
    blob = b"".join(p.read_bytes() for p in sorted(tmp_path.iterdir()))
    kinds = [c.endpoint for c in load_cassettes(tmp_path)]
    assert kinds == ["generate", "generate", "download"]  # the image fetched from its URL too
    served = load_cassettes(tmp_path)[1].data
    assert load_cassettes(tmp_path)[2].data["response"]["body_image"].endswith("1024x1024")
    url = served["response"]["body"]["data"][0]["url"]
    assert url.endswith("?scrubbed") and "sig=" not in url
    raw = b"".join(seen)
    assert PLANTED_KEY.encode() in raw and b"X-Amz-Signature" in raw and b"sig=emulated" in raw
    for planted in (PLANTED_KEY, PLANTED_KEY[11:27], "deadbeefcafe0123", "X-Amz-Signature",
                    "sig=emulated"):
        assert planted.encode() not in blob, planted


def test_the_demo_chain_of_three_vendors_replays_over_a_real_socket(tmp_path: Path) -> None:
    """Gemini, Leonardo (submit, polls, CDN download) and OpenAI, with faults,
    recorded through `--record`'s code path and replayed by a served replay emulator."""
    import warnings

    from fallback_chain.demo import KEY, build_demo_chain, demo_emulator
    from fallback_chain.emulator import serve_in_thread

    prompts = [f"demo picture {i}" for i in range(4)]

    def run(base_url: str, record: bool) -> list[Any]:
        chain = build_demo_chain(base_url, api_key=KEY, policy=FAST)
        if record:
            Recorder(tmp_path).attach(chain)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _summary(_run(chain, prompts))

    faults = {"gemini": {"script": "503,503,ok,503,503,ok"},
              "leonardo": {"script": "500,500,ok", "job_delay_s": 0.05}}
    with serve_in_thread(demo_emulator(faults=faults)) as url:
        recorded = run(url, record=True)
    vendors = {c.vendor for c in load_cassettes(tmp_path)}
    assert vendors == {"gemini", "leonardo", "openai"}
    assert {c.endpoint for c in load_cassettes(tmp_path) if c.vendor == "leonardo"} >= {
        "submit", "poll", "download"}
    with serve_in_thread(Emulator(replay=tmp_path, api_keys=None)) as url:
        replayed = run(url, record=False)
    assert replayed == recorded
