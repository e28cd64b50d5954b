"""Replay every corpus answer through the real adapter, over loopback, inside a chain.

Each file of ``tests/corpus/<vendor>/`` (see its README) is served by a small HTTP server of
this test's own on 127.0.0.1, on the path the adapter really calls: OpenAI's
``/v1/images/generations`` or ``/edits`` (through the ``openai`` SDK), Gemini's
``/{version}/models/{model}:generateContent`` (through ``google-genai``), Leonardo's
``POST /api/rest/v1/generations`` and ``GET /api/rest/v1/generations/{id}`` (through the
adapter's httpx client). The adapter sits in ``Chain([adapter, FakeProvider("next")])`` and the
test checks what the chain did with the answer:

* ``stop``: ``ContentPolicyError`` (or the policy's stop), "next" never called;
* ``advance``: one call to the vendor, then "next" serves;
* ``retry``: a second call to the same vendor first, then "next" serves;
* ``success``: the vendor's images are the result.

It also checks the recorded outcome, the cooldown the chain started (kind, and seconds when
the file gives them) and that the vendor's own words survive in the reason. Time is a frozen
clock that moves only when the chain sleeps, so cooldowns are exact and nothing waits.

For Leonardo files that record only the poll answer, the submit answer is the test's own
(``SUBMIT_OK``: a job id and its cost), not part of the corpus.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fallback_chain import Chain, ImageRequest, Outcome
from fallback_chain.errors import ChainError, ContentPolicyError
from fallback_chain.events import CooldownStarted, Event
from fallback_chain.imaging import placeholder_image
from fallback_chain.policy import Policy
from fallback_chain.policy.rules import DEFAULT_RULES
from fallback_chain.provider import Provider
from fallback_chain.providers.fake import FakeProvider
from fallback_chain.results import ChainResult
from fallback_chain.routing import ChainStoppedError

CORPUS = Path(__file__).parent
FILES = sorted(CORPUS.glob("*/*.json"))
KEY = "replay-key"
SUBMIT_OK = {"sdGenerationJob": {"generationId": "5f1c0c3e-replay-0000-0000-000000000001",
                                 "apiCreditCost": 5}}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# ------------------------------------------------------------------------ the loopback server


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, response: dict[str, Any]) -> Answer:
        if "body_text" in response:
            body = str(response["body_text"]).encode()
        else:
            body = json.dumps(response.get("body")).encode()
        return cls(int(response["status"]), dict(response.get("headers") or {}), body)


@dataclass
class Script:
    """Answers per endpoint, served in order; the last one repeats (a retry sees it again)."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (endpoint, method, path)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, endpoint: str, method: str, path: str) -> Answer | None:
        with self.lock:
            n = sum(1 for e, _, _ in self.seen if e == endpoint)
            self.seen.append((endpoint, method, path))
            queue = self.answers.get(endpoint)
            if not queue:
                return None
            return queue[min(n, len(queue) - 1)]


def endpoint_of(method: str, path: str) -> str:
    path = path.split("?", 1)[0]
    if path.endswith("/images/generations"):
        return "generate"
    if path.endswith("/images/edits"):
        return "edit"
    if path.endswith(":generateContent"):
        return "generate"
    if path.startswith("/api/rest/v1/generations"):
        return "submit" if method == "POST" else "poll"
    return "download"


class Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        endpoint = endpoint_of(self.command, self.path)
        answer = self.server.script.next(endpoint, self.command, self.path)  # type: ignore[attr-defined]
        if answer is None:
            answer = Answer(599, {"content-type": "text/plain"}, b"replay: nothing scripted")
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = _serve


