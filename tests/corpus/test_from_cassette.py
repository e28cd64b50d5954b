"""A recorded exchange becomes a corpus file (``fallback-chain cassette to-corpus``) that the
corpus replay serves to the real adapter with the same outcome as when it was recorded."""

from __future__ import annotations

import asyncio
import json
from http.server import ThreadingHTTPServer
from pathlib import Path

from replay_helpers import replay
from typer.testing import CliRunner

from fallback_chain import Chain, Policy
from fallback_chain.cassette import Recorder, load_cassettes
from fallback_chain.cli import app
from fallback_chain.emulator import Emulator
from fallback_chain.errors import ChainError
from fallback_chain.providers import FakeProvider
from fallback_chain.providers.gemini import GeminiProvider


def _record(folder: Path) -> list[str]:
    emu = Emulator({"gemini": {"script": "503"}}, api_keys="k" * 40)
    gemini = GeminiProvider("gemini-2.5-flash-image", api_key="k" * 40,
                            base_url="http://emulator.test", transport=emu.httpx2_transport())
    chain = Chain([gemini, FakeProvider("next")], log=False, recorder=Recorder(folder),
                  policy=Policy(backoff_initial_s=0.0, backoff_jitter=0.0))

    async def go() -> list[str]:
        try:
            result = await chain.agenerate("a kingfisher", size="1024x1024")
        except ChainError as exc:
            result = exc  # type: ignore[assignment]
        finally:
            await chain.aclose()
        return [a.outcome.value for a in result.attempts if a.provider == "gemini"]

    return asyncio.run(go())


def test_a_recorded_exchange_replays_from_the_corpus_with_its_outcome(
        tmp_path: Path, loopback: tuple[ThreadingHTTPServer, str]) -> None:
    outcomes = _record(tmp_path / "cassettes")
    assert outcomes[0] == "server_error"
    first = load_cassettes(tmp_path / "cassettes")[0]
    out = tmp_path / "corpus" / "gemini" / "recorded-503.json"
    done = CliRunner().invoke(app, [
        "cassette", "to-corpus", str(first.path), "--out", str(out),
        "--outcome", "server_error", "--action", "retry"])
    assert done.exit_code == 0, done.output
    case = json.loads(out.read_text())
    day = first.data["recorded_at"][:10]
    assert case["source"]["where"] == f"recorded on {day} by the user"
    assert case["response"]["status"] == 503
    assert case["request"]["model"] == "gemini-2.5-flash-image"

    server, base = loopback
    run = replay(case, server, base)
    mine = [a for a in (run.result or run.error).attempts  # type: ignore[union-attr]
            if a.provider != "next" and a.outcome.was_called]
    assert [a.outcome.value for a in mine][:1] == ["server_error"]
    assert run.result is not None and run.result.provider == "next"


def test_a_connection_failure_cannot_become_a_corpus_file(tmp_path: Path) -> None:
    cassette = tmp_path / "0001-openai-generate.json"
    cassette.write_text(json.dumps({
        "format": "fallback-chain-cassette/1", "sequence": 1, "vendor": "openai",
        "endpoint": "generate", "recorded_at": "2026-12-06T10:00:00Z",
        "request": {"method": "POST", "path": "/v1/images/generations", "shape": {}},
        "response": None, "error": "reset"}))
    done = CliRunner().invoke(app, [
        "cassette", "to-corpus", str(cassette), "--out", str(tmp_path / "x.json"),
        "--outcome", "connection_error", "--action", "retry"])
    assert done.exit_code == 2
    assert "has no vendor answer" in done.output
