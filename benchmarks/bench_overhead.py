"""Our overhead against the raw openai SDK and LiteLLM's Router, side by side (issue 9, a-d).

Every variant sends the same JSON body to the same emulator (``fallback-chain emulate`` in its
own process, so it does not share our event loop or our GIL) and ends with the image bytes in
hand (the raw variants decode the base64 themselves, as any caller must):

* a: the raw openai SDK (``AsyncOpenAI(max_retries=0)``), success: the floor;
* b: the same request through a ``Chain`` with one ``OpenAIProvider``;
* c: 429 on the first provider, success on the second: a hand-written raw-SDK fallback, our
  chain, and LiteLLM's Router with ``fallbacks``;
* d: 500, one retry on the same provider, then the next: the same three ways.

c and d also run the hand-written fallback followed by a Pillow decode of the image
(``Image.open(...).load()``), the like-for-like comparison: the chain proves every image whole
before it returns it (chunk CRCs and a full inflate of the image data, issue 10), which the
plain hand-written variant does not.

The two "providers" are two OpenAI models on one emulator: ``gpt-image-2.5-flare`` always
answers 429 (no Retry-After), ``gpt-image-2.5-sunburst`` always 500, ``gpt-image-2`` always
succeeds. Retries happen at once in every variant (our backoff, LiteLLM's backoff and the SDK's
own retries are all off), and nothing keeps a failing provider out (no cooldown, no breaker), so
every request takes the full path. The emulator's request log is read after every block, and
the run fails loudly unless each variant made exactly the calls its path implies and every
variant of a case sent the same bodies.

Variants run in blocks that alternate (A B C, B C A, C A B, ...) in one run, so machine drift
lands on all of them alike; sequentially and with 32 requests in flight. A third mode,
"in-process", replays the emulator's recorded answers through an ``httpx2.MockTransport`` (no
socket, no server; the same path checks), so what is left is each client's own work.
``client_cpu_ms`` is this process's CPU time per request (all threads): unlike latency, it
hardly moves when other processes compete for the machine.

LiteLLM is an optional benchmark extra (``pip install -e '.[bench]'``, or ``scripts/bench``);
without it, its rows are left out and the notes say so.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import gc
import importlib
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"
PROMPT = "a lighthouse at dusk"
#: The smallest square size the emulator accepts for GPT Image 2 (it asks for >= 512x512 pixels);
#: a 15 KB PNG, so drawing and base64 stay small next to the HTTP round trip.
SIZE = "512x512"
QUALITY = "low"  # what ImageRequest(quality="draft") maps to for GPT Image
OK_MODEL = "gpt-image-2"
RATE_LIMITED_MODEL = "gpt-image-2.5-flare"
FAILING_MODEL = "gpt-image-2.5-sunburst"
CONCURRENCY = 32

FAULTS = f"""
seed = 1

[openai]
retry_after_format = "none"   # no Retry-After header: nothing to honour, nothing to sleep on

[openai.models."{RATE_LIMITED_MODEL}"]
rates = {{ "429" = 1.0 }}

[openai.models."{FAILING_MODEL}"]
rates = {{ "500" = 1.0 }}
"""

#: The JSON body every variant sends (the keys ``OpenAIProvider`` sends for this request).
BODY: dict[str, Any] = {"prompt": PROMPT, "n": 1, "size": SIZE, "quality": QUALITY,
                        "output_format": "png", "background": "auto"}

Call = Callable[[], Awaitable[bytes]]


# ----------------------------------------------------------------------------- emulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def emulator(faults: str = FAULTS) -> Iterator[str]:
    """``fallback-chain emulate`` in its own process on a free loopback port; yields its base
    URL (``http://127.0.0.1:PORT``) and stops it afterwards."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        faults_file = Path(tmp) / "faults.toml"
        faults_file.write_text(faults)
        errors = (Path(tmp) / "stderr.txt").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "fallback_chain.cli", "emulate", "--port", str(port),
             "--api-key", KEY, "--faults", str(faults_file), "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=errors, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("the emulator exited: "
                                       + (Path(tmp) / "stderr.txt").read_text()[-2000:])
                try:
                    if httpx.get(f"{base}/_emulator/health", timeout=0.5).is_success:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the emulator did not start within 30 s")
                time.sleep(0.05)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            errors.close()


