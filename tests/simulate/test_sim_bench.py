"""The simulator benchmark runs (a small case; the full one is `python -m benchmarks simulate`)."""

from __future__ import annotations

from benchmarks import bench_simulate


def test_benchmark_case_reports_rates() -> None:
    row = bench_simulate._case("smoke", bench_simulate.REALISTIC, {}, 1_000, 1)
    assert row["requests"] == 1_000
    assert 1.0 <= row["calls/request"] < 1.5
    assert row["requests/s (wall)"] > 0 and row["requests/s (CPU)"] > 0


def test_walk_all_case_calls_every_provider() -> None:
    policy = {"breaker_failures": 10**9, "cooldowns_s": {}, "retries": {"server_error": 0}}
    row = bench_simulate._case("walk", bench_simulate.WALK_ALL, policy, 500, 1)
    assert row["calls/request"] == 4.0
