"""The replay machinery of ``test_replay.py`` (a loopback server's script, a frozen clock, the
adapters wired to the server, and one chain run per corpus file)."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fallback_chain import Chain, ImageRequest, registry
from fallback_chain.errors import ChainError
from fallback_chain.events import CooldownStarted, Event
from fallback_chain.imaging import placeholder_image
from fallback_chain.provider import Provider
from fallback_chain.providers.fake import FakeProvider
from fallback_chain.results import ChainResult

CORPUS = Path(__file__).parent
FILES = sorted(CORPUS.glob("*/*.json"))
KEY = "replay-key"
SUBMIT_OK = {"sdGenerationJob": {"generationId": "5f1c0c3e-replay-0000-0000-000000000001",
                                 "apiCreditCost": 5}}
#: The test's own answers for the steps a queue vendor's file does not record.
QUEUE_STEPS = {
    "fal": {"submit": {"request_id": "replay-request-1"},
            "poll": {"status": "COMPLETED", "logs": None, "metrics": {}}},
    "bfl": {"submit": {"id": "replay-task-1"}},
}


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
    if path.startswith("/v2beta/stable-image/generate/"):  # Stability AI
        return "generate"
    if path.startswith(("/v1/predictions", "/v1/models/")):  # Replicate
        return "cancel" if path.endswith("/cancel") else ("submit" if method == "POST"
                                                           else "poll")
    if "/requests/" in path:  # fal's queue: status, result, cancel
        return {"status": "poll", "cancel": "cancel"}.get(path.rsplit("/", 1)[-1], "result")
    if path.endswith("/v1/get_result"):  # Black Forest Labs
        return "poll"
    if method == "POST":  # a fal model id or a BFL model: /{owner}/{app}..., /v1/{model}
        return "submit"
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

    do_GET = do_POST = do_PUT = _serve


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


#: Vendors whose files name the model the answer came from (it is in the URL): replayed with it.
MODEL_FROM_FILE = frozenset({"fal", "bfl"})


def _vertex_needs() -> dict[str, Any]:
    from google.oauth2.credentials import Credentials

    return {"api_key": None, "project": "replay-project", "location": "us-central1",
            "credentials": Credentials(token=KEY)}


#: What an adapter needs besides its model, key, base_url and clock (Azure: a deployment;
#: Vertex: a project, a location and OAuth credentials instead of a key).
NEEDS: dict[str, Callable[[], dict[str, Any]]] = {
    "azure": lambda: {"deployment": "replay"},
    "vertex": _vertex_needs,
}


def adapter_for(case: dict[str, Any], base: str, clock: FrozenClock) -> Provider:
    """The vendor's adapter (from the registry) on the loopback server: its default model
    (or the file's, :data:`MODEL_FROM_FILE`), ``base`` plus its ``emulator_path``, the frozen
    clock, and its ``fast_poll_options`` at 0.01 s (time only moves when it sleeps)."""
    vendor = case["vendor"]
    cls = registry.get(vendor)
    params = inspect.signature(cls).parameters
    model = case.get("request", {}).get("model") if vendor in MODEL_FROM_FILE else None
    kwargs: dict[str, Any] = {cls.model_param: model or cls.default_model, "api_key": KEY,
                              "base_url": base + cls.emulator_path,
                              **{option: 0.01 for option in cls.fast_poll_options}}
    if "clock" in params:
        kwargs["clock"] = clock
    if "max_wait_s" in params:
        kwargs["max_wait_s"] = 60.0
    kwargs.update(NEEDS.get(vendor, dict)())
    return cls(**kwargs)


def script_for(case: dict[str, Any]) -> Script:
    script = Script()
    if "exchanges" in case:
        for step in case["exchanges"]:
            script.answers.setdefault(step["endpoint"], []).append(Answer.of(step["response"]))
        if case["vendor"] == "leonardo" and "submit" not in script.answers:
            script.answers["submit"] = [Answer(200, {"content-type": "application/json"},
                                               json.dumps(SUBMIT_OK).encode())]
        for step, body in QUEUE_STEPS.get(case["vendor"], {}).items():
            if step not in script.answers:
                script.answers[step] = [Answer(200, {"content-type": "application/json"},
                                               json.dumps(body).encode())]
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