def log_entries(base: str, since: int = 0) -> list[dict[str, Any]]:
    """The emulator's log entries after sequence number ``since`` (blocking)."""
    response = httpx.get(f"{base}/_emulator/log", params={"since": since}, timeout=60)
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


class LogReader(Protocol):
    async def take(self) -> list[dict[str, Any]]: ...


class RequestLog:
    """Reads the emulator's request log (``GET /_emulator/log?since=SEQ``)."""

    def __init__(self, base: str) -> None:
        self._client = httpx.AsyncClient(base_url=base, timeout=60)
        self.seq = 0

    async def take(self) -> list[dict[str, Any]]:
        """Entries logged since the previous call."""
        response = await self._client.get("/_emulator/log", params={"since": self.seq})
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()["entries"]
        if entries:
            self.seq = max(int(e["seq"]) for e in entries)
        return entries

    async def aclose(self) -> None:
        await self._client.aclose()


def hits(entries: list[dict[str, Any]]) -> collections.Counter[tuple[str, int]]:
    return collections.Counter((str(e["model"]), int(e["status"] or 0)) for e in entries)


def describe_hits(expected: dict[tuple[str, int], int]) -> str:
    return ", ".join(f"{model} {status} ×{n}" for (model, status), n in expected.items())


# ----------------------------------------------------------------------------- variants


def _b64_image(response: Any) -> bytes:
    return base64.b64decode(response.data[0].b64_json)


Factory = Callable[[str, Any], Awaitable[tuple[dict[str, Call], Callable[[], Awaitable[None]]]]]


async def _raw_variants(base: str, http: Any = None
                        ) -> tuple[dict[str, Call], Callable[[], Awaitable[None]]]:
    import openai

    # One client per "provider", as a hand-written fallback across vendors would have.
    clients = {m: openai.AsyncOpenAI(api_key=KEY, base_url=f"{base}/v1", max_retries=0,
                                     http_client=http)
               for m in (OK_MODEL, RATE_LIMITED_MODEL, FAILING_MODEL)}
    bodies = {m: {**BODY, "model": m} for m in clients}

    async def success() -> bytes:
        return _b64_image(await clients[OK_MODEL].images.generate(**bodies[OK_MODEL]))

    def fallback(models: list[str]) -> Call:
        async def call() -> bytes:
            for model in models:
                for _try in range(2):  # a 5xx is retried once; a 429 moves on at once
                    try:
                        response = await clients[model].images.generate(**bodies[model])
                    except openai.RateLimitError:
                        break
                    except openai.InternalServerError:
                        continue
                    return _b64_image(response)
            raise RuntimeError("every provider failed")
        return call

    async def close() -> None:
        for c in clients.values():
            await c.close()

    def verified(call: Call) -> Call:
        async def go() -> bytes:
            from PIL import Image

            data = await call()
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # decodes every pixel: raises on a corrupt or truncated image
            return data
        return go

    c, d = fallback([RATE_LIMITED_MODEL, OK_MODEL]), fallback([FAILING_MODEL, OK_MODEL])
    return {"a": success, "c": c, "d": d, "c+verify": verified(c),
            "d+verify": verified(d)}, close


async def _chain_variants(base: str, http: Any = None
                          ) -> tuple[dict[str, Call], Callable[[], Awaitable[None]]]:
    from fallback_chain import Chain, ImageRequest, Policy
    from fallback_chain.providers import OpenAIProvider

    # The default policy, less what would change the path between requests: no cooldown after
    # a 429, not even the "try again in 1s" the adapter reads from OpenAI's message (so every
    # request meets the 429), no backoff before the retry (the others retry at once), and a
    # breaker that never opens on the always-failing provider.
    policy = Policy(cooldowns_s={"rate_limited": 0}, honour_retry_after=False,
                    backoff_initial_s=0.0, backoff_jitter=0.0, breaker_failures=1_000_000_000)
    request = ImageRequest(prompt=PROMPT, size=SIZE, quality="draft")

    def chain(*models: str) -> Chain:
        return Chain([OpenAIProvider(model=m, api_key=KEY, base_url=f"{base}/v1",
                                     http_client=http) for m in models], policy=policy)

    chains = {"b": chain(OK_MODEL), "c": chain(RATE_LIMITED_MODEL, OK_MODEL),
              "d": chain(FAILING_MODEL, OK_MODEL)}

    def call(c: Chain) -> Call:
        async def go() -> bytes:
            return (await c.agenerate(request)).images[0].data
        return go

    async def close() -> None:
        for c in chains.values():
            await c.aclose()

    return {k: call(c) for k, c in chains.items()}, close