@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[ThreadingHTTPServer, str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# ------------------------------------------------------------------------------- the clock


class FrozenClock:
    """Time stands still except when the chain sleeps (then it jumps): cooldowns are exact."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def now(self) -> float:
        return 1000.0 + self.skipped

    def wall(self) -> float:
        return 1_767_225_600.0 + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)
        await asyncio.sleep(0)


# ------------------------------------------------------------------------------ the adapters


def adapter_for(case: dict[str, Any], base: str, clock: FrozenClock) -> Provider:
    vendor = case["vendor"]
    if vendor == "openai":
        from fallback_chain.providers.openai.adapter import OpenAIProvider

        return OpenAIProvider(model="gpt-image-2", api_key=KEY, base_url=f"{base}/v1")
    if vendor == "gemini":
        from fallback_chain.providers.gemini.adapter import GeminiProvider

        return GeminiProvider(model="gemini-2.5-flash-image", api_key=KEY, base_url=base)
    from fallback_chain.providers.leonardo.adapter import LeonardoProvider

    return LeonardoProvider(api_key=KEY, base_url=base, clock=clock, poll_initial_s=0.01,
                            poll_interval_s=0.01, max_wait_s=60.0)


def script_for(case: dict[str, Any]) -> Script:
    script = Script()
    if "exchanges" in case:
        for step in case["exchanges"]:
            script.answers.setdefault(step["endpoint"], []).append(Answer.of(step["response"]))
        if case["vendor"] == "leonardo" and "submit" not in script.answers:
            script.answers["submit"] = [Answer(200, {"content-type": "application/json"},
                                               json.dumps(SUBMIT_OK).encode())]
    else:
        script.answers[case["endpoint"]] = [Answer.of(case["response"])]
    return script


def request_for(case: dict[str, Any]) -> ImageRequest:
    if case.get("endpoint") == "edit":
        return ImageRequest(prompt="replay an edit", images=[placeholder_image(64, 64)])
    return ImageRequest(prompt="replay a corpus answer", size="1024x1024")


@dataclass
class Replay:
    result: ChainResult | None
    error: ChainError | None
    cooldowns: list[CooldownStarted]
    script: Script


def replay(case: dict[str, Any], server: ThreadingHTTPServer, base: str) -> Replay:
    clock = FrozenClock()
    script = script_for(case)
    server.script = script  # type: ignore[attr-defined]
    adapter = adapter_for(case, base, clock)
    events: list[Event] = []
    chain = Chain([adapter, FakeProvider("next", clock=clock)], clock=clock, log=False,
                  on_event=events.append, attempt_timeout_s=30.0)

    async def go() -> tuple[ChainResult | None, ChainError | None]:
        try:
            return await chain.agenerate(request_for(case)), None
        except ChainError as exc:
            return None, exc
        finally:
            await chain.aclose()

    result, error = asyncio.run(go())
    cooldowns = [e for e in events if isinstance(e, CooldownStarted)
                 and e.provider == adapter.key]
    return Replay(result, error, cooldowns, script)


# ----------------------------------------------------------------------------------- the test


def vendor_calls(run: Replay) -> int:
    """How many times the vendor was asked for images (submits for Leonardo)."""
    return sum(1 for e, _, _ in run.script.seen if e in ("generate", "edit", "submit"))


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_replay(path: Path, loopback: tuple[ThreadingHTTPServer, str]) -> None:
    case = load(path)
    expected = case["expected"]
    server, base = loopback
    run = replay(case, server, base)
    attempts = (run.result or run.error).attempts  # type: ignore[union-attr]
    mine = [a for a in attempts if a.provider != "next" and a.outcome.was_called]
    nexts = [a for a in attempts if a.provider == "next"]
    action, outcome = expected["action"], Outcome(expected["outcome"])

    if action == "success":
        assert run.result is not None, run.error
        assert run.result.provider != "next" and not nexts
        assert [a.outcome for a in mine] == [Outcome.SUCCESS]
        assert run.result.images
        return

    if case["vendor"] == "gemini":  # the documented surface for image generation
        assert run.script.seen[0][2].startswith(
            "/v1beta/models/gemini-2.5-flash-image:generateContent"), run.script.seen
    assert mine, attempts
    assert mine[0].outcome is outcome, (mine[0].outcome, mine[0].message)
    if action == "stop":
        wanted = (ContentPolicyError if outcome is Outcome.CONTENT_POLICY
                  else ChainStoppedError)
        assert isinstance(run.error, wanted), run.error
        assert not nexts, "the prompt must not go on to the next provider"
        assert len(mine) == 1 and vendor_calls(run) == 1
        reason = run.error.reason if isinstance(run.error, ContentPolicyError) else str(run.error)
        if expected.get("categories"):
            assert isinstance(run.error, ContentPolicyError)
            assert sorted(run.error.categories) == sorted(expected["categories"])
    else:
        assert run.result is not None and run.result.provider == "next", run.error
        tries = 2 if action == "retry" else 1
        assert [a.outcome for a in mine] == [outcome] * tries
        assert vendor_calls(run) == tries
        reason = mine[0].message or ""
    if expected.get("reason_contains"):
        assert expected["reason_contains"].lower() in reason.lower(), reason

    kind = expected.get("cooldown", "none")
    seconds = [c.seconds for c in run.cooldowns]
    if kind == "none":
        assert seconds == []
    elif kind == "retry_after":  # the vendor's delay, within the policy's ceiling
        assert len(seconds) == 1
        ceiling = Policy().max_retry_after_s
        assert seconds[0] == pytest.approx(min(float(expected["cooldown_s"]), ceiling))
    elif kind == "default":
        assert seconds == [DEFAULT_RULES[outcome].cooldown_s]
    else:
        assert kind == "long"
        assert len(seconds) == 1 and seconds[0] >= 3600.0


def test_corpus_size_and_provenance() -> None:
    """At least 80 answers, every one with a source, a quoting mode and an expectation."""
    assert len(FILES) >= 80
    for path in FILES:
        case = load(path)
        source = case["source"]
        assert source["url"].startswith("https://"), path
        assert source["quoted"] in ("whole", "completed"), path
        if source["quoted"] == "completed":
            assert source.get("filled_in"), path
        assert case["expected"]["action"] in ("stop", "advance", "retry", "success"), path
        Outcome(case["expected"]["outcome"])
