"""Issue 17's proof: one chain of all nine vendors, built from a config file by vendor id,
against one real loopback emulator, falls through 429s and 5xx exactly as the default policy
says (429: next vendor at once; 5xx: once more on the same vendor, then next) and stops at the
first content refusal without asking anyone after it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fallback_chain import ChainResult, Outcome
from fallback_chain.config import load_config
from fallback_chain.config.emulated import Emulated
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.errors import ChainError, ContentPolicyError

FAST_POLL = 'options = { poll_initial_s = 0.01, poll_interval_s = 0.01 }'
ORDER = ("gemini", "vertex", "azure", "openai", "fal", "bfl", "replicate", "stability",
         "leonardo")
POLLED = {"fal", "bfl", "replicate", "leonardo"}


def _config(tmp_path: Path, order: tuple[str, ...]) -> Path:
    entries = []
    for vendor in order:
        options = f"\n{FAST_POLL}" if vendor in POLLED else ""
        entries.append(f'[[chains.main.providers]]\nvendor = "{vendor}"{options}\n')
    path = tmp_path / "fallback-chain.toml"
    path.write_text("[chains.main]\nattempt_timeout_s = 30\n\n" + "\n".join(entries))
    return path


@pytest.fixture(scope="module")
def server():
    emu = Emulator(api_keys="nine-key", faults={"leonardo": {"job_delay_s": 0.02}})
    with serve_in_thread(emu) as base_url:
        yield emu, base_url


def _run(server: Any, tmp_path: Path, faults: dict[str, Any],
         order: tuple[str, ...] = ORDER) -> tuple[ChainResult | None, ChainError | None]:
    emu, base_url = server
    emu.reset()
    emu.set_faults({"leonardo": {"job_delay_s": 0.02}, **faults})
    config = load_config(_config(tmp_path, order))
    chain = config.chain("main", emulated=Emulated.from_emulator(emu, base_url), log=False)

    async def go() -> tuple[ChainResult | None, ChainError | None]:
        async with chain:
            try:
                return await chain.agenerate("a lighthouse at dusk", size="1024x1024"), None
            except ChainError as exc:
                return None, exc

    try:
        return asyncio.run(go())
    finally:
        config.close()


def _walk(attempts: Any) -> list[tuple[str, str]]:
    return [(a.provider.split("/")[0], a.outcome.value) for a in attempts]


def test_nine_vendors_fall_through_429_and_5xx_to_the_last(server, tmp_path):
    faults = {"gemini": {"script": "429"}, "vertex": {"script": "500,503"},
              "azure": {"script": "429"}, "openai": {"script": "502,500"},
              "fal": {"script": "429"}, "bfl": {"script": "500,500"},
              "replicate": {"script": "429"}, "stability": {"script": "503,503"}}
    result, error = _run(server, tmp_path, faults)
    assert error is None and result is not None, error
    rate, server_error = Outcome.RATE_LIMITED.value, Outcome.SERVER_ERROR.value
    assert _walk(result.attempts) == [
        ("gemini", rate), ("vertex", server_error), ("vertex", server_error), ("azure", rate),
        ("openai", server_error), ("openai", server_error), ("fal", rate),
        ("bfl", server_error), ("bfl", server_error), ("replicate", rate),
        ("stability", server_error), ("stability", server_error), ("leonardo", "success")]
    assert result.image.data and result.cost_usd is not None and result.cost_usd > 0
    emu = server[0]
    for vendor in ORDER:  # every vendor saw exactly the calls the walk shows
        calls = sum(1 for a in result.attempts if a.provider.split("/")[0] == vendor)
        assert emu.log.count(vendor=vendor, endpoint=_first_endpoint(emu, vendor)) == calls


def _first_endpoint(emu: Emulator, vendor: str) -> str:
    """The endpoint a vendor's first request of an attempt is logged under."""
    seen = [e.endpoint for e in emu.log.entries() if e.vendor == vendor]
    return seen[0] if seen else "generate"


@pytest.mark.parametrize(("refuser", "token"), [("fal", "nsfw"), ("azure", "content_filter"),
                                                ("vertex", "image_safety")])
def test_a_refusal_anywhere_in_the_nine_stops_the_chain(server, tmp_path, refuser, token):
    before = ORDER[:ORDER.index(refuser)]
    faults: dict[str, Any] = {v: {"script": "429"} for v in before}
    faults[refuser] = {"script": token}
    result, error = _run(server, tmp_path, faults)
    assert result is None and isinstance(error, ContentPolicyError), (result, error)
    assert error.provider.split("/")[0] == refuser and error.reason
    emu = server[0]
    for later in ORDER[ORDER.index(refuser) + 1:]:
        assert emu.log.count(vendor=later) == 0, later


def test_the_mixed_canonical_chain_gemini_fal_azure(server, tmp_path):
    result, error = _run(server, tmp_path, {"gemini": {"script": "429"},
                                            "fal": {"script": "500,500"}},
                         order=("gemini", "fal", "azure"))
    assert result is not None, error
    assert _walk(result.attempts) == [("gemini", "rate_limited"), ("fal", "server_error"),
                                      ("fal", "server_error"), ("azure", "success")]
