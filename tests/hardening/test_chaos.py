"""The chaos run: 10,000 requests through the real adapters (google-genai, httpx, the openai SDK)
and a fake, against emulators that draw a random fault of every kind they have (fixed seed).

1,000 requests go over real loopback sockets (uvicorn in a thread), 9,000 through the
in-process transports. Proved at the end:

* nothing crashes and nothing but a typed ``ChainError`` subclass escapes ``agenerate``;
* no request outlives its deadline by more than ``SLACK_S`` (wall time of each request);
* every result holds the images asked for, each re-verified and decoded by Pillow;
* every fault kind of every vendor was injected at least ``MIN_PER_KIND`` times, and each
  alias (``5xx``, ``malformed``) drawn as often (from the emulators' own logs, drained as the
  run goes; no entry lost);
* the servers never saw more create calls than the chain counted attempts (no hidden retries);
* afterwards no asyncio task, no file descriptor and no socket is left open, and memory
  is flat (live objects, allocated blocks and RSS after 3,000 requests versus after 10,000).

A summary (requests, faults per kind, outcomes, errors by type, p50/p99, resources) is written
to ``chaos-summary.txt`` (and ``.json``) in the test's tmp dir and printed
(``pytest -s -m chaos tests/hardening/test_chaos.py``).

Fault draws are seeded per (vendor, model) stream, but which request draws which fault depends
on the order requests reach the emulator under concurrency, so the counts vary a little from
run to run; the thresholds leave room for that.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chaos_helpers import (
    DEADLINE_S,
    KEYS,
    SEED,
    SLACK_S,
    VENDORS,
    FaultLog,
    MemoryPoint,
    Tally,
    WarningCounter,
    build_providers,
    chaos_faults,
    drive,
    expected_kinds,
    memory_point,
    open_fds,
    requests,
    rotations,
    socket_fds,
)

from fallback_chain import ImageRequest, Outcome
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.emulator.faults import ALIAS_KINDS

TOTAL = 10_000
OVER_SOCKETS = 1_000
WARM_UP = 2_000  # in-process requests before the first memory point
CONCURRENCY = 32
MIN_PER_KIND = 10
#: Memory growth allowed between 3,000 and 10,000 requests. Python's own counts are exact: a
#: leak of one object (or one block: a str, a bytes) per request would exceed them. RSS (read
#: after ``malloc_trim``) catches leaks outside Python's allocator: more than ~2 KB per request.
MAX_OBJECT_GROWTH = 3_000
MAX_BLOCK_GROWTH = 7_000
MAX_RSS_GROWTH = 16 * 1024 * 1024
#: The in-process emulator keeps this few jobs and files (reached long before the first memory
#: point), and its log is emptied at each read, so that its own memory is flat too.
MAX_JOBS, MAX_FILES = 300, 500
DRAIN_EVERY = 100  # requests between two reads of the emulators' logs


def _emulator(seed: int) -> Emulator:
    return Emulator(chaos_faults(seed), api_keys=KEYS, max_jobs=MAX_JOBS, max_files=MAX_FILES)


async def _sockets_slice(tally: Tally, stream: Iterator[ImageRequest]) -> FaultLog:
    """``OVER_SOCKETS`` requests over loopback sockets to a real server; closes everything."""
    emu = _emulator(SEED + 1)
    log = FaultLog(emu)
    with serve_in_thread(emu) as base_url:
        async with AsyncExitStack() as stack:
            chains = rotations(await build_providers(emu, stack, base_url))
            await drive(chains, stream, OVER_SOCKETS, tally, concurrency=CONCURRENCY,
                        every=DRAIN_EVERY, on_every=log.drain)
        log.drain()
    return log


async def _in_process_slice(tally: Tally, stream: Iterator[ImageRequest],
                            memory: list[MemoryPoint]) -> FaultLog:
    emu = _emulator(SEED)
    log = FaultLog(emu, clear=True)
    rest = TOTAL - OVER_SOCKETS - WARM_UP
    async with AsyncExitStack() as stack:
        chains = rotations(await build_providers(emu, stack))
        await drive(chains, stream, WARM_UP, tally, concurrency=CONCURRENCY,
                    first_index=OVER_SOCKETS, every=DRAIN_EVERY, on_every=log.drain)
        log.drain()
        memory.append(memory_point(tally.requests))
        await drive(chains, stream, rest, tally, concurrency=CONCURRENCY,
                    first_index=OVER_SOCKETS + WARM_UP, every=DRAIN_EVERY,
                    on_every=log.drain)
        log.drain()
        memory.append(memory_point(tally.requests))
    return log


@dataclass
class ChaosRun:
    """What the run measured, for the assertions and the summary."""

    tally: Tally
    logs: dict[str, FaultLog]  # "sockets", "in-process"
    memory: list[MemoryPoint]  # after WARM_UP (+ the socket slice) and after TOTAL requests
    seconds: float
    tasks_left: list[asyncio.Task[Any]]
    fds_before: dict[int, str]
    fds_after: dict[int, str]
    sockets_after_slice: dict[int, str]  # socket fds once the loopback server was stopped
    threads: tuple[int, int]
    resource_warnings: list[str]
    logged: Counter[str]  # the library's warnings, by message template

    def faults(self, vendor: str) -> Counter[str]:
        seen: Counter[str] = Counter()
        for log in self.logs.values():
            seen.update(log.kinds(vendor))
        return seen

    def aliases(self, vendor: str) -> Counter[str]:
        """How often ``5xx`` and ``malformed`` were drawn (each logged as the kind it chose)."""
        return Counter({a: sum(log.by_alias[(vendor, a)] for log in self.logs.values())
                        for a in sorted(ALIAS_KINDS)})


async def _chaos() -> ChaosRun:
    me = asyncio.current_task()
    fds_before = open_fds()
    threads_before = threading.active_count()
    tally = Tally()
    memory: list[MemoryPoint] = []
    stream = requests(SEED)
    started = time.perf_counter()
    logged = WarningCounter()
    library_log = logging.getLogger("fallback_chain")
    library_log.addHandler(logged)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        socket_log = await _sockets_slice(tally, stream)
        after_slice = socket_fds(open_fds())
        local_log = await _in_process_slice(tally, stream, memory)
        seconds = time.perf_counter() - started
        await asyncio.sleep(0)  # let callbacks scheduled by the last closes run
        tasks_left = [t for t in asyncio.all_tasks() if t is not me]
        fds_after = open_fds()
    library_log.removeHandler(logged)
    return ChaosRun(
        tally, {"sockets": socket_log, "in-process": local_log}, memory, seconds, tasks_left,
        fds_before, fds_after, after_slice, (threads_before, threading.active_count()),
        [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)],
        logged.counts)


def _called_attempts(tally: Tally) -> Counter[str]:
    """Attempts that called a provider, per vendor (``openai/gpt-image-2`` -> ``openai``)."""
    called: Counter[str] = Counter()
    for (provider, outcome), n in tally.attempts.items():
        if Outcome(outcome).was_called:
            called[provider.split("/")[0]] += n
    return called


def _served(run: ChaosRun, vendor: str) -> int:
    """Create calls the emulators received from ``vendor``'s adapter."""
    return sum(log.by_endpoint[(vendor, "generate")] for log in run.logs.values())


