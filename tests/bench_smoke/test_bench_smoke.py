"""The benchmark modules run in ``--quick`` mode (a few seconds each, no LiteLLM needed), and
the overhead benchmark fails loudly when a variant does not take the path it claims."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from benchmarks import bench_import, bench_memory, bench_overhead, bench_router
from benchmarks.bench_overhead import (
    OK_MODEL,
    RATE_LIMITED_MODEL,
    Group,
    Variant,
)

PNG = b"\x89PNG\r\n\x1a\n"
BODY = {"prompt": "p", "n": 1, "size": "512x512", "quality": "low"}


class FakeLog:
    """Stands in for ``RequestLog``: hands out prepared batches of log entries."""

    def __init__(self, batches: list[list[dict[str, Any]]]) -> None:
        self.batches = batches

    async def take(self) -> list[dict[str, Any]]:
        return self.batches.pop(0) if self.batches else []


def entry(model: str, status: int, **params: Any) -> dict[str, Any]:
    return {"seq": 1, "model": model, "status": status,
            "params": {**BODY, "model": model, **params}}


async def png() -> bytes:
    return PNG


def group_c(*labels: str) -> Group:
    return Group("c", [Variant("c", label, png) for label in labels],
                 {"c": {(RATE_LIMITED_MODEL, 429): 1, (OK_MODEL, 200): 1}})


def test_a_variant_that_skips_the_429_fails_the_run() -> None:
    log = FakeLog([[], [entry(OK_MODEL, 200)]])  # warm-up batch, then the block
    with pytest.raises(RuntimeError, match="did not take the path it claims"):
        asyncio.run(bench_overhead._measure(group_c("ours"), log, 1, 1, 1, 0))


def test_variants_that_send_different_bodies_fail_the_run() -> None:
    log = FakeLog([[], [entry(RATE_LIMITED_MODEL, 429), entry(OK_MODEL, 200)],
                   [entry(RATE_LIMITED_MODEL, 429, size="1024x1024"),
                    entry(OK_MODEL, 200, size="1024x1024")]])
    with pytest.raises(RuntimeError, match="different bodies"):
        asyncio.run(bench_overhead._measure(group_c("raw", "ours"), log, 1, 1, 1, 0))


def test_the_right_path_passes_and_fields_at_api_defaults_do_not_count() -> None:
    log = FakeLog([[], [entry(RATE_LIMITED_MODEL, 429), entry(OK_MODEL, 200)],
                   [entry(RATE_LIMITED_MODEL, 429, output_format="png", background="auto"),
                    entry(OK_MODEL, 200, output_format="png", background="auto")]])
    samples = asyncio.run(bench_overhead._measure(group_c("raw", "ours"), log, 1, 1, 1, 0))
    assert {label: s.count for label, s in samples.items()} == {"raw": 1, "ours": 1}


def test_ratios_name_the_targets() -> None:
    rows = [{"case": bench_overhead.CASE_TITLES[c], "mode": "sequential",
             "variant": bench_overhead.LABELS[v], "median_ms": ms}
            for c, v, ms in [("a", "raw", 2.0), ("b", "chain", 2.1), ("c", "hand", 4.0),
                             ("c", "chain", 4.1), ("c", "litellm", 20.5), ("d", "hand", 6.0),
                             ("d", "chain", 6.6)]]
    got = {r["ratio"]: (r["value"], r["met"]) for r in bench_overhead._ratios(rows)}
    assert got == {"b ÷ a (ours ÷ raw SDK)": (1.05, None),
                   "c: ours ÷ hand-written": (1.025, True),
                   "c: LiteLLM ÷ ours": (5.0, True),
                   "c: LiteLLM ÷ hand-written (the most any router can show)": (5.125, None),
                   "d: ours ÷ hand-written": (1.1, False)}


def test_max_in_flight_reads_overlap_from_the_log() -> None:
    entries = [{"time": 2.0, "latency_ms": 1000.0}, {"time": 2.5, "latency_ms": 1000.0},
               {"time": 4.0, "latency_ms": 1000.0}]
    assert bench_memory.max_in_flight(entries) == 2


@pytest.mark.slow
def test_overhead_quick_runs_without_litellm() -> None:
    result = bench_overhead.run(quick=True, litellm=False)
    variants = {(r["case"][0], r["mode"], r["variant"]) for r in result["rows"]}
    # a, b, c x3, d x3 (hand-written, hand-written + decode, ours) in each of the three modes
    assert len(variants) == 3 * (2 + 3 + 3)
    assert all(r["requests"] > 0 and r["median_ms"] > 0 for r in result["rows"])
    assert {r["ratio"] for r in result["ratios"]} >= {
        "c: ours ÷ hand-written", "d: ours ÷ hand-written",
        "c: ours ÷ hand-written + decode (like for like)"}
    assert {r["mode"] for r in result["ratios"] if r["target"]} == {"sequential",
                                                                   "32 in flight"}
    if bench_overhead.litellm_version() is None:
        assert "LiteLLM is not installed" in result["notes"]


@pytest.mark.slow
def test_memory_quick_runs() -> None:
    result = bench_memory.run(quick=True, litellm=False)
    assert [r["variant"] for r in result["rows"]] == ["raw openai SDK", "fallback-chain"]
    assert all(r["max in flight at the emulator"] == r["in flight"] for r in result["rows"])


@pytest.mark.slow
def test_import_quick_runs() -> None:
    result = bench_import.run(quick=True)
    assert result["import_fallback_chain_ms"] > 0
    assert any("--help" in r["case"] for r in result["rows"])


def test_router_quick_runs() -> None:
    result = bench_router.run(quick=True)
    assert all(r["µs/attempt"] > 0 for r in result["rows"])


# LiteLLM's paths are checked by the benchmark itself (`scripts/bench overhead` installs the
# `bench` extra and fails loudly when a variant's calls differ from its path); the suite does
# not depend on that optional extra.
