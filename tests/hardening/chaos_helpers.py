"""Helpers for the chaos run (``test_chaos.py``): a fault configuration that draws every kind
the emulator has, the real adapters wired to the emulator (in-process or over loopback
sockets), a seeded stream of requests, a bounded-concurrency driver that tallies every
outcome, and probes for file descriptors, sockets, tasks and memory.

Imported as a top-level module (``from chaos_helpers import ...``), like ``batch_helpers``.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import hashlib
import io
import logging
import os
import random
import sys
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fallback_chain import Chain, ChainResult, ImageRequest, Policy
from fallback_chain.emulator import Emulator
from fallback_chain.emulator.faults import ALIAS_KINDS, VENDOR_KINDS
from fallback_chain.errors import ChainError
from fallback_chain.imaging import inspect_image, placeholder_image
from fallback_chain.provider import Provider

# ---------------------------------------------------------------------------------- settings

SEED = 20_261_121
#: The vendors this run drives (the emulator serves more: each registered vendor's API).
VENDORS = ("openai", "gemini", "leonardo")
#: Distinctive keys, one per vendor: they must never show up in an error's text.
KEYS = {"openai": "sk-chaos-openai-7Qm2Vx9Lp4Zr8Tn1",
        "gemini": "AIza-chaos-gemini-3Hs8Kd2Wq6Yb0Jf5Pu",
        "leonardo": "leo-chaos-key-5Rt9Gb1Xc7Nm3Ve"}
BASE = "http://emulator.test"
ATTEMPT_TIMEOUT_S = 1.0
DEADLINE_S = 3.0
#: What a request may take beyond its deadline (cleanup after the deadline, a loaded loop).
SLACK_S = 1.5
OPENAI_MODELS = ("gpt-image-2", "gpt-image-2.5-flare")
GEMINI_MODEL = "gemini-3.1-flash-image"

#: Plain HTTP statuses drawn next to the named kinds (``5xx`` resolves to 500/502/503 too).
STATUS_TOKENS = ("400", "404", "408", "429", "500", "502", "503", "504")
#: Endpoints that draw faults: the create call, Leonardo's polls, and image downloads.
APPLIES_TO = ["generate", "poll", "image"]
#: Probability that one request to the emulator draws some fault, per vendor. Leonardo draws
#: on three endpoints per job (create, poll, download), so its rate per draw is lower.
FAULT_RATE = {"openai": 0.45, "gemini": 0.45, "leonardo": 0.25}
#: The vendors whose adapters the run builds (the emulator serves more: each added vendor
#: joins the run with its adapter in ``build_providers`` and its rates here).
VENDORS = tuple(FAULT_RATE)
#: Retry hints in each vendor's own format (Leonardo sends none: the policy's cooldown
#: applies), small so that cooldowns come and go many times during the run.
RETRY_AFTER_S = 0.02
RETRY_FORMAT = {"openai": "ms", "gemini": "body", "leonardo": "none"}


def drawn_tokens(vendor: str) -> list[str]:
    """Every fault token the run draws for ``vendor``: each named kind (but ``ok``), both
    aliases (``5xx``, ``malformed``) and a few plain statuses."""
    kinds = sorted(VENDOR_KINDS[vendor] - {"ok"})
    return [*kinds, *sorted(ALIAS_KINDS), *STATUS_TOKENS]


def expected_kinds(vendor: str) -> set[str]:
    """The concrete kinds the emulator's log must show for ``vendor`` (aliases resolve to
    concrete kinds before they are applied and logged)."""
    return (set(VENDOR_KINDS[vendor]) - {"ok"}) | set(STATUS_TOKENS)


def chaos_faults(seed: int = SEED) -> dict[str, Any]:
    """The fault configuration: every token equally likely, no latency, fast Leonardo jobs."""
    config: dict[str, Any] = {"seed": seed, "default": {"latency": 0}}
    for vendor in VENDORS:
        tokens = drawn_tokens(vendor)
        each = FAULT_RATE[vendor] / len(tokens)
        config[vendor] = {
            "rates": dict.fromkeys(tokens, each), "applies_to": APPLIES_TO,
            "retry_after": RETRY_AFTER_S, "retry_after_format": RETRY_FORMAT[vendor],
            "job_delay_s": 0.003}
    return config


def chaos_policy() -> Policy:
    """Short timeouts and deadline; cooldowns, breaker resets and backoff in milliseconds,
    so that they open and close many times during the run instead of ending it."""
    return Policy(
        attempt_timeout_s=ATTEMPT_TIMEOUT_S, deadline_s=DEADLINE_S,
        backoff_initial_s=0.002, backoff_max_s=0.01,
        cooldowns_s={"rate_limited": 0.02, "quota_exhausted": 0.05, "auth_error": 0.05,
                     "not_found": 0.05},
        max_retry_after_s=0.05, breaker_reset_s=0.05, max_cooldown_wait_s=0.2)


# ---------------------------------------------------------------------------------- providers


async def build_providers(emu: Emulator, stack: AsyncExitStack,
                          base_url: str | None = None) -> list[Provider]:
    """Gemini (google-genai), Leonardo (httpx), two OpenAI models (openai SDK) and a fake.

    ``base_url=None``: in-process transports onto ``emu``; otherwise real sockets to a server.
    Every client and provider is closed by ``stack``.
    """
    import httpx
    import httpx2

    from fallback_chain.providers import (
        FakeProvider,
        GeminiProvider,
        LeonardoProvider,
        OpenAIProvider,
    )

    base = base_url or BASE
    gemini_kw: dict[str, Any] = {}
    leonardo_kw: dict[str, Any] = {}
    if base_url is None:
        gemini_kw["transport"] = emu.httpx2_transport()
        leonardo_kw["transport"] = emu.httpx_transport()
    made: list[Provider] = [
        GeminiProvider(GEMINI_MODEL, api_key=KEYS["gemini"], base_url=base, **gemini_kw),
        LeonardoProvider(api_key=KEYS["leonardo"], base_url=base, poll_initial_s=0.002,
                         poll_interval_s=0.003, poll_max_interval_s=0.01,
                         request_timeout_s=ATTEMPT_TIMEOUT_S,
                         download_timeout_s=ATTEMPT_TIMEOUT_S, **leonardo_kw),
    ]
    for model in OPENAI_MODELS:
        openai_kw: dict[str, Any] = {}
        if base_url is None:
            sdk = httpx2.AsyncClient(transport=emu.httpx2_transport())
            download = httpx.AsyncClient(transport=emu.httpx_transport())
            stack.push_async_callback(sdk.aclose)
            stack.push_async_callback(download.aclose)
            openai_kw = {"http_client": sdk, "download_client": download}
        made.append(OpenAIProvider(model, api_key=KEYS["openai"], base_url=f"{base}/v1",
                                   **openai_kw))
    made.append(FakeProvider(
        "fake", seed=SEED, keep_requests=False, latency_s=(0.0, 0.002),
        rates={"rate_limited": 0.05, "server_error": 0.05, "connection_error": 0.04,
               "malformed_response": 0.04, "timeout": 0.004, "quota_exhausted": 0.01,
               "content_policy": 0.01, "invalid_request": 0.01}))
    for provider in made:
        stack.push_async_callback(provider.aclose)
    return made


def rotations(providers: Sequence[Provider]) -> list[Chain]:
    """One chain per rotation of ``providers``, so that each provider leads a share of the
    requests (request ``i`` uses chain ``i % len(chains)``)."""
    out = []
    for k in range(len(providers)):
        order = [*providers[k:], *providers[:k]]
        out.append(Chain(order, policy=chaos_policy(), name=f"chaos-{k}", seed=SEED + k,
                         log=False))
    return out


# ---------------------------------------------------------------------------------- requests

#: Few prompts, sizes and seeds: the emulator draws images from a bounded cache, so a small
#: working set keeps the run fast (the variety that matters here is in the faults).
PROMPTS = ("a lighthouse at dusk", "a red fox in snow", "a bowl of ramen", "an old tram")
SIZES = ("1024x1024", "512x512", "16:9", "auto")
EDIT_INPUT = placeholder_image(64, 64, seed=7)


def requests(seed: int = SEED) -> Iterator[ImageRequest]:
    """An endless seeded stream of varied requests: sizes, qualities, n of 1 or 2, seeds,
    formats, and now and then an edit with an input image."""
    rng = random.Random(seed)
    while True:
        fields: dict[str, Any] = {
            "prompt": rng.choice(PROMPTS), "size": rng.choice(SIZES),
            "quality": rng.choice(("draft", "standard", "final")),
            "n": 2 if rng.random() < 0.12 else 1}
        if rng.random() < 0.3:
            fields["seed"] = 1
        if rng.random() < 0.05:
            fields["output_format"] = "jpeg"
        if rng.random() < 0.06:
            fields["images"] = (EDIT_INPUT,)
        yield ImageRequest(**fields)


# ---------------------------------------------------------------------------------- tally


@dataclass
class Tally:
    """Everything the run counted."""

    requests: int = 0
    results: Counter[str] = field(default_factory=Counter)  # by provider/model
    errors: Counter[str] = field(default_factory=Counter)  # by ChainError subclass
    escaped: list[str] = field(default_factory=list)  # anything that is not a ChainError
    bad_results: list[str] = field(default_factory=list)
    late: list[tuple[int, float]] = field(default_factory=list)  # (request, seconds)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (provider, outcome)
    latencies: array[float] = field(default_factory=lambda: array("d"))  # one flat buffer
    images: int = 0
    leaked_keys: int = 0
    decoded: dict[str, str] = field(default_factory=dict)  # sha256 -> Pillow's verdict

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def check_result(result: ChainResult, request: ImageRequest, tally: Tally) -> None:
    """A result must hold ``n`` whole images: structure, size and hash re-checked here, and
    each distinct image fully decoded by Pillow once (identical bytes decode identically)."""
    from PIL import Image

    problems = []
    if len(result.images) < request.n:
        problems.append(f"{len(result.images)} image(s) for n={request.n}")
    if not result.attempts or result.attempts[-1].outcome != "success":
        problems.append("the last attempt is not the success")
    for image in result.images:
        info = inspect_image(image.data)
        if (info.mime_type, info.width, info.height) != (image.mime_type, image.width,
                                                          image.height):
            problems.append(f"image header disagrees with {image!r}")
        if hashlib.sha256(image.data).hexdigest() != image.sha256:
            problems.append(f"sha256 mismatch for {image!r}")
        verdict = tally.decoded.get(image.sha256)
        if verdict is None:
            try:
                with Image.open(io.BytesIO(image.data)) as img:
                    img.load()
                    verdict = "ok" if img.size == (image.width, image.height) else \
                        f"Pillow size {img.size}"
            except Exception as exc:
                verdict = f"Pillow: {type(exc).__name__}: {exc}"
            tally.decoded[image.sha256] = verdict
        if verdict != "ok":
            problems.append(verdict)
    tally.images += len(result.images)
    if problems:
        tally.bad_results.append(f"{result.provider}/{result.model}: {'; '.join(problems)}")


def _has_key(text: str) -> bool:
    return any(k in text for k in KEYS.values())


async def drive(chains: Sequence[Chain], stream: Iterator[ImageRequest], count: int,
                tally: Tally, *, concurrency: int, first_index: int = 0,
                every: int = 0, on_every: Callable[[], None] | None = None) -> None:
    """Run ``count`` requests from ``stream``, at most ``concurrency`` at once, tallying each.

    Nothing is let out: an exception that is not a ``ChainError`` is recorded in
    ``tally.escaped``. ``on_every`` runs after every ``every`` finished requests.
    """
    sem = asyncio.Semaphore(concurrency)
    done = 0

    async def one(index: int, request: ImageRequest) -> None:
        nonlocal done
        chain = chains[index % len(chains)]
        started = time.monotonic()
        try:
            result = await chain.agenerate(request)
        except ChainError as exc:
            elapsed = time.monotonic() - started
            tally.errors[type(exc).__name__] += 1
            attempts = exc.attempts
            if type(exc) is ChainError:
                tally.escaped.append(f"bare ChainError: {exc}")
            if _has_key(str(exc)) or any(_has_key(a.message or "") for a in attempts):
                tally.leaked_keys += 1
        except BaseException as exc:
            elapsed = time.monotonic() - started
            trace = "".join(traceback.format_exception(exc)[-12:])
            tally.escaped.append(f"request {index}: {type(exc).__name__}: {exc!r}\n{trace}")
            attempts = []
        else:
            elapsed = time.monotonic() - started
            tally.results[f"{result.provider}/{result.model}"] += 1
            check_result(result, request, tally)
            attempts = result.attempts
            if any(_has_key(a.message or "") for a in attempts):
                tally.leaked_keys += 1
        finally:
            sem.release()
        for a in attempts:
            tally.attempts[(f"{a.provider}/{a.model}", a.outcome.value)] += 1
        tally.requests += 1
        tally.latencies.append(elapsed)
        if elapsed > DEADLINE_S + SLACK_S:
            tally.late.append((index, elapsed))
        done += 1
        if every and on_every is not None and done % every == 0:
            on_every()

    async with asyncio.TaskGroup() as tg:
        for i in range(count):
            await sem.acquire()
            tg.create_task(one(first_index + i, next(stream)))


# ---------------------------------------------------------------------------------- emulator log


@dataclass
class FaultLog:
    """Faults the emulator applied, read from its request log as the run goes (the log is
    bounded, so it is drained often; ``gaps`` counts entries dropped before being read).

    ``clear=True`` empties the log after each read, so it holds only what came since: safe
    only for an in-process emulator, whose requests are logged on the draining thread.
    """

    emu: Emulator
    clear: bool = False
    last_seq: int = 0
    gaps: int = 0
    entries: int = 0
    by_kind: Counter[tuple[str, str]] = field(default_factory=Counter)  # (vendor, kind)
    by_alias: Counter[tuple[str, str]] = field(default_factory=Counter)  # (vendor, 5xx|...)
    by_endpoint: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)

    def drain(self) -> None:
        for e in self.emu.log.entries(since=self.last_seq):
            if e.seq != self.last_seq + 1:
                self.gaps += e.seq - self.last_seq - 1
            self.last_seq = e.seq
            self.entries += 1
            self.by_endpoint[(e.vendor, e.endpoint)] += 1
            self.statuses[(e.vendor, str(e.status))] += 1
            if e.fault is not None:
                self.by_kind[(e.vendor, e.fault)] += 1
            if e.drawn is not None:
                self.by_alias[(e.vendor, e.drawn)] += 1
        if self.clear:
            self.emu.log.clear()

    def kinds(self, vendor: str) -> Counter[str]:
        return Counter({k: n for (v, k), n in self.by_kind.items() if v == vendor})


# ---------------------------------------------------------------------------------- probes


class WarningCounter(logging.Handler):
    """Counts the library's warnings and errors by message template (``provider %s raised %s
    instead of ProviderError`` is an adapter letting a foreign exception out)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[str(record.msg)] += 1


def open_fds() -> dict[int, str]:
    """This process's open file descriptors and what each points at."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the fd of the listing itself, closed meanwhile
            continue
    return out


def socket_fds(fds: dict[int, str]) -> dict[int, str]:
    return {fd: target for fd, target in fds.items() if target.startswith("socket:")}


def rss_bytes() -> int:
    """Resident set size, from /proc/self/statm."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class MemoryPoint:
    """Memory after ``requests`` requests: RSS, live objects the collector tracks, and every
    block Python's allocator holds (objects of any size, strings and bytes included)."""

    requests: int
    rss: int
    objects: int
    blocks: int


def _trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc), so RSS shows memory in use rather than
    what the allocator happens to keep from the last burst of large buffers."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: RSS stays coarser
        return
    libc.malloc_trim(0)


def memory_point(requests_done: int) -> MemoryPoint:
    gc.collect()
    _trim_heap()
    return MemoryPoint(requests_done, rss_bytes(), len(gc.get_objects()),
                       sys.getallocatedblocks())