def _line(counts: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _summary(run: ChaosRun) -> str:
    """The figures, as text (printed and written next to a JSON copy)."""
    t = run.tally
    first, last = run.memory
    results, errors = sum(t.results.values()), sum(t.errors.values())
    called = _called_attempts(t)
    lines = [
        f"chaos run: {t.requests:,} requests ({OVER_SOCKETS:,} over loopback sockets, "
        f"{t.requests - OVER_SOCKETS:,} in-process), concurrency {CONCURRENCY}, seed {SEED}, "
        f"{run.seconds:.1f} s ({t.requests / run.seconds:.0f} requests/s)",
        f"outcomes: {results:,} ChainResult ({_line(t.results)})",
        f"          {errors:,} ChainError ({_line(t.errors)}); escaped {len(t.escaped)}, "
        f"late {len(t.late)}, keys in error text {t.leaked_keys}",
        f"images: {t.images:,} verified (header, size, sha256), {len(t.decoded)} distinct "
        f"ones decoded by Pillow; bad results {len(t.bad_results)}",
        f"latency per request: p50 {t.percentile(50):.3f} s, p99 {t.percentile(99):.3f} s, "
        f"max {max(t.latencies):.3f} s (deadline {DEADLINE_S:g} s + slack {SLACK_S:g} s)",
        f"emulator requests: {sum(log.entries for log in run.logs.values()):,} "
        f"(sockets {run.logs['sockets'].entries:,}); faults injected: "
        + ", ".join(f"{v} {sum(run.faults(v).values()):,}" for v in VENDORS),
    ]
    for vendor in VENDORS:
        lines.append(f"  {vendor} ({len(run.faults(vendor))} kinds): "
                     + " ".join(f"{k}={n}" for k, n in sorted(run.faults(vendor).items()))
                     + " (drawn as aliases: "
                     + ", ".join(f"{a} {n}" for a, n in run.aliases(vendor).items()) + ")")
    lines.append("attempts by provider and outcome:")
    by_provider: dict[str, Counter[str]] = {}
    for (provider, outcome), n in t.attempts.items():
        by_provider.setdefault(provider, Counter())[outcome] = n
    for provider, counts in sorted(by_provider.items()):
        lines.append(f"  {provider}: {_line(counts)}")
    lines += [
        "create calls served / attempts calling the provider: " + ", ".join(
            f"{v} {_served(run, v):,}/{called[v]:,}" for v in ("openai", "leonardo")),
        f"resources: fds {len(run.fds_before)} -> {len(run.fds_after)} (sockets "
        f"{len(socket_fds(run.fds_before))} -> {len(socket_fds(run.fds_after))}), "
        f"asyncio tasks left {len(run.tasks_left)}, threads {run.threads[0]} -> "
        f"{run.threads[1]}, ResourceWarnings {len(run.resource_warnings)}",
        f"library warnings: {dict(run.logged) or 'none'}",
        f"memory after {first.requests:,} -> {last.requests:,} requests: RSS "
        f"{first.rss / 2**20:.1f} -> {last.rss / 2**20:.1f} MB, gc objects {first.objects:,} "
        f"-> {last.objects:,}, allocated blocks {first.blocks:,} -> {last.blocks:,}",
    ]
    return "\n".join(lines)


def _as_json(run: ChaosRun) -> dict[str, Any]:
    t = run.tally
    return {
        "requests": t.requests, "seconds": round(run.seconds, 2),
        "results": dict(t.results), "errors": dict(t.errors), "escaped": t.escaped,
        "late": t.late, "bad_results": t.bad_results,
        "latency_s": {"p50": t.percentile(50), "p99": t.percentile(99),
                      "max": max(t.latencies)},
        "faults": {v: dict(run.faults(v)) for v in VENDORS},
        "drawn_as_aliases": {v: dict(run.aliases(v)) for v in VENDORS},
        "emulator_requests": {name: {f"{v}/{e}": n for (v, e), n in log.by_endpoint.items()}
                              for name, log in run.logs.items()},
        "attempts": {f"{p} {o}": n for (p, o), n in sorted(t.attempts.items())},
        "memory": [vars(m) for m in run.memory],
        "fds": {"before": run.fds_before, "after": run.fds_after},
        "library_warnings": dict(run.logged),
    }


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_chaos_10k_requests_with_every_fault(tmp_path: Path) -> None:
    run = asyncio.run(_chaos())
    tally = run.tally
    summary = _summary(run)
    (tmp_path / "chaos-summary.txt").write_text(summary + "\n")
    (tmp_path / "chaos-summary.json").write_text(json.dumps(_as_json(run), indent=1))
    print(f"\n{summary}\n(written to {tmp_path / 'chaos-summary.txt'})")

    # every request ended, each in a ChainResult or a typed ChainError, none late
    assert tally.requests == TOTAL
    assert tally.escaped == [], tally.escaped[:3]
    assert sum(tally.results.values()) + sum(tally.errors.values()) == TOTAL
    assert tally.late == [], f"{len(tally.late)} request(s) over {DEADLINE_S + SLACK_S}s: " \
                             f"{tally.late[:5]}"
    # results are whole: n images, each re-verified and decoded; keys never in error text
    assert tally.bad_results == [], tally.bad_results[:5]
    assert sum(tally.results.values()) > TOTAL // 2 and len(tally.results) == 5
    assert tally.leaked_keys == 0
    # no adapter let a foreign exception out to the router, none met an unexpected SDK error
    assert not {m for m in run.logged if "instead of ProviderError" in m or "unexpected" in m}, \
        run.logged
    # every fault kind was injected, at least MIN_PER_KIND times, and no log entry was lost
    assert all(log.gaps == 0 for log in run.logs.values())
    for vendor in VENDORS:
        seen = run.faults(vendor)
        short = {k: seen[k] for k in expected_kinds(vendor) if seen[k] < MIN_PER_KIND}
        assert not short, f"{vendor}: kinds injected fewer than {MIN_PER_KIND} times: {short}"
        assert min(run.aliases(vendor).values()) >= MIN_PER_KIND, run.aliases(vendor)
    # connection faults also happened on real sockets
    over_sockets = Counter({k: n for (_, k), n in run.logs["sockets"].by_kind.items()})
    assert all(over_sockets[k] > 0 for k in ("reset", "cut", "hang", "truncated")), over_sockets
    # no hidden retries: the servers saw no more create calls than the chain made attempts
    # (OpenAI's SDK and Leonardo send one per attempt; fewer when a deadline-squeezed attempt
    # timed out before its request left)
    called = _called_attempts(tally)
    for vendor in ("openai", "leonardo"):
        assert 0 < _served(run, vendor) <= called[vendor], (vendor, _served(run, vendor))
    # nothing left behind: tasks, sockets (after the server slice and at the end), fds
    assert run.tasks_left == []
    before = set(run.fds_before.items())
    assert set(run.sockets_after_slice.items()) <= before
    assert set(run.fds_after.items()) - before == set(), "file descriptors left open"
    assert run.resource_warnings == [], run.resource_warnings[:3]
    # memory is flat: what 7,000 more requests added is bounded by a small constant
    first, last = run.memory
    assert last.objects - first.objects < MAX_OBJECT_GROWTH, (first, last)
    assert last.blocks - first.blocks < MAX_BLOCK_GROWTH, (first, last)
    assert last.rss - first.rss < MAX_RSS_GROWTH, (first, last)