def litellm_version() -> str | None:
    """The installed LiteLLM's version, or ``None`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("litellm")
    except PackageNotFoundError:
        return None


def import_litellm() -> Any:
    """Import LiteLLM with the settings that keep it local and its retries immediate."""
    # Before the import: the bundled model-cost map (no download), and no backoff before a
    # retry (a single-deployment group otherwise sleeps 0.5 s + up to 0.75 s of jitter).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ["INITIAL_RETRY_DELAY"] = "0"
    os.environ["JITTER"] = "0"
    litellm: Any = importlib.import_module("litellm")
    utils = importlib.import_module("litellm.utils")
    for name in ("INITIAL_RETRY_DELAY", "JITTER"):  # in case it was imported before
        if hasattr(utils, name):
            setattr(utils, name, 0.0)
    litellm.suppress_debug_info = True
    return litellm


def no_retry_client(base: str, http: Any = None) -> Any:
    """An ``AsyncOpenAI`` whose ``max_retries`` stays 0.

    LiteLLM's image generation drops ``max_retries`` from the deployment's parameters and sets
    the SDK default (2) on whatever client it uses (``litellm/llms/openai/openai.py``:
    ``max_retries = data.pop("max_retries", 2)``, then ``_set_dynamic_params_on_client``), so
    out of the box every 429 or 500 is retried twice more inside the SDK with its backoff
    (about 1.3 s per request on path c). Passing this client keeps the path like-for-like.
    """
    import openai

    class NoRetryAsyncOpenAI(openai.AsyncOpenAI):
        @property
        def max_retries(self) -> int:
            return 0

        @max_retries.setter
        def max_retries(self, value: int) -> None:
            pass

    return NoRetryAsyncOpenAI(api_key=KEY, base_url=f"{base}/v1", http_client=http)


async def _litellm_variants(base: str, http: Any = None
                            ) -> tuple[dict[str, Call], Callable[[], Awaitable[None]]]:
    import_litellm()
    router_mod = importlib.import_module("litellm.router")
    retry_policy = importlib.import_module("litellm.types.router").RetryPolicy
    client = no_retry_client(base, http)

    def deployment(name: str, model: str) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": f"openai/{model}", "api_key": KEY, "api_base": f"{base}/v1",
            "max_retries": 0}}

    def router(first: str) -> Any:
        # Same rules as our chain: 429 -> next at once, 5xx -> one retry then next; no
        # cooldowns (LiteLLM would otherwise keep the failing deployment out after a 429).
        return router_mod.Router(
            model_list=[deployment("first", first), deployment("second", OK_MODEL)],
            fallbacks=[{"first": ["second"]}], num_retries=1,
            retry_policy=retry_policy(RateLimitErrorRetries=0, InternalServerErrorRetries=1),
            disable_cooldowns=True, retry_after=0)

    routers = {"c": router(RATE_LIMITED_MODEL), "d": router(FAILING_MODEL)}
    extra = {k: v for k, v in BODY.items() if k != "prompt"}

    def call(r: Any) -> Call:
        async def go() -> bytes:
            response = await r.aimage_generation(model="first", prompt=PROMPT, client=client,
                                                 **extra)
            return base64.b64decode(response.data[0].b64_json)
        return go

    async def close() -> None:
        await client.close()

    return {k: call(r) for k, r in routers.items()}, close


class Replay:
    """An in-process stand-in for the emulator: answers each model with the emulator's own
    recorded answer (status, headers, body) through an ``httpx2.MockTransport``, and logs
    requests the way the emulator does, so the same path checks apply. No socket, no server:
    what is left is the client's own work."""

    def __init__(self, base: str) -> None:
        self.answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
        for model in (OK_MODEL, RATE_LIMITED_MODEL, FAILING_MODEL):
            r = httpx.post(f"{base}/v1/images/generations", json={**BODY, "model": model},
                           headers={"authorization": f"Bearer {KEY}"}, timeout=60)
            headers = {k: v for k, v in r.headers.items()
                       if k not in ("content-length", "date", "server", "transfer-encoding")}
            self.answers[model] = (r.status_code, headers, r.content)
        self.entries: list[dict[str, Any]] = []
        self.seq = 0

    def client(self) -> Any:
        import httpx2

        def handle(request: Any) -> Any:
            params = json.loads(request.content)
            status, headers, body = self.answers[params["model"]]
            self.seq += 1
            self.entries.append({"seq": self.seq, "model": params["model"], "status": status,
                                 "params": params})
            return httpx2.Response(status, headers=headers, content=body)

        return httpx2.AsyncClient(transport=httpx2.MockTransport(handle))

    async def take(self) -> list[dict[str, Any]]:
        taken, self.entries = self.entries, []
        return taken


# ----------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)


@dataclass(frozen=True)
class Variant:
    case: str
    label: str
    call: Call


@dataclass(frozen=True)
class Group:
    """Variants that alternate with each other, and the calls each makes per request."""

    name: str
    variants: list[Variant]
    expected: dict[str, dict[tuple[str, int], int]]  # case -> (model, status) -> calls


async def _block(call: Call, n: int, concurrency: int, sample: Sample) -> None:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            data = await call()
            sample.latencies.append(time.perf_counter() - t0)
            if not data.startswith(b"\x89PNG"):
                raise RuntimeError("the variant returned something that is not a PNG")

    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    sample.wall += time.perf_counter() - t0
    sample.cpu += time.process_time() - c0


async def _measure(group: Group, log: LogReader, rounds: int, block: int, concurrency: int,
                   warmup: int) -> dict[str, Sample]:
    samples = {v.label: Sample() for v in group.variants}
    bodies: dict[str, set[str]] = {}
    for v in group.variants:  # warm up: connections, lazy clients, caches
        for _ in range(warmup):
            await v.call()
    await log.take()
    for r in range(rounds):
        k = r % len(group.variants)
        for v in group.variants[k:] + group.variants[:k]:
            await _block(v.call, block, concurrency, samples[v.label])
            entries = await log.take()
            want = {key: n * block for key, n in group.expected[v.case].items()}
            got = hits(entries)
            if got != collections.Counter(want):
                raise RuntimeError(
                    f"{group.name}: {v.label} did not take the path it claims: expected "
                    f"{describe_hits(want)}, the emulator saw {dict(got)}")
            bodies.setdefault(v.case, set()).update(_body_key(e["params"]) for e in entries)
    for case, seen in bodies.items():
        if len(seen) != 1:
            raise RuntimeError(f"case {case}: variants sent different bodies: {sorted(seen)}")
    return samples


#: Fields sent at the API's default value, which an omitted field means too. LiteLLM 1.83.0
#: drops ``output_format`` and ``background`` (its ``get_optional_params_image_gen`` forwards
#: only n, quality, response_format, size, style and user), while ``OpenAIProvider`` sends them.
API_DEFAULTS = {"output_format": "png", "background": "auto"}


def _body_key(params: dict[str, Any]) -> str:
    """A request body, less the model and any field left at its API default."""
    return json.dumps({k: v for k, v in params.items()
                       if k != "model" and API_DEFAULTS.get(k, object()) != v}, sort_keys=True)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# ----------------------------------------------------------------------------- the run

CASE_TITLES = {"a": "a: success, raw SDK", "b": "b: success, one provider",
               "c": "c: 429 -> next provider", "d": "d: 500 -> retry -> next provider"}
LABELS = {"raw": "raw openai SDK", "hand": "raw SDK, hand-written fallback",
          "hand+verify": "hand-written fallback + Pillow decode",
          "chain": "fallback-chain", "litellm": "LiteLLM Router"}


#: Every case this benchmark runs (a and b alternate with each other, as one group).
CASES = ("a", "b", "c", "d")


def _groups(raw: dict[str, Call], ours: dict[str, Call], lite: dict[str, Call] | None,
            cases: Iterable[str] = CASES) -> list[Group]:
    wanted = set(cases)
    ok = {(OK_MODEL, 200): 1}
    groups = []
    if wanted & {"a", "b"}:
        groups.append(Group("a/b", [Variant("a", LABELS["raw"], raw["a"]),
                                    Variant("b", LABELS["chain"], ours["b"])],
                            {"a": ok, "b": ok}))
    for case, first in (("c", {(RATE_LIMITED_MODEL, 429): 1}),
                        ("d", {(FAILING_MODEL, 500): 2})):
        if case not in wanted:
            continue
        variants = [Variant(case, LABELS["hand"], raw[case]),
                    Variant(case, LABELS["hand+verify"], raw[f"{case}+verify"]),
                    Variant(case, LABELS["chain"], ours[case])]
        if lite is not None:
            variants.append(Variant(case, LABELS["litellm"], lite[case]))
        groups.append(Group(case, variants, {case: {**first, **ok}}))
    return groups


SEQUENTIAL, CONCURRENT, IN_PROCESS = ("sequential", f"{CONCURRENCY} in flight",
                                      "in-process, sequential")


async def _run_setup(base: str, http: Any, log: LogReader, modes: list[tuple[str, int, int, int]],
                     quick: bool, with_litellm: bool, cases: Iterable[str] = CASES
                     ) -> list[dict[str, Any]]:
    """Every group in every mode, with the variants' clients on ``http`` (``None``: sockets)."""
    raw, close_raw = await _raw_variants(base, http)
    ours, close_ours = await _chain_variants(base, http)
    lite, close_lite = (await _litellm_variants(base, http)) if with_litellm else (None, None)
    rows: list[dict[str, Any]] = []
    try:
        for group in _groups(raw, ours, lite, cases):
            for mode, rounds, block, concurrency in modes:
                print(f"    {group.name}, {mode} ...", file=sys.stderr, flush=True)
                samples = await _measure(group, log, rounds, block, concurrency,
                                         warmup=3 if quick else 20)
                for v in group.variants:
                    s = samples[v.label]
                    rows.append({
                        "case": CASE_TITLES[v.case], "mode": mode, "variant": v.label,
                        "requests": s.count,
                        "median_ms": statistics.median(s.latencies) * 1000,
                        "p99_ms": _pct(s.latencies, 0.99) * 1000,
                        "requests/s": s.count / s.wall,
                        "client_cpu_ms": s.cpu / s.count * 1000,
                        "emulator saw, per request": describe_hits(group.expected[v.case]),
                    })
    finally:
        await close_raw()
        await close_ours()
        if close_lite is not None:
            await close_lite()
    return rows


async def _run_all(base: str, quick: bool, with_litellm: bool, cases: Iterable[str] = CASES
                   ) -> list[dict[str, Any]]:
    # (mode, rounds, requests per block, concurrency)
    modes = ([(SEQUENTIAL, 2, 4, 1), (CONCURRENT, 2, 32, CONCURRENCY)] if quick else
             [(SEQUENTIAL, 50, 10, 1), (CONCURRENT, 8, 256, CONCURRENCY)])
    log = RequestLog(base)
    try:
        rows = await _run_setup(base, None, log, modes, quick, with_litellm, cases)
    finally:
        await log.aclose()
    replay = Replay(base)
    http = replay.client()
    try:
        rows += await _run_setup(base, http, replay,
                                 [(IN_PROCESS, 2, 4, 1) if quick else (IN_PROCESS, 20, 50, 1)],
                                 quick, with_litellm, cases)
    finally:
        await http.aclose()
    order = {m: i for i, m in enumerate((SEQUENTIAL, CONCURRENT, IN_PROCESS))}
    return sorted(rows, key=lambda r: (r["case"], order[r["mode"]]))


def _ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median ratios per mode: ours against the raw floor and the hand-written fallback;
    LiteLLM against ours."""
    by = {(r["case"][0], r["mode"], r["variant"]): r for r in rows}
    out: list[dict[str, Any]] = []
    for mode in (SEQUENTIAL, CONCURRENT, IN_PROCESS):
        def med(case: str, label: str, mode: str = mode) -> float | None:
            row = by.get((case, mode, LABELS[label]))
            return None if row is None else float(row["median_ms"])

        # The targets are about real HTTP; in-process figures (no server, no socket) show
        # the client's own work, where the same overhead is a larger share.
        real = mode != IN_PROCESS
        pairs: list[tuple[str, float | None, float | None, tuple[str, float] | None]] = [
            ("b ÷ a (ours ÷ raw SDK)", med("b", "chain"), med("a", "raw"), None)]
        for case in ("c", "d"):
            pairs.append((f"{case}: ours ÷ hand-written", med(case, "chain"),
                          med(case, "hand"), ("<=", 1.05) if real else None))
            pairs.append((f"{case}: ours ÷ hand-written + decode (like for like)",
                          med(case, "chain"), med(case, "hand+verify"), None))
            pairs.append((f"{case}: LiteLLM ÷ ours", med(case, "litellm"), med(case, "chain"),
                          (">=", 4.0) if real else None))
            pairs.append((f"{case}: LiteLLM ÷ hand-written (the most any router can show)",
                          med(case, "litellm"), med(case, "hand"), None))
        for name, num, den, target in pairs:
            if num is None or den is None:
                continue
            ratio = num / den
            met = None if target is None else (
                ratio <= target[1] if target[0] == "<=" else ratio >= target[1])
            out.append({"mode": mode, "ratio": name, "value": round(ratio, 3),
                        "target": "" if target is None else f"{target[0]} {target[1]}",
                        "met": None if met is None else bool(met)})
    return out


def run(quick: bool = False, *, litellm: bool | None = None,
        cases: Iterable[str] = CASES) -> dict[str, Any]:
    """Cases a-d (or those in ``cases``). ``litellm``: include LiteLLM's Router (default: when
    it is installed)."""
    cases = sorted(set(cases))
    unknown = set(cases) - set(CASES)
    if unknown or not cases:
        raise ValueError(f"cases must be among {CASES}, not {cases}")
    installed = litellm_version()
    with_litellm = installed is not None if litellm is None else litellm
    if with_litellm and installed is None:
        raise RuntimeError("litellm is not installed: pip install -e '.[bench]'")
    with emulator() as base:
        rows = asyncio.run(_run_all(base, quick, with_litellm, cases))
    ratios = _ratios(rows)
    lines = [f"- {r['mode']}, {r['ratio']}: **{r['value']:.2f}×**"
             + (f" (target {r['target']}: {'met' if r['met'] else 'MISSED'})"
                if r["target"] else "") for r in ratios]
    if with_litellm:
        lite = (f"LiteLLM {installed}: Router with `fallbacks`, `num_retries=1` and "
                "`RetryPolicy(RateLimitErrorRetries=0, InternalServerErrorRetries=1)`, "
                "`disable_cooldowns=True`, `retry_after=0`, no backoff (`INITIAL_RETRY_DELAY=0`, "
                "`JITTER=0`), and an `AsyncOpenAI` whose `max_retries` stays 0 passed as "
                "`client=` (LiteLLM's image generation otherwise forces the SDK's 2 retries "
                "with backoff onto its client, ~1.3 s per request on path c).")
    else:
        lite = ("**LiteLLM is not installed, so its rows are missing** (install the benchmark "
                "extra: `pip install -e '.[bench]'`, or run `scripts/bench`)."
                if installed is None else "LiteLLM rows skipped on request.")
    notes = "\n".join([
        "Ratios of medians (same run, variants alternating block by block):", "", *lines, "",
        f"Every variant sends the same body (`{OK_MODEL}` or the failing model, {SIZE}, "
        f"quality `{QUALITY}`, png; a 15 KB image) to `fallback-chain emulate` running in its "
        "own process on loopback, and ends with the decoded image bytes. The emulator's "
        "request log is checked after every block: each variant made exactly the calls in the "
        "last column, and all variants of a case sent identical bodies (up to `output_format` "
        "and `background` at their API defaults, which LiteLLM 1.83 does not forward). Our "
        "chain uses the default policy less cooldowns (and Retry-After), backoff and breaker, "
        "so every request takes the full path; the default logging subscriber is on. " + lite,
        "",
        *([] if cases == list(CASES) else
          [f"Only case(s) {', '.join(cases)} were run this time.", ""]),
        "`client_cpu_ms` is this process's CPU time per request; latency includes the "
        "emulator's own time on the same cores. " + (
            "Quick run: few requests, the figures are only a smoke test." if quick else
            "Sequential: 50 rounds of 10 requests per variant; concurrent: 8 rounds of 256 "
            f"requests, {CONCURRENCY} at a time; in-process: 20 rounds of 50. The targets "
            "(ours <= 1.05x the hand-written fallback, LiteLLM >= 4x ours) are checked on the "
            "real-HTTP medians."),
    ])
    return {"title": "Overhead against the raw SDK and LiteLLM (a-d, real HTTP to the emulator)",
            "rows": rows, "notes": notes, "ratios": ratios,
            "litellm": installed if with_litellm else None}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv,
                         cases=[a for a in sys.argv[1:] if a in CASES] or CASES), indent=2))
